// Flags and conditions: setcc, lahf/sahf, pushf/popf, clc/stc/cmc/cld/std.
//
// The guest state keeps each arithmetic flag as its own byte, so an
// RFLAGS image is assembled only where an instruction needs one: bit 1 and
// IF are always set, TF/AC/ID and the system bits read as 0 and are
// ignored when popped.
#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

struct FlagBit {
  X86Reg reg;
  unsigned bit;
};
constexpr FlagBit kStatusFlags[] = {{X86Reg::Cf, core::kFlagBitCf}, {X86Reg::Pf, core::kFlagBitPf},
                                    {X86Reg::Af, core::kFlagBitAf}, {X86Reg::Zf, core::kFlagBitZf},
                                    {X86Reg::Sf, core::kFlagBitSf}};

// RFLAGS image at type t from the flag registers (OF and DF only for pushf).
Value flags_image(Lifter& l, Type t, bool with_of_df) {
  Value v = l.c(t, core::kDefaultRflags);
  auto add = [&](X86Reg reg, unsigned bit) {
    v = l.b.or_(v, l.b.shl(l.b.zext(l.flag(reg), t), l.c(t, bit)));
  };
  for (auto [reg, bit] : kStatusFlags) add(reg, bit);
  if (with_of_df) {
    add(X86Reg::Df, core::kFlagBitDf);
    add(X86Reg::Of, core::kFlagBitOf);
  }
  return v;
}

void load_flags(Lifter& l, Value v, bool with_of_df) {
  for (auto [reg, bit] : kStatusFlags) l.set_flag(reg, l.bit(v, l.c(v.type, bit)));
  if (with_of_df) {
    l.set_flag(X86Reg::Df, l.bit(v, l.c(v.type, core::kFlagBitDf)));
    l.set_flag(X86Reg::Of, l.bit(v, l.c(v.type, core::kFlagBitOf)));
  }
}

LiftStatus lift_setcc(Lifter& l, int) {
  l.write(0, l.b.zext(l.cond(l.in.zi.opcode & 0xf), Type::I8));
  return LiftStatus::Continue;
}

LiftStatus lift_lahf(Lifter& l, int) {
  l.set_state(X86Reg::Rax, flags_image(l, Type::I8, false), 1);
  return LiftStatus::Continue;
}

LiftStatus lift_sahf(Lifter& l, int) {
  load_flags(l, l.b.get_reg(X86Reg::Rax, Type::I8, 1), false);
  return LiftStatus::Continue;
}

LiftStatus lift_pushf(Lifter& l, int) {
  Type t = *ir::int_type(l.opsize());
  l.set_gpr(4, l.push_value(flags_image(l, t, true)));
  return LiftStatus::Continue;
}

LiftStatus lift_popf(Lifter& l, int) {
  Type t = *ir::int_type(l.opsize());
  Value rsp = l.gpr(4, Type::I64);
  Value v = l.b.load(t, rsp);
  load_flags(l, v, true);
  l.set_gpr(4, l.b.add(rsp, l.c(Type::I64, ir::type_bytes(t))));
  return LiftStatus::Continue;
}

enum FlagOp { kClc, kStc, kCmc, kCld, kStd };

LiftStatus lift_flag_op(Lifter& l, int op) {
  switch (op) {
    case kClc: l.set_flag(X86Reg::Cf, l.b.i1(false)); break;
    case kStc: l.set_flag(X86Reg::Cf, l.b.i1(true)); break;
    case kCmc: l.set_flag(X86Reg::Cf, l.b.xor_(l.flag(X86Reg::Cf), l.b.i1(true))); break;
    case kCld: l.set_flag(X86Reg::Df, l.b.i1(false)); break;
    default: l.set_flag(X86Reg::Df, l.b.i1(true)); break;
  }
  return LiftStatus::Continue;
}

#define SETCC(cc) {ZYDIS_MNEMONIC_SET##cc, InsnClass::Flags, lift_setcc, 0, "r/m8"}

constexpr LiftEntry kEntries[] = {
    SETCC(O), SETCC(NO), SETCC(B), SETCC(NB), SETCC(Z), SETCC(NZ), SETCC(BE), SETCC(NBE),
    SETCC(S), SETCC(NS), SETCC(P), SETCC(NP), SETCC(L), SETCC(NL), SETCC(LE), SETCC(NLE),
    {ZYDIS_MNEMONIC_LAHF, InsnClass::Flags, lift_lahf, 0, "ah := SF ZF 0 AF 0 PF 1 CF"},
    {ZYDIS_MNEMONIC_SAHF, InsnClass::Flags, lift_sahf, 0, "SF ZF AF PF CF := ah"},
    {ZYDIS_MNEMONIC_PUSHFQ, InsnClass::Flags, lift_pushf, 0, "pushes CF PF AF ZF SF DF OF | 0x202"},
    {ZYDIS_MNEMONIC_PUSHF, InsnClass::Flags, lift_pushf, 0, "16-bit form"},
    {ZYDIS_MNEMONIC_POPFQ, InsnClass::Flags, lift_popf, 0, "loads CF PF AF ZF SF DF OF; other bits ignored"},
    {ZYDIS_MNEMONIC_POPF, InsnClass::Flags, lift_popf, 0, "16-bit form"},
    {ZYDIS_MNEMONIC_CLC, InsnClass::Flags, lift_flag_op, kClc, ""},
    {ZYDIS_MNEMONIC_STC, InsnClass::Flags, lift_flag_op, kStc, ""},
    {ZYDIS_MNEMONIC_CMC, InsnClass::Flags, lift_flag_op, kCmc, ""},
    {ZYDIS_MNEMONIC_CLD, InsnClass::Flags, lift_flag_op, kCld, ""},
    {ZYDIS_MNEMONIC_STD, InsnClass::Flags, lift_flag_op, kStd, ""},
};
#undef SETCC

}  // namespace

std::span<const LiftEntry> flags_entries() { return kEntries; }

}  // namespace vm::translate::x86
