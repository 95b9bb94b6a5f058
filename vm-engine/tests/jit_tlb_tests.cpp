// Compiled softmmu code over a vm-mem AddressSpace through a real Tlb
// (TlbBridge): random blocks whose accesses straddle the end of a mapped
// window must match the interpreter run on an identical address space —
// state, memory, exit and fault address — at both tiers, and the Tlb must
// be refilled by the slow paths so later accesses hit inline.
#include <doctest/doctest.h>

#include <array>
#include <cstring>
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

namespace {

// A hand-made TLB for the next test: one page of guest data seen through
// two tables, `old_table` (tag 1, host bytes `old_page`) and `new_table`
// (tag 2, host bytes `new_page`). The slow path switches the TlbFast from
// the first to the second, as a flush or resize by vm-mem's Tlb would.
struct SwitchingTlb {
  static constexpr uint64_t kPage = 0x40000;
  static constexpr uint64_t kEntries = 16;
  core::TlbFast fast;
  std::array<core::TlbEntry, kEntries> old_table{}, new_table{};
  std::array<uint8_t, core::kTlbPageSize> old_page{}, new_page{};
  uint32_t calls = 0;  // of the slow path or helper that switched the tables

  SwitchingTlb() {
    old_page.fill(0x11);
    new_page.fill(0x22);
    const uint64_t slot = (kPage >> core::kTlbPageBits) & (kEntries - 1);
    const uint64_t old_tag = uint64_t{1} << core::kTlbTagShift, new_tag = uint64_t{2} << core::kTlbTagShift;
    old_table[slot].addr_read = kPage | old_tag;
    old_table[slot].addend = reinterpret_cast<uint64_t>(old_page.data()) - kPage;
    new_table[slot].addr_read = kPage | new_tag;
    new_table[slot].addend = reinterpret_cast<uint64_t>(new_page.data()) - kPage;
    fast.index_mask = (kEntries - 1) << core::kTlbEntrySizeLog2;
    fast.table = old_table.data();
    fast.tag = old_tag;
  }
  void switch_tables() {
    ++calls;
    fast.table = new_table.data();
    fast.tag = uint64_t{2} << core::kTlbTagShift;
  }
  static uint32_t load_slow(translate::MemoryContext* mem, uint64_t, uint64_t size, void* out) {
    std::memset(out, 0, size);
    static_cast<SwitchingTlb*>(mem->user)->switch_tables();
    return 0;
  }
  // A helper sees only the state: the test's TLB goes through this pointer.
  static inline SwitchingTlb* current = nullptr;
  static uint64_t helper(core::X86State*, uint64_t, uint64_t, uint64_t) {
    current->switch_tables();
    return 0;
  }
};

}  // namespace

TEST_CASE("an access after a slow path or helper uses the TLB's table and tag as the call left them") {
  // The first op is a load that misses (nothing maps 0x90000), or a helper
  // call; either replaces the table and the tag. The second load's page is
  // in both tables: read through the table and tag of the unit's entry, it
  // would hit the old entry and load 0x11 bytes.
  const char* kText = R"(block 0x1000 len 1 {
  insn 0x1000
  %0:i64 = const 0x90000
  %1:i64 = FIRST
  %2:i64 = const 0x40010
  %3:i64 = load %2
  %4:i64 = add %1, %3
  set_reg rax, %4
  exit 0x1001
})";
  engine::JitOptions jo;
  jo.memory = translate::MemoryStrategy::SoftMmu;
  auto jit = engine::JITCompiler::create(jo);
  REQUIRE(jit.has_value());
  for (std::string first : {"load %0", "call_helper rdtsc"}) {
    std::string text = kText;
    text.replace(text.find("FIRST"), 5, first);
    auto block = ir::parse(text);
    REQUIRE(block.has_value());
    for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
      CAPTURE(first);
      CAPTURE(engine::tier_name(tier));
      SwitchingTlb tlb;
      SwitchingTlb::current = &tlb;
      ir::HelperTable helpers;
      helpers.fns[static_cast<size_t>(ir::Helper::Rdtsc)] = &SwitchingTlb::helper;
      translate::MemoryContext mem;
      mem.tlb = &tlb.fast;
      mem.load_slow = &SwitchingTlb::load_slow;
      mem.helpers = helpers.fns.data();
      mem.user = &tlb;
      auto c = (*jit)->compile(*block, tier);
      REQUIRE(c.has_value());
      core::X86State s{};
      engine::execute(*c, s, mem);
      (void)(*jit)->release(*c);
      CHECK(tlb.calls == 1);
      CHECK(s.gpr[0] == 0x2222222222222222ULL);
    }
  }
}

TEST_CASE("softmmu Optimized code branches once on an access group's TLB check") {
  // Four stores to the stack slots below rsp with arithmetic between them
  // (a push sequence): one group, one TLB check. Each grouped access
  // branches on the check; jump threading takes the hit path (and the miss
  // path) straight through the following accesses, so the optimised code
  // branches on it once.
  auto block = ir::parse(R"(block 0x1000 len 4 {
  insn 0x1000
  %0:i64 = get_reg rsp
  %1:i64 = const 0x8
  %2:i64 = sub %0, %1
  %3:i64 = get_reg rax
  store %2, %3
  insn 0x1001
  %4:i64 = sub %2, %1
  %5:i64 = add %3, %3
  store %4, %5
  insn 0x1002
  %6:i64 = sub %4, %1
  %7:i64 = mul %5, %3
  store %6, %7
  insn 0x1003
  %8:i64 = sub %6, %1
  %9:i64 = xor %7, %5
  store %8, %9
  set_reg rsp, %8
  exit 0x1004
})");
  REQUIRE(block.has_value());
  engine::JitOptions jo;
  jo.memory = translate::MemoryStrategy::SoftMmu;
  auto jit = engine::JITCompiler::create(jo);
  REQUIRE(jit.has_value());
  auto text = (*jit)->dump_region(std::span<const ir::IRBlock>(&*block, 1), engine::Tier::Optimized,
                                  engine::Stage::Optimized);
  REQUIRE(text.has_value());
  size_t branches = 0;
  for (size_t at = text->find("br i1 %tlb_hit,"); at != std::string::npos; at = text->find("br i1 %tlb_hit,", at + 1))
    ++branches;
  CHECK(branches == 1);

  // The code still stores the four values, through the slow paths on the
  // first run (the Tlb is empty) and through the group's hit on the second.
  std::vector<uint8_t> bytes(kSize, 0);
  auto space = make_space(bytes);
  mem::Tlb tlb(space->page_table());
  engine::TlbBridge bridge(tlb);
  auto c = (*jit)->compile(*block, engine::Tier::Optimized);
  REQUIRE(c.has_value());
  for (uint64_t rax : {uint64_t{3}, uint64_t{0x1234567}}) {
    core::X86State s{};
    s.gpr[4] = kBase + 0x100;  // rsp
    s.gpr[0] = rax;
    engine::execute(*c, s, bridge.context());
    CHECK(s.gpr[4] == kBase + 0x100 - 32);
    std::array<uint64_t, 4> got{};
    REQUIRE(space->read(core::GuestAddr(kBase + 0x100 - 32), std::span<uint8_t>(reinterpret_cast<uint8_t*>(got.data()), 32))
                .has_value());
    const uint64_t twice = rax + rax, product = twice * rax;
    CHECK(got[3] == rax);
    CHECK(got[2] == twice);
    CHECK(got[1] == product);
    CHECK(got[0] == (product ^ twice));
  }
  (void)(*jit)->release(*c);
}
