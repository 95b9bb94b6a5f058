// Shifts and rotates: shl/sal, shr, sar, rol, ror, rcl, rcr, shld, shrd.
//
// Count rules (SDM vol. 2B "SAL/SAR/SHL/SHR", "RCL/RCR/ROL/ROR",
// "SHLD", "SHRD"): the count is masked to 5 bits (6 for 64-bit operands);
// a masked count of 0 leaves every flag unchanged (the destination is still
// written, so a 32-bit destination is zero-extended). rcl/rcr on 8/16-bit
// operands rotate by count mod 9/17. CF receives the last bit shifted out;
// OF is defined only for a count of 1 (we compute the count-1 formula for
// every count, as QEMU does); AF is undefined and left unchanged.
#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::CmpPred;
using ir::Opcode;

enum Kind { kShl, kShr, kSar, kRol, kRor, kRcl, kRcr };

// Masked count as a value of type t.
Value masked_count(Lifter& l, int i, Type t) {
  uint32_t mask = ir::type_bits(t) == 64 ? 0x3f : 0x1f;
  Value cnt = l.b.and_(l.read_as(i, Type::I8), l.c(Type::I8, mask));
  return l.b.zext_or_trunc(cnt, t);
}

// Writes flag f = changed ? v : old.
void flag_if(Lifter& l, X86Reg f, Value changed, Value v) { l.set_flag(f, l.b.select(changed, v, l.flag(f))); }

LiftStatus lift_shift(Lifter& l, int kind) {
  Type t = l.type(0);
  uint32_t w = ir::type_bits(t);
  Value a = l.read(0);
  Value cnt = masked_count(l, 1, t);
  Value one = l.c(t, 1);
  Value wc = l.c(t, w);
  Value r, cf, of;
  Value changed = l.to_i1(cnt);
  bool sets_szp = true;
  switch (kind) {
    case kShl:
      r = l.b.shl(a, cnt);
      cf = l.bit(a, l.b.sub(wc, cnt));
      of = l.b.xor_(l.msb(r), cf);
      break;
    case kShr:
      r = l.b.lshr(a, cnt);
      cf = l.bit(a, l.b.sub(cnt, one));
      of = l.msb(a);
      break;
    case kSar:
      r = l.b.ashr(a, cnt);
      cf = l.to_i1(l.b.and_(l.b.ashr(a, l.b.sub(cnt, one)), one));
      of = l.b.i1(false);
      break;
    case kRol:
      sets_szp = false;
      r = l.b.binary(Opcode::Rotl, a, cnt);
      cf = l.to_i1(l.b.and_(r, one));
      of = l.b.xor_(l.msb(r), cf);
      break;
    case kRor:
      sets_szp = false;
      r = l.b.binary(Opcode::Rotr, a, cnt);
      cf = l.msb(r);
      of = l.b.xor_(cf, l.bit(r, l.c(t, w - 2)));
      break;
    case kRcl:
    case kRcr: {
      sets_szp = false;
      if (w < 32) cnt = l.b.binary(Opcode::RemU, cnt, l.c(t, w + 1));
      changed = l.to_i1(cnt);
      // Rotating the (w+1)-bit value CF:a, expressed with plain shifts whose
      // out-of-range counts give 0.
      Value cin = l.b.zext(l.flag(X86Reg::Cf), t);
      Value w1c = l.b.sub(l.c(t, w + 1), cnt);
      if (kind == kRcl) {
        r = l.b.or_(l.b.or_(l.b.shl(a, cnt), l.b.shl(cin, l.b.sub(cnt, one))), l.b.lshr(a, w1c));
        cf = l.bit(a, l.b.sub(wc, cnt));
        of = l.b.xor_(l.msb(r), cf);
      } else {
        r = l.b.or_(l.b.or_(l.b.lshr(a, cnt), l.b.shl(cin, l.b.sub(wc, cnt))), l.b.shl(a, w1c));
        cf = l.bit(a, l.b.sub(cnt, one));
        of = l.b.xor_(l.msb(r), l.bit(r, l.c(t, w - 2)));
      }
      break;
    }
    default: return LiftStatus::Unsupported;
  }
  l.write(0, r);
  flag_if(l, X86Reg::Cf, changed, cf);
  flag_if(l, X86Reg::Of, changed, of);
  if (sets_szp) {
    flag_if(l, X86Reg::Zf, changed, l.is_zero(r));
    flag_if(l, X86Reg::Sf, changed, l.msb(r));
    Value low = t == Type::I8 ? r : l.b.trunc(r, Type::I8);
    flag_if(l, X86Reg::Pf, changed, l.b.parity(low));
  }
  return LiftStatus::Continue;
}

enum DoubleKind { kShld, kShrd };

// shld/shrd: for 16-bit operands a count above 16 gives an undefined result
// (we produce the plain shift of the concatenation, with zeros beyond it).
LiftStatus lift_double_shift(Lifter& l, int kind) {
  Type t = l.type(0);
  uint32_t w = ir::type_bits(t);
  Value a = l.read(0);
  Value src = l.read(1);
  Value cnt = masked_count(l, 2, t);
  Value one = l.c(t, 1);
  Value wc = l.c(t, w);
  Value changed = l.to_i1(cnt);
  Value r, cf;
  if (kind == kShld) {
    r = l.b.or_(l.b.shl(a, cnt), l.b.lshr(src, l.b.sub(wc, cnt)));
    cf = l.bit(a, l.b.sub(wc, cnt));
  } else {
    r = l.b.or_(l.b.lshr(a, cnt), l.b.shl(src, l.b.sub(wc, cnt)));
    cf = l.bit(a, l.b.sub(cnt, one));
  }
  l.write(0, r);
  flag_if(l, X86Reg::Cf, changed, cf);
  flag_if(l, X86Reg::Of, changed, l.b.xor_(l.msb(r), l.msb(a)));
  flag_if(l, X86Reg::Zf, changed, l.is_zero(r));
  flag_if(l, X86Reg::Sf, changed, l.msb(r));
  Value low = t == Type::I8 ? r : l.b.trunc(r, Type::I8);
  flag_if(l, X86Reg::Pf, changed, l.b.parity(low));
  return LiftStatus::Continue;
}

constexpr const char* kShiftForms = "r/m 8/16/32/64 by 1, imm8, cl";

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_SHL, InsnClass::Shift, lift_shift, kShl, kShiftForms},
    {ZYDIS_MNEMONIC_SHR, InsnClass::Shift, lift_shift, kShr, kShiftForms},
    {ZYDIS_MNEMONIC_SAR, InsnClass::Shift, lift_shift, kSar, kShiftForms},
    {ZYDIS_MNEMONIC_ROL, InsnClass::Shift, lift_shift, kRol, kShiftForms},
    {ZYDIS_MNEMONIC_ROR, InsnClass::Shift, lift_shift, kRor, kShiftForms},
    {ZYDIS_MNEMONIC_RCL, InsnClass::Shift, lift_shift, kRcl, kShiftForms},
    {ZYDIS_MNEMONIC_RCR, InsnClass::Shift, lift_shift, kRcr, kShiftForms},
    {ZYDIS_MNEMONIC_SHLD, InsnClass::Shift, lift_double_shift, kShld, "r/m16/32/64, r, imm8/cl"},
    {ZYDIS_MNEMONIC_SHRD, InsnClass::Shift, lift_double_shift, kShrd, "r/m16/32/64, r, imm8/cl"},
};

}  // namespace

std::span<const LiftEntry> shift_entries() { return kEntries; }

}  // namespace vm::translate::x86
