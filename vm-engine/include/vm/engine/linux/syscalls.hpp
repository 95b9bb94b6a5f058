// Linux system-call emulation for an x86-64 guest process. The guest's
// syscall arguments (rdi, rsi, rdx, r10, r8, r9) are checked and translated:
// guest pointers are read and written only through the AddressSpace (a bad
// pointer gives -EFAULT, never a host fault), memory-management calls act on
// the guest address space, and everything else is forwarded to the host
// kernel with host copies of the guest's buffers. File descriptors are the
// host's own (as in qemu-user). docs/linux-user.md lists every syscall and
// its status; an unknown number returns -ENOSYS and is logged once.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "vm/core/x86_state.hpp"
#include "vm/mem/address_space.hpp"

namespace vm::engine::linux {

inline constexpr int kNumSignals = 64;

// The guest's view of one signal's disposition (kernel struct sigaction).
struct GuestSigaction {
  uint64_t handler = 0;   // SIG_DFL (0), SIG_IGN (1) or a guest function
  uint64_t flags = 0;     // SA_* flags
  uint64_t restorer = 0;  // SA_RESTORER trampoline
  uint64_t mask = 0;      // signals blocked while the handler runs
};

struct SyscallOutcome {
  enum class Action { Continue, Exit, Signal };
  Action action = Action::Continue;
  int exit_status = 0;  // Exit: the guest's exit status
  int signal = 0;       // Signal: a signal the guest sent to itself (kill/tgkill/raise)
};

class LinuxSyscalls {
public:
  LinuxSyscalls(mem::AddressSpace& space, std::string exe_path);

  // Executes the syscall described by `state` (number in rax) and writes the
  // result to rax; rcx and r11 get the return rip and rflags as on hardware.
  SyscallOutcome handle(core::X86State& state);

  [[nodiscard]] const std::map<uint64_t, uint64_t>& counts() const { return counts_; }
  [[nodiscard]] const GuestSigaction& sigaction(int sig) const { return actions_[sig]; }
  [[nodiscard]] uint64_t signal_mask() const { return sigmask_; }
  void set_signal_mask(uint64_t mask) { sigmask_ = mask; }

  static const char* name(uint64_t number);

private:
  int64_t dispatch(uint64_t nr, const uint64_t a[6], core::X86State& state, SyscallOutcome& out);

  mem::AddressSpace* space_;
  std::string exe_path_;
  std::map<uint64_t, uint64_t> counts_;
  std::set<uint64_t> warned_;
  bool space_full_warned_ = false;  // an mmap found no room in the guest address space
  std::array<GuestSigaction, kNumSignals + 1> actions_{};
  uint64_t sigmask_ = 0;
  uint64_t clear_child_tid_ = 0;
};

}  // namespace vm::engine::linux
