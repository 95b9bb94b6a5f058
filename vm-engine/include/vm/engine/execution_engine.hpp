// ExecutionEngine: runs one guest thread. It looks up the block at rip in a
// direct-mapped jump cache in front of a hash map, translates on a miss
// (decode -> lift -> IR passes), executes it - in the vm-ir interpreter or as
// JIT-compiled host code - and returns to its caller only for exits it cannot
// handle itself: system calls, traps and faults.
//
// Compiled code reaches guest memory through a vm-mem Tlb (inline hit check,
// refill on a miss), reaches its direct successors through patched chain
// slots and its indirect ones through an inline probe of the jump cache, so
// a hot loop runs without coming back here. In the tiered engine a block is
// interpreted until it is warm, compiled alone at Tier::Fast, and when that
// code has been entered often enough, recompiled at Tier::Optimized together
// with its hot direct successors as one region (loops become LLVM loops).
// Translations are dropped when the guest writes to, unmaps or re-protects
// the pages they came from (self-modifying code). docs/engine.md has the
// details.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "vm/core/x86_state.hpp"
#include "vm/engine/jit.hpp"
#include "vm/engine/tlb_bridge.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/ir.hpp"
#include "vm/mem/address_space.hpp"
#include "vm/mem/tlb.hpp"

namespace vm::engine {

enum class EngineKind : uint8_t { Interp, Jit, Tiered };
const char* engine_kind_name(EngineKind k);

// Stages `vm run --dump` can write: the lifted vm-ir, the vm-ir after the
// IR passes, the LLVM IR of each compile (after the tier's pipeline), the
// host assembly, and the machine code as installed (raw bytes).
enum DumpStage : uint8_t { kDumpIr = 1, kDumpOpt = 2, kDumpLlvm = 4, kDumpAsm = 8, kDumpCode = 16 };
// "ir,opt,llvm,asm,code" (any subset, comma separated) -> DumpStage bits.
std::optional<uint8_t> parse_dump_stages(std::string_view list);

struct EngineConfig {
  EngineKind kind = EngineKind::Interp;
  uint32_t max_block_insns = 64;
  bool run_passes = true;
  // Code cache limit: when more translations exist, the cache is flushed.
  size_t max_blocks = 1u << 16;
  bool trace = false;  // log every block entered (VM_LOG=debug shows it)
  // Tiered: a block is compiled at Tier::Fast after this many interpreted
  // executions, and recompiled at Tier::Optimized after opt_threshold runs.
  uint32_t hot_threshold = 50;
  uint32_t opt_threshold = 1000;
  // Largest region compiled at Tier::Optimized (blocks, vm-ir ops).
  uint32_t max_region_blocks = 64;
  uint32_t max_region_ops = 12000;
  // Region growth (tiered, with chain): a region that the limits above cut
  // short (a block or a called function left out for want of room) counts
  // its entries, and after this many is formed again with room for
  // max_grown_region_blocks blocks, when the background compiler has
  // nothing else to do; the bigger region replaces it. 0: regions never grow.
  uint32_t region_growth_threshold = 200000;
  uint32_t max_grown_region_blocks = 128;
  // Every block of a region is an entry of its code: a member reached from
  // outside the region (the block after a call, reached by ret) runs the
  // region's code instead of its own Tier::Fast code.
  bool region_entries = true;
  // Indirect jumps, indirect calls and returns whose target is a member of
  // their region continue inside the region's code (a jump-table dispatch
  // loop stays in one function), and region formation adds the return site
  // of a call whose callee is already a member (recursion).
  bool region_calls = true;
  // With region_calls: region formation also follows direct calls into
  // their callees (after the caller's own blocks; a callee's blocks all or
  // none) and adds the calls' return sites, so calls and returns stay
  // inside the region. When a callee does not fit in max_region_blocks /
  // max_region_ops, the region stops at calls instead.
  bool region_callees = true;
  // With region_callees: the targets an indirect call took while it was
  // interpreted are taken in like a direct call's callee (all or none).
  bool region_indirect_callees = true;
  // Regions whose blocks all lie in guest pages without write permission
  // are compiled without exit polls (translate::LoweringOptions::exit_polls):
  // no store can invalidate them while they run, and a change of the
  // pages' permissions drops them (docs/engine.md, "Exit polls").
  bool elide_exit_polls = true;
  // Tiered: compile regions on a background thread while the fast code
  // keeps running (on by default when the host has more than one CPU).
  bool background_compile = true;
  // x86-64 hosts: Optimized units use LLVM's preserve_none calling
  // convention, so chained exits and inline jump-cache hits from one to
  // the next save and restore no callee-saved registers
  // (JitOptions::preserve_none; Fast units keep the C convention).
  bool preserve_none = true;
  // Append every compiled block to /tmp/perf-<pid>.map (perf report names them).
  bool perf_map = false;
  // Co-simulation: every compiled block also runs in the interpreter on a
  // copy of the state (its writes kept in an overlay, not in guest memory);
  // registers, flags, exit and written bytes must agree, else run() stops
  // with EngineExit::verify_error. Implies no chaining, single-block units
  // and no background compilation.
  bool verify_jit = false;
  // Translation dumps (vm run --dump): files block_<pc>.<stage> in dump_dir
  // for the stages in dump_stages (DumpStage bits).
  std::string dump_dir;
  uint8_t dump_stages = 0;
  // Link compiled blocks to each other (chain slots, inline jump cache).
  bool chain = true;
  // Over a Direct address space (--mmu direct): compiled code reaches guest
  // memory at guest_base + address with no check, keeps the guest state
  // restartable (translate::LoweringOptions::restartable), and a host fault
  // on a guest page (unmapped, protected, or a write to a page holding
  // translations) sends the engine back to the last synced instruction
  // boundary, from where the interpreter runs until it has made the access
  // itself (and faults precisely, or writes the code page). Off: compiled
  // code checks every access through the software TLB, as over softmmu,
  // and its state is restartable as well: at a memory fault the code
  // leaves without storing the faulting instruction's state, and the
  // interpreter runs from the last synced boundary in the same way.
  bool direct_access = true;
  // Direct access: Optimized code addresses guest memory as gs:[address &
  // mask] with the thread's GS base set to the guest base, so no register
  // holds it (translate::LoweringOptions::guest_base_gs). Off, or when the
  // thread cannot set its GS base: guest_base + (address & mask).
  bool guest_base_gs = true;
  // Direct access: compiled code keeps the guest state precise at every
  // access (sync points, translate::LoweringOptions::sync_points). Off:
  // no sync points until require_precise_faults() is called (vm run calls
  // it when the guest installs a SIGSEGV or SIGBUS handler, the only way a
  // guest sees its registers at a fault). Until then a write of compiled
  // code to a page holding translations is handled where it faults (the
  // translations are dropped and the store goes ahead), and any other
  // guest fault in compiled code is found again by interpreting from the
  // state the code left, which gives its pc (an approximate one, said so,
  // if that run does not reach it). docs/engine.md, "Precise faults on demand".
  bool precise_faults = true;
};

struct EngineStats {
  uint64_t blocks_translated = 0;
  uint64_t blocks_executed = 0;
  uint64_t jump_cache_hits = 0;
  uint64_t map_hits = 0;
  uint64_t invalidations = 0;
  uint64_t cache_flushes = 0;
  uint64_t guest_insns_translated = 0;
  double translate_seconds = 0;
  uint64_t compiled_fast = 0;        // blocks compiled at Tier::Fast
  uint64_t compiled_optimized = 0;   // blocks compiled at Tier::Optimized
  uint64_t compile_failures = 0;     // blocks left to the interpreter
  uint64_t native_executions = 0;    // entries into compiled code from the dispatcher
  uint64_t regions = 0;              // Tier::Optimized regions compiled
  uint64_t region_blocks = 0;        // blocks in them
  uint64_t region_entries = 0;       // members entered through their region's code
  uint64_t region_callees = 0;       // called functions taken into regions (config region_callees)
  uint64_t regions_without_polls = 0;  // regions compiled without exit polls (config elide_exit_polls)
  uint64_t regions_grown = 0;        // regions formed again with the bigger limit (config region_growth_threshold)
  uint64_t chain_links = 0;          // direct exits patched to a compiled successor
  uint64_t tlb_misses = 0;           // softmmu TLB slow-path entries of compiled code
  uint64_t tlb_fills = 0;
  uint64_t tlb_victim_hits = 0;      // ... served by the victim entries (conflicts in the table)
  uint64_t tlb_watch_hits = 0;       // ... writes to pages holding translations
  uint64_t tlb_entries = 0;          // the table's size at the end
  // Why compiled code came back to the dispatcher, by ir::TermKind (Jump:
  // unlinked direct exit or promotion check; IndirectJump/Ret/Call: a jump
  // cache miss; Syscall, Trap).
  std::array<uint64_t, 9> native_exits{};
  uint64_t regions_dropped = 0;      // background regions whose blocks changed before they were ready
  uint64_t verified_blocks = 0;      // --verify-jit: compiled block runs checked
  uint64_t host_faults = 0;          // host faults of Direct-access compiled code, recovered
  uint64_t softmmu_faults = 0;       // memory faults softmmu compiled code left at (kExitRestart)
  uint64_t restart_blocks = 0;       // blocks interpreted after either, up to the faulting access
  uint64_t code_writes = 0;          // writes to code pages handled where they faulted (no sync points)
  uint64_t imprecise_faults = 0;     // guest faults in code without sync points (the process ends)
  uint64_t precise_switches = 0;     // require_precise_faults() calls that dropped the translations
  uint64_t unverified_blocks = 0;    // ... skipped (nondeterministic helpers: rdtsc)
  CompileStats compile;              // summed over all compiles
};

struct EngineExit {
  ir::ExecResult result;  // kind Syscall or Trap (memory fault, trap terminator, fetch fault)
  // verify_jit: the first difference between compiled code and the
  // interpreter (then `result` is the compiled block's exit).
  std::string verify_error;
};

class ExecutionEngine {
public:
  ExecutionEngine(mem::AddressSpace& space, EngineConfig config, const ir::HelperTable& helpers = ir::HelperTable::defaults());
  ~ExecutionEngine();
  ExecutionEngine(const ExecutionEngine&) = delete;
  ExecutionEngine& operator=(const ExecutionEngine&) = delete;

  // Fails only when the JIT cannot be created for a JIT engine kind.
  static core::Result<std::unique_ptr<ExecutionEngine>> create(mem::AddressSpace& space, EngineConfig config,
                                                               const ir::HelperTable& helpers = ir::HelperTable::defaults());

  // Runs from state.rip until a syscall or a trap/fault; returns it.
  EngineExit run(core::X86State& state);

  // Drops translations overlapping [start, start + length).
  void invalidate(core::GuestAddr start, uint64_t length);

  // From now on compiled code keeps precise fault state (see
  // EngineConfig::precise_faults); drops every translation made without.
  // Call it between runs, not from a helper. A no-op when precise already.
  void require_precise_faults();
  // Whether compiled code made from now on keeps precise fault state.
  [[nodiscard]] bool precise_faults() const { return precise_now_; }

  [[nodiscard]] const EngineStats& stats() const;
  // The most executed blocks, for --stats.
  [[nodiscard]] std::vector<std::pair<uint64_t, uint64_t>> hot_blocks(size_t n) const;

private:
  struct Block {
    ir::IRBlock ir;
    uint64_t serial = 0;               // unique per translation (background results are matched by it)
    uint64_t executions = 0;           // dispatcher entries
    // Tier::Fast code of the tiered engine counts its entries in promo[0] and
    // returns to the dispatcher when the count reaches promo[1].
    std::array<uint64_t, 2> promo{0, 0};
    bool region_pending = false;       // a background job for this head is queued or running
    std::vector<uint64_t> pages;       // guest code pages it was translated from
    std::optional<CompiledBlock> compiled;
    JITCompiler* code_owner = nullptr;  // the compiler that made `compiled`
    bool compile_failed = false;
    bool region_requested = false;     // queued, compiled or failed: never asked again
    // Heads a region cut short by the limits whose code counts its entries
    // in promo (config region_growth_threshold) and has not asked to grow yet.
    bool growable = false;
    // Entered through another block's region (config region_entries): its
    // code and the pc of the region's head, which owns that code.
    translate::BlockFn region_entry = nullptr;
    translate::UnitCall region_call = translate::UnitCall::C;  // region_entry's convention
    uint64_t region_head = 0;
    std::vector<uint64_t> entry_members;  // head: members entered through its code
    // Ends with an indirect jump or call: the distinct targets seen while it
    // was interpreted (the first few, kMaxIndirectTargets), for region formation.
    std::vector<uint64_t> indirect_targets;
  };
  static constexpr size_t kMaxIndirectTargets = 16;
  // Where control that reaches `b` goes: a region's entry, else its own code.
  static translate::BlockFn entry_of(const Block& b) { return b.region_entry ? b.region_entry : b.compiled->entry; }
  // entry_of(b)'s calling convention (JitOptions::preserve_none: Optimized
  // code, which region entries are, has preserve_none; Fast code has C).
  static translate::UnitCall call_of(const Block& b) {
    return b.region_entry ? b.region_call : b.compiled->call;
  }
  // `entry` of convention `call` as chain slots and the jump cache hold it:
  // tagged with translate::kPreserveNoneTag when it has preserve_none.
  static translate::BlockFn tagged(translate::BlockFn entry, translate::UnitCall call);
  static void* slot_value(translate::BlockFn entry, translate::UnitCall call) {
    return reinterpret_cast<void*>(tagged(entry, call));
  }
  void point_entries(uint64_t pc, translate::BlockFn entry, translate::UnitCall call);
  void release_entry_members(Block& head);
  struct RegionJob {
    uint64_t head_pc = 0;
    std::vector<std::pair<uint64_t, uint64_t>> members;  // pc, serial
    std::vector<ir::IRBlock> irs;
    bool keep_irs = false;  // past the compile, for --dump
    uint32_t callees = 0;   // functions taken in (region_callees)
    bool grown = false;     // formed with max_grown_region_blocks
    bool growable = false;  // cut short by the limits: counts its entries to grow later
    UnitOptions unit;
    std::optional<core::Result<CompiledBlock>> result;
  };
  class Background;
  class Verifier;
  struct Incoming {  // a chain slot of `owner` that exits to some pc
    void** slot;
    const Block* owner;
  };
  Block* lookup(uint64_t pc);
  Block* translate(uint64_t pc, ir::ExecResult& fault);
  void compile(Block& b, Tier tier);
  RegionJob region_job(Block& head, bool grown = false);
  void request_region(Block& head, bool grown);
  void finish_region(RegionJob& job);
  void install(Block& b, CompiledBlock code, JITCompiler* owner);
  void dump(uint64_t pc, std::string_view suffix, std::string_view text);
  void dump_compiled(std::span<const ir::IRBlock> irs, Tier tier, const UnitOptions& unit);
  void dump_code(const CompiledBlock& c);
  void unlink(Block& b);
  ir::ExecResult run_native(Block& b, core::X86State& state);
  ir::ExecResult interpret_until_accessible(uint64_t page, bool write);
  void retire(std::unique_ptr<Block> b);
  void flush_all();
  void release(std::unique_ptr<Block>& b);
  void free_code(JITCompiler* owner, const CompiledBlock& code);

  mem::AddressSpace* space_;
  EngineConfig config_;
  ir::Interpreter interp_;
  std::unordered_map<uint64_t, std::unique_ptr<Block>> blocks_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> page_blocks_;  // code page -> block pcs
  static constexpr size_t kJumpCacheSize = 4096;
  std::array<std::pair<uint64_t, Block*>, kJumpCacheSize> jump_cache_{};
  // The compiled entries generated code probes at indirect exits.
  std::vector<translate::JumpCacheEntry> native_cache_;
  bool jit_options_gs_ = false;  // Optimized code addresses guest memory through GS (JitOptions::guest_base_gs)
  std::unordered_map<uint64_t, std::vector<Incoming>> incoming_;  // target pc -> slots exiting to it
  mutable EngineStats stats_;
  // Blocks whose page was written while they ran are retired here and freed later.
  std::vector<std::unique_ptr<Block>> retired_;
  std::vector<uint64_t> pending_unwatch_;
  std::unique_ptr<JITCompiler> jit_;
  std::unique_ptr<mem::Tlb> tlb_;
  std::unique_ptr<TlbBridge> bridge_;
  uint64_t listener_ = 0;
  uint64_t next_serial_ = 1;
  std::unique_ptr<Background> background_;  // its own JITCompiler and thread
  std::unique_ptr<Verifier> verifier_;      // verify_jit
  // Direct access (EngineConfig::direct_access over a Direct space). After
  // a host fault, or a memory fault of softmmu code (whose state is
  // restartable too), the next restart_budget_ blocks are interpreted, or
  // fewer: until the faulting page allows the access (restart_page_,
  // restart_write_).
  bool direct_code_ = false;
  uint32_t restart_budget_ = 0;
  uint64_t restart_page_ = 0;
  bool restart_write_ = false;
  bool restart_done() const;
  // Precise fault state (EngineConfig::precise_faults, require_precise_faults).
  bool precise_now_ = true;
  // A host fault of code without sync points: the interpreter's run from
  // the state only looks for the faulting access (restart_addr_).
  bool restart_imprecise_ = false;
  uint64_t restart_addr_ = 0;
  ir::ExecResult imprecise_fault(const core::X86State& state) const;
  static bool on_code_write(void* engine, uint64_t offset);
};

}  // namespace vm::engine
