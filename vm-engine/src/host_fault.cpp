// The host fault handler behind HostFaultScope (host_fault.hpp).
#include "host_fault.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <asm/prctl.h>
#endif
#include <ucontext.h>

#include <cerrno>
#include <mutex>

namespace vm::engine::detail {

namespace {

struct sigaction g_previous_segv {};
struct sigaction g_previous_bus {};

thread_local HostFaultScope* t_scope = nullptr;

void on_host_fault(int sig, siginfo_t* info, void* context) {
  HostFaultScope* scope = t_scope;
  auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (scope != nullptr && addr >= scope->lo && addr < scope->hi) {
    scope->fault_offset = addr - scope->lo;
#if defined(__x86_64__)
    scope->write = (static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
    scope->write = false;
#endif
    // The fault is synchronous and this thread runs compiled code (or a
    // helper it called), which holds none of the engine's or the address
    // space's locks, so the callback may take them.
    if (scope->write && scope->on_write != nullptr && scope->on_write(scope->on_write_ctx, scope->fault_offset)) return;
    t_scope = nullptr;
    siglongjmp(scope->env, 1);
  }
  // Not a guest access of compiled code: whatever handled it before us.
  const struct sigaction& prev = sig == SIGBUS ? g_previous_bus : g_previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
    return;
  }
  // The default action: returning re-executes the faulting instruction,
  // which now ends the process with this signal (and a core dump).
  signal(sig, SIG_DFL);
}

}  // namespace

bool install_host_fault_handler() {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  struct sigaction sa {};
  sa.sa_sigaction = on_host_fault;
  // SA_NODEFER: the handler leaves by siglongjmp without restoring the
  // signal mask, so the signal must not be blocked while it runs.
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  // (Re)installed whenever someone else's handler has taken over since (a
  // test framework's crash handler, say), which then becomes the previous one.
  for (int sig : {SIGSEGV, SIGBUS}) {
    struct sigaction current {};
    if (sigaction(sig, nullptr, &current) != 0) return false;
    if ((current.sa_flags & SA_SIGINFO) != 0 && current.sa_sigaction == on_host_fault) continue;
    struct sigaction& previous = sig == SIGBUS ? g_previous_bus : g_previous_segv;
    if (sigaction(sig, &sa, &previous) != 0) return false;
  }
  return true;
}

HostFaultScope*& current_host_fault_scope() { return t_scope; }

bool set_gs_base(uint64_t base) {
#if defined(__x86_64__)
  static thread_local uint64_t current = 0;
  if (current == base && base != 0) return true;
  if (syscall(SYS_arch_prctl, ARCH_SET_GS, base) != 0) return false;
  current = base;
  return true;
#else
  (void)base;
  errno = ENOSYS;
  return false;
#endif
}

}  // namespace vm::engine::detail
