// Bit operations: bt/bts/btr/btc, bsf/bsr, tzcnt/lzcnt, popcnt.
//
// bt* with a memory operand and a register offset address the bit string
// beyond the operand: the operand-sized word at ea + (offset >> log2(w)) *
// (w / 8) (offset signed). bt* leave OF SF AF PF undefined and ZF
// unchanged; we leave them all unchanged. bsf/bsr with a zero source set
// ZF and leave the whole destination register unchanged (what Intel and AMD
// hardware do; the SDM calls it undefined).
#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::CmpPred;
using ir::Opcode;

enum BtKind { kBt, kBts, kBtr, kBtc };

LiftStatus lift_bt(Lifter& l, int kind) {
  Type t = l.type(0);
  uint32_t w = ir::type_bits(t);
  uint32_t log2w = w == 16 ? 4 : w == 32 ? 5 : 6;
  Value offset = l.read_as(1, t);
  Value bitpos = l.b.and_(offset, l.c(t, w - 1));
  Value mask = l.b.shl(l.c(t, 1), bitpos);
  if (l.is_mem(0)) {
    Value addr = l.address(0);
    if (l.is_reg(1)) {
      Value wide = t == Type::I64 ? offset : l.b.sext(offset, Type::I64);
      Value word = l.b.ashr(wide, l.c(Type::I64, log2w));
      addr = l.b.add(addr, l.b.shl(word, l.c(Type::I64, log2w - 3)));
    }
    Value old;
    if (l.has_lock()) {
      if (kind == kBt) return LiftStatus::Unsupported;
      static constexpr ir::RmwOp kRmw[] = {ir::RmwOp::Or, ir::RmwOp::Or, ir::RmwOp::And, ir::RmwOp::Xor};
      Value operand = kind == kBtr ? l.b.not_(mask) : mask;
      old = l.b.atomic_rmw(kRmw[kind], addr, operand);
    } else {
      old = l.b.load(t, addr);
      if (kind == kBts) l.b.store(addr, l.b.or_(old, mask));
      if (kind == kBtr) l.b.store(addr, l.b.and_(old, l.b.not_(mask)));
      if (kind == kBtc) l.b.store(addr, l.b.xor_(old, mask));
    }
    l.set_flag(X86Reg::Cf, l.to_i1(l.b.and_(old, mask)));
    return LiftStatus::Continue;
  }
  if (l.has_lock()) return LiftStatus::Unsupported;
  Value old = l.read(0);
  if (kind == kBts) l.write(0, l.b.or_(old, mask));
  if (kind == kBtr) l.write(0, l.b.and_(old, l.b.not_(mask)));
  if (kind == kBtc) l.write(0, l.b.xor_(old, mask));
  l.set_flag(X86Reg::Cf, l.to_i1(l.b.and_(old, mask)));
  return LiftStatus::Continue;
}

enum ScanKind { kBsf, kBsr };

LiftStatus lift_bitscan(Lifter& l, int kind) {
  Type t = l.type(0);
  uint32_t w = ir::type_bits(t);
  Value src = l.read(1);
  Value zero = l.is_zero(src);
  Value idx = kind == kBsf ? l.b.unary(Opcode::Ctz, src)
                           : l.b.sub(l.c(t, w - 1), l.b.unary(Opcode::Clz, src));
  unsigned n = static_cast<unsigned>(ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, l.op(0).reg.value) -
                                     ZYDIS_REGISTER_RAX);
  if (t == Type::I32) {
    Value old = l.gpr(n, Type::I64);
    l.set_state(core::gpr(n), l.b.select(zero, old, l.b.zext(idx, Type::I64)));
  } else {
    l.write(0, l.b.select(zero, l.read(0), idx));
  }
  l.set_flag(X86Reg::Zf, zero);
  return LiftStatus::Continue;
}

enum CountKind { kTzcnt, kLzcnt, kPopcnt };

LiftStatus lift_count(Lifter& l, int kind) {
  Value src = l.read(1);
  static constexpr Opcode kOps[] = {Opcode::Ctz, Opcode::Clz, Opcode::Popcount};
  Value r = l.b.unary(kOps[kind], src);
  l.write(0, r);
  if (kind == kPopcnt) {
    Value f = l.b.i1(false);
    l.set_flag(X86Reg::Zf, l.is_zero(src));
    for (X86Reg reg : {X86Reg::Cf, X86Reg::Of, X86Reg::Sf, X86Reg::Af, X86Reg::Pf}) l.set_flag(reg, f);
  } else {
    l.set_flag(X86Reg::Cf, l.is_zero(src));
    l.set_flag(X86Reg::Zf, l.is_zero(r));
  }
  return LiftStatus::Continue;
}

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_BT, InsnClass::BitOps, lift_bt, kBt, "r/m16/32/64, r/imm8 (memory with register offset addresses beyond the operand)"},
    {ZYDIS_MNEMONIC_BTS, InsnClass::BitOps, lift_bt, kBts, "r/m16/32/64, r/imm8; lock with memory"},
    {ZYDIS_MNEMONIC_BTR, InsnClass::BitOps, lift_bt, kBtr, "r/m16/32/64, r/imm8; lock with memory"},
    {ZYDIS_MNEMONIC_BTC, InsnClass::BitOps, lift_bt, kBtc, "r/m16/32/64, r/imm8; lock with memory"},
    {ZYDIS_MNEMONIC_BSF, InsnClass::BitOps, lift_bitscan, kBsf, "r16/32/64, r/m (zero source: ZF=1, destination unchanged)"},
    {ZYDIS_MNEMONIC_BSR, InsnClass::BitOps, lift_bitscan, kBsr, "r16/32/64, r/m (zero source: ZF=1, destination unchanged)"},
    {ZYDIS_MNEMONIC_TZCNT, InsnClass::BitOps, lift_count, kTzcnt, "r16/32/64, r/m (OF SF AF PF undefined: unchanged)"},
    {ZYDIS_MNEMONIC_LZCNT, InsnClass::BitOps, lift_count, kLzcnt, "r16/32/64, r/m (OF SF AF PF undefined: unchanged)"},
    {ZYDIS_MNEMONIC_POPCNT, InsnClass::BitOps, lift_count, kPopcnt, "r16/32/64, r/m"},
};

}  // namespace

std::span<const LiftEntry> bitops_entries() { return kEntries; }

}  // namespace vm::translate::x86
