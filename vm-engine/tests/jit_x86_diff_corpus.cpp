// The corpus and comparison helpers of jit_x86_diff.hpp.
#include <doctest/doctest.h>

#define VM_X86_DIFF_GENERATOR_ONLY
#include "x86_diff_tests.cpp"

#include "jit_x86_diff.hpp"

namespace vm::translate::test {

void for_each_diff_sequence(DiffCorpus corpus, uint64_t count, uint64_t seed,
                            const std::function<void(const DiffSequence&)>& each) {
  (void)&native_agrees;  // part of the included Unicorn test, not needed here
  const bool sse = corpus == DiffCorpus::Sse;
  // The seeds of "differential: random integer / SSE sequences match Unicorn".
  Gen gen(sse ? seed * 7919 + 1 : seed);
  DiffSequence seq;
  while (seq.run < count) {
    seq.text.clear();
    unsigned n = 1 + static_cast<unsigned>(gen.u(sse ? 4 : 5));
    for (unsigned i = 0; i < n; ++i) seq.text += (i ? "; " : "") + (sse ? gen.sse_insn() : gen.insn());
    auto code = assemble_x86(seq.text);
    auto undef = code ? undefined_flags(*code) : std::nullopt;
    if (!undef) continue;
    ++seq.run;
    seq.code = std::move(*code);
    seq.init = Machine();
    gen.randomize(seq.init);
    if (sse) gen.randomize_xmm(seq.init);
    each(seq);
  }
}

uint64_t diff_knob(const char* name, uint64_t def) { return env_or(name, def); }

core::RegionMemory machine_memory(std::span<const uint8_t> code, const Machine& m, uint8_t data_perms) {
  core::RegionMemory mem;
  std::vector<uint8_t> code_region(kCodeSize, 0xcc);
  std::memcpy(code_region.data(), code.data(), std::min<size_t>(code.size(), kCodeSize));
  (void)mem.add_region(core::GuestAddr(kCodeBase), std::move(code_region), core::kPermRead | core::kPermExec);
  (void)mem.add_region(core::GuestAddr(kDataBase), m.data, data_perms);
  (void)mem.add_region(core::GuestAddr(kStackBase), m.stack, core::kPermRW);
  return mem;
}

engine::BlockSource diff_block_source(core::GuestAddr stop) {
  return [stop](core::GuestMemory& m, core::GuestAddr pc) {
    BlockOptions bo;
    bo.stop_pc = stop.value();
    return decode_block(m, pc, bo);
  };
}

namespace {

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

}  // namespace

std::string exit_diff(const RunResult& want, const engine::JitRunResult& got) {
  if (reason_word(want.reason) == reason_word(got.reason) && want.pc == got.pc && want.fault_addr == got.fault_addr &&
      (want.reason != RunResult::Reason::Trap || want.trap == got.trap) && want.message == got.message &&
      want.blocks == got.blocks)
    return {};
  return fmt::format("  exit: interpreter {} at {:#x} ({}, {} blocks{}), jit {} at {:#x} ({}, {} blocks{})\n",
                     reason_word(want.reason), want.pc.value(), want.message, want.blocks,
                     want.fault_addr ? fmt::format(", address {:#x}", want.fault_addr->value()) : "",
                     reason_word(got.reason), got.pc.value(), got.message, got.blocks,
                     got.fault_addr ? fmt::format(", address {:#x}", got.fault_addr->value()) : "");
}

RunResult interpreter_reference(core::RegionMemory& memory, core::X86State& state, core::GuestAddr stop,
                                DiffTally& tally) {
  RunResult want = run_interpreter(memory, state, stop, 100000);
  tally.blocks += want.blocks;
  if (want.reason != RunResult::Reason::Stop) ++tally.non_stop;
  if (want.reason == RunResult::Reason::Fault) ++tally.faults;
  return want;
}

void report_failure(DiffTally& tally, const DiffSequence& seq, uint64_t seed, const std::string& diff) {
  if (++tally.failures <= 5) FAIL_CHECK(fmt::format("sequence {} (seed {}): {}\n{}", seq.run, seed, seq.text, diff));
}

void run_diff_sequences(DiffCorpus corpus, uint64_t iterations, DiffTally& tally,
                        const std::function<std::string(const DiffSequence&, bool with_optimized)>& run_one) {
  const uint64_t optimized_every = std::max<uint64_t>(1, diff_knob("VM_JIT_DIFF_OPTIMIZED_EVERY", 16));
  const uint64_t seed = diff_knob("VM_X86_DIFF_SEED", 1);
  for_each_diff_sequence(corpus, iterations, seed, [&](const DiffSequence& seq) {
    std::string diff = run_one(seq, seq.run % optimized_every == 0);
    if (!diff.empty()) report_failure(tally, seq, seed, diff);
  });
}

}  // namespace vm::translate::test
