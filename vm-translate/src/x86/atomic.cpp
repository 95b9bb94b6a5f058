// Atomics: xadd, cmpxchg, cmpxchg8b, cmpxchg16b (the lock-prefixed ALU, inc/dec/not
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

// cmpxchg8b m64 / cmpxchg16b m128 (aux = 32 / 64, the half width):
// compare edx:eax / rdx:rax with the memory; equal: store ecx:ebx /
// rcx:rbx, else load it into the pair. Only cmpxchg16b requires 16-byte
// alignment (#GP). The pair is written only on a mismatch, so on success
// cmpxchg8b leaves the upper halves of rax and rdx alone.
LiftStatus lift_cmpxchg_pair(Lifter& l, int half_bits) {
  Type half = half_bits == 64 ? Type::I64 : Type::I32;
  Type whole = half_bits == 64 ? Type::I128 : Type::I64;
  Value addr = l.address(0);
  if (half_bits == 64) l.b.trap_if(l.to_i1(l.b.and_(addr, l.c(Type::I64, 15))), ir::TrapReason::GeneralProtection);
  auto pair = [&](unsigned hi, unsigned lo) {
    Value h = l.b.shl(l.b.zext(l.gpr(hi, half), whole), l.c(whole, half_bits));
    return l.b.or_(h, l.b.zext(l.gpr(lo, half), whole));
  };
  Value expected = pair(2, 0);
  Value desired = pair(1, 3);
  Value old = l.b.atomic_cmpxchg(addr, expected, desired);
  Value eq = l.b.cmp(CmpPred::Eq, old, expected);
  l.set_flag(X86Reg::Zf, eq);
  Value old_lo = l.b.trunc(old, half);
  Value old_hi = l.b.trunc(l.b.lshr(old, l.c(whole, half_bits)), half);
  if (half_bits == 32) {
    old_lo = l.b.zext(old_lo, Type::I64);
    old_hi = l.b.zext(old_hi, Type::I64);
  }
  l.set_gpr(0, l.b.select(eq, l.gpr(0, Type::I64), old_lo));
  l.set_gpr(2, l.b.select(eq, l.gpr(2, Type::I64), old_hi));
  return LiftStatus::Continue;
}

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_XADD, InsnClass::Atomic, lift_xadd, 0, "r/m, r (memory forms atomic, with or without lock)"},
    {ZYDIS_MNEMONIC_CMPXCHG, InsnClass::Atomic, lift_cmpxchg, 0, "r/m, r (memory forms atomic)"},
    {ZYDIS_MNEMONIC_CMPXCHG8B, InsnClass::Atomic, lift_cmpxchg_pair, 32, "m64 (edx:eax / ecx:ebx; rax, rdx kept on success; ZF only, other flags unchanged)"},
    {ZYDIS_MNEMONIC_CMPXCHG16B, InsnClass::Atomic, lift_cmpxchg_pair, 64, "m128 (misaligned: #GP, general_protection trap; ZF only, other flags unchanged)"},
};

}  // namespace

std::span<const LiftEntry> atomic_entries() { return kEntries; }

}  // namespace vm::translate::x86
