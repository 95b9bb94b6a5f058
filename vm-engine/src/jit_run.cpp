// GuestMemoryBridge (softmmu slow paths over a core::GuestMemory) and the
// block-at-a-time JIT execution loop.
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>
#include <unordered_map>

#include "vm/engine/jit.hpp"

namespace vm::engine {

struct BridgeAccess {
  static core::GuestMemory& memory(translate::MemoryContext* mem) {
    return *static_cast<GuestMemoryBridge*>(mem->user)->memory_;
  }
  static uint32_t fault(translate::MemoryContext* mem, const core::Error& e, uint64_t addr, core::Access access) {
    mem->fault_addr = e.addr ? e.addr->value() : addr;
    mem->fault_access = static_cast<uint32_t>(access);
    return 1;
  }
  static uint32_t load(translate::MemoryContext* mem, uint64_t addr, uint64_t size, void* out) {
    auto r = memory(mem).read(core::GuestAddr(addr), std::span<uint8_t>(static_cast<uint8_t*>(out), size));
    return r ? 0 : fault(mem, r.error(), addr, core::Access::Read);
  }
  static uint32_t store(translate::MemoryContext* mem, uint64_t addr, uint64_t size, const void* in) {
    auto r = memory(mem).write(core::GuestAddr(addr), std::span<const uint8_t>(static_cast<const uint8_t*>(in), size));
    return r ? 0 : fault(mem, r.error(), addr, core::Access::Write);
  }
  // Not atomic with respect to other host threads: the bridge serves one guest thread.
  static uint32_t atomic(translate::MemoryContext* mem, uint64_t addr, uint64_t size, uint32_t op, const void* operands,
                         void* old_out) {
    uint8_t old[16] = {}, neu[16] = {};
    if (auto r = memory(mem).read(core::GuestAddr(addr), std::span<uint8_t>(old, size)); !r)
      return fault(mem, r.error(), addr, core::Access::Read);
    const auto* ops = static_cast<const uint8_t*>(operands);
    if (op == translate::kAtomicSlowCmpxchg) {
      std::memcpy(neu, std::memcmp(old, ops, size) == 0 ? ops + 16 : old, size);
    } else {
      uint64_t o = 0, v = 0, n = 0;
      std::memcpy(&o, old, size);
      std::memcpy(&v, ops, size);
      switch (static_cast<ir::RmwOp>(op)) {
        case ir::RmwOp::Xchg: n = v; break;
        case ir::RmwOp::Add: n = o + v; break;
        case ir::RmwOp::Sub: n = o - v; break;
        case ir::RmwOp::And: n = o & v; break;
        case ir::RmwOp::Or: n = o | v; break;
        case ir::RmwOp::Xor: n = o ^ v; break;
      }
      std::memcpy(neu, &n, size);
    }
    if (auto r = memory(mem).write(core::GuestAddr(addr), std::span<const uint8_t>(neu, size)); !r)
      return fault(mem, r.error(), addr, core::Access::Write);
    std::memcpy(old_out, old, size);
    return 0;
  }
};

GuestMemoryBridge::GuestMemoryBridge(core::GuestMemory& memory, const ir::HelperTable& helpers) : memory_(&memory) {
  // One entry whose comparators never match: index_mask 0 makes every access use it.
  tlb_.index_mask = 0;
  tlb_.table = &empty_entry_;
  tlb_.tag = 0;
  ctx_.tlb = &tlb_;
  ctx_.helpers = helpers.fns.data();
  ctx_.load_slow = &BridgeAccess::load;
  ctx_.store_slow = &BridgeAccess::store;
  ctx_.atomic_slow = &BridgeAccess::atomic;
  ctx_.user = this;
}

std::string_view jit_run_reason_name(JitRunResult::Reason r) {
  switch (r) {
    case JitRunResult::Reason::Stop: return "stop";
    case JitRunResult::Reason::Trap: return "trap";
    case JitRunResult::Reason::Fault: return "fault";
    case JitRunResult::Reason::Syscall: return "syscall";
    case JitRunResult::Reason::StepLimit: return "step limit";
    case JitRunResult::Reason::Error: return "error";
  }
  return "?";
}

namespace {

// The memory's own description of a fault (what the interpreter reports).
// The slow paths keep only the address and access kind, so the access is
// repeated for one byte at the faulting address: it fails again without
// effect, since that byte is the first inaccessible one (a write repeats
// the byte's own value, should it ever succeed).
std::string fault_message(core::GuestMemory& memory, const translate::MemoryContext& ctx) {
  core::GuestAddr addr(ctx.fault_addr);
  uint8_t byte = 0;
  auto access = static_cast<core::Access>(ctx.fault_access);
  auto r = memory.read(addr, std::span<uint8_t>(&byte, 1));
  if (access == core::Access::Write) r = memory.write(addr, std::span<const uint8_t>(&byte, 1));
  if (!r) return r.error().message;
  return fmt::format("{} fault", core::access_name(access));
}

// Creating an LLJIT and its target machines costs several times a small
// block's compile, and run_jit is called many times per process (the
// differential tests; a syscall exit returns to the caller). Idle compilers
// are kept for the next call with their code freed. The pool is never
// destroyed, so no LLVM object outlives LLVM's own statics at exit.
struct CompilerLease {
  std::unique_ptr<JITCompiler> jit;
  std::vector<CompiledBlock> units;

  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::unique_ptr<JITCompiler>>& idle() {
    static auto* pool = new std::vector<std::unique_ptr<JITCompiler>>();
    return *pool;
  }
  static core::Result<CompilerLease> take() {
    CompilerLease lease;
    {
      std::lock_guard lock(mutex());
      if (!idle().empty()) {
        lease.jit = std::move(idle().back());
        idle().pop_back();
        return lease;
      }
    }
    JitOptions jo;
    jo.memory = translate::MemoryStrategy::SoftMmu;
    auto jit = JITCompiler::create(jo);
    if (!jit) return std::unexpected(jit.error());
    lease.jit = std::move(*jit);
    return lease;
  }

  CompilerLease() = default;
  CompilerLease(CompilerLease&&) = default;
  CompilerLease& operator=(CompilerLease&&) = delete;
  ~CompilerLease() {
    if (!jit) return;
    bool clean = true;
    for (const auto& u : units) clean = jit->release(u).has_value() && clean;
    // A compiler that could not free its code is dropped rather than reused.
    if (!clean) return;
    std::lock_guard lock(mutex());
    idle().push_back(std::move(jit));
  }
};

}  // namespace

JitRunResult run_jit(core::GuestMemory& memory, core::X86State& state, core::GuestAddr stop_pc, uint64_t max_blocks,
                     const BlockSource& source, Tier tier, const ir::HelperTable& helpers) {
  JitRunResult res;
  auto lease = CompilerLease::take();
  if (!lease) {
    res.reason = JitRunResult::Reason::Error;
    res.message = lease.error().to_string();
    return res;
  }
  JITCompiler& jit = *lease->jit;
  GuestMemoryBridge bridge(memory, helpers);
  // The trap terminator's message is kept with the code so traps read as the interpreter's do.
  struct Entry {
    translate::BlockFn fn;
    ir::Terminator term;
  };
  std::unordered_map<uint64_t, Entry> cache;
  while (true) {
    res.pc = core::GuestAddr(state.rip);
    if (res.pc == stop_pc) {
      res.reason = JitRunResult::Reason::Stop;
      return res;
    }
    if (res.blocks >= max_blocks) {
      res.reason = JitRunResult::Reason::StepLimit;
      return res;
    }
    auto it = cache.find(state.rip);
    if (it == cache.end()) {
      auto blk = source(memory, res.pc);
      if (!blk) {
        res.reason = blk.error().code == core::ErrorCode::GuestFault ? JitRunResult::Reason::Fault
                                                                     : JitRunResult::Reason::Error;
        res.fault_addr = blk.error().addr;
        res.message = blk.error().message;
        return res;
      }
      auto compiled = jit.compile(*blk, tier);
      if (!compiled) {
        res.reason = JitRunResult::Reason::Error;
        res.message = compiled.error().to_string();
        return res;
      }
      lease->units.push_back(*compiled);
      ++res.blocks_compiled;
      ir::Terminator term;
      if (blk->term.kind == ir::TermKind::Trap) term = blk->term;
      it = cache.emplace(state.rip, Entry{compiled->entry, std::move(term)}).first;
    }
    auto exit = translate::decode_exit(translate::run_unit(it->second.fn, &state, &bridge.context()));
    ++res.blocks;
    res.pc = core::GuestAddr(state.rip);
    if (exit.kind == ir::TermKind::Trap) {
      res.trap = exit.trap;
      if (exit.trap == ir::TrapReason::MemoryFault) {
        res.reason = JitRunResult::Reason::Fault;
        res.fault_addr = core::GuestAddr(bridge.context().fault_addr);
        res.message = fault_message(memory, bridge.context());
      } else {
        res.reason = JitRunResult::Reason::Trap;
        const ir::Terminator& term = it->second.term;
        if (exit.trap == ir::TrapReason::DivideError)
          res.message = "divide error";
        else if (term.kind == ir::TermKind::Trap && term.trap == exit.trap && term.target == res.pc)
          res.message = term.message;
        else
          res.message = std::string(ir::trap_reason_name(exit.trap));
      }
      return res;
    }
    if (exit.kind == ir::TermKind::Syscall) {
      res.reason = JitRunResult::Reason::Syscall;
      return res;
    }
  }
}

}  // namespace vm::engine
