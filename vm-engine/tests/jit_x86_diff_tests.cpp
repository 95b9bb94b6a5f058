// The JIT against the interpreter on the x86 frontend's Unicorn differential
// corpus: the very sequences and initial states of vm-translate's
// x86_diff_tests.cpp (its generator, same seeds, same order of draws), each
// run from identical memory by run_interpreter and by run_jit — the loop of
// `vm exec --engine jit` — at both tiers. Exit reason, pc, fault address,
// trap and message, block count, the whole register state and every byte of
// memory must be equal. Unicorn already vouches for the interpreter on these
// sequences; here the JIT must agree with the interpreter exactly (undefined
// flags included, since both implement the same vm-ir).
//
// Knobs: VM_JIT_DIFF_ITERATIONS (integer sequences, default 20000, as the
// frontend's test), VM_JIT_SSE_DIFF_ITERATIONS (default 5000),
// VM_JIT_DIFF_OPTIMIZED_EVERY (Tier::Optimized runs every Nth sequence,
// default 16; 1 = all), VM_X86_DIFF_SEED (default 1, shared with the frontend).
// The defaults take about 50 s of CPU in a Debug (-O1) build: every sequence
// at Tier::Fast (~1.5 ms each), and 1 in 16 also at Tier::Optimized (~4.5 ms).
// Here compiled code reaches memory through the bridge's slow paths only;
// jit_x86_diff_memory_tests.cpp runs the same corpus with the inline paths
// (direct access, a filled software TLB).
#include <doctest/doctest.h>

#include "jit_x86_diff.hpp"
#include "lowering_harness.hpp"

namespace vm::translate::test {
namespace {

// Runs one sequence on the interpreter and on the JIT at the given tiers;
// returns the differences found.
std::string run_one(const DiffSequence& seq, bool with_optimized, DiffTally& tally) {
  const core::GuestAddr stop(kCodeBase + seq.code.size());
  core::RegionMemory mi = machine_memory(seq.code, seq.init);
  core::X86State si = seq.init.regs;
  RunResult want = interpreter_reference(mi, si, stop, tally);
  engine::BlockSource source = diff_block_source(stop);
  std::string diff;
  for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
    if (tier == engine::Tier::Optimized && !with_optimized) continue;
    ++(tier == engine::Tier::Fast ? tally.fast_runs : tally.optimized_runs);
    core::RegionMemory mj = machine_memory(seq.code, seq.init);
    core::X86State sj = seq.init.regs;
    engine::JitRunResult got = engine::run_jit(mj, sj, stop, 100000, source, tier);
    std::string d = exit_diff(want, got) + vm::testing::state_diff(si, sj);
    for (size_t i = 0; i < mi.regions().size(); ++i)
      d += vm::testing::memory_diff(mi.regions()[i].bytes, mj.regions()[i].bytes, mi.regions()[i].base.value());
    if (!d.empty()) diff += fmt::format(" tier {}:\n{}", engine::tier_name(tier), d);
  }
  return diff;
}

// Runs the first `iterations` sequences of `corpus` (the knobs as above);
// reports failures and returns the tally.
DiffTally run_corpus(DiffCorpus corpus, uint64_t iterations) {
  DiffTally tally;
  run_diff_sequences(corpus, iterations, tally,
                     [&](const DiffSequence& seq, bool with_optimized) { return run_one(seq, with_optimized, tally); });
  MESSAGE(fmt::format("{} {} sequences: {} Tier::Fast runs, {} Tier::Optimized runs, {} blocks, {} ending in a "
                      "trap or fault; {} mismatches",
                      iterations, corpus == DiffCorpus::Sse ? "SSE" : "integer", tally.fast_runs,
                      tally.optimized_runs, tally.blocks, tally.non_stop, tally.failures));
  CHECK(tally.failures == 0);
  return tally;
}

}  // namespace

TEST_CASE("JIT matches the interpreter on the frontend's integer differential corpus") {
  const uint64_t iterations = diff_knob("VM_JIT_DIFF_ITERATIONS", 20000);
  DiffTally tally = run_corpus(DiffCorpus::Integer, iterations);
  // Faults and traps are part of what is compared (59 at the default size; a short run may have none).
  if (iterations >= 5000) CHECK(tally.non_stop > 0);
}

TEST_CASE("JIT matches the interpreter on the frontend's SSE differential corpus") {
  run_corpus(DiffCorpus::Sse, diff_knob("VM_JIT_SSE_DIFF_ITERATIONS", 5000));
}

}  // namespace vm::translate::test
