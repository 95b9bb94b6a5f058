// IR passes over one block. Each preserves the interpreter's semantics
// (checked by a property test on random blocks) and keeps the block valid.
#pragma once

#include <cstdint>

#include "vm/ir/ir.hpp"

namespace vm::ir {

struct PassStats {
  uint32_t folded = 0;            // ops replaced by constants
  uint32_t forwarded = 0;         // get_reg replaced by an earlier value
  uint32_t dead_ops = 0;          // pure ops removed
  uint32_t dead_reg_writes = 0;   // set_reg removed (overwritten before any read)
  uint32_t dead_flag_writes = 0;  // of which flag registers
  uint32_t fused_conditions = 0;  // flag formulas of a subtraction turned into one compare
};

struct PassOptions {
  // When true (the default), state must be exact at every op that can trap,
  // so a register write is only dead if it is overwritten before the next
  // trapping op. When false, writes may be dropped across loads/stores, which
  // is only correct if faults do not need precise guest state.
  bool precise_faults = true;
};

// Replaces ops whose operands are constants with constants (via evaluate_pure).
uint32_t fold_constants(IRBlock& block);
// Register forwarding: a get_reg that reads exactly what an earlier set_reg
// or get_reg of the same register bits produced is replaced by that value;
// uses are rewritten to the original value.
uint32_t propagate_copies(IRBlock& block);
// Removes pure ops whose results are unused.
uint32_t eliminate_dead_code(IRBlock& block);
// Condition codes read from the flags of r = sub a, b become one compare of
// a and b: SF xor OF (with a borrow-in of 0) is a <s b, ZF or that is
// a <=s b, CF or ZF is a <=u b. The ops are rewritten in place; what they
// read dies when nothing else reads it. (LLVM's InstCombine does not see
// the signed ones through the overflow formula.)
uint32_t fuse_flag_conditions(IRBlock& block);
// Removes set_reg ops (flags and others) whose bits are all overwritten
// before they can be observed. Counts flag writes separately in stats.
void eliminate_dead_reg_writes(IRBlock& block, const PassOptions& options, PassStats& stats);

// The standard pipeline: fold, forward, fuse flag conditions, dead writes,
// dead code, to a fixpoint.
PassStats run_standard_passes(IRBlock& block, const PassOptions& options = {});

}  // namespace vm::ir
