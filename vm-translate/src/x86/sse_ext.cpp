// The SSE3, SSSE3 and SSE4.1 forms not covered by sse_int.cpp and
// sse_float.cpp: horizontal and alternating arithmetic, duplicating moves,
// sign/multiply-add/rounding-multiply words, blends (immediate and xmm0
// variable), insertps/extractps, dot products, pmuldq, phminposuw, mpsadbw.
//
// Each is expressed with existing lane-wise vm-ir ops and byte shuffles:
// horizontal ops gather the even and the odd elements of dst||src with two
// shuffles and combine them lane-wise, so the element order (and for floats
// the operand order that decides which NaN survives) is the SDM's.
#include "x86/sse_util.hpp"

namespace vm::translate::x86 {

using ir::CmpPred;
using ir::Lane;
using ir::Opcode;
using namespace sse;

namespace {

Value splat_const(Lifter& l, Lane lane, uint64_t v) { return l.b.vsplat(lane, l.c(ir::lane_type(lane), v)); }

// Byte mask selecting elements `idx[k]` (element indices into a||b, element
// size `esize` bytes) into result element k.
template <size_t N>
Mask element_mask(const std::array<int, N>& idx, int esize) {
  Mask m{};
  for (size_t k = 0; k < N; ++k)
    for (int j = 0; j < esize; ++j)
      m[k * esize + j] = idx[k] < 0 ? kZeroByte : static_cast<uint8_t>(idx[k] * esize + j);
  return m;
}

// Even and odd elements of d||s in order: (d0, d2, .., s0, s2, ..) and (d1, d3, .., s1, s3, ..).
std::pair<Value, Value> even_odd(Lifter& l, Value d, Value s, Lane lane) {
  int esize = static_cast<int>(ir::lane_bits(lane) / 8);
  int n = 16 / esize;
  Mask even{}, odd{};
  for (int k = 0; k < n; ++k) {
    int src_elem = 2 * k;  // element index into d||s (d: 0..n-1, s: n..2n-1)
    for (int j = 0; j < esize; ++j) {
      even[k * esize + j] = static_cast<uint8_t>(src_elem * esize + j);
      odd[k * esize + j] = static_cast<uint8_t>((src_elem + 1) * esize + j);
    }
  }
  return {shuffle(l, d, s, even), shuffle(l, d, s, odd)};
}

// ------------------------------------------------------- horizontal ops ----

struct HorizRow {
  ZydisMnemonic mnemonic;
  Opcode op;
  Lane lane;
};
constexpr HorizRow kHoriz[] = {
    {ZYDIS_MNEMONIC_HADDPS, Opcode::FAdd, Lane::F32},   {ZYDIS_MNEMONIC_HADDPD, Opcode::FAdd, Lane::F64},
    {ZYDIS_MNEMONIC_HSUBPS, Opcode::FSub, Lane::F32},   {ZYDIS_MNEMONIC_HSUBPD, Opcode::FSub, Lane::F64},
    {ZYDIS_MNEMONIC_PHADDW, Opcode::Add, Lane::I16},    {ZYDIS_MNEMONIC_PHADDD, Opcode::Add, Lane::I32},
    {ZYDIS_MNEMONIC_PHADDSW, Opcode::AddSatS, Lane::I16}, {ZYDIS_MNEMONIC_PHSUBW, Opcode::Sub, Lane::I16},
    {ZYDIS_MNEMONIC_PHSUBD, Opcode::Sub, Lane::I32},    {ZYDIS_MNEMONIC_PHSUBSW, Opcode::SubSatS, Lane::I16},
};

LiftStatus lift_horizontal(Lifter& l, int row) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  const HorizRow& r = kHoriz[row];
  auto [even, odd] = even_odd(l, vec(l, 0), vec(l, 1), r.lane);
  Value out = ir::lane_is_float(r.lane) ? l.b.farith(r.op, even, odd, ir::Rounding::Dyn, r.lane)
                                        : l.b.binary(r.op, even, odd, r.lane);
  l.write(0, out);
  return LiftStatus::Continue;
}

// addsubps/addsubpd: even lanes d - s, odd lanes d + s.
LiftStatus lift_addsub(Lifter& l, int lane_int) {
  Lane lane = static_cast<Lane>(lane_int);
  Value d = vec(l, 0), s = vec(l, 1);
  Value diff = l.b.farith(Opcode::FSub, d, s, ir::Rounding::Dyn, lane);
  Value sum = l.b.farith(Opcode::FAdd, d, s, ir::Rounding::Dyn, lane);
  if (lane == Lane::F32) {
    l.write(0, shuffle(l, diff, sum, element_mask<4>({0, 5, 2, 7}, 4)));
  } else {
    l.write(0, shuffle(l, diff, sum, element_mask<2>({0, 3}, 8)));
  }
  return LiftStatus::Continue;
}

// ------------------------------------------------------ duplicating moves ----

enum DupKind { kDupLowQword, kDupOddDwords, kDupEvenDwords };
LiftStatus lift_movdup(Lifter& l, int kind) {
  if (kind == kDupLowQword) {
    Value lo = l.is_mem(1) ? l.b.load(Type::I64, l.address(1)) : l.b.vextract(Lane::I64, vec(l, 1), 0);
    l.write(0, l.b.vsplat(Lane::I64, lo));
    return LiftStatus::Continue;
  }
  Value s = vec(l, 1);
  l.write(0, shuffle(l, s, s,
                     kind == kDupOddDwords ? element_mask<4>({1, 1, 3, 3}, 4) : element_mask<4>({0, 0, 2, 2}, 4)));
  return LiftStatus::Continue;
}

// --------------------------------------------------------- SSSE3 words ----

// psignb/w/d: each dst element negated where src < 0, zeroed where src == 0.
LiftStatus lift_psign(Lifter& l, int lane_int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Lane lane = static_cast<Lane>(lane_int);
  Value d = vec(l, 0), s = vec(l, 1);
  Value zero = zero_v(l);
  Value negative = l.b.cmp(CmpPred::Slt, s, zero, lane);
  Value is_zero = l.b.cmp(CmpPred::Eq, s, zero, lane);
  Value negated = l.b.binary(Opcode::Sub, zero, d, lane);
  // (d & ~neg) | (negated & neg), then & ~is_zero; masks are all-ones lanes.
  Value not_neg = l.b.binary(Opcode::Xor, negative, ones_v(l), Lane::I64);
  Value picked = l.b.binary(Opcode::Or, l.b.binary(Opcode::And, d, not_neg, Lane::I64),
                            l.b.binary(Opcode::And, negated, negative, Lane::I64), Lane::I64);
  Value not_zero = l.b.binary(Opcode::Xor, is_zero, ones_v(l), Lane::I64);
  l.write(0, l.b.binary(Opcode::And, picked, not_zero, Lane::I64));
  return LiftStatus::Continue;
}

// pmaddubsw: unsigned bytes of dst times signed bytes of src, adjacent
// products summed into signed-saturated words. Each product fits in i16.
LiftStatus lift_pmaddubsw(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value d = vec(l, 0), s = vec(l, 1);
  Value eight = splat_const(l, Lane::I16, 8);
  Value d_even = l.b.binary(Opcode::And, d, splat_const(l, Lane::I16, 0xff), Lane::I16);
  Value d_odd = l.b.binary(Opcode::LShr, d, eight, Lane::I16);
  Value s_even = l.b.binary(Opcode::AShr, l.b.binary(Opcode::Shl, s, eight, Lane::I16), eight, Lane::I16);
  Value s_odd = l.b.binary(Opcode::AShr, s, eight, Lane::I16);
  Value p_even = l.b.binary(Opcode::Mul, d_even, s_even, Lane::I16);
  Value p_odd = l.b.binary(Opcode::Mul, d_odd, s_odd, Lane::I16);
  l.write(0, l.b.binary(Opcode::AddSatS, p_even, p_odd, Lane::I16));
  return LiftStatus::Continue;
}

// pmulhrsw: bits 30..15 of (a * b + 0x4000) per signed word. With the 32-bit
// product split into hi:lo words, adding 0x4000 to lo may carry into hi.
LiftStatus lift_pmulhrsw(Lifter& l, int) {
  if (has_mmx(l)) return LiftStatus::Unsupported;
  Value a = vec(l, 0), b = vec(l, 1);
  Value hi = l.b.binary(Opcode::MulHiS, a, b, Lane::I16);
  Value lo = l.b.binary(Opcode::Mul, a, b, Lane::I16);
  Value lo2 = l.b.binary(Opcode::Add, lo, splat_const(l, Lane::I16, 0x4000), Lane::I16);
  Value carry = l.b.cmp(CmpPred::Ult, lo2, lo, Lane::I16);  // all-ones lanes = -1
  Value hi2 = l.b.binary(Opcode::Sub, hi, carry, Lane::I16);
  Value out = l.b.binary(Opcode::Or, l.b.binary(Opcode::Shl, hi2, splat_const(l, Lane::I16, 1), Lane::I16),
                         l.b.binary(Opcode::LShr, lo2, splat_const(l, Lane::I16, 15), Lane::I16), Lane::I16);
  l.write(0, out);
  return LiftStatus::Continue;
}

// ------------------------------------------------------------ blends ----

// blendps/blendpd/pblendw: element i from src where imm bit i is set.
LiftStatus lift_blend_imm(Lifter& l, int esize) {
  Value d = vec(l, 0), s = vec(l, 1);
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u);
  Mask m{};
  for (int i = 0; i < 16; ++i) {
    int elem = i / esize;
    m[i] = static_cast<uint8_t>(((imm >> elem) & 1) ? 16 + i : i);
  }
  l.write(0, shuffle(l, d, s, m));
  return LiftStatus::Continue;
}

// blendvps/blendvpd/pblendvb: element from src where the sign bit of the
// same element of xmm0 (implicit operand) is set.
LiftStatus lift_blendv(Lifter& l, int lane_int) {
  Lane lane = static_cast<Lane>(lane_int);
  Value d = vec(l, 0), s = vec(l, 1);
  Value sel = l.b.cmp(CmpPred::Slt, l.reg(ZYDIS_REGISTER_XMM0), zero_v(l), lane);
  Value keep = l.b.binary(Opcode::Xor, sel, ones_v(l), Lane::I64);
  l.write(0, l.b.binary(Opcode::Or, l.b.binary(Opcode::And, d, keep, Lane::I64),
                        l.b.binary(Opcode::And, s, sel, Lane::I64), Lane::I64));
  return LiftStatus::Continue;
}

// -------------------------------------------------- insertps / extractps ----

// insertps dst, src, imm: dst[imm 5:4] := src[imm 7:6] (a memory source is
// one f32), then dwords named by imm 3:0 become zero.
LiftStatus lift_insertps(Lifter& l, int) {
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u & 0xff);
  Value elem = l.is_mem(1) ? l.b.load(Type::I32, l.address(1)) : l.b.vextract(Lane::I32, vec(l, 1), (imm >> 6) & 3);
  Value out = l.b.vinsert(Lane::I32, vec(l, 0), elem, (imm >> 4) & 3);
  if (imm & 0xf) {
    uint64_t lo = ((imm & 1) ? 0 : 0xffffffffULL) | ((imm & 2) ? 0 : 0xffffffffULL << 32);
    uint64_t hi = ((imm & 4) ? 0 : 0xffffffffULL) | ((imm & 8) ? 0 : 0xffffffffULL << 32);
    out = l.b.binary(Opcode::And, out, l.b.constant(Type::V128, lo, hi), Lane::I64);
  }
  l.write(0, out);
  return LiftStatus::Continue;
}

// extractps r/m32, xmm, imm: dword imm 1:0 (a 64-bit register destination is zero-extended).
LiftStatus lift_extractps(Lifter& l, int) {
  unsigned idx = static_cast<unsigned>(l.op(2).imm.value.u & 3);
  Value v = l.b.vextract(Lane::I32, vec(l, 1), idx);
  l.write(0, l.is_mem(0) ? v : l.b.zext_or_trunc(v, l.type(0)));
  return LiftStatus::Continue;
}

// -------------------------------------------------------- dot products ----

// dpps/dppd: products of the elements selected by imm 7:4 (others +0.0),
// summed pairwise in the SDM's order, written to the elements selected by
// imm 3:0 (others +0.0). Rounding by MXCSR at every step.
LiftStatus lift_dp(Lifter& l, int lane_int) {
  Lane lane = static_cast<Lane>(lane_int);
  Type t = ir::lane_type(lane);
  unsigned n = ir::lane_count(lane);
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u & 0xff);
  Value d = vec(l, 0), s = vec(l, 1);
  Value zero = l.c(t, 0);
  Value p[4];
  for (unsigned i = 0; i < n; ++i) {
    p[i] = ((imm >> (4 + i)) & 1) ? l.b.farith(Opcode::FMul, l.b.vextract(lane, d, i), l.b.vextract(lane, s, i))
                                  : zero;
  }
  Value sum = l.b.farith(Opcode::FAdd, p[0], p[1]);
  if (n == 4) sum = l.b.farith(Opcode::FAdd, sum, l.b.farith(Opcode::FAdd, p[2], p[3]));
  Value out = zero_v(l);
  for (unsigned i = 0; i < n; ++i)
    if ((imm >> i) & 1) out = l.b.vinsert(lane, out, sum, i);
  l.write(0, out);
  return LiftStatus::Continue;
}

// -------------------------------------------------------- SSE4.1 integer ----

// pmuldq: signed products of the low dwords of each qword.
LiftStatus lift_pmuldq(Lifter& l, int) {
  Value k32 = splat_const(l, Lane::I64, 32);
  auto low_signed = [&](Value v) {
    return l.b.binary(Opcode::AShr, l.b.binary(Opcode::Shl, v, k32, Lane::I64), k32, Lane::I64);
  };
  Value a = low_signed(vec(l, 0)), b = low_signed(vec(l, 1));
  l.write(0, l.b.binary(Opcode::Mul, a, b, Lane::I64));
  return LiftStatus::Continue;
}

// phminposuw: word 0 := the smallest unsigned word, word 1 := its (lowest) index, rest 0.
LiftStatus lift_phminposuw(Lifter& l, int) {
  Value s = vec(l, 1);
  Value best = l.b.vextract(Lane::I16, s, 0);
  Value index = l.c(Type::I16, 0);
  for (uint32_t i = 1; i < 8; ++i) {
    Value e = l.b.vextract(Lane::I16, s, i);
    Value lt = l.b.cmp(CmpPred::Ult, e, best);
    best = l.b.select(lt, e, best);
    index = l.b.select(lt, l.c(Type::I16, i), index);
  }
  l.write(0, l.b.vinsert(Lane::I16, l.b.vinsert(Lane::I16, zero_v(l), best, 0), index, 1));
  return LiftStatus::Continue;
}

// mpsadbw: word i := sum over k < 4 of |dst[b1 + i + k] - src[b2 + k]|
// (unsigned bytes), b1 = 4 * imm bit 2, b2 = 4 * imm bits 1:0.
LiftStatus lift_mpsadbw(Lifter& l, int) {
  unsigned imm = static_cast<unsigned>(l.op(2).imm.value.u & 0xff);
  unsigned b1 = 4 * ((imm >> 2) & 1), b2 = 4 * (imm & 3);
  Value d = vec(l, 0), s = vec(l, 1);
  Value sum;
  for (unsigned k = 0; k < 4; ++k) {
    Mask from_d{}, from_s{};
    for (unsigned i = 0; i < 8; ++i) {
      from_d[2 * i] = static_cast<uint8_t>(b1 + i + k);
      from_d[2 * i + 1] = kZeroByte;
      from_s[2 * i] = static_cast<uint8_t>(b2 + k);
      from_s[2 * i + 1] = kZeroByte;
    }
    Value a = shuffle(l, d, d, from_d), b = shuffle(l, s, s, from_s);
    Value diff = l.b.unary(Opcode::Abs, l.b.binary(Opcode::Sub, a, b, Lane::I16), Lane::I16);
    sum = k == 0 ? diff : l.b.binary(Opcode::Add, sum, diff, Lane::I16);
  }
  l.write(0, sum);
  return LiftStatus::Continue;
}

constexpr int L(Lane x) { return static_cast<int>(x); }
#define H(m, row, forms) {ZYDIS_MNEMONIC_##m, InsnClass::SseExt, lift_horizontal, row, forms}

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_MOVDDUP, InsnClass::SseExt, lift_movdup, kDupLowQword, "xmm, xmm/m64 (SSE3)"},
    {ZYDIS_MNEMONIC_MOVSHDUP, InsnClass::SseExt, lift_movdup, kDupOddDwords, "xmm, xmm/m128 (SSE3)"},
    {ZYDIS_MNEMONIC_MOVSLDUP, InsnClass::SseExt, lift_movdup, kDupEvenDwords, "xmm, xmm/m128 (SSE3)"},
    H(HADDPS, 0, "xmm, xmm/m128 (SSE3; MXCSR rounding)"), H(HADDPD, 1, "xmm, xmm/m128 (SSE3; MXCSR rounding)"),
    H(HSUBPS, 2, "xmm, xmm/m128 (SSE3; MXCSR rounding)"), H(HSUBPD, 3, "xmm, xmm/m128 (SSE3; MXCSR rounding)"),
    {ZYDIS_MNEMONIC_ADDSUBPS, InsnClass::SseExt, lift_addsub, L(Lane::F32), "xmm, xmm/m128 (SSE3; MXCSR rounding)"},
    {ZYDIS_MNEMONIC_ADDSUBPD, InsnClass::SseExt, lift_addsub, L(Lane::F64), "xmm, xmm/m128 (SSE3; MXCSR rounding)"},
    H(PHADDW, 4, "xmm, xmm/m128 (SSSE3; MMX forms unsupported)"), H(PHADDD, 5, "xmm, xmm/m128 (SSSE3)"),
    H(PHADDSW, 6, "xmm, xmm/m128 (SSSE3)"), H(PHSUBW, 7, "xmm, xmm/m128 (SSSE3)"),
    H(PHSUBD, 8, "xmm, xmm/m128 (SSSE3)"), H(PHSUBSW, 9, "xmm, xmm/m128 (SSSE3)"),
    {ZYDIS_MNEMONIC_PSIGNB, InsnClass::SseExt, lift_psign, L(Lane::I8), "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PSIGNW, InsnClass::SseExt, lift_psign, L(Lane::I16), "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PSIGND, InsnClass::SseExt, lift_psign, L(Lane::I32), "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PMADDUBSW, InsnClass::SseExt, lift_pmaddubsw, 0, "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_PMULHRSW, InsnClass::SseExt, lift_pmulhrsw, 0, "xmm, xmm/m128 (SSSE3)"},
    {ZYDIS_MNEMONIC_BLENDPS, InsnClass::SseExt, lift_blend_imm, 4, "xmm, xmm/m128, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_BLENDPD, InsnClass::SseExt, lift_blend_imm, 8, "xmm, xmm/m128, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PBLENDW, InsnClass::SseExt, lift_blend_imm, 2, "xmm, xmm/m128, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_BLENDVPS, InsnClass::SseExt, lift_blendv, L(Lane::I32), "xmm, xmm/m128, xmm0 implicit (SSE4.1)"},
    {ZYDIS_MNEMONIC_BLENDVPD, InsnClass::SseExt, lift_blendv, L(Lane::I64), "xmm, xmm/m128, xmm0 implicit (SSE4.1)"},
    {ZYDIS_MNEMONIC_PBLENDVB, InsnClass::SseExt, lift_blendv, L(Lane::I8), "xmm, xmm/m128, xmm0 implicit (SSE4.1)"},
    {ZYDIS_MNEMONIC_INSERTPS, InsnClass::SseExt, lift_insertps, 0, "xmm, xmm/m32, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_EXTRACTPS, InsnClass::SseExt, lift_extractps, 0, "r/m32, xmm, imm8; r64 zero-extended (SSE4.1)"},
    {ZYDIS_MNEMONIC_DPPS, InsnClass::SseExt, lift_dp, L(Lane::F32), "xmm, xmm/m128, imm8 (SSE4.1; MXCSR rounding)"},
    {ZYDIS_MNEMONIC_DPPD, InsnClass::SseExt, lift_dp, L(Lane::F64), "xmm, xmm/m128, imm8 (SSE4.1; MXCSR rounding)"},
    {ZYDIS_MNEMONIC_PMULDQ, InsnClass::SseExt, lift_pmuldq, 0, "xmm, xmm/m128 (SSE4.1)"},
    {ZYDIS_MNEMONIC_PHMINPOSUW, InsnClass::SseExt, lift_phminposuw, 0, "xmm, xmm/m128 (SSE4.1)"},
    {ZYDIS_MNEMONIC_MPSADBW, InsnClass::SseExt, lift_mpsadbw, 0, "xmm, xmm/m128, imm8 (SSE4.1)"},
};
#undef H

}  // namespace

std::span<const LiftEntry> sse_ext_entries() { return kEntries; }

}  // namespace vm::translate::x86
