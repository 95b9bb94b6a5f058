// Atomics: xadd, cmpxchg, cmpxchg16b (the lock-prefixed ALU, inc/dec/not
// and bt* forms are lifted by their own classes through atomic_rmw; xchg
// with memory is in the data-movement class). Memory forms use the IR's
// atomic ops whether or not a lock prefix is present: without one the
// instruction is not required to be atomic, but being atomic is allowed.
#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::CmpPred;

LiftStatus lift_xadd(Lifter& l, int) {
  Value src = l.read(1);
  Value old = l.is_mem(0) ? l.b.atomic_rmw(ir::RmwOp::Add, l.address(0), src) : l.read(0);
  Value sum = l.b.add(old, src);
  // Register form: the sum wins when both operands name the same register.
  l.write(1, old);
  if (!l.is_mem(0)) l.write(0, sum);
  flags_add(l, old, src, l.b.i1(false), sum);
  return LiftStatus::Continue;
}

LiftStatus lift_cmpxchg(Lifter& l, int) {
  Type t = l.type(0);
  Value src = l.read(1);
  Value acc = l.gpr(0, t);
  Value old;
  if (l.is_mem(0)) {
    old = l.b.atomic_cmpxchg(l.address(0), acc, src);
  } else {
    old = l.read(0);
  }
  Value eq = l.b.cmp(CmpPred::Eq, old, acc);
  flags_sub(l, acc, old, l.b.i1(false), l.b.sub(acc, old));
  if (!l.is_mem(0)) l.write(0, l.b.select(eq, src, old));
  // The accumulator is written only on failure (so a 32-bit accumulator is
  // not zero-extended on success); with the accumulator as destination the
  // comparison always succeeds and only the destination write counts.
  if (!l.is_mem(0) && ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, l.op(0).reg.value) == ZYDIS_REGISTER_RAX)
    return LiftStatus::Continue;
  if (t == Type::I32) {
    Value rax = l.gpr(0, Type::I64);
    l.set_state(X86Reg::Rax, l.b.select(eq, rax, l.b.zext(old, Type::I64)));
  } else {
    l.set_state(X86Reg::Rax, l.b.select(eq, acc, old));
  }
  return LiftStatus::Continue;
}

// cmpxchg16b m128: compare rdx:rax with the memory; equal: store rcx:rbx,
// else load it into rdx:rax. The operand must be 16-byte aligned (#GP).
LiftStatus lift_cmpxchg16b(Lifter& l, int) {
  if (l.in.zi.operand_width != 64) return LiftStatus::Unsupported;  // cmpxchg8b: not in 64-bit code we support
  Value addr = l.address(0);
  auto pair = [&](unsigned hi, unsigned lo) {
    Value h = l.b.shl(l.b.zext(l.gpr(hi, Type::I64), Type::I128), l.c(Type::I128, 64));
    return l.b.or_(h, l.b.zext(l.gpr(lo, Type::I64), Type::I128));
  };
  Value expected = pair(2, 0);
  Value desired = pair(1, 3);
  // Misalignment is a #GP; dividing by zero is the IR's only conditional
  // trap, so a misaligned address is turned into an access of the highest
  // byte address, which no user-mode mapping covers.
  Value misaligned = l.to_i1(l.b.and_(addr, l.c(Type::I64, 15)));
  addr = l.b.select(misaligned, l.c(Type::I64, ~uint64_t{0}), addr);
  Value old = l.b.atomic_cmpxchg(addr, expected, desired);
  Value eq = l.b.cmp(CmpPred::Eq, old, expected);
  l.set_flag(X86Reg::Zf, eq);
  Value old_lo = l.b.trunc(old, Type::I64);
  Value old_hi = l.b.trunc(l.b.lshr(old, l.c(Type::I128, 64)), Type::I64);
  l.set_gpr(0, l.b.select(eq, l.gpr(0, Type::I64), old_lo));
  l.set_gpr(2, l.b.select(eq, l.gpr(2, Type::I64), old_hi));
  return LiftStatus::Continue;
}

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_XADD, InsnClass::Atomic, lift_xadd, 0, "r/m, r (memory forms atomic, with or without lock)"},
    {ZYDIS_MNEMONIC_CMPXCHG, InsnClass::Atomic, lift_cmpxchg, 0, "r/m, r (memory forms atomic)"},
    {ZYDIS_MNEMONIC_CMPXCHG16B, InsnClass::Atomic, lift_cmpxchg16b, 0, "m128 (misaligned: faults)"},
};

}  // namespace

std::span<const LiftEntry> atomic_entries() { return kEntries; }

}  // namespace vm::translate::x86
