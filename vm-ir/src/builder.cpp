#include "vm/ir/builder.hpp"

#include <bit>
#include <cstring>

namespace vm::ir {
namespace {

Op make(Opcode opc, Type t, std::initializer_list<Value> args, Lane lane = Lane::None, uint8_t mod = 0) {
  Op op;
  op.opcode = opc;
  op.type = t;
  op.lane = lane;
  op.mod = mod;
  op.nargs = static_cast<uint8_t>(args.size());
  size_t i = 0;
  for (Value v : args) op.args[i++] = v.id;
  return op;
}

}  // namespace

IRBuilder::IRBuilder(IRBlock& block) : block_(&block), next_(block.value_count()) {}

Value IRBuilder::append(Op op) {
  if (op.type != Type::Void) {
    op.result = next_++;
  } else {
    op.result = kNoValue;
  }
  block_->ops.push_back(op);
  return Value{op.result, op.type};
}

Value IRBuilder::constant(Type t, uint64_t lo, uint64_t hi) {
  Op op = make(Opcode::Const, t, {});
  op.imm = lo;
  op.imm_hi = hi;
  return append(op);
}

Value IRBuilder::f32(float v) { return constant(Type::F32, std::bit_cast<uint32_t>(v)); }
Value IRBuilder::f64(double v) { return constant(Type::F64, std::bit_cast<uint64_t>(v)); }

Value IRBuilder::get_reg(X86Reg r, Type t, uint32_t byte_offset) {
  Op op = make(Opcode::GetReg, t, {});
  op.aux = static_cast<uint32_t>(r);
  op.imm = byte_offset;
  return append(op);
}

void IRBuilder::set_reg(X86Reg r, Value v, uint32_t byte_offset) {
  Op op = make(Opcode::SetReg, Type::Void, {v});
  op.aux = static_cast<uint32_t>(r);
  op.imm = byte_offset;
  append(op);
}

Value IRBuilder::load(Type t, Value addr) {
  Op op = make(Opcode::Load, t, {addr}, Lane::None, static_cast<uint8_t>(Ext::None));
  op.aux = type_bits(t);
  return append(op);
}

Value IRBuilder::load_ext(Type t, Value addr, Ext ext, uint32_t mem_bits) {
  Op op = make(Opcode::Load, t, {addr}, Lane::None, static_cast<uint8_t>(ext));
  op.aux = mem_bits;
  return append(op);
}

Value IRBuilder::fill(Value addr, Value v, Value count) {
  return append(make(Opcode::Fill, Type::I64, {addr, v, count}));
}

Value IRBuilder::copy(Value dst, Value src, Value count, uint32_t bits) {
  Op op = make(Opcode::Copy, Type::I64, {dst, src, count});
  op.aux = bits;
  return append(op);
}

void IRBuilder::store(Value addr, Value v) { append(make(Opcode::Store, Type::Void, {addr, v})); }

void IRBuilder::insn_start(GuestAddr pc) {
  Op op = make(Opcode::InsnStart, Type::Void, {});
  op.imm = pc.value();
  append(op);
}

Value IRBuilder::binary(Opcode opc, Value a, Value b, Lane lane) { return append(make(opc, a.type, {a, b}, lane)); }
Value IRBuilder::unary(Opcode opc, Value a, Lane lane) { return append(make(opc, a.type, {a}, lane)); }

Value IRBuilder::cmp(CmpPred p, Value a, Value b, Lane lane) {
  return append(make(Opcode::Cmp, lane == Lane::None ? Type::I1 : Type::V128, {a, b}, lane, static_cast<uint8_t>(p)));
}
Value IRBuilder::fcmp(FCmpPred p, Value a, Value b, Lane lane) {
  return append(make(Opcode::FCmp, lane == Lane::None ? Type::I1 : Type::V128, {a, b}, lane, static_cast<uint8_t>(p)));
}
Value IRBuilder::select(Value c, Value a, Value b) { return append(make(Opcode::Select, a.type, {c, a, b})); }

Value IRBuilder::zext(Value v, Type t) { return append(make(Opcode::ZExt, t, {v})); }
Value IRBuilder::sext(Value v, Type t) { return append(make(Opcode::SExt, t, {v})); }
Value IRBuilder::trunc(Value v, Type t) { return append(make(Opcode::Trunc, t, {v})); }
Value IRBuilder::bitcast(Value v, Type t) { return append(make(Opcode::Bitcast, t, {v})); }
Value IRBuilder::zext_or_trunc(Value v, Type t) {
  if (type_bits(v.type) == type_bits(t)) return v;
  return type_bits(v.type) < type_bits(t) ? zext(v, t) : trunc(v, t);
}

Value IRBuilder::parity(Value v) { return append(make(Opcode::Parity, Type::I1, {v})); }

Value IRBuilder::add_carry(Value a, Value b, Value c) { return append(make(Opcode::AddCarry, Type::I1, {a, b, c})); }
Value IRBuilder::add_overflow(Value a, Value b, Value c) { return append(make(Opcode::AddOverflow, Type::I1, {a, b, c})); }
Value IRBuilder::sub_borrow(Value a, Value b, Value c) { return append(make(Opcode::SubBorrow, Type::I1, {a, b, c})); }
Value IRBuilder::sub_overflow(Value a, Value b, Value c) { return append(make(Opcode::SubOverflow, Type::I1, {a, b, c})); }

Value IRBuilder::farith(Opcode opc, Value a, Value b, Rounding rm, Lane lane) {
  uint8_t mod = opcode_info(opc).mod == ModKind::Round ? static_cast<uint8_t>(rm) : 0;
  return append(make(opc, a.type, {a, b}, lane, mod));
}
Value IRBuilder::fsqrt(Value a, Rounding rm, Lane lane) {
  return append(make(Opcode::FSqrt, a.type, {a}, lane, static_cast<uint8_t>(rm)));
}
Value IRBuilder::fcvt(Value a, Type to, Rounding rm) { return append(make(Opcode::FCvt, to, {a}, Lane::None, static_cast<uint8_t>(rm))); }
Value IRBuilder::fround(Value a, Rounding rm) { return append(make(Opcode::FRound, a.type, {a}, Lane::None, static_cast<uint8_t>(rm))); }
Value IRBuilder::sitofp(Value a, Type to, Rounding rm, Lane lane) {
  return append(make(Opcode::SIToFP, to, {a}, lane, static_cast<uint8_t>(rm)));
}
Value IRBuilder::fptosi(Value a, Type to, Rounding rm, Lane lane) {
  return append(make(Opcode::FPToSI, to, {a}, lane, static_cast<uint8_t>(rm)));
}

Value IRBuilder::vextract(Lane lane, Value v, uint32_t index) {
  Op op = make(Opcode::VExtract, lane_type(lane), {v}, lane);
  op.aux = index;
  return append(op);
}
Value IRBuilder::vinsert(Lane lane, Value v, Value s, uint32_t index) {
  Op op = make(Opcode::VInsert, Type::V128, {v, s}, lane);
  op.aux = index;
  return append(op);
}
Value IRBuilder::vsplat(Lane lane, Value s) { return append(make(Opcode::VSplat, Type::V128, {s}, lane)); }
Value IRBuilder::vshuffle(Value a, Value b, const std::array<uint8_t, 16>& mask) {
  Op op = make(Opcode::VShuffle, Type::V128, {a, b});
  std::memcpy(&op.imm, mask.data(), 8);
  std::memcpy(&op.imm_hi, mask.data() + 8, 8);
  return append(op);
}
Value IRBuilder::vpshufb(Value a, Value c) { return append(make(Opcode::VPshufb, Type::V128, {a, c})); }
Value IRBuilder::vpack_ss(Lane l, Value a, Value b) { return append(make(Opcode::VPackSS, Type::V128, {a, b}, l)); }
Value IRBuilder::vpack_us(Lane l, Value a, Value b) { return append(make(Opcode::VPackUS, Type::V128, {a, b}, l)); }
Value IRBuilder::vmovmsk(Lane l, Value v) { return append(make(Opcode::VMovmsk, Type::I32, {v}, l)); }
Value IRBuilder::vmuladd(Value a, Value b) { return append(make(Opcode::VMulAdd, Type::V128, {a, b}, Lane::I16)); }
Value IRBuilder::vsad(Value a, Value b) { return append(make(Opcode::VSad, Type::V128, {a, b}, Lane::I8)); }

Value IRBuilder::atomic_cmpxchg(Value addr, Value expected, Value desired) {
  return append(make(Opcode::AtomicCmpxchg, expected.type, {addr, expected, desired}));
}
Value IRBuilder::atomic_rmw(RmwOp rop, Value addr, Value v) {
  return append(make(Opcode::AtomicRmw, v.type, {addr, v}, Lane::None, static_cast<uint8_t>(rop)));
}
void IRBuilder::fence() { append(make(Opcode::Fence, Type::Void, {})); }

void IRBuilder::trap_if(Value cond, TrapReason reason) {
  Op op = make(Opcode::TrapIf, Type::Void, {cond});
  op.aux = static_cast<uint32_t>(reason);
  append(op);
}
void IRBuilder::exit_if(Value cond, GuestAddr target) {
  Op op = make(Opcode::ExitIf, Type::Void, {cond});
  op.imm = target.value();
  append(op);
}

Value IRBuilder::call_helper(Helper h, std::initializer_list<Value> args) {
  Op op = make(Opcode::CallHelper, helper_info(h).returns_value ? Type::I64 : Type::Void, args);
  op.aux = static_cast<uint32_t>(h);
  return append(op);
}

namespace {
Terminator term_of(TermKind kind, ValueId value = kNoValue, GuestAddr target = {}, GuestAddr fallthrough = {}) {
  Terminator t;
  t.kind = kind;
  t.value = value;
  t.target = target;
  t.fallthrough = fallthrough;
  return t;
}
}  // namespace

void IRBuilder::jump(GuestAddr target) { block_->term = term_of(TermKind::Jump, kNoValue, target); }
void IRBuilder::branch(Value c, GuestAddr taken, GuestAddr not_taken) {
  block_->term = term_of(TermKind::Branch, c.id, taken, not_taken);
}
void IRBuilder::indirect_jump(Value t) { block_->term = term_of(TermKind::IndirectJump, t.id); }
void IRBuilder::ret(Value t) { block_->term = term_of(TermKind::Ret, t.id); }
void IRBuilder::call(GuestAddr target, GuestAddr return_pc) {
  block_->term = term_of(TermKind::Call, kNoValue, target, return_pc);
}
void IRBuilder::call_indirect(Value t, GuestAddr return_pc) {
  block_->term = term_of(TermKind::Call, t.id, GuestAddr{}, return_pc);
}
void IRBuilder::syscall(GuestAddr next) { block_->term = term_of(TermKind::Syscall, kNoValue, next); }
void IRBuilder::trap(TrapReason reason, GuestAddr pc, std::string message, uint8_t vector) {
  block_->term = term_of(TermKind::Trap, kNoValue, pc);
  block_->term.trap = reason;
  block_->term.vector = vector;
  block_->term.message = std::move(message);
}
void IRBuilder::exit(GuestAddr next) { block_->term = term_of(TermKind::Exit, kNoValue, next); }

}  // namespace vm::ir
