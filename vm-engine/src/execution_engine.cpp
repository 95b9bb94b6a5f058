#include "vm/engine/execution_engine.hpp"

#include <algorithm>
#include <cerrno>
#include <cfenv>
#include <chrono>
#include <csetjmp>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "engine_background.hpp"
#include "engine_verifier.hpp"
#include "host_fault.hpp"
#include "vm/core/log.hpp"
#include "vm/ir/passes.hpp"
#include "vm/ir/text.hpp"
#include "vm/translate/x86.hpp"

namespace vm::engine {

const char* engine_kind_name(EngineKind k) {
  switch (k) {
    case EngineKind::Interp: return "interp";
    case EngineKind::Jit: return "jit";
    case EngineKind::Tiered: return "tiered";
  }
  return "?";
}

namespace {
// Blocks interpreted at most after a fault in compiled code before it runs
// again. The access that faulted is usually reached within a few blocks; a
// restart from far back (a loop that only loads) takes several rounds.
constexpr uint32_t kRestartBudget = 10000;
// The same after a guest fault of code without sync points, where the
// interpreter only looks for the faulting access (from as far back as the
// unit's entry) and compiled code does not run again.
constexpr uint32_t kImpreciseBudget = 1000000;

void add_compile_stats(CompileStats& sum, const CompileStats& cs) {
  sum.lower_us += cs.lower_us;
  sum.optimize_us += cs.optimize_us;
  sum.codegen_us += cs.codegen_us;
  sum.link_us += cs.link_us;
  sum.code_bytes += cs.code_bytes;
  sum.ir_instructions += cs.ir_instructions;
}
}  // namespace

std::optional<uint8_t> parse_dump_stages(std::string_view list) {
  uint8_t bits = 0;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (item == "ir") bits |= kDumpIr;
    else if (item == "opt") bits |= kDumpOpt;
    else if (item == "llvm") bits |= kDumpLlvm;
    else if (item == "asm") bits |= kDumpAsm;
    else if (item == "code") bits |= kDumpCode;
    else return std::nullopt;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return bits == 0 ? std::nullopt : std::optional<uint8_t>(bits);
}

void ExecutionEngine::dump(uint64_t pc, std::string_view suffix, std::string_view text) {
  std::string path = fmt::format("{}/block_{:x}.{}", config_.dump_dir, pc, suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) VM_LOG_WARN("cannot write the dump {}", path);
}

// LLVM IR and host assembly of a compile: one block, or a region's blocks
// (head first) compiled as one function.
void ExecutionEngine::dump_compiled(std::span<const ir::IRBlock> irs, Tier tier, const UnitOptions& unit) {
  uint64_t pc = irs[0].start_pc.value();
  auto name = [&](const char* ext) { return fmt::format("{}.{}", tier_name(tier), ext); };
  if (config_.dump_stages & kDumpLlvm) {
    auto t = jit_->dump_region(irs, tier, tier == Tier::Fast ? Stage::Lowered : Stage::Optimized, unit);
    dump(pc, name("ll"), t ? *t : "; " + t.error().to_string() + "\n");
  }
  if (config_.dump_stages & kDumpAsm) {
    auto t = jit_->dump_region(irs, tier, Stage::Assembly, unit);
    dump(pc, name("s"), t ? *t : "# " + t.error().to_string() + "\n");
  }
}

// The machine code of a compile as it runs, from its entry: the perf map
// (--perf-map) gives where each unit ran, so profile samples can be matched
// to these bytes (scripts/jit-profile).
void ExecutionEngine::dump_code(const CompiledBlock& c) {
  std::string_view bytes(reinterpret_cast<const char*>(c.entry), c.code_size);
  dump(c.start_pc.value(), fmt::format("{}.bin", tier_name(c.tier)), bytes);
}

ExecutionEngine::ExecutionEngine(mem::AddressSpace& space, EngineConfig config, const ir::HelperTable& helpers)
    : space_(&space), config_(config), interp_(space, helpers) {
  if (config_.verify_jit) {
    config_.chain = false;
    config_.background_compile = false;
    config_.max_region_blocks = 1;
    if (config_.kind != EngineKind::Interp) verifier_ = std::make_unique<Verifier>(space, helpers);
  }
  // Writes to pages holding translations (self-modifying code) and
  // unmap/protect of them drop the translations; the TLB of compiled code
  // forgets the range too (it is created before the listener can run).
  space.set_watch_handler([this](core::GuestAddr page) { invalidate(page, 4096); });
  if (config.kind != EngineKind::Interp) {
    mem::TlbConfig tc;
    tc.stats = true;  // misses and fills only: inline hits are never counted
    tlb_ = std::make_unique<mem::Tlb>(space.page_table(), tc);
    tlb_->set_watch_handler([this](core::GuestAddr page) { invalidate(page, 4096); });
    bridge_ = std::make_unique<TlbBridge>(*tlb_, helpers);
    native_cache_.resize(kJumpCacheSize);
    bridge_->context().jump_cache = native_cache_.data();
    bridge_->context().jump_cache_mask = kJumpCacheSize - 1;
    if (config_.direct_access && space.guest_base() != nullptr) {
      direct_code_ = true;
      precise_now_ = config_.precise_faults;
      // Stores of compiled code to pages holding translations fault on the
      // host (self-modifying code); the restart's interpreted store then
      // drops the translations through the watch handler.
      space.set_host_protect_watched(true);
      bridge_->context().guest_base = reinterpret_cast<uint64_t>(space.guest_base());
      bridge_->context().region_mask = space.address_mask();
    }
  }
  listener_ = space.add_invalidate_listener([this](core::GuestAddr start, uint64_t length) {
    if (tlb_) tlb_->flush_range(start, length);
    invalidate(start, length);
  });
}

ExecutionEngine::~ExecutionEngine() {
  space_->set_watch_handler(nullptr);
  space_->remove_invalidate_listener(listener_);
  for (auto& [pc, b] : blocks_) release(b);
  for (auto& b : retired_) release(b);
  background_.reset();  // after the blocks: it owns the code of some of them
}

core::Result<std::unique_ptr<ExecutionEngine>> ExecutionEngine::create(mem::AddressSpace& space, EngineConfig config,
                                                                       const ir::HelperTable& helpers) {
  auto engine = std::unique_ptr<ExecutionEngine>(new ExecutionEngine(space, config, helpers));
  config = engine->config_;  // as adjusted (verify_jit)
  if (config.kind != EngineKind::Interp) {
    // Over a Direct space compiled code accesses guest memory unchecked and
    // keeps its state restartable; host faults come back through
    // run_native. Otherwise it goes through the engine's Tlb (softmmu
    // lowering), whose slow path reports faults and watched writes.
    JitOptions jo;
    if (engine->direct_code_) {
      if (!detail::install_host_fault_handler())
        return core::failf(core::ErrorCode::Internal, "cannot install the host fault handler: {}", std::strerror(errno));
      jo.memory = translate::MemoryStrategy::Direct;
      jo.restartable = true;
      jo.direct_guard = mem::AddressSpace::kDirectGuard;
      jo.region_mask = space.address_mask();  // this JIT's code only ever runs over `space`
      // Optimized code reaches guest memory through GS when this thread can
      // set its base (run_native sets it for whichever thread runs code).
      jo.guest_base_gs = config.guest_base_gs && detail::set_gs_base(reinterpret_cast<uint64_t>(space.guest_base()));
    } else {
      jo.memory = translate::MemoryStrategy::SoftMmu;
      jo.restartable = true;  // a fault exit stores nothing: run_native restarts as after a host fault
    }
    jo.chain_exits = config.chain;
    jo.inline_jump_cache = config.chain;
    jo.perf_map = config.perf_map;
#if defined(__x86_64__)
    // Units go from one to the next without saving registers for each
    // other (translate::LoweringOptions::preserve_none).
    jo.preserve_none = config.preserve_none;
#endif
    engine->jit_options_gs_ = jo.guest_base_gs;
    auto jit = JITCompiler::create(jo);
    if (!jit) return std::unexpected(jit.error());
    engine->jit_ = std::move(*jit);
    if (config.kind == EngineKind::Tiered && config.background_compile && config.opt_threshold != 0 &&
        std::thread::hardware_concurrency() > 1) {
      auto bg = JITCompiler::create(jo);
      if (!bg) return std::unexpected(bg.error());
      engine->background_ = std::make_unique<Background>(std::move(*bg));
    }
  }
  return engine;
}

const EngineStats& ExecutionEngine::stats() const {
  if (tlb_) {
    mem::TlbStats t = tlb_->stats();
    stats_.tlb_misses = t.misses;
    stats_.tlb_fills = t.fills;
    stats_.tlb_victim_hits = t.victim_hits;
    stats_.tlb_watch_hits = t.watch_hits;
    stats_.tlb_entries = t.entries;
  }
  return stats_;
}

void ExecutionEngine::free_code(JITCompiler* owner, const CompiledBlock& code) {
  if (background_ && owner == &background_->jit()) {
    background_->release_later(code);
  } else {
    (void)owner->release(code);
  }
}

void ExecutionEngine::release(std::unique_ptr<Block>& b) {
  if (b && b->compiled) free_code(b->code_owner, *b->compiled);
  if (b) b->compiled.reset();
}

translate::BlockFn ExecutionEngine::tagged(translate::BlockFn entry, translate::UnitCall call) {
  if (entry == nullptr || call != translate::UnitCall::PreserveNone) return entry;
  return reinterpret_cast<translate::BlockFn>(reinterpret_cast<uint64_t>(entry) | translate::kPreserveNoneTag);
}

// Points every chain slot that exits to `pc`, and the inline jump cache's
// entry for it, at `entry` of convention `call` (nullptr: unlinked).
void ExecutionEngine::point_entries(uint64_t pc, translate::BlockFn entry, translate::UnitCall call) {
  if (!config_.chain) return;
  if (auto it = incoming_.find(pc); it != incoming_.end())
    for (const Incoming& in : it->second) *in.slot = slot_value(entry, call);
  auto& e = native_cache_[translate::jump_cache_index(pc, kJumpCacheSize - 1)];
  if (entry != nullptr) {
    e = {pc, tagged(entry, call)};
  } else if (e.pc == pc) {
    e = {};
  }
}

// A head's region code is going away: the members it served go back to
// their own code.
void ExecutionEngine::release_entry_members(Block& head) {
  uint64_t head_pc = head.ir.start_pc.value();
  for (uint64_t pc : head.entry_members) {
    auto it = blocks_.find(pc);  // flush_all retires blocks in place: null entries
    if (it == blocks_.end() || !it->second || it->second->region_head != head_pc) continue;
    Block& m = *it->second;
    m.region_entry = nullptr;
    m.region_head = 0;
    point_entries(pc, m.compiled ? m.compiled->entry : nullptr, m.compiled ? m.compiled->call : translate::UnitCall::C);
  }
  head.entry_members.clear();
}

// Detaches b's code from every other compiled block: no chain slot leads to
// it, its own slots lead nowhere (code that is running in it right now
// returns to the dispatcher at its exit), and the inline jump cache forgets it.
void ExecutionEngine::unlink(Block& b) {
  if (!b.compiled) return;
  release_entry_members(b);
  CompiledBlock& c = *b.compiled;
  for (size_t i = 0; i < c.chain_slots.size(); ++i) {
    *c.chain_slots[i] = nullptr;
    auto it = incoming_.find(c.chain_targets[i].value());
    if (it == incoming_.end()) continue;
    std::erase_if(it->second, [&](const Incoming& in) { return in.slot == c.chain_slots[i]; });
    if (it->second.empty()) incoming_.erase(it);
  }
  uint64_t pc = b.ir.start_pc.value();
  if (auto it = incoming_.find(pc); it != incoming_.end())
    for (const Incoming& in : it->second) *in.slot = nullptr;
  if (!native_cache_.empty()) {
    auto& e = native_cache_[translate::jump_cache_index(pc, kJumpCacheSize - 1)];
    if (e.pc == pc) e = {};
  }
}

// Makes `code` the block's translation and links it both ways.
void ExecutionEngine::install(Block& b, CompiledBlock code, JITCompiler* owner) {
  if (b.compiled) {
    unlink(b);
    free_code(b.code_owner, *b.compiled);
  }
  b.compiled = std::move(code);
  b.code_owner = owner;
  b.region_entry = nullptr;  // its own new code wins over another region's entry
  b.region_head = 0;
  CompiledBlock& c = *b.compiled;
  uint64_t pc = b.ir.start_pc.value();
  if (config_.chain) {
    for (size_t i = 0; i < c.chain_slots.size(); ++i) {
      uint64_t target = c.chain_targets[i].value();
      incoming_[target].push_back({c.chain_slots[i], &b});
      if (target == pc) continue;  // patched below with the others
      auto it = blocks_.find(target);
      if (it != blocks_.end() && it->second->compiled) {
        *c.chain_slots[i] = slot_value(entry_of(*it->second), call_of(*it->second));
        ++stats_.chain_links;
      }
    }
    if (auto it = incoming_.find(pc); it != incoming_.end())
      for (const Incoming& in : it->second) {
        *in.slot = slot_value(c.entry, c.call);
        ++stats_.chain_links;
      }
    native_cache_[translate::jump_cache_index(pc, kJumpCacheSize - 1)] = {pc, tagged(c.entry, c.call)};
  }
}

void ExecutionEngine::compile(Block& b, Tier tier) {
  UnitOptions unit;
  unit.sync_points = precise_now_;
  // Chained code bypasses the dispatcher, so it counts its own entries;
  // unchained code is counted by the dispatcher (Block::executions).
  if (config_.kind == EngineKind::Tiered && tier == Tier::Fast && config_.opt_threshold != 0 && config_.chain) {
    b.promo = {0, config_.opt_threshold};
    unit.entry_counter = b.promo.data();
  }
  auto c = jit_->compile_region(std::span<const ir::IRBlock>(&b.ir, 1), tier, unit);
  if (!c) {
    // The interpreter keeps running this block; the failure is a bug of ours to report.
    VM_LOG_WARN("JIT compile of block {:#x} failed, interpreting it: {}", b.ir.start_pc, c.error().to_string());
    b.compile_failed = true;
    ++stats_.compile_failures;
    return;
  }
  add_compile_stats(stats_.compile, c->stats);
  ++(tier == Tier::Fast ? stats_.compiled_fast : stats_.compiled_optimized);
  if (config_.dump_stages & kDumpCode) dump_code(*c);
  install(b, std::move(*c), jit_.get());
  if (config_.dump_stages & (kDumpLlvm | kDumpAsm)) dump_compiled(std::span<const ir::IRBlock>(&b.ir, 1), tier, unit);
}

// Asks for head's region (grown: its bigger second one), on the background
// thread when there is one.
void ExecutionEngine::request_region(Block& head, bool grown) {
  if (background_) {
    head.region_pending = true;
    background_->submit(region_job(head, grown));
    return;
  }
  RegionJob job = region_job(head, grown);
  job.result = jit_->compile_region(job.irs, Tier::Optimized, job.unit);
  finish_region(job);
}

// Installs a compiled region, unless a block it was made from has been
// dropped or retranslated since the job was made (then the code is freed).
void ExecutionEngine::finish_region(RegionJob& job) {
  JITCompiler* owner = background_ ? &background_->jit() : jit_.get();
  if (auto it = blocks_.find(job.head_pc); it != blocks_.end() && it->second->serial == job.members[0].second) {
    it->second->region_pending = false;
    it->second->promo[1] = UINT64_MAX;  // its code has nothing more to ask
  }
  if (!*job.result) {
    VM_LOG_WARN("JIT region compile at {:#x} failed, keeping the fast code: {}", job.head_pc,
                job.result->error().to_string());
    ++stats_.compile_failures;
    return;
  }
  CompiledBlock& code = **job.result;
  std::vector<Block*> members;
  for (const auto& [pc, serial] : job.members) {
    auto it = blocks_.find(pc);
    if (it == blocks_.end() || it->second->serial != serial) break;
    members.push_back(it->second.get());
  }
  if (members.size() != job.members.size() || !members[0]->compiled) {
    free_code(owner, code);
    ++stats_.regions_dropped;
    return;
  }
  Block& head = *members[0];
  add_compile_stats(stats_.compile, code.stats);
  ++stats_.compiled_optimized;
  ++stats_.regions;
  stats_.region_blocks += members.size();
  stats_.region_callees += job.callees;
  stats_.regions_without_polls += !job.unit.exit_polls;
  // The region is part of the head block now: a write to any member's code
  // must drop it too.
  for (size_t i = 1; i < members.size(); ++i)
    for (uint64_t page : members[i]->pages)
      if (std::find(head.pages.begin(), head.pages.end(), page) == head.pages.end()) {
        head.pages.push_back(page);
        page_blocks_[page].push_back(job.head_pc);
      }
  stats_.regions_grown += job.grown;
  if (config_.dump_stages & kDumpCode) dump_code(code);
  install(head, std::move(code), owner);
  // A region cut short counts its entries from now on (in the words its
  // head's Fast code counted in), to grow once it has proved hot.
  head.growable = job.growable;
  if (job.growable) head.promo = {0, config_.region_growth_threshold};
  if (config_.region_entries) {
    // Members with their own Fast code that are entries of the region
    // (UnitOptions::entry_pcs) enter through it from now on (a member that
    // heads an Optimized region of its own keeps that).
    const auto& listed = job.unit.entry_pcs;
    for (size_t i = 1; i < members.size(); ++i) {
      Block& m = *members[i];
      if (!m.compiled || m.compiled->tier != Tier::Fast) continue;
      if (!listed.empty() && !std::binary_search(listed.begin(), listed.end(), m.ir.start_pc.value())) continue;
      m.region_entry = head.compiled->entry;
      m.region_call = head.compiled->call;
      m.region_head = job.head_pc;
      head.entry_members.push_back(m.ir.start_pc.value());
      point_entries(m.ir.start_pc.value(), m.region_entry, m.region_call);
      ++stats_.region_entries;
    }
  }
  if (job.keep_irs) dump_compiled(job.irs, Tier::Optimized, job.unit);
}

ir::ExecResult ExecutionEngine::run_native(Block& b, core::X86State& state) {
  translate::MemoryContext& ctx = bridge_->context();
  translate::ExitInfo exit;
  if (direct_code_) {
    detail::HostFaultScope scope;
    // The reservation with its guards (compiled code may touch a guard).
    scope.lo = reinterpret_cast<uintptr_t>(space_->guest_base()) - mem::AddressSpace::kDirectGuard;
    scope.hi = reinterpret_cast<uintptr_t>(space_->guest_base()) + space_->size() + mem::AddressSpace::kDirectGuard;
    if (sigsetjmp(scope.env, 0) != 0) {
      // A guest access faulted on the host. The state holds the last synced
      // instruction boundary (rip included) and memory nothing stored
      // after it: the interpreter carries on from there.
      detail::current_host_fault_scope() = nullptr;
      std::fesetround(FE_TONEAREST);  // the code may have been running in another mode
      ++stats_.host_faults;
      uint64_t guest = scope.fault_offset - mem::AddressSpace::kDirectGuard;  // wraps below the region
      if (!precise_now_) {
        // No sync points: the state is the unit's entry (or its last helper
        // call) and memory may hold later stores. Only a guest fault that
        // kills the process gets here (a handler would have made the code
        // precise; code-page writes went through on_code_write), so the
        // interpreter only has to find the access again, for its pc.
        ++stats_.imprecise_faults;
        restart_imprecise_ = true;
        restart_addr_ = guest;
      }
      // A guard's page lies outside the page table: never "done", so the
      // interpreter runs the restart budget out before compiled code again.
      ir::ExecResult r = interpret_until_accessible(guest >> 12, scope.write);
      if (restart_imprecise_) restart_budget_ = kImpreciseBudget;
      return r;
    }
    if (!precise_now_) {
      scope.on_write = &ExecutionEngine::on_code_write;
      scope.on_write_ctx = this;
    }
    // Optimized code addresses guest memory through GS (guest_base_gs): the
    // base must be this space's on this thread. Should a thread refuse it,
    // the interpreter runs instead, as after a host fault on a page that
    // never becomes accessible (restart_done is false for page ~0 >> 12).
    if (jit_options_gs_ && !detail::set_gs_base(ctx.guest_base)) {
      static std::once_flag once;
      std::call_once(once, [] { VM_LOG_ERROR("cannot set the GS base of this thread ({}); interpreting", std::strerror(errno)); });
      return interpret_until_accessible(~uint64_t{0} >> 12, false);
    }
    detail::current_host_fault_scope() = &scope;
    exit = translate::decode_exit(translate::run_unit(entry_of(b), &state, &ctx, call_of(b)));
    detail::current_host_fault_scope() = nullptr;
  } else {
    exit = translate::decode_exit(translate::run_unit(entry_of(b), &state, &ctx, call_of(b)));
    if (exit.restart) {
      // A memory fault; the state holds the last synced boundary, from
      // where the interpreter makes the access itself (restart_done as
      // for a host fault).
      ++stats_.native_executions;
      ++stats_.softmmu_faults;
      return interpret_until_accessible(ctx.fault_addr >> 12,
                                        static_cast<core::Access>(ctx.fault_access) == core::Access::Write);
    }
  }
  ++stats_.native_executions;
  ++stats_.native_exits[static_cast<size_t>(exit.kind) % stats_.native_exits.size()];
  ir::ExecResult r;
  r.kind = exit.kind;
  if (exit.kind == ir::TermKind::Trap) {
    r.trap = exit.trap;
    r.vector = exit.vector;
    r.pc = core::GuestAddr(state.rip);
    if (exit.trap == ir::TrapReason::MemoryFault) {
      r.fault_addr = core::GuestAddr(ctx.fault_addr);
      r.fault_access = static_cast<core::Access>(ctx.fault_access);
      r.message = space_->is_mapped(*r.fault_addr) ? "access to memory with permissions" : "access to unmapped memory";
    } else if (exit.trap == ir::TrapReason::DivideError) {
      r.message = "divide error";
    } else {
      // A trap terminator, maybe of a block chained to from b: its message
      // (e.g. the unsupported mnemonic) comes from decoding the pc again.
      translate::BlockOptions one;
      one.max_insns = 1;
      if (auto t = translate::decode_block(*space_, r.pc, one); t && t->term.kind == ir::TermKind::Trap)
        r.message = t->term.message;
    }
  }
  return r;
}

// After a restart (a host or slow-path fault, or no way to run compiled
// code): the dispatcher interprets from the state until `page` allows the
// access (restart_done) or the budget runs out.
ir::ExecResult ExecutionEngine::interpret_until_accessible(uint64_t page, bool write) {
  restart_page_ = page;
  restart_write_ = write;
  restart_budget_ = kRestartBudget;
  ir::ExecResult r;
  r.kind = ir::TermKind::Jump;
  return r;
}

// The access that faulted on the host would now succeed (e.g. the code page
// it wrote is no longer watched), so compiled code may run again.
bool ExecutionEngine::restart_done() const {
  mem::PageEntry e = space_->page_table().get(restart_page_);
  if (!e.present()) return false;
  if (restart_write_) return (e.perms & core::kPermWrite) != 0 && (e.flags & mem::kPageWatchWrite) == 0;
  return (e.perms & core::kPermRead) != 0;
}

// A guest fault of code without sync points that the interpreter did not
// reach again from the state: the host's fault address, and the pc where
// the search stopped, said to be approximate.
ir::ExecResult ExecutionEngine::imprecise_fault(const core::X86State& state) const {
  ir::ExecResult r;
  r.kind = ir::TermKind::Trap;
  r.trap = ir::TrapReason::MemoryFault;
  r.pc = core::GuestAddr(state.rip);
  r.fault_addr = core::GuestAddr(restart_addr_);
  r.fault_access = restart_write_ ? core::Access::Write : core::Access::Read;
  r.message = fmt::format("{}; pc approximate",
                          space_->is_mapped(core::GuestAddr(restart_addr_)) ? "access to memory with permissions"
                                                                             : "access to unmapped memory");
  return r;
}

// The host fault handler, for code without sync points: a write to a
// guest-writable page that holds translations (self-modifying code). The
// translations go (running code leaves at its next exit, as after any
// invalidation: retired blocks are freed from run()), the page stops being
// watched and so becomes writable on the host, and the store runs again.
bool ExecutionEngine::on_code_write(void* engine, uint64_t offset) {
  auto* self = static_cast<ExecutionEngine*>(engine);
  if (offset < mem::AddressSpace::kDirectGuard) return false;
  uint64_t guest = offset - mem::AddressSpace::kDirectGuard;
  mem::PageEntry e = self->space_->page_table().get(guest >> 12);
  if (!e.present() || (e.perms & core::kPermWrite) == 0 || (e.flags & mem::kPageWatchWrite) == 0) return false;
  core::GuestAddr page(guest & ~uint64_t{4095});
  self->invalidate(page, 4096);
  if (!self->space_->set_write_watch(page, 4096, false)) return false;
  ++self->stats_.code_writes;
  return true;
}

void ExecutionEngine::require_precise_faults() {
  if (precise_now_) return;
  precise_now_ = true;
  if (!blocks_.empty()) {
    ++stats_.precise_switches;
    stats_.invalidations += blocks_.size();
    flush_all();
  }
}

std::vector<std::pair<uint64_t, uint64_t>> ExecutionEngine::hot_blocks(size_t n) const {
  std::vector<std::pair<uint64_t, uint64_t>> v;
  for (const auto& [pc, b] : blocks_) v.emplace_back(pc, b->executions + b->promo[0]);
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  if (v.size() > n) v.resize(n);
  return v;
}

void ExecutionEngine::retire(std::unique_ptr<Block> b) {
  unlink(*b);
  retired_.push_back(std::move(b));
}

void ExecutionEngine::flush_all() {
  for (auto& [pc, b] : blocks_) retire(std::move(b));
  blocks_.clear();
  page_blocks_.clear();
  incoming_.clear();
  jump_cache_.fill({0, nullptr});
  std::fill(native_cache_.begin(), native_cache_.end(), translate::JumpCacheEntry{});
  if (bridge_) bridge_->context().exit_request = 1;
}

void ExecutionEngine::invalidate(core::GuestAddr start, uint64_t length) {
  uint64_t first = start.value() >> 12, last = (start.value() + (length ? length - 1 : 0)) >> 12;
  if (last - first > 1u << 20) {  // a huge range: cheaper to drop everything
    stats_.invalidations += blocks_.size();
    flush_all();
    return;
  }
  bool removed = false;
  for (uint64_t page = first; page <= last; ++page) {
    auto it = page_blocks_.find(page);
    if (it == page_blocks_.end()) continue;
    std::vector<uint64_t> pcs = std::move(it->second);
    page_blocks_.erase(it);
    for (uint64_t pc : pcs) {
      auto b = blocks_.find(pc);
      if (b == blocks_.end()) continue;
      std::unique_ptr<Block> dead = std::move(b->second);
      blocks_.erase(b);
      retire(std::move(dead));
      ++stats_.invalidations;
      removed = true;
    }
    // The address space may be locked here (we run inside its callbacks):
    // the watch is removed later, from run().
    pending_unwatch_.push_back(page);
  }
  if (removed) {
    jump_cache_.fill({0, nullptr});
    // Compiled code that is running leaves its region at the next internal edge.
    if (bridge_) bridge_->context().exit_request = 1;
  }
}

ExecutionEngine::Block* ExecutionEngine::lookup(uint64_t pc) {
  auto& slot = jump_cache_[(pc ^ (pc >> 12)) & (kJumpCacheSize - 1)];
  if (slot.first == pc && slot.second != nullptr) {
    ++stats_.jump_cache_hits;
    return slot.second;
  }
  auto it = blocks_.find(pc);
  if (it == blocks_.end()) return nullptr;
  ++stats_.map_hits;
  slot = {pc, it->second.get()};
  return it->second.get();
}

ExecutionEngine::Block* ExecutionEngine::translate(uint64_t pc, ir::ExecResult& fault) {
  auto t0 = std::chrono::steady_clock::now();
  translate::BlockOptions opts;
  opts.max_insns = config_.max_block_insns;
  auto lifted = translate::decode_block(*space_, core::GuestAddr(pc), opts);
  if (!lifted) {
    // The first instruction cannot be fetched: an instruction-fetch fault at pc.
    fault.kind = ir::TermKind::Trap;
    fault.trap = ir::TrapReason::MemoryFault;
    fault.pc = core::GuestAddr(pc);
    fault.fault_addr = lifted.error().addr ? lifted.error().addr : core::GuestAddr(pc);
    fault.fault_access = core::Access::Fetch;
    fault.message = lifted.error().message;
    return nullptr;
  }
  if (blocks_.size() >= config_.max_blocks) {
    flush_all();
    ++stats_.cache_flushes;
  }
  auto block = std::make_unique<Block>();
  block->serial = next_serial_++;
  block->ir = std::move(*lifted);
  // A rep stos lifted in two steps has two markers at its pc; count it once.
  uint64_t last_marker = ~uint64_t{0};
  for (const ir::Op& op : block->ir.ops) {
    if (op.opcode != ir::Opcode::InsnStart) continue;
    stats_.guest_insns_translated += op.imm != last_marker;
    last_marker = op.imm;
  }
  if (config_.dump_stages & kDumpIr) dump(pc, "ir", ir::print(block->ir));
  if (config_.run_passes) ir::run_standard_passes(block->ir);
  if (config_.dump_stages & kDumpOpt) dump(pc, "opt.ir", ir::print(block->ir));
  uint64_t first_page = pc >> 12, last_page = (pc + std::max<uint32_t>(block->ir.guest_len, 1) - 1) >> 12;
  for (uint64_t page = first_page; page <= last_page; ++page) block->pages.push_back(page);
  // Watch the code pages before registering the block: turning a watch on
  // notifies the invalidation listeners, which must not drop this block.
  for (uint64_t page : block->pages)
    if (page_blocks_.find(page) == page_blocks_.end()) (void)space_->set_write_watch(core::GuestAddr(page << 12), 4096, true);
  Block* raw = block.get();
  blocks_[pc] = std::move(block);
  for (uint64_t page : raw->pages) page_blocks_[page].push_back(pc);
  ++stats_.blocks_translated;
  stats_.translate_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return raw;
}

EngineExit ExecutionEngine::run(core::X86State& state) {
  for (;;) {
    if (!retired_.empty()) {  // no block is running here
      for (auto& b : retired_) release(b);
      retired_.clear();
    }
    for (uint64_t page : pending_unwatch_)
      if (page_blocks_.find(page) == page_blocks_.end())
        (void)space_->set_write_watch(core::GuestAddr(page << 12), 4096, false);
    pending_unwatch_.clear();
    if (bridge_) bridge_->context().exit_request = 0;
    if (background_ && background_->has_results())
      for (RegionJob& job : background_->collect()) finish_region(job);
    uint64_t pc = state.rip;
    Block* b = lookup(pc);
    if (b == nullptr) {
      ir::ExecResult fault;
      b = translate(pc, fault);
      if (b == nullptr) return EngineExit{fault, {}};
    }
    if (config_.trace) VM_LOG_DEBUG("block {:#x}", pc);
    // After a host fault: interpret until the faulting access was made.
    bool restarting = restart_budget_ != 0 && !restart_done();
    if (restart_imprecise_ && !restarting) {  // the run did not find the access again
      restart_imprecise_ = false;
      restart_budget_ = 0;
      return EngineExit{imprecise_fault(state), {}};
    }
    if (restarting) {
      --restart_budget_;
      ++stats_.restart_blocks;
      ir::ExecResult r = interp_.run(b->ir, state);
      if (r.kind == ir::TermKind::Syscall || r.kind == ir::TermKind::Trap) {
        restart_budget_ = 0;
        if (restart_imprecise_) {
          // Anything but a memory fault (a system call, above all) would be
          // the run's own doing from a state the guest never had: not made.
          // So would a fault elsewhere than where the host saw it (within
          // the access: a page crossing faults on its second page). The
          // host saw either the guest's address or, for one beyond the
          // space, its alias masked into the space; the interpreter's is
          // the guest's own and is the one kept.
          restart_imprecise_ = false;
          auto seen_by_host = [&](uint64_t a) { return restart_addr_ - a < 4096; };
          if (r.kind != ir::TermKind::Trap || r.trap != ir::TrapReason::MemoryFault || !r.fault_addr ||
              !(seen_by_host(r.fault_addr->value()) || seen_by_host(r.fault_addr->value() & space_->address_mask())))
            r = imprecise_fault(state);
        }
        return EngineExit{std::move(r), {}};
      }
      continue;
    }
    restart_budget_ = 0;
    ++b->executions;
    ++stats_.blocks_executed;
    if (jit_ && !b->compile_failed) {
      if (!b->compiled) {
        if (config_.kind == EngineKind::Jit || b->executions >= config_.hot_threshold) compile(*b, Tier::Fast);
      } else if (b->compiled->tier == Tier::Fast && config_.kind == EngineKind::Tiered && config_.opt_threshold != 0 &&
                 (config_.chain ? b->promo[0] >= b->promo[1] : b->executions >= config_.opt_threshold)) {
        if (!b->region_requested) {
          b->region_requested = true;
          request_region(*b, false);
        }
        // A head waiting for its background region comes back now and then
        // (its loop may never leave compiled code otherwise); a block that
        // another region covers, or whose region failed, never again. (A
        // region compiled here is installed already and set its own count.)
        if (b->compiled->tier == Tier::Fast)
          b->promo[1] = b->region_pending ? b->promo[0] + config_.opt_threshold : UINT64_MAX;
      }
      if (b->compiled && config_.chain && (b->compiled->tier == Tier::Optimized || b->region_entry)) {
        // Region growth: the region's code (entered at b, its head or a
        // member) came back because its count of entries reached due.
        Block* h = b;
        if (b->region_entry) {
          auto it = blocks_.find(b->region_head);
          h = it != blocks_.end() ? it->second.get() : nullptr;
        }
        if (h && h->compiled && h->compiled->tier == Tier::Optimized && h->promo[0] >= h->promo[1] &&
            (h->growable || h->region_pending)) {
          // The bigger region waits for a background compiler with nothing
          // else to do: regions still warming up come first.
          if (h->growable && (!background_ || background_->idle())) {
            h->growable = false;
            request_region(*h, true);
          }
          // Back again later: to ask once the compiler is idle, or to have
          // the bigger region installed (a loop may never leave the code).
          h->promo[1] = h->growable || h->region_pending ? h->promo[0] + config_.opt_threshold : UINT64_MAX;
        }
      }
    }
    if (b->compiled && config_.chain)  // an inline probe missed it (e.g. a colliding pc took its entry)
      native_cache_[translate::jump_cache_index(pc, kJumpCacheSize - 1)] = {pc, tagged(entry_of(*b), call_of(*b))};
    ir::ExecResult r;
    if (b->compiled && verifier_) {
      bool deterministic = std::none_of(b->ir.ops.begin(), b->ir.ops.end(), [](const ir::Op& op) {
        return op.opcode == ir::Opcode::CallHelper && (op.aux == static_cast<uint32_t>(ir::Helper::Rdtsc) ||
                                                        op.aux == static_cast<uint32_t>(ir::Helper::Rdtscp));
      });
      core::X86State expect = state;
      ir::ExecResult want;
      if (deterministic) want = verifier_->run(b->ir, expect);
      Tier tier = b->compiled->tier;
      r = run_native(*b, state);
      if (restart_budget_ != 0) {
        // A fault (host or softmmu): the interpreter takes over from the synced state
        // (the comparison would be against a block that did not finish).
        continue;
      }
      if (!deterministic) {
        ++stats_.unverified_blocks;
      } else if (std::string diff = verifier_->compare(want, expect, r, state); !diff.empty()) {
        return EngineExit{std::move(r), fmt::format("block {:#x} ({} tier) differs from the interpreter: {}", pc,
                                                    tier_name(tier), diff)};
      } else {
        ++stats_.verified_blocks;
      }
    } else if (b->compiled) {
      r = run_native(*b, state);
    } else {
      r = interp_.run(b->ir, state);
      bool indirect = r.kind == ir::TermKind::IndirectJump ||
                      (r.kind == ir::TermKind::Call && b->ir.term.value != ir::kNoValue);
      if (indirect && b->indirect_targets.size() < kMaxIndirectTargets &&
          std::find(b->indirect_targets.begin(), b->indirect_targets.end(), state.rip) == b->indirect_targets.end())
        b->indirect_targets.push_back(state.rip);
    }
    if (r.kind == ir::TermKind::Syscall || r.kind == ir::TermKind::Trap) return EngineExit{std::move(r), {}};
  }
}

}  // namespace vm::engine
