// JITCompiler: compiles vm-ir blocks to host code with LLVM ORC (LLJIT).
//
// A block is lowered by vm-translate (vm/translate/lowering.hpp describes the
// generated function and its exit codes), optionally optimised, compiled to
// an object by one long-lived TargetMachine and linked into the process by
// LLJIT. Two tiers: Fast (no IR optimisation, fast instruction selection,
// for code that just became warm) and Optimized (a lean function pipeline:
// SROA, EarlyCSE, InstCombine, SimplifyCFG, GVN, DSE, ADCE, SimplifyCFG; fast
// instruction selection followed by the optimising machine passes). Each
// compile is its own unit with an ORC
// ResourceTracker, so release() frees its code. Statistics time every phase.
//
// run_jit() is the execution loop the `vm exec --engine jit` CLI uses; it
// takes its blocks from a caller-supplied source (normally the x86 frontend's
// decode_block) and reaches guest memory through a core::GuestMemory via the
// softmmu slow paths, so every guest fault is precise. Its overload over a
// vm-mem AddressSpace reaches memory as the execution engine's code does
// instead (direct access, or a software TLB hit inline).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/core/x86_state.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/ir.hpp"
#include "vm/translate/lowering.hpp"

namespace vm::mem {
class AddressSpace;
class Tlb;
}  // namespace vm::mem

namespace vm::engine {

enum class Tier : uint8_t { Fast, Optimized };
std::string_view tier_name(Tier t);                   // "fast", "optimized"
std::optional<Tier> parse_tier(std::string_view s);

// Stages of a compile that can be dumped.
enum class Stage : uint8_t { Lowered, Optimized, Assembly };
std::optional<Stage> parse_stage(std::string_view s);  // "lift"/"llvm", "opt", "asm"

struct CompileStats {
  double lower_us = 0;      // vm-ir -> LLVM IR
  double optimize_us = 0;   // IR pipeline (at Tier::Fast only the FastISel block splitting)
  double codegen_us = 0;    // LLVM IR -> object file
  double link_us = 0;       // object -> executable memory, symbol lookup
  uint32_t ir_instructions = 0;            // LLVM instructions as lowered
  uint32_t ir_instructions_optimized = 0;  // after the pipeline (= lowered at Fast)
  uint64_t code_bytes = 0;                 // size of the object's code sections
  [[nodiscard]] double total_us() const { return lower_us + optimize_us + codegen_us + link_us; }
};

struct CompiledBlock {
  translate::BlockFn entry = nullptr;
  uint64_t code_size = 0;
  CompileStats stats;
  core::GuestAddr start_pc;
  Tier tier = Tier::Fast;
  translate::UnitCall call = translate::UnitCall::C;  // how C++ enters `entry` (JitOptions::preserve_none)
  uint64_t unit = 0;  // identifies the code for release()
  // JitOptions::chain_exits: one slot per direct exit. Storing a compiled
  // block's entry in *slot makes that exit tail-call it.
  std::vector<void**> chain_slots;
  std::vector<core::GuestAddr> chain_targets;
};

struct JitOptions {
  translate::MemoryStrategy memory = translate::MemoryStrategy::Direct;
  bool chain_exits = false;
  bool inline_jump_cache = false;  // see translate::LoweringOptions::inline_jump_cache
  bool restartable = false;        // see translate::LoweringOptions::restartable
  uint64_t direct_guard = 0;       // see translate::LoweringOptions::direct_guard (Direct only)
  bool guest_base_gs = false;      // Tier::Optimized: translate::LoweringOptions::guest_base_gs (Direct only)
  uint64_t region_mask = 0;        // see translate::LoweringOptions::direct_mask (Direct only)
  // Tier::Optimized units with translate::LoweringOptions::preserve_none
  // (x86-64 hosts). C++ enters a unit through translate::run_unit with its
  // CompiledBlock::call (execute() does), never by calling entry directly;
  // whoever chains units stores Optimized entries in chain slots and the
  // jump cache tagged with translate::kPreserveNoneTag.
  bool preserve_none = false;
  bool perf_map = false;  // append "addr size name" lines to /tmp/perf-<pid>.map for `perf report`
};

// Per-unit requests of the execution engine.
struct UnitOptions {
  // Promotion counter (translate::LoweringOptions::entry_counter): two words
  // {count, due}; the unit returns at entry when its count reaches due.
  uint64_t* entry_counter = nullptr;
  // A region entered at any of its blocks (translate::LoweringOptions::all_entries).
  bool all_entries = false;
  // With all_entries: only these members are entries (translate::LoweringOptions::entry_pcs).
  std::vector<uint64_t> entry_pcs;
  // Indirect exits to members stay inside (translate::LoweringOptions::indirect_members).
  bool indirect_members = false;
  // Per block, the targets its indirect jump or call took (translate::LoweringOptions::indirect_targets).
  std::vector<std::vector<uint64_t>> indirect_targets;
  // Direct restartable code without sync points (translate::LoweringOptions::sync_points).
  bool sync_points = true;
  // Back edges check exit_request (translate::LoweringOptions::exit_polls).
  bool exit_polls = true;
};

class JITCompiler {
public:
  static core::Result<std::unique_ptr<JITCompiler>> create(const JitOptions& options = {});
  ~JITCompiler();
  JITCompiler(const JITCompiler&) = delete;
  JITCompiler& operator=(const JITCompiler&) = delete;

  core::Result<CompiledBlock> compile(const ir::IRBlock& block, Tier tier = Tier::Fast);
  // A region: jumps between its blocks stay inside the compiled function.
  core::Result<CompiledBlock> compile_region(std::span<const ir::IRBlock> blocks, Tier tier = Tier::Fast,
                                             const UnitOptions& unit = {});
  // Frees the block's code and data; its entry must not be running or chained to.
  core::Result<void> release(const CompiledBlock& block);
  [[nodiscard]] size_t live_units() const;

  // The text of one stage for `block` or a region (LLVM IR as lowered, after
  // the tier's pipeline, or host assembly). Does not add code to the JIT.
  core::Result<std::string> dump(const ir::IRBlock& block, Tier tier, Stage stage);
  // `unit` as given to compile_region, so the dump shows the code that runs.
  core::Result<std::string> dump_region(std::span<const ir::IRBlock> blocks, Tier tier, Stage stage,
                                        const UnitOptions& unit = {});

  [[nodiscard]] const JitOptions& options() const;
  // How many passes the tier's codegen pipeline leaves out as having nothing
  // to do in generated code (TLS, exception handling, hardening, ...; the
  // list is in jit.cpp). Builds the pipeline if no compile has yet.
  core::Result<uint32_t> codegen_passes_left_out(Tier tier);

private:
  struct Impl;
  explicit JITCompiler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs one compiled block (and the blocks it chains to).
inline translate::ExitInfo execute(const CompiledBlock& block, core::X86State& state, translate::MemoryContext& mem) {
  return translate::decode_exit(translate::run_unit(block.entry, &state, &mem, block.call));
}

// A MemoryContext for JitOptions::memory = SoftMmu whose TLB never hits, so
// every access goes through `memory` (reads, writes and atomics are checked,
// faults precise). Keep the bridge alive while code runs with its context().
class GuestMemoryBridge {
public:
  explicit GuestMemoryBridge(core::GuestMemory& memory, const ir::HelperTable& helpers = ir::HelperTable::defaults());
  GuestMemoryBridge(const GuestMemoryBridge&) = delete;
  GuestMemoryBridge& operator=(const GuestMemoryBridge&) = delete;
  translate::MemoryContext& context() { return ctx_; }

private:
  core::GuestMemory* memory_;
  core::TlbFast tlb_;
  core::TlbEntry empty_entry_;
  translate::MemoryContext ctx_;
  friend struct BridgeAccess;
};

// The block-at-a-time JIT execution loop (the JIT twin of
// translate::run_interpreter): fetch a block from `source` for state.rip,
// compile it once (cached by pc), run it, until rip == stop_pc, a trap,
// fault or syscall exit, or max_blocks blocks.
struct JitRunResult {
  enum class Reason { Stop, Trap, Fault, Syscall, StepLimit, Error };
  Reason reason = Reason::Stop;
  core::GuestAddr pc;
  std::optional<core::GuestAddr> fault_addr;
  ir::TrapReason trap = ir::TrapReason::InvalidOpcode;
  std::string message;
  uint64_t blocks = 0;           // blocks executed
  uint64_t blocks_compiled = 0;  // distinct blocks compiled
  // Over an AddressSpace: memory faults of compiled code whose block the
  // interpreter finished from the last synced instruction boundary.
  uint64_t restarts = 0;
};
std::string_view jit_run_reason_name(JitRunResult::Reason r);

using BlockSource = std::function<core::Result<ir::IRBlock>(core::GuestMemory&, core::GuestAddr)>;

JitRunResult run_jit(core::GuestMemory& memory, core::X86State& state, core::GuestAddr stop_pc, uint64_t max_blocks,
                     const BlockSource& source, Tier tier = Tier::Fast,
                     const ir::HelperTable& helpers = ir::HelperTable::defaults());

// run_jit over a vm-mem AddressSpace, its compiled code reaching guest
// memory the way the execution engine's does under `vm run`, so that the
// lowering's inline memory paths run (the overload above only ever takes
// the slow paths). The code is restartable (translate::LoweringOptions::
// restartable), as the engine's is:
//  - memory = Direct (the space must be Direct): guest_base + (address &
//    mask) with no check and the engine's direct_guard; Tier::Optimized
//    code addresses memory through GS when the calling thread can set its
//    GS base to the space's (it keeps that base afterwards). A guest access
//    to an inaccessible page raises a host fault, which is caught as the
//    engine catches it (the process-wide handler of host_fault.hpp).
//  - memory = SoftMmu: through `tlb` (a Tlb of space.page_table(), via
//    TlbBridge); whatever the caller filled it with hits inline from the
//    first access. Null: a fresh Tlb, filled by the slow paths.
// At a memory fault the state holds the last synced instruction boundary
// of the block; the interpreter runs the block from there, makes the
// access itself and reports the fault (pc, address, message) as
// translate::run_interpreter does (JitRunResult::restarts counts these).
struct SpaceAccess {
  translate::MemoryStrategy memory = translate::MemoryStrategy::Direct;
  mem::Tlb* tlb = nullptr;
};
JitRunResult run_jit(mem::AddressSpace& space, const SpaceAccess& access, core::X86State& state,
                     core::GuestAddr stop_pc, uint64_t max_blocks, const BlockSource& source, Tier tier = Tier::Fast,
                     const ir::HelperTable& helpers = ir::HelperTable::defaults());

}  // namespace vm::engine
