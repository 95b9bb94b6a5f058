// The JIT against the interpreter on code lifted by the x86 frontend:
// random integer x86 sequences (see benches/lifted_corpus.hpp; every other
// one with stack, string, locked, call and branch instructions), lifted once,
// run from identical states and memory by the interpreter and by compiled
// code at both tiers (softmmu over the same RegionMemory, so faults and #DE
// are compared too).
#include <doctest/doctest.h>

#include <random>

#include "../benches/lifted_corpus.hpp"
#include "lowering_harness.hpp"
#include "random_blocks.hpp"
#include "vm/engine/jit.hpp"
#include "vm/ir/text.hpp"

using namespace vm;

namespace {

std::string regions_diff(const core::RegionMemory& want, const core::RegionMemory& got) {
  std::string out;
  for (size_t i = 0; i < want.regions().size(); ++i)
    out += testing::memory_diff(want.regions()[i].bytes, got.regions()[i].bytes, want.regions()[i].base.value());
  return out;
}

}  // namespace

TEST_CASE("JIT matches the interpreter on 600 lifted x86 blocks (both tiers)") {
  engine::JitOptions jo;
  jo.memory = translate::MemoryStrategy::SoftMmu;
  auto jit = engine::JITCompiler::create(jo);
  REQUIRE(jit.has_value());
  uint64_t seed = ir::testing::test_seed(0x1f7ed);
  corpus::X86TextGen gen(seed);
  std::mt19937_64 rng(seed);
  int failures = 0;
  uint32_t traps = 0, insns = 0;
  std::array<uint32_t, 9> kinds{};
  for (uint32_t i = 0; i < 600 * ir::testing::test_scale() && failures < 3; ++i) {
    uint32_t n = static_cast<uint32_t>(1 + rng() % 40);
    auto code = translate::assemble_x86(gen.sequence(n, true, true, (i % 2) == 1));
    REQUIRE_MESSAGE(code.has_value(), (code ? "" : code.error().to_string()));
    auto mem0 = corpus::make_memory(*code, rng);
    REQUIRE(mem0.has_value());
    translate::BlockOptions bo;
    bo.max_insns = 64;
    auto block = translate::decode_block(*mem0, core::GuestAddr(corpus::kCodeBase), bo);
    REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
    insns += n;
    core::X86State s0 = testing::random_state(rng);
    s0.gpr[15] = corpus::kDataBase;
    s0.gpr[4] = corpus::kStackBase + corpus::kStackSize / 2;
    s0.df = 0;
    s0.rip = corpus::kCodeBase;

    core::RegionMemory mi = *mem0;
    core::X86State si = s0;
    ir::HelperTable none;
    ir::Interpreter interp(mi, none);
    auto want = interp.run(*block, si);
    if (want.kind == ir::TermKind::Trap && want.trap != ir::TrapReason::Halt) ++traps;
    ++kinds[static_cast<size_t>(block->term.kind)];
    for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
      core::RegionMemory mj = *mem0;
      core::X86State sj = s0;
      auto compiled = (*jit)->compile(*block, tier);
      REQUIRE_MESSAGE(compiled.has_value(), (compiled ? "" : compiled.error().to_string()));
      engine::GuestMemoryBridge bridge(mj, none);
      auto got = engine::execute(*compiled, sj, bridge.context());
      (void)(*jit)->release(*compiled);
      std::string diff = testing::state_diff(si, sj) + regions_diff(mi, mj);
      if (got != testing::expected_exit(want)) diff += fmt::format("  exit kind want {} got {}\n", int(want.kind), int(got.kind));
      if (!diff.empty() && failures++ < 3)
        FAIL_CHECK(fmt::format("seed {} case {} tier {}:\n{}{}", seed, i, engine::tier_name(tier), diff, ir::print(*block)));
    }
  }
  CHECK(failures == 0);
  MESSAGE("lifted corpus: " << insns << " x86 instructions generated, " << traps
                              << " blocks ending in a divide error or fault before the final hlt");
  MESSAGE(fmt::format("terminators: jump {} branch {} call {} trap {}", kinds[size_t(ir::TermKind::Jump)],
                      kinds[size_t(ir::TermKind::Branch)], kinds[size_t(ir::TermKind::Call)], kinds[size_t(ir::TermKind::Trap)]));
  CHECK(kinds[size_t(ir::TermKind::Branch)] > 0);
}

TEST_CASE("run_jit executes a lifted program block by block like run_interpreter") {
  auto code = translate::assemble_x86(
      "mov ecx, 20; xor eax, eax; 1: add rax, rcx; mov qword ptr [r15 + 8], rax; imul rdx, rax, 3; loop 1b; "
      "push rax; pop rbx; mov esi, 7; xor edx, edx; div rsi; hlt");
  REQUIRE_MESSAGE(code.has_value(), (code ? "" : code.error().to_string()));
  std::mt19937_64 rng(5);
  auto mem0 = corpus::make_memory(*code, rng);
  REQUIRE(mem0.has_value());
  core::X86State s0{};
  s0.rip = corpus::kCodeBase;
  s0.gpr[15] = corpus::kDataBase;
  s0.gpr[4] = corpus::kStackBase + corpus::kStackSize / 2;

  core::RegionMemory mi = *mem0;
  core::X86State si = s0;
  ir::HelperTable none;
  auto want = translate::run_interpreter(mi, si, core::GuestAddr(0), 1000, none);
  CHECK(want.reason == translate::RunResult::Reason::Trap);

  engine::BlockSource source = [](core::GuestMemory& m, core::GuestAddr pc) { return translate::decode_block(m, pc); };
  for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
    core::RegionMemory mj = *mem0;
    core::X86State sj = s0;
    auto got = engine::run_jit(mj, sj, core::GuestAddr(0), 1000, source, tier, none);
    CHECK(got.reason == engine::JitRunResult::Reason::Trap);
    CHECK(got.trap == ir::TrapReason::Halt);
    CHECK(got.blocks == want.blocks);
    CHECK(got.blocks_compiled < got.blocks);  // the loop body is compiled once
    CHECK(testing::state_diff(si, sj) == "");
    CHECK(regions_diff(mi, mj) == "");
    CHECK(sj.gpr[3] == 210);
  }
}
