// x87 floating point. Every arithmetic, load/store, compare and stack
// instruction becomes a call of the x87 helper (vm/ir/x87.hpp), which runs
// the same instruction on the host FPU against the guest's x87 state. The
// lifted IR does the guest memory accesses itself: memory sources are loaded
// before the call and passed in, and store forms are lifted as dry-run calls
// that return the bytes, the guest stores, then the committing call, so a
// faulting access leaves the guest state as it was. The control/status word
// moves (fnstcw, fldcw, fnstsw) and fwait are plain IR.
#include "vm/ir/x87.hpp"

#include <array>

#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::X87Kind;
using ir::X87Op;

constexpr X87Op kNone = static_cast<X87Op>(0xffff);

// The helper operation of each operand shape a mnemonic accepts. `sti`:
// the first operand is an explicit st(i) (fld st(i), fadd st(i), st(0),
// faddp st(i), st(0), fcom st(i), ...); `st0_sti`: st(0) is implicit and
// st(i) is the explicit operand (fadd st(0), st(i), fcomi, fcmovcc; Zydis
// also decodes some one-operand compares this way). The st(i) ops are the
// first of an 8-op group.
struct X87Row {
  ZydisMnemonic mnemonic;
  X87Op m16 = kNone, m32 = kNone, m64 = kNone, m80 = kNone, m224 = kNone;
  X87Op sti = kNone, st0_sti = kNone, none = kNone;
  std::string_view forms;
};

// fadd-style mnemonics: the plain, the popping and the integer mnemonic.
#define VM_X87_ARITH_ROWS(mn, pmn, imn, name)                                                                 \
  X87Row{ZYDIS_MNEMONIC_##mn, kNone, X87Op::F##name##M32, X87Op::F##name##M64, kNone, kNone,                  \
         X87Op::F##name##StiSt00, X87Op::F##name##St0Sti0, kNone, "m32fp, m64fp, st(0),st(i), st(i),st(0)"},    \
  X87Row{ZYDIS_MNEMONIC_##pmn, kNone, kNone, kNone, kNone, kNone, X87Op::F##name##PSti0, kNone, kNone,         \
         "st(i),st(0)"},                                                                                      \
  X87Row{ZYDIS_MNEMONIC_##imn, X87Op::FI##name##M16, X87Op::FI##name##M32, kNone, kNone, kNone, kNone, kNone, \
         kNone, "m16int, m32int"}

// A row with only st(i) forms, or only an implicit-operand form.
constexpr X87Row sti_row(ZydisMnemonic m, X87Op first, std::string_view forms) {
  return {m, kNone, kNone, kNone, kNone, kNone, first, kNone, kNone, forms};
}
constexpr X87Row st0_sti_row(ZydisMnemonic m, X87Op first, std::string_view forms) {
  return {m, kNone, kNone, kNone, kNone, kNone, kNone, first, kNone, forms};
}
constexpr X87Row none_row(ZydisMnemonic m, X87Op op, std::string_view forms) {
  return {m, kNone, kNone, kNone, kNone, kNone, kNone, kNone, op, forms};
}

const X87Row kRows[] = {
    VM_X87_ARITH_ROWS(FADD, FADDP, FIADD, Add),
    VM_X87_ARITH_ROWS(FMUL, FMULP, FIMUL, Mul),
    VM_X87_ARITH_ROWS(FSUB, FSUBP, FISUB, Sub),
    VM_X87_ARITH_ROWS(FSUBR, FSUBRP, FISUBR, Subr),
    VM_X87_ARITH_ROWS(FDIV, FDIVP, FIDIV, Div),
    VM_X87_ARITH_ROWS(FDIVR, FDIVRP, FIDIVR, Divr),
    {ZYDIS_MNEMONIC_FCOM, kNone, X87Op::FComM32, X87Op::FComM64, kNone, kNone, X87Op::FComSti0, X87Op::FComSti0, kNone,
     "m32fp, m64fp, st(i)"},
    {ZYDIS_MNEMONIC_FCOMP, kNone, X87Op::FCompM32, X87Op::FCompM64, kNone, kNone, X87Op::FCompSti0, X87Op::FCompSti0,
     kNone, "m32fp, m64fp, st(i)"},
    {ZYDIS_MNEMONIC_FICOM, X87Op::FIComM16, X87Op::FIComM32, kNone, kNone, kNone, kNone, kNone, kNone,
     "m16int, m32int"},
    {ZYDIS_MNEMONIC_FICOMP, X87Op::FICompM16, X87Op::FICompM32, kNone, kNone, kNone, kNone, kNone, kNone,
     "m16int, m32int"},
    {ZYDIS_MNEMONIC_FUCOM, kNone, kNone, kNone, kNone, kNone, X87Op::FUComSti0, X87Op::FUComSti0, kNone, "st(i)"},
    {ZYDIS_MNEMONIC_FUCOMP, kNone, kNone, kNone, kNone, kNone, X87Op::FUCompSti0, X87Op::FUCompSti0, kNone, "st(i)"},
    st0_sti_row(ZYDIS_MNEMONIC_FCOMI, X87Op::FComISti0, "st(0),st(i): ZF PF CF, OF SF AF cleared"),
    st0_sti_row(ZYDIS_MNEMONIC_FCOMIP, X87Op::FComIPSti0, "st(0),st(i): ZF PF CF, OF SF AF cleared"),
    st0_sti_row(ZYDIS_MNEMONIC_FUCOMI, X87Op::FUComISti0, "st(0),st(i): ZF PF CF, OF SF AF cleared"),
    st0_sti_row(ZYDIS_MNEMONIC_FUCOMIP, X87Op::FUComIPSti0, "st(0),st(i): ZF PF CF, OF SF AF cleared"),
    none_row(ZYDIS_MNEMONIC_FCOMPP, X87Op::FCompp, "-"),
    none_row(ZYDIS_MNEMONIC_FUCOMPP, X87Op::FUCompp, "-"),
    none_row(ZYDIS_MNEMONIC_FTST, X87Op::FTst, "-"),
    none_row(ZYDIS_MNEMONIC_FXAM, X87Op::FXam, "-"),
    {ZYDIS_MNEMONIC_FLD, kNone, X87Op::FLdM32, X87Op::FLdM64, X87Op::FLdM80, kNone, X87Op::FLdSti0, kNone, kNone,
     "m32fp, m64fp, m80fp, st(i)"},
    {ZYDIS_MNEMONIC_FILD, X87Op::FILdM16, X87Op::FILdM32, X87Op::FILdM64, kNone, kNone, kNone, kNone, kNone,
     "m16int, m32int, m64int"},
    none_row(ZYDIS_MNEMONIC_FLD1, X87Op::FLd1, "-"),
    none_row(ZYDIS_MNEMONIC_FLDL2T, X87Op::FLdL2T, "-"),
    none_row(ZYDIS_MNEMONIC_FLDL2E, X87Op::FLdL2E, "-"),
    none_row(ZYDIS_MNEMONIC_FLDPI, X87Op::FLdPi, "-"),
    none_row(ZYDIS_MNEMONIC_FLDLG2, X87Op::FLdLg2, "-"),
    none_row(ZYDIS_MNEMONIC_FLDLN2, X87Op::FLdLn2, "-"),
    none_row(ZYDIS_MNEMONIC_FLDZ, X87Op::FLdZ, "-"),
    {ZYDIS_MNEMONIC_FST, kNone, X87Op::FStM32, X87Op::FStM64, kNone, kNone, X87Op::FStSti0, kNone, kNone,
     "m32fp, m64fp, st(i)"},
    {ZYDIS_MNEMONIC_FSTP, kNone, X87Op::FStpM32, X87Op::FStpM64, X87Op::FStpM80, kNone, X87Op::FStpSti0, kNone,
     kNone, "m32fp, m64fp, m80fp, st(i)"},
    {ZYDIS_MNEMONIC_FIST, X87Op::FIStM16, X87Op::FIStM32, kNone, kNone, kNone, kNone, kNone, kNone,
     "m16int, m32int (rounded per the control word)"},
    {ZYDIS_MNEMONIC_FISTP, X87Op::FIStpM16, X87Op::FIStpM32, X87Op::FIStpM64, kNone, kNone, kNone, kNone, kNone,
     "m16int, m32int, m64int (rounded per the control word)"},
    {ZYDIS_MNEMONIC_FISTTP, X87Op::FISttpM16, X87Op::FISttpM32, X87Op::FISttpM64, kNone, kNone, kNone, kNone, kNone,
     "m16int, m32int, m64int (truncating)"},
    {ZYDIS_MNEMONIC_FNSTENV, kNone, kNone, kNone, kNone, X87Op::FNStEnv, kNone, kNone, kNone,
     "m28 (32-bit layout): control, status and tag words; instruction/operand pointers stored as 0"},
    {ZYDIS_MNEMONIC_FLDENV, kNone, kNone, kNone, kNone, X87Op::FLdEnv, kNone, kNone, kNone,
     "m28: control, status and tag words (pointers ignored)"},
    sti_row(ZYDIS_MNEMONIC_FXCH, X87Op::FXchSti0, "st(i)"),
    sti_row(ZYDIS_MNEMONIC_FFREE, X87Op::FFreeSti0, "st(i)"),
    sti_row(ZYDIS_MNEMONIC_FFREEP, X87Op::FFreepSti0, "st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVB, X87Op::FCmovBSti0, "st(0),st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVE, X87Op::FCmovESti0, "st(0),st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVBE, X87Op::FCmovBESti0, "st(0),st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVU, X87Op::FCmovUSti0, "st(0),st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVNB, X87Op::FCmovNBSti0, "st(0),st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVNE, X87Op::FCmovNESti0, "st(0),st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVNBE, X87Op::FCmovNBESti0, "st(0),st(i)"),
    st0_sti_row(ZYDIS_MNEMONIC_FCMOVNU, X87Op::FCmovNUSti0, "st(0),st(i)"),
    none_row(ZYDIS_MNEMONIC_FCHS, X87Op::FChs, "-"),
    none_row(ZYDIS_MNEMONIC_FABS, X87Op::FAbs, "-"),
    none_row(ZYDIS_MNEMONIC_FSQRT, X87Op::FSqrt, "-"),
    none_row(ZYDIS_MNEMONIC_FRNDINT, X87Op::FRndInt, "-"),
    none_row(ZYDIS_MNEMONIC_FSCALE, X87Op::FScale, "-"),
    none_row(ZYDIS_MNEMONIC_FPREM, X87Op::FPrem, "-"),
    none_row(ZYDIS_MNEMONIC_FPREM1, X87Op::FPrem1, "-"),
    none_row(ZYDIS_MNEMONIC_FXTRACT, X87Op::FXtract, "-"),
    none_row(ZYDIS_MNEMONIC_F2XM1, X87Op::F2xm1, "host result"),
    none_row(ZYDIS_MNEMONIC_FYL2X, X87Op::FYl2x, "host result"),
    none_row(ZYDIS_MNEMONIC_FYL2XP1, X87Op::FYl2xp1, "host result"),
    none_row(ZYDIS_MNEMONIC_FPTAN, X87Op::FPtan, "host result"),
    none_row(ZYDIS_MNEMONIC_FPATAN, X87Op::FPatan, "host result"),
    none_row(ZYDIS_MNEMONIC_FSIN, X87Op::FSin, "host result"),
    none_row(ZYDIS_MNEMONIC_FCOS, X87Op::FCos, "host result"),
    none_row(ZYDIS_MNEMONIC_FSINCOS, X87Op::FSinCos, "host result"),
    none_row(ZYDIS_MNEMONIC_FINCSTP, X87Op::FIncStp, "-"),
    none_row(ZYDIS_MNEMONIC_FDECSTP, X87Op::FDecStp, "-"),
    none_row(ZYDIS_MNEMONIC_FNINIT, X87Op::FNInit, "-"),
    none_row(ZYDIS_MNEMONIC_FNCLEX, X87Op::FNClex, "-"),
};
#undef VM_X87_ARITH_ROWS

bool explicit_op(const Lifter& l, int i) {
  return i < l.in.zi.operand_count && l.op(i).visibility == ZYDIS_OPERAND_VISIBILITY_EXPLICIT;
}

Value call(Lifter& l, X87Op op, uint64_t flags, Value a1, Value a2) {
  return l.b.call_helper(ir::Helper::X87, {l.c(Type::I64, static_cast<uint64_t>(op) | flags), a1, a2});
}

// Loads a memory source of `bits` bits as the helper's a1/a2.
std::pair<Value, Value> load_source(Lifter& l, int mi, uint32_t bits) {
  Value addr = l.address(mi);
  Value zero = l.c(Type::I64, 0);
  if (bits == 80) {
    Value lo = l.b.load(Type::I64, addr);
    Value hi = l.b.load(Type::I16, l.b.add(addr, l.c(Type::I64, 8)));
    return {lo, l.b.zext(hi, Type::I64)};
  }
  Type t = *ir::int_type(bits);
  Value v = l.b.load(t, addr);
  return {t == Type::I64 ? v : l.b.zext(v, Type::I64), zero};
}

// fldenv: the control, status and tag words are the low halves of the
// first three dwords of the 28-byte environment.
Value load_env(Lifter& l, int mi) {
  Value addr = l.address(mi);
  Value packed;
  for (unsigned k = 0; k < 3; ++k) {
    Value w = l.b.zext(l.b.load(Type::I16, l.b.add(addr, l.c(Type::I64, 4 * k))), Type::I64);
    if (k > 0) w = l.b.shl(w, l.c(Type::I64, 16 * k));
    packed = packed.valid() ? l.b.or_(packed, w) : w;
  }
  return packed;
}

// Store forms: compute every piece first (no state change), store them,
// then commit.
void lift_store(Lifter& l, X87Op op, int mi, uint32_t bits) {
  Value addr = l.address(mi);
  Value zero = l.c(Type::I64, 0);
  const uint32_t bytes = bits / 8;
  struct Piece {
    Value v;
    uint32_t offset;
  };
  Piece pieces[4];
  unsigned n = 0;
  for (uint32_t off = 0; off < bytes; off += 8) {
    Value chunk = call(l, op, ir::kX87DryRun | uint64_t{off / 8} << ir::kX87ChunkShift, zero, zero);
    uint32_t left = std::min<uint32_t>(bytes - off, 8);
    if (left < 8) chunk = l.b.trunc(chunk, *ir::int_type(left * 8));
    pieces[n++] = {chunk, off};
  }
  for (unsigned k = 0; k < n; ++k)
    l.b.store(pieces[k].offset == 0 ? addr : l.b.add(addr, l.c(Type::I64, pieces[k].offset)), pieces[k].v);
  call(l, op, 0, zero, zero);
}

LiftStatus lift_x87(Lifter& l, int row_index) {
  const X87Row& row = kRows[row_index];
  Value zero = l.c(Type::I64, 0);
  int mem = -1;
  for (int i = 0; i < l.in.zi.operand_count; ++i)
    if (explicit_op(l, i) && l.is_mem(i)) mem = i;
  if (mem >= 0) {
    X87Op op = kNone;
    switch (l.bits(mem)) {
      case 16: op = row.m16; break;
      case 32: op = row.m32; break;
      case 64: op = row.m64; break;
      case 80: op = row.m80; break;
      case 224: op = row.m224; break;
      default: break;
    }
    if (op == kNone) return LiftStatus::Unsupported;
    switch (ir::x87_kind(op)) {
      case X87Kind::Store: lift_store(l, op, mem, l.bits(mem)); break;
      case X87Kind::LoadEnv: call(l, op, 0, load_env(l, mem), zero); break;
      default: {
        auto [lo, hi] = load_source(l, mem, l.bits(mem));
        call(l, op, 0, lo, hi);
        break;
      }
    }
    return LiftStatus::Continue;
  }
  X87Op op = row.none;
  for (int i : {0, 1}) {
    if (!explicit_op(l, i) || !l.is_reg(i)) continue;
    X87Op first = i == 0 ? row.sti : row.st0_sti;
    if (first == kNone || row.sti == kNone || row.st0_sti == kNone) first = row.sti == kNone ? row.st0_sti : row.sti;
    op = first == kNone ? kNone : ir::x87_sti(first, l.op(i).reg.value - ZYDIS_REGISTER_ST0);
    break;
  }
  if (op == kNone) return LiftStatus::Unsupported;
  call(l, op, 0, zero, zero);
  return LiftStatus::Continue;
}

enum WordKind { kStoreSw, kStoreCw, kLoadCw };

LiftStatus lift_word(Lifter& l, int kind) {
  switch (kind) {
    case kStoreSw: {
      Value sw = l.b.get_reg(X86Reg::FpuSw, Type::I16);
      if (l.is_mem(0)) {
        l.b.store(l.address(0), sw);
      } else {
        l.set_reg(ZYDIS_REGISTER_AX, sw);
      }
      return LiftStatus::Continue;
    }
    case kStoreCw: l.b.store(l.address(0), l.b.get_reg(X86Reg::FpuCw, Type::I16)); return LiftStatus::Continue;
    default: {
      // Bit 6 is reserved and always reads as 1 on the hardware.
      Value cw = l.b.or_(l.b.load(Type::I16, l.address(0)), l.c(Type::I16, 0x40));
      l.set_state(X86Reg::FpuCw, cw);
      return LiftStatus::Continue;
    }
  }
}

LiftStatus lift_nop(Lifter&, int) { return LiftStatus::Continue; }

std::vector<LiftEntry> make_entries() {
  std::vector<LiftEntry> out;
  for (size_t i = 0; i < std::size(kRows); ++i)
    out.push_back({kRows[i].mnemonic, InsnClass::X87, lift_x87, static_cast<int>(i), kRows[i].forms});
  out.push_back({ZYDIS_MNEMONIC_FNSTSW, InsnClass::X87, lift_word, kStoreSw, "ax, m16"});
  out.push_back({ZYDIS_MNEMONIC_FNSTCW, InsnClass::X87, lift_word, kStoreCw, "m16"});
  out.push_back({ZYDIS_MNEMONIC_FLDCW, InsnClass::X87, lift_word, kLoadCw, "m16"});
  out.push_back({ZYDIS_MNEMONIC_FWAIT, InsnClass::X87, lift_nop, 0, "no-op (unmasked x87 exceptions are not delivered)"});
  out.push_back({ZYDIS_MNEMONIC_FNOP, InsnClass::X87, lift_nop, 0, "no-op"});
  return out;
}

// st(k) for k = 0..7 from the physical registers, or the reverse: element
// j of the result is in[(j + sign * top) & 7], chosen with selects on TOP
// because vm-ir registers are named statically.
std::array<Value, 8> rotate_by_top(Lifter& l, const std::array<Value, 8>& in, Value top, int sign) {
  std::array<Value, 8> out;
  for (unsigned j = 0; j < 8; ++j) {
    Value v = in[j];
    for (unsigned t = 1; t < 8; ++t) {
      Value is_t = l.b.cmp(ir::CmpPred::Eq, top, l.c(Type::I16, t));
      v = l.b.select(is_t, in[(j + 8 + sign * static_cast<int>(t)) & 7], v);
    }
    out[j] = v;
  }
  return out;
}

Value top_of(Lifter& l, Value sw) { return l.b.and_(l.b.lshr(sw, l.c(Type::I16, 11)), l.c(Type::I16, 7)); }

}  // namespace

void fxsave_x87(Lifter& l, Value base) {
  auto at = [&](uint64_t off) { return l.b.add(base, l.c(Type::I64, off)); };
  Value sw = l.b.get_reg(X86Reg::FpuSw, Type::I16);
  std::array<Value, 8> phys;
  for (unsigned j = 0; j < 8; ++j) phys[j] = l.b.get_reg(core::fpr_reg(j), Type::V128);
  std::array<Value, 8> st = rotate_by_top(l, phys, top_of(l, sw), 1);
  l.b.store(at(2), sw);
  l.b.store(at(4), l.b.and_(l.b.get_reg(X86Reg::FpuTag, Type::I16), l.c(Type::I16, 0xff)));
  for (unsigned i = 0; i < 8; ++i) l.b.store(at(32 + 16 * i), st[i]);
}

void fxrstor_x87(Lifter& l, Value base) {
  auto at = [&](uint64_t off) { return l.b.add(base, l.c(Type::I64, off)); };
  Value sw = l.b.load(Type::I16, at(2));
  Value tag = l.b.zext(l.b.load(Type::I8, at(4)), Type::I16);
  std::array<Value, 8> st;
  Value zero = l.b.constant(Type::V128, 0, 0);
  for (unsigned i = 0; i < 8; ++i) {
    // Only the 10 bytes of the value; the rest of our slot stays zero.
    Value v = l.b.vinsert(ir::Lane::I64, zero, l.b.load(Type::I64, at(32 + 16 * i)), 0);
    st[i] = l.b.vinsert(ir::Lane::I16, v, l.b.load(Type::I16, at(40 + 16 * i)), 4);
  }
  std::array<Value, 8> phys = rotate_by_top(l, st, top_of(l, sw), -1);
  l.set_state(X86Reg::FpuSw, sw);
  l.set_state(X86Reg::FpuTag, tag);
  for (unsigned j = 0; j < 8; ++j) l.set_state(core::fpr_reg(j), phys[j]);
}

std::span<const LiftEntry> x87_entries() {
  static const std::vector<LiftEntry> entries = make_entries();
  return entries;
}

}  // namespace vm::translate::x86
