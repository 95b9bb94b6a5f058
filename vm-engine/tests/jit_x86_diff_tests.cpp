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
#include <doctest/doctest.h>

#define VM_X86_DIFF_GENERATOR_ONLY
#include "x86_diff_tests.cpp"

#include "lowering_harness.hpp"
#include "vm/engine/jit.hpp"

namespace vm::translate::test {
namespace {

// The memory run_ours gives a Machine: code (padded with int3), data, stack.
core::RegionMemory machine_memory(std::span<const uint8_t> code, const Machine& m) {
  core::RegionMemory mem;
  std::vector<uint8_t> code_region(kCodeSize, 0xcc);
  std::memcpy(code_region.data(), code.data(), std::min<size_t>(code.size(), kCodeSize));
  (void)mem.add_region(core::GuestAddr(kCodeBase), std::move(code_region), core::kPermRead | core::kPermExec);
  (void)mem.add_region(core::GuestAddr(kDataBase), m.data, core::kPermRW);
  (void)mem.add_region(core::GuestAddr(kStackBase), m.stack, core::kPermRW);
  return mem;
}

std::string_view reason_word(RunResult::Reason r) { return run_reason_name(r); }
// The JIT loop's reasons in the interpreter's words ("stop" is "end" there).
std::string_view reason_word(engine::JitRunResult::Reason r) {
  using J = engine::JitRunResult::Reason;
  using R = RunResult::Reason;
  switch (r) {
    case J::Stop: return run_reason_name(R::Stop);
    case J::Trap: return run_reason_name(R::Trap);
    case J::Fault: return run_reason_name(R::Fault);
    case J::Syscall: return run_reason_name(R::Syscall);
    case J::StepLimit: return run_reason_name(R::StepLimit);
    case J::Error: break;
  }
  return engine::jit_run_reason_name(r);
}

struct Tally {
  uint64_t sequences = 0, fast_runs = 0, optimized_runs = 0, blocks = 0, non_stop = 0, failures = 0;
};

// Runs one sequence on the interpreter and on the JIT at the given tiers;
// returns the differences found.
std::string run_one(const std::vector<uint8_t>& code, const Machine& init, bool with_optimized, Tally& tally) {
  const core::GuestAddr stop(kCodeBase + code.size());
  core::RegionMemory mi = machine_memory(code, init);
  core::X86State si = init.regs;
  RunResult want = run_interpreter(mi, si, stop, 100000);
  tally.blocks += want.blocks;
  if (want.reason != RunResult::Reason::Stop) ++tally.non_stop;

  engine::BlockSource source = [stop](core::GuestMemory& m, core::GuestAddr pc) {
    BlockOptions bo;
    bo.stop_pc = stop.value();
    return decode_block(m, pc, bo);
  };
  std::string diff;
  for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
    if (tier == engine::Tier::Optimized && !with_optimized) continue;
    ++(tier == engine::Tier::Fast ? tally.fast_runs : tally.optimized_runs);
    core::RegionMemory mj = machine_memory(code, init);
    core::X86State sj = init.regs;
    engine::JitRunResult got = engine::run_jit(mj, sj, stop, 100000, source, tier);
    std::string d;
    if (reason_word(want.reason) != reason_word(got.reason) || want.pc != got.pc || want.fault_addr != got.fault_addr ||
        (want.reason == RunResult::Reason::Trap && want.trap != got.trap) || want.message != got.message ||
        want.blocks != got.blocks)
      d += fmt::format("  exit: interpreter {} at {:#x} ({}, {} blocks), jit {} at {:#x} ({}, {} blocks)\n",
                       reason_word(want.reason), want.pc.value(), want.message, want.blocks, reason_word(got.reason),
                       got.pc.value(), got.message, got.blocks);
    d += vm::testing::state_diff(si, sj);
    for (size_t i = 0; i < mi.regions().size(); ++i)
      d += vm::testing::memory_diff(mi.regions()[i].bytes, mj.regions()[i].bytes, mi.regions()[i].base.value());
    if (!d.empty()) diff += fmt::format(" tier {}:\n{}", engine::tier_name(tier), d);
  }
  return diff;
}

void report_failure(Tally& tally, uint64_t run, uint64_t seed, const std::string& text, const std::string& diff) {
  if (++tally.failures <= 5) FAIL_CHECK(fmt::format("sequence {} (seed {}): {}\n{}", run, seed, text, diff));
}

}  // namespace

TEST_CASE("JIT matches the interpreter on the frontend's integer differential corpus") {
  (void)&native_agrees;  // part of the included Unicorn test, not needed here
  const uint64_t iterations = env_or("VM_JIT_DIFF_ITERATIONS", 20000);
  const uint64_t optimized_every = std::max<uint64_t>(1, env_or("VM_JIT_DIFF_OPTIMIZED_EVERY", 16));
  const uint64_t seed = env_or("VM_X86_DIFF_SEED", 1);
  // The same draws, in the same order, as "differential: random integer sequences match Unicorn".
  Gen gen(seed);
  Tally tally;
  uint64_t run = 0;
  while (run < iterations) {
    std::string text;
    unsigned n = 1 + static_cast<unsigned>(gen.u(5));
    for (unsigned i = 0; i < n; ++i) text += (i ? "; " : "") + gen.insn();
    auto code = assemble_x86(text);
    auto undef = code ? undefined_flags(*code) : std::nullopt;
    if (!undef) continue;
    ++run;
    Machine init;
    gen.randomize(init);
    std::string diff = run_one(*code, init, run % optimized_every == 0, tally);
    if (!diff.empty()) report_failure(tally, run, seed, text, diff);
  }
  MESSAGE(fmt::format("{} integer sequences: {} Tier::Fast runs, {} Tier::Optimized runs, {} blocks, {} ending in a "
                      "trap or fault; {} mismatches",
                      run, tally.fast_runs, tally.optimized_runs, tally.blocks, tally.non_stop, tally.failures));
  CHECK(tally.failures == 0);
  // Faults and traps are part of what is compared (59 at the default size; a short run may have none).
  if (iterations >= 5000) CHECK(tally.non_stop > 0);
}

TEST_CASE("JIT matches the interpreter on the frontend's SSE differential corpus") {
  const uint64_t iterations = env_or("VM_JIT_SSE_DIFF_ITERATIONS", 5000);
  const uint64_t optimized_every = std::max<uint64_t>(1, env_or("VM_JIT_DIFF_OPTIMIZED_EVERY", 16));
  const uint64_t seed = env_or("VM_X86_DIFF_SEED", 1);
  // The same draws as "differential: random SSE sequences match Unicorn".
  Gen gen(seed * 7919 + 1);
  Tally tally;
  uint64_t run = 0;
  while (run < iterations) {
    std::string text;
    unsigned n = 1 + static_cast<unsigned>(gen.u(4));
    for (unsigned i = 0; i < n; ++i) text += (i ? "; " : "") + gen.sse_insn();
    auto code = assemble_x86(text);
    auto undef = code ? undefined_flags(*code) : std::nullopt;
    if (!undef) continue;
    ++run;
    Machine init;
    gen.randomize(init);
    gen.randomize_xmm(init);
    std::string diff = run_one(*code, init, run % optimized_every == 0, tally);
    if (!diff.empty()) report_failure(tally, run, seed, text, diff);
  }
  MESSAGE(fmt::format("{} SSE sequences: {} Tier::Fast runs, {} Tier::Optimized runs, {} blocks, {} ending in a trap "
                      "or fault; {} mismatches",
                      run, tally.fast_runs, tally.optimized_runs, tally.blocks, tally.non_stop, tally.failures));
  CHECK(tally.failures == 0);
}

}  // namespace vm::translate::test
