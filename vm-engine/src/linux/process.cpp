#include "vm/engine/linux/process.hpp"

#include <signal.h>
#include <sys/syscall.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

#include "vm/core/log.hpp"
#include "vm/engine/linux/elf_loader.hpp"
#include "vm/engine/linux/syscalls.hpp"

namespace vm::engine::linux {
namespace {

using core::GuestAddr;

// Kernel signal-frame structures for x86-64 (arch/x86/include/uapi/asm/sigcontext.h
// and ucontext.h); the guest's libc reads them through its own definitions.
struct KSigcontext {
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2, fpstate;
  uint64_t reserved1[8];
};
struct KStack {
  uint64_t ss_sp;
  int32_t ss_flags;
  int32_t pad;
  uint64_t ss_size;
};
struct KUcontext {
  uint64_t uc_flags;
  uint64_t uc_link;
  KStack uc_stack;
  KSigcontext mcontext;
  uint64_t sigmask;
};
struct KSiginfo {
  int32_t si_signo, si_errno, si_code, pad;
  uint64_t fault_address;  // si_addr for SIGSEGV/SIGILL/SIGFPE/SIGTRAP: faulting address
  uint8_t rest[128 - 24];
};
// The FXSAVE image the frame's fpstate points at (x87 control/status/tags/registers, mxcsr, xmm).
struct KFxsave {
  uint16_t cwd, swd, twd, fop;
  uint64_t rip, rdp;
  uint32_t mxcsr, mxcsr_mask;
  uint8_t st_space[128];
  core::Xmm xmm[16];
  uint8_t padding[96];
};
static_assert(sizeof(KSigcontext) == 256 && sizeof(KUcontext) == 304 && sizeof(KSiginfo) == 128 && sizeof(KFxsave) == 512);

constexpr uint64_t kSaSiginfo = 4, kSaRestorer = 0x04000000, kSaNodefer = 0x40000000, kSaResethand = 0x80000000;

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGTRAP: return "SIGTRAP";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    default: return "signal";
  }
}

struct Fault {
  int sig = 0;
  int code = 0;
  uint64_t addr = 0;     // si_addr
  uint64_t resume_pc = 0;
  std::string detail;    // for the crash line
};

Fault classify(const ir::ExecResult& r) {
  Fault f;
  f.resume_pc = r.pc.value();
  f.addr = r.pc.value();
  switch (r.trap) {
    case ir::TrapReason::MemoryFault:
      f.sig = SIGSEGV;
      f.code = 1;  // SEGV_MAPERR; ACCERR needs the mapping state, see below
      f.addr = r.fault_addr ? r.fault_addr->value() : 0;
      f.detail = fmt::format("access to {:#x}", f.addr);
      // Code without sync points did not lead the interpreter back to the
      // faulting access (ExecutionEngine::imprecise_fault).
      if (r.message.ends_with("pc approximate")) f.detail += ", pc approximate";
      if (r.message.find("permissions") != std::string::npos) f.code = 2;  // SEGV_ACCERR
      break;
    case ir::TrapReason::DivideError:
      f.sig = SIGFPE;
      f.code = 1;  // FPE_INTDIV
      f.detail = "divide error";
      break;
    case ir::TrapReason::Breakpoint:
      f.sig = SIGTRAP;
      f.code = 0x80;  // SI_KERNEL
      f.resume_pc = r.pc.value() + 1;  // the kernel reports rip after int3
      f.detail = "breakpoint";
      break;
    case ir::TrapReason::InvalidOpcode:
      f.sig = SIGILL;
      f.code = 2;  // ILL_ILLOPN
      f.detail = r.message.empty() ? "invalid opcode" : r.message;
      break;
    case ir::TrapReason::Unsupported:
      f.sig = SIGILL;
      f.code = 2;
      f.detail = r.message.empty() ? "unsupported instruction" : r.message;
      break;
    case ir::TrapReason::Halt:
    case ir::TrapReason::Interrupt:
    case ir::TrapReason::GeneralProtection:
      f.sig = SIGSEGV;
      f.code = 0x80;  // SI_KERNEL
      f.addr = 0;
      f.detail = r.message.empty() ? "general protection" : r.message;
      break;
  }
  return f;
}

class Process {
public:
  Process(std::unique_ptr<mem::AddressSpace> space, std::unique_ptr<ExecutionEngine> engine, const ProcessOptions& options,
          std::string exe)
      : space_(std::move(space)), syscalls_(*space_, std::move(exe)), engine_ptr_(std::move(engine)), engine_(*engine_ptr_),
        options_(options) {}

  core::X86State& state() { return state_; }
  mem::AddressSpace& space() { return *space_; }

  int run() {
    for (;;) {
      EngineExit exit = engine_.run(state_);
      if (!exit.verify_error.empty()) {
        std::fprintf(stderr, "vm: --verify-jit: %s\n", exit.verify_error.c_str());
        std::fflush(stderr);
        return finish(kVerifyFailedStatus);
      }
      const ir::ExecResult& r = exit.result;
      if (r.kind == ir::TermKind::Syscall) {
        if (state_.gpr[0] == SYS_rt_sigreturn) {
          if (!sigreturn()) return crash(Fault{SIGSEGV, 0x80, 0, state_.rip, "bad signal frame in rt_sigreturn"});
          continue;
        }
        uint64_t nr = state_.gpr[0];
        SyscallOutcome out = syscalls_.handle(state_);
        if (out.action == SyscallOutcome::Action::Exit) return finish(out.exit_status);
        // A handler for a memory fault sees the registers at the fault:
        // from now on compiled code keeps them precise (EngineConfig::precise_faults).
        if (nr == SYS_rt_sigaction && (syscalls_.sigaction(SIGSEGV).handler > 1 || syscalls_.sigaction(SIGBUS).handler > 1))
          engine_.require_precise_faults();
        if (out.action == SyscallOutcome::Action::Signal) {
          if (auto status = raise_self(out.signal)) return *status;
        }
        continue;
      }
      Fault f = classify(r);
      if (!deliver(f, r)) return crash(f);
    }
  }

private:
  // Delivers a synchronous fault to the guest's handler; false when the
  // fault must kill the process (default or ignored disposition, blocked).
  bool deliver(const Fault& f, const ir::ExecResult& r) {
    const GuestSigaction& act = syscalls_.sigaction(f.sig);
    bool blocked = (syscalls_.signal_mask() >> (f.sig - 1)) & 1;
    if (act.handler <= 1 || blocked) return false;
    (void)r;
    return push_frame(f.sig, f.code, f.addr, f.resume_pc, act);
  }

  // kill/tgkill/raise to ourselves. Returns an exit status when the signal terminates us.
  std::optional<int> raise_self(int sig) {
    const GuestSigaction& act = syscalls_.sigaction(sig);
    if (act.handler == 1) return std::nullopt;  // SIG_IGN
    if (act.handler == 0) {
      if (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT) return std::nullopt;
      return finish(128 + sig);
    }
    if ((syscalls_.signal_mask() >> (sig - 1)) & 1) return std::nullopt;  // blocked: stays pending forever (single thread)
    if (!push_frame(sig, -6 /* SI_TKILL */, 0, state_.rip, act)) return crash(Fault{SIGSEGV, 0x80, 0, state_.rip, "cannot build a signal frame"});
    return std::nullopt;
  }

  bool push_frame(int sig, int code, uint64_t addr, uint64_t resume_pc, GuestSigaction act) {
    uint64_t sp = state_.gpr[4] - 128;  // skip the red zone
    uint64_t fx_addr = (sp - sizeof(KFxsave)) & ~uint64_t(63);
    sp = fx_addr - (8 + sizeof(KUcontext) + sizeof(KSiginfo));
    sp = (sp & ~uint64_t(15)) - 8;  // as after a call: (rsp + 8) % 16 == 0
    uint64_t uc_addr = sp + 8, info_addr = uc_addr + sizeof(KUcontext);

    KFxsave fx{};
    fx.cwd = state_.fpu_cw;
    fx.mxcsr = state_.mxcsr;
    fx.mxcsr_mask = 0xffff;
    std::memcpy(fx.xmm, state_.xmm, sizeof fx.xmm);
    core::store_x87_fxsave(state_, reinterpret_cast<uint8_t*>(&fx));  // status, tags, st(0..7)
    KUcontext uc{};
    auto& m = uc.mcontext;
    const uint64_t* g = state_.gpr;
    m.rax = g[0]; m.rcx = g[1]; m.rdx = g[2]; m.rbx = g[3]; m.rsp = g[4]; m.rbp = g[5]; m.rsi = g[6]; m.rdi = g[7];
    m.r8 = g[8]; m.r9 = g[9]; m.r10 = g[10]; m.r11 = g[11]; m.r12 = g[12]; m.r13 = g[13]; m.r14 = g[14]; m.r15 = g[15];
    m.rip = resume_pc;
    m.eflags = core::get_rflags(state_);
    m.cs = 0x33;
    m.ss = 0x2b;
    m.trapno = sig == SIGSEGV ? 14 : sig == SIGFPE ? 0 : sig == SIGILL ? 6 : 3;
    m.cr2 = sig == SIGSEGV ? addr : 0;
    m.err = sig == SIGSEGV && code == 2 ? 7 : 4;
    m.oldmask = syscalls_.signal_mask();
    m.fpstate = fx_addr;
    uc.sigmask = syscalls_.signal_mask();
    uc.uc_stack.ss_flags = SS_DISABLE;
    KSiginfo info{};
    info.si_signo = sig;
    info.si_code = code;
    info.fault_address = addr;
    uint64_t pretcode = (act.flags & kSaRestorer) ? act.restorer : 0;
    auto put = [&](uint64_t at, const void* p, size_t n) {
      return space_->write(GuestAddr(at), std::span<const uint8_t>(static_cast<const uint8_t*>(p), n)).has_value();
    };
    if (!put(fx_addr, &fx, sizeof fx) || !put(sp, &pretcode, 8) || !put(uc_addr, &uc, sizeof uc) ||
        !put(info_addr, &info, sizeof info))
      return false;

    uint64_t mask = syscalls_.signal_mask() | act.mask;
    if (!(act.flags & kSaNodefer)) mask |= 1ull << (sig - 1);
    syscalls_.set_signal_mask(mask);
    if (act.flags & kSaResethand) {
      // One-shot handler: later deliveries see the default action.
      resethand_pending_ = sig;
    }
    state_.gpr[4] = sp;
    state_.gpr[7] = static_cast<uint64_t>(sig);
    state_.gpr[6] = (act.flags & kSaSiginfo) ? info_addr : 0;
    state_.gpr[2] = (act.flags & kSaSiginfo) ? uc_addr : 0;
    state_.gpr[0] = 0;
    state_.df = 0;
    state_.rip = act.handler;
    if (resethand_pending_ != 0) {
      reset_action(resethand_pending_);
      resethand_pending_ = 0;
    }
    return true;
  }

  void reset_action(int sig) {
    // Use the syscall layer so its table stays the one source of truth.
    core::X86State tmp = state_;
    GuestSigaction def{};
    uint64_t scratch = state_.gpr[4] - 4096;  // below the frame, inside the stack
    if (!space_->write(GuestAddr(scratch), std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&def), sizeof def))) return;
    tmp.gpr[0] = SYS_rt_sigaction;
    tmp.gpr[7] = static_cast<uint64_t>(sig);
    tmp.gpr[6] = scratch;
    tmp.gpr[2] = 0;
    tmp.gpr[10] = 8;
    syscalls_.handle(tmp);
  }

  bool sigreturn() {
    KUcontext uc;
    uint64_t uc_addr = state_.gpr[4];
    if (!space_->read(GuestAddr(uc_addr), std::span<uint8_t>(reinterpret_cast<uint8_t*>(&uc), sizeof uc))) return false;
    const auto& m = uc.mcontext;
    uint64_t* g = state_.gpr;
    g[0] = m.rax; g[1] = m.rcx; g[2] = m.rdx; g[3] = m.rbx; g[4] = m.rsp; g[5] = m.rbp; g[6] = m.rsi; g[7] = m.rdi;
    g[8] = m.r8; g[9] = m.r9; g[10] = m.r10; g[11] = m.r11; g[12] = m.r12; g[13] = m.r13; g[14] = m.r14; g[15] = m.r15;
    state_.rip = m.rip;
    core::set_rflags(state_, m.eflags);
    if (m.fpstate != 0) {
      KFxsave fx;
      if (!space_->read(GuestAddr(m.fpstate), std::span<uint8_t>(reinterpret_cast<uint8_t*>(&fx), sizeof fx))) return false;
      std::memcpy(state_.xmm, fx.xmm, sizeof fx.xmm);
      state_.mxcsr = fx.mxcsr & 0xffff;
      state_.fpu_cw = fx.cwd;
      core::load_x87_fxsave(state_, reinterpret_cast<const uint8_t*>(&fx));
    }
    syscalls_.set_signal_mask(uc.sigmask & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1))));
    return true;
  }

  int crash(const Fault& f) {
    std::fprintf(stderr, "vm: guest %s at pc=%#lx (%s)\n", signal_name(f.sig), static_cast<unsigned long>(state_.rip),
                 f.detail.c_str());
    std::fflush(stderr);
    return finish(128 + f.sig);
  }

  int finish(int status) {
    if (options_.stats) print_stats();
    return status;
  }

  void print_stats() {
    const EngineStats& s = engine_.stats();
    std::fprintf(stderr, "vm stats: engine=%s mmu=%s\n", engine_kind_name(options_.engine.kind),
                 mem::strategy_name(options_.mmu));
    std::fprintf(stderr, "  blocks translated      %lu (%lu guest instructions, %.3f ms)\n",
                 static_cast<unsigned long>(s.blocks_translated), static_cast<unsigned long>(s.guest_insns_translated),
                 s.translate_seconds * 1e3);
    std::fprintf(stderr, "  blocks executed        %lu\n", static_cast<unsigned long>(s.blocks_executed));
    std::fprintf(stderr, "  jump cache hits        %lu\n", static_cast<unsigned long>(s.jump_cache_hits));
    std::fprintf(stderr, "  block map hits         %lu\n", static_cast<unsigned long>(s.map_hits));
    std::fprintf(stderr, "  invalidations          %lu, cache flushes %lu\n", static_cast<unsigned long>(s.invalidations),
                 static_cast<unsigned long>(s.cache_flushes));
    std::fprintf(stderr, "  compiled blocks        fast %lu, optimized %lu, failed %lu; native runs %lu\n",
                 static_cast<unsigned long>(s.compiled_fast), static_cast<unsigned long>(s.compiled_optimized),
                 static_cast<unsigned long>(s.compile_failures), static_cast<unsigned long>(s.native_executions));
    std::fprintf(stderr,
                 "  regions                %lu (%lu blocks, %lu entered inside, %lu callees taken in, %lu without exit "
                 "polls, %lu grown), dropped %lu; chain links %lu\n",
                 static_cast<unsigned long>(s.regions), static_cast<unsigned long>(s.region_blocks),
                 static_cast<unsigned long>(s.region_entries), static_cast<unsigned long>(s.region_callees),
                 static_cast<unsigned long>(s.regions_without_polls), static_cast<unsigned long>(s.regions_grown),
                 static_cast<unsigned long>(s.regions_dropped),
                 static_cast<unsigned long>(s.chain_links));
    std::fprintf(stderr, "  native exits           jump/branch %lu, indirect %lu, ret %lu, call %lu, syscall %lu, trap %lu\n",
                 static_cast<unsigned long>(s.native_exits[1] + s.native_exits[2]),
                 static_cast<unsigned long>(s.native_exits[3]), static_cast<unsigned long>(s.native_exits[4]),
                 static_cast<unsigned long>(s.native_exits[5]), static_cast<unsigned long>(s.native_exits[6]),
                 static_cast<unsigned long>(s.native_exits[7]));
    if (s.verified_blocks != 0 || s.unverified_blocks != 0)
      std::fprintf(stderr, "  verify-jit             %lu block runs agreed with the interpreter, %lu not checked (rdtsc)\n",
                   static_cast<unsigned long>(s.verified_blocks), static_cast<unsigned long>(s.unverified_blocks));
    if (s.host_faults != 0 || s.softmmu_faults != 0)
      std::fprintf(stderr,
                   "  faults in code         %lu host faults (direct access), %lu slow-path faults (softmmu), "
                   "%lu blocks interpreted after them\n",
                   static_cast<unsigned long>(s.host_faults), static_cast<unsigned long>(s.softmmu_faults),
                   static_cast<unsigned long>(s.restart_blocks));
    if (options_.mmu == mem::MemoryStrategy::Direct && options_.engine.kind != EngineKind::Interp)
      std::fprintf(stderr,
                   "  precise faults         %s; %lu translation flushes for it, %lu code-page writes handled where "
                   "they faulted, %lu guest faults in code without them\n",
                   engine_.precise_faults() ? "on" : "off (no SIGSEGV/SIGBUS handler)",
                   static_cast<unsigned long>(s.precise_switches), static_cast<unsigned long>(s.code_writes),
                   static_cast<unsigned long>(s.imprecise_faults));
    if (s.tlb_misses != 0 || s.tlb_fills != 0)
      std::fprintf(stderr,
                   "  softmmu TLB            misses %lu (victim hits %lu, fills %lu, watched writes %lu), %lu entries"
                   " (hits are inline and not counted)\n",
                   static_cast<unsigned long>(s.tlb_misses), static_cast<unsigned long>(s.tlb_victim_hits),
                   static_cast<unsigned long>(s.tlb_fills), static_cast<unsigned long>(s.tlb_watch_hits),
                   static_cast<unsigned long>(s.tlb_entries));
    std::fprintf(stderr, "  compile time (ms)      lower %.2f, optimise %.2f, codegen %.2f, link %.2f; code %lu bytes\n",
                 s.compile.lower_us / 1e3, s.compile.optimize_us / 1e3, s.compile.codegen_us / 1e3, s.compile.link_us / 1e3,
                 static_cast<unsigned long>(s.compile.code_bytes));
    std::fprintf(stderr, "  syscalls:\n");
    for (const auto& [nr, n] : syscalls_.counts())
      std::fprintf(stderr, "    %-20s %lu\n", LinuxSyscalls::name(nr), static_cast<unsigned long>(n));
    std::fprintf(stderr, "  hottest blocks:\n");
    for (const auto& [pc, n] : engine_.hot_blocks(10))
      std::fprintf(stderr, "    %#-14lx %lu\n", static_cast<unsigned long>(pc), static_cast<unsigned long>(n));
  }

  std::unique_ptr<mem::AddressSpace> space_;
  LinuxSyscalls syscalls_;
  std::unique_ptr<ExecutionEngine> engine_ptr_;
  ExecutionEngine& engine_;
  ProcessOptions options_;
  core::X86State state_;
  int resethand_pending_ = 0;
};

}  // namespace

core::Result<int> run_program(const std::string& path, const std::vector<std::string>& argv,
                              const std::vector<std::string>& envp, const ProcessOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::failf(core::ErrorCode::Io, "cannot open '{}': {}", path, std::strerror(errno));
  std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  mem::AddressSpaceConfig cfg;
  cfg.size = options.address_space_size;
  cfg.strategy = options.mmu;
  auto space = mem::AddressSpace::create(cfg);
  if (!space) return std::unexpected(space.error());
  auto image = load_elf(**space, file);
  if (!image) return core::failf(image.error().code, "{}: {}", path, image.error().message);
  StackConfig sc;
  sc.argv = argv;
  sc.envp = envp;
  sc.execfn = path;
  // AT_HWCAP: CPUID.1:EDX of the modelled CPU, as Linux reports it.
  core::X86State probe;
  probe.gpr[0] = 1;
  ir::HelperTable::defaults().fns[static_cast<size_t>(ir::Helper::Cpuid)](&probe, 0, 0, 0);
  sc.hwcap = static_cast<uint32_t>(probe.gpr[2]);
  auto stack = build_initial_stack(**space, *image, sc);
  if (!stack) return core::failf(stack.error().code, "{}: {}", path, stack.error().message);
  VM_LOG_DEBUG("loaded {}: entry {:#x}, brk {:#x}, rsp {:#x}", path, image->entry, image->brk_start, stack->rsp);

  auto engine = ExecutionEngine::create(**space, options.engine);
  if (!engine) return core::failf(engine.error().code, "cannot start the {} engine: {}", engine_kind_name(options.engine.kind),
                                  engine.error().message);
  // /proc/self/exe must read as an absolute path (glibc asserts it does).
  char resolved[PATH_MAX];
  std::string exe = ::realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
  Process proc(std::move(*space), std::move(*engine), options, exe);
  proc.state().rip = image->entry.value();
  proc.state().gpr[4] = stack->rsp.value();
  int status = proc.run();
  if (options.exit_with_guest) {
    // Nothing left to do but tear down: skip it, and above all do not wait
    // for a region the background thread is still compiling (up to a few
    // hundred milliseconds for a big one).
    std::fflush(nullptr);
    std::_Exit(status);
  }
  return status;
}

}  // namespace vm::engine::linux
