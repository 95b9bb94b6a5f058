// SSE/SSE2/SSE4.1 floating point: scalar and packed arithmetic, min/max,
// sqrt, compares, ucomis/comis, conversions (incl. the truncating forms),
// round*, and the MXCSR/FXSAVE state instructions. Arithmetic uses
// Rounding::Dyn (MXCSR.RC); the sticky exception flags are not updated.
// A scalar row works on lane 0 and keeps the rest of the destination.
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

// fxsave/fxrstor (64-bit layout): the x87 control/status/tag words and
// st(0..7) (x87.cpp), MXCSR with mask 0xffff, and xmm0..15 at 160; the
// instruction/operand pointers and FOP are stored as zero.
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
  fxsave_x87(l, base);  // status word, tag and st(0..7) over the placeholders above
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
  fxrstor_x87(l, base);
  l.set_state(X86Reg::FpuCw, cw);
  l.set_state(X86Reg::Mxcsr, mxcsr);
  for (unsigned i = 0; i < 16; ++i) l.set_state(core::xmm_reg(i), regs[i]);
  return LiftStatus::Continue;
}

#define P(m)
#define F(m, row, forms) {ZYDIS_MNEMONIC_##m, InsnClass::SseFloat, lift_float, row, forms}
constexpr int L(Lane x) { return static_cast<int>(x); }

constexpr LiftEntry kEntries[] = {
    F(ADDSS, 0, "xmm, xmm/m32"), F(ADDSD, 1, "xmm, xmm/m64"), F(ADDPS, 2, "xmm, xmm/m128"), F(ADDPD, 3, "xmm, xmm/m128"),
    F(SUBSS, 4, "xmm, xmm/m32"), F(SUBSD, 5, "xmm, xmm/m64"), F(SUBPS, 6, "xmm, xmm/m128"), F(SUBPD, 7, "xmm, xmm/m128"),
    F(MULSS, 8, "xmm, xmm/m32"), F(MULSD, 9, "xmm, xmm/m64"), F(MULPS, 10, "xmm, xmm/m128"), F(MULPD, 11, "xmm, xmm/m128"),
    F(DIVSS, 12, "xmm, xmm/m32"), F(DIVSD, 13, "xmm, xmm/m64"), F(DIVPS, 14, "xmm, xmm/m128"), F(DIVPD, 15, "xmm, xmm/m128"),
    F(MINSS, 16, "xmm, xmm/m32"), F(MINSD, 17, "xmm, xmm/m64"), F(MINPS, 18, "xmm, xmm/m128"), F(MINPD, 19, "xmm, xmm/m128"),
    F(MAXSS, 20, "xmm, xmm/m32"), F(MAXSD, 21, "xmm, xmm/m64"), F(MAXPS, 22, "xmm, xmm/m128"), F(MAXPD, 23, "xmm, xmm/m128"),
    F(SQRTSS, 24, "xmm, xmm/m32"), F(SQRTSD, 25, "xmm, xmm/m64"), F(SQRTPS, 26, "xmm, xmm/m128"), F(SQRTPD, 27, "xmm, xmm/m128"),
    {ZYDIS_MNEMONIC_CMPSS, InsnClass::SseFloat, lift_fcmp, 16 + L(Lane::F32), "xmm, xmm/m32, imm8 0..7"},
    {ZYDIS_MNEMONIC_CMPPS, InsnClass::SseFloat, lift_fcmp, L(Lane::F32), "xmm, xmm/m128, imm8 0..7"},
    {ZYDIS_MNEMONIC_CMPPD, InsnClass::SseFloat, lift_fcmp, L(Lane::F64), "xmm, xmm/m128, imm8 0..7"},
    {ZYDIS_MNEMONIC_UCOMISS, InsnClass::SseFloat, lift_ucomi, L(Lane::F32), "xmm, xmm/m32 (ZF PF CF; OF SF AF cleared)"},
    {ZYDIS_MNEMONIC_UCOMISD, InsnClass::SseFloat, lift_ucomi, L(Lane::F64), "xmm, xmm/m64 (ZF PF CF; OF SF AF cleared)"},
    {ZYDIS_MNEMONIC_COMISS, InsnClass::SseFloat, lift_ucomi, L(Lane::F32), "xmm, xmm/m32 (as ucomiss; #IA not modelled)"},
    {ZYDIS_MNEMONIC_COMISD, InsnClass::SseFloat, lift_ucomi, L(Lane::F64), "xmm, xmm/m64 (as ucomisd; #IA not modelled)"},
    {ZYDIS_MNEMONIC_CVTSI2SS, InsnClass::SseFloat, lift_cvt, kSi2Ss, "xmm, r/m32/64 (MXCSR rounding)"},
    {ZYDIS_MNEMONIC_CVTSI2SD, InsnClass::SseFloat, lift_cvt, kSi2Sd, "xmm, r/m32/64"},
    {ZYDIS_MNEMONIC_CVTSS2SD, InsnClass::SseFloat, lift_cvt, kSs2Sd, "xmm, xmm/m32"},
    {ZYDIS_MNEMONIC_CVTSD2SS, InsnClass::SseFloat, lift_cvt, kSd2Ss, "xmm, xmm/m64 (MXCSR rounding)"},
    {ZYDIS_MNEMONIC_CVTSS2SI, InsnClass::SseFloat, lift_cvt, kSs2Si, "r32/64, xmm/m32 (MXCSR rounding; indefinite on overflow)"},
    {ZYDIS_MNEMONIC_CVTSD2SI, InsnClass::SseFloat, lift_cvt, kSd2Si, "r32/64, xmm/m64 (MXCSR rounding; indefinite on overflow)"},
    {ZYDIS_MNEMONIC_CVTTSS2SI, InsnClass::SseFloat, lift_cvt, kTSs2Si, "r32/64, xmm/m32 (truncating)"},
    {ZYDIS_MNEMONIC_CVTTSD2SI, InsnClass::SseFloat, lift_cvt, kTSd2Si, "r32/64, xmm/m64 (truncating)"},
    {ZYDIS_MNEMONIC_CVTDQ2PS, InsnClass::SseFloat, lift_cvt, kDq2Ps, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTPS2DQ, InsnClass::SseFloat, lift_cvt, kPs2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTTPS2DQ, InsnClass::SseFloat, lift_cvt, kTPs2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTDQ2PD, InsnClass::SseFloat, lift_cvt, kDq2Pd, "xmm, xmm/m64"},
    {ZYDIS_MNEMONIC_CVTPD2DQ, InsnClass::SseFloat, lift_cvt, kPd2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTTPD2DQ, InsnClass::SseFloat, lift_cvt, kTPd2Dq, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_CVTPS2PD, InsnClass::SseFloat, lift_cvt, kPs2Pd, "xmm, xmm/m64"},
    {ZYDIS_MNEMONIC_CVTPD2PS, InsnClass::SseFloat, lift_cvt, kPd2Ps, "xmm, xmm/m128"},
    {ZYDIS_MNEMONIC_ROUNDSS, InsnClass::SseFloat, lift_round, 16 + L(Lane::F32), "xmm, xmm/m32, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_ROUNDSD, InsnClass::SseFloat, lift_round, 16 + L(Lane::F64), "xmm, xmm/m64, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_ROUNDPS, InsnClass::SseFloat, lift_round, L(Lane::F32), "xmm, xmm/m128, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_ROUNDPD, InsnClass::SseFloat, lift_round, L(Lane::F64), "xmm, xmm/m128, imm8 (SSE4.1)"},
    {ZYDIS_MNEMONIC_LDMXCSR, InsnClass::SseFloat, lift_ldmxcsr, 0, "m32 (rounding mode honoured by later float ops)"},
    {ZYDIS_MNEMONIC_STMXCSR, InsnClass::SseFloat, lift_stmxcsr, 0, "m32"},
    {ZYDIS_MNEMONIC_FXSAVE, InsnClass::SseFloat, lift_fxsave, 0, "m512 (x87 cw, sw, abridged tag, st(0..7); pointers as 0)"},
    {ZYDIS_MNEMONIC_FXRSTOR, InsnClass::SseFloat, lift_fxrstor, 0, "m512 (restores the x87 words and registers, MXCSR, xmm)"},
    {ZYDIS_MNEMONIC_FXSAVE64, InsnClass::SseFloat, lift_fxsave, 0, "m512"},
    {ZYDIS_MNEMONIC_FXRSTOR64, InsnClass::SseFloat, lift_fxrstor, 0, "m512"},
};
#undef P
#undef F

}  // namespace

LiftStatus lift_sse_cmpsd(Lifter& l) { return lift_sse_cmpsd_impl(l); }

std::span<const LiftEntry> sse_float_entries() { return kEntries; }

}  // namespace vm::translate::x86
