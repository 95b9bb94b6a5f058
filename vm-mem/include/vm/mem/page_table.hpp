// PageTable: the map from guest page to host page frame and permissions that
// AddressSpace maintains and every TLB refills from. One flat array of packed
// 64-bit words indexed by guest page number, reserved lazily (only the parts
// that are touched are committed), so a lookup is one load. Entries are
// atomics: TLBs of other threads may read while the owner updates an entry,
// and they see either the old or the new word, never a mix.
#pragma once

#include <atomic>
#include <cstdint>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/core/tlb_layout.hpp"

namespace vm::mem {

inline constexpr unsigned kPageBits = core::kTlbPageBits;
inline constexpr uint64_t kPageSize = core::kTlbPageSize;
inline constexpr uint64_t kPageMask = core::kTlbPageMask;

// Per-page flags beyond the r/w/x permissions.
enum PageFlag : uint8_t {
  kPageWatchWrite = 1,  // writes take the TLB slow path (translated code on the page)
};

// The permission bit an access of this kind needs.
constexpr uint8_t required_perm(core::Access kind) {
  return kind == core::Access::Read ? core::kPermRead : kind == core::Access::Write ? core::kPermWrite : core::kPermExec;
}

struct PageEntry {
  uint8_t* host = nullptr;  // host address of the page's first byte; null when unmapped
  uint8_t perms = core::kPermNone;
  uint8_t flags = 0;
  [[nodiscard]] bool present() const { return host != nullptr; }
};

// The guest fault for an access of `kind` at `at` to a page described by
// `e`, or success when the page allows it. One wording for every path.
core::Result<void> check_access(const PageEntry& e, core::GuestAddr at, core::Access kind);

class PageTable {
public:
  // Covers guest pages [0, num_pages). Fails when the host cannot reserve
  // the (virtual, uncommitted) table.
  static core::Result<PageTable> create(uint64_t num_pages);

  PageTable() = default;
  PageTable(PageTable&& other) noexcept;
  PageTable& operator=(PageTable&& other) noexcept;
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;
  ~PageTable();

  [[nodiscard]] uint64_t num_pages() const { return num_pages_; }

  // Entry for guest page number `vpn`; an empty entry beyond the table.
  [[nodiscard]] PageEntry get(uint64_t vpn) const noexcept {
    if (vpn >= num_pages_) return {};
    return unpack(entries_[vpn].load(std::memory_order_acquire));
  }
  [[nodiscard]] PageEntry get(core::GuestAddr addr) const noexcept { return get(addr.value() >> kPageBits); }

  // `host` must be page aligned and vpn inside the table (our invariants).
  void set(uint64_t vpn, uint8_t* host, uint8_t perms, uint8_t flags = 0) noexcept;
  void set_perms(uint64_t vpn, uint8_t perms) noexcept;
  void set_flags(uint64_t vpn, uint8_t flags) noexcept;
  void clear(uint64_t vpn) noexcept;

private:
  // word = host page address | flags << 3 | perms (bits 0..2)
  static PageEntry unpack(uint64_t w) {
    return PageEntry{reinterpret_cast<uint8_t*>(w & kPageMask), static_cast<uint8_t>(w & 7),
                     static_cast<uint8_t>((w >> 3) & 0x1ff)};
  }
  static uint64_t pack(uint8_t* host, uint8_t perms, uint8_t flags) {
    return reinterpret_cast<uint64_t>(host) | (uint64_t{flags} << 3) | (perms & 7u);
  }

  std::atomic<uint64_t>* entries_ = nullptr;
  uint64_t num_pages_ = 0;
};

}  // namespace vm::mem
