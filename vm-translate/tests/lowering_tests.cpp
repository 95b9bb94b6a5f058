// The lowering on its own: every random block lowers to LLVM IR that the
// LLVM verifier accepts, for every target and memory strategy, and the
// generated function has the documented signature. (Execution is checked
// against the interpreter by vm-engine's JIT tests and the cross tests.)
#include <doctest/doctest.h>

#include <random>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "random_blocks.hpp"
#include "vm/ir/text.hpp"
#include "vm/translate/llvm_lowering.hpp"

using namespace vm;

TEST_CASE("exit codes round-trip") {
  auto e = translate::decode_exit(translate::encode_exit(ir::TermKind::Trap, ir::TrapReason::Interrupt, 0x80));
  CHECK(e.kind == ir::TermKind::Trap);
  CHECK(e.trap == ir::TrapReason::Interrupt);
  CHECK(e.vector == 0x80);
  CHECK(translate::decode_exit(translate::encode_exit(ir::TermKind::Jump)).kind == ir::TermKind::Jump);
}

TEST_CASE("random blocks lower to valid LLVM IR for every target and strategy") {
  std::mt19937_64 rng(ir::testing::test_seed(0x10e7));
  llvm::LLVMContext ctx;
  for (uint32_t i = 0; i < 300 * ir::testing::test_scale(); ++i) {
    ir::testing::RandomBlockOptions bo;
    bo.conditional_exits = (i % 2) == 1;
    auto block = ir::testing::random_block(rng, bo);
    for (auto target : {translate::LoweringTarget::X86_64, translate::LoweringTarget::AArch64, translate::LoweringTarget::RiscV64}) {
      for (auto mem : {translate::MemoryStrategy::Direct, translate::MemoryStrategy::SoftMmu}) {
        llvm::Module module("t", ctx);
        translate::LoweringOptions o;
        o.target = target;
        o.memory = mem;
        o.chain_exits = (i % 2) == 0;
        auto r = translate::lower_block(block, module, o);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().to_string() + "\n" + ir::print(block)));
        CHECK(r->ir_instructions > 0);
      }
    }
  }
}

TEST_CASE("text dump names the function and takes state and memory context") {
  auto block = ir::parse("block 0x1000 len 1 {\n  insn 0x1000\n  jump 0x1001\n}");
  REQUIRE(block.has_value());
  auto text = translate::lower_to_llvm_text(*block);
  REQUIRE(text.has_value());
  CHECK(text->find("define i64 @vm_block(ptr noalias nocapture %state, ptr nocapture %mem)") != std::string::npos);
}

TEST_CASE("unverifiable blocks are rejected with an error, not lowered") {
  ir::IRBlock bad;  // no terminator
  bad.start_pc = core::GuestAddr(0x1000);
  auto r = translate::lower_to_llvm_text(bad);
  CHECK_FALSE(r.has_value());
}
