// The reference semantics of every vm-ir op. Integer ops are computed on
// 128-bit host integers and masked to the operand width, so one definition
// serves every width; lane-wise v128 ops apply the same scalar definitions
// lane by lane. Floating-point ops run on the host FPU (an x86-64 host, so
// default-NaN and denormal behaviour are x86's) with the rounding mode of the
// op installed around them, and NaN operand propagation made explicit.
#include "vm/ir/interpreter.hpp"

#include <bit>
#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>

namespace vm::ir {
namespace {

using u128 = unsigned __int128;
using s128 = __int128;

inline u128 to_u128(Val v) { return (u128(v.hi) << 64) | v.lo; }
inline Val from_u128(u128 x) { return Val{static_cast<uint64_t>(x), static_cast<uint64_t>(x >> 64)}; }

inline u128 width_mask(uint32_t bits) { return bits >= 128 ? ~u128(0) : (u128(1) << bits) - 1; }
inline u128 trunc_bits(u128 x, uint32_t bits) { return x & width_mask(bits); }
inline s128 sext_bits(u128 x, uint32_t bits) {
  if (bits >= 128) return static_cast<s128>(x);
  u128 sign = u128(1) << (bits - 1);
  x &= width_mask(bits);
  return static_cast<s128>((x ^ sign) - sign);
}
inline bool msb(u128 x, uint32_t bits) { return (x >> (bits - 1)) & 1; }
inline s128 smax_of(uint32_t bits) { return static_cast<s128>(width_mask(bits - 1)); }
inline s128 smin_of(uint32_t bits) { return -smax_of(bits) - 1; }

// ------------------------------------------------------------ integers ----

enum class Outcome { Ok, DivideError, NotPure };

struct IntResult {
  u128 value = 0;
  Outcome outcome = Outcome::Ok;
};

u128 clamp_s(s128 v, uint32_t bits) {
  s128 lo = smin_of(bits), hi = smax_of(bits);
  return trunc_bits(static_cast<u128>(v < lo ? lo : v > hi ? hi : v), bits);
}

IntResult int_binary(Opcode opc, uint32_t bits, u128 a, u128 b) {
  a = trunc_bits(a, bits);
  b = trunc_bits(b, bits);
  switch (opc) {
    case Opcode::Add: return {trunc_bits(a + b, bits)};
    case Opcode::Sub: return {trunc_bits(a - b, bits)};
    case Opcode::Mul: return {trunc_bits(a * b, bits)};
    case Opcode::MulHiU: return {trunc_bits((a * b) >> bits, bits)};
    case Opcode::MulHiS: {
      s128 p = sext_bits(a, bits) * sext_bits(b, bits);
      return {trunc_bits(static_cast<u128>(p >> bits), bits)};
    }
    case Opcode::DivU:
    case Opcode::RemU:
      if (b == 0) return {0, Outcome::DivideError};
      return {opc == Opcode::DivU ? a / b : a % b};
    case Opcode::DivS:
    case Opcode::RemS: {
      s128 sa = sext_bits(a, bits), sb = sext_bits(b, bits);
      if (sb == 0 || (sb == -1 && sa == smin_of(bits))) return {0, Outcome::DivideError};
      // 128-bit INT_MIN / -1 is excluded above, so host division is defined.
      s128 r = opc == Opcode::DivS ? sa / sb : sa % sb;
      return {trunc_bits(static_cast<u128>(r), bits)};
    }
    case Opcode::And: return {a & b};
    case Opcode::Or: return {a | b};
    case Opcode::Xor: return {a ^ b};
    case Opcode::Shl: return {b >= bits ? 0 : trunc_bits(a << static_cast<unsigned>(b), bits)};
    case Opcode::LShr: return {b >= bits ? 0 : a >> static_cast<unsigned>(b)};
    case Opcode::AShr: {
      unsigned n = b >= bits ? bits - 1 : static_cast<unsigned>(b);
      return {trunc_bits(static_cast<u128>(sext_bits(a, bits) >> n), bits)};
    }
    case Opcode::Rotl:
    case Opcode::Rotr: {
      unsigned n = static_cast<unsigned>(b % bits);
      if (n == 0) return {a};
      if (opc == Opcode::Rotr) n = bits - n;
      return {trunc_bits((a << n) | (a >> (bits - n)), bits)};
    }
    case Opcode::SMin: return {sext_bits(a, bits) < sext_bits(b, bits) ? a : b};
    case Opcode::SMax: return {sext_bits(a, bits) > sext_bits(b, bits) ? a : b};
    case Opcode::UMin: return {a < b ? a : b};
    case Opcode::UMax: return {a > b ? a : b};
    case Opcode::AddSatS:
    case Opcode::SubSatS: {
      // Below 128 bits the exact sum fits in s128; at 128 bits detect overflow.
      s128 x = sext_bits(a, bits), y = sext_bits(b, bits), r;
      bool over = opc == Opcode::AddSatS ? __builtin_add_overflow(x, y, &r) : __builtin_sub_overflow(x, y, &r);
      if (over) return {static_cast<u128>(x < 0 ? smin_of(128) : smax_of(128))};
      return {clamp_s(r, bits)};
    }
    case Opcode::AddSatU: {
      u128 s = a + b;
      bool over = bits >= 128 ? s < a : s > width_mask(bits);
      return {over ? width_mask(bits) : s};
    }
    case Opcode::SubSatU: return {a > b ? a - b : 0};
    case Opcode::AvgU: {
      // (a + b + 1) >> 1 without overflow for 128-bit operands.
      return {(a >> 1) + (b >> 1) + ((a | b) & 1)};
    }
    default: return {0, Outcome::NotPure};
  }
}

IntResult int_unary(Opcode opc, uint32_t bits, u128 a) {
  a = trunc_bits(a, bits);
  switch (opc) {
    case Opcode::Not: return {trunc_bits(~a, bits)};
    case Opcode::Neg: return {trunc_bits(-a, bits)};
    case Opcode::Abs: {
      // Negate in unsigned arithmetic: -INT128_MIN would overflow s128.
      bool negative = sext_bits(a, bits) < 0;
      return {trunc_bits(negative ? u128(0) - a : a, bits)};
    }
    case Opcode::Ctz: {
      if (a == 0) return {bits};
      uint64_t lo = static_cast<uint64_t>(a);
      return {lo != 0 ? static_cast<u128>(std::countr_zero(lo))
                      : static_cast<u128>(64 + std::countr_zero(static_cast<uint64_t>(a >> 64)))};
    }
    case Opcode::Clz: {
      uint64_t hi = static_cast<uint64_t>(a >> 64), lo = static_cast<uint64_t>(a);
      unsigned width = hi != 0 ? 128 - std::countl_zero(hi) : 64 - std::countl_zero(lo);
      return {bits - width};
    }
    case Opcode::Popcount:
      return {static_cast<u128>(std::popcount(static_cast<uint64_t>(a)) + std::popcount(static_cast<uint64_t>(a >> 64)))};
    case Opcode::Bswap: {
      u128 r = 0;
      for (uint32_t i = 0; i < bits / 8; ++i) r |= ((a >> (8 * i)) & 0xff) << (bits - 8 - 8 * i);
      return {r};
    }
    case Opcode::Parity: {
      int n = std::popcount(static_cast<uint64_t>(a)) + std::popcount(static_cast<uint64_t>(a >> 64));
      return {(n & 1) == 0 ? u128(1) : u128(0)};
    }
    default: return {0, Outcome::NotPure};
  }
}

bool int_compare(CmpPred p, uint32_t bits, u128 a, u128 b) {
  a = trunc_bits(a, bits);
  b = trunc_bits(b, bits);
  s128 sa = sext_bits(a, bits), sb = sext_bits(b, bits);
  switch (p) {
    case CmpPred::Eq: return a == b;
    case CmpPred::Ne: return a != b;
    case CmpPred::Slt: return sa < sb;
    case CmpPred::Sle: return sa <= sb;
    case CmpPred::Sgt: return sa > sb;
    case CmpPred::Sge: return sa >= sb;
    case CmpPred::Ult: return a < b;
    case CmpPred::Ule: return a <= b;
    case CmpPred::Ugt: return a > b;
    case CmpPred::Uge: return a >= b;
  }
  return false;
}

bool carry_op(Opcode opc, uint32_t bits, u128 a, u128 b, bool c) {
  a = trunc_bits(a, bits);
  b = trunc_bits(b, bits);
  switch (opc) {
    case Opcode::AddCarry: {
      u128 t = trunc_bits(a + b, bits);
      bool c1 = t < a;
      u128 s = trunc_bits(t + c, bits);
      return c1 || s < t;
    }
    case Opcode::AddOverflow: {
      u128 s = trunc_bits(a + b + c, bits);
      return msb((a ^ s) & (b ^ s), bits);
    }
    case Opcode::SubBorrow: return c ? a <= b : a < b;
    case Opcode::SubOverflow: {
      u128 s = trunc_bits(a - b - c, bits);
      return msb((a ^ b) & (a ^ s), bits);
    }
    default: return false;
  }
}

// ------------------------------------------------------------- floats ----

int host_rounding(Rounding rm, std::optional<uint32_t> mxcsr) {
  uint32_t rc = 0;
  switch (rm) {
    case Rounding::Rne: rc = 0; break;
    case Rounding::Rdn: rc = 1; break;
    case Rounding::Rup: rc = 2; break;
    case Rounding::Rtz: rc = 3; break;
    case Rounding::Dyn: rc = mxcsr ? (*mxcsr >> 13) & 3 : 0; break;
  }
  static constexpr int kModes[4] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
  return kModes[rc];
}

// Installs a host rounding mode for one scope; cheap when it is already set.
class RoundingScope {
public:
  explicit RoundingScope(int mode) : old_(std::fegetround()) {
    if (mode != old_) std::fesetround(mode);
    changed_ = mode != old_;
  }
  ~RoundingScope() {
    if (changed_) std::fesetround(old_);
  }
  RoundingScope(const RoundingScope&) = delete;
  RoundingScope& operator=(const RoundingScope&) = delete;

private:
  int old_;
  bool changed_;
};

template <class F>
struct FloatBits;
template <>
struct FloatBits<float> {
  using U = uint32_t;
  static constexpr U kQuiet = 0x00400000u;
};
template <>
struct FloatBits<double> {
  using U = uint64_t;
  static constexpr U kQuiet = 0x0008000000000000ull;
};

template <class F>
F from_bits(u128 x) {
  return std::bit_cast<F>(static_cast<typename FloatBits<F>::U>(x));
}
template <class F>
u128 to_bits(F f) {
  return static_cast<u128>(std::bit_cast<typename FloatBits<F>::U>(f));
}
template <class F>
u128 quiet_bits(F f) {
  return to_bits(f) | FloatBits<F>::kQuiet;
}

template <class F>
std::optional<u128> float_binary(Opcode opc, u128 abits, u128 bbits) {
  F a = from_bits<F>(abits), b = from_bits<F>(bbits);
  if (opc == Opcode::FMin) return to_bits<F>(a < b ? a : b);
  if (opc == Opcode::FMax) return to_bits<F>(a > b ? a : b);
  // x86 propagates the first NaN operand (quieted), else the second.
  if (std::isnan(a)) return quiet_bits(a);
  if (std::isnan(b)) return quiet_bits(b);
  volatile F va = a, vb = b;  // keep the operation at run time, under the installed rounding mode
  switch (opc) {
    case Opcode::FAdd: return to_bits<F>(va + vb);
    case Opcode::FSub: return to_bits<F>(va - vb);
    case Opcode::FMul: return to_bits<F>(va * vb);
    case Opcode::FDiv: return to_bits<F>(va / vb);
    default: return std::nullopt;
  }
}

template <class F>
bool float_compare(FCmpPred p, u128 abits, u128 bbits) {
  F a = from_bits<F>(abits), b = from_bits<F>(bbits);
  bool unord = std::isnan(a) || std::isnan(b);
  switch (p) {
    case FCmpPred::Eq: return !unord && a == b;
    case FCmpPred::Lt: return !unord && a < b;
    case FCmpPred::Le: return !unord && a <= b;
    case FCmpPred::Unord: return unord;
    case FCmpPred::Neq: return unord || a != b;
    case FCmpPred::Nlt: return unord || !(a < b);
    case FCmpPred::Nle: return unord || !(a <= b);
    case FCmpPred::Ord: return !unord;
  }
  return false;
}

template <class F>
u128 float_sqrt(u128 abits) {
  F a = from_bits<F>(abits);
  if (std::isnan(a)) return quiet_bits(a);
  volatile F va = a;
  return to_bits<F>(std::sqrt(static_cast<F>(va)));
}

// x86 CVT*2SI: round by the current mode; NaN and out-of-range give the
// "integer indefinite" value (the most negative integer of the width).
template <class F>
u128 float_to_int(u128 abits, uint32_t bits, bool truncate) {
  F a = from_bits<F>(abits);
  if (std::isnan(a)) return trunc_bits(static_cast<u128>(smin_of(bits)), bits);
  F r = truncate ? std::trunc(a) : std::nearbyint(a);
  F limit = bits == 32 ? F(2147483648.0) : F(9223372036854775808.0);
  if (r >= limit || r < -limit) return trunc_bits(static_cast<u128>(smin_of(bits)), bits);
  return trunc_bits(static_cast<u128>(static_cast<s128>(static_cast<int64_t>(r))), bits);
}

template <class F>
u128 int_to_float(s128 v) {
  volatile int64_t x = static_cast<int64_t>(v);
  return to_bits<F>(static_cast<F>(x));
}

template <class F>
u128 float_round(u128 abits) {
  F a = from_bits<F>(abits);
  if (std::isnan(a)) return quiet_bits(a);
  volatile F va = a;
  return to_bits<F>(std::nearbyint(static_cast<F>(va)));
}

// -------------------------------------------------------------- lanes ----

inline u128 lane_get(u128 v, uint32_t lane_bits_, uint32_t i) {
  return trunc_bits(v >> (lane_bits_ * i), lane_bits_);
}
inline u128 lane_set(u128 v, uint32_t lane_bits_, uint32_t i, u128 x) {
  u128 m = width_mask(lane_bits_) << (lane_bits_ * i);
  return (v & ~m) | ((trunc_bits(x, lane_bits_) << (lane_bits_ * i)) & m);
}

struct Eval {
  Val value;
  Outcome outcome = Outcome::Ok;
};

// One scalar (or lane) evaluation of a pure op. `bits`/`is_f64` describe the
// element; returns NotPure for ops this function does not cover.
Eval eval_scalar(const Op& op, Type elem, u128 a, u128 b, u128 c, std::optional<uint32_t> mxcsr) {
  uint32_t bits = type_bits(elem);
  const OpcodeInfo& info = opcode_info(op.opcode);
  auto ok = [](u128 v) { return Eval{from_u128(v)}; };
  switch (op.opcode) {
    case Opcode::Add: case Opcode::Sub: case Opcode::Mul: case Opcode::MulHiU: case Opcode::MulHiS:
    case Opcode::DivU: case Opcode::DivS: case Opcode::RemU: case Opcode::RemS: case Opcode::And:
    case Opcode::Or: case Opcode::Xor: case Opcode::Shl: case Opcode::LShr: case Opcode::AShr:
    case Opcode::Rotl: case Opcode::Rotr: case Opcode::SMin: case Opcode::SMax: case Opcode::UMin:
    case Opcode::UMax: case Opcode::AddSatS: case Opcode::AddSatU: case Opcode::SubSatS:
    case Opcode::SubSatU: case Opcode::AvgU: {
      IntResult r = int_binary(op.opcode, bits, a, b);
      return Eval{from_u128(r.value), r.outcome};
    }
    case Opcode::Not: case Opcode::Neg: case Opcode::Abs: case Opcode::Ctz: case Opcode::Clz:
    case Opcode::Popcount: case Opcode::Bswap: {
      IntResult r = int_unary(op.opcode, bits, a);
      return Eval{from_u128(r.value), r.outcome};
    }
    case Opcode::Parity: return ok(int_unary(Opcode::Parity, bits, a).value);
    case Opcode::Cmp: {
      bool r = int_compare(static_cast<CmpPred>(op.mod), bits, a, b);
      return ok(op.lane == Lane::None ? u128(r) : (r ? width_mask(bits) : 0));
    }
    case Opcode::AddCarry: case Opcode::AddOverflow: case Opcode::SubBorrow: case Opcode::SubOverflow:
      return ok(carry_op(op.opcode, bits, a, b, (c & 1) != 0));
    default: break;
  }
  if (!is_float(elem)) return Eval{{}, Outcome::NotPure};
  bool f64 = elem == Type::F64;
  if (info.mod == ModKind::Round && static_cast<Rounding>(op.mod) == Rounding::Dyn && !mxcsr)
    return Eval{{}, Outcome::NotPure};
  RoundingScope scope(host_rounding(info.mod == ModKind::Round ? static_cast<Rounding>(op.mod) : Rounding::Rne, mxcsr));
  switch (op.opcode) {
    case Opcode::FAdd: case Opcode::FSub: case Opcode::FMul: case Opcode::FDiv: case Opcode::FMin:
    case Opcode::FMax: {
      auto r = f64 ? float_binary<double>(op.opcode, a, b) : float_binary<float>(op.opcode, a, b);
      return ok(*r);
    }
    case Opcode::FSqrt: return ok(f64 ? float_sqrt<double>(a) : float_sqrt<float>(a));
    case Opcode::FCmp: {
      bool r = f64 ? float_compare<double>(static_cast<FCmpPred>(op.mod), a, b)
                   : float_compare<float>(static_cast<FCmpPred>(op.mod), a, b);
      return ok(op.lane == Lane::None ? u128(r) : (r ? width_mask(bits) : 0));
    }
    case Opcode::FRound: return ok(f64 ? float_round<double>(a) : float_round<float>(a));
    default: return Eval{{}, Outcome::NotPure};
  }
}

Eval eval_pure_op(const Op& op, const Val* args, std::optional<uint32_t> mxcsr, Type arg0_type) {
  auto A = [&](int i) { return to_u128(args[i]); };
  auto ok = [](u128 v) { return Eval{from_u128(v)}; };
  const OpcodeInfo& info = opcode_info(op.opcode);

  // Lane-wise forms of the scalar ops.
  if (op.lane != Lane::None && info.lane_wise && op.opcode != Opcode::VExtract && op.opcode != Opcode::VInsert &&
      op.opcode != Opcode::VSplat && op.opcode != Opcode::VPackSS && op.opcode != Opcode::VPackUS &&
      op.opcode != Opcode::VMovmsk && op.opcode != Opcode::VMulAdd && op.opcode != Opcode::VSad &&
      op.opcode != Opcode::SIToFP && op.opcode != Opcode::FPToSI) {
    uint32_t lb = lane_bits(op.lane);
    Type elem = lane_type(op.lane);
    u128 a = A(0), b = info.nargs > 1 ? A(1) : 0, r = 0;
    for (uint32_t i = 0; i < lane_count(op.lane); ++i) {
      Eval e = eval_scalar(op, elem, lane_get(a, lb, i), lane_get(b, lb, i), 0, mxcsr);
      if (e.outcome != Outcome::Ok) return e;
      r = lane_set(r, lb, i, to_u128(e.value));
    }
    return ok(r);
  }

  switch (op.opcode) {
    case Opcode::Const: return ok((u128(op.imm_hi) << 64) | op.imm);
    case Opcode::Select: return Eval{(args[0].lo & 1) ? args[1] : args[2]};
    case Opcode::ZExt: return ok(trunc_bits(A(0), type_bits(arg0_type)));
    case Opcode::SExt:
      return ok(trunc_bits(static_cast<u128>(sext_bits(A(0), type_bits(arg0_type))), type_bits(op.type)));
    case Opcode::Trunc: return ok(trunc_bits(A(0), type_bits(op.type)));
    case Opcode::Bitcast: return Eval{args[0]};
    case Opcode::Parity: return eval_scalar(op, arg0_type, A(0), 0, 0, mxcsr);
    case Opcode::Cmp: case Opcode::AddCarry: case Opcode::AddOverflow: case Opcode::SubBorrow:
    case Opcode::SubOverflow:
      return eval_scalar(op, arg0_type, A(0), A(1), info.nargs > 2 ? A(2) : 0, mxcsr);
    case Opcode::FCmp: return eval_scalar(op, arg0_type, A(0), A(1), 0, mxcsr);
    case Opcode::FCvt: {
      Rounding rm = static_cast<Rounding>(op.mod);
      if (rm == Rounding::Dyn && !mxcsr) return Eval{{}, Outcome::NotPure};
      RoundingScope scope(host_rounding(rm, mxcsr));
      if (op.type == Type::F64) {
        volatile float f = from_bits<float>(A(0));
        return ok(to_bits<double>(static_cast<double>(f)));
      }
      volatile double d = from_bits<double>(A(0));
      return ok(to_bits<float>(static_cast<float>(d)));
    }
    case Opcode::SIToFP:
    case Opcode::FPToSI: {
      Rounding rm = static_cast<Rounding>(op.mod);
      if (rm == Rounding::Dyn && !mxcsr) return Eval{{}, Outcome::NotPure};
      RoundingScope scope(host_rounding(rm, mxcsr));
      if (op.lane != Lane::None) {  // i32x4 <-> f32x4
        u128 a = A(0), r = 0;
        for (uint32_t i = 0; i < 4; ++i) {
          u128 x = lane_get(a, 32, i);
          u128 y = op.opcode == Opcode::SIToFP ? int_to_float<float>(sext_bits(x, 32))
                                               : float_to_int<float>(x, 32, rm == Rounding::Rtz);
          r = lane_set(r, 32, i, y);
        }
        return ok(r);
      }
      if (op.opcode == Opcode::SIToFP) {
        s128 v = sext_bits(A(0), type_bits(arg0_type));
        return ok(op.type == Type::F64 ? int_to_float<double>(v) : int_to_float<float>(v));
      }
      bool trunc = rm == Rounding::Rtz;
      return ok(arg0_type == Type::F64 ? float_to_int<double>(A(0), type_bits(op.type), trunc)
                                       : float_to_int<float>(A(0), type_bits(op.type), trunc));
    }
    case Opcode::VExtract: {
      u128 x = lane_get(A(0), lane_bits(op.lane), op.aux);
      return ok(x);
    }
    case Opcode::VInsert: return ok(lane_set(A(0), lane_bits(op.lane), op.aux, A(1)));
    case Opcode::VSplat: {
      u128 r = 0;
      for (uint32_t i = 0; i < lane_count(op.lane); ++i) r = lane_set(r, lane_bits(op.lane), i, A(0));
      return ok(r);
    }
    case Opcode::VShuffle: {
      u128 a = A(0), b = A(1), r = 0;
      for (uint32_t i = 0; i < 16; ++i) {
        uint8_t sel = static_cast<uint8_t>((i < 8 ? op.imm >> (8 * i) : op.imm_hi >> (8 * (i - 8))) & 0xff);
        u128 byte = sel < 16 ? lane_get(a, 8, sel) : sel < 32 ? lane_get(b, 8, sel - 16) : 0;
        r = lane_set(r, 8, i, byte);
      }
      return ok(r);
    }
    case Opcode::VPshufb: {
      u128 a = A(0), c = A(1), r = 0;
      for (uint32_t i = 0; i < 16; ++i) {
        u128 ctl = lane_get(c, 8, i);
        r = lane_set(r, 8, i, (ctl & 0x80) ? 0 : lane_get(a, 8, static_cast<uint32_t>(ctl & 15)));
      }
      return ok(r);
    }
    case Opcode::VPackSS:
    case Opcode::VPackUS: {
      uint32_t sb = lane_bits(op.lane), db = sb / 2, n = lane_count(op.lane);
      u128 r = 0;
      for (uint32_t i = 0; i < 2 * n; ++i) {
        s128 v = sext_bits(lane_get(i < n ? A(0) : A(1), sb, i % n), sb);
        u128 out;
        if (op.opcode == Opcode::VPackSS) {
          out = clamp_s(v, db);
        } else {
          s128 hi = static_cast<s128>(width_mask(db));
          out = static_cast<u128>(v < 0 ? 0 : v > hi ? hi : v);
        }
        r = lane_set(r, db, i, out);
      }
      return ok(r);
    }
    case Opcode::VMovmsk: {
      uint32_t lb = lane_bits(op.lane);
      u128 a = A(0), r = 0;
      for (uint32_t i = 0; i < lane_count(op.lane); ++i) r |= u128(msb(lane_get(a, lb, i), lb)) << i;
      return ok(r);
    }
    case Opcode::VMulAdd: {
      u128 a = A(0), b = A(1), r = 0;
      for (uint32_t j = 0; j < 4; ++j) {
        s128 p0 = sext_bits(lane_get(a, 16, 2 * j), 16) * sext_bits(lane_get(b, 16, 2 * j), 16);
        s128 p1 = sext_bits(lane_get(a, 16, 2 * j + 1), 16) * sext_bits(lane_get(b, 16, 2 * j + 1), 16);
        r = lane_set(r, 32, j, static_cast<u128>(p0 + p1));
      }
      return ok(r);
    }
    case Opcode::VSad: {
      u128 a = A(0), b = A(1), r = 0;
      for (uint32_t half = 0; half < 2; ++half) {
        u128 sum = 0;
        for (uint32_t i = 0; i < 8; ++i) {
          u128 x = lane_get(a, 8, 8 * half + i), y = lane_get(b, 8, 8 * half + i);
          sum += x > y ? x - y : y - x;
        }
        r = lane_set(r, 64, half, sum);
      }
      return ok(r);
    }
    default: break;
  }
  // Remaining scalar arithmetic (integer or float by the result type).
  Type elem = op.type;
  if (op.opcode == Opcode::Parity || op.opcode == Opcode::Cmp || op.opcode == Opcode::FCmp) elem = arg0_type;
  return eval_scalar(op, elem, A(0), info.nargs > 1 ? A(1) : 0, info.nargs > 2 ? A(2) : 0, mxcsr);
}

bool touches_state_or_memory(Opcode opc) {
  switch (opc) {
    case Opcode::GetReg: case Opcode::SetReg: case Opcode::Load: case Opcode::Store: case Opcode::InsnStart:
    case Opcode::AtomicCmpxchg: case Opcode::AtomicRmw: case Opcode::Fence: case Opcode::CallHelper:
    case Opcode::TrapIf: case Opcode::ExitIf: case Opcode::Fill: case Opcode::Copy:
      return true;
    default: return false;
  }
}

// ----------------------------------------------------- state and memory ----

Val read_reg(const core::X86State& s, const Op& op) {
  const uint8_t* p = core::reg_ptr(s, static_cast<X86Reg>(op.aux)) + op.imm;
  Val v;
  uint32_t n = type_bytes(op.type);
  if (op.type == Type::I1) {
    v.lo = *p & 1;
  } else if (n <= 8) {
    std::memcpy(&v.lo, p, n);
  } else {
    std::memcpy(&v.lo, p, 8);
    std::memcpy(&v.hi, p + 8, n - 8);
  }
  return v;
}

void write_reg(core::X86State& s, const Op& op, Type t, Val v) {
  uint8_t* p = core::reg_ptr(s, static_cast<X86Reg>(op.aux)) + op.imm;
  uint32_t n = type_bytes(t);
  if (t == Type::I1) {
    *p = static_cast<uint8_t>(v.lo & 1);
  } else if (n <= 8) {
    std::memcpy(p, &v.lo, n);
  } else {
    std::memcpy(p, &v.lo, 8);
    std::memcpy(p + 8, &v.hi, n - 8);
  }
}

Val bytes_to_val(const uint8_t* b, uint32_t n) {
  Val v;
  std::memcpy(&v.lo, b, n < 8 ? n : 8);
  if (n > 8) std::memcpy(&v.hi, b + 8, n - 8);
  return v;
}

void val_to_bytes(Val v, uint8_t* b, uint32_t n) {
  std::memcpy(b, &v.lo, n < 8 ? n : 8);
  if (n > 8) std::memcpy(b + 8, &v.hi, n - 8);
}

}  // namespace

std::optional<Val> evaluate_pure(const Op& op, std::span<const Val> args, std::span<const Type> arg_types,
                                 std::optional<uint32_t> mxcsr) {
  if (touches_state_or_memory(op.opcode)) return std::nullopt;
  int n = opcode_info(op.opcode).nargs;
  if (n < 0 || args.size() < static_cast<size_t>(n) || arg_types.size() < static_cast<size_t>(n)) return std::nullopt;
  Eval e = eval_pure_op(op, args.data(), mxcsr, n > 0 ? arg_types[0] : Type::Void);
  if (e.outcome != Outcome::Ok) return std::nullopt;
  return e.value;
}

Interpreter::Interpreter(core::GuestMemory& memory, const HelperTable& helpers)
    : memory_(&memory), helpers_(&helpers) {}

ExecResult Interpreter::run(const IRBlock& block, core::X86State& state) {
  ExecResult res;
  values_.assign(block.value_count(), Val{});
  // Operand types are needed by conversions/comparisons; remember each value's type.
  std::vector<Type>& types = types_;
  types.assign(values_.size(), Type::Void);
  GuestAddr insn_pc = block.start_pc;

  auto fault = [&](const core::Error& e, core::Access access) {
    res.kind = TermKind::Trap;
    res.trap = TrapReason::MemoryFault;
    res.pc = insn_pc;
    res.fault_addr = e.addr;
    res.fault_access = access;
    res.message = e.message;
    state.rip = insn_pc.value();
    return res;
  };
  auto divide_error = [&]() {
    res.kind = TermKind::Trap;
    res.trap = TrapReason::DivideError;
    res.pc = insn_pc;
    res.message = "divide error";
    state.rip = insn_pc.value();
    return res;
  };

  for (const Op& op : block.ops) {
    ++res.ops_executed;
    Val out;
    switch (op.opcode) {
      case Opcode::InsnStart: insn_pc = GuestAddr(op.imm); continue;
      case Opcode::GetReg: out = read_reg(state, op); break;
      case Opcode::SetReg: write_reg(state, op, types[op.args[0]], values_[op.args[0]]); continue;
      case Opcode::Load: {
        uint8_t buf[16];
        uint32_t n = op.aux / 8;
        if (auto r = memory_->read(core::GuestAddr(values_[op.args[0]].lo), std::span<uint8_t>(buf, n)); !r)
          return fault(r.error(), core::Access::Read);
        out = bytes_to_val(buf, n);
        auto ext = static_cast<Ext>(op.mod);
        if (ext == Ext::Sign) out = from_u128(trunc_bits(static_cast<u128>(sext_bits(to_u128(out), op.aux)), type_bits(op.type)));
        break;
      }
      case Opcode::Store: {
        uint8_t buf[16];
        uint32_t n = type_bytes(types[op.args[1]]);
        val_to_bytes(values_[op.args[1]], buf, n);
        if (auto r = memory_->write(core::GuestAddr(values_[op.args[0]].lo), std::span<const uint8_t>(buf, n)); !r)
          return fault(r.error(), core::Access::Write);
        continue;
      }
      case Opcode::Fill: {
        uint8_t buf[16];
        uint32_t n = type_bytes(types[op.args[1]]);
        val_to_bytes(values_[op.args[1]], buf, n);
        uint64_t addr = values_[op.args[0]].lo;
        uint64_t count = fill_elements(addr, n, values_[op.args[2]].lo);
        for (uint64_t i = 0; i < count; ++i)
          if (auto r = memory_->write(core::GuestAddr(addr + i * n), std::span<const uint8_t>(buf, n)); !r)
            return fault(r.error(), core::Access::Write);
        out.lo = count;
        break;
      }
      case Opcode::Copy: {
        uint8_t buf[8];
        uint32_t n = op.aux / 8;
        uint64_t dst = values_[op.args[0]].lo, src = values_[op.args[1]].lo;
        uint64_t count = copy_elements(dst, src, n, values_[op.args[2]].lo);
        for (uint64_t i = 0; i < count; ++i) {
          if (auto r = memory_->read(core::GuestAddr(src + i * n), std::span<uint8_t>(buf, n)); !r)
            return fault(r.error(), core::Access::Read);
          if (auto r = memory_->write(core::GuestAddr(dst + i * n), std::span<const uint8_t>(buf, n)); !r)
            return fault(r.error(), core::Access::Write);
        }
        out.lo = count;
        break;
      }
      case Opcode::AtomicCmpxchg:
      case Opcode::AtomicRmw: {
        uint8_t buf[16];
        uint32_t n = type_bytes(op.type);
        core::GuestAddr addr(values_[op.args[0]].lo);
        if (auto r = memory_->read(addr, std::span<uint8_t>(buf, n)); !r) return fault(r.error(), core::Access::Read);
        Val old = bytes_to_val(buf, n);
        Val neu;
        if (op.opcode == Opcode::AtomicCmpxchg) {
          // Like x86 CMPXCHG, memory is written even when the comparison fails
          // (with the old value), so a read-only page faults either way.
          neu = old == values_[op.args[1]] ? values_[op.args[2]] : old;
        } else {
          u128 o = to_u128(old), v = to_u128(values_[op.args[1]]);
          uint32_t bits = type_bits(op.type);
          u128 r = 0;
          switch (static_cast<RmwOp>(op.mod)) {
            case RmwOp::Xchg: r = v; break;
            case RmwOp::Add: r = o + v; break;
            case RmwOp::Sub: r = o - v; break;
            case RmwOp::And: r = o & v; break;
            case RmwOp::Or: r = o | v; break;
            case RmwOp::Xor: r = o ^ v; break;
          }
          neu = from_u128(trunc_bits(r, bits));
        }
        val_to_bytes(neu, buf, n);
        if (auto r = memory_->write(addr, std::span<const uint8_t>(buf, n)); !r) return fault(r.error(), core::Access::Write);
        out = old;
        break;
      }
      case Opcode::Fence: continue;
      case Opcode::TrapIf:
        if ((values_[op.args[0]].lo & 1) == 0) continue;
        res.kind = TermKind::Trap;
        res.trap = static_cast<TrapReason>(op.aux);
        res.pc = insn_pc;
        res.message = std::string(trap_reason_name(res.trap));
        state.rip = insn_pc.value();
        return res;
      case Opcode::ExitIf:
        if ((values_[op.args[0]].lo & 1) == 0) continue;
        res.kind = TermKind::Jump;
        state.rip = op.imm;
        return res;
      case Opcode::CallHelper: {
        uint64_t a[3] = {0, 0, 0};
        for (int i = 0; i < op.nargs; ++i) a[i] = values_[op.args[i]].lo;
        HelperFn fn = helpers_->fns[op.aux];
        uint64_t r = fn != nullptr ? fn(&state, a[0], a[1], a[2]) : 0;
        if (op.type == Type::Void) continue;
        out = Val{r, 0};
        break;
      }
      default: {
        Val args[3];
        for (int i = 0; i < op.nargs; ++i) args[i] = values_[op.args[i]];
        Type t0 = op.nargs > 0 ? types[op.args[0]] : Type::Void;
        Eval e = eval_pure_op(op, args, state.mxcsr, t0);
        if (e.outcome == Outcome::DivideError) return divide_error();
        out = e.value;
        break;
      }
    }
    values_[op.result] = out;
    types[op.result] = op.type;
  }

  const Terminator& t = block.term;
  res.kind = t.kind;
  switch (t.kind) {
    case TermKind::Jump: state.rip = t.target.value(); break;
    case TermKind::Branch: state.rip = (values_[t.value].lo & 1) ? t.target.value() : t.fallthrough.value(); break;
    case TermKind::IndirectJump:
    case TermKind::Ret: state.rip = values_[t.value].lo; break;
    case TermKind::Call: state.rip = t.value != kNoValue ? values_[t.value].lo : t.target.value(); break;
    case TermKind::Syscall:
    case TermKind::Exit: state.rip = t.target.value(); break;
    case TermKind::Trap:
      res.trap = t.trap;
      res.vector = t.vector;
      res.pc = t.target;
      res.message = t.message;
      state.rip = t.target.value();
      break;
    case TermKind::None: break;
  }
  return res;
}

}  // namespace vm::ir
