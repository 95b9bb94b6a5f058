// SSE, SSE2 and the SSE3/SSSE3/SSE4.1 instructions compilers and libc use.
//
// Most rows are table-driven: a packed row names the vm-ir op and lane type
// (paddw = add.i16x8), a scalar row the float op and lane (addsd = fadd on
// f64 lane 0, upper lane kept). Shuffles become vshuffle with a byte mask
// computed from the immediate. Alignment checks of movaps/movdqa and
// friends are not modelled (misaligned accesses succeed). MMX-register
// forms are not supported.
#include <array>

#include "x86/lifter.hpp"

namespace vm::translate::x86 {

using ir::CmpPred;
using ir::FCmpPred;
using ir::Lane;
using ir::Opcode;
using ir::Rounding;

namespace {

using Mask = std::array<uint8_t, 16>;
constexpr uint8_t kZeroByte = 0x80;

bool is_xmm(const Lifter& l, int i) {
  return l.is_reg(i) && ZydisRegisterGetClass(l.op(i).reg.value) == ZYDIS_REGCLASS_XMM;
}
bool has_mmx(const Lifter& l) {
  for (int i = 0; i < l.in.zi.operand_count_visible; ++i)
    if (l.is_reg(i) && ZydisRegisterGetClass(l.op(i).reg.value) == ZYDIS_REGCLASS_MMX) return true;
  return false;
}

Value zero_v(Lifter& l) { return l.b.constant(Type::V128, 0, 0); }
Value ones_v(Lifter& l) { return l.b.constant(Type::V128, ~uint64_t{0}, ~uint64_t{0}); }

// A whole xmm operand (register or m128).
Value vec(Lifter& l, int i) {
  if (l.is_mem(i)) return l.b.load(Type::V128, l.address(i));
  return l.reg(l.op(i).reg.value);
}

// The low element of operand i as a scalar of type t (xmm lane 0 or memory).
Value scalar(Lifter& l, int i, Type t) {
  if (l.is_mem(i)) return l.b.load(t, l.address(i));
  if (!is_xmm(l, i)) return l.read_as(i, t);
  Lane lane = t == Type::F32 ? Lane::F32 : t == Type::F64 ? Lane::F64 : t == Type::I32 ? Lane::I32 : Lane::I64;
  return l.b.vextract(lane, vec(l, i), 0);
}

Value shuffle(Lifter& l, Value a, Value b, const Mask& m) { return l.b.vshuffle(a, b, m); }

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

// ---------------------------------------------------------------- float ----

struct FloatRow {
  Opcode op;
  Lane lane;
  bool scalar;
};
constexpr FloatRow kFloat[] = {
    {Opcode::FAdd, Lane::F32, true},  {Opcode::FAdd, Lane::F64, true},  {Opcode::FAdd, Lane::F32, false},
    {Opcode::FAdd, Lane::F64, false}, {Opcode::FSub, Lane::F32, true},  {Opcode::FSub, Lane::F64, true},
    {Opcode::FSub, Lane::F32, false}, {Opcode::FSub, Lane::F64, false}, {Opcode::FMul, Lane::F32, true},
    {Opcode::FMul, Lane::F64, true},  {Opcode::FMul, Lane::F32, false}, {Opcode::FMul, Lane::F64, false},
    {Opcode::FDiv, Lane::F32, true},  {Opcode::FDiv, Lane::F64, true},  {Opcode::FDiv, Lane::F32, false},
    {Opcode::FDiv, Lane::F64, false}, {Opcode::FMin, Lane::F32, true},  {Opcode::FMin, Lane::F64, true},
    {Opcode::FMin, Lane::F32, false}, {Opcode::FMin, Lane::F64, false}, {Opcode::FMax, Lane::F32, true},
    {Opcode::FMax, Lane::F64, true},  {Opcode::FMax, Lane::F32, false}, {Opcode::FMax, Lane::F64, false},
    {Opcode::FSqrt, Lane::F32, true}, {Opcode::FSqrt, Lane::F64, true}, {Opcode::FSqrt, Lane::F32, false},
    {Opcode::FSqrt, Lane::F64, false},
};

LiftStatus lift_float(Lifter& l, int row) {
  const FloatRow& r = kFloat[row];
  if (r.scalar) {
    Type t = ir::lane_type(r.lane);
    Value bval = scalar(l, 1, t);
    Value dst = vec(l, 0);
    Value res = r.op == Opcode::FSqrt ? l.b.fsqrt(bval) : l.b.farith(r.op, l.b.vextract(r.lane, dst, 0), bval);
    l.write(0, l.b.vinsert(r.lane, dst, res, 0));
    return LiftStatus::Continue;
  }
  Value bval = vec(l, 1);
  if (r.op == Opcode::FSqrt) {
    l.write(0, l.b.fsqrt(bval, Rounding::Dyn, r.lane));
    return LiftStatus::Continue;
  }
  Value a = vec(l, 0);
  l.write(0, l.b.farith(r.op, a, bval, Rounding::Dyn, r.lane));
  return LiftStatus::Continue;
}

// cmpss/cmpsd/cmpps/cmppd with predicate imm8 & 7. aux = lane, + 16 when scalar.
LiftStatus lift_fcmp(Lifter& l, int aux) {
  Lane lane = static_cast<Lane>(aux & 15);
  bool is_scalar = aux >= 16;
  auto pred = static_cast<FCmpPred>(l.op(2).imm.value.u & 7);
  if ((l.op(2).imm.value.u & 0xff) > 7) return LiftStatus::Unsupported;  // AVX predicates
  if (!is_scalar) {
    Value a = vec(l, 0), b = vec(l, 1);
    l.write(0, l.b.fcmp(pred, a, b, lane));
    return LiftStatus::Continue;
  }
  Type t = ir::lane_type(lane);
  Value bval = scalar(l, 1, t);
  Value dst = vec(l, 0);
  Value r = l.b.fcmp(pred, l.b.vextract(lane, dst, 0), bval);
  Lane ilane = lane == Lane::F32 ? Lane::I32 : Lane::I64;
  Type it = ir::lane_type(ilane);
  Value mask = l.b.select(r, l.c(it, ~uint64_t{0}), l.c(it, 0));
  l.write(0, l.b.vinsert(ilane, dst, mask, 0));
  return LiftStatus::Continue;
}

LiftStatus lift_sse_cmpsd_impl(Lifter& l) { return lift_fcmp(l, 16 + static_cast<int>(Lane::F64)); }

// ucomiss/ucomisd/comiss/comisd: ZF PF CF = 111 unordered, 000 greater,
// 001 less, 100 equal; OF SF AF cleared. (comis raises #IA on QNaN, which
// is masked by default and not modelled.)
LiftStatus lift_ucomi(Lifter& l, int lane) {
  Type t = ir::lane_type(static_cast<Lane>(lane));
  Value b = scalar(l, 1, t);
  Value a = l.b.vextract(static_cast<Lane>(lane), vec(l, 0), 0);
  Value unord = l.b.fcmp(FCmpPred::Unord, a, b);
  l.set_flag(X86Reg::Zf, l.b.or_(l.b.fcmp(FCmpPred::Eq, a, b), unord));
  l.set_flag(X86Reg::Pf, unord);
  l.set_flag(X86Reg::Cf, l.b.or_(l.b.fcmp(FCmpPred::Lt, a, b), unord));
  for (X86Reg f : {X86Reg::Of, X86Reg::Sf, X86Reg::Af}) l.set_flag(f, l.b.i1(false));
  return LiftStatus::Continue;
}

enum CvtKind {
  kSi2Ss, kSi2Sd, kSs2Sd, kSd2Ss, kSs2Si, kSd2Si, kTSs2Si, kTSd2Si,
  kDq2Ps, kPs2Dq, kTPs2Dq, kDq2Pd, kPd2Dq, kTPd2Dq, kPs2Pd, kPd2Ps,
};

LiftStatus lift_cvt(Lifter& l, int kind) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  switch (kind) {
    case kSi2Ss:
    case kSi2Sd: {
      Lane lane = kind == kSi2Ss ? Lane::F32 : Lane::F64;
      Value v = l.read(1);
      Value f = l.b.sitofp(v, ir::lane_type(lane));
      l.write(0, l.b.vinsert(lane, vec(l, 0), f, 0));
      return LiftStatus::Continue;
    }
    case kSs2Sd: {
      Value f = l.b.fcvt(scalar(l, 1, Type::F32), Type::F64);
      l.write(0, l.b.vinsert(Lane::F64, vec(l, 0), f, 0));
      return LiftStatus::Continue;
    }
    case kSd2Ss: {
      Value f = l.b.fcvt(scalar(l, 1, Type::F64), Type::F32);
      l.write(0, l.b.vinsert(Lane::F32, vec(l, 0), f, 0));
      return LiftStatus::Continue;
    }
    case kSs2Si: case kSd2Si: case kTSs2Si: case kTSd2Si: {
      Type ft = (kind == kSs2Si || kind == kTSs2Si) ? Type::F32 : Type::F64;
      Rounding rm = kind >= kTSs2Si ? Rounding::Rtz : Rounding::Dyn;
      l.write(0, l.b.fptosi(scalar(l, 1, ft), l.type(0), rm));
      return LiftStatus::Continue;
    }
    case kDq2Ps: l.write(0, l.b.sitofp(vec(l, 1), Type::V128, Rounding::Dyn, Lane::I32)); return LiftStatus::Continue;
    case kPs2Dq: l.write(0, l.b.fptosi(vec(l, 1), Type::V128, Rounding::Dyn, Lane::F32)); return LiftStatus::Continue;
    case kTPs2Dq: l.write(0, l.b.fptosi(vec(l, 1), Type::V128, Rounding::Rtz, Lane::F32)); return LiftStatus::Continue;
    default: break;
  }
  // Two-element conversions between 32- and 64-bit lanes.
  Value src;
  if (l.is_mem(1) && l.bits(1) == 64) {
    src = l.b.bitcast(l.b.zext(l.b.load(Type::I64, l.address(1)), Type::I128), Type::V128);
  } else {
    src = vec(l, 1);
  }
  Value out = zero_v(l);
  for (uint32_t i = 0; i < 2; ++i) {
    switch (kind) {
      case kDq2Pd: out = l.b.vinsert(Lane::F64, out, l.b.sitofp(l.b.vextract(Lane::I32, src, i), Type::F64), i); break;
      case kPd2Dq:
      case kTPd2Dq: {
        Rounding rm = kind == kTPd2Dq ? Rounding::Rtz : Rounding::Dyn;
        out = l.b.vinsert(Lane::I32, out, l.b.fptosi(l.b.vextract(Lane::F64, src, i), Type::I32, rm), i);
        break;
      }
      case kPs2Pd: out = l.b.vinsert(Lane::F64, out, l.b.fcvt(l.b.vextract(Lane::F32, src, i), Type::F64), i); break;
      default: out = l.b.vinsert(Lane::F32, out, l.b.fcvt(l.b.vextract(Lane::F64, src, i), Type::F32), i); break;
    }
  }
  l.write(0, out);
  return LiftStatus::Continue;
}

// roundss/roundsd/roundps/roundpd: imm bits 1:0 the mode, bit 2 = use MXCSR.RC.
LiftStatus lift_round(Lifter& l, int aux) {
  Lane lane = static_cast<Lane>(aux & 15);
  bool is_scalar = aux >= 16;
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u);
  static constexpr Rounding kModes[] = {Rounding::Rne, Rounding::Rdn, Rounding::Rup, Rounding::Rtz};
  Rounding rm = (imm & 4) ? Rounding::Dyn : kModes[imm & 3];
  if (is_scalar) {
    Value r = l.b.fround(scalar(l, 1, ir::lane_type(lane)), rm);
    l.write(0, l.b.vinsert(lane, vec(l, 0), r, 0));
    return LiftStatus::Continue;
  }
  Value src = vec(l, 1);
  Value out = src;
  for (uint32_t i = 0; i < ir::lane_count(lane); ++i)
    out = l.b.vinsert(lane, out, l.b.fround(l.b.vextract(lane, src, i), rm), i);
  l.write(0, out);
  return LiftStatus::Continue;
}

// -------------------------------------------------------- control/state ----

LiftStatus lift_ldmxcsr(Lifter& l, int) {
  l.set_state(X86Reg::Mxcsr, l.b.load(Type::I32, l.address(0)));
  return LiftStatus::Continue;
}
LiftStatus lift_stmxcsr(Lifter& l, int) {
  l.b.store(l.address(0), l.b.get_reg(X86Reg::Mxcsr, Type::I32));
  return LiftStatus::Continue;
}

// fxsave/fxrstor (64-bit layout): x87 state as an empty FPU with the
// control word we keep, MXCSR with mask 0xffff, and xmm0..15 at 160.
LiftStatus lift_fxsave(Lifter& l, int) {
  Value base = l.address(0);
  auto at = [&](uint64_t off) { return l.b.add(base, l.c(Type::I64, off)); };
  l.b.store(at(0), l.b.get_reg(X86Reg::FpuCw, Type::I16));
  l.b.store(at(2), l.c(Type::I16, 0));        // FSW
  l.b.store(at(4), l.c(Type::I16, 0));        // FTW (abridged): all empty
  l.b.store(at(6), l.c(Type::I16, 0));        // FOP
  l.b.store(at(8), l.c(Type::I64, 0));        // FIP
  l.b.store(at(16), l.c(Type::I64, 0));       // FDP
  l.b.store(at(24), l.b.get_reg(X86Reg::Mxcsr, Type::I32));
  l.b.store(at(28), l.c(Type::I32, 0xffff));  // MXCSR_MASK
  for (int i = 0; i < 8; ++i) l.b.store(at(32 + 16 * i), zero_v(l));
  for (unsigned i = 0; i < 16; ++i) l.b.store(at(160 + 16 * i), l.b.get_reg(core::xmm_reg(i), Type::V128));
  return LiftStatus::Continue;
}
LiftStatus lift_fxrstor(Lifter& l, int) {
  Value base = l.address(0);
  auto at = [&](uint64_t off) { return l.b.add(base, l.c(Type::I64, off)); };
  Value cw = l.b.load(Type::I16, at(0));
  Value mxcsr = l.b.load(Type::I32, at(24));
  Value regs[16];
  for (unsigned i = 0; i < 16; ++i) regs[i] = l.b.load(Type::V128, at(160 + 16 * i));
  l.set_state(X86Reg::FpuCw, cw);
  l.set_state(X86Reg::Mxcsr, mxcsr);
  for (unsigned i = 0; i < 16; ++i) l.set_state(core::xmm_reg(i), regs[i]);
  return LiftStatus::Continue;
}

#define P(m) {ZYDIS_MNEMONIC_##m, InsnClass::Sse, lift_packed, 0, "xmm, xmm/m128"}
#define F(m, row, forms) {ZYDIS_MNEMONIC_##m, InsnClass::Sse, lift_float, row, forms}
constexpr int L(Lane x) { return static_cast<int>(x); }

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_MOVAPS, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128 (alignment not checked)"},
    {ZYDIS_MNEMONIC_MOVAPD, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128 (alignment not checked)"},
    {ZYDIS_MNEMONIC_MOVUPS, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128"},
    {ZYDIS_MNEMONIC_MOVUPD, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128"},
    {ZYDIS_MNEMONIC_MOVDQA, InsnClass::Sse, lift_mov128, 0, "xmm <-> xmm/m128 (alignment not checked)"},
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
    F(ADDSS, 0, "xmm, xmm/m32"), F(ADDSD, 1, "xmm, xmm/m64"), F(ADDPS, 2, "xmm, xmm/m128"), F(ADDPD, 3, "xmm, xmm/m128"),
    F(SUBSS, 4, "xmm, xmm/m32"), F(SUBSD, 5, "xmm, xmm/m64"), F(SUBPS, 6, "xmm, xmm/m128"), F(SUBPD, 7, "xmm, xmm/m128"),
    F(MULSS, 8, "xmm, xmm/m32"), F(MULSD, 9, "xmm, xmm/m64"), F(MULPS, 10, "xmm, xmm/m128"), F(MULPD, 11, "xmm, xmm/m128"),
    F(DIVSS, 12, "xmm, xmm/m32"), F(DIVSD, 13, "xmm, xmm/m64"), F(DIVPS, 14, "xmm, xmm/m128"), F(DIVPD, 15, "xmm, xmm/m128"),
    F(MINSS, 16, "xmm, xmm/m32"), F(MINSD, 17, "xmm, xmm/m64"), F(MINPS, 18, "xmm, xmm/m128"), F(MINPD, 19, "xmm, xmm/m128"),
    F(MAXSS, 20, "xmm, xmm/m32"), F(MAXSD, 21, "xmm, xmm/m64"), F(MAXPS, 22, "xmm, xmm/m128"), F(MAXPD, 23, "xmm, xmm/m128"),
    F(SQRTSS, 24, "xmm, xmm/m32"), F(SQRTSD, 25, "xmm, xmm/m64"), F(SQRTPS, 26, "xmm, xmm/m128"), F(SQRTPD, 27, "xmm, xmm/m128"),
    {ZYDIS_MNEMONIC_CMPSS, InsnClass::Sse, lift_fcmp, 16 + L(Lane::F32), "xmm, xmm/m32, imm8 0..7"},
    {ZYDIS_MNEMONIC_CMPPS, InsnClass::Sse, lift_fcmp, L(Lane::F32), "xmm, xmm/m128, imm8 0..7"},
    {ZYDIS_MNEMONIC_CMPPD, InsnClass::Sse, lift_fcmp, L(Lane::F64), "xmm, xmm/m128, imm8 0..7"},
    {ZYDIS_MNEMONIC_UCOMISS, InsnClass::Sse, lift_ucomi, L(Lane::F32), "xmm, xmm/m32 (ZF PF CF; OF SF AF cleared)"},
    {ZYDIS_MNEMONIC_UCOMISD, InsnClass::Sse, lift_ucomi, L(Lane::F64), "xmm, xmm/m64 (ZF PF CF; OF SF AF cleared)"},
    {ZYDIS_MNEMONIC_COMISS, InsnClass::Sse, lift_ucomi, L(Lane::F32), "xmm, xmm/m32 (as ucomiss; #IA not modelled)"},
    {ZYDIS_MNEMONIC_COMISD, InsnClass::Sse, lift_ucomi, L(Lane::F64), "xmm, xmm/m64 (as ucomisd; #IA not modelled)"},
    {ZYDIS_MNEMONIC_CVTSI2SS, InsnClass::Sse, lift_cvt, kSi2Ss, "xmm, r/m32/64 (MXCSR rounding)"},
    {ZYDIS_MNEMONIC_CVTSI2SD, InsnClass::Sse, lift_cvt, kSi2Sd, "xmm, r/m32/64"},
    {ZYDIS_MNEMONIC_CVTSS2SD, InsnClass::Sse, lift_cvt, kSs2Sd, "xmm, xmm/m32"},
    {ZYDIS_MNEMONIC_CVTSD2SS, InsnClass::Sse, lift_cvt, kSd2Ss, "xmm, xmm/m64 (MXCSR rounding)"},
    {ZYDIS_MNEMONIC_CVTSS2SI, InsnClass::Sse, lift_cvt, kSs2Si, "r32/64, xmm/m32 (MXCSR rounding; indefinite on overflow)"},
    {ZYDIS_MNEMONIC_CVTSD2SI, InsnClass::Sse, lift_cvt, kSd2Si, "r32/64, xmm/m64 (MXCSR rounding; indefinite on overflow)"},
    {ZYDIS_MNEMONIC_CVTTSS2SI, InsnClass::Sse, lift_cvt, kTSs2Si, "r32/64, xmm/m32 (truncating)"},
    {ZYDIS_MNEMONIC_CVTTSD2SI, InsnClass::Sse, lift_cvt, kTSd2Si, "r32/64, xmm/m64 (truncating)"},
    {ZYDIS_MNEMONIC_CVTDQ2PS, InsnClass::Sse, lift_cvt, kDq2Ps, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTPS2DQ, InsnClass::Sse, lift_cvt, kPs2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTTPS2DQ, InsnClass::Sse, lift_cvt, kTPs2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTDQ2PD, InsnClass::Sse, lift_cvt, kDq2Pd, "xmm, xmm/m64"},
    {ZYDIS_MNEMONIC_CVTPD2DQ, InsnClass::Sse, lift_cvt, kPd2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTTPD2DQ, InsnClass::Sse, lift_cvt, kTPd2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTPS2PD, InsnClass::Sse, lift_cvt, kPs2Pd, "xmm, xmm/m64"},
    {ZYDIS_MNEMONIC_CVTPD2PS, InsnClass::Sse, lift_cvt, kPd2Ps, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_ROUNDSS, InsnClass::Sse, lift_round, 16 + L(Lane::F32), "xmm, xmm/m32, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_ROUNDSD, InsnClass::Sse, lift_round, 16 + L(Lane::F64), "xmm, xmm/m64, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_ROUNDPS, InsnClass::Sse, lift_round, L(Lane::F32), "xmm, xmm/m128, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_ROUNDPD, InsnClass::Sse, lift_round, L(Lane::F64), "xmm, xmm/m128, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_LDMXCSR, InsnClass::Sse, lift_ldmxcsr, 0, "m32 (rounding mode honoured by later float ops)"},
    {ZYDIS_MNEMONIC_STMXCSR, InsnClass::Sse, lift_stmxcsr, 0, "m32"},
    {ZYDIS_MNEMONIC_FXSAVE, InsnClass::Sse, lift_fxsave, 0, "m512 (x87 part: control word, empty stack)"},
    {ZYDIS_MNEMONIC_FXRSTOR, InsnClass::Sse, lift_fxrstor, 0, "m512 (restores control word, MXCSR, xmm)"},
    {ZYDIS_MNEMONIC_FXSAVE64, InsnClass::Sse, lift_fxsave, 0, "m512"},
    {ZYDIS_MNEMONIC_FXRSTOR64, InsnClass::Sse, lift_fxrstor, 0, "m512"},
};
#undef P
#undef F

}  // namespace

LiftStatus lift_sse_movsd(Lifter& l) { return lift_movs(l, Lane::F64); }
LiftStatus lift_sse_cmpsd(Lifter& l) { return lift_sse_cmpsd_impl(l); }

std::span<const LiftEntry> sse_entries() { return kEntries; }

}  // namespace vm::translate::x86
