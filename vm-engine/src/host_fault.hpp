// Host fault recovery for Direct-memory compiled code (internal to
// vm-engine: the execution engine and run_jit over a Direct AddressSpace).
//
// Code lowered with the Direct strategy accesses guest memory without a
// check; an access to an unmapped, protected or write-watched guest page
// raises SIGSEGV (or SIGBUS) on the host. While compiled code runs, its
// caller publishes a HostFaultScope for its thread; the process-wide
// handler turns a fault whose address lies in that scope's guest
// reservation into a siglongjmp back to the scope. Any other fault goes to
// the handler that was installed before ours (or the default action), so a
// bug in the host still crashes like one.
#pragma once

#include <csetjmp>
#include <cstdint>

namespace vm::engine::detail {

struct HostFaultScope {
  sigjmp_buf env;
  uintptr_t lo = 0, hi = 0;  // the guest reservation [lo, hi)
  uint64_t fault_offset = 0;  // set on a fault: address - lo
  bool write = false;         // the fault was a write (x86-64 page-fault error code bit 1)
  // Optional: a write fault goes here first (with address - lo). When it
  // returns true it has made the access possible and the handler returns,
  // so the faulting store runs again and the code carries on; otherwise the
  // handler jumps back to the scope as for any fault. (The execution
  // engine's code without sync points: a store to a page holding
  // translations, docs/engine.md "Precise faults on demand".)
  bool (*on_write)(void* ctx, uint64_t offset) = nullptr;
  void* on_write_ctx = nullptr;
};

// Installs the SIGSEGV and SIGBUS handler unless it is installed already
// (each engine with direct access calls it when it is created). Returns
// false, with errno set, if sigaction fails.
bool install_host_fault_handler();

// The scope of the compiled code running on this thread, or null.
HostFaultScope*& current_host_fault_scope();

// Makes `base` the GS segment base of the calling thread (arch_prctl
// ARCH_SET_GS; a no-op when it already is, as remembered per thread), for
// Optimized code that addresses guest memory through GS. False, with errno
// set, if the kernel refuses.
bool set_gs_base(uint64_t base);

}  // namespace vm::engine::detail
