// Shared by the JIT's differential tests on the x86 frontend's Unicorn
// corpus: jit_x86_diff_tests.cpp (run_jit over the softmmu bridge, every
// access a slow path) and jit_x86_diff_memory_tests.cpp (run_jit over an
// AddressSpace: direct access and a filled Tlb, the inline paths). The
// sequences and initial states are drawn by vm-translate's generator
// (jit_x86_diff_corpus.cpp includes x86_diff_tests.cpp for it), so every
// variant sees the same corpus for the same seed.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "vm/core/memory.hpp"
#include "vm/engine/jit.hpp"
#include "vm/translate/x86.hpp"
#include "x86_machine.hpp"

namespace vm::translate::test {

enum class DiffCorpus : uint8_t { Integer, Sse };

struct DiffSequence {
  uint64_t run = 0;  // 1-based position in the corpus
  std::string text;  // the assembly, for failure reports
  std::vector<uint8_t> code;
  Machine init;
};

// The first `count` sequences of "differential: random integer sequences
// match Unicorn" (or of its SSE twin) for `seed`: the same draws in the same
// order, so sequence n here is sequence n there.
void for_each_diff_sequence(DiffCorpus corpus, uint64_t count, uint64_t seed,
                            const std::function<void(const DiffSequence&)>& each);

// The environment variable `name` as a number, or `def`.
uint64_t diff_knob(const char* name, uint64_t def);

// The memory run_ours gives a Machine: code (padded with int3), data, stack.
// `data_perms`: the data region's permissions (read-write there).
core::RegionMemory machine_memory(std::span<const uint8_t> code, const Machine& m,
                                  uint8_t data_perms = core::kPermRW);

// Blocks as run_interpreter decodes them: ending at `stop`.
engine::BlockSource diff_block_source(core::GuestAddr stop);

// The differences in exit reason, pc, fault address, trap, message and block
// count between the interpreter's run and the JIT's ("" when none).
std::string exit_diff(const RunResult& want, const engine::JitRunResult& got);

struct DiffTally {
  uint64_t fast_runs = 0, optimized_runs = 0, blocks = 0, non_stop = 0, faults = 0, failures = 0;
};

// Counts the interpreter's run and returns its result.
RunResult interpreter_reference(core::RegionMemory& memory, core::X86State& state, core::GuestAddr stop,
                                DiffTally& tally);

// A failed check naming the sequence (the first five failures only).
void report_failure(DiffTally& tally, const DiffSequence& seq, uint64_t seed, const std::string& diff);
// The first `iterations` sequences of `corpus` for the seed VM_X86_DIFF_SEED
// (default 1), each given to `run_one` with whether it runs at
// Tier::Optimized too (every VM_JIT_DIFF_OPTIMIZED_EVERY-th, default 16);
// what `run_one` returns is the sequence's differences, reported as failures.
void run_diff_sequences(DiffCorpus corpus, uint64_t iterations, DiffTally& tally,
                        const std::function<std::string(const DiffSequence&, bool with_optimized)>& run_one);

}  // namespace vm::translate::test
