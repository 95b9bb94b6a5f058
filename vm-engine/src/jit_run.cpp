// GuestMemoryBridge (softmmu slow paths over a core::GuestMemory) and the
// block-at-a-time JIT execution loop, over the bridge or over an
// AddressSpace (Direct with host faults caught, or softmmu through a Tlb).
#include <array>
#include <cerrno>
#include <cfenv>
#include <csetjmp>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>
#include <unordered_map>

#include "host_fault.hpp"
#include "vm/engine/jit.hpp"
#include "vm/engine/tlb_bridge.hpp"
#include "vm/mem/address_space.hpp"
#include "vm/mem/tlb.hpp"

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

// How a compiler's code reaches guest memory: the bridge's slow paths
// (precise faults), or as the execution engine's code over an AddressSpace
// (restartable softmmu through a Tlb, restartable Direct with and without GS).
enum class CodeKind : uint8_t { Bridge, SoftMmu, Direct, DirectGs };
constexpr size_t kCodeKinds = 4;

JitOptions options_for(CodeKind kind) {
  JitOptions jo;
  jo.memory = kind == CodeKind::Direct || kind == CodeKind::DirectGs ? translate::MemoryStrategy::Direct
                                                                      : translate::MemoryStrategy::SoftMmu;
  if (kind != CodeKind::Bridge) jo.restartable = true;
  if (jo.memory == translate::MemoryStrategy::Direct) jo.direct_guard = mem::AddressSpace::kDirectGuard;
  jo.guest_base_gs = kind == CodeKind::DirectGs;
  return jo;
}

// Creating an LLJIT and its target machines costs several times a small
// block's compile, and run_jit is called many times per process (the
// differential tests; a syscall exit returns to the caller). Idle compilers
// are kept for the next call with their code freed, one pool per CodeKind.
// The pools are never destroyed, so no LLVM object outlives LLVM's own
// statics at exit.
struct CompilerLease {
  std::unique_ptr<JITCompiler> jit;
  CodeKind kind = CodeKind::Bridge;
  std::vector<CompiledBlock> units;

  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::unique_ptr<JITCompiler>>& idle(CodeKind kind) {
    static auto* pools = new std::array<std::vector<std::unique_ptr<JITCompiler>>, kCodeKinds>();
    return (*pools)[static_cast<size_t>(kind)];
  }
  static core::Result<CompilerLease> take(CodeKind kind) {
    CompilerLease lease;
    lease.kind = kind;
    {
      std::lock_guard lock(mutex());
      auto& pool = idle(kind);
      if (!pool.empty()) {
        lease.jit = std::move(pool.back());
        pool.pop_back();
        return lease;
      }
    }
    auto jit = JITCompiler::create(options_for(kind));
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
    idle(kind).push_back(std::move(jit));
  }
};

// Where the loop's compiled code finds guest memory.
struct LoopMemory {
  core::GuestMemory& memory;      // what blocks are fetched from, and faults described by
  translate::MemoryContext& ctx;  // what the code gets
  CodeKind kind = CodeKind::Bridge;
  // Direct: the host range whose faults are guest faults (the reservation with its guards).
  uintptr_t fault_lo = 0, fault_hi = 0;
};

// Runs a unit of Direct code with host faults in [lo, hi) caught. False when
// one ended it: the state then holds the last synced instruction boundary.
bool run_catching_host_faults(translate::BlockFn fn, core::X86State& state, translate::MemoryContext& ctx,
                              uintptr_t lo, uintptr_t hi, uint64_t& code) {
  detail::HostFaultScope scope;
  scope.lo = lo;
  scope.hi = hi;
  if (sigsetjmp(scope.env, 0) != 0) {
    detail::current_host_fault_scope() = nullptr;
    std::fesetround(FE_TONEAREST);  // the code may have been running in another mode
    return false;
  }
  detail::current_host_fault_scope() = &scope;
  code = translate::run_unit(fn, &state, &ctx);
  detail::current_host_fault_scope() = nullptr;
  return true;
}

// A block that could not be fetched ends the run as a fault (or an error).
JitRunResult& fetch_failed(JitRunResult& res, const core::Error& e) {
  res.reason = e.code == core::ErrorCode::GuestFault ? JitRunResult::Reason::Fault : JitRunResult::Reason::Error;
  res.fault_addr = e.addr;
  res.message = e.message;
  return res;
}

JitRunResult run_loop(const LoopMemory& lm, core::X86State& state, core::GuestAddr stop_pc, uint64_t max_blocks,
                      const BlockSource& source, Tier tier, const ir::HelperTable& helpers) {
  JitRunResult res;
  auto lease = CompilerLease::take(lm.kind);
  if (!lease) {
    res.reason = JitRunResult::Reason::Error;
    res.message = lease.error().to_string();
    return res;
  }
  JITCompiler& jit = *lease->jit;
  core::GuestMemory& memory = lm.memory;
  translate::MemoryContext& ctx = lm.ctx;
  const bool direct = lm.kind == CodeKind::Direct || lm.kind == CodeKind::DirectGs;
  std::optional<ir::Interpreter> interp;  // restarts only
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
      if (!blk) return fetch_failed(res, blk.error());
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
    uint64_t code = 0;
    bool restart = false;
    if (direct)
      restart = !run_catching_host_faults(it->second.fn, state, ctx, lm.fault_lo, lm.fault_hi, code);
    else
      code = translate::run_unit(it->second.fn, &state, &ctx);
    auto exit = translate::decode_exit(code);
    ++res.blocks;
    if (restart || exit.restart) {
      // The state holds an instruction boundary of this block at or before
      // the faulting access, and memory nothing stored after it: the
      // interpreter runs the block from there (one block, as counted).
      ++res.restarts;
      if (!interp) interp.emplace(memory, helpers);
      res.pc = core::GuestAddr(state.rip);
      auto rest = source(memory, res.pc);
      if (!rest) return fetch_failed(res, rest.error());
      ir::ExecResult r = interp->run(*rest, state);
      if (r.kind == ir::TermKind::Trap) {
        res.pc = r.pc;
        res.trap = r.trap;
        res.message = r.message;
        res.reason = r.trap == ir::TrapReason::MemoryFault ? JitRunResult::Reason::Fault : JitRunResult::Reason::Trap;
        if (r.trap == ir::TrapReason::MemoryFault) res.fault_addr = r.fault_addr;
        return res;
      }
      if (r.kind == ir::TermKind::Syscall) {
        res.reason = JitRunResult::Reason::Syscall;
        return res;
      }
      continue;
    }
    res.pc = core::GuestAddr(state.rip);
    if (exit.kind == ir::TermKind::Trap) {
      res.trap = exit.trap;
      if (exit.trap == ir::TrapReason::MemoryFault) {
        res.reason = JitRunResult::Reason::Fault;
        res.fault_addr = core::GuestAddr(ctx.fault_addr);
        res.message = fault_message(memory, ctx);
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

}  // namespace

JitRunResult run_jit(core::GuestMemory& memory, core::X86State& state, core::GuestAddr stop_pc, uint64_t max_blocks,
                     const BlockSource& source, Tier tier, const ir::HelperTable& helpers) {
  GuestMemoryBridge bridge(memory, helpers);
  return run_loop(LoopMemory{memory, bridge.context()}, state, stop_pc, max_blocks, source, tier, helpers);
}

JitRunResult run_jit(mem::AddressSpace& space, const SpaceAccess& access, core::X86State& state,
                     core::GuestAddr stop_pc, uint64_t max_blocks, const BlockSource& source, Tier tier,
                     const ir::HelperTable& helpers) {
  auto error = [](std::string message) {
    JitRunResult res;
    res.reason = JitRunResult::Reason::Error;
    res.message = std::move(message);
    return res;
  };
  if (access.memory == translate::MemoryStrategy::SoftMmu) {
    std::optional<mem::Tlb> own;
    mem::Tlb& tlb = access.tlb ? *access.tlb : own.emplace(space.page_table());
    TlbBridge bridge(tlb, helpers);
    return run_loop(LoopMemory{space, bridge.context(), CodeKind::SoftMmu}, state, stop_pc, max_blocks, source, tier,
                    helpers);
  }
  if (space.guest_base() == nullptr) return error("direct access needs a Direct address space");
  if (!detail::install_host_fault_handler())
    return error(fmt::format("cannot install the host fault handler: {}", std::strerror(errno)));
  const auto base = reinterpret_cast<uint64_t>(space.guest_base());
  translate::MemoryContext ctx;
  ctx.guest_base = base;
  ctx.region_mask = space.address_mask();
  ctx.helpers = helpers.fns.data();
  LoopMemory lm{space, ctx, CodeKind::Direct};
  if (tier == Tier::Optimized && detail::set_gs_base(base)) lm.kind = CodeKind::DirectGs;
  lm.fault_lo = base - mem::AddressSpace::kDirectGuard;
  lm.fault_hi = base + space.size() + mem::AddressSpace::kDirectGuard;
  return run_loop(lm, state, stop_pc, max_blocks, source, tier, helpers);
}

}  // namespace vm::engine
