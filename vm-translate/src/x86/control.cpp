// Control flow: jcc, jmp, call, ret, loop/loope/loopne, jrcxz/jecxz. Every
// one of them ends the block; calls push the return address themselves and
// end in a Call terminator, returns in a Ret terminator carrying the target.
#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::CmpPred;
using core::GuestAddr;

uint64_t rel_target(Lifter& l, int i) { return l.next_pc() + l.op(i).imm.value.u; }

LiftStatus lift_jcc(Lifter& l, int) {
  unsigned cc = l.in.zi.opcode & 0xf;
  l.b.branch(l.cond(cc), GuestAddr(rel_target(l, 0)), GuestAddr(l.next_pc()));
  return LiftStatus::EndBlock;
}

LiftStatus lift_jmp(Lifter& l, int) {
  if (l.is_imm(0)) {
    l.b.jump(GuestAddr(rel_target(l, 0)));
    return LiftStatus::EndBlock;
  }
  if (!l.is_reg(0) && !l.is_mem(0)) return LiftStatus::Unsupported;  // far jumps
  if (l.bits(0) != 64) return LiftStatus::Unsupported;
  l.b.indirect_jump(l.read(0));
  return LiftStatus::EndBlock;
}

LiftStatus lift_call(Lifter& l, int) {
  if (!l.is_imm(0) && !l.is_reg(0) && !l.is_mem(0)) return LiftStatus::Unsupported;
  if (!l.is_imm(0) && l.bits(0) != 64) return LiftStatus::Unsupported;
  Value target = l.is_imm(0) ? Value{} : l.read(0);  // load (and fault) before the push
  l.set_gpr(4, l.push_value(l.c(Type::I64, l.next_pc())));
  if (l.is_imm(0)) {
    l.b.call(GuestAddr(rel_target(l, 0)), GuestAddr(l.next_pc()));
  } else {
    l.b.call_indirect(target, GuestAddr(l.next_pc()));
  }
  return LiftStatus::EndBlock;
}

LiftStatus lift_ret(Lifter& l, int) {
  if (l.opsize() != 64) return LiftStatus::Unsupported;
  Value rsp = l.gpr(4, Type::I64);
  Value target = l.b.load(Type::I64, rsp);
  uint64_t extra = l.in.zi.operand_count_visible > 0 && l.is_imm(0) ? l.op(0).imm.value.u : 0;
  l.set_gpr(4, l.b.add(rsp, l.c(Type::I64, 8 + extra)));
  l.b.ret(target);
  return LiftStatus::EndBlock;
}

enum LoopKind { kLoop, kLoope, kLoopne, kJrcxz };

// The counter is rcx, or ecx with an address-size override.
LiftStatus lift_loop(Lifter& l, int kind) {
  Type ct = l.in.zi.address_width == 32 ? Type::I32 : Type::I64;
  Value rcx = l.gpr(1, ct);
  Value cond;
  if (kind == kJrcxz) {
    cond = l.is_zero(rcx);
  } else {
    Value dec = l.b.sub(rcx, l.c(ct, 1));
    l.set_gpr(1, dec);
    cond = l.to_i1(dec);
    if (kind == kLoope) cond = l.b.and_(cond, l.flag(X86Reg::Zf));
    if (kind == kLoopne) cond = l.b.and_(cond, l.b.xor_(l.flag(X86Reg::Zf), l.b.i1(true)));
  }
  l.b.branch(cond, GuestAddr(rel_target(l, 0)), GuestAddr(l.next_pc()));
  return LiftStatus::EndBlock;
}

#define JCC(cc) {ZYDIS_MNEMONIC_J##cc, InsnClass::Control, lift_jcc, 0, "rel8, rel32"}

constexpr LiftEntry kEntries[] = {
    JCC(O), JCC(NO), JCC(B), JCC(NB), JCC(Z), JCC(NZ), JCC(BE), JCC(NBE),
    JCC(S), JCC(NS), JCC(P), JCC(NP), JCC(L), JCC(NL), JCC(LE), JCC(NLE),
    {ZYDIS_MNEMONIC_JMP, InsnClass::Control, lift_jmp, 0, "rel8, rel32, r/m64 (far: unsupported)"},
    {ZYDIS_MNEMONIC_CALL, InsnClass::Control, lift_call, 0, "rel32, r/m64 (far: unsupported)"},
    {ZYDIS_MNEMONIC_RET, InsnClass::Control, lift_ret, 0, "near, near imm16"},
    {ZYDIS_MNEMONIC_LOOP, InsnClass::Control, lift_loop, kLoop, "rel8 (rcx; ecx with 0x67)"},
    {ZYDIS_MNEMONIC_LOOPE, InsnClass::Control, lift_loop, kLoope, "rel8"},
    {ZYDIS_MNEMONIC_LOOPNE, InsnClass::Control, lift_loop, kLoopne, "rel8"},
    {ZYDIS_MNEMONIC_JRCXZ, InsnClass::Control, lift_loop, kJrcxz, "rel8"},
    {ZYDIS_MNEMONIC_JECXZ, InsnClass::Control, lift_loop, kJrcxz, "rel8"},
};
#undef JCC

}  // namespace

std::span<const LiftEntry> control_entries() { return kEntries; }

}  // namespace vm::translate::x86
