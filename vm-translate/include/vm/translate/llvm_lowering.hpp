// The LLVM-level entry points of the vm-ir lowering, for code that owns an
// LLVM module (vm-engine's JITCompiler, the CrossTranslator). Only forward
// declarations of LLVM types appear here; see lowering.hpp for the contract
// of the generated functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vm/translate/lowering.hpp"

namespace llvm {
class Module;
class Function;
class TargetMachine;
}  // namespace llvm

namespace vm::translate {

struct LoweredFunction {
  llvm::Function* function = nullptr;
  std::vector<ChainSlot> chain_slots;  // in exit order (chain_exits only)
  uint32_t ir_instructions = 0;        // LLVM instructions emitted
};

// Adds a function named options.function_name to `module` (verifying the
// blocks first and the LLVM function after). The module's triple and data
// layout are the caller's business; the generated IR does not depend on them.
core::Result<LoweredFunction> lower_block(const ir::IRBlock& block, llvm::Module& module,
                                          const LoweringOptions& options);
core::Result<LoweredFunction> lower_region(std::span<const ir::IRBlock> blocks, llvm::Module& module,
                                           const LoweringOptions& options);

// Counts the instructions of every function in the module (statistics).
uint32_t count_instructions(const llvm::Module& module);

// The lean optimisation pipeline shared by the JIT's Tier::Optimized and the
// cross translator: SROA, EarlyCSE, InstCombine, SimplifyCFG, GVN, DSE, ADCE,
// SimplifyCFG, with `thread_jumps` (for softmmu code) JumpThreading and
// SimplifyCFG, then critical-edge splitting, sinking out of cycles and into
// cold paths (ours), Sink and SimplifyCFG over every function. Builds its
// own analysis managers.
void run_lean_pipeline(llvm::Module& module, llvm::TargetMachine* tm, bool thread_jumps);

// Rewrites, for X86 FastISel, the instructions it rejects that have a form
// it selects: a `select` of i1 values becomes and/or/xor, and a 128-bit
// multiply of factors that fit 64 bits, read only as its low half, its high
// half shifted right or whether the high half is zero (the lowering's
// 64x64->128 multiplies after the IR pipeline), becomes one x86 multiply
// (mulq / imulq, an asm call: FastISel hands that call alone to
// SelectionDAG and carries on). Only for an x86-64 target triple; other
// modules are left alone. Returns the number of instructions rewritten.
uint32_t rewrite_fast_isel_rejects(llvm::Module& module);

// Prepares IR for FastISel at CodeGenOptLevel::None (the JIT's Tier::Fast).
// When FastISel meets an instruction it cannot select (i128 arithmetic,
// vector operations, i1 selects), SelectionDAG takes over everything from
// the start of the basic block up to that instruction, which in one large
// straight-line block is nearly all of it. This starts a new basic block at
// every run of such instructions, so SelectionDAG only sees the run. (At
// higher levels CodeGenPrepare merges such blocks back.) Returns the number
// of blocks split.
uint32_t isolate_fast_isel_fallbacks(llvm::Module& module);

}  // namespace vm::translate
