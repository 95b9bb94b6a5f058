// SSE/SSE2 and the SSSE3/SSE4.1 integer and data-movement instructions
// compilers and libc use: moves, packed integer arithmetic and compares,
// shifts, shuffles, inserts/extracts, ptest, pmovzx/sx.
//
// Most rows are table-driven: a packed row names the vm-ir op and lane type
// (paddw = add.i16x8); shuffles become vshuffle with a byte mask computed
// from the immediate. The 16-byte alignment rule of m128 operands is checked
// centrally (Lifter::address). MMX-register forms are not supported.
#include <algorithm>
#include <array>

#include "x86/sse_util.hpp"

namespace vm::translate::x86 {

using ir::CmpPred;
using ir::FCmpPred;
using ir::Lane;
using ir::Opcode;
using ir::Rounding;
using namespace sse;

namespace {

// ---------------------------------------------------------------- moves ----

LiftStatus lift_mov128(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  l.write(0, vec(l, 1));
  return LiftStatus::Continue;
}

// movd/movq between xmm and r/m, and movq xmm, xmm/m64.
LiftStatus lift_movdq(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  if (is_xmm(l, 0)) {
    Type t = is_xmm(l, 1) ? Type::I64 : *ir::int_type(l.bits(1));
    Value v = scalar(l, 1, t);
    l.write(0, l.b.vinsert(t == Type::I32 ? Lane::I32 : Lane::I64, zero_v(l), v, 0));
    return LiftStatus::Continue;
  }
  Type t = *ir::int_type(l.bits(0));
  l.write(0, l.b.vextract(t == Type::I32 ? Lane::I32 : Lane::I64, vec(l, 1), 0));
  return LiftStatus::Continue;
}

// movss/movsd: loads zero the upper part, register moves merge lane 0.
LiftStatus lift_movs(Lifter& l, Lane lane) {
  Type t = ir::lane_type(lane);
  if (l.is_mem(0)) {
    l.write(0, l.b.vextract(lane, vec(l, 1), 0));
    return LiftStatus::Continue;
  }
  Value v = scalar(l, 1, t);
  Value base = l.is_mem(1) ? zero_v(l) : vec(l, 0);
  l.write(0, l.b.vinsert(lane, base, v, 0));
  return LiftStatus::Continue;
}
LiftStatus lift_movss(Lifter& l, int) { return lift_movs(l, Lane::F32); }

enum HalfMove { kLow, kHigh };
// movlps/movlpd/movhps/movhpd: one 64-bit half to or from memory.
LiftStatus lift_movhalf(Lifter& l, int half) {
  if (l.is_mem(0)) {
    l.write(0, l.b.vextract(Lane::I64, vec(l, 1), half));
    return LiftStatus::Continue;
  }
  if (!l.is_mem(1)) return LiftStatus::Unsupported;
  Value v = l.b.load(Type::I64, l.address(1));
  l.write(0, l.b.vinsert(Lane::I64, vec(l, 0), v, half));
  return LiftStatus::Continue;
}

// movhlps dst, src: dst.lo = src.hi; movlhps: dst.hi = src.lo.
LiftStatus lift_movhl(Lifter& l, int high_to_low) {
  Value d = vec(l, 0), s = vec(l, 1);
  Mask m{};
  for (int i = 0; i < 16; ++i) {
    if (high_to_low) m[i] = static_cast<uint8_t>(i < 8 ? 16 + 8 + i : i);
    else m[i] = static_cast<uint8_t>(i < 8 ? i : 16 + i - 8);
  }
  l.write(0, shuffle(l, d, s, m));
  return LiftStatus::Continue;
}

LiftStatus lift_movmsk(Lifter& l, int lane) {
  Value m = l.b.vmovmsk(static_cast<Lane>(lane), vec(l, 1));
  l.write(0, l.b.zext_or_trunc(m, l.type(0)));
  return LiftStatus::Continue;
}

// ------------------------------------------------------- packed integer ----

struct PackedRow {
  ZydisMnemonic mnemonic;
  Opcode op;
  Lane lane;
};

// Integer and bitwise packed ops, dst = dst op src.
constexpr PackedRow kPacked[] = {
    {ZYDIS_MNEMONIC_PADDB, Opcode::Add, Lane::I8},      {ZYDIS_MNEMONIC_PADDW, Opcode::Add, Lane::I16},
    {ZYDIS_MNEMONIC_PADDD, Opcode::Add, Lane::I32},     {ZYDIS_MNEMONIC_PADDQ, Opcode::Add, Lane::I64},
    {ZYDIS_MNEMONIC_PSUBB, Opcode::Sub, Lane::I8},      {ZYDIS_MNEMONIC_PSUBW, Opcode::Sub, Lane::I16},
    {ZYDIS_MNEMONIC_PSUBD, Opcode::Sub, Lane::I32},     {ZYDIS_MNEMONIC_PSUBQ, Opcode::Sub, Lane::I64},
    {ZYDIS_MNEMONIC_PADDSB, Opcode::AddSatS, Lane::I8}, {ZYDIS_MNEMONIC_PADDSW, Opcode::AddSatS, Lane::I16},
    {ZYDIS_MNEMONIC_PADDUSB, Opcode::AddSatU, Lane::I8}, {ZYDIS_MNEMONIC_PADDUSW, Opcode::AddSatU, Lane::I16},
    {ZYDIS_MNEMONIC_PSUBSB, Opcode::SubSatS, Lane::I8}, {ZYDIS_MNEMONIC_PSUBSW, Opcode::SubSatS, Lane::I16},
    {ZYDIS_MNEMONIC_PSUBUSB, Opcode::SubSatU, Lane::I8}, {ZYDIS_MNEMONIC_PSUBUSW, Opcode::SubSatU, Lane::I16},
    {ZYDIS_MNEMONIC_PMULLW, Opcode::Mul, Lane::I16},    {ZYDIS_MNEMONIC_PMULLD, Opcode::Mul, Lane::I32},
    {ZYDIS_MNEMONIC_PMULHW, Opcode::MulHiS, Lane::I16}, {ZYDIS_MNEMONIC_PMULHUW, Opcode::MulHiU, Lane::I16},
    {ZYDIS_MNEMONIC_PAVGB, Opcode::AvgU, Lane::I8},     {ZYDIS_MNEMONIC_PAVGW, Opcode::AvgU, Lane::I16},
    {ZYDIS_MNEMONIC_PMINUB, Opcode::UMin, Lane::I8},    {ZYDIS_MNEMONIC_PMAXUB, Opcode::UMax, Lane::I8},
    {ZYDIS_MNEMONIC_PMINUW, Opcode::UMin, Lane::I16},   {ZYDIS_MNEMONIC_PMAXUW, Opcode::UMax, Lane::I16},
    {ZYDIS_MNEMONIC_PMINUD, Opcode::UMin, Lane::I32},   {ZYDIS_MNEMONIC_PMAXUD, Opcode::UMax, Lane::I32},
    {ZYDIS_MNEMONIC_PMINSB, Opcode::SMin, Lane::I8},    {ZYDIS_MNEMONIC_PMAXSB, Opcode::SMax, Lane::I8},
    {ZYDIS_MNEMONIC_PMINSW, Opcode::SMin, Lane::I16},   {ZYDIS_MNEMONIC_PMAXSW, Opcode::SMax, Lane::I16},
    {ZYDIS_MNEMONIC_PMINSD, Opcode::SMin, Lane::I32},   {ZYDIS_MNEMONIC_PMAXSD, Opcode::SMax, Lane::I32},
    {ZYDIS_MNEMONIC_PAND, Opcode::And, Lane::I64},      {ZYDIS_MNEMONIC_POR, Opcode::Or, Lane::I64},
    {ZYDIS_MNEMONIC_PXOR, Opcode::Xor, Lane::I64},      {ZYDIS_MNEMONIC_ANDPS, Opcode::And, Lane::I64},
    {ZYDIS_MNEMONIC_ANDPD, Opcode::And, Lane::I64},     {ZYDIS_MNEMONIC_ORPS, Opcode::Or, Lane::I64},
    {ZYDIS_MNEMONIC_ORPD, Opcode::Or, Lane::I64},       {ZYDIS_MNEMONIC_XORPS, Opcode::Xor, Lane::I64},
    {ZYDIS_MNEMONIC_XORPD, Opcode::Xor, Lane::I64},
};

LiftStatus lift_packed(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  const PackedRow* row = nullptr;
  for (const PackedRow& p : kPacked)
    if (p.mnemonic == l.mnemonic()) row = &p;
  if (!row) return LiftStatus::Unsupported;
  const PackedRow& r = *row;
  Value a = vec(l, 0), b = vec(l, 1);
  l.write(0, l.b.binary(r.op, a, b, r.lane));
  return LiftStatus::Continue;
}

// pandn/andnps/andnpd: dst = ~dst & src.
LiftStatus lift_andn(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value a = vec(l, 0), b = vec(l, 1);
  l.write(0, l.b.binary(Opcode::And, l.b.binary(Opcode::Xor, a, ones_v(l), Lane::I64), b, Lane::I64));
  return LiftStatus::Continue;
}

struct CmpRow {
  CmpPred pred;
  Lane lane;
};
constexpr CmpRow kCmps[] = {{CmpPred::Eq, Lane::I8},  {CmpPred::Eq, Lane::I16},  {CmpPred::Eq, Lane::I32},
                            {CmpPred::Eq, Lane::I64}, {CmpPred::Sgt, Lane::I8},  {CmpPred::Sgt, Lane::I16},
                            {CmpPred::Sgt, Lane::I32}, {CmpPred::Sgt, Lane::I64}};

LiftStatus lift_pcmp(Lifter& l, int row) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value a = vec(l, 0), b = vec(l, 1);
  l.write(0, l.b.cmp(kCmps[row].pred, a, b, kCmps[row].lane));
  return LiftStatus::Continue;
}

LiftStatus lift_pabs(Lifter& l, int lane) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  l.write(0, l.b.unary(Opcode::Abs, vec(l, 1), static_cast<Lane>(lane)));
  return LiftStatus::Continue;
}

// pmuludq: low 32 bits of each 64-bit lane, full 64-bit products.
LiftStatus lift_pmuludq(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value lo = l.b.constant(Type::V128, 0xffffffff, 0xffffffff);
  Value a = l.b.binary(Opcode::And, vec(l, 0), lo, Lane::I64);
  Value b = l.b.binary(Opcode::And, vec(l, 1), lo, Lane::I64);
  l.write(0, l.b.binary(Opcode::Mul, a, b, Lane::I64));
  return LiftStatus::Continue;
}

LiftStatus lift_pmaddwd(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value a = vec(l, 0), b = vec(l, 1);
  l.write(0, l.b.vmuladd(a, b));
  return LiftStatus::Continue;
}

LiftStatus lift_psadbw(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value a = vec(l, 0), b = vec(l, 1);
  l.write(0, l.b.vsad(a, b));
  return LiftStatus::Continue;
}

enum PackKind { kPackSsWb, kPackSsDw, kPackUsWb, kPackUsDw };
LiftStatus lift_pack(Lifter& l, int kind) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value a = vec(l, 0), b = vec(l, 1);
  Lane src = (kind == kPackSsWb || kind == kPackUsWb) ? Lane::I16 : Lane::I32;
  l.write(0, kind <= kPackSsDw ? l.b.vpack_ss(src, a, b) : l.b.vpack_us(src, a, b));
  return LiftStatus::Continue;
}

// ------------------------------------------------------------- shifts ----

enum ShiftKind { kPsll, kPsrl, kPsra };
struct ShiftRow {
  ShiftKind kind;
  Lane lane;
};
constexpr ShiftRow kShifts[] = {{kPsll, Lane::I16}, {kPsll, Lane::I32}, {kPsll, Lane::I64}, {kPsrl, Lane::I16},
                                {kPsrl, Lane::I32}, {kPsrl, Lane::I64}, {kPsra, Lane::I16}, {kPsra, Lane::I32}};

// Count: imm8 or the low 64 bits of an xmm/m128; counts >= the lane width
// give 0 (sign fill for psra), which the IR's shifts already do once the
// count is clamped so that it survives truncation to the lane type.
LiftStatus lift_pshift(Lifter& l, int row) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  const ShiftRow& r = kShifts[row];
  Type lt = ir::lane_type(r.lane);
  uint32_t w = ir::lane_bits(r.lane);
  Value a = vec(l, 0);
  Value cnt;
  if (l.is_imm(1)) {
    cnt = l.c(lt, std::min<uint64_t>(l.op(1).imm.value.u & 0xff, w));
  } else {
    Value c64 = l.is_mem(1) ? l.b.load(Type::I64, l.address(1)) : l.b.vextract(Lane::I64, vec(l, 1), 0);
    cnt = l.b.zext_or_trunc(l.b.binary(Opcode::UMin, c64, l.c(Type::I64, w)), lt);
  }
  Value counts = l.b.vsplat(r.lane, cnt);
  static constexpr Opcode kOps[] = {Opcode::Shl, Opcode::LShr, Opcode::AShr};
  l.write(0, l.b.binary(kOps[r.kind], a, counts, r.lane));
  return LiftStatus::Continue;
}

enum ByteShift { kLeft, kRight };
LiftStatus lift_pbyteshift(Lifter& l, int dir) {
  unsigned n = static_cast<unsigned>(l.op(1).imm.value.u & 0xff);
  Mask m{};
  for (int i = 0; i < 16; ++i) {
    int src = dir == kLeft ? i - static_cast<int>(n) : i + static_cast<int>(n);
    m[i] = (src < 0 || src > 15) ? kZeroByte : static_cast<uint8_t>(src);
  }
  Value a = vec(l, 0);
  l.write(0, shuffle(l, a, a, m));
  return LiftStatus::Continue;
}

// ----------------------------------------------------------- shuffles ----

LiftStatus lift_pshufd(Lifter& l, int) {
  Value s = vec(l, 1);
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u);
  Mask m{};
  for (int d = 0; d < 4; ++d)
    for (int k = 0; k < 4; ++k) m[4 * d + k] = static_cast<uint8_t>(4 * ((imm >> (2 * d)) & 3) + k);
  l.write(0, shuffle(l, s, s, m));
  return LiftStatus::Continue;
}

// pshuflw/pshufhw: permute the words of one half, copy the other.
LiftStatus lift_pshufw(Lifter& l, int high) {
  Value s = vec(l, 1);
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u);
  Mask m{};
  for (int i = 0; i < 16; ++i) m[i] = static_cast<uint8_t>(i);
  int base = high ? 8 : 0;
  for (int w = 0; w < 4; ++w)
    for (int k = 0; k < 2; ++k) m[base + 2 * w + k] = static_cast<uint8_t>(base + 2 * ((imm >> (2 * w)) & 3) + k);
  l.write(0, shuffle(l, s, s, m));
  return LiftStatus::Continue;
}

LiftStatus lift_shufps(Lifter& l, int) {
  Value d = vec(l, 0), s = vec(l, 1);
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u);
  Mask m{};
  for (int e = 0; e < 4; ++e) {
    unsigned sel = (imm >> (2 * e)) & 3;
    for (int k = 0; k < 4; ++k) m[4 * e + k] = static_cast<uint8_t>((e < 2 ? 0 : 16) + 4 * sel + k);
  }
  l.write(0, shuffle(l, d, s, m));
  return LiftStatus::Continue;
}

LiftStatus lift_shufpd(Lifter& l, int) {
  Value d = vec(l, 0), s = vec(l, 1);
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u);
  Mask m{};
  for (int k = 0; k < 8; ++k) {
    m[k] = static_cast<uint8_t>(8 * (imm & 1) + k);
    m[8 + k] = static_cast<uint8_t>(16 + 8 * ((imm >> 1) & 1) + k);
  }
  l.write(0, shuffle(l, d, s, m));
  return LiftStatus::Continue;
}

// punpck{l,h}{bw,wd,dq,qdq}, unpck{l,h}{ps,pd}: aux = element bytes * 2 + high.
LiftStatus lift_unpack(Lifter& l, int aux) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  int esize = aux / 2;
  bool high = aux & 1;
  Value d = vec(l, 0), s = vec(l, 1);
  Mask m{};
  int n = 16 / esize / 2;  // elements taken from each source
  for (int e = 0; e < n; ++e) {
    int src_elem = (high ? n : 0) + e;
    for (int k = 0; k < esize; ++k) {
      m[(2 * e) * esize + k] = static_cast<uint8_t>(src_elem * esize + k);
      m[(2 * e + 1) * esize + k] = static_cast<uint8_t>(16 + src_elem * esize + k);
    }
  }
  l.write(0, shuffle(l, d, s, m));
  return LiftStatus::Continue;
}

LiftStatus lift_palignr(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value d = vec(l, 0), s = vec(l, 1);
  unsigned n = static_cast<unsigned>(l.op(2).imm.value.u & 0xff);
  Mask m{};
  for (unsigned i = 0; i < 16; ++i) {
    unsigned idx = i + n;  // into src (low 16 bytes) : dst (high 16 bytes)
    m[i] = idx < 32 ? static_cast<uint8_t>(idx) : kZeroByte;
  }
  l.write(0, shuffle(l, s, d, m));
  return LiftStatus::Continue;
}

LiftStatus lift_pshufb(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value d = vec(l, 0), s = vec(l, 1);
  l.write(0, l.b.vpshufb(d, s));
  return LiftStatus::Continue;
}

// pinsr{b,w,d,q} xmm, r/m, imm and pextr{b,w,d,q} r/m, xmm, imm.
LiftStatus lift_pinsr(Lifter& l, int lane) {
  Lane ln = static_cast<Lane>(lane);
  Type t = ir::lane_type(ln);
  unsigned idx = static_cast<unsigned>(l.op(2).imm.value.u) % ir::lane_count(ln);
  Value v = l.is_mem(1) ? l.b.load(t, l.address(1)) : l.b.zext_or_trunc(l.read(1), t);
  l.write(0, l.b.vinsert(ln, vec(l, 0), v, idx));
  return LiftStatus::Continue;
}
LiftStatus lift_pextr(Lifter& l, int lane) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Lane ln = static_cast<Lane>(lane);
  unsigned idx = static_cast<unsigned>(l.op(2).imm.value.u) % ir::lane_count(ln);
  Value v = l.b.vextract(ln, vec(l, 1), idx);
  if (l.is_mem(0)) {
    l.write(0, v);
  } else {
    l.write(0, l.b.zext_or_trunc(v, l.type(0)));
  }
  return LiftStatus::Continue;
}

// ptest: ZF = (dst & src) == 0, CF = (~dst & src) == 0, other flags 0.
LiftStatus lift_ptest(Lifter& l, int) {
  Value d = vec(l, 0), s = vec(l, 1);
  Value both = l.b.bitcast(l.b.binary(Opcode::And, d, s, Lane::I64), Type::I128);
  Value andn = l.b.bitcast(l.b.binary(Opcode::And, l.b.binary(Opcode::Xor, d, ones_v(l), Lane::I64), s, Lane::I64), Type::I128);
  l.set_flag(X86Reg::Zf, l.is_zero(both));
  l.set_flag(X86Reg::Cf, l.is_zero(andn));
  for (X86Reg f : {X86Reg::Pf, X86Reg::Af, X86Reg::Sf, X86Reg::Of}) l.set_flag(f, l.b.i1(false));
  return LiftStatus::Continue;
}

// pmovzx/pmovsx: widen the low elements. aux = from lane bytes * 16 + to lane bytes, sign in aux >= 256.
LiftStatus lift_pmovx(Lifter& l, int aux) {
  bool sign = aux >= 256;
  int from = (aux & 0xff) >> 4, to = aux & 0xf;
  Lane from_lane = from == 1 ? Lane::I8 : from == 2 ? Lane::I16 : Lane::I32;
  Lane to_lane = to == 2 ? Lane::I16 : to == 4 ? Lane::I32 : Lane::I64;
  Value src;
  if (l.is_mem(1)) {
    Type mt = *ir::int_type(l.bits(1));
    Value raw = l.b.load(mt, l.address(1));
    src = l.b.bitcast(l.b.zext(raw, Type::I128), Type::V128);
  } else {
    src = vec(l, 1);
  }
  Value out = zero_v(l);
  for (uint32_t i = 0; i < ir::lane_count(to_lane); ++i) {
    Value e = l.b.vextract(from_lane, src, i);
    Type tt = ir::lane_type(to_lane);
    e = sign ? l.b.sext(e, tt) : l.b.zext(e, tt);
    out = l.b.vinsert(to_lane, out, e, i);
  }
  l.write(0, out);
  return LiftStatus::Continue;
}

#define P(m) {ZYDIS_MNEMONIC_##m, InsnClass::Sse, lift_packed, 0, "xmm, xmm/m128"}
#define F(m, row, forms)
constexpr int L(Lane x) { return static_cast<int>(x); }

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_MOVAPS, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128 (m128 must be 16-byte aligned)"},
    {ZYDIS_MNEMONIC_MOVAPD, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128 (m128 must be 16-byte aligned)"},
    {ZYDIS_MNEMONIC_MOVUPS, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128"},
    {ZYDIS_MNEMONIC_MOVUPD, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128"},
    {ZYDIS_MNEMONIC_MOVDQA, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128 (m128 must be 16-byte aligned)"},
    {ZYDIS_MNEMONIC_MOVDQU, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128"},
    {ZYDIS_MNEMONIC_LDDQU, InsnClass::Sse, lift_mov128, 0, "xmm, m128"},
    {ZYDIS_MNEMONIC_MOVNTDQ, InsnClass::Sse, lift_mov128, 0, "m128, xmm (hint ignored)"},
    {ZYDIS_MNEMONIC_MOVNTDQA, InsnClass::Sse, lift_mov128, 0, "xmm, m128 (hint ignored)"},
    {ZYDIS_MNEMONIC_MOVNTPS, InsnClass::Sse, lift_mov128, 0, "m128, xmm (hint ignored)"},
    {ZYDIS_MNEMONIC_MOVNTPD, InsnClass::Sse, lift_mov128, 0, "m128, xmm (hint ignored)"},
    {ZYDIS_MNEMONIC_MOVD, InsnClass::Sse, lift_movdq, 0, "xmm <-> r/m32 (MMX forms unsupported)"},
    {ZYDIS_MNEMONIC_MOVQ, InsnClass::Sse, lift_movdq, 0, "xmm <-> r/m64, xmm <- xmm/m64 (MMX forms unsupported)"},
    {ZYDIS_MNEMONIC_MOVSS, InsnClass::Sse, lift_movss, 0, "xmm, m32 (zeroes upper); xmm, xmm (merges); m32, xmm"},
    {ZYDIS_MNEMONIC_MOVLPS, InsnClass::Sse, lift_movhalf, kLow, "xmm, m64; m64, xmm"},
    {ZYDIS_MNEMONIC_MOVLPD, InsnClass::Sse, lift_movhalf, kLow, "xmm, m64; m64, xmm"},
    {ZYDIS_MNEMONIC_MOVHPS, InsnClass::Sse, lift_movhalf, kHigh, "xmm, m64; m64, xmm"},
    {ZYDIS_MNEMONIC_MOVHPD, InsnClass::Sse, lift_movhalf, kHigh, "xmm, m64; m64, xmm"},
    {ZYDIS_MNEMONIC_MOVHLPS, InsnClass::Sse, lift_movhl, 1, "xmm, xmm"},
    {ZYDIS_MNEMONIC_MOVLHPS, InsnClass::Sse, lift_movhl, 0, "xmm, xmm"},
    {ZYDIS_MNEMONIC_MOVMSKPS, InsnClass::Sse, lift_movmsk, L(Lane::I32), "r32/64, xmm"},
    {ZYDIS_MNEMONIC_MOVMSKPD, InsnClass::Sse, lift_movmsk, L(Lane::I64), "r32/64, xmm"},
    {ZYDIS_MNEMONIC_PMOVMSKB, InsnClass::Sse, lift_movmsk, L(Lane::I8), "r32/64, xmm"},
    P(PADDB), P(PADDW), P(PADDD), P(PADDQ), P(PSUBB), P(PSUBW), P(PSUBD), P(PSUBQ),
    P(PADDSB), P(PADDSW), P(PADDUSB), P(PADDUSW), P(PSUBSB), P(PSUBSW), P(PSUBUSB),
    P(PSUBUSW), P(PMULLW), P(PMULLD), P(PMULHW), P(PMULHUW), P(PAVGB), P(PAVGW),
    P(PMINUB), P(PMAXUB), P(PMINUW), P(PMAXUW), P(PMINUD), P(PMAXUD), P(PMINSB),
    P(PMAXSB), P(PMINSW), P(PMAXSW), P(PMINSD), P(PMAXSD), P(PAND), P(POR),
    P(PXOR), P(ANDPS), P(ANDPD), P(ORPS), P(ORPD), P(XORPS), P(XORPD),
    {ZYDIS_MNEMONIC_PANDN, InsnClass::Sse, lift_andn, 0, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_ANDNPS, InsnClass::Sse, lift_andn, 0, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_ANDNPD, InsnClass::Sse, lift_andn, 0, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PCMPEQB, InsnClass::Sse, lift_pcmp, 0, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PCMPEQW, InsnClass::Sse, lift_pcmp, 1, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PCMPEQD, InsnClass::Sse, lift_pcmp, 2, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PCMPEQQ, InsnClass::Sse, lift_pcmp, 3, "xmm, xmm/m128 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PCMPGTB, InsnClass::Sse, lift_pcmp, 4, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PCMPGTW, InsnClass::Sse, lift_pcmp, 5, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PCMPGTD, InsnClass::Sse, lift_pcmp, 6, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PCMPGTQ, InsnClass::Sse, lift_pcmp, 7, "xmm, xmm/m128 (SSE4.2 instruction; SSE4.2 not advertised)"},
    {ZYDIS_MNEMONIC_PABSB, InsnClass::Sse, lift_pabs, L(Lane::I8), "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PABSW, InsnClass::Sse, lift_pabs, L(Lane::I16), "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PABSD, InsnClass::Sse, lift_pabs, L(Lane::I32), "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PMULUDQ, InsnClass::Sse, lift_pmuludq, 0, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PMADDWD, InsnClass::Sse, lift_pmaddwd, 0, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PSADBW, InsnClass::Sse, lift_psadbw, 0, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PACKSSWB, InsnClass::Sse, lift_pack, kPackSsWb, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PACKSSDW, InsnClass::Sse, lift_pack, kPackSsDw, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PACKUSWB, InsnClass::Sse, lift_pack, kPackUsWb, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PACKUSDW, InsnClass::Sse, lift_pack, kPackUsDw, "xmm, xmm/m128 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PSLLW, InsnClass::Sse, lift_pshift, 0, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSLLD, InsnClass::Sse, lift_pshift, 1, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSLLQ, InsnClass::Sse, lift_pshift, 2, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSRLW, InsnClass::Sse, lift_pshift, 3, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSRLD, InsnClass::Sse, lift_pshift, 4, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSRLQ, InsnClass::Sse, lift_pshift, 5, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSRAW, InsnClass::Sse, lift_pshift, 6, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSRAD, InsnClass::Sse, lift_pshift, 7, "xmm, imm8/xmm/m128"},
    {ZYDIS_MNEMONIC_PSLLDQ, InsnClass::Sse, lift_pbyteshift, kLeft, "xmm, imm8"},
    {ZYDIS_MNEMONIC_PSRLDQ, InsnClass::Sse, lift_pbyteshift, kRight, "xmm, imm8"},
    {ZYDIS_MNEMONIC_PSHUFD, InsnClass::Sse, lift_pshufd, 0, "xmm, xmm/m128, imm8"},
    {ZYDIS_MNEMONIC_PSHUFLW, InsnClass::Sse, lift_pshufw, 0, "xmm, xmm/m128, imm8"},
    {ZYDIS_MNEMONIC_PSHUFHW, InsnClass::Sse, lift_pshufw, 1, "xmm, xmm/m128, imm8"},
    {ZYDIS_MNEMONIC_SHUFPS, InsnClass::Sse, lift_shufps, 0, "xmm, xmm/m128, imm8"},
    {ZYDIS_MNEMONIC_SHUFPD, InsnClass::Sse, lift_shufpd, 0, "xmm, xmm/m128, imm8"},
    {ZYDIS_MNEMONIC_PUNPCKLBW, InsnClass::Sse, lift_unpack, 2, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PUNPCKHBW, InsnClass::Sse, lift_unpack, 3, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PUNPCKLWD, InsnClass::Sse, lift_unpack, 4, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PUNPCKHWD, InsnClass::Sse, lift_unpack, 5, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PUNPCKLDQ, InsnClass::Sse, lift_unpack, 8, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PUNPCKHDQ, InsnClass::Sse, lift_unpack, 9, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PUNPCKLQDQ, InsnClass::Sse, lift_unpack, 16, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PUNPCKHQDQ, InsnClass::Sse, lift_unpack, 17, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_UNPCKLPS, InsnClass::Sse, lift_unpack, 8, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_UNPCKHPS, InsnClass::Sse, lift_unpack, 9, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_UNPCKLPD, InsnClass::Sse, lift_unpack, 16, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_UNPCKHPD, InsnClass::Sse, lift_unpack, 17, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_PALIGNR, InsnClass::Sse, lift_palignr, 0, "xmm, xmm/m128, imm8 (SSSE3)"},
    {ZYDIS_MNEMONIC_PSHUFB, InsnClass::Sse, lift_pshufb, 0, "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PINSRB, InsnClass::Sse, lift_pinsr, L(Lane::I8), "xmm, r32/m8, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PINSRW, InsnClass::Sse, lift_pinsr, L(Lane::I16), "xmm, r32/m16, imm8"},
    {ZYDIS_MNEMONIC_PINSRD, InsnClass::Sse, lift_pinsr, L(Lane::I32), "xmm, r/m32, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PINSRQ, InsnClass::Sse, lift_pinsr, L(Lane::I64), "xmm, r/m64, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PEXTRB, InsnClass::Sse, lift_pextr, L(Lane::I8), "r32/64/m8, xmm, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PEXTRW, InsnClass::Sse, lift_pextr, L(Lane::I16), "r32/64/m16, xmm, imm8"},
    {ZYDIS_MNEMONIC_PEXTRD, InsnClass::Sse, lift_pextr, L(Lane::I32), "r/m32, xmm, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PEXTRQ, InsnClass::Sse, lift_pextr, L(Lane::I64), "r/m64, xmm, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PTEST, InsnClass::Sse, lift_ptest, 0, "xmm, xmm/m128 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVZXBW, InsnClass::Sse, lift_pmovx, 0x12, "xmm, xmm/m64 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVZXBD, InsnClass::Sse, lift_pmovx, 0x14, "xmm, xmm/m32 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVZXBQ, InsnClass::Sse, lift_pmovx, 0x18, "xmm, xmm/m16 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVZXWD, InsnClass::Sse, lift_pmovx, 0x24, "xmm, xmm/m64 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVZXWQ, InsnClass::Sse, lift_pmovx, 0x28, "xmm, xmm/m32 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVZXDQ, InsnClass::Sse, lift_pmovx, 0x48, "xmm, xmm/m64 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVSXBW, InsnClass::Sse, lift_pmovx, 0x112, "xmm, xmm/m64 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVSXBD, InsnClass::Sse, lift_pmovx, 0x114, "xmm, xmm/m32 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVSXBQ, InsnClass::Sse, lift_pmovx, 0x118, "xmm, xmm/m16 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVSXWD, InsnClass::Sse, lift_pmovx, 0x124, "xmm, xmm/m64 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVSXWQ, InsnClass::Sse, lift_pmovx, 0x128, "xmm, xmm/m32 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PMOVSXDQ, InsnClass::Sse, lift_pmovx, 0x148, "xmm, xmm/m64 (SSE4.1)"},
};
#undef P
#undef F

}  // namespace

LiftStatus lift_sse_movsd(Lifter& l) { return lift_movs(l, Lane::F64); }

std::span<const LiftEntry> sse_entries() { return kEntries; }

}  // namespace vm::translate::x86
