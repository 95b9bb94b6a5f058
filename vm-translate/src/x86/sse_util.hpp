// Private to vm-translate: helpers shared by the SSE lifter files
// (sse_int.cpp, sse_float.cpp).
#pragma once

#include <array>

#include "x86/lifter.hpp"

namespace vm::translate::x86::sse {

using ir::Lane;

using Mask = std::array<uint8_t, 16>;
constexpr uint8_t kZeroByte = 0x80;

inline bool is_xmm(const Lifter& l, int i) {
  return l.is_reg(i) && ZydisRegisterGetClass(l.op(i).reg.value) == ZYDIS_REGCLASS_XMM;
}
inline bool has_mmx(const Lifter& l) {
  for (int i = 0; i < l.in.zi.operand_count_visible; ++i)
    if (l.is_reg(i) && ZydisRegisterGetClass(l.op(i).reg.value) == ZYDIS_REGCLASS_MMX) return true;
  return false;
}

inline Value zero_v(Lifter& l) { return l.b.constant(Type::V128, 0, 0); }
inline Value ones_v(Lifter& l) { return l.b.constant(Type::V128, ~uint64_t{0}, ~uint64_t{0}); }

// A whole xmm operand (register or m128).
inline Value vec(Lifter& l, int i) {
  if (l.is_mem(i)) return l.b.load(Type::V128, l.address(i));
  return l.reg(l.op(i).reg.value);
}

// The low element of operand i as a scalar of type t (xmm lane 0 or memory).
inline Value scalar(Lifter& l, int i, Type t) {
  if (l.is_mem(i)) return l.b.load(t, l.address(i));
  if (!is_xmm(l, i)) return l.read_as(i, t);
  Lane lane = t == Type::F32 ? Lane::F32 : t == Type::F64 ? Lane::F64 : t == Type::I32 ? Lane::I32 : Lane::I64;
  return l.b.vextract(lane, vec(l, i), 0);
}

inline Value shuffle(Lifter& l, Value a, Value b, const Mask& m) { return l.b.vshuffle(a, b, m); }

}  // namespace vm::translate::x86::sse
