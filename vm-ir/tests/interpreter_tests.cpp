// Interpreter semantics, op by op. Where the IR op mirrors an x86 instruction
// (SSE arithmetic, packs, shuffles, conversions, NaN rules), the expected value
// comes from executing that instruction on this x86-64 host through compiler
// intrinsics, so the oracle is the hardware, not a second copy of our code.
// Integer edge cases follow from the definitions in docs/ir.md.
#include <doctest/doctest.h>

#include <bit>
#include <cfenv>
#include <climits>
#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include <immintrin.h>

#include "vm/ir/builder.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/verifier.hpp"

using namespace vm::ir;
using vm::core::GuestAddr;
using vm::core::X86State;

namespace {

std::set<Opcode>& covered() {
  static std::set<Opcode> s;
  return s;
}

void note(const IRBlock& b) {
  for (const Op& op : b.ops) covered().insert(op.opcode);
}

struct Run {
  X86State state;
  ExecResult result;
};

Run run_block(IRBlock& b, X86State state = {}, vm::core::RegionMemory* mem = nullptr) {
  note(b);
  auto v = verify(b);
  if (!v) FAIL("block does not verify: " << v.error().to_string());
  vm::core::RegionMemory local;
  Interpreter interp(mem != nullptr ? *mem : local);
  Run r{state, {}};
  r.result = interp.run(b, r.state);
  return r;
}

// Evaluates `make(builder, a, b)` on constants and returns the result's bits.
template <class F>
Val eval(Type ta, Val a, Type tb, Val b, F make, ExecResult* out = nullptr, uint32_t mxcsr = vm::core::kDefaultMxcsr) {
  IRBlock blk;
  blk.start_pc = GuestAddr(0x1000);
  IRBuilder ir(blk);
  ir.insn_start(GuestAddr(0x1000));
  Value va = ir.constant(ta, a.lo, a.hi);
  Value vb = tb == Type::Void ? Value{} : ir.constant(tb, b.lo, b.hi);
  Value r = make(ir, va, vb);
  if (r.type == Type::I1)
    ir.set_reg(X86Reg::Cf, r);
  else
    ir.set_reg(X86Reg::Xmm0, r);
  ir.jump(GuestAddr(0x2000));
  X86State s;
  s.mxcsr = mxcsr;
  Run run = run_block(blk, s);
  if (out) *out = run.result;
  if (r.type == Type::I1) return Val{run.state.cf, 0};
  uint32_t n = type_bytes(r.type);
  Val v;
  std::memcpy(&v.lo, &run.state.xmm[0], n < 8 ? n : 8);
  if (n > 8) std::memcpy(&v.hi, reinterpret_cast<const uint8_t*>(&run.state.xmm[0]) + 8, n - 8);
  return v;
}

Val bin(Opcode op, Type t, uint64_t a, uint64_t b, Lane lane = Lane::None) {
  return eval(t, Val{a, 0}, t, Val{b, 0}, [&](IRBuilder& ir, Value x, Value y) { return ir.binary(op, x, y, lane); });
}
Val un(Opcode op, Type t, uint64_t a) {
  return eval(t, Val{a, 0}, Type::Void, Val{}, [&](IRBuilder& ir, Value x, Value) { return ir.unary(op, x); });
}

Val from_m128(__m128i v) {
  Val r;
  std::memcpy(static_cast<void*>(&r), &v, 16);
  return r;
}
__m128i to_m128(Val v) {
  __m128i r;
  std::memcpy(&r, &v, 16);
  return r;
}
Val vbin(Opcode op, Lane lane, Val a, Val b) {
  return eval(Type::V128, a, Type::V128, b, [&](IRBuilder& ir, Value x, Value y) { return ir.binary(op, x, y, lane); });
}

// Operand order decides which NaN x86 returns, and compilers treat the
// intrinsics as commutative; inline asm pins the order the instruction sees.
#define VM_ASM_PS(name, insn)                                        \
  __m128 name(__m128 a, __m128 b) {                                  \
    asm(insn " %1, %0" : "+x"(a) : "x"(b));                          \
    return a;                                                        \
  }
VM_ASM_PS(asm_addps, "addps")
VM_ASM_PS(asm_mulps, "mulps")
VM_ASM_PS(asm_divps, "divps")
VM_ASM_PS(asm_minps, "minps")
VM_ASM_PS(asm_cmpnleps, "cmpnleps")
__m128d asm_maxpd(__m128d a, __m128d b) {
  asm("maxpd %1, %0" : "+x"(a) : "x"(b));
  return a;
}
__m128d asm_subpd(__m128d a, __m128d b) {
  asm("subpd %1, %0" : "+x"(a) : "x"(b));
  return a;
}
__m128d asm_sd(int which, __m128d a, __m128d b) {
  switch (which) {
    case 0: asm("addsd %1, %0" : "+x"(a) : "x"(b)); break;
    case 1: asm("subsd %1, %0" : "+x"(a) : "x"(b)); break;
    case 2: asm("mulsd %1, %0" : "+x"(a) : "x"(b)); break;
    case 3: asm("divsd %1, %0" : "+x"(a) : "x"(b)); break;
    case 4: asm("minsd %1, %0" : "+x"(a) : "x"(b)); break;
    default: asm("maxsd %1, %0" : "+x"(a) : "x"(b)); break;
  }
  return a;
}
__m128 asm_ss(int which, __m128 a, __m128 b) {
  if (which == 0) asm("addss %1, %0" : "+x"(a) : "x"(b));
  else asm("minss %1, %0" : "+x"(a) : "x"(b));
  return a;
}
// f64 -> f32 and f64 -> i32/i64 under an explicit MXCSR rounding field.
struct HostConv {
  float f;
  int32_t i32;
  int64_t i64;
};
HostConv host_convert(double d, unsigned rc) {
  unsigned old = 0, csr = 0;
  HostConv h{};
  asm volatile("stmxcsr %0" : "=m"(old));
  csr = (old & ~0x6000u) | (rc << 13);
  __m128d x = _mm_set_sd(d);
  __m128 out = _mm_setzero_ps();
  asm volatile("ldmxcsr %[c]\n\tcvtsd2ss %[x], %[o]\n\tcvtsd2si %[x], %k[r32]\n\tcvtsd2si %[x], %q[r64]\n\tldmxcsr %[old]"
               : [o] "+x"(out), [r32] "=&r"(h.i32), [r64] "=&r"(h.i64)
               : [x] "x"(x), [c] "m"(csr), [old] "m"(old));
  h.f = _mm_cvtss_f32(out);
  return h;
}

Val rand_v128(std::mt19937_64& rng) {
  // Skew lanes toward edge values so saturation and sign paths are exercised.
  static const uint64_t kEdges[] = {0, 1, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080, 0xffffffffffffffff,
                                    0x7fff80007fff8000, 0x0000ffff00008000, 0x80000000ffffffff};
  auto pick = [&]() { return rng() % 3 == 0 ? kEdges[rng() % 8] : rng(); };
  return Val{pick(), pick()};
}

}  // namespace

TEST_CASE("integer arithmetic wraps at every width") {
  CHECK(bin(Opcode::Add, Type::I8, 0xff, 1).lo == 0);
  CHECK(bin(Opcode::Add, Type::I16, 0x7fff, 1).lo == 0x8000);
  CHECK(bin(Opcode::Sub, Type::I32, 0, 1).lo == 0xffffffffu);
  CHECK(bin(Opcode::Sub, Type::I64, 5, 7).lo == uint64_t(-2));
  CHECK(bin(Opcode::Mul, Type::I64, 0xffffffffffffffffull, 0xffffffffffffffffull).lo == 1);
  CHECK(bin(Opcode::Mul, Type::I8, 16, 16).lo == 0);
  Val big = eval(Type::I128, Val{~0ull, ~0ull}, Type::I128, Val{1, 0},
                 [](IRBuilder& ir, Value x, Value y) { return ir.add(x, y); });
  CHECK(big == Val{0, 0});
  // High halves of products, unsigned and signed.
  CHECK(bin(Opcode::MulHiU, Type::I64, ~0ull, ~0ull).lo == 0xfffffffffffffffeull);
  CHECK(bin(Opcode::MulHiS, Type::I64, ~0ull, ~0ull).lo == 0);  // -1 * -1 = 1
  CHECK(bin(Opcode::MulHiS, Type::I64, 0x8000000000000000ull, 2).lo == ~0ull);
  CHECK(bin(Opcode::MulHiU, Type::I8, 0xff, 0xff).lo == 0xfe);
  CHECK(bin(Opcode::MulHiS, Type::I16, 0x8000, 0x8000).lo == 0x4000);
  for (uint64_t x : {0ull, 1ull, 0x80ull, 0x7fffull, 0xffffffffull}) {
    CHECK(un(Opcode::Neg, Type::I32, x).lo == (uint32_t)(-(uint32_t)x));
    CHECK(un(Opcode::Not, Type::I16, x & 0xffff).lo == (uint16_t)~x);
  }
  CHECK(un(Opcode::Abs, Type::I8, 0x80).lo == 0x80);  // |INT8_MIN| wraps, as PABSB
  CHECK(un(Opcode::Abs, Type::I32, 0xfffffffb).lo == 5);
}

TEST_CASE("division traps on zero and on signed overflow") {
  ExecResult r;
  CHECK(eval(Type::I64, Val{7, 0}, Type::I64, Val{2, 0}, [](IRBuilder& ir, Value a, Value b) { return ir.binary(Opcode::DivU, a, b); }).lo == 3);
  CHECK(bin(Opcode::DivS, Type::I32, uint32_t(-7), 2).lo == uint32_t(-3));  // truncates toward zero
  CHECK(bin(Opcode::RemS, Type::I32, uint32_t(-7), 2).lo == uint32_t(-1));  // sign of the dividend
  CHECK(bin(Opcode::RemU, Type::I8, 200, 7).lo == 200 % 7);
  for (Opcode op : {Opcode::DivU, Opcode::DivS, Opcode::RemU, Opcode::RemS}) {
    eval(Type::I64, Val{5, 0}, Type::I64, Val{0, 0}, [&](IRBuilder& ir, Value a, Value b) { return ir.binary(op, a, b); }, &r);
    CHECK(r.kind == TermKind::Trap);
    CHECK(r.trap == TrapReason::DivideError);
    CHECK(r.pc == GuestAddr(0x1000));
  }
  for (Type t : {Type::I8, Type::I16, Type::I32, Type::I64}) {
    uint64_t min = uint64_t(1) << (type_bits(t) - 1);
    uint64_t minus1 = type_bits(t) == 64 ? ~0ull : (uint64_t(1) << type_bits(t)) - 1;
    for (Opcode op : {Opcode::DivS, Opcode::RemS}) {
      eval(t, Val{min, 0}, t, Val{minus1, 0}, [&](IRBuilder& ir, Value a, Value b) { return ir.binary(op, a, b); }, &r);
      CHECK(r.trap == TrapReason::DivideError);
    }
  }
  // 128-bit division (x86 DIV r64 divides rdx:rax).
  Val q = eval(Type::I128, Val{0, 1}, Type::I128, Val{2, 0}, [](IRBuilder& ir, Value a, Value b) { return ir.binary(Opcode::DivU, a, b); });
  CHECK(q == Val{0x8000000000000000ull, 0});
  eval(Type::I128, Val{0, 0x8000000000000000ull}, Type::I128, Val{~0ull, ~0ull},
       [](IRBuilder& ir, Value a, Value b) { return ir.binary(Opcode::DivS, a, b); }, &r);
  CHECK(r.trap == TrapReason::DivideError);
}

TEST_CASE("shifts by the width or more, rotates modulo the width") {
  for (Type t : {Type::I8, Type::I16, Type::I32, Type::I64}) {
    uint32_t w = type_bits(t);
    uint64_t top = uint64_t(1) << (w - 1);
    uint64_t all = w == 64 ? ~0ull : (uint64_t(1) << w) - 1;
    CHECK(bin(Opcode::Shl, t, 1, w - 1).lo == top);
    CHECK(bin(Opcode::Shl, t, 1, w).lo == 0);
    CHECK(bin(Opcode::Shl, t, 1, w + 3).lo == 0);
    CHECK(bin(Opcode::LShr, t, top, w).lo == 0);
    CHECK(bin(Opcode::LShr, t, top, w - 1).lo == 1);
    CHECK(bin(Opcode::AShr, t, top, w).lo == all);
    CHECK(bin(Opcode::AShr, t, top, 200).lo == all);
    CHECK(bin(Opcode::AShr, t, top >> 1, w).lo == 0);
    CHECK(bin(Opcode::Rotl, t, top | 1, 1).lo == 3);
    CHECK(bin(Opcode::Rotl, t, 1, w).lo == 1);
    CHECK(bin(Opcode::Rotr, t, 1, 1).lo == top);
    CHECK(bin(Opcode::Rotr, t, 3, w + 1).lo == (top | 1));
  }
  // Against the host's own shifts on in-range counts.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    uint64_t a = rng();
    unsigned c = rng() % 64;
    CHECK(bin(Opcode::Shl, Type::I64, a, c).lo == a << c);
    CHECK(bin(Opcode::LShr, Type::I64, a, c).lo == a >> c);
    CHECK(bin(Opcode::AShr, Type::I64, a, c).lo == uint64_t(int64_t(a) >> c));
    CHECK(bin(Opcode::Rotl, Type::I64, a, c).lo == std::rotl(a, int(c)));
    CHECK(bin(Opcode::Rotr, Type::I32, a & 0xffffffff, c).lo == std::rotr(uint32_t(a), int(c)));
  }
}

TEST_CASE("comparisons, select and min/max") {
  struct P { CmpPred p; uint64_t a, b; bool want; };
  const P cases[] = {{CmpPred::Eq, 5, 5, true},       {CmpPred::Ne, 5, 5, false},     {CmpPred::Slt, 0x80, 1, true},
                     {CmpPred::Ult, 0x80, 1, false},  {CmpPred::Sle, 0xff, 0xff, true}, {CmpPred::Sgt, 1, 0xff, true},
                     {CmpPred::Sge, 0x7f, 0x80, true}, {CmpPred::Ule, 0, 0xff, true},   {CmpPred::Ugt, 0xff, 0x7f, true},
                     {CmpPred::Uge, 0x7f, 0x80, false}};
  for (const P& c : cases) {
    Val v = eval(Type::I8, Val{c.a, 0}, Type::I8, Val{c.b, 0}, [&](IRBuilder& ir, Value x, Value y) { return ir.cmp(c.p, x, y); });
    CHECK(v.lo == (c.want ? 1u : 0u));
  }
  Val s = eval(Type::I64, Val{10, 0}, Type::I64, Val{20, 0}, [](IRBuilder& ir, Value x, Value y) {
    return ir.select(ir.cmp(CmpPred::Ult, x, y), x, y);
  });
  CHECK(s.lo == 10);
  CHECK(bin(Opcode::SMin, Type::I16, 0x8000, 1).lo == 0x8000);
  CHECK(bin(Opcode::UMin, Type::I16, 0x8000, 1).lo == 1);
  CHECK(bin(Opcode::SMax, Type::I32, 0xffffffff, 0).lo == 0);
  CHECK(bin(Opcode::UMax, Type::I32, 0xffffffff, 0).lo == 0xffffffff);
}

TEST_CASE("extension, truncation and bitcast of every width") {
  const Type ints[] = {Type::I1, Type::I8, Type::I16, Type::I32, Type::I64};
  for (Type from : ints) {
    for (Type to : {Type::I8, Type::I16, Type::I32, Type::I64, Type::I128}) {
      if (type_bits(to) <= type_bits(from)) continue;
      uint64_t top = uint64_t(1) << (type_bits(from) - 1);
      Val z = eval(from, Val{top, 0}, Type::Void, Val{}, [&](IRBuilder& ir, Value x, Value) { return ir.zext(x, to); });
      CHECK(z == Val{top, 0});
      Val sx = eval(from, Val{top, 0}, Type::Void, Val{}, [&](IRBuilder& ir, Value x, Value) { return ir.sext(x, to); });
      uint64_t all_lo = type_bits(to) >= 64 ? ~0ull : (uint64_t(1) << type_bits(to)) - 1;
      uint64_t want_lo = (~(top - 1)) & all_lo;  // sign bit copied upward
      CHECK(sx.lo == want_lo);
      CHECK(sx.hi == (to == Type::I128 ? ~0ull : 0));
      Val sx_pos = eval(from, Val{top - 1 == 0 ? 0 : top - 1, 0}, Type::Void, Val{},
                        [&](IRBuilder& ir, Value x, Value) { return ir.sext(x, to); });
      CHECK(sx_pos.lo == (top - 1));
    }
  }
  Val t = eval(Type::I64, Val{0x1122334455667788, 0}, Type::Void, Val{}, [](IRBuilder& ir, Value x, Value) { return ir.trunc(x, Type::I16); });
  CHECK(t.lo == 0x7788);
  Val t1 = eval(Type::I8, Val{0xfe, 0}, Type::Void, Val{}, [](IRBuilder& ir, Value x, Value) { return ir.trunc(x, Type::I1); });
  CHECK(t1.lo == 0);
  Val bc = eval(Type::F64, Val{std::bit_cast<uint64_t>(1.5), 0}, Type::Void, Val{},
                [](IRBuilder& ir, Value x, Value) { return ir.bitcast(x, Type::I64); });
  CHECK(bc.lo == std::bit_cast<uint64_t>(1.5));
}

TEST_CASE("bit counting, byte swap and parity") {
  CHECK(un(Opcode::Ctz, Type::I32, 0).lo == 32);
  CHECK(un(Opcode::Clz, Type::I16, 0).lo == 16);
  CHECK(un(Opcode::Ctz, Type::I64, 0x100).lo == 8);
  CHECK(un(Opcode::Clz, Type::I64, 0x100).lo == 55);
  CHECK(un(Opcode::Clz, Type::I8, 1).lo == 7);
  CHECK(un(Opcode::Popcount, Type::I64, ~0ull).lo == 64);
  CHECK(un(Opcode::Bswap, Type::I32, 0x11223344).lo == 0x44332211);
  CHECK(un(Opcode::Bswap, Type::I16, 0x1122).lo == 0x2211);
  CHECK(un(Opcode::Bswap, Type::I64, 0x0102030405060708).lo == 0x0807060504030201);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = rng();
    CHECK(un(Opcode::Popcount, Type::I64, x).lo == uint64_t(__builtin_popcountll(x)));
    Val p = eval(Type::I8, Val{x & 0xff, 0}, Type::Void, Val{}, [](IRBuilder& ir, Value v, Value) { return ir.parity(v); });
    CHECK(p.lo == (__builtin_parity(unsigned(x & 0xff)) == 0 ? 1u : 0u));  // x86 PF: even parity
  }
}

TEST_CASE("carry and overflow helpers match the host's ADC/SBB flags") {
  std::mt19937_64 rng(11);
  const uint64_t edges[] = {0, 1, 0x7fffffffffffffff, 0x8000000000000000, ~0ull};
  for (int i = 0; i < 400; ++i) {
    uint64_t a = i < 25 ? edges[i % 5] : rng(), b = i < 25 ? edges[i / 5] : rng();
    bool cin = rng() & 1;
    // Host oracle: ADC and SBB with the carry flag preset.
    uint8_t cf_add, of_add, cf_sub, of_sub;
    uint64_t ra = a, rs = a;
    asm("bt $0, %q[c]\n\tadc %[b], %[r]\n\tsetc %[cf]\n\tseto %[of]"
        : [r] "+r"(ra), [cf] "=r"(cf_add), [of] "=r"(of_add) : [b] "r"(b), [c] "r"(uint64_t(cin)) : "cc");
    asm("bt $0, %q[c]\n\tsbb %[b], %[r]\n\tsetc %[cf]\n\tseto %[of]"
        : [r] "+r"(rs), [cf] "=r"(cf_sub), [of] "=r"(of_sub) : [b] "r"(b), [c] "r"(uint64_t(cin)) : "cc");
    auto flag = [&](Opcode op) {
      IRBlock blk;
      IRBuilder ir(blk);
      Value x = ir.i64(a), y = ir.i64(b), c = ir.i1(cin);
      Value f = op == Opcode::AddCarry      ? ir.add_carry(x, y, c)
                : op == Opcode::AddOverflow ? ir.add_overflow(x, y, c)
                : op == Opcode::SubBorrow   ? ir.sub_borrow(x, y, c)
                                            : ir.sub_overflow(x, y, c);
      ir.set_reg(X86Reg::Cf, f);
      ir.jump(GuestAddr(0));
      return run_block(blk).state.cf;
    };
    CHECK(flag(Opcode::AddCarry) == cf_add);
    CHECK(flag(Opcode::AddOverflow) == of_add);
    CHECK(flag(Opcode::SubBorrow) == cf_sub);
    CHECK(flag(Opcode::SubOverflow) == of_sub);
  }
}

TEST_CASE("saturating and averaging lane ops match SSE2") {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    Val a = rand_v128(rng), b = rand_v128(rng);
    __m128i x = to_m128(a), y = to_m128(b);
    CHECK(vbin(Opcode::Add, Lane::I8, a, b) == from_m128(_mm_add_epi8(x, y)));
    CHECK(vbin(Opcode::Sub, Lane::I16, a, b) == from_m128(_mm_sub_epi16(x, y)));
    CHECK(vbin(Opcode::Add, Lane::I32, a, b) == from_m128(_mm_add_epi32(x, y)));
    CHECK(vbin(Opcode::Sub, Lane::I64, a, b) == from_m128(_mm_sub_epi64(x, y)));
    CHECK(vbin(Opcode::AddSatS, Lane::I8, a, b) == from_m128(_mm_adds_epi8(x, y)));
    CHECK(vbin(Opcode::AddSatU, Lane::I16, a, b) == from_m128(_mm_adds_epu16(x, y)));
    CHECK(vbin(Opcode::SubSatS, Lane::I16, a, b) == from_m128(_mm_subs_epi16(x, y)));
    CHECK(vbin(Opcode::SubSatU, Lane::I8, a, b) == from_m128(_mm_subs_epu8(x, y)));
    CHECK(vbin(Opcode::AvgU, Lane::I8, a, b) == from_m128(_mm_avg_epu8(x, y)));
    CHECK(vbin(Opcode::AvgU, Lane::I16, a, b) == from_m128(_mm_avg_epu16(x, y)));
    CHECK(vbin(Opcode::Mul, Lane::I16, a, b) == from_m128(_mm_mullo_epi16(x, y)));
    CHECK(vbin(Opcode::MulHiS, Lane::I16, a, b) == from_m128(_mm_mulhi_epi16(x, y)));
    CHECK(vbin(Opcode::MulHiU, Lane::I16, a, b) == from_m128(_mm_mulhi_epu16(x, y)));
    CHECK(vbin(Opcode::UMin, Lane::I8, a, b) == from_m128(_mm_min_epu8(x, y)));
    CHECK(vbin(Opcode::SMax, Lane::I16, a, b) == from_m128(_mm_max_epi16(x, y)));
    CHECK(vbin(Opcode::And, Lane::I64, a, b) == from_m128(_mm_and_si128(x, y)));
    CHECK(vbin(Opcode::Or, Lane::I8, a, b) == from_m128(_mm_or_si128(x, y)));
    CHECK(vbin(Opcode::Xor, Lane::I32, a, b) == from_m128(_mm_xor_si128(x, y)));
    Val eq = eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.cmp(CmpPred::Eq, p, q, Lane::I8); });
    CHECK(eq == from_m128(_mm_cmpeq_epi8(x, y)));
    Val gt = eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.cmp(CmpPred::Sgt, p, q, Lane::I32); });
    CHECK(gt == from_m128(_mm_cmpgt_epi32(x, y)));
    Val neg = eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.unary(Opcode::Neg, p, Lane::I32); });
    CHECK(neg == from_m128(_mm_sub_epi32(_mm_setzero_si128(), x)));
    Val nt = eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.unary(Opcode::Not, p, Lane::I64); });
    CHECK(nt == from_m128(_mm_xor_si128(x, _mm_set1_epi32(-1))));
    // Lane shifts with a per-lane count (PSLLW by an immediate splat).
    unsigned c = rng() % 18;
    Val counts{0, 0};
    for (int l = 0; l < 4; ++l) counts.lo |= uint64_t(c) << (16 * l), counts.hi |= uint64_t(c) << (16 * l);
    CHECK(vbin(Opcode::Shl, Lane::I16, a, counts) == from_m128(_mm_sll_epi16(x, _mm_cvtsi32_si128(int(c)))));
    CHECK(vbin(Opcode::AShr, Lane::I16, a, counts) == from_m128(_mm_sra_epi16(x, _mm_cvtsi32_si128(int(c)))));
    CHECK(vbin(Opcode::LShr, Lane::I16, a, counts) == from_m128(_mm_srl_epi16(x, _mm_cvtsi32_si128(int(c)))));
  }
}

__attribute__((target("ssse3,sse4.1"))) static void check_ssse3_sse41(std::mt19937_64& rng) {
  Val a = rand_v128(rng), b = rand_v128(rng);
  __m128i x = to_m128(a), y = to_m128(b);
  Val pshufb = eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.vpshufb(p, q); });
  CHECK(pshufb == from_m128(_mm_shuffle_epi8(x, y)));
  Val abs = eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.unary(Opcode::Abs, p, Lane::I16); });
  CHECK(abs == from_m128(_mm_abs_epi16(x)));
  CHECK(vbin(Opcode::SMin, Lane::I32, a, b) == from_m128(_mm_min_epi32(x, y)));
  CHECK(vbin(Opcode::UMax, Lane::I32, a, b) == from_m128(_mm_max_epu32(x, y)));
  CHECK(vbin(Opcode::Mul, Lane::I32, a, b) == from_m128(_mm_mullo_epi32(x, y)));
  Val eq64 = eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.cmp(CmpPred::Eq, p, q, Lane::I64); });
  CHECK(eq64 == from_m128(_mm_cmpeq_epi64(x, y)));
  Val pus = eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.vpack_us(Lane::I32, p, q); });
  CHECK(pus == from_m128(_mm_packus_epi32(x, y)));
}

TEST_CASE("packs, shuffles, movemask, madd and sad match SSE2/SSSE3/SSE4.1") {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 200; ++i) {
    Val a = rand_v128(rng), b = rand_v128(rng);
    __m128i x = to_m128(a), y = to_m128(b);
    auto two = [&](auto make) { return eval(Type::V128, a, Type::V128, b, make); };
    CHECK(two([](IRBuilder& ir, Value p, Value q) { return ir.vpack_ss(Lane::I16, p, q); }) == from_m128(_mm_packs_epi16(x, y)));
    CHECK(two([](IRBuilder& ir, Value p, Value q) { return ir.vpack_ss(Lane::I32, p, q); }) == from_m128(_mm_packs_epi32(x, y)));
    CHECK(two([](IRBuilder& ir, Value p, Value q) { return ir.vpack_us(Lane::I16, p, q); }) == from_m128(_mm_packus_epi16(x, y)));
    CHECK(two([](IRBuilder& ir, Value p, Value q) { return ir.vmuladd(p, q); }) == from_m128(_mm_madd_epi16(x, y)));
    CHECK(two([](IRBuilder& ir, Value p, Value q) { return ir.vsad(p, q); }) == from_m128(_mm_sad_epu8(x, y)));
    // punpcklbw as a shuffle: a0 b0 a1 b1 ...
    std::array<uint8_t, 16> unpck{};
    for (int k = 0; k < 8; ++k) unpck[2 * k] = uint8_t(k), unpck[2 * k + 1] = uint8_t(16 + k);
    CHECK(two([&](IRBuilder& ir, Value p, Value q) { return ir.vshuffle(p, q, unpck); }) == from_m128(_mm_unpacklo_epi8(x, y)));
    // psrldq 3 as a shuffle with zero fill.
    std::array<uint8_t, 16> srl{};
    for (int k = 0; k < 16; ++k) srl[k] = k + 3 < 16 ? uint8_t(k + 3) : 0x80;
    CHECK(two([&](IRBuilder& ir, Value p, Value q) { return ir.vshuffle(p, q, srl); }) == from_m128(_mm_srli_si128(x, 3)));
    Val m8 = eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.vmovmsk(Lane::I8, p); });
    CHECK(m8.lo == uint32_t(_mm_movemask_epi8(x)));
    Val m32 = eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.vmovmsk(Lane::F32, p); });
    CHECK(m32.lo == uint32_t(_mm_movemask_ps(_mm_castsi128_ps(x))));
    Val m64 = eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.vmovmsk(Lane::I64, p); });
    CHECK(m64.lo == uint32_t(_mm_movemask_pd(_mm_castsi128_pd(x))));
    check_ssse3_sse41(rng);
  }
  // Lane extract / insert / splat.
  Val a{0x1122334455667788, 0x99aabbccddeeff00};
  CHECK(eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.vextract(Lane::I16, p, 6); }).lo == 0xbbcc);
  CHECK(eval(Type::V128, a, Type::I32, Val{0xdeadbeef, 0}, [](IRBuilder& ir, Value p, Value q) { return ir.vinsert(Lane::I32, p, q, 1); }) ==
        Val{0xdeadbeef55667788, 0x99aabbccddeeff00});
  CHECK(eval(Type::I8, Val{0xab, 0}, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.vsplat(Lane::I8, p); }) ==
        Val{0xababababababababull, 0xababababababababull});
}

namespace {
__attribute__((target("sse4.1"))) double host_round_current(double d, int rc) {
  __m128d x = _mm_set_sd(d);
  switch (rc) {
    case 0: return _mm_cvtsd_f64(_mm_round_sd(x, x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    case 1: return _mm_cvtsd_f64(_mm_round_sd(x, x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
    case 2: return _mm_cvtsd_f64(_mm_round_sd(x, x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC));
    default: return _mm_cvtsd_f64(_mm_round_sd(x, x, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
  }
}
Val fbin(Opcode op, Type t, double a, double b, Rounding rm = Rounding::Rne, uint32_t mxcsr = vm::core::kDefaultMxcsr) {
  Val va = t == Type::F64 ? Val{std::bit_cast<uint64_t>(a), 0} : Val{std::bit_cast<uint32_t>(float(a)), 0};
  Val vb = t == Type::F64 ? Val{std::bit_cast<uint64_t>(b), 0} : Val{std::bit_cast<uint32_t>(float(b)), 0};
  return eval(t, va, t, vb, [&](IRBuilder& ir, Value x, Value y) { return ir.farith(op, x, y, rm); }, nullptr, mxcsr);
}
double as_f64(Val v) { return std::bit_cast<double>(v.lo); }
}  // namespace

TEST_CASE("scalar floating point matches SSE, including NaN and rounding rules") {
  std::mt19937_64 rng(13);
  const double specials[] = {0.0, -0.0, 1.0, -1.5, 1e308, -1e-310, INFINITY, -INFINITY, NAN, 3.0, 1.0 / 3.0};
  for (double a : specials)
    for (double b : specials) {
      __m128d x = _mm_set_sd(a), y = _mm_set_sd(b);
      auto host = [](__m128d v) { return std::bit_cast<uint64_t>(_mm_cvtsd_f64(v)); };
      CHECK(fbin(Opcode::FAdd, Type::F64, a, b).lo == host(asm_sd(0, x, y)));
      CHECK(fbin(Opcode::FSub, Type::F64, a, b).lo == host(asm_sd(1, x, y)));
      CHECK(fbin(Opcode::FMul, Type::F64, a, b).lo == host(asm_sd(2, x, y)));
      CHECK(fbin(Opcode::FDiv, Type::F64, a, b).lo == host(asm_sd(3, x, y)));
      CHECK(fbin(Opcode::FMin, Type::F64, a, b).lo == host(asm_sd(4, x, y)));
      CHECK(fbin(Opcode::FMax, Type::F64, a, b).lo == host(asm_sd(5, x, y)));
      __m128 xf = _mm_set_ss(float(a)), yf = _mm_set_ss(float(b));
      auto hostf = [](__m128 v) { return uint64_t(std::bit_cast<uint32_t>(_mm_cvtss_f32(v))); };
      CHECK(fbin(Opcode::FAdd, Type::F32, a, b).lo == hostf(asm_ss(0, xf, yf)));
      CHECK(fbin(Opcode::FMin, Type::F32, a, b).lo == hostf(asm_ss(1, xf, yf)));
      // The eight CMPSD predicates.
      for (int p = 0; p < 8; ++p) {
        Val r = eval(Type::F64, Val{std::bit_cast<uint64_t>(a), 0}, Type::F64, Val{std::bit_cast<uint64_t>(b), 0},
                     [&](IRBuilder& ir, Value u, Value v) { return ir.fcmp(static_cast<FCmpPred>(p), u, v); });
        __m128d h;
        switch (p) {
          case 0: h = _mm_cmpeq_sd(x, y); break;
          case 1: h = _mm_cmplt_sd(x, y); break;
          case 2: h = _mm_cmple_sd(x, y); break;
          case 3: h = _mm_cmpunord_sd(x, y); break;
          case 4: h = _mm_cmpneq_sd(x, y); break;
          case 5: h = _mm_cmpnlt_sd(x, y); break;
          case 6: h = _mm_cmpnle_sd(x, y); break;
          default: h = _mm_cmpord_sd(x, y); break;
        }
        CHECK(r.lo == (host(h) != 0 ? 1u : 0u));
      }
    }
  // NaN payload propagation: the first NaN operand wins, quieted.
  uint64_t snan = 0x7ff0000000000001ull, qnan2 = 0x7ff8000000000002ull;
  Val r = eval(Type::F64, Val{snan, 0}, Type::F64, Val{qnan2, 0}, [](IRBuilder& ir, Value x, Value y) { return ir.farith(Opcode::FAdd, x, y, Rounding::Rne); });
  CHECK(r.lo == (snan | 0x0008000000000000ull));
  // Rounding modes: 1/3 rounds differently up and down; dyn follows MXCSR.RC.
  double down = as_f64(fbin(Opcode::FDiv, Type::F64, 1.0, 3.0, Rounding::Rdn));
  double up = as_f64(fbin(Opcode::FDiv, Type::F64, 1.0, 3.0, Rounding::Rup));
  CHECK(down < up);
  CHECK(as_f64(fbin(Opcode::FDiv, Type::F64, 1.0, 3.0, Rounding::Dyn, 0x1f80 | (1u << 13))) == down);
  CHECK(as_f64(fbin(Opcode::FDiv, Type::F64, 1.0, 3.0, Rounding::Dyn, 0x1f80 | (2u << 13))) == up);
  CHECK(as_f64(fbin(Opcode::FDiv, Type::F64, 1.0, 3.0, Rounding::Rtz)) == down);
  CHECK(std::fegetround() == FE_TONEAREST);  // the host mode is restored
  // sqrt
  for (double a : specials) {
    Val s = eval(Type::F64, Val{std::bit_cast<uint64_t>(a), 0}, Type::Void, Val{}, [](IRBuilder& ir, Value x, Value) { return ir.fsqrt(x, Rounding::Rne); });
    CHECK(s.lo == std::bit_cast<uint64_t>(_mm_cvtsd_f64(_mm_sqrt_sd(_mm_setzero_pd(), _mm_set_sd(a)))));
  }
  (void)rng;
}

TEST_CASE("float conversions match CVT* instructions") {
  const double vals[] = {0.5, 1.5, 2.5, -2.5, -0.5, 1e10, -1e19, 9.3e18, 2147483647.5, -2147483648.4, NAN, INFINITY, 123.456};
  for (double d : vals) {
    Val vd{std::bit_cast<uint64_t>(d), 0};
    for (int rc = 0; rc < 4; ++rc) {
      Rounding rm = static_cast<Rounding>(rc);
      HostConv hc = host_convert(d, unsigned(rc));
      int32_t h32 = hc.i32;
      int64_t h64 = hc.i64;
      float hf = hc.f;
      double hr = host_round_current(d, rc);
      CHECK(eval(Type::F64, vd, Type::Void, Val{}, [&](IRBuilder& ir, Value x, Value) { return ir.fptosi(x, Type::I32, rm); }).lo == uint32_t(h32));
      CHECK(eval(Type::F64, vd, Type::Void, Val{}, [&](IRBuilder& ir, Value x, Value) { return ir.fptosi(x, Type::I64, rm); }).lo == uint64_t(h64));
      CHECK(eval(Type::F64, vd, Type::Void, Val{}, [&](IRBuilder& ir, Value x, Value) { return ir.fcvt(x, Type::F32, rm); }).lo ==
            std::bit_cast<uint32_t>(hf));
      CHECK(eval(Type::F64, vd, Type::Void, Val{}, [&](IRBuilder& ir, Value x, Value) { return ir.fround(x, rm); }).lo ==
            std::bit_cast<uint64_t>(hr));
    }
    CHECK(eval(Type::F64, vd, Type::Void, Val{}, [](IRBuilder& ir, Value x, Value) { return ir.fptosi(x, Type::I32, Rounding::Rtz); }).lo ==
          uint32_t(_mm_cvttsd_si32(_mm_set_sd(d))));
  }
  for (int64_t i : {int64_t(0), int64_t(-1), int64_t(1) << 62, INT64_MIN, int64_t(0x1fffffffffffff1)}) {
    CHECK(eval(Type::I64, Val{uint64_t(i), 0}, Type::Void, Val{}, [](IRBuilder& ir, Value x, Value) { return ir.sitofp(x, Type::F64, Rounding::Rne); }).lo ==
          std::bit_cast<uint64_t>(_mm_cvtsd_f64(_mm_cvtsi64_sd(_mm_setzero_pd(), i))));
    CHECK(eval(Type::I64, Val{uint64_t(i), 0}, Type::Void, Val{}, [](IRBuilder& ir, Value x, Value) { return ir.sitofp(x, Type::F32, Rounding::Rne); }).lo ==
          std::bit_cast<uint32_t>(_mm_cvtss_f32(_mm_cvtsi64_ss(_mm_setzero_ps(), i))));
  }
  Val f{std::bit_cast<uint32_t>(1.25f), 0};
  CHECK(eval(Type::F32, f, Type::Void, Val{}, [](IRBuilder& ir, Value x, Value) { return ir.fcvt(x, Type::F64, Rounding::Rne); }).lo ==
        std::bit_cast<uint64_t>(1.25));
  // Packed: cvtdq2ps / cvttps2dq / addps / cmpps / sqrtps.
  std::mt19937_64 rng(17);
  for (int i = 0; i < 100; ++i) {
    Val a = rand_v128(rng), b = rand_v128(rng);
    __m128i x = to_m128(a);
    CHECK(eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.sitofp(p, Type::V128, Rounding::Rne, Lane::I32); }) ==
          from_m128(_mm_castps_si128(_mm_cvtepi32_ps(x))));
    CHECK(eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.fptosi(p, Type::V128, Rounding::Rtz, Lane::F32); }) ==
          from_m128(_mm_cvttps_epi32(_mm_castsi128_ps(x))));
    __m128 xf = _mm_castsi128_ps(x), yf = _mm_castsi128_ps(to_m128(b));
    CHECK(eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.farith(Opcode::FMul, p, q, Rounding::Rne, Lane::F32); }) ==
          from_m128(_mm_castps_si128(asm_mulps(xf, yf))));
    CHECK(eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.farith(Opcode::FMax, p, q, Rounding::Rne, Lane::F64); }) ==
          from_m128(_mm_castpd_si128(asm_maxpd(_mm_castsi128_pd(x), _mm_castsi128_pd(to_m128(b))))));
    CHECK(eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.fcmp(FCmpPred::Nle, p, q, Lane::F32); }) ==
          from_m128(_mm_castps_si128(asm_cmpnleps(xf, yf))));
    CHECK(eval(Type::V128, a, Type::Void, Val{}, [](IRBuilder& ir, Value p, Value) { return ir.fsqrt(p, Rounding::Rne, Lane::F64); }) ==
          from_m128(_mm_castpd_si128(_mm_sqrt_pd(_mm_castsi128_pd(x)))));
    CHECK(eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.farith(Opcode::FSub, p, q, Rounding::Rne, Lane::F64); }) ==
          from_m128(_mm_castpd_si128(asm_subpd(_mm_castsi128_pd(x), _mm_castsi128_pd(to_m128(b))))));
    CHECK(eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.farith(Opcode::FDiv, p, q, Rounding::Rne, Lane::F32); }) ==
          from_m128(_mm_castps_si128(asm_divps(xf, yf))));
    CHECK(eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.farith(Opcode::FAdd, p, q, Rounding::Rne, Lane::F32); }) ==
          from_m128(_mm_castps_si128(asm_addps(xf, yf))));
    CHECK(eval(Type::V128, a, Type::V128, b, [](IRBuilder& ir, Value p, Value q) { return ir.farith(Opcode::FMin, p, q, Rounding::Rne, Lane::F32); }) ==
          from_m128(_mm_castps_si128(asm_minps(xf, yf))));
  }
}

TEST_CASE("registers: sub-register reads and writes touch exactly their bytes") {
  IRBlock blk;
  IRBuilder ir(blk);
  Value ah = ir.get_reg(X86Reg::Rax, Type::I8, 1);
  ir.set_reg(X86Reg::Rbx, ah, 1);                           // bh = ah
  ir.set_reg(X86Reg::Rcx, ir.i16(0xbeef));                   // cx = 0xbeef, upper rcx kept
  ir.set_reg(X86Reg::Xmm1, ir.get_reg(X86Reg::Xmm0, Type::F64, 8), 0);  // low f64 of xmm1 = high f64 of xmm0
  ir.set_reg(X86Reg::Zf, ir.i1(true));
  ir.jump(GuestAddr(0x10));
  X86State s;
  s.gpr[0] = 0x1122334455667788;
  s.gpr[3] = 0xffffffffffffffff;
  s.gpr[1] = 0xaaaaaaaaaaaaaaaa;
  s.xmm[0] = {1, 2};
  s.xmm[1] = {3, 4};
  Run r = run_block(blk, s);
  CHECK(r.state.gpr[3] == 0xffffffffffff77ff);
  CHECK(r.state.gpr[1] == 0xaaaaaaaaaaaabeef);
  CHECK(r.state.xmm[1] == vm::core::Xmm{2, 4});
  CHECK(r.state.zf == 1);
  CHECK(r.state.rip == 0x10);
  CHECK(r.result.kind == TermKind::Jump);
}

TEST_CASE("fill: stores up to the end of the page, at least one element, faults at the first") {
  vm::core::RegionMemory mem;
  REQUIRE(mem.add_region(GuestAddr(0x1000), 0x3000, vm::core::kPermRW));
  REQUIRE(mem.add_region(GuestAddr(0x4000), 0x1000, vm::core::kPermRead));
  auto byte_at = [&](uint64_t a) {
    uint8_t v = 0xee;
    REQUIRE(mem.read(GuestAddr(a), std::span<uint8_t>(&v, 1)));
    return v;
  };
  IRBlock blk;
  IRBuilder ir(blk);
  ir.insn_start(GuestAddr(0x400000));
  // 5 words of 0xabcd from 0x1100: all of them fit in the page.
  ir.set_reg(X86Reg::Rax, ir.fill(ir.i64(0x1100), ir.i16(0xabcd), ir.i64(5)));
  // 100 qwords from 0x1fe0: only 4 end on the page (0x1fe0..0x2000).
  ir.set_reg(X86Reg::Rbx, ir.fill(ir.i64(0x1fe0), ir.i64(0x0102030405060708), ir.i64(100)));
  // A dword straddling 0x3000 does not fit; it is stored alone.
  ir.set_reg(X86Reg::Rcx, ir.fill(ir.i64(0x2ffe), ir.i32(0x11223344), ir.i64(9)));
  // A zero count stores nothing, even where a store would fault.
  ir.set_reg(X86Reg::Rdx, ir.fill(ir.i64(0x4000), ir.i8(1), ir.i64(0)));
  // A count that ends exactly at the page end (the next page is read-only).
  ir.set_reg(X86Reg::Rsi, ir.fill(ir.i64(0x3ffd), ir.i8(0x5a), ir.i64(3)));
  ir.insn_start(GuestAddr(0x400010));
  ir.set_reg(X86Reg::Rdi, ir.fill(ir.i64(0x4010), ir.i8(7), ir.i64(4)));  // read-only page: faults
  ir.set_reg(X86Reg::R8, ir.i64(1));  // never reached
  ir.jump(GuestAddr(0));
  Run r = run_block(blk, {}, &mem);
  CHECK(r.state.gpr[0] == 5);
  CHECK(byte_at(0x10ff) == 0);
  for (uint64_t a = 0x1100; a < 0x110a; a += 2) CHECK((byte_at(a) | byte_at(a + 1) << 8) == 0xabcd);
  CHECK(byte_at(0x110a) == 0);
  CHECK(r.state.gpr[3] == 4);
  CHECK(byte_at(0x1fe0) == 0x08);
  CHECK(byte_at(0x1ff8) == 0x08);
  CHECK(byte_at(0x1fff) == 0x01);
  CHECK(byte_at(0x2000) == 0);
  CHECK(r.state.gpr[1] == 1);
  CHECK(byte_at(0x2ffe) == 0x44);
  CHECK(byte_at(0x2fff) == 0x33);
  CHECK(byte_at(0x3000) == 0x22);
  CHECK(byte_at(0x3001) == 0x11);
  CHECK(byte_at(0x3002) == 0);
  CHECK(r.state.gpr[2] == 0);
  CHECK(r.state.gpr[6] == 3);
  CHECK(byte_at(0x3ffd) == 0x5a);
  CHECK(byte_at(0x3fff) == 0x5a);
  CHECK(r.result.kind == TermKind::Trap);
  CHECK(r.result.trap == TrapReason::MemoryFault);
  CHECK(r.result.pc == GuestAddr(0x400010));
  CHECK(r.result.fault_addr == GuestAddr(0x4010));
  CHECK(byte_at(0x4010) == 0);
  CHECK(r.result.fault_access == vm::core::Access::Write);
  CHECK(r.state.gpr[7] == 0);
  CHECK(r.state.gpr[8] == 0);
}

TEST_CASE("copy: element by element upwards, limited by both pages, faults at the first") {
  vm::core::RegionMemory mem;
  REQUIRE(mem.add_region(GuestAddr(0x1000), 0x3000, vm::core::kPermRW));
  std::vector<uint8_t> read_only(0x1000, 0);
  read_only[0] = 0x42;
  REQUIRE(mem.add_region(GuestAddr(0x4000), read_only, vm::core::kPermRead));
  auto byte_at = [&](uint64_t a) {
    uint8_t v = 0xee;
    REQUIRE(mem.read(GuestAddr(a), std::span<uint8_t>(&v, 1)));
    return v;
  };
  auto put = [&](uint64_t a, std::initializer_list<uint8_t> bytes) {
    std::vector<uint8_t> v(bytes);
    REQUIRE(mem.write(GuestAddr(a), v));
  };
  put(0x1100, {1, 2, 3, 4, 5, 6, 7, 8});
  put(0x1200, {1, 2, 3, 4, 5, 6, 7, 8});
  put(0x1ff8, {9, 9, 9, 9, 9, 9, 9, 9});
  IRBlock blk;
  IRBuilder ir(blk);
  ir.insn_start(GuestAddr(0x400000));
  // One byte up: each element reads the byte the one before it wrote, so the
  // first byte repeats (what rep movsb does; memmove would shift instead).
  ir.set_reg(X86Reg::Rax, ir.copy(ir.i64(0x1101), ir.i64(0x1100), ir.i64(5), 8));
  // Down by two bytes in words: the bytes move down, none repeats.
  ir.set_reg(X86Reg::Rbx, ir.copy(ir.i64(0x11fe), ir.i64(0x1200), ir.i64(4), 16));
  // A qword source at 0x1ff8: one element fits its page, so one moves.
  ir.set_reg(X86Reg::Rcx, ir.copy(ir.i64(0x2100), ir.i64(0x1ff8), ir.i64(4), 64));
  // A destination 16 bytes before its page end: two qwords.
  ir.set_reg(X86Reg::Rdx, ir.copy(ir.i64(0x2ff0), ir.i64(0x1100), ir.i64(10), 64));
  // A zero count touches nothing, even unmapped memory.
  ir.set_reg(X86Reg::Rsi, ir.copy(ir.i64(0x9000), ir.i64(0x9000), ir.i64(0), 32));
  ir.insn_start(GuestAddr(0x400010));
  ir.set_reg(X86Reg::Rdi, ir.copy(ir.i64(0x4000), ir.i64(0x1100), ir.i64(3), 8));  // read-only destination
  ir.set_reg(X86Reg::R8, ir.i64(1));  // never reached
  ir.jump(GuestAddr(0));
  Run r = run_block(blk, {}, &mem);
  CHECK(r.state.gpr[0] == 5);
  for (uint64_t a = 0x1100; a < 0x1106; ++a) CHECK(byte_at(a) == 1);
  CHECK(byte_at(0x1106) == 7);
  CHECK(r.state.gpr[3] == 4);
  for (uint64_t i = 0; i < 8; ++i) CHECK(byte_at(0x11fe + i) == i + 1);
  CHECK(r.state.gpr[1] == 1);
  CHECK(byte_at(0x2100) == 9);
  CHECK(byte_at(0x2107) == 9);
  CHECK(byte_at(0x2108) == 0);
  CHECK(r.state.gpr[2] == 2);
  CHECK(byte_at(0x2ff0) == 1);  // the source as the first copy left it
  CHECK(byte_at(0x2ff5) == 1);
  CHECK(byte_at(0x2ff6) == 7);
  CHECK(byte_at(0x2ff7) == 8);
  CHECK(byte_at(0x2ff8) == 0);
  CHECK(r.state.gpr[6] == 0);
  CHECK(r.result.kind == TermKind::Trap);
  CHECK(r.result.trap == TrapReason::MemoryFault);
  CHECK(r.result.pc == GuestAddr(0x400010));
  CHECK(r.result.fault_addr == GuestAddr(0x4000));
  CHECK(r.result.fault_access == vm::core::Access::Write);
  CHECK(byte_at(0x4000) == 0x42);
  CHECK(r.state.gpr[7] == 0);
  CHECK(r.state.gpr[8] == 0);

  // An unreadable source faults as a read, before anything is written.
  IRBlock rd;
  IRBuilder b2(rd);
  b2.insn_start(GuestAddr(0x500000));
  b2.copy(b2.i64(0x1300), b2.i64(0x8000), b2.i64(2), 32);
  b2.jump(GuestAddr(0));
  Run r2 = run_block(rd, {}, &mem);
  CHECK(r2.result.trap == TrapReason::MemoryFault);
  CHECK(r2.result.fault_access == vm::core::Access::Read);
  CHECK(r2.result.fault_addr == GuestAddr(0x8000));
  CHECK(byte_at(0x1300) == 0);
}

TEST_CASE("memory: loads with extension, stores, atomics and precise faults") {
  vm::core::RegionMemory mem;
  REQUIRE(mem.add_region(GuestAddr(0x1000), 0x1000, vm::core::kPermRW));
  REQUIRE(mem.add_region(GuestAddr(0x3000), 0x1000, vm::core::kPermRead));
  IRBlock blk;
  IRBuilder ir(blk);
  ir.insn_start(GuestAddr(0x400000));
  Value base = ir.i64(0x1000);
  ir.store(base, ir.i32(0x80ff7f01));
  ir.set_reg(X86Reg::Rax, ir.load_ext(Type::I64, base, Ext::Sign, 8));                         // 0x01
  ir.set_reg(X86Reg::Rbx, ir.load_ext(Type::I64, ir.add(base, ir.i64(1)), Ext::Sign, 8));      // 0x7f
  ir.set_reg(X86Reg::Rcx, ir.load_ext(Type::I64, ir.add(base, ir.i64(2)), Ext::Sign, 16));     // 0x80ff -> negative
  ir.set_reg(X86Reg::Rdx, ir.load_ext(Type::I64, ir.add(base, ir.i64(2)), Ext::Zero, 16));
  ir.set_reg(X86Reg::Rsi, ir.load_ext(Type::I64, base, Ext::Sign, 32));
  Value old = ir.atomic_rmw(RmwOp::Add, base, ir.i32(1));
  ir.set_reg(X86Reg::R8, ir.zext(old, Type::I64));
  Value seen = ir.atomic_cmpxchg(base, ir.i32(0x80ff7f02), ir.i32(7));
  ir.set_reg(X86Reg::R9, ir.zext(seen, Type::I64));
  Value failed = ir.atomic_cmpxchg(base, ir.i32(12345), ir.i32(9));
  ir.set_reg(X86Reg::R10, ir.zext(failed, Type::I64));
  ir.set_reg(X86Reg::R11, ir.zext(ir.load(Type::I32, base), Type::I64));
  ir.store(ir.i64(0x1010), ir.constant(Type::V128, 0x0706050403020100, 0x0f0e0d0c0b0a0908));
  ir.set_reg(X86Reg::Xmm2, ir.load(Type::V128, ir.i64(0x1010)));
  ir.fence();
  ir.insn_start(GuestAddr(0x400010));
  ir.set_reg(X86Reg::R12, ir.i64(1));  // this instruction faults after... no: its write is before the fault op
  ir.insn_start(GuestAddr(0x400020));
  ir.store(ir.i64(0x3008), ir.i64(5));  // read-only: faults
  ir.set_reg(X86Reg::R13, ir.i64(1));  // never reached
  ir.jump(GuestAddr(0));
  Run r = run_block(blk, {}, &mem);
  CHECK(r.state.gpr[0] == 1);
  CHECK(r.state.gpr[3] == 0x7f);
  CHECK(r.state.gpr[1] == 0xffffffffffff80ff);
  CHECK(r.state.gpr[2] == 0x80ff);
  CHECK(r.state.gpr[6] == 0xffffffff80ff7f01);
  CHECK(r.state.gpr[8] == 0x80ff7f01);
  CHECK(r.state.gpr[9] == 0x80ff7f02);
  CHECK(r.state.gpr[10] == 7);
  CHECK(r.state.gpr[11] == 7);
  CHECK(r.state.xmm[2] == vm::core::Xmm{0x0706050403020100, 0x0f0e0d0c0b0a0908});
  CHECK(r.state.gpr[12] == 1);
  CHECK(r.state.gpr[13] == 0);
  CHECK(r.result.kind == TermKind::Trap);
  CHECK(r.result.trap == TrapReason::MemoryFault);
  CHECK(r.result.pc == GuestAddr(0x400020));
  CHECK(r.result.fault_addr == GuestAddr(0x3008));
  CHECK(r.result.fault_access == vm::core::Access::Write);
  CHECK(r.state.rip == 0x400020);

  // A failing cmpxchg still needs write permission, as on x86.
  IRBlock ro;
  IRBuilder b2(ro);
  b2.insn_start(GuestAddr(0x500000));
  b2.atomic_cmpxchg(b2.i64(0x3000), b2.i64(1), b2.i64(2));
  b2.jump(GuestAddr(0));
  Run r2 = run_block(ro, {}, &mem);
  CHECK(r2.result.trap == TrapReason::MemoryFault);
  CHECK(r2.result.fault_access == vm::core::Access::Write);
  // Unmapped read.
  IRBlock um;
  IRBuilder b3(um);
  b3.insn_start(GuestAddr(0x600000));
  b3.set_reg(X86Reg::Rax, b3.load(Type::I64, b3.i64(0x2ffc)));
  b3.jump(GuestAddr(0));
  Run r3 = run_block(um, {}, &mem);
  CHECK(r3.result.fault_addr == GuestAddr(0x2ffc));  // the first inaccessible byte
  CHECK(r3.result.fault_access == vm::core::Access::Read);
}

TEST_CASE("terminators set rip and report their kind") {
  auto with = [](auto setup) {
    IRBlock blk;
    blk.start_pc = GuestAddr(0x100);
    IRBuilder ir(blk);
    setup(ir);
    return run_block(blk);
  };
  CHECK(with([](IRBuilder& ir) { ir.branch(ir.i1(true), GuestAddr(0x10), GuestAddr(0x20)); }).state.rip == 0x10);
  CHECK(with([](IRBuilder& ir) { ir.branch(ir.i1(false), GuestAddr(0x10), GuestAddr(0x20)); }).state.rip == 0x20);
  CHECK(with([](IRBuilder& ir) { ir.indirect_jump(ir.i64(0x1234)); }).state.rip == 0x1234);
  auto ret = with([](IRBuilder& ir) { ir.ret(ir.i64(0x4444)); });
  CHECK(ret.state.rip == 0x4444);
  CHECK(ret.result.kind == TermKind::Ret);
  CHECK(with([](IRBuilder& ir) { ir.call(GuestAddr(0x900), GuestAddr(0x105)); }).state.rip == 0x900);
  CHECK(with([](IRBuilder& ir) { ir.call_indirect(ir.i64(0x999), GuestAddr(0x105)); }).state.rip == 0x999);
  auto sys = with([](IRBuilder& ir) { ir.syscall(GuestAddr(0x102)); });
  CHECK(sys.result.kind == TermKind::Syscall);
  CHECK(sys.state.rip == 0x102);
  auto ex = with([](IRBuilder& ir) { ir.exit(GuestAddr(0x200)); });
  CHECK(ex.result.kind == TermKind::Exit);
  CHECK(ex.state.rip == 0x200);
  auto tr = with([](IRBuilder& ir) { ir.trap(TrapReason::Interrupt, GuestAddr(0x100), "int 0x80", 0x80); });
  CHECK(tr.result.kind == TermKind::Trap);
  CHECK(tr.result.trap == TrapReason::Interrupt);
  CHECK(tr.result.vector == 0x80);
  CHECK(tr.result.message == "int 0x80");
  CHECK(tr.state.rip == 0x100);
}

TEST_CASE("helpers: cpuid and rdtsc") {
  IRBlock blk;
  IRBuilder ir(blk);
  ir.call_helper(Helper::Cpuid);
  ir.set_reg(X86Reg::R12, ir.get_reg(X86Reg::Rcx, Type::I64));
  ir.set_reg(X86Reg::R8, ir.call_helper(Helper::Rdtsc));
  ir.set_reg(X86Reg::R9, ir.call_helper(Helper::Rdtscp));
  ir.set_reg(X86Reg::R10, ir.call_helper(Helper::Xgetbv, {ir.i64(0)}));
  ir.jump(GuestAddr(0));
  Run r = run_block(blk);
  // Leaf 0: a vendor string in ebx, edx, ecx.
  char vendor[13] = {};
  uint32_t parts[3] = {uint32_t(r.state.gpr[3]), uint32_t(r.state.gpr[2]), uint32_t(r.state.gpr[12])};
  std::memcpy(vendor, parts, 12);
  CHECK(std::string(vendor).size() == 12);
  CHECK(r.state.gpr[0] >= 1);
  CHECK(r.state.gpr[9] >= r.state.gpr[8]);  // the TSC does not go backwards
}

TEST_CASE("trap_if and exit_if leave the block only when their condition holds") {
  for (bool taken : {false, true}) {
    for (bool is_trap : {false, true}) {
      IRBlock blk;
      blk.start_pc = GuestAddr(0x1000);
      IRBuilder ir(blk);
      ir.insn_start(GuestAddr(0x1000));
      ir.set_reg(X86Reg::Rax, ir.i64(1));  // done before the leave, kept either way
      ir.insn_start(GuestAddr(0x1004));
      Value cond = ir.cmp(CmpPred::Ne, ir.get_reg(X86Reg::Rcx, Type::I64), ir.i64(0));
      if (is_trap) {
        ir.trap_if(cond, TrapReason::GeneralProtection);
      } else {
        ir.exit_if(cond, GuestAddr(0x1008));
      }
      ir.set_reg(X86Reg::Rbx, ir.i64(2));  // skipped when the block leaves
      ir.jump(GuestAddr(0x2000));
      X86State st;
      st.gpr[1] = taken ? 5 : 0;
      Run r = run_block(blk, st);
      INFO("taken " << taken << " trap " << is_trap);
      CHECK(r.state.gpr[0] == 1);
      CHECK(r.state.gpr[3] == (taken ? 0u : 2u));
      if (!taken) {
        CHECK(r.result.kind == TermKind::Jump);
        CHECK(r.state.rip == 0x2000);
      } else if (is_trap) {
        CHECK(r.result.kind == TermKind::Trap);
        CHECK(r.result.trap == TrapReason::GeneralProtection);
        CHECK(r.result.pc == GuestAddr(0x1004));
        CHECK(r.state.rip == 0x1004);
      } else {
        CHECK(r.result.kind == TermKind::Jump);
        CHECK(r.state.rip == 0x1008);
      }
    }
  }
}

TEST_CASE("every opcode is exercised by these tests") {
  // Keep last in this file: test cases run in file order.
  for (uint32_t i = 0; i < kNumOpcodes; ++i) {
    auto op = static_cast<Opcode>(i);
    INFO("opcode " << opcode_info(op).name << " has no interpreter test");
    CHECK(covered().count(op) == 1);
  }
}
