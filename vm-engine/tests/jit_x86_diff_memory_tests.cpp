// The x86 frontend's Unicorn differential corpus through the JIT's inline
// memory paths. jit_x86_diff_tests.cpp runs the corpus through run_jit over
// a GuestMemoryBridge, whose TLB never hits: every guest access there is a
// slow-path call, and the lowering's inline code (direct addressing, the
// TLB hit check, grouped accesses, inline fill and copy) never runs. Here
// the first sequences of the same corpus (same generator, seeds and order)
// run through run_jit over a vm-mem AddressSpace laid out as the
// interpreter's memory (code at kCodeBase padded with int3, data, stack;
// same bytes and permissions, everything else unmapped), the way the
// execution engine's code reaches memory under `vm run`, at both tiers:
//  - direct: a Direct space (4 GiB reservation), compiled code at
//    guest_base + (address & mask), restartable, the engine's direct guard,
//    Tier::Optimized through GS;
//  - tlb: a SoftMmu space and a Tlb of 1024 entries filled for every page
//    of the three regions before the run (no two of them share a slot), so
//    accesses hit inline from the first; only faults and accesses crossing
//    a page take the slow path (their count is reported).
// Each run must match run_interpreter over the RegionMemory of the other
// test exactly as there: exit reason, pc, fault address, trap, message,
// block count, every register, every byte of the three regions.
//
// Faults. Restartable code does not report a memory fault itself: a direct
// access to an unmapped page raises a host fault that run_jit catches (the
// engine's handler), a softmmu one leaves through its slow path, and in
// both the state holds the last synced instruction boundary, from which the
// interpreter runs the block, makes the access and reports the fault. So
// the fault's pc, address and message come from the interpreter, and what
// is compared is that compiled code stopped at the right boundary with the
// right registers and had stored nothing after it. So that this repair
// cannot hide a spurious fault (compiled code touching a page the guest
// never touches), a run must restart exactly once if the interpreter's run
// ends in a fault and never otherwise (the corpus has no instruction-fetch
// faults, which need no restart). Each fault of the corpus itself (8 in
// the default run, 32 in the whole integer corpus) is the first access of
// a `rep` string instruction's block, one block per iteration, where the
// state is the block's entry state. So every sequence that changed the
// data region runs again, interpreter and JIT, with that region read-only
// (about a third of the integer sequences, 2,076 in the default run): its
// first store there faults in the middle of a block, after loads and
// register updates, which tests the sync points of restartable code
// (docs/jit.md, "Restartable state"). Without the sync points that stores
// and fills make due, 4 sequences of the default run fail here (a `pop`
// to the data region after a `push` reusing the slot a `pop` read: the
// first sequence is 1084), which the runs with the data writable missed
// even over the whole corpus.
//
// The rule direct access follows instead of the interpreter's: an address
// at or above the space's 4 GiB is reached as address & mask. Where that
// page is unmapped too, the host fault and the restart report the
// interpreter's fault; where it is mapped, the run differs and the test
// fails (no sequence is skipped). The corpus never forms such an address:
// every memory operand is r15-, fs-, rsp-, rbp-, rbx- or rsi/rdi-relative,
// within a few KiB of the data and stack regions.
//
// Knobs: VM_JIT_MEM_DIFF_ITERATIONS (integer sequences, default 6000),
// VM_JIT_MEM_SSE_DIFF_ITERATIONS (default 1500), and those of
// jit_x86_diff_tests.cpp: VM_JIT_DIFF_OPTIMIZED_EVERY (default 16),
// VM_X86_DIFF_SEED (default 1). The defaults take about 17 s in a Debug
// (-O1) build before the read-only runs: two JIT runs per sequence at
// Tier::Fast, and every 16th sequence two more at Tier::Optimized. The
// whole corpus (20000 and 5000) takes about 56 s.
#include <doctest/doctest.h>

#include <memory>
#include <optional>

#include "jit_x86_diff.hpp"
#include "lowering_harness.hpp"
#include "vm/mem/address_space.hpp"
#include "vm/mem/tlb.hpp"

namespace vm::translate::test {
namespace {

enum class Variant : uint8_t { Direct, Tlb };
constexpr std::string_view variant_name(Variant v) { return v == Variant::Direct ? "direct" : "tlb"; }

struct MemoryTally : DiffTally {
  uint64_t restarts = 0;     // faults of compiled code the interpreter finished
  uint64_t tlb_runs = 0;     // runs of the tlb variant ...
  uint64_t tlb_misses = 0;   // ... and their slow-path entries
  uint64_t read_only_runs = 0;  // sequences run again with the data region read-only
};

// An AddressSpace holding exactly `m`'s regions: same bases, bytes, permissions.
std::unique_ptr<mem::AddressSpace> space_like(const core::RegionMemory& m, mem::MemoryStrategy strategy) {
  mem::AddressSpaceConfig c;
  c.size = uint64_t{1} << 32;
  c.strategy = strategy;
  auto space = mem::AddressSpace::create(c);
  REQUIRE_MESSAGE(space.has_value(), (space ? "" : space.error().to_string()));
  for (const auto& r : m.regions()) {
    REQUIRE((*space)->map(r.base, r.bytes.size(), core::kPermRW, mem::kMapFixed).has_value());
    REQUIRE((*space)->write(r.base, r.bytes).has_value());
    REQUIRE((*space)->protect(r.base, r.bytes.size(), r.perms).has_value());
  }
  return std::move(*space);
}

// 1024 entries: the code (pages 0x1000-0x1003), data (0x200-0x201) and stack
// (0x7ff00-0x7ff0f) pages fall in distinct slots, so filling them in any
// order evicts none.
mem::TlbConfig filled_tlb_config() {
  mem::TlbConfig c;
  c.initial_bits = 10;
  c.stats = true;
  return c;
}

void fill_tlb(mem::Tlb& tlb, const core::RegionMemory& m) {
  for (const auto& r : m.regions())
    for (uint64_t off = 0; off < r.bytes.size(); off += 4096)
      REQUIRE(tlb.translate(r.base + off, 1, core::Access::Read).has_value());
  tlb.reset_stats();
}

// One JIT run over an AddressSpace; returns the differences from the interpreter's run.
std::string run_variant(const DiffSequence& seq, Variant variant, engine::Tier tier, const core::RegionMemory& mi,
                        const core::X86State& si, const RunResult& want, MemoryTally& tally, uint8_t data_perms) {
  const core::GuestAddr stop(kCodeBase + seq.code.size());
  const core::RegionMemory initial = machine_memory(seq.code, seq.init, data_perms);
  const bool direct = variant == Variant::Direct;
  auto space = space_like(initial, direct ? mem::MemoryStrategy::Direct : mem::MemoryStrategy::SoftMmu);
  std::optional<mem::Tlb> tlb;
  engine::SpaceAccess how;
  how.memory = direct ? translate::MemoryStrategy::Direct : translate::MemoryStrategy::SoftMmu;
  if (!direct) {
    tlb.emplace(space->page_table(), filled_tlb_config());
    fill_tlb(*tlb, initial);
    how.tlb = &*tlb;
  }
  core::X86State sj = seq.init.regs;
  engine::JitRunResult got = engine::run_jit(*space, how, sj, stop, 100000, diff_block_source(stop), tier);
  std::string d = exit_diff(want, got) + vm::testing::state_diff(si, sj);
  const uint64_t want_restarts = want.reason == RunResult::Reason::Fault ? 1 : 0;
  if (got.restarts != want_restarts)
    d += fmt::format("  {} restarts of compiled code after a memory fault, expected {}\n", got.restarts, want_restarts);
  for (const auto& r : mi.regions()) {
    std::vector<uint8_t> bytes(r.bytes.size());
    REQUIRE(space->read(r.base, bytes).has_value());
    d += vm::testing::memory_diff(r.bytes, bytes, r.base.value());
  }
  tally.restarts += got.restarts;
  if (tlb && data_perms == core::kPermRW) {  // read-only data takes the slow path by design
    ++tally.tlb_runs;
    tally.tlb_misses += tlb->stats().misses;
  }
  return d.empty() ? d
                   : fmt::format(" {}{} tier {}:\n{}", variant_name(variant),
                                 data_perms == core::kPermRW ? "" : ", data read-only", engine::tier_name(tier), d);
}

std::string run_one(const DiffSequence& seq, bool with_optimized, MemoryTally& tally) {
  const core::GuestAddr stop(kCodeBase + seq.code.size());
  core::RegionMemory mi = machine_memory(seq.code, seq.init);
  core::X86State si = seq.init.regs;
  RunResult want = interpreter_reference(mi, si, stop, tally);
  std::string diff;
  auto run_all = [&](const core::RegionMemory& ref, const core::X86State& ref_state, const RunResult& ref_result,
                     uint8_t data_perms) {
    for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
      if (tier == engine::Tier::Optimized && !with_optimized) continue;
      for (Variant variant : {Variant::Direct, Variant::Tlb}) {
        ++(tier == engine::Tier::Fast ? tally.fast_runs : tally.optimized_runs);
        diff += run_variant(seq, variant, tier, ref, ref_state, ref_result, tally, data_perms);
      }
    }
  };
  run_all(mi, si, want, core::kPermRW);
  // A sequence that changed the data region runs again with that region
  // read-only: its first store there faults, in the middle of a block after
  // loads and register updates, so compiled code must leave the state of
  // its last sync point (restartable state) and have stored nothing since.
  if (mi.find(core::GuestAddr(kDataBase))->bytes != seq.init.data) {
    ++tally.read_only_runs;
    core::RegionMemory ro = machine_memory(seq.code, seq.init, core::kPermRead);
    core::X86State sro = seq.init.regs;
    RunResult want_ro = interpreter_reference(ro, sro, stop, tally);
    run_all(ro, sro, want_ro, core::kPermRead);
  }
  return diff;
}

void run_corpus(DiffCorpus corpus, const char* iterations_knob, uint64_t default_iterations) {
  const uint64_t iterations = diff_knob(iterations_knob, default_iterations);
  MemoryTally tally;
  run_diff_sequences(corpus, iterations, tally,
                     [&](const DiffSequence& seq, bool with_optimized) { return run_one(seq, with_optimized, tally); });
  MESSAGE(fmt::format("{} {} sequences, direct and tlb: {} Tier::Fast runs, {} Tier::Optimized runs, {} blocks, {} "
                      "ending in a trap or fault ({} faults, {} restarts); {} sequences again with the data region "
                      "read-only; tlb runs took {} slow paths in {} runs; {} mismatches",
                      iterations, corpus == DiffCorpus::Sse ? "SSE" : "integer", tally.fast_runs,
                      tally.optimized_runs, tally.blocks, tally.non_stop, tally.faults, tally.restarts,
                      tally.read_only_runs, tally.tlb_misses, tally.tlb_runs, tally.failures));
  CHECK(tally.failures == 0);
  // Faults in the middle of blocks: most integer sequences store to the data region.
  if (iterations >= 100) CHECK(tally.read_only_runs > 0);
  // The restart path is part of what is compared (the first fault is sequence 667).
  if (corpus == DiffCorpus::Integer && iterations >= 1000) CHECK(tally.faults > 0);
  // The filled Tlb leaves the slow path to faults and accesses crossing a
  // page (8 in the default integer runs): an empty one would take it in
  // nearly every run, and the inline hit path would go untested.
  CHECK(tally.tlb_misses * 50 <= tally.tlb_runs);
}

}  // namespace

TEST_CASE("JIT with direct access and a filled TLB matches the interpreter on the integer differential corpus") {
  run_corpus(DiffCorpus::Integer, "VM_JIT_MEM_DIFF_ITERATIONS", 6000);
}

TEST_CASE("JIT with direct access and a filled TLB matches the interpreter on the SSE differential corpus") {
  run_corpus(DiffCorpus::Sse, "VM_JIT_MEM_SSE_DIFF_ITERATIONS", 1500);
}


TEST_CASE("a locked cmpxchg whose new value is its comparand faults on a read-only page at Tier::Optimized") {
  // Sequence 1607 of the integer corpus, which the whole corpus with every
  // sequence at both tiers found (the default run compiles it at Fast only):
  // `lock cmpxchg dword ptr [r15 + 0xf5], eax` with the data region
  // read-only. The access is unaligned, so compiled code loads, selects and
  // stores; with eax as both comparand and new value the select folds to
  // the loaded value, and LLVM dropped the store of it, so direct code ran
  // on past a write x86 makes (and faults on) whatever the compare says.
  MemoryTally tally;
  bool seen = false;
  for_each_diff_sequence(DiffCorpus::Integer, 1607, 1, [&](const DiffSequence& seq) {
    if (seq.run != 1607) return;
    seen = true;
    REQUIRE(seq.text.find("lock cmpxchg dword ptr [r15 + 0xf5], eax") != std::string::npos);
    std::string diff = run_one(seq, true, tally);
    if (!diff.empty()) report_failure(tally, seq, 1, diff);
  });
  REQUIRE(seen);
  CHECK(tally.read_only_runs == 1);
  CHECK(tally.failures == 0);
}

}  // namespace vm::translate::test
