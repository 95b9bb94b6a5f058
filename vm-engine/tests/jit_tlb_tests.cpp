// Compiled softmmu code over a vm-mem AddressSpace through a real Tlb
// (TlbBridge): random blocks whose accesses straddle the end of a mapped
// window must match the interpreter run on an identical address space —
// state, memory, exit and fault address — at both tiers, and the Tlb must
// be refilled by the slow paths so later accesses hit inline.
#include <doctest/doctest.h>

#include <random>

#include "lowering_harness.hpp"
#include "random_blocks.hpp"
#include "vm/engine/jit.hpp"
#include "vm/engine/tlb_bridge.hpp"
#include "vm/ir/text.hpp"
#include "vm/mem/address_space.hpp"

using namespace vm;

namespace {

constexpr uint64_t kBase = 0x10000, kSize = 0x2000;

std::unique_ptr<mem::AddressSpace> make_space(const std::vector<uint8_t>& bytes) {
  mem::AddressSpaceConfig c;
  c.size = uint64_t{1} << 24;
  c.strategy = mem::MemoryStrategy::SoftMmu;
  auto s = mem::AddressSpace::create(c);
  REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().to_string()));
  REQUIRE((*s)->map(core::GuestAddr(kBase), kSize, core::kPermRW, mem::kMapFixed).has_value());
  REQUIRE((*s)->write(core::GuestAddr(kBase), bytes).has_value());
  return std::move(*s);
}

std::vector<uint8_t> contents(mem::AddressSpace& s) {
  std::vector<uint8_t> out(kSize);
  REQUIRE(s.read(core::GuestAddr(kBase), out).has_value());
  return out;
}

}  // namespace

TEST_CASE("JIT over a vm-mem Tlb matches the interpreter, faults included (200 blocks, both tiers)") {
  engine::JitOptions jo;
  jo.memory = translate::MemoryStrategy::SoftMmu;
  auto jit = engine::JITCompiler::create(jo);
  REQUIRE(jit.has_value());
  uint64_t seed = ir::testing::test_seed(0x71b);
  std::mt19937_64 rng(seed);
  int failures = 0, faults = 0;
  for (uint32_t i = 0; i < 200 * ir::testing::test_scale() && failures < 3; ++i) {
    ir::testing::RandomBlockOptions o;
    o.helpers = false;
    o.size = static_cast<uint32_t>(4 + rng() % 60);
    o.mem_base = kBase + kSize - 0x100;  // the last page, and past the mapping's end
    o.mem_size = 0x200;
    auto block = ir::testing::random_block(rng, o);
    core::X86State s0 = testing::random_state(rng);
    std::vector<uint8_t> bytes(kSize);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());

    auto si_space = make_space(bytes);
    core::X86State si = s0;
    ir::HelperTable none;
    ir::Interpreter interp(*si_space, none);
    auto want = interp.run(block, si);
    bool faulted = want.kind == ir::TermKind::Trap && want.trap == ir::TrapReason::MemoryFault;
    faults += faulted;

    for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
      auto sj_space = make_space(bytes);
      mem::Tlb tlb(sj_space->page_table());
      engine::TlbBridge bridge(tlb, none);
      core::X86State sj = s0;
      auto c = (*jit)->compile(block, tier);
      REQUIRE(c.has_value());
      auto got = engine::execute(*c, sj, bridge.context());
      (void)(*jit)->release(*c);
      std::string diff = testing::state_diff(si, sj) + testing::memory_diff(contents(*si_space), contents(*sj_space), kBase);
      if (got != testing::expected_exit(want)) diff += fmt::format("  exit: want {} got {}\n", int(want.kind), int(got.kind));
      if (faulted && want.fault_addr && bridge.context().fault_addr != want.fault_addr->value())
        diff += fmt::format("  fault addr: want {:#x} got {:#x}\n", want.fault_addr->value(), bridge.context().fault_addr);
      if (!diff.empty() && failures++ < 3)
        FAIL_CHECK(fmt::format("seed {} block {} tier {}:\n{}{}", seed, i, engine::tier_name(tier), diff, ir::print(block)));
    }
  }
  CHECK(failures == 0);
  CHECK(faults > 0);
}

TEST_CASE("after a slow-path refill the next access hits the Tlb inline") {
  auto block = ir::parse(R"(block 0x1000 len 1 {
  insn 0x1000
  %0:i64 = const 0x10008
  %1:i64 = load %0
  %2:i64 = const 0x1
  %3:i64 = add %1, %2
  store %0, %3
  exit 0x1001
})");
  REQUIRE(block.has_value());
  std::vector<uint8_t> bytes(kSize, 0);
  auto space = make_space(bytes);
  mem::Tlb tlb(space->page_table());
  tlb.set_stats_enabled(true);
  engine::TlbBridge bridge(tlb);
  engine::JitOptions jo;
  jo.memory = translate::MemoryStrategy::SoftMmu;
  auto jit = engine::JITCompiler::create(jo);
  REQUIRE(jit.has_value());
  auto c = (*jit)->compile(*block, engine::Tier::Optimized);
  REQUIRE(c.has_value());
  core::X86State s{};
  for (int i = 0; i < 10; ++i) engine::execute(*c, s, bridge.context());
  uint64_t v = 0;
  REQUIRE(space->read(core::GuestAddr(0x10008), std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 8)).has_value());
  CHECK(v == 10);
  // Only the first run's load and store miss (one read fill, one write fill);
  // the other 18 accesses hit inline and are not counted by the Tlb.
  CHECK(tlb.stats().misses <= 2);
}
