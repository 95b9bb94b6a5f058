// The Linux ELF64 loader for x86-64 guests: maps a static or static-PIE
// executable's PT_LOAD segments into an AddressSpace with their permissions
// (zero-filled bss, program break after the highest segment) and builds the
// initial process stack the kernel would build: argc, argv, envp and the
// auxiliary vector. Dynamically linked executables are refused with a clear
// error (there is no guest dynamic loader yet).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/core/guest_addr.hpp"
#include "vm/mem/address_space.hpp"

namespace vm::engine::linux {

struct ElfImage {
  core::GuestAddr entry;
  core::GuestAddr phdr;        // guest address of the program headers (AT_PHDR)
  uint16_t phent = 0;
  uint16_t phnum = 0;
  uint64_t load_bias = 0;      // 0 for ET_EXEC, the chosen base for static-PIE
  core::GuestAddr lowest;      // first mapped byte
  core::GuestAddr brk_start;   // page-aligned end of the highest segment
  bool executable_stack = false;
  bool pie = false;
};

// Where a static-PIE executable is placed in a guest space of `space_size`
// bytes: a third of the way up, page-aligned, as Linux places PIE at two
// thirds of its user space (0x555555000 in a 64 GiB space, 0x55555000 in
// vm run's default 4 GiB; below the stack and the mmap area at the top).
constexpr uint64_t pie_load_base(uint64_t space_size) { return space_size / 3 & ~uint64_t{0xfff}; }

// Checks the ELF header and program headers, then maps the segments.
// Errors name what is wrong and, for segments, which one.
core::Result<ElfImage> load_elf(mem::AddressSpace& space, std::span<const uint8_t> file);

struct StackConfig {
  uint64_t size = 8ull << 20;     // bytes reserved for the stack
  core::GuestAddr top{0};          // 0: just below the top of the address space
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  std::string execfn;              // AT_EXECFN string
  uint64_t hwcap = 0;              // AT_HWCAP (CPUID.1:EDX of the modelled CPU)
  uint64_t hwcap2 = 0;
};

struct InitialStack {
  core::GuestAddr rsp;            // points at argc; 16-byte aligned
  core::GuestAddr stack_low;      // lowest mapped stack address
  core::GuestAddr stack_high;     // one past the highest
};

// Auxiliary-vector keys we emit (Linux <elf.h> values).
enum AuxKey : uint64_t {
  kAtNull = 0, kAtPhdr = 3, kAtPhent = 4, kAtPhnum = 5, kAtPagesz = 6, kAtBase = 7, kAtFlags = 8,
  kAtEntry = 9, kAtUid = 11, kAtEuid = 12, kAtGid = 13, kAtEgid = 14, kAtPlatform = 15, kAtHwcap = 16,
  kAtClktck = 17, kAtSecure = 23, kAtRandom = 25, kAtHwcap2 = 26, kAtExecfn = 31,
};

core::Result<InitialStack> build_initial_stack(mem::AddressSpace& space, const ElfImage& image,
                                                const StackConfig& config);

}  // namespace vm::engine::linux
