#include "vm/mem/page_table.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "vm/core/assert.hpp"

namespace vm::mem {

core::Result<PageTable> PageTable::create(uint64_t num_pages) {
  if (num_pages == 0) return core::fail(core::ErrorCode::InvalidArgument, "page table with no pages");
  size_t bytes = num_pages * sizeof(uint64_t);
  // Anonymous memory reads as zero (= unmapped entries) and is committed
  // only where written, so a 64 GiB guest costs nothing until it maps pages.
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return core::failf(core::ErrorCode::OutOfMemory, "cannot reserve a page table of {} bytes: {}", bytes,
                       std::strerror(errno));
  PageTable t;
  t.entries_ = static_cast<std::atomic<uint64_t>*>(p);
  t.num_pages_ = num_pages;
  return t;
}

PageTable::PageTable(PageTable&& other) noexcept
    : entries_(std::exchange(other.entries_, nullptr)), num_pages_(std::exchange(other.num_pages_, 0)) {}

PageTable& PageTable::operator=(PageTable&& other) noexcept {
  if (this != &other) {
    this->~PageTable();
    entries_ = std::exchange(other.entries_, nullptr);
    num_pages_ = std::exchange(other.num_pages_, 0);
  }
  return *this;
}

PageTable::~PageTable() {
  if (entries_ != nullptr) munmap(entries_, num_pages_ * sizeof(uint64_t));
}

core::Result<void> check_access(const PageEntry& e, core::GuestAddr at, core::Access kind) {
  if (!e.present())
    return core::fail(core::ErrorCode::GuestFault, fmt::format("{} of unmapped memory", core::access_name(kind)), at);
  if ((e.perms & required_perm(kind)) == 0)
    return core::fail(core::ErrorCode::GuestFault,
                      fmt::format("{} of memory with permissions {}", core::access_name(kind),
                                  core::perm_string(e.perms)),
                      at);
  return {};
}

void PageTable::set(uint64_t vpn, uint8_t* host, uint8_t perms, uint8_t flags) noexcept {
  VM_ASSERT(vpn < num_pages_, "page number outside the page table");
  VM_ASSERT((reinterpret_cast<uint64_t>(host) & ~kPageMask) == 0, "host page not aligned");
  entries_[vpn].store(pack(host, perms, flags), std::memory_order_release);
}

void PageTable::set_perms(uint64_t vpn, uint8_t perms) noexcept {
  VM_ASSERT(vpn < num_pages_, "page number outside the page table");
  PageEntry e = unpack(entries_[vpn].load(std::memory_order_relaxed));
  entries_[vpn].store(pack(e.host, perms, e.flags), std::memory_order_release);
}

void PageTable::set_flags(uint64_t vpn, uint8_t flags) noexcept {
  VM_ASSERT(vpn < num_pages_, "page number outside the page table");
  PageEntry e = unpack(entries_[vpn].load(std::memory_order_relaxed));
  entries_[vpn].store(pack(e.host, e.perms, flags), std::memory_order_release);
}

void PageTable::clear(uint64_t vpn) noexcept {
  VM_ASSERT(vpn < num_pages_, "page number outside the page table");
  entries_[vpn].store(0, std::memory_order_release);
}

}  // namespace vm::mem
