// A guest Linux process: loads a static x86-64 ELF executable into a fresh
// guest address space, builds its initial stack, and runs it on an
// ExecutionEngine, emulating system calls and delivering guest faults as
// signals (to the guest's handler when it installed one, otherwise ending
// the process like the kernel would: exit status 128+signal and one line
// "vm: guest SIGSEGV at pc=0x... (access to 0x...)" on stderr).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/engine/execution_engine.hpp"
#include "vm/mem/address_space.hpp"

namespace vm::engine::linux {

// Exit status of `vm run --verify-jit` when compiled code and the
// interpreter disagree (EX_SOFTWARE: an internal error of ours, not the guest's).
inline constexpr int kVerifyFailedStatus = 70;

struct ProcessOptions {
  EngineConfig engine;
  mem::MemoryStrategy mmu = mem::MemoryStrategy::Direct;
  // The guest's address space (a power of two). 4 GiB: direct code then
  // masks guest addresses with 32-bit operations, which is free
  // (docs/linux-user.md, "Address space"); `vm run --address-space`.
  uint64_t address_space_size = uint64_t{4} << 30;
  bool stats = false;  // print statistics to stderr at exit
  // When the guest exits, end this host process at once with the guest's
  // status (after the statistics) instead of returning: no teardown, and no
  // wait for a region the background thread is still compiling. `vm run`
  // sets it; library callers keep the default and get the status back.
  bool exit_with_guest = false;
};

// Runs `path` with `argv` (argv[0] included) and `envp`; returns the exit
// status the process would have, or an error when the program cannot be
// started (unreadable file, malformed or dynamically linked ELF...).
core::Result<int> run_program(const std::string& path, const std::vector<std::string>& argv,
                              const std::vector<std::string>& envp, const ProcessOptions& options);

}  // namespace vm::engine::linux
