#include "random_blocks.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <optional>
#include <initializer_list>
#include <string>

#include "vm/ir/builder.hpp"

namespace vm::ir::testing {
namespace {

constexpr std::array<Type, 9> kValueTypes = {Type::I1,  Type::I8,  Type::I16, Type::I32, Type::I64,
                                             Type::I128, Type::F32, Type::F64, Type::V128};
constexpr std::array<Lane, 4> kIntLanes = {Lane::I8, Lane::I16, Lane::I32, Lane::I64};
constexpr std::array<Lane, 6> kAllLanes = {Lane::I8, Lane::I16, Lane::I32, Lane::I64, Lane::F32, Lane::F64};

uint64_t low_mask(uint32_t bits) { return bits >= 64 ? ~0ULL : (1ULL << bits) - 1; }

class Generator {
public:
  Generator(std::mt19937_64& rng, const RandomBlockOptions& opts) : rng_(rng), opts_(opts), b_(block_) {
    if (opts_.regs.empty()) {
      for (const auto& r : core::kX86Regs) regs_.push_back(r.id);
    } else {
      regs_ = opts_.regs;
    }
    for (uint32_t i = 0; i < kNumOpcodes; ++i) {
      auto opc = static_cast<Opcode>(i);
      if (allowed(opc)) opcodes_.push_back(opc);
    }
  }

  IRBlock run() {
    block_.start_pc = opts_.start_pc;
    pc_ = opts_.start_pc;
    b_.insn_start(pc_);
    for (uint32_t i = 0; i < opts_.size; ++i) gen_op(pick(opcodes_));
    block_.guest_len = static_cast<uint32_t>(pc_ - opts_.start_pc) + static_cast<uint32_t>(range(1, 15));
    gen_terminator();
    if (opts_.sparse_ids) renumber();
    return std::move(block_);
  }

private:
  std::mt19937_64& rng_;
  const RandomBlockOptions& opts_;
  IRBlock block_;
  IRBuilder b_;
  GuestAddr pc_;
  std::vector<core::X86Reg> regs_;
  std::vector<Opcode> opcodes_;
  std::array<std::vector<Value>, 10> pool_;  // defined values by type
  std::vector<Value> addrs_;                 // i64 addresses inside the memory window

  // ---- randomness
  uint64_t bits64() { return rng_(); }
  uint64_t range(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); }
  bool chance(unsigned percent) { return range(0, 99) < percent; }
  template <class C>
  typename C::value_type pick(const C& c) {
    return c[range(0, std::size(c) - 1)];
  }
  template <class T>
  T pick(std::initializer_list<T> c) {
    return *(c.begin() + range(0, c.size() - 1));
  }

  bool allowed(Opcode opc) const {
    switch (opc) {
      case Opcode::Load: case Opcode::Store: case Opcode::AtomicCmpxchg: case Opcode::AtomicRmw: case Opcode::Fence:
        return opts_.memory;
      case Opcode::Fill: case Opcode::Copy: return opts_.memory && opts_.bulk;
      case Opcode::CallHelper: return opts_.helpers;
      case Opcode::TrapIf: case Opcode::ExitIf: return opts_.conditional_exits;
      case Opcode::DivU: case Opcode::DivS: case Opcode::RemU: case Opcode::RemS: return opts_.division;
      default: return true;
    }
  }

  // ---- values
  Value remember(Value v) {
    if (v.valid()) pool_[static_cast<size_t>(v.type)].push_back(v);
    return v;
  }

  // An operand of type t: usually an existing value, else a new input.
  Value get(Type t) {
    auto& vs = pool_[static_cast<size_t>(t)];
    if (!vs.empty() && chance(70)) return pick(vs);
    if (chance(40)) {
      if (Value v = fresh_get_reg(t); v.valid()) return v;
    }
    return fresh_const(t);
  }

  // Bit patterns that tend to hit edge cases (sign bits, all ones, NaNs).
  uint64_t interesting_int(uint32_t bits) {
    uint64_t m = low_mask(bits);
    switch (range(0, 7)) {
      case 0: return 0;
      case 1: return 1;
      case 2: return m;
      case 3: return bits == 0 ? 0 : (1ULL << (std::min(bits, 64u) - 1)) & m;
      case 4: return (bits == 0 ? 0 : ((1ULL << (std::min(bits, 64u) - 1)) - 1)) & m;
      case 5: return range(0, 16) & m;
      default: return bits64() & m;
    }
  }
  uint64_t interesting_f32() {
    static constexpr std::array<uint32_t, 12> kF32 = {0x00000000, 0x80000000, 0x3f800000, 0xbfc00000, 0x7f800000, 0xff800000,
                                                      0x7fc00000, 0x7fa00000, 0x00000001, 0x4f000000, 0xcf000000, 0x7f7fffff};
    return chance(60) ? pick(kF32) : static_cast<uint32_t>(bits64());
  }
  uint64_t interesting_f64() {
    static constexpr std::array<uint64_t, 12> kF64 = {
        0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0xbff8000000000000,
        0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0x7ff4000000000000,
        0x0000000000000001, 0x43e0000000000000, 0x41e0000000000000, 0x3fe0000000000000};
    return chance(60) ? pick(kF64) : bits64();
  }

  Value fresh_const(Type t) {
    switch (t) {
      case Type::F32: return remember(b_.constant(t, interesting_f32()));
      case Type::F64: return remember(b_.constant(t, interesting_f64()));
      case Type::I128:
      case Type::V128:
        if (chance(30)) {
          // Repeat one lane so lane-wise ops see equal and edge-case lanes.
          uint32_t lb = pick(std::initializer_list<uint32_t>{8, 16, 32, 64});
          uint64_t lane = interesting_int(lb), word = 0;
          for (uint32_t s = 0; s < 64; s += lb) word |= lane << s;
          return remember(b_.constant(t, word, word));
        }
        return remember(b_.constant(t, interesting_int(64), interesting_int(64)));
      default: return remember(b_.constant(t, interesting_int(type_bits(t))));
    }
  }

  // Register and byte offset that can hold a value of type t, if any.
  bool reg_for(Type t, core::X86Reg& reg, uint32_t& offset) {
    std::vector<core::X86Reg> fits;
    for (core::X86Reg r : regs_) {
      const auto& ri = core::reg_info(r);
      bool ok = ri.kind == core::RegKind::Flag ? t == Type::I1 : t != Type::I1 && type_bytes(t) <= ri.size;
      if (ok) fits.push_back(r);
    }
    if (fits.empty()) return false;
    reg = pick(fits);
    const auto& ri = core::reg_info(reg);
    uint32_t room = ri.kind == core::RegKind::Flag ? 0 : ri.size - type_bytes(t);
    // Mostly naturally aligned sub-registers (al, ah, xmm0 lanes), sometimes any byte.
    uint32_t align = std::max(type_bytes(t), 1u);
    offset = chance(80) ? static_cast<uint32_t>(range(0, room / align)) * align : static_cast<uint32_t>(range(0, room));
    if (chance(50) && ri.kind != core::RegKind::Flag) offset = 0;
    return true;
  }

  Value fresh_get_reg(Type t) {
    core::X86Reg r{};
    uint32_t off = 0;
    if (!reg_for(t, r, off)) return {};
    return remember(b_.get_reg(r, t, off));
  }

  Value address() {
    if (!addrs_.empty() && chance(50)) return pick(addrs_);
    uint64_t room = opts_.mem_size >= 16 ? opts_.mem_size - 16 : 0;
    uint64_t off = range(0, room);
    if (chance(60)) off &= ~15ULL;
    Value a = remember(b_.i64(opts_.mem_base + off));
    addrs_.push_back(a);
    return a;
  }
  Value aligned_address() {
    // Atomics use naturally aligned addresses (the usual lock-prefix case).
    uint64_t room = opts_.mem_size >= 16 ? opts_.mem_size - 16 : 0;
    Value a = remember(b_.i64((opts_.mem_base + range(0, room)) & ~15ULL));
    return a;
  }

  Type any_type() { return pick(kValueTypes); }
  Type int_type(bool allow_i1, bool allow_i128) {
    for (;;) {
      Type t = pick({Type::I1, Type::I8, Type::I16, Type::I32, Type::I64, Type::I128});
      if ((allow_i1 || t != Type::I1) && (allow_i128 || t != Type::I128)) return t;
    }
  }
  Type float_type() { return pick({Type::F32, Type::F64}); }
  Rounding rounding() { return static_cast<Rounding>(range(0, 4)); }

  // ---- ops
  void gen_op(Opcode opc) {
    const OpcodeInfo& info = opcode_info(opc);
    const bool lanes = info.lane_wise && chance(40);
    switch (opc) {
      case Opcode::Const: fresh_const(any_type()); return;
      case Opcode::GetReg:
        if (!fresh_get_reg(any_type()).valid()) fresh_const(any_type());
        return;
      case Opcode::SetReg: {
        Type t = any_type();
        core::X86Reg r{};
        uint32_t off = 0;
        if (reg_for(t, r, off)) b_.set_reg(r, get(t), off);
        return;
      }
      case Opcode::InsnStart:
        pc_ += range(1, 15);
        b_.insn_start(pc_);
        return;
      case Opcode::Load: {
        Type t = pick({Type::I8, Type::I16, Type::I32, Type::I64, Type::I128, Type::F32, Type::F64, Type::V128});
        Value a = address();
        if (is_int(t) && t != Type::I8 && chance(50)) {
          std::vector<uint32_t> widths;
          for (uint32_t w : {8u, 16u, 32u, 64u})
            if (w < type_bits(t)) widths.push_back(w);
          remember(b_.load_ext(t, a, chance(50) ? Ext::Zero : Ext::Sign, pick(widths)));
        } else {
          remember(b_.load(t, a));
        }
        return;
      }
      case Opcode::Store: {
        Value a = address();
        Type t = any_type();
        if (t == Type::I1) t = Type::I8;
        b_.store(a, get(t));
        return;
      }
      case Opcode::Add: case Opcode::Sub: case Opcode::Mul: case Opcode::MulHiU: case Opcode::MulHiS:
      case Opcode::And: case Opcode::Or: case Opcode::Xor: case Opcode::Shl: case Opcode::LShr: case Opcode::AShr:
      case Opcode::SMin: case Opcode::SMax: case Opcode::UMin: case Opcode::UMax: case Opcode::AddSatS:
      case Opcode::AddSatU: case Opcode::SubSatS: case Opcode::SubSatU: case Opcode::AvgU: {
        if (lanes) {
          remember(b_.binary(opc, get(Type::V128), get(Type::V128), pick(kIntLanes)));
          return;
        }
        bool hi = opc == Opcode::MulHiU || opc == Opcode::MulHiS;
        Type t = int_type(true, !hi);
        remember(b_.binary(opc, get(t), get(t)));
        return;
      }
      case Opcode::Rotl: case Opcode::Rotr: {
        Type t = int_type(false, true);
        remember(b_.binary(opc, get(t), get(t)));
        return;
      }
      case Opcode::DivU: case Opcode::DivS: case Opcode::RemU: case Opcode::RemS: {
        Type t = int_type(false, true);
        Value divisor = get(t);
        if (!opts_.division_traps) {
          // (x & signed_max) | 1: positive and non-zero, so neither /0 nor INT_MIN/-1.
          uint32_t bits = type_bits(t);
          uint64_t lo = bits >= 64 ? ~0ULL : low_mask(bits - 1);
          uint64_t hi = bits == 128 ? ~0ULL >> 1 : 0;
          if (bits == 64) lo = ~0ULL >> 1;
          divisor = remember(b_.or_(remember(b_.and_(divisor, remember(b_.constant(t, lo, hi)))),
                                    remember(b_.constant(t, 1))));
        }
        remember(b_.binary(opc, get(t), divisor));
        return;
      }
      case Opcode::Not: case Opcode::Neg: case Opcode::Abs:
        if (lanes) {
          remember(b_.unary(opc, get(Type::V128), pick(kIntLanes)));
        } else {
          remember(b_.unary(opc, get(int_type(true, true))));
        }
        return;
      case Opcode::Cmp: {
        auto pred = static_cast<CmpPred>(range(0, 9));
        if (lanes) {
          remember(b_.cmp(pred, get(Type::V128), get(Type::V128), pick(kIntLanes)));
        } else {
          Type t = int_type(true, true);
          remember(b_.cmp(pred, get(t), get(t)));
        }
        return;
      }
      case Opcode::Select: {
        Type t = any_type();
        Value c = get(Type::I1);
        Value x = get(t);
        remember(b_.select(c, x, get(t)));
        return;
      }
      case Opcode::ZExt: case Opcode::SExt: case Opcode::Trunc: {
        Type a = int_type(true, true), c = int_type(true, true);
        while (a == c) c = int_type(true, true);
        if ((opc == Opcode::Trunc) == (type_bits(a) < type_bits(c))) std::swap(a, c);  // a is the source
        Value v = get(a);
        remember(opc == Opcode::ZExt ? b_.zext(v, c) : opc == Opcode::SExt ? b_.sext(v, c) : b_.trunc(v, c));
        return;
      }
      case Opcode::Bitcast: {
        Type from = any_type();
        if (from == Type::I1) from = Type::I8;
        std::vector<Type> to;
        for (Type t : kValueTypes)
          if (t != Type::I1 && type_bits(t) == type_bits(from)) to.push_back(t);
        remember(b_.bitcast(get(from), pick(to)));
        return;
      }
      case Opcode::Ctz: case Opcode::Clz: case Opcode::Popcount:
        remember(b_.unary(opc, get(int_type(false, true))));
        return;
      case Opcode::Bswap:
        remember(b_.unary(opc, get(pick({Type::I16, Type::I32, Type::I64, Type::I128}))));
        return;
      case Opcode::Parity: remember(b_.parity(get(int_type(true, true)))); return;
      case Opcode::AddCarry: case Opcode::AddOverflow: case Opcode::SubBorrow: case Opcode::SubOverflow: {
        Type t = int_type(false, true);
        Value x = get(t), y = get(t), c = get(Type::I1);
        remember(opc == Opcode::AddCarry      ? b_.add_carry(x, y, c)
                 : opc == Opcode::AddOverflow ? b_.add_overflow(x, y, c)
                 : opc == Opcode::SubBorrow   ? b_.sub_borrow(x, y, c)
                                              : b_.sub_overflow(x, y, c));
        return;
      }
      case Opcode::FAdd: case Opcode::FSub: case Opcode::FMul: case Opcode::FDiv: case Opcode::FMin: case Opcode::FMax:
        if (lanes) {
          remember(b_.farith(opc, get(Type::V128), get(Type::V128), rounding(), pick({Lane::F32, Lane::F64})));
        } else {
          Type t = float_type();
          remember(b_.farith(opc, get(t), get(t), rounding()));
        }
        return;
      case Opcode::FSqrt:
        if (lanes) {
          remember(b_.fsqrt(get(Type::V128), rounding(), pick({Lane::F32, Lane::F64})));
        } else {
          remember(b_.fsqrt(get(float_type()), rounding()));
        }
        return;
      case Opcode::FCmp: {
        auto pred = static_cast<FCmpPred>(range(0, 7));
        if (lanes) {
          remember(b_.fcmp(pred, get(Type::V128), get(Type::V128), pick({Lane::F32, Lane::F64})));
        } else {
          Type t = float_type();
          remember(b_.fcmp(pred, get(t), get(t)));
        }
        return;
      }
      case Opcode::FCvt: {
        Type from = float_type();
        remember(b_.fcvt(get(from), from == Type::F32 ? Type::F64 : Type::F32, rounding()));
        return;
      }
      case Opcode::FRound: remember(b_.fround(get(float_type()), rounding())); return;
      case Opcode::SIToFP:
        if (lanes) {
          remember(b_.sitofp(get(Type::V128), Type::V128, rounding(), Lane::I32));
        } else {
          remember(b_.sitofp(get(pick({Type::I32, Type::I64})), float_type(), rounding()));
        }
        return;
      case Opcode::FPToSI:
        if (lanes) {
          remember(b_.fptosi(get(Type::V128), Type::V128, rounding(), Lane::F32));
        } else {
          remember(b_.fptosi(get(float_type()), pick({Type::I32, Type::I64}), rounding()));
        }
        return;
      case Opcode::VExtract: {
        Lane l = pick(kAllLanes);
        remember(b_.vextract(l, get(Type::V128), static_cast<uint32_t>(range(0, lane_count(l) - 1))));
        return;
      }
      case Opcode::VInsert: {
        Lane l = pick(kAllLanes);
        Value v = get(Type::V128);
        remember(b_.vinsert(l, v, get(lane_type(l)), static_cast<uint32_t>(range(0, lane_count(l) - 1))));
        return;
      }
      case Opcode::VSplat: {
        Lane l = pick(kAllLanes);
        remember(b_.vsplat(l, get(lane_type(l))));
        return;
      }
      case Opcode::VShuffle: {
        std::array<uint8_t, 16> mask{};
        for (auto& m : mask) m = chance(10) ? 0x80 : static_cast<uint8_t>(range(0, 31));
        Value x = get(Type::V128);
        remember(b_.vshuffle(x, get(Type::V128), mask));
        return;
      }
      case Opcode::VPshufb: {
        Value x = get(Type::V128);
        remember(b_.vpshufb(x, get(Type::V128)));
        return;
      }
      case Opcode::VPackSS: case Opcode::VPackUS: {
        Lane l = pick({Lane::I16, Lane::I32});
        Value x = get(Type::V128), y = get(Type::V128);
        remember(opc == Opcode::VPackSS ? b_.vpack_ss(l, x, y) : b_.vpack_us(l, x, y));
        return;
      }
      case Opcode::VMovmsk: remember(b_.vmovmsk(pick(kAllLanes), get(Type::V128))); return;
      case Opcode::VMulAdd: {
        Value x = get(Type::V128);
        remember(b_.vmuladd(x, get(Type::V128)));
        return;
      }
      case Opcode::VSad: {
        Value x = get(Type::V128);
        remember(b_.vsad(x, get(Type::V128)));
        return;
      }
      case Opcode::AtomicCmpxchg: {
        Type t = pick({Type::I8, Type::I16, Type::I32, Type::I64, Type::I128});
        Value a = aligned_address(), e = get(t), d = get(t);
        remember(b_.atomic_cmpxchg(a, e, d));
        return;
      }
      case Opcode::AtomicRmw: {
        Type t = pick({Type::I8, Type::I16, Type::I32, Type::I64});
        Value a = aligned_address();
        remember(b_.atomic_rmw(static_cast<RmwOp>(range(0, 5)), a, get(t)));
        return;
      }
      case Opcode::Fence: b_.fence(); return;
      case Opcode::Fill: {
        // Mostly short runs; sometimes a random count, which the page end limits.
        Type t = pick({Type::I8, Type::I16, Type::I32, Type::I64});
        Value a = address();
        Value n = chance(75) ? remember(b_.i64(range(0, 40))) : get(Type::I64);
        remember(b_.fill(a, get(t), n));
        return;
      }
      case Opcode::Copy: {
        // Source and destination in the same window: they often overlap,
        // and some sources are 1..15 bytes below the destination (each
        // element then reads bytes the ones before it wrote).
        uint32_t bits = pick({8u, 16u, 32u, 64u});
        Value d = address();
        Value s = chance(30) ? remember(b_.sub(d, remember(b_.i64(range(1, 15))))) : address();
        Value n = chance(75) ? remember(b_.i64(range(0, 40))) : get(Type::I64);
        remember(b_.copy(d, s, n, bits));
        return;
      }
      case Opcode::TrapIf: {
        // Every reason but memory_fault, which only a faulting access produces.
        auto reason = static_cast<TrapReason>(range(0, static_cast<uint64_t>(TrapReason::GeneralProtection)));
        if (reason == TrapReason::MemoryFault) reason = TrapReason::GeneralProtection;
        b_.trap_if(get(Type::I1), reason);
        return;
      }
      case Opcode::ExitIf: b_.exit_if(get(Type::I1), code_addr()); return;
      case Opcode::CallHelper: {
        auto h = static_cast<Helper>(range(0, kNumHelpers - 1));
        std::array<Value, 3> a{};
        for (int i = 0; i < helper_info(h).nargs; ++i) a[static_cast<size_t>(i)] = get(Type::I64);
        switch (helper_info(h).nargs) {
          case 0: remember(b_.call_helper(h)); break;
          case 1: remember(b_.call_helper(h, {a[0]})); break;
          case 2: remember(b_.call_helper(h, {a[0], a[1]})); break;
          default: remember(b_.call_helper(h, {a[0], a[1], a[2]})); break;
        }
        return;
      }
    }
  }

  // ---- terminator
  GuestAddr code_addr() { return opts_.start_pc + range(0, 0x2000) - 0x1000; }

  std::string message() {
    // Printable text plus the characters the text form must escape.
    static constexpr std::string_view kChars = "abcxyz 019;%:,{}[]\"\\\n\t\x01\x7f\xff\xc3\xa9";
    std::string m;
    size_t n = range(0, 3) == 0 ? 0 : range(1, 24);
    for (size_t i = 0; i < n; ++i) m += kChars[range(0, kChars.size() - 1)];
    return m;
  }

  void gen_terminator() {
    GuestAddr next = opts_.start_pc + block_.guest_len;
    std::vector<TermKind> kinds = {TermKind::Jump, TermKind::Branch,  TermKind::IndirectJump, TermKind::Ret,
                                   TermKind::Call, TermKind::Syscall, TermKind::Exit};
    if (opts_.trap_terminators) kinds.push_back(TermKind::Trap);
    switch (pick(kinds)) {
      case TermKind::Jump: b_.jump(code_addr()); break;
      case TermKind::Branch: b_.branch(get(Type::I1), code_addr(), next); break;
      case TermKind::IndirectJump: b_.indirect_jump(get(Type::I64)); break;
      case TermKind::Ret: b_.ret(get(Type::I64)); break;
      case TermKind::Call:
        if (chance(50)) {
          b_.call(code_addr(), next);
        } else {
          b_.call_indirect(get(Type::I64), next);
        }
        break;
      case TermKind::Syscall: b_.syscall(next); break;
      case TermKind::Exit: b_.exit(next); break;
      case TermKind::Trap: {
        TrapReason r = pick({TrapReason::InvalidOpcode, TrapReason::Unsupported, TrapReason::DivideError,
                             TrapReason::Breakpoint, TrapReason::Halt, TrapReason::Interrupt,
                             TrapReason::GeneralProtection});
        uint8_t vector = r == TrapReason::Interrupt ? static_cast<uint8_t>(range(0, 255)) : 0;
        b_.trap(r, pc_, message(), vector);
        break;
      }
      case TermKind::None: break;
    }
  }

  // Spreads value ids out (keeping definition order) to mimic blocks after DCE.
  void renumber() {
    std::vector<ValueId> map(block_.value_count(), kNoValue);
    ValueId next = static_cast<ValueId>(range(0, 3));
    for (Op& op : block_.ops) {
      if (op.result == kNoValue) continue;
      map[op.result] = next;
      op.result = next;
      next += static_cast<ValueId>(range(1, 4));
    }
    auto remap = [&](ValueId& v) {
      if (v != kNoValue) v = map[v];
    };
    for (Op& op : block_.ops)
      for (size_t i = 0; i < op.nargs; ++i) remap(op.args[i]);
    remap(block_.term.value);
  }
};

}  // namespace

IRBlock random_block(std::mt19937_64& rng, const RandomBlockOptions& options) {
  return Generator(rng, options).run();
}

namespace {
std::optional<uint64_t> env_number(const char* name) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return std::nullopt;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 0);
  if (*end != '\0') return std::nullopt;
  return v;
}
}  // namespace

uint64_t test_seed(uint64_t default_seed) { return env_number("VM_TEST_SEED").value_or(default_seed); }

uint32_t test_scale() {
  uint64_t s = env_number("VM_TEST_SCALE").value_or(1);
  return static_cast<uint32_t>(std::clamp<uint64_t>(s, 1, 1u << 20));
}

}  // namespace vm::ir::testing
