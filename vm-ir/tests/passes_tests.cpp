// The passes do what they claim on small blocks, and preserve the
// interpreter's semantics on thousands of random blocks: same final state,
// same memory, same exit (including traps and faults).
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include "random_blocks.hpp"
#include "vm/ir/builder.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/passes.hpp"
#include "vm/ir/text.hpp"
#include "vm/ir/verifier.hpp"

using namespace vm::ir;
using vm::core::GuestAddr;
using vm::core::X86State;

namespace {

size_t count_ops(const IRBlock& b, Opcode opc) {
  size_t n = 0;
  for (const Op& op : b.ops) n += op.opcode == opc;
  return n;
}

}  // namespace

TEST_CASE("constant folding evaluates pure ops and branches") {
  IRBlock b;
  IRBuilder ir(b);
  Value x = ir.add(ir.i64(40), ir.i64(2));
  Value c = ir.cmp(CmpPred::Eq, x, ir.i64(42));
  ir.set_reg(X86Reg::Rax, ir.mul(x, ir.i64(2)));
  ir.branch(c, GuestAddr(0x10), GuestAddr(0x20));
  PassStats s = run_standard_passes(b);
  CHECK(s.folded >= 3);
  CHECK(verify(b).has_value());
  CHECK(b.term.kind == TermKind::Jump);
  CHECK(b.term.target == GuestAddr(0x10));
  CHECK(count_ops(b, Opcode::Add) == 0);
  CHECK(count_ops(b, Opcode::Mul) == 0);
  // The surviving constant feeding set_reg is 84.
  bool found = false;
  for (const Op& op : b.ops)
    if (op.opcode == Opcode::Const && op.imm == 84) found = true;
  CHECK(found);
}

TEST_CASE("constant folding leaves trapping division and dynamic rounding alone") {
  IRBlock b;
  IRBuilder ir(b);
  ir.set_reg(X86Reg::Rax, ir.binary(Opcode::DivU, ir.i64(1), ir.i64(0)));
  ir.set_reg(X86Reg::Xmm0, ir.farith(Opcode::FDiv, ir.f64(1.0), ir.f64(3.0), Rounding::Dyn));
  ir.set_reg(X86Reg::Xmm1, ir.farith(Opcode::FDiv, ir.f64(1.0), ir.f64(3.0), Rounding::Rne));
  ir.jump(GuestAddr(0));
  fold_constants(b);
  CHECK(count_ops(b, Opcode::DivU) == 1);
  CHECK(count_ops(b, Opcode::FDiv) == 1);  // only the rne one folded
}

TEST_CASE("register forwarding and dead code") {
  IRBlock b;
  IRBuilder ir(b);
  Value v = ir.add(ir.get_reg(X86Reg::Rbx, Type::I64), ir.i64(1));
  ir.set_reg(X86Reg::Rax, v);
  Value again = ir.get_reg(X86Reg::Rax, Type::I64);  // forwarded from v
  Value low = ir.get_reg(X86Reg::Rax, Type::I32);     // different width: stays
  ir.set_reg(X86Reg::Rcx, again);
  ir.set_reg(X86Reg::Rdx, ir.zext(low, Type::I64));
  ir.get_reg(X86Reg::R8, Type::I64);                  // unused: removed
  ir.jump(GuestAddr(0));
  PassStats s = run_standard_passes(b);
  CHECK(s.forwarded == 1);
  CHECK(s.dead_ops >= 2);
  CHECK(count_ops(b, Opcode::GetReg) == 2);  // rbx and the 32-bit rax read
  CHECK(verify(b).has_value());
}

TEST_CASE("dead flag writes: overwritten flags are not computed") {
  auto make = [](bool load_between) {
    IRBlock b;
    IRBuilder ir(b);
    ir.insn_start(GuestAddr(0x10));
    Value a = ir.get_reg(X86Reg::Rax, Type::I64);
    ir.set_reg(X86Reg::Zf, ir.cmp(CmpPred::Eq, a, ir.i64(0)));
    ir.set_reg(X86Reg::Cf, ir.add_carry(a, a, ir.i1(false)));
    ir.insn_start(GuestAddr(0x14));
    if (load_between) ir.set_reg(X86Reg::Rbx, ir.load(Type::I64, a));
    ir.insn_start(GuestAddr(0x18));
    ir.set_reg(X86Reg::Zf, ir.i1(false));
    ir.set_reg(X86Reg::Cf, ir.i1(true));
    ir.jump(GuestAddr(0x20));
    return b;
  };
  IRBlock plain = make(false);
  PassStats s = run_standard_passes(plain);
  CHECK(s.dead_flag_writes == 2);
  CHECK(count_ops(plain, Opcode::AddCarry) == 0);
  CHECK(count_ops(plain, Opcode::Cmp) == 0);

  // A load that may fault in between keeps the flags exact for the fault...
  IRBlock precise = make(true);
  PassStats p = run_standard_passes(precise);
  CHECK(p.dead_flag_writes == 0);
  CHECK(count_ops(precise, Opcode::AddCarry) == 1);
  // ...unless the caller does not need precise state at faults.
  IRBlock relaxed = make(true);
  PassOptions opts;
  opts.precise_faults = false;
  PassStats r = run_standard_passes(relaxed, opts);
  CHECK(r.dead_flag_writes == 2);
}

TEST_CASE("a partially overwritten register write stays") {
  IRBlock b;
  IRBuilder ir(b);
  ir.set_reg(X86Reg::Rax, ir.i64(0x1122334455667788));
  ir.set_reg(X86Reg::Rax, ir.i32(0));  // bytes 4..7 of the first write survive
  ir.jump(GuestAddr(0));
  PassStats s = run_standard_passes(b);
  CHECK(s.dead_reg_writes == 0);
  IRBlock c;
  IRBuilder ir2(c);
  ir2.set_reg(X86Reg::Rax, ir2.i32(5));
  ir2.set_reg(X86Reg::Rax, ir2.i64(0));  // covers all of the first
  ir2.jump(GuestAddr(0));
  CHECK(run_standard_passes(c).dead_reg_writes == 1);
}

TEST_CASE("flag conditions of a subtraction become one compare, for every pair of bytes") {
  // The formulas the x86 frontend reads jl / jle / jbe from after `cmp a, b`
  // (SF xor OF, ZF or (SF xor OF), CF or ZF), in both operand orders, with
  // a decoy: the same formulas over a subtraction of other operands must
  // stay as they are.
  auto make = [](bool swapped) {
    IRBlock b;
    IRBuilder ir(b);
    Value a = ir.get_reg(X86Reg::Rax, Type::I8), c = ir.get_reg(X86Reg::Rbx, Type::I8);
    Value d = ir.get_reg(X86Reg::Rcx, Type::I8);
    Value no = ir.i1(false);
    auto order = [&](Value x, Value y, auto f) { return swapped ? f(y, x) : f(x, y); };
    Value r = ir.sub(a, c);
    Value sf = ir.cmp(CmpPred::Slt, r, ir.i8(0)), zf = ir.cmp(CmpPred::Eq, r, ir.i8(0));
    Value of = ir.sub_overflow(a, c, no), cf = ir.sub_borrow(a, c, no);
    Value lt = order(sf, of, [&](Value x, Value y) { return ir.xor_(x, y); });
    Value le = order(zf, lt, [&](Value x, Value y) { return ir.or_(x, y); });
    Value be = order(cf, zf, [&](Value x, Value y) { return ir.or_(x, y); });
    Value decoy = ir.xor_(ir.cmp(CmpPred::Slt, ir.sub(a, d), ir.i8(0)), of);  // SF of a - d, OF of a - c
    ir.set_reg(X86Reg::Cf, lt);
    ir.set_reg(X86Reg::Zf, le);
    ir.set_reg(X86Reg::Sf, be);
    ir.set_reg(X86Reg::Of, decoy);
    ir.jump(GuestAddr(0x10));
    return b;
  };
  for (bool swapped : {false, true}) {
    CAPTURE(swapped);
    IRBlock original = make(swapped);
    IRBlock fused = original;
    CHECK(fuse_flag_conditions(fused) == 3);
    eliminate_dead_code(fused);
    REQUIRE(verify(fused).has_value());
    CHECK(count_ops(fused, Opcode::SubBorrow) == 0);
    CHECK(count_ops(fused, Opcode::SubOverflow) == 1);  // the decoy's
    CHECK(count_ops(fused, Opcode::Xor) == 1);
    CHECK(count_ops(fused, Opcode::Or) == 0);
    vm::core::RegionMemory mem;
    uint32_t wrong = 0;
    for (uint32_t x = 0; x < 256; ++x)
      for (uint32_t y = 0; y < 256; ++y) {
        X86State s1;
        s1.gpr[0] = 0x1234500 | x;
        s1.gpr[3] = 0xabcd00 | y;
        s1.gpr[1] = (x * 7 + y) & 0xff;
        X86State s2 = s1;
        Interpreter(mem).run(original, s1);
        Interpreter(mem).run(fused, s2);
        // Signed and unsigned order of the bytes themselves, the oracle
        // for the flags the original formulas compute.
        auto sx = static_cast<int8_t>(x), sy = static_cast<int8_t>(y);
        bool ok = s1 == s2 && s1.cf == (sx < sy) && s1.zf == (sx <= sy) && s1.sf == (x <= y);
        wrong += !ok;
      }
    CHECK(wrong == 0);
  }
}

TEST_CASE("passes preserve semantics on random blocks (property)") {
  uint64_t seed = testing::test_seed(20261128);
  std::mt19937_64 rng(seed);
  uint32_t iterations = 1500 * testing::test_scale();
  uint32_t changed = 0, traps = 0;
  for (uint32_t i = 0; i < iterations; ++i) {
    testing::RandomBlockOptions opts;
    opts.size = 8 + static_cast<uint32_t>(rng() % 40);
    opts.helpers = false;  // rdtsc is not deterministic
    opts.trap_terminators = (rng() % 4) == 0;
    opts.conditional_exits = i % 2 == 0;
    IRBlock original = testing::random_block(rng, opts);
    REQUIRE(verify(original).has_value());
    IRBlock optimized = original;
    PassOptions popts;
    run_standard_passes(optimized, popts);
    auto v = verify(optimized);
    INFO("seed " << seed << " iteration " << i << "\n" << print(original) << "\n-- optimized --\n" << print(optimized));
    REQUIRE_MESSAGE(v.has_value(), (v ? std::string() : v.error().to_string()));
    if (optimized.ops.size() != original.ops.size()) ++changed;

    // Random state and memory contents, identical for both runs.
    X86State init;
    for (auto& g : init.gpr) g = rng() % 3 == 0 ? rng() % 4 : rng();
    for (auto& x : init.xmm) x = {rng(), rng()};
    vm::core::set_rflags(init, rng());
    init.mxcsr = vm::core::kDefaultMxcsr | static_cast<uint32_t>((rng() % 4) << 13);
    std::vector<uint8_t> bytes(opts.mem_size);
    for (auto& byte : bytes) byte = static_cast<uint8_t>(rng());
    vm::core::RegionMemory m1, m2;
    REQUIRE(m1.add_region(GuestAddr(opts.mem_base), bytes, vm::core::kPermRW));
    REQUIRE(m2.add_region(GuestAddr(opts.mem_base), bytes, vm::core::kPermRW));
    X86State s1 = init, s2 = init;
    ExecResult r1 = Interpreter(m1).run(original, s1);
    ExecResult r2 = Interpreter(m2).run(optimized, s2);
    traps += r1.kind == TermKind::Trap;
    // Folding may turn a branch on a constant into a jump: both are direct exits.
    auto direct = [](TermKind k) { return k == TermKind::Branch ? TermKind::Jump : k; };
    CHECK(direct(r1.kind) == direct(r2.kind));
    CHECK(r1.trap == r2.trap);
    CHECK(r1.pc == r2.pc);
    CHECK(r1.fault_addr == r2.fault_addr);
    CHECK(s1 == s2);
    CHECK(m1.regions()[0].bytes == m2.regions()[0].bytes);
    if (s1 != s2) break;  // one full report is enough
  }
  MESSAGE("passes shrank " << changed << " of " << iterations << " blocks; " << traps << " ended in a trap");
  CHECK(changed > iterations / 2);
}
