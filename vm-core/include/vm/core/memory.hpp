// GuestMemory: the interface through which reference components (the vm-ir
// interpreter, loaders, syscall emulation) touch guest memory. Every access
// is checked; a fault is returned as an Error (code GuestFault, addr = the
// first byte that could not be accessed), never raised as a host signal.
//
// RegionMemory is a small, exact implementation over a list of regions with
// permissions, used by tests, `vm exec` and anything that needs no paging.
// vm-mem's AddressSpace is the full implementation used by the engine.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/core/guest_addr.hpp"

namespace vm::core {

enum Perm : uint8_t { kPermNone = 0, kPermRead = 1, kPermWrite = 2, kPermExec = 4, kPermRW = 3, kPermRWX = 7 };

enum class Access : uint8_t { Read, Write, Fetch };

constexpr const char* access_name(Access a) {
  return a == Access::Read ? "read" : a == Access::Write ? "write" : "fetch";
}

std::string perm_string(uint8_t perms);  // "rwx", "r--", ...

class GuestMemory {
public:
  virtual ~GuestMemory() = default;
  virtual Result<void> read(GuestAddr addr, std::span<uint8_t> out) = 0;
  virtual Result<void> write(GuestAddr addr, std::span<const uint8_t> data) = 0;
  // Instruction fetch: like read but needs execute permission.
  virtual Result<void> fetch(GuestAddr addr, std::span<uint8_t> out) = 0;
};

class RegionMemory final : public GuestMemory {
public:
  struct Region {
    GuestAddr base;
    std::vector<uint8_t> bytes;
    uint8_t perms = kPermRW;
    [[nodiscard]] GuestAddr end() const { return base + bytes.size(); }
  };

  // Adds a region; fails when it is empty, wraps around, or overlaps another.
  Result<void> add_region(GuestAddr base, std::vector<uint8_t> bytes, uint8_t perms);
  Result<void> add_region(GuestAddr base, size_t size, uint8_t perms) {
    return add_region(base, std::vector<uint8_t>(size, 0), perms);
  }

  Result<void> read(GuestAddr addr, std::span<uint8_t> out) override;
  Result<void> write(GuestAddr addr, std::span<const uint8_t> data) override;
  Result<void> fetch(GuestAddr addr, std::span<uint8_t> out) override;

  [[nodiscard]] const std::vector<Region>& regions() const { return regions_; }
  [[nodiscard]] const Region* find(GuestAddr addr) const;

private:
  Result<void> access(GuestAddr addr, uint8_t* buf, size_t size, Access kind);
  std::vector<Region> regions_;  // sorted by base, non-overlapping
};

}  // namespace vm::core
