// The verifier checks one rule at a time and reports the first violation
// with the op index, so a bad block from any producer (lifter, parser, a
// fuzzer) is rejected with a precise message instead of reaching a consumer.
#include "vm/ir/verifier.hpp"

#include <vector>

#include <fmt/format.h>

namespace vm::ir {
namespace {

using core::ErrorCode;
using core::RegKind;

class Checker {
public:
  explicit Checker(const IRBlock& b) : block_(b) {}

  core::Result<void> run() {
    for (size_t i = 0; i < block_.ops.size(); ++i) {
      index_ = i;
      if (auto r = check_op(block_.ops[i]); !r) return r;
    }
    return check_terminator(block_.term);
  }

private:
  const IRBlock& block_;
  size_t index_ = 0;
  std::vector<Type> defined_;  // type of each defined value id (Void = undefined)

  std::unexpected<core::Error> err(const Op& op, std::string msg) const {
    return core::fail(ErrorCode::Verify, fmt::format("op {} ({}): {}", index_, opcode_info(op.opcode).name, msg));
  }

  Type type_of(ValueId id) const { return id < defined_.size() ? defined_[id] : Type::Void; }

  static bool is_int_lane(Lane l) { return l >= Lane::I8 && l <= Lane::I64; }

  core::Result<void> check_op(const Op& op) {
    if (static_cast<uint32_t>(op.opcode) >= kNumOpcodes)
      return core::fail(ErrorCode::Verify, fmt::format("op {}: unknown opcode {}", index_, static_cast<int>(op.opcode)));
    const OpcodeInfo& info = opcode_info(op.opcode);
    if (static_cast<uint32_t>(op.type) > static_cast<uint32_t>(Type::V128)) return err(op, "invalid result type");
    if (static_cast<uint32_t>(op.lane) > static_cast<uint32_t>(Lane::F64)) return err(op, "invalid lane type");

    // Operand count and definedness.
    int want = info.nargs;
    if (op.opcode == Opcode::CallHelper) {
      if (op.aux >= kNumHelpers) return err(op, fmt::format("unknown helper id {}", op.aux));
      want = helper_info(static_cast<Helper>(op.aux)).nargs;
    }
    if (op.nargs != want) return err(op, fmt::format("expects {} operand(s), has {}", want, op.nargs));
    for (size_t a = 0; a < op.args.size(); ++a) {
      if (a < op.nargs) {
        if (op.args[a] == kNoValue) return err(op, fmt::format("operand {} is missing", a));
        if (type_of(op.args[a]) == Type::Void)
          return err(op, fmt::format("operand {} uses %{} before its definition", a, op.args[a]));
      } else if (op.args[a] != kNoValue) {
        return err(op, fmt::format("unused operand slot {} must be empty", a));
      }
    }

    // Modifier range.
    uint8_t mod_limit = 0;
    switch (info.mod) {
      case ModKind::None: mod_limit = 0; break;
      case ModKind::Cmp: mod_limit = static_cast<uint8_t>(CmpPred::Uge); break;
      case ModKind::FCmp: mod_limit = static_cast<uint8_t>(FCmpPred::Ord); break;
      case ModKind::Round: mod_limit = static_cast<uint8_t>(Rounding::Dyn); break;
      case ModKind::Ext: mod_limit = static_cast<uint8_t>(Ext::Sign); break;
      case ModKind::Rmw: mod_limit = static_cast<uint8_t>(RmwOp::Xor); break;
    }
    if (op.mod > mod_limit) return err(op, fmt::format("modifier {} out of range", op.mod));
    if ((op.opcode == Opcode::FMin || op.opcode == Opcode::FMax) && op.mod != 0) return err(op, "modifier must be 0");

    // Lane use.
    bool lane_specific = op.opcode == Opcode::VExtract || op.opcode == Opcode::VInsert || op.opcode == Opcode::VSplat ||
                         op.opcode == Opcode::VPackSS || op.opcode == Opcode::VPackUS || op.opcode == Opcode::VMovmsk ||
                         op.opcode == Opcode::VMulAdd || op.opcode == Opcode::VSad;
    if (op.lane != Lane::None && !info.lane_wise) return err(op, "opcode cannot be lane-wise");
    if (lane_specific && op.lane == Lane::None) return err(op, "needs a lane type");

    // Unused immediate fields must be zero so the text form is exact.
    bool uses_aux = op.opcode == Opcode::GetReg || op.opcode == Opcode::SetReg || op.opcode == Opcode::Load ||
                    op.opcode == Opcode::VExtract || op.opcode == Opcode::VInsert || op.opcode == Opcode::CallHelper ||
                    op.opcode == Opcode::TrapIf || op.opcode == Opcode::Copy;
    bool uses_imm = op.opcode == Opcode::Const || op.opcode == Opcode::GetReg || op.opcode == Opcode::SetReg ||
                    op.opcode == Opcode::InsnStart || op.opcode == Opcode::VShuffle || op.opcode == Opcode::ExitIf;
    bool uses_imm_hi = op.opcode == Opcode::Const || op.opcode == Opcode::VShuffle;
    if (!uses_aux && op.aux != 0) return err(op, "aux field must be 0");
    if (!uses_imm && op.imm != 0) return err(op, "imm field must be 0");
    if (!uses_imm_hi && op.imm_hi != 0) return err(op, "imm_hi field must be 0");

    if (auto r = check_types(op); !r) return r;

    // Result definition.
    if (op.type == Type::Void) {
      if (op.result != kNoValue) return err(op, "an op without a result type defines a value");
    } else {
      if (op.result == kNoValue) return err(op, "result value id missing");
      if (op.result >= kMaxValueId) return err(op, fmt::format("value id %{} too large (limit {})", op.result, kMaxValueId));
      if (type_of(op.result) != Type::Void) return err(op, fmt::format("%{} is defined twice", op.result));
      if (defined_.size() <= op.result) defined_.resize(op.result + 1, Type::Void);
      defined_[op.result] = op.type;
    }
    return {};
  }

  core::Result<void> check_reg(const Op& op, Type t) {
    if (!core::is_valid_reg(op.aux)) return err(op, fmt::format("unknown register id {}", op.aux));
    const auto& ri = core::kX86Regs[op.aux];
    if (ri.kind == RegKind::Flag) {
      if (t != Type::I1 || op.imm != 0) return err(op, fmt::format("flag {} is accessed as i1 at offset 0", ri.name));
      return {};
    }
    if (t == Type::I1 || t == Type::Void) return err(op, fmt::format("register {} cannot be accessed as {}", ri.name, type_name(t)));
    if (op.imm + type_bytes(t) > ri.size)
      return err(op, fmt::format("{} at byte offset {} lies outside register {} ({} bytes)", type_name(t), op.imm, ri.name, ri.size));
    return {};
  }

  core::Result<void> check_types(const Op& op) {
    auto A = [&](int i) { return type_of(op.args[i]); };
    auto same = [&](Type t, std::initializer_list<int> idx) {
      for (int i : idx)
        if (A(i) != t) return false;
      return true;
    };
    auto need = [&](bool ok, std::string_view what) -> core::Result<void> {
      if (!ok) return err(op, std::string(what));
      return {};
    };
    const bool lanes = op.lane != Lane::None;
    switch (op.opcode) {
      case Opcode::Const: {
        if (op.type == Type::Void) return err(op, "constant needs a type");
        uint32_t bits = type_bits(op.type);
        if (bits < 64 && (op.imm >> bits) != 0) return err(op, fmt::format("constant does not fit in {}", type_name(op.type)));
        if (bits <= 64 && op.imm_hi != 0) return err(op, fmt::format("constant does not fit in {}", type_name(op.type)));
        return {};
      }
      case Opcode::GetReg: return check_reg(op, op.type);
      case Opcode::SetReg:
        if (op.type != Type::Void) return err(op, "set_reg has no result");
        return check_reg(op, A(0));
      case Opcode::Load: {
        if (A(0) != Type::I64) return err(op, "address must be i64");
        if (op.type == Type::Void || op.type == Type::I1) return err(op, "cannot load this type");
        auto ext = static_cast<Ext>(op.mod);
        if (ext == Ext::None) return need(op.aux == type_bits(op.type), "memory bits must equal the result width");
        return need(is_int(op.type) && (op.aux == 8 || op.aux == 16 || op.aux == 32 || op.aux == 64) &&
                        op.aux < type_bits(op.type),
                    "extending load needs an integer result wider than 8/16/32/64 memory bits");
      }
      case Opcode::Store:
        return need(op.type == Type::Void && A(0) == Type::I64 && A(1) != Type::I1,
                    "store takes an i64 address and a non-i1 value");
      case Opcode::InsnStart:
      case Opcode::Fence: return need(op.type == Type::Void, "has no result");
      case Opcode::TrapIf:
        if (op.aux > static_cast<uint32_t>(TrapReason::GeneralProtection)) return err(op, "unknown trap reason");
        if (op.aux == static_cast<uint32_t>(TrapReason::MemoryFault)) return err(op, "memory_fault only arises at run time");
        return need(op.type == Type::Void && A(0) == Type::I1, "takes an i1 condition and has no result");
      case Opcode::ExitIf: return need(op.type == Type::Void && A(0) == Type::I1, "takes an i1 condition and has no result");
      case Opcode::Add: case Opcode::Sub: case Opcode::Mul: case Opcode::And: case Opcode::Or: case Opcode::Xor:
      case Opcode::Shl: case Opcode::LShr: case Opcode::AShr: case Opcode::SMin: case Opcode::SMax:
      case Opcode::UMin: case Opcode::UMax: case Opcode::AddSatS: case Opcode::AddSatU: case Opcode::SubSatS:
      case Opcode::SubSatU: case Opcode::AvgU: case Opcode::MulHiU: case Opcode::MulHiS:
        if (lanes) return need(is_int_lane(op.lane) && op.type == Type::V128 && same(Type::V128, {0, 1}), "lane-wise integer op needs v128 operands and an integer lane");
        if (!(is_int(op.type) && same(op.type, {0, 1}))) return err(op, "operands and result must have the same integer type");
        if ((op.opcode == Opcode::MulHiU || op.opcode == Opcode::MulHiS) && op.type == Type::I128)
          return err(op, "high multiply is not defined for i128");
        return {};
      case Opcode::DivU: case Opcode::DivS: case Opcode::RemU: case Opcode::RemS:
        return need(is_int(op.type) && op.type != Type::I1 && same(op.type, {0, 1}), "operands and result must have the same integer type (i8..i128)");
      case Opcode::Rotl: case Opcode::Rotr:
        return need(is_int(op.type) && op.type != Type::I1 && same(op.type, {0, 1}), "operands and result must have the same integer type (i8..i128)");
      case Opcode::Not: case Opcode::Neg: case Opcode::Abs:
        if (lanes) return need(is_int_lane(op.lane) && op.type == Type::V128 && A(0) == Type::V128, "lane-wise op needs v128");
        return need(is_int(op.type) && A(0) == op.type, "operand and result must have the same integer type");
      case Opcode::Cmp:
        if (lanes) return need(is_int_lane(op.lane) && op.type == Type::V128 && same(Type::V128, {0, 1}), "lane-wise cmp needs v128 operands and result");
        return need(op.type == Type::I1 && is_int(A(0)) && A(0) == A(1), "cmp compares two integers of one type into i1");
      case Opcode::Select:
        return need(A(0) == Type::I1 && op.type != Type::Void && same(op.type, {1, 2}), "select takes i1 and two values of the result type");
      case Opcode::ZExt: case Opcode::SExt:
        return need(is_int(A(0)) && is_int(op.type) && type_bits(op.type) > type_bits(A(0)), "extension needs a wider integer result");
      case Opcode::Trunc:
        return need(is_int(A(0)) && is_int(op.type) && type_bits(op.type) < type_bits(A(0)), "trunc needs a narrower integer result");
      case Opcode::Bitcast:
        return need(op.type != Type::Void && A(0) != Type::I1 && op.type != Type::I1 && type_bits(op.type) == type_bits(A(0)),
                    "bitcast needs types of equal width");
      case Opcode::Ctz: case Opcode::Clz: case Opcode::Popcount:
        return need(is_int(op.type) && op.type != Type::I1 && A(0) == op.type, "operand and result must have the same integer type");
      case Opcode::Bswap:
        return need((op.type == Type::I16 || op.type == Type::I32 || op.type == Type::I64 || op.type == Type::I128) && A(0) == op.type,
                    "bswap works on i16/i32/i64/i128");
      case Opcode::Parity:
        return need(op.type == Type::I1 && is_int(A(0)), "parity maps an integer to i1");
      case Opcode::AddCarry: case Opcode::AddOverflow: case Opcode::SubBorrow: case Opcode::SubOverflow:
        return need(op.type == Type::I1 && is_int(A(0)) && A(0) != Type::I1 && A(1) == A(0) && A(2) == Type::I1,
                    "carry/overflow takes two integers of one type and an i1 carry-in, giving i1");
      case Opcode::FAdd: case Opcode::FSub: case Opcode::FMul: case Opcode::FDiv: case Opcode::FMin: case Opcode::FMax:
        if (lanes) return need(lane_is_float(op.lane) && op.type == Type::V128 && same(Type::V128, {0, 1}), "lane-wise float op needs v128 and a float lane");
        return need(is_float(op.type) && same(op.type, {0, 1}), "operands and result must have the same float type");
      case Opcode::FSqrt:
        if (lanes) return need(lane_is_float(op.lane) && op.type == Type::V128 && A(0) == Type::V128, "lane-wise fsqrt needs v128");
        return need(is_float(op.type) && A(0) == op.type, "operand and result must have the same float type");
      case Opcode::FCmp:
        if (lanes) return need(lane_is_float(op.lane) && op.type == Type::V128 && same(Type::V128, {0, 1}), "lane-wise fcmp needs v128 operands and result");
        return need(op.type == Type::I1 && is_float(A(0)) && A(0) == A(1), "fcmp compares two floats of one type into i1");
      case Opcode::FCvt:
        return need(is_float(op.type) && is_float(A(0)) && op.type != A(0), "fcvt converts between f32 and f64");
      case Opcode::FRound:
        return need(is_float(op.type) && A(0) == op.type, "fround keeps the float type");
      case Opcode::SIToFP:
        if (lanes) return need(op.lane == Lane::I32 && op.type == Type::V128 && A(0) == Type::V128, "lane-wise sitofp converts i32x4 to f32x4");
        return need(is_float(op.type) && (A(0) == Type::I32 || A(0) == Type::I64), "sitofp converts i32/i64 to f32/f64");
      case Opcode::FPToSI:
        if (lanes) return need(op.lane == Lane::F32 && op.type == Type::V128 && A(0) == Type::V128, "lane-wise fptosi converts f32x4 to i32x4");
        return need((op.type == Type::I32 || op.type == Type::I64) && is_float(A(0)), "fptosi converts f32/f64 to i32/i64");
      case Opcode::VExtract:
        if (op.aux >= lane_count(op.lane)) return err(op, fmt::format("lane index {} out of range", op.aux));
        return need(A(0) == Type::V128 && op.type == lane_type(op.lane), "vextract takes v128 and gives the lane type");
      case Opcode::VInsert:
        if (op.aux >= lane_count(op.lane)) return err(op, fmt::format("lane index {} out of range", op.aux));
        return need(op.type == Type::V128 && A(0) == Type::V128 && A(1) == lane_type(op.lane), "vinsert takes v128 and a lane value");
      case Opcode::VSplat:
        return need(op.type == Type::V128 && A(0) == lane_type(op.lane), "vsplat takes a lane value");
      case Opcode::VShuffle: {
        for (int i = 0; i < 16; ++i) {
          uint8_t sel = static_cast<uint8_t>((i < 8 ? op.imm >> (8 * i) : op.imm_hi >> (8 * (i - 8))) & 0xff);
          if (sel >= 32 && sel != 0x80) return err(op, fmt::format("shuffle selector {} at byte {} is neither 0..31 nor 0x80", sel, i));
        }
        return need(op.type == Type::V128 && same(Type::V128, {0, 1}), "vshuffle works on v128");
      }
      case Opcode::VPshufb:
        return need(op.type == Type::V128 && same(Type::V128, {0, 1}), "vpshufb works on v128");
      case Opcode::VPackSS: case Opcode::VPackUS:
        return need((op.lane == Lane::I16 || op.lane == Lane::I32) && op.type == Type::V128 && same(Type::V128, {0, 1}),
                    "pack narrows i16 or i32 lanes of two v128 values");
      case Opcode::VMovmsk:
        return need(op.type == Type::I32 && A(0) == Type::V128, "vmovmsk maps v128 to i32");
      case Opcode::VMulAdd:
        return need(op.lane == Lane::I16 && op.type == Type::V128 && same(Type::V128, {0, 1}), "vmuladd works on i16x8");
      case Opcode::VSad:
        return need(op.lane == Lane::I8 && op.type == Type::V128 && same(Type::V128, {0, 1}), "vsad works on i8x16");
      case Opcode::AtomicCmpxchg:
        return need(A(0) == Type::I64 && is_int(op.type) && op.type != Type::I1 && same(op.type, {1, 2}),
                    "atomic_cmpxchg takes an i64 address and two integers of the result type");
      case Opcode::Fill:
        return need(op.type == Type::I64 && A(0) == Type::I64 && A(2) == Type::I64 &&
                        (A(1) == Type::I8 || A(1) == Type::I16 || A(1) == Type::I32 || A(1) == Type::I64),
                    "fill takes an i64 address, an i8..i64 value and an i64 count, and returns i64");
      case Opcode::Copy:
        return need(op.type == Type::I64 && same(Type::I64, {0, 1, 2}) &&
                        (op.aux == 8 || op.aux == 16 || op.aux == 32 || op.aux == 64),
                    "copy takes i64 destination, source and count, an element width of 8, 16, 32 or 64 bits, and "
                    "returns i64");
      case Opcode::AtomicRmw:
        return need(A(0) == Type::I64 && is_int(op.type) && op.type != Type::I1 && op.type != Type::I128 && A(1) == op.type,
                    "atomic_rmw takes an i64 address and an integer (i8..i64) of the result type");
      case Opcode::CallHelper: {
        const HelperInfo& h = helper_info(static_cast<Helper>(op.aux));
        for (int i = 0; i < op.nargs; ++i)
          if (A(i) != Type::I64) return err(op, "helper arguments are i64");
        return need(op.type == (h.returns_value ? Type::I64 : Type::Void),
                    h.returns_value ? "helper returns i64" : "helper returns nothing");
      }
    }
    return err(op, "unhandled opcode");
  }

  core::Result<void> check_terminator(const Terminator& t) {
    auto bad = [&](std::string msg) {
      return core::fail(ErrorCode::Verify, fmt::format("terminator: {}", msg));
    };
    auto value_is = [&](Type want) { return t.value != kNoValue && type_of(t.value) == want; };
    switch (t.kind) {
      case TermKind::None: return bad("block has no terminator");
      case TermKind::Branch:
        if (!value_is(Type::I1)) return bad("branch condition must be a defined i1 value");
        break;
      case TermKind::IndirectJump:
      case TermKind::Ret:
        if (!value_is(Type::I64)) return bad("target must be a defined i64 value");
        break;
      case TermKind::Call:
        if (t.value != kNoValue && !value_is(Type::I64)) return bad("call target must be a defined i64 value");
        if (t.value != kNoValue && t.target != GuestAddr{}) return bad("indirect call must not also name a direct target");
        break;
      case TermKind::Jump: case TermKind::Syscall: case TermKind::Trap: case TermKind::Exit:
        if (t.value != kNoValue) return bad("this terminator takes no value");
        break;
    }
    if (static_cast<uint32_t>(t.kind) > static_cast<uint32_t>(TermKind::Exit)) return bad("unknown terminator kind");
    if (t.kind == TermKind::Trap) {
      if (static_cast<uint32_t>(t.trap) > static_cast<uint32_t>(TrapReason::GeneralProtection)) return bad("unknown trap reason");
      if (t.trap == TrapReason::MemoryFault) return bad("memory_fault only arises at run time");
      if (t.trap != TrapReason::Interrupt && t.vector != 0) return bad("only an interrupt trap has a vector");
    } else {
      if (!t.message.empty() || t.vector != 0 || t.trap != TrapReason::InvalidOpcode)
        return bad("trap fields are set on a non-trap terminator");
    }
    if (t.kind != TermKind::Branch && t.kind != TermKind::Call && t.fallthrough != GuestAddr{})
      return bad("fallthrough is only used by branch and call");
    if ((t.kind == TermKind::IndirectJump || t.kind == TermKind::Ret) && t.target != GuestAddr{})
      return bad("indirect transfers have no static target");
    return {};
  }
};

}  // namespace

core::Result<void> verify(const IRBlock& block) { return Checker(block).run(); }

}  // namespace vm::ir
