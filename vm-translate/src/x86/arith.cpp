// Integer arithmetic and logic: the two-operand ALU group, inc/dec/neg/not,
// mul/imul, div/idiv. Flags the SDM leaves undefined (after mul/imul: SF ZF
// AF PF; after div/idiv: all) are left unchanged.
#include <utility>
#include <vector>

#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::CmpPred;
using ir::Opcode;

enum Alu { kAdd, kAdc, kSub, kSbb, kCmp, kAnd, kOr, kXor, kTest };

// lock-prefixed read-modify-writes without a matching atomic_rmw (neg, adc,
// sbb): load, compute, atomic_cmpxchg against the loaded value. If another
// writer got in between, nothing is written back or set and the block
// branches to the same instruction to retry; otherwise it continues.
// `compute` returns the new value and queues the flag writes through `set`.
template <class Compute>
LiftStatus lift_locked_cas(Lifter& l, Compute compute) {
  if (!l.is_mem(0)) return LiftStatus::Unsupported;
  Value addr = l.address(0);
  Value old = l.b.load(l.type(0), addr);
  std::vector<std::pair<X86Reg, Value>> flags;
  Value r = compute(old, [&](X86Reg f, Value v) { flags.emplace_back(f, v); });
  Value prev = l.b.atomic_cmpxchg(addr, old, r);
  Value ok = l.b.cmp(CmpPred::Eq, prev, old);
  for (auto& [f, v] : flags) l.set_flag(f, l.b.select(ok, v, l.flag(f)));
  l.b.branch(ok, core::GuestAddr(l.next_pc()), core::GuestAddr(l.in.pc));
  return LiftStatus::EndBlock;
}

template <class Set>
void queue_sub_flags(Lifter& l, Set set, Value a, Value b, Value bin, Value r) {
  set(X86Reg::Cf, l.b.sub_borrow(a, b, bin));
  set(X86Reg::Of, l.b.sub_overflow(a, b, bin));
  set(X86Reg::Af, aux_carry(l, a, b, r));
  set(X86Reg::Zf, l.is_zero(r));
  set(X86Reg::Sf, l.msb(r));
  set(X86Reg::Pf, l.b.parity(r.type == Type::I8 ? r : l.b.trunc(r, Type::I8)));
}

LiftStatus lift_alu(Lifter& l, int kind) {
  Type t = l.type(0);
  Value bsrc = l.read_as(1, t);
  Value zero = l.b.i1(false);
  if (l.has_lock()) {
    if (!l.is_mem(0)) return LiftStatus::Unsupported;
    static constexpr ir::RmwOp kRmw[] = {ir::RmwOp::Add, ir::RmwOp::Add, ir::RmwOp::Sub, ir::RmwOp::Sub,
                                         ir::RmwOp::Sub, ir::RmwOp::And, ir::RmwOp::Or,  ir::RmwOp::Xor};
    if (kind == kCmp || kind == kTest) return LiftStatus::Unsupported;
    if (kind == kAdc || kind == kSbb) {
      Value cin = l.flag(X86Reg::Cf);
      return lift_locked_cas(l, [&](Value mem_old, auto set) {
        Value wide_c = l.b.zext(cin, t);
        if (kind == kAdc) {
          Value r = l.b.add(l.b.add(mem_old, bsrc), wide_c);
          set(X86Reg::Cf, l.b.add_carry(mem_old, bsrc, cin));
          set(X86Reg::Of, l.b.add_overflow(mem_old, bsrc, cin));
          set(X86Reg::Af, aux_carry(l, mem_old, bsrc, r));
          set(X86Reg::Zf, l.is_zero(r));
          set(X86Reg::Sf, l.msb(r));
          set(X86Reg::Pf, l.b.parity(r.type == Type::I8 ? r : l.b.trunc(r, Type::I8)));
          return r;
        }
        Value r = l.b.sub(l.b.sub(mem_old, bsrc), wide_c);
        queue_sub_flags(l, set, mem_old, bsrc, cin, r);
        return r;
      });
    }
    Value old = l.b.atomic_rmw(kRmw[kind], l.address(0), bsrc);
    switch (kind) {
      case kAdd: flags_add(l, old, bsrc, zero, l.b.add(old, bsrc)); break;
      case kSub: flags_sub(l, old, bsrc, zero, l.b.sub(old, bsrc)); break;
      case kAnd: flags_logic(l, l.b.and_(old, bsrc)); break;
      case kOr: flags_logic(l, l.b.or_(old, bsrc)); break;
      default: flags_logic(l, l.b.xor_(old, bsrc)); break;
    }
    return LiftStatus::Continue;
  }
  Value a = l.read(0);
  Value r;
  switch (kind) {
    case kAdd:
    case kAdc: {
      Value cin = kind == kAdc ? l.flag(X86Reg::Cf) : zero;
      r = l.b.add(a, bsrc);
      if (kind == kAdc) r = l.b.add(r, l.b.zext(cin, t));
      flags_add(l, a, bsrc, cin, r);
      break;
    }
    case kSub:
    case kSbb:
    case kCmp: {
      Value bin = kind == kSbb ? l.flag(X86Reg::Cf) : zero;
      r = l.b.sub(a, bsrc);
      if (kind == kSbb) r = l.b.sub(r, l.b.zext(bin, t));
      flags_sub(l, a, bsrc, bin, r);
      break;
    }
    case kAnd:
    case kTest: r = l.b.and_(a, bsrc); flags_logic(l, r); break;
    case kOr: r = l.b.or_(a, bsrc); flags_logic(l, r); break;
    default: r = l.b.xor_(a, bsrc); flags_logic(l, r); break;
  }
  if (kind != kCmp && kind != kTest) l.write(0, r);
  return LiftStatus::Continue;
}

enum Unary { kInc, kDec, kNeg, kNot };

LiftStatus lift_unary(Lifter& l, int kind) {
  Type t = l.type(0);
  Value one = l.c(t, 1);
  Value zero = l.b.i1(false);
  Value a;
  if (l.has_lock() && kind == kNeg) {
    return lift_locked_cas(l, [&](Value mem_old, auto set) {
      Value r = l.b.neg(mem_old);
      queue_sub_flags(l, set, l.c(t, 0), mem_old, zero, r);
      return r;
    });
  }
  if (l.has_lock()) {
    if (!l.is_mem(0)) return LiftStatus::Unsupported;
    static constexpr ir::RmwOp kRmw[] = {ir::RmwOp::Add, ir::RmwOp::Sub, ir::RmwOp::Xor, ir::RmwOp::Xor};
    a = l.b.atomic_rmw(kRmw[kind], l.address(0), kind == kNot ? l.c(t, ~uint64_t{0}) : one);
  } else {
    a = l.read(0);
  }
  Value r;
  switch (kind) {
    case kInc:
      r = l.b.add(a, one);
      l.set_flag(X86Reg::Of, l.b.add_overflow(a, one, zero));
      l.set_flag(X86Reg::Af, aux_carry(l, a, one, r));
      set_szp(l, r);
      break;
    case kDec:
      r = l.b.sub(a, one);
      l.set_flag(X86Reg::Of, l.b.sub_overflow(a, one, zero));
      l.set_flag(X86Reg::Af, aux_carry(l, a, one, r));
      set_szp(l, r);
      break;
    case kNeg: {
      Value z = l.c(t, 0);
      r = l.b.neg(a);
      flags_sub(l, z, a, zero, r);
      break;
    }
    default: r = l.b.not_(a); break;
  }
  if (!l.has_lock()) l.write(0, r);
  return LiftStatus::Continue;
}

// The accumulator pair of a widening multiply or a divide: (low, high) =
// (al, ah) for bytes, else (rax, rdx) at the operand width.
struct AccPair {
  Value lo, hi;
};

AccPair read_acc(Lifter& l, Type t) {
  if (t == Type::I8) return {l.gpr(0, Type::I8), l.b.get_reg(X86Reg::Rax, Type::I8, 1)};
  return {l.gpr(0, t), l.gpr(2, t)};
}

void write_acc(Lifter& l, Value lo, Value hi) {
  if (lo.type == Type::I8) {
    l.set_state(X86Reg::Rax, lo);
    l.set_state(X86Reg::Rax, hi, 1);
    return;
  }
  l.set_gpr(0, lo);
  l.set_gpr(2, hi);
}

enum MulKind { kMul, kImul };

LiftStatus lift_mul(Lifter& l, int kind) {
  if (kind == kImul && l.in.zi.operand_count_visible >= 2) {
    // imul r, r/m [, imm]: truncated product; CF = OF = the product does not fit.
    Type t = l.type(0);
    Value a = l.in.zi.operand_count_visible == 3 ? l.read_as(1, t) : l.read(0);
    Value b = l.in.zi.operand_count_visible == 3 ? l.read_as(2, t) : l.read_as(1, t);
    Value lo = l.b.mul(a, b);
    Value hi = l.b.binary(Opcode::MulHiS, a, b);
    Value sign = l.b.ashr(lo, l.c(t, ir::type_bits(t) - 1));
    Value ovf = l.b.cmp(CmpPred::Ne, hi, sign);
    l.write(0, lo);
    l.set_flag(X86Reg::Cf, ovf);
    l.set_flag(X86Reg::Of, ovf);
    return LiftStatus::Continue;
  }
  Type t = l.type(0);
  Value src = l.read(0);
  Value a = l.gpr(0, t);
  Value lo = l.b.mul(a, src);
  Value hi = l.b.binary(kind == kMul ? Opcode::MulHiU : Opcode::MulHiS, a, src);
  Value ovf = kind == kMul ? l.to_i1(hi) : l.b.cmp(CmpPred::Ne, hi, l.b.ashr(lo, l.c(t, ir::type_bits(t) - 1)));
  write_acc(l, lo, hi);
  l.set_flag(X86Reg::Cf, ovf);
  l.set_flag(X86Reg::Of, ovf);
  return LiftStatus::Continue;
}

enum DivKind { kDiv, kIdiv };

// The dividend is hi:lo at twice the operand width. A quotient that does not
// fit the operand raises #DE like a zero divisor: both are expressed by
// dividing by zero, which the IR defines to trap with divide_error.
LiftStatus lift_div(Lifter& l, int kind) {
  Type t = l.type(0);
  uint32_t w = ir::type_bits(t);
  Type wide = *ir::int_type(2 * w);
  Value src = l.read(0);
  AccPair acc = read_acc(l, t);
  Value dividend = l.b.or_(l.b.shl(l.b.zext(acc.hi, wide), l.c(wide, w)), l.b.zext(acc.lo, wide));
  Value q, r;
  if (kind == kDiv) {
    // Unsigned quotient overflow <=> hi >= divisor (also covers divisor 0).
    Value bad = l.b.cmp(CmpPred::Uge, acc.hi, src);
    Value d = l.b.select(bad, l.c(wide, 0), l.b.zext(src, wide));
    q = l.b.binary(Opcode::DivU, dividend, d);
    r = l.b.binary(Opcode::RemU, dividend, d);
  } else {
    // A probe division with a safe divisor tells whether the quotient fits.
    Value d = l.b.sext(src, wide);
    Value zero_div = l.is_zero(src);
    Value minus_one = l.b.cmp(CmpPred::Eq, src, l.c(t, ~uint64_t{0}));
    Value safe = l.b.select(l.b.or_(zero_div, minus_one), l.c(wide, 1), d);
    Value probe = l.b.binary(Opcode::DivS, dividend, safe);
    probe = l.b.select(minus_one, l.b.neg(dividend), probe);
    Value fits = l.b.cmp(CmpPred::Eq, l.b.sext(l.b.trunc(probe, t), wide), probe);
    Value bad = l.b.or_(zero_div, l.b.xor_(fits, l.b.i1(true)));
    Value dd = l.b.select(bad, l.c(wide, 0), d);
    q = l.b.binary(Opcode::DivS, dividend, dd);
    r = l.b.binary(Opcode::RemS, dividend, dd);
  }
  write_acc(l, l.b.trunc(q, t), l.b.trunc(r, t));
  return LiftStatus::Continue;
}

#define ALU(m, k, f) {ZYDIS_MNEMONIC_##m, InsnClass::Arith, lift_alu, k, f}
constexpr const char* kAluForms = "r/m, r/imm; r, r/m; al/ax/eax/rax, imm; lock with memory destination";

constexpr LiftEntry kEntries[] = {
    ALU(ADD, kAdd, kAluForms),
    ALU(ADC, kAdc, "r/m, r/imm; r, r/m; acc, imm; lock with memory (compare-and-swap, retried)"),
    ALU(SUB, kSub, kAluForms),
    ALU(SBB, kSbb, "r/m, r/imm; r, r/m; acc, imm; lock with memory (compare-and-swap, retried)"),
    ALU(CMP, kCmp, "r/m, r/imm; r, r/m; acc, imm"),
    ALU(AND, kAnd, kAluForms),
    ALU(OR, kOr, kAluForms),
    ALU(XOR, kXor, kAluForms),
    ALU(TEST, kTest, "r/m, r/imm; acc, imm"),
    {ZYDIS_MNEMONIC_INC, InsnClass::Arith, lift_unary, kInc, "r/m 8/16/32/64, lock with memory (CF preserved)"},
    {ZYDIS_MNEMONIC_DEC, InsnClass::Arith, lift_unary, kDec, "r/m 8/16/32/64, lock with memory (CF preserved)"},
    {ZYDIS_MNEMONIC_NEG, InsnClass::Arith, lift_unary, kNeg, "r/m 8/16/32/64; lock with memory (compare-and-swap, retried)"},
    {ZYDIS_MNEMONIC_NOT, InsnClass::Arith, lift_unary, kNot, "r/m 8/16/32/64, lock with memory"},
    {ZYDIS_MNEMONIC_MUL, InsnClass::Arith, lift_mul, kMul, "r/m 8/16/32/64 (SF ZF AF PF undefined: unchanged)"},
    {ZYDIS_MNEMONIC_IMUL, InsnClass::Arith, lift_mul, kImul, "r/m; r, r/m; r, r/m, imm (SF ZF AF PF undefined: unchanged)"},
    {ZYDIS_MNEMONIC_DIV, InsnClass::Arith, lift_div, kDiv, "r/m 8/16/32/64, #DE on zero or overflow (flags undefined: unchanged)"},
    {ZYDIS_MNEMONIC_IDIV, InsnClass::Arith, lift_div, kIdiv, "r/m 8/16/32/64, #DE on zero or overflow (flags undefined: unchanged)"},
};
#undef ALU

}  // namespace

std::span<const LiftEntry> arith_entries() { return kEntries; }

}  // namespace vm::translate::x86
