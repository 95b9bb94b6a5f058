// Random vm-ir blocks for property tests (text round trip, pass equivalence).
//
// Every block the generator returns is meant to pass vm::ir::verify(): values
// are defined before use with the types each opcode needs, register accesses
// stay inside their register, lane indices and shuffle selectors are in range.
// Across a few hundred blocks every opcode, result type, lane, modifier and
// terminator kind appears (the text tests check that coverage). Options narrow
// the mix for tests that cannot use everything, e.g. memory-free blocks for
// an interpreter without mapped memory.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "vm/ir/ir.hpp"

namespace vm::ir::testing {

struct RandomBlockOptions {
  // Ops chosen at random; the block also holds the constants, register reads
  // and address computations they need, so it is usually 2-3x longer.
  uint32_t size = 24;
  bool memory = true;            // load, store, atomic_cmpxchg, atomic_rmw, fence
  bool bulk = true;              // fill and copy (with memory; up to the end of a page)
  bool helpers = true;           // call_helper
  bool division = true;          // divu, divs, remu, rems
  bool division_traps = true;    // false: divisors are positive and non-zero, so division never traps
  bool trap_terminators = true;  // trap terminators (all reasons a block may name)
  // trap_if and exit_if (off by default: they end blocks early, which would
  // change what the JIT tests and benchmarks built on these blocks measure).
  bool conditional_exits = false;
  // Registers get_reg/set_reg may use; empty means every register.
  std::vector<core::X86Reg> regs;
  // Memory ops address [mem_base, mem_base + mem_size) (mem_size >= 16).
  uint64_t mem_base = 0x10000;
  uint64_t mem_size = 0x1000;
  GuestAddr start_pc{0x401000};
  // Renumber values with gaps (as after dead-code elimination) instead of 0, 1, 2...
  bool sparse_ids = false;
};

IRBlock random_block(std::mt19937_64& rng, const RandomBlockOptions& options = {});

// Knobs for long local runs of the property tests; CI uses the defaults.
// VM_TEST_SEED=<n> replaces the fixed seed, VM_TEST_SCALE=<n> multiplies
// iteration counts. A failing test prints the seed it used.
uint64_t test_seed(uint64_t default_seed);
uint32_t test_scale();

}  // namespace vm::ir::testing
