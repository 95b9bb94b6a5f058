// vm-ir -> LLVM lowering: the contract between generated code and its caller.
//
// Every lowered unit (one IRBlock, or a region of blocks with internal edges)
// becomes a function `uint64_t fn(X86State* noalias state, MemoryContext* mem)`
// that runs the unit once and returns an exit code (encode_exit below). On
// return state->rip holds the next pc, or the pc of the trapping instruction
// for a trap, exactly as the vm-ir interpreter leaves it; guest registers are
// kept in SSA values inside the function and written back only at exits and
// around helper calls. The same lowering serves the host JIT (vm-engine) and
// the AArch64 / RISC-V cross translator: everything target- or
// environment-specific is reached through MemoryContext at run time.
//
// This header has no LLVM types; the LLVM-level entry points used by vm-engine
// are in vm/translate/llvm_lowering.hpp, and docs/jit.md describes the design.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/core/tlb_layout.hpp"
#include "vm/core/x86_state.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/ir.hpp"

namespace vm::translate {

// How guest loads and stores become host accesses.
enum class MemoryStrategy : uint8_t {
  // host = mem->guest_base + (addr & mem->region_mask). Cannot fault and can
  // never reach host memory outside the region; a guest access outside the
  // mapped part of the region is not detected (the owner maps the whole
  // region, or accepts that; host signal handling is not used).
  Direct,
  // Inline TLB hit check (vm/core/tlb_layout.hpp) with an out-of-line call to
  // mem->load_slow / store_slow / translate_slow on a miss. Faults are precise:
  // a failing slow path ends the block with Trap(memory_fault) at the
  // instruction's pc, fault address and access kind in mem->fault_*.
  SoftMmu,
};

std::string_view memory_strategy_name(MemoryStrategy s);

// The code generator the lowering is for (a few ops use target intrinsics).
enum class LoweringTarget : uint8_t { X86_64, AArch64, RiscV64 };

struct MemoryContext;

// The signature of every lowered unit.
using BlockFn = uint64_t (*)(core::X86State* state, MemoryContext* mem);

// One entry of the engine's direct-mapped jump cache, which generated code
// searches inline at indirect exits (LoweringOptions::inline_jump_cache):
// guest pc -> compiled entry. An entry with a null fn never matches.
struct JumpCacheEntry {
  uint64_t pc = 0;
  BlockFn fn = nullptr;
};
// The slot of `pc` in a cache of mask + 1 entries (a power of two).
constexpr uint64_t jump_cache_index(uint64_t pc, uint64_t mask) { return (pc ^ (pc >> 12)) & mask; }

// Slow paths return 0 on success; on a fault they set mem->fault_addr (first
// inaccessible byte) and mem->fault_access (core::Access) and return nonzero.
using LoadSlowFn = uint32_t (*)(MemoryContext* mem, uint64_t addr, uint64_t size, void* out);
using StoreSlowFn = uint32_t (*)(MemoryContext* mem, uint64_t addr, uint64_t size, const void* in);
// An atomic access that missed the TLB, done entirely by the slow path:
// `op` is an ir::RmwOp value or kAtomicSlowCmpxchg; `operands` holds the
// value (or expected value) in bytes 0..15 and the desired value in 16..31;
// the old memory value goes to `old_out`. Reads before it writes, like the
// interpreter, so the reported access kind matches.
inline constexpr uint32_t kAtomicSlowCmpxchg = 6;
using AtomicSlowFn = uint32_t (*)(MemoryContext* mem, uint64_t addr, uint64_t size, uint32_t op, const void* operands,
                                  void* old_out);

// Everything generated code needs besides the register file. Plain data with
// a fixed layout (offsets below are asserted), so a C driver on another
// architecture can build one too.
struct MemoryContext {
  uint64_t guest_base = 0;                 // Direct
  uint64_t region_mask = ~uint64_t{0};     // Direct
  const core::TlbFast* tlb = nullptr;      // SoftMmu
  const ir::HelperFn* helpers = nullptr;   // ir::kNumHelpers entries (HelperTable::fns), may be null
  LoadSlowFn load_slow = nullptr;          // SoftMmu
  StoreSlowFn store_slow = nullptr;        // SoftMmu
  AtomicSlowFn atomic_slow = nullptr;      // SoftMmu atomics
  uint64_t fault_addr = 0;                 // written by slow paths
  uint32_t fault_access = 0;               // core::Access of the fault
  // Set by the owner (e.g. after dropping translations) to make running code
  // leave a region at its next internal edge instead of looping on.
  uint32_t exit_request = 0;
  void* user = nullptr;                    // the owner's data for its slow paths
  const JumpCacheEntry* jump_cache = nullptr;  // inline_jump_cache: mask + 1 entries
  uint64_t jump_cache_mask = 0;
};

inline constexpr size_t kMemCtxGuestBase = 0, kMemCtxRegionMask = 8, kMemCtxTlb = 16, kMemCtxHelpers = 24,
                        kMemCtxLoadSlow = 32, kMemCtxStoreSlow = 40, kMemCtxAtomicSlow = 48,
                        kMemCtxFaultAddr = 56, kMemCtxFaultAccess = 64, kMemCtxExitRequest = 68, kMemCtxJumpCache = 80,
                        kMemCtxJumpCacheMask = 88;
static_assert(offsetof(MemoryContext, guest_base) == kMemCtxGuestBase);
static_assert(offsetof(MemoryContext, region_mask) == kMemCtxRegionMask);
static_assert(offsetof(MemoryContext, tlb) == kMemCtxTlb);
static_assert(offsetof(MemoryContext, helpers) == kMemCtxHelpers);
static_assert(offsetof(MemoryContext, load_slow) == kMemCtxLoadSlow);
static_assert(offsetof(MemoryContext, store_slow) == kMemCtxStoreSlow);
static_assert(offsetof(MemoryContext, atomic_slow) == kMemCtxAtomicSlow);
static_assert(offsetof(MemoryContext, fault_addr) == kMemCtxFaultAddr);
static_assert(offsetof(MemoryContext, fault_access) == kMemCtxFaultAccess);
static_assert(offsetof(MemoryContext, exit_request) == kMemCtxExitRequest);
static_assert(offsetof(MemoryContext, jump_cache) == kMemCtxJumpCache);
static_assert(offsetof(MemoryContext, jump_cache_mask) == kMemCtxJumpCacheMask);
static_assert(sizeof(MemoryContext) == 96);
static_assert(sizeof(JumpCacheEntry) == 16);

// Exit code returned by a lowered unit:
//   bits 0..7   the ir::TermKind the unit ended with (Trap for trap
//               terminators and for run-time traps: divide error, memory fault)
//   bits 8..15  ir::TrapReason (Trap only)
//   bits 16..23 interrupt vector (Trap(interrupt) only)
//   bit 24      kExitRestart (a memory fault under restartable softmmu:
//               state->rip is the boundary the state holds, see
//               LoweringOptions::restartable)
// The next pc (or trapping pc) is always in state->rip, never in the code.
// A code with bit 63 set is no exit but the entry of a unit to run next
// (LoweringOptions::chain_by_return; bit 63 of a user-space pointer is 0):
// run_unit runs it.
inline constexpr uint64_t kExitContinue = uint64_t{1} << 63;
struct ExitInfo {
  ir::TermKind kind = ir::TermKind::None;
  ir::TrapReason trap = ir::TrapReason::InvalidOpcode;
  uint8_t vector = 0;
  // A memory fault of softmmu code with LoweringOptions::restartable: the
  // state holds an instruction boundary at or before the faulting access,
  // not the faulting instruction (kExitRestart).
  bool restart = false;
  friend constexpr bool operator==(const ExitInfo&, const ExitInfo&) = default;
};

inline constexpr uint64_t kExitRestart = uint64_t{1} << 24;

constexpr uint64_t encode_exit(ir::TermKind kind, ir::TrapReason trap = ir::TrapReason::InvalidOpcode,
                               uint8_t vector = 0) {
  return uint64_t(kind) | uint64_t(trap) << 8 | uint64_t(vector) << 16;
}
constexpr ExitInfo decode_exit(uint64_t code) {
  return ExitInfo{static_cast<ir::TermKind>(code & 0xff), static_cast<ir::TrapReason>((code >> 8) & 0xff),
                  static_cast<uint8_t>((code >> 16) & 0xff), (code & kExitRestart) != 0};
}

// How C++ calls a lowered unit (LoweringOptions::preserve_none).
enum class UnitCall : uint8_t { C, PreserveNone };

// Enters a unit lowered with LoweringOptions::preserve_none: such a unit
// takes its arguments in r12 and r13 and may clobber every register but
// rsp and rbp, so this saves the C callee-saved registers around the call.
// x86-64 hosts only (host_enter.cpp).
extern "C" uint64_t vm_enter_preserve_none(BlockFn fn, core::X86State* state, MemoryContext* mem);

inline uint64_t call_unit(BlockFn fn, core::X86State* state, MemoryContext* mem, UnitCall how) {
#if defined(__x86_64__)
  if (how == UnitCall::PreserveNone) return vm_enter_preserve_none(fn, state, mem);
#endif
  return fn(state, mem);
}

// A unit entry as chain slots and the inline jump cache hold it when units
// of both conventions run together: bit 0 set marks a preserve_none entry
// (code entries are 16-byte aligned). Code lowered with preserve_none
// tail-calls only marked entries and hands the others back; the C++ loop
// below enters each by its own convention.
inline constexpr uint64_t kPreserveNoneTag = 1;

// Calls a lowered unit and then, as long as it hands over a successor
// (kExitContinue, a tagged entry), the successor; returns the first real
// exit code.
inline uint64_t run_unit(BlockFn fn, core::X86State* state, MemoryContext* mem, UnitCall how = UnitCall::C) {
  uint64_t code = call_unit(fn, state, mem, how);
  while ((code & kExitContinue) != 0) {
    uint64_t next = code & ~kExitContinue;
    code = call_unit(reinterpret_cast<BlockFn>(next & ~kPreserveNoneTag), state, mem,
                     (next & kPreserveNoneTag) != 0 ? UnitCall::PreserveNone : UnitCall::C);
  }
  return code;
}

struct LoweringOptions {
  MemoryStrategy memory = MemoryStrategy::Direct;
  LoweringTarget target = LoweringTarget::X86_64;
  // Direct exits (jump, branch, direct call) leave through a per-exit chain
  // slot: a pointer (a global, or a word of chain_slot_storage) that, once
  // the engine stores a compiled successor in it, is tail-called (or under
  // chain_by_return handed back) instead of returning. Off: plain returns.
  bool chain_exits = false;
  // chain_exits: when set, the first chain_slot_capacity exits use these
  // words as their slots, addressed by their absolute addresses in the code
  // (a host JIT that owns them), instead of globals of the module: no data
  // section, symbols or relocations to link (later exits get globals).
  void** chain_slot_storage = nullptr;
  size_t chain_slot_capacity = 0;
  // A chained exit with its slot set, and an inline jump-cache hit, return
  // the successor's entry with kExitContinue instead of tail-calling it;
  // whoever called the unit runs it (run_unit). For FastISel, which
  // rejects `musttail` calls: one rejected instruction is a SelectionDAG
  // run for the function (the JIT's Tier::Fast).
  bool chain_by_return = false;
  // Indirect exits (indirect jump, indirect call, ret) look the target pc up
  // in mem->jump_cache and tail-call the entry they find instead of returning.
  bool inline_jump_cache = false;
  // When nonzero: the host address of two uint64_t words {count, due}. The
  // unit increments count on every entry, and the entry that makes count
  // equal to due returns at once (rip = the unit's start, exit kind Jump;
  // with all_entries, rip as it was: the member it was entered at), so the
  // engine gets control back to promote the unit; the engine moves `due`
  // (e.g. to UINT64_MAX: never again).
  uint64_t entry_counter = 0;
  // Regions: every block of the region is an entry. The function starts at
  // the block whose start pc is the state's rip (the first block for any
  // other rip), so code that reaches a member from outside the region (e.g.
  // the block after a call, reached by ret) can run the region's code.
  bool all_entries = false;
  // all_entries: when not empty, only the members starting at these pcs
  // (sorted) are entries; entered at any other rip the function returns at
  // once (exit kind Jump, the state untouched) for the owner to run that
  // block's own code.
  std::vector<uint64_t> entry_pcs;
  // Regions: an indirect exit whose target is a member of the region
  // continues at that member inside the function instead of leaving it. A
  // return is compared with the members that follow the region's calls
  // whose callee reaches it (their return sites), an indirect jump or call
  // with the members among its indirect_targets (every member when none
  // are given).
  bool indirect_members = false;
  // indirect_members: per block of the region (empty: none known), the
  // targets its indirect jump or indirect call was seen to take. Its
  // dispatch then compares the target with those members only (any other
  // target leaves the region), which keeps the function's control flow to
  // the edges the guest took (docs/jit.md "Chaining slots and regions").
  std::vector<std::vector<uint64_t>> indirect_targets;
  // A region's back edges (and its indirect edges to members) check
  // MemoryContext::exit_request, so that it leaves its loops once the owner
  // dropped translations. Off: they do not. Only for code that no store can
  // invalidate while it runs (the engine turns it off for regions made of
  // guest pages without write permission, docs/engine.md "Exit polls").
  bool exit_polls = true;
  // Keep the guest state in memory restartable. After a guest instruction
  // that stores to guest memory (where a later re-run could see the store)
  // or calls a helper, the registers changed since the previous such point
  // and rip (the next instruction) are stored to the state (a sync point,
  // docs/jit.md "Restartable state"). At any guest access the state then
  // holds an instruction boundary at or before it, and guest memory holds
  // no store made after that boundary, so running the interpreter from the
  // state reaches the faulting access again with the same inputs (loads
  // are re-executed, stores are not repeated).
  // Direct: an owner that catches a host fault on a guest access (no check
  // is emitted) resumes from the state; the sync points are fenced from the
  // guest accesses around them by compiler barriers, and dead loads and
  // no-op stores are kept. SoftMmu: a memory fault that the slow path
  // reports leaves at once, storing nothing, with kExitRestart in the exit
  // code (and the access in MemoryContext::fault_addr / fault_access), so
  // no exit needs the registers and flags of the faulting instruction.
  // Other traps (divide error, trap_if) stay precise.
  bool restartable = false;
  // Direct with `restartable` only. Off: no sync points are stored (no
  // compiler barriers either); dead loads and no-op stores are still kept,
  // so every guest access that should fault still faults, but at a host
  // fault the state holds the unit's entry (or its last helper call), not
  // an instruction boundary near the access, and memory may hold stores
  // made after it. For an owner that only needs the faulting access itself
  // (no guest handler will look at the registers) and handles writes to
  // pages holding translations where they fault (docs/engine.md,
  // "Precise faults on demand").
  bool sync_points = true;
  // Direct only, x86-64 host: guest memory is addressed through the GS
  // segment (`gs:[address & region_mask]`), whose base the owner sets to
  // MemoryContext::guest_base on the thread that runs the code
  // (arch_prctl ARCH_SET_GS), so no register holds the guest base. X86
  // FastISel does not select GS accesses, so only for optimized code.
  bool guest_base_gs = false;
  // Direct only: bytes of host address space below the guest region and
  // above its end that are reserved and never accessible (0: none). A guest
  // address that is a value plus a constant d with |d| < direct_guard - 16
  // is then accessed at guest_base + (value & region_mask) + d: the masked
  // value is shared by every access relative to it (a push sequence, a
  // frame's slots), and an access that leaves the region faults in the
  // guard instead of wrapping around to its other end.
  uint64_t direct_guard = 0;
  // Direct only: the region mask as a constant (the owner's
  // AddressSpace::address_mask(), 2^k - 1), for code that only ever runs
  // over that space. 0: loaded from MemoryContext::region_mask at entry and
  // kept in a register. With a 4 GiB region (0xffffffff) the masking is
  // free or one zero-extending move: x86-64's 32-bit operations clear the
  // upper half, so `(base + index * 8) & mask` is one 32-bit lea.
  uint64_t direct_mask = 0;
  // The function goes to instruction selection as lowered (no IR passes)
  // and through X86 FastISel at -O0 (the JIT's Tier::Fast). The lowering
  // then prefers forms FastISel selects itself: each instruction it
  // rejects costs a SelectionDAG run of its own (jit_compilation_bench: a
  // 2-instruction block, 220 -> 155 us without its one popcount). Parity
  // is computed with shifts and xors; under `restartable`, the loads'
  // keep-alive goes to a volatile stack slot, and the compiler barriers
  // and identity asm are left out, since -O0 without IR passes neither
  // deletes, merges nor moves memory accesses.
  bool fast_isel = false;
  // x86-64 only: the unit has LLVM's preserve_none calling convention (its
  // two arguments in r12 and r13, no register saved for its caller). Chain
  // slots and jump-cache entries then hold entries tagged by convention
  // (kPreserveNoneTag): a chained exit or jump-cache hit tail-calls a
  // tagged entry, and hands an untagged one (a C unit) back to run_unit
  // as under chain_by_return. C++ enters such a unit through run_unit with
  // UnitCall::PreserveNone. Going from one preserve_none unit to the next
  // then saves and restores no callee-saved registers. X86 FastISel does
  // not lower `ret` in this convention (every returning block would go to
  // SelectionDAG), so the JIT uses it for Tier::Optimized units only.
  bool preserve_none = false;
  std::string function_name = "vm_block";
};

// A direct exit's chaining slot: a global `void*` in the lowered module, or a
// word of LoweringOptions::chain_slot_storage.
struct ChainSlot {
  std::string symbol;         // the global's name (empty for a word of chain_slot_storage)
  core::GuestAddr target;     // the guest pc the exit goes to
  void** storage = nullptr;   // the word of chain_slot_storage it uses, if any
};

// Lowers one block (or a region whose blocks' jumps to each other's start_pc
// become internal branches) and prints the LLVM IR module as text. A single
// block always returns after one pass, even when it jumps to its own start;
// a region may loop internally until it leaves the region.
core::Result<std::string> lower_to_llvm_text(const ir::IRBlock& block, const LoweringOptions& options = {});
core::Result<std::string> lower_region_to_llvm_text(std::span<const ir::IRBlock> blocks,
                                                    const LoweringOptions& options = {});

}  // namespace vm::translate
