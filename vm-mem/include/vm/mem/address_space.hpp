// AddressSpace: a guest's virtual memory - the full GuestMemory the engine
// uses. Guest addresses are [0, size) with size a power of two (default
// 64 GiB). map / unmap / protect / brk follow Linux mmap / munmap / mprotect /
// brk, so the syscall layer forwards to them almost one to one; read / write /
// fetch are checked and return faults as values.
//
// Two memory strategies, matching the LLVM lowering's two ways of emitting a
// guest load or store:
//  - Direct: one host reservation of `size` bytes; guest address a lives at
//    guest_base() + (a & address_mask()), and host page protections mirror
//    guest permissions, so generated code accesses memory with no check and
//    a bad access raises SIGSEGV, which the engine turns into a guest fault.
//    kDirectGuard bytes on each side of it are reserved too and never
//    mapped, so code may also address guest_base() + (a & address_mask()) + d
//    for |d| < kDirectGuard - 16 (a base masked once, several constant
//    offsets from it): what leaves the guest range faults instead of
//    wrapping around.
//  - SoftMmu: page frames come from a MemoryPool and every generated access
//    goes through a Tlb (vm/mem/tlb.hpp) that refills from page_table().
// Both strategies keep the page table, which is what the checked accessors
// and every TLB read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <pthread.h>
#include <span>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/mem/memory_pool.hpp"
#include "vm/mem/page_table.hpp"

namespace vm::mem {

enum class MemoryStrategy : uint8_t { Direct, SoftMmu };

constexpr const char* strategy_name(MemoryStrategy s) { return s == MemoryStrategy::Direct ? "direct" : "softmmu"; }

// map() flags (the subset of Linux MAP_* that changes placement).
enum MapFlag : uint32_t {
  kMapFixed = 1,           // place exactly at addr, replacing what is there
  kMapFixedNoReplace = 2,  // place exactly at addr, fail if anything is there
};

struct AddressSpaceConfig {
  uint64_t size = uint64_t{64} << 30;  // power of two, at least 1 MiB
  MemoryStrategy strategy = MemoryStrategy::Direct;
  // SoftMmu page frames come from this pool; when null the address space
  // creates its own. Must outlive the address space.
  MemoryPool* frame_pool = nullptr;
  uint64_t mmap_min = 0x10000;  // lowest address of any mapping (Linux vm.mmap_min_addr)
  uint64_t mmap_top = 0;        // non-fixed mappings are placed top-down below this (0 = size)
};

// One mapping as /proc/self/maps would list it (adjacent pages with equal
// permissions are merged).
struct MappingInfo {
  core::GuestAddr start;
  uint64_t length = 0;
  uint8_t perms = core::kPermNone;
  friend bool operator==(const MappingInfo&, const MappingInfo&) = default;
};

// A reader-writer lock that lets a waiting writer in ahead of new readers:
// glibc's default (and so std::shared_mutex) prefers readers, and guest
// threads that read memory non-stop would starve mmap forever.
class WriterPreferringLock {
public:
  WriterPreferringLock();
  ~WriterPreferringLock();
  WriterPreferringLock(const WriterPreferringLock&) = delete;
  WriterPreferringLock& operator=(const WriterPreferringLock&) = delete;
  void lock() { pthread_rwlock_wrlock(&lock_); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

private:
  pthread_rwlock_t lock_;
};

class AddressSpace final : public core::GuestMemory {
public:
  // Called after the translations of [start, start + length) changed (unmap,
  // protect, replacement, watch). TLBs flush that range here. Runs with the
  // address space locked: it must not call back into the address space.
  using InvalidateListener = std::function<void(core::GuestAddr start, uint64_t length)>;

  static core::Result<std::unique_ptr<AddressSpace>> create(AddressSpaceConfig config = {});
  ~AddressSpace() override;
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  // mmap(addr, length, perms, MAP_PRIVATE|MAP_ANONYMOUS|flags): returns the
  // start of the new zero-filled mapping. Without a fixed flag, addr is a
  // hint used when that range is free; otherwise the highest free range
  // below mmap_top is taken.
  core::Result<core::GuestAddr> map(core::GuestAddr addr, uint64_t length, uint8_t perms, uint32_t flags = 0);
  // A private file mapping: like map(), then the bytes file[offset, offset +
  // length) are copied in (pages past the end of the file stay zero).
  core::Result<core::GuestAddr> map_file(core::GuestAddr addr, uint64_t length, uint8_t perms, uint32_t flags,
                                         std::span<const uint8_t> file, uint64_t offset);
  // munmap: pages in the range that are not mapped are ignored, partial
  // unmaps split mappings.
  core::Result<void> unmap(core::GuestAddr addr, uint64_t length);
  // mprotect: every page in the range must be mapped; on error nothing changes.
  core::Result<void> protect(core::GuestAddr addr, uint64_t length, uint8_t perms);

  // Program break. set_brk_start is called once by the loader (end of bss);
  // brk(0) returns the current break; brk(x) moves it like Linux sys_brk and
  // returns the new break, or the old one when the request is refused.
  void set_brk_start(core::GuestAddr start);
  core::GuestAddr brk(core::GuestAddr request);

  // Write-watch pages (translated code lives there): writes still succeed,
  // but TLB writes take the slow path and every write that reaches a watched
  // page through this class or a Tlb calls the watch handler first, so the
  // engine can drop stale translations. (Direct-mode generated stores bypass
  // this; the engine write-protects such pages itself if it needs to.)
  using WatchHandler = std::function<void(core::GuestAddr page)>;
  core::Result<void> set_write_watch(core::GuestAddr addr, uint64_t length, bool watch);
  void set_watch_handler(WatchHandler handler);
  // Direct strategy: from now on a watched guest-writable page is also
  // write-protected on the host (watches set later; unwatching restores the
  // page's protection), so code that stores to guest memory without a check
  // faults on it. Writes through this class still succeed: the watch
  // handler runs, then the page is opened for the copy and closed again
  // while it stays watched.
  void set_host_protect_watched(bool on) { protect_watched_ = on; }

  core::Result<void> read(core::GuestAddr addr, std::span<uint8_t> out) override;
  core::Result<void> write(core::GuestAddr addr, std::span<const uint8_t> data) override;
  core::Result<void> fetch(core::GuestAddr addr, std::span<uint8_t> out) override;

  [[nodiscard]] std::vector<MappingInfo> mappings() const;
  [[nodiscard]] bool is_mapped(core::GuestAddr addr) const { return page_table_.get(addr).present(); }

  [[nodiscard]] const PageTable& page_table() const { return page_table_; }
  [[nodiscard]] MemoryStrategy strategy() const { return config_.strategy; }
  [[nodiscard]] uint64_t size() const { return config_.size; }
  [[nodiscard]] uint64_t address_mask() const { return config_.size - 1; }
  // Direct strategy: host address of guest address 0. Null for SoftMmu.
  [[nodiscard]] uint8_t* guest_base() const { return region_; }
  // Direct strategy: inaccessible bytes reserved below guest_base() and above
  // guest_base() + size() (never mapped).
  static constexpr uint64_t kDirectGuard = uint64_t{1} << 20;
  [[nodiscard]] MemoryPool& frame_pool() const { return *pool_; }
  // Bumped on every change that removes or narrows a translation: a cheap
  // "did anything change since I last looked" for per-CPU TLBs.
  [[nodiscard]] uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Returns a handle for remove_invalidate_listener (a CPU's Tlb that goes
  // away before the address space must unregister).
  uint64_t add_invalidate_listener(InvalidateListener listener);
  void remove_invalidate_listener(uint64_t handle);

private:
  struct Vma {
    uint64_t end = 0;  // exclusive, page aligned
    uint8_t perms = 0;
  };

  explicit AddressSpace(AddressSpaceConfig config);
  core::Result<core::GuestAddr> map_locked(core::GuestAddr addr, uint64_t length, uint8_t perms, uint32_t flags);
  core::Result<void> populate(uint64_t start, uint64_t end, uint8_t perms);
  void unmap_locked(uint64_t start, uint64_t end);
  void split_at(uint64_t addr);
  bool range_free(uint64_t start, uint64_t end) const;
  core::Result<uint64_t> find_free(uint64_t length) const;
  core::Result<void> host_protect(uint64_t start, uint64_t end, uint8_t perms);
  void invalidate(uint64_t start, uint64_t end);
  core::Result<void> access(core::GuestAddr addr, uint8_t* buf, size_t size, core::Access kind);
  core::Result<void> check_range(core::GuestAddr addr, uint64_t length, const char* what) const;

  AddressSpaceConfig config_;
  uint8_t* region_ = nullptr;  // Direct reservation
  std::unique_ptr<MemoryPool> own_pool_;
  MemoryPool* pool_ = nullptr;
  PageTable page_table_;
  std::map<uint64_t, Vma> vmas_;  // start -> mapping; page aligned, non-overlapping
  uint64_t brk_start_ = 0, brk_ = 0;
  std::atomic<uint64_t> generation_{0};
  std::vector<std::pair<uint64_t, InvalidateListener>> listeners_;
  uint64_t next_listener_ = 1;
  WatchHandler watch_handler_;
  bool protect_watched_ = false;
  mutable WriterPreferringLock mutex_;
};

}  // namespace vm::mem
