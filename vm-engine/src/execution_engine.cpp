#include "vm/engine/execution_engine.hpp"

#include <algorithm>
#include <chrono>

#include "vm/core/log.hpp"
#include "vm/ir/passes.hpp"
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

ExecutionEngine::ExecutionEngine(mem::AddressSpace& space, EngineConfig config, const ir::HelperTable& helpers)
    : space_(&space), config_(config), interp_(space, helpers) {
  // Writes to pages holding translations (self-modifying code) and
  // unmap/protect of them drop the translations.
  space.set_watch_handler([this](core::GuestAddr page) { invalidate(page, 4096); });
  space.add_invalidate_listener([this](core::GuestAddr start, uint64_t length) { invalidate(start, length); });
}

ExecutionEngine::~ExecutionEngine() {
  space_->set_watch_handler(nullptr);
  for (auto& [pc, b] : blocks_) release(b);
  for (auto& b : retired_) release(b);
}

core::Result<std::unique_ptr<ExecutionEngine>> ExecutionEngine::create(mem::AddressSpace& space, EngineConfig config,
                                                                       const ir::HelperTable& helpers) {
  auto engine = std::unique_ptr<ExecutionEngine>(new ExecutionEngine(space, config, helpers));
  if (config.kind != EngineKind::Interp) {
    // Compiled code reaches guest memory through the checked slow paths of
    // the address space (softmmu bridge), so every guest fault is precise.
    JitOptions jo;
    jo.memory = translate::MemoryStrategy::SoftMmu;
    auto jit = JITCompiler::create(jo);
    if (!jit) return std::unexpected(jit.error());
    engine->jit_ = std::move(*jit);
    engine->bridge_ = std::make_unique<GuestMemoryBridge>(space, helpers);
  }
  return engine;
}

void ExecutionEngine::release(std::unique_ptr<Block>& b) {
  if (b && b->compiled && jit_) (void)jit_->release(*b->compiled);
  if (b) b->compiled.reset();
}

void ExecutionEngine::compile(Block& b, Tier tier) {
  auto c = jit_->compile(b.ir, tier);
  if (!c) {
    // The interpreter keeps running this block; the failure is a bug of ours to report.
    VM_LOG_WARN("JIT compile of block {:#x} failed, interpreting it: {}", b.ir.start_pc, c.error().to_string());
    b.compile_failed = true;
    ++stats_.compile_failures;
    return;
  }
  if (b.compiled) (void)jit_->release(*b.compiled);
  const CompileStats& cs = c->stats;
  stats_.compile.lower_us += cs.lower_us;
  stats_.compile.optimize_us += cs.optimize_us;
  stats_.compile.codegen_us += cs.codegen_us;
  stats_.compile.link_us += cs.link_us;
  stats_.compile.code_bytes += cs.code_bytes;
  stats_.compile.ir_instructions += cs.ir_instructions;
  ++(tier == Tier::Fast ? stats_.compiled_fast : stats_.compiled_optimized);
  b.compiled = std::move(*c);
}

ir::ExecResult ExecutionEngine::run_native(Block& b, core::X86State& state) {
  translate::MemoryContext& ctx = bridge_->context();
  translate::ExitInfo exit = execute(*b.compiled, state, ctx);
  ++stats_.native_executions;
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
    } else if (b.ir.term.kind == ir::TermKind::Trap && b.ir.term.target == r.pc) {
      r.message = b.ir.term.message;
    } else if (exit.trap == ir::TrapReason::DivideError) {
      r.message = "divide error";
    }
  }
  return r;
}

std::vector<std::pair<uint64_t, uint64_t>> ExecutionEngine::hot_blocks(size_t n) const {
  std::vector<std::pair<uint64_t, uint64_t>> v;
  for (const auto& [pc, b] : blocks_) v.emplace_back(pc, b->executions);
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  if (v.size() > n) v.resize(n);
  return v;
}

void ExecutionEngine::invalidate(core::GuestAddr start, uint64_t length) {
  uint64_t first = start.value() >> 12, last = (start.value() + (length ? length - 1 : 0)) >> 12;
  if (last - first > 1u << 20) {  // a huge range: cheaper to drop everything
    for (auto& [pc, b] : blocks_) retired_.push_back(std::move(b));
    blocks_.clear();
    page_blocks_.clear();
    jump_cache_.fill({0, nullptr});
    ++stats_.invalidations;
    return;
  }
  bool removed = false;
  for (uint64_t page = first; page <= last; ++page) {
    auto it = page_blocks_.find(page);
    if (it == page_blocks_.end()) continue;
    for (uint64_t pc : it->second) {
      auto b = blocks_.find(pc);
      if (b == blocks_.end()) continue;
      retired_.push_back(std::move(b->second));
      blocks_.erase(b);
      ++stats_.invalidations;
      removed = true;
    }
    page_blocks_.erase(it);
    // The address space may be locked here (we run inside its callbacks):
    // the watch is removed later, from run().
    pending_unwatch_.push_back(page);
  }
  if (removed) jump_cache_.fill({0, nullptr});
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
    for (auto& [bpc, b] : blocks_) retired_.push_back(std::move(b));
    blocks_.clear();
    page_blocks_.clear();
    jump_cache_.fill({0, nullptr});
    ++stats_.cache_flushes;
  }
  auto block = std::make_unique<Block>();
  block->ir = std::move(*lifted);
  for (const ir::Op& op : block->ir.ops) stats_.guest_insns_translated += op.opcode == ir::Opcode::InsnStart;
  if (config_.run_passes) ir::run_standard_passes(block->ir);
  block->first_page = pc >> 12;
  block->last_page = (pc + std::max<uint32_t>(block->ir.guest_len, 1) - 1) >> 12;
  // Watch the code pages before registering the block: turning a watch on
  // notifies the invalidation listeners, which must not drop this block.
  for (uint64_t page = block->first_page; page <= block->last_page; ++page)
    if (page_blocks_.find(page) == page_blocks_.end()) (void)space_->set_write_watch(core::GuestAddr(page << 12), 4096, true);
  Block* raw = block.get();
  blocks_[pc] = std::move(block);
  for (uint64_t page = raw->first_page; page <= raw->last_page; ++page) page_blocks_[page].push_back(pc);
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
    uint64_t pc = state.rip;
    Block* b = lookup(pc);
    if (b == nullptr) {
      ir::ExecResult fault;
      b = translate(pc, fault);
      if (b == nullptr) return EngineExit{fault};
    }
    if (config_.trace) VM_LOG_DEBUG("block {:#x}", pc);
    ++b->executions;
    ++stats_.blocks_executed;
    if (jit_ && !b->compile_failed) {
      if (!b->compiled) {
        if (config_.kind == EngineKind::Jit || b->executions >= config_.hot_threshold) compile(*b, Tier::Fast);
      } else if (b->compiled->tier == Tier::Fast && config_.kind == EngineKind::Tiered &&
                 b->executions >= config_.opt_threshold) {
        compile(*b, Tier::Optimized);
      }
    }
    ir::ExecResult r = b->compiled ? run_native(*b, state) : interp_.run(b->ir, state);
    if (r.kind == ir::TermKind::Syscall || r.kind == ir::TermKind::Trap) return EngineExit{std::move(r)};
  }
}

}  // namespace vm::engine
