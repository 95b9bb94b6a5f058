// Data movement: mov and its extending forms, cmovcc, xchg, bswap, lea,
// push/pop, enter/leave, xlat, the rax/rdx sign-extension family.
#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::CmpPred;

bool is_segment(const Lifter& l, int i) {
  return l.is_reg(i) && ZydisRegisterGetClass(l.op(i).reg.value) == ZYDIS_REGCLASS_SEGMENT;
}

LiftStatus lift_mov(Lifter& l, int) {
  if (is_segment(l, 0) || is_segment(l, 1)) return LiftStatus::Unsupported;
  if (l.is_reg(0) && ZydisRegisterGetClass(l.op(0).reg.value) > ZYDIS_REGCLASS_GPR64) return LiftStatus::Unsupported;
  if (l.is_reg(1) && ZydisRegisterGetClass(l.op(1).reg.value) > ZYDIS_REGCLASS_GPR64) return LiftStatus::Unsupported;
  l.write(0, l.read_as(1, l.type(0)));
  return LiftStatus::Continue;
}

enum ExtKind { kZero, kSign };

LiftStatus lift_extend(Lifter& l, int kind) {
  Value v = l.read(1);
  Type t = l.type(0);
  // movsxd with a 16-bit destination reads 32 bits and keeps the low 16.
  if (ir::type_bits(v.type) >= ir::type_bits(t)) v = l.b.zext_or_trunc(v, t);
  else v = kind == kSign ? l.b.sext(v, t) : l.b.zext(v, t);
  l.write(0, v);
  return LiftStatus::Continue;
}

LiftStatus lift_cmov(Lifter& l, int) {
  // The source is read (and may fault) whether or not the condition holds,
  // and a 32-bit destination is zero-extended either way.
  Value src = l.read(1);
  Value dst = l.read(0);
  l.write(0, l.b.select(l.cond(l.in.zi.opcode & 0xf), src, dst));
  return LiftStatus::Continue;
}

LiftStatus lift_xchg(Lifter& l, int) {
  if (l.is_mem(0) || l.is_mem(1)) {
    // xchg with memory is implicitly locked.
    int m = l.is_mem(0) ? 0 : 1;
    int r = 1 - m;
    Value old = l.b.atomic_rmw(ir::RmwOp::Xchg, l.address(m), l.read(r));
    l.write(r, old);
    return LiftStatus::Continue;
  }
  Value a = l.read(0), b = l.read(1);
  l.write(0, b);
  l.write(1, a);
  return LiftStatus::Continue;
}

LiftStatus lift_bswap(Lifter& l, int) {
  if (l.bits(0) == 16) return LiftStatus::Unsupported;  // undefined result per SDM
  l.write(0, l.b.unary(ir::Opcode::Bswap, l.read(0)));
  return LiftStatus::Continue;
}

LiftStatus lift_lea(Lifter& l, int) {
  l.write(0, l.b.zext_or_trunc(l.address(1), l.type(0)));
  return LiftStatus::Continue;
}

LiftStatus lift_push(Lifter& l, int) {
  if (is_segment(l, 0)) return LiftStatus::Unsupported;
  Type t = *ir::int_type(l.opsize());
  Value v = l.read_as(0, t);
  l.set_gpr(4, l.push_value(v));
  return LiftStatus::Continue;
}

LiftStatus lift_pop(Lifter& l, int) {
  if (is_segment(l, 0)) return LiftStatus::Unsupported;
  Type t = *ir::int_type(l.opsize());
  Value rsp = l.gpr(4, Type::I64);
  Value v = l.b.load(t, rsp);
  Value new_rsp = l.b.add(rsp, l.c(Type::I64, ir::type_bytes(t)));
  if (l.is_mem(0)) {
    // A memory destination based on rsp sees the already incremented rsp.
    Value addr = l.address(0);
    if (l.op(0).mem.base == ZYDIS_REGISTER_RSP) addr = l.b.add(addr, l.c(Type::I64, ir::type_bytes(t)));
    l.b.store(addr, v);
    l.set_gpr(4, new_rsp);
    return LiftStatus::Continue;
  }
  // pop rsp: the loaded value wins over the increment.
  l.set_gpr(4, new_rsp);
  l.write(0, v);
  return LiftStatus::Continue;
}

// leave: rsp := rbp, then pop rbp.
LiftStatus lift_leave(Lifter& l, int) {
  Type t = *ir::int_type(l.opsize());
  Value rbp = l.gpr(5, Type::I64);
  Value v = l.b.load(t, rbp);
  l.set_gpr(4, l.b.add(rbp, l.c(Type::I64, ir::type_bytes(t))));
  l.set_state(X86Reg::Rbp, v);
  return LiftStatus::Continue;
}

// enter size, level (64-bit operand size): push rbp; for a nesting level L
// copy L-1 frame pointers from the enclosing frame and push the new one;
// rbp := the new frame, rsp := below it minus `size`. The level is mod 32.
LiftStatus lift_enter(Lifter& l, int) {
  if (l.opsize() != 64) return LiftStatus::Unsupported;
  uint64_t size = l.op(0).imm.value.u & 0xffff;
  unsigned level = static_cast<unsigned>(l.op(1).imm.value.u & 31);
  Value rbp = l.gpr(5, Type::I64);
  Value frame = l.b.sub(l.gpr(4, Type::I64), l.c(Type::I64, 8));
  l.b.store(frame, rbp);
  Value top = frame;
  if (level > 0) {
    for (unsigned i = 1; i < level; ++i) {
      Value v = l.b.load(Type::I64, l.b.sub(rbp, l.c(Type::I64, 8 * i)));
      top = l.b.sub(top, l.c(Type::I64, 8));
      l.b.store(top, v);
    }
    top = l.b.sub(top, l.c(Type::I64, 8));
    l.b.store(top, frame);
  }
  l.set_gpr(5, frame);
  l.set_gpr(4, l.b.sub(top, l.c(Type::I64, size)));
  return LiftStatus::Continue;
}

// xlat: al := [rbx + zero-extended al]. Zydis reports the memory operand
// as [rbx] (with the segment and address size); al is added here.
LiftStatus lift_xlat(Lifter& l, int) {
  for (int i = 0; i < l.in.zi.operand_count; ++i) {
    if (!l.is_mem(i)) continue;
    if (l.op(i).mem.index != ZYDIS_REGISTER_NONE) return LiftStatus::Unsupported;
    Value addr = l.b.add(l.address(i), l.b.zext(l.gpr(0, Type::I8), Type::I64));
    bool seg_base = l.op(i).mem.segment == ZYDIS_REGISTER_FS || l.op(i).mem.segment == ZYDIS_REGISTER_GS;
    if (l.in.zi.address_width == 32 && !seg_base) addr = l.b.zext(l.b.trunc(addr, Type::I32), Type::I64);
    l.set_reg(ZYDIS_REGISTER_AL, l.b.load(Type::I8, addr));
    return LiftStatus::Continue;
  }
  return LiftStatus::Unsupported;
}

// cbw/cwde/cdqe: sign-extend the low half of the accumulator into all of it.
LiftStatus lift_widen_acc(Lifter& l, int) {
  uint32_t w = l.opsize();
  Type full = *ir::int_type(w), half = *ir::int_type(w / 2);
  Value v = l.b.sext(l.gpr(0, half), full);
  if (w == 64 || w == 32) l.set_gpr(0, v); else l.set_state(X86Reg::Rax, v);
  return LiftStatus::Continue;
}

// cwd/cdq/cqo: fill rdx with the accumulator's sign.
LiftStatus lift_sign_fill(Lifter& l, int) {
  Type t = *ir::int_type(l.opsize());
  Value a = l.gpr(0, t);
  Value fill = l.b.ashr(a, l.c(t, ir::type_bits(t) - 1));
  if (t == Type::I16) l.set_state(X86Reg::Rdx, fill); else l.set_gpr(2, fill);
  return LiftStatus::Continue;
}

#define CMOV(cc) {ZYDIS_MNEMONIC_CMOV##cc, InsnClass::Move, lift_cmov, 0, "r16/32/64, r/m"}

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_MOV, InsnClass::Move, lift_mov, 0, "r/m, r/imm; r, r/m; moffs forms (segment registers: unsupported)"},
    {ZYDIS_MNEMONIC_MOVZX, InsnClass::Move, lift_extend, kZero, "r16/32/64, r/m8; r32/64, r/m16"},
    {ZYDIS_MNEMONIC_MOVSX, InsnClass::Move, lift_extend, kSign, "r16/32/64, r/m8; r32/64, r/m16"},
    {ZYDIS_MNEMONIC_MOVSXD, InsnClass::Move, lift_extend, kSign, "r64, r/m32; r32, r/m32"},
    {ZYDIS_MNEMONIC_MOVNTI, InsnClass::Move, lift_mov, 0, "m32/64, r (non-temporal hint ignored)"},
    CMOV(O), CMOV(NO), CMOV(B), CMOV(NB), CMOV(Z), CMOV(NZ), CMOV(BE), CMOV(NBE),
    CMOV(S), CMOV(NS), CMOV(P), CMOV(NP), CMOV(L), CMOV(NL), CMOV(LE), CMOV(NLE),
    {ZYDIS_MNEMONIC_XCHG, InsnClass::Move, lift_xchg, 0, "r, r; r/m, r (memory forms are atomic)"},
    {ZYDIS_MNEMONIC_BSWAP, InsnClass::Move, lift_bswap, 0, "r32, r64 (r16: unsupported, undefined)"},
    {ZYDIS_MNEMONIC_LEA, InsnClass::Move, lift_lea, 0, "r16/32/64, m (incl. address-size override)"},
    {ZYDIS_MNEMONIC_PUSH, InsnClass::Move, lift_push, 0, "r/m16/64, imm8/16/32"},
    {ZYDIS_MNEMONIC_POP, InsnClass::Move, lift_pop, 0, "r/m16/64 (pop rsp and rsp-based memory per SDM)"},
    {ZYDIS_MNEMONIC_LEAVE, InsnClass::Move, lift_leave, 0, "rsp := rbp; pop rbp (16-bit form: bp)"},
    {ZYDIS_MNEMONIC_ENTER, InsnClass::Move, lift_enter, 0, "imm16, imm8 (any nesting level; 16-bit form unsupported)"},
    {ZYDIS_MNEMONIC_XLAT, InsnClass::Move, lift_xlat, 0, "al := [rbx + al] (segment override, address size)"},
    {ZYDIS_MNEMONIC_CBW, InsnClass::Move, lift_widen_acc, 0, "al -> ax"},
    {ZYDIS_MNEMONIC_CWDE, InsnClass::Move, lift_widen_acc, 0, "ax -> eax"},
    {ZYDIS_MNEMONIC_CDQE, InsnClass::Move, lift_widen_acc, 0, "eax -> rax"},
    {ZYDIS_MNEMONIC_CWD, InsnClass::Move, lift_sign_fill, 0, "ax -> dx:ax"},
    {ZYDIS_MNEMONIC_CDQ, InsnClass::Move, lift_sign_fill, 0, "eax -> edx:eax"},
    {ZYDIS_MNEMONIC_CQO, InsnClass::Move, lift_sign_fill, 0, "rax -> rdx:rax"},
};
#undef CMOV

}  // namespace

std::span<const LiftEntry> move_entries() { return kEntries; }

}  // namespace vm::translate::x86
