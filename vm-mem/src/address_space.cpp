#include "vm/mem/address_space.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include "vm/core/assert.hpp"

namespace vm::mem {

using core::Access;
using core::ErrorCode;
using core::fail;
using core::failf;
using core::GuestAddr;

namespace {

int host_prot(uint8_t perms) {
  int prot = PROT_NONE;
  if (perms & (core::kPermRead | core::kPermExec)) prot |= PROT_READ;
  if (perms & core::kPermWrite) prot |= PROT_WRITE | PROT_READ;
  return prot;
}

}  // namespace

WriterPreferringLock::WriterPreferringLock() {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&lock_, &attr);
  pthread_rwlockattr_destroy(&attr);
}

WriterPreferringLock::~WriterPreferringLock() { pthread_rwlock_destroy(&lock_); }

core::Result<std::unique_ptr<AddressSpace>> AddressSpace::create(AddressSpaceConfig config) {
  if (!std::has_single_bit(config.size) || config.size < (uint64_t{1} << 20) || config.size > (uint64_t{1} << 47))
    return failf(ErrorCode::InvalidArgument, "address space size {:#x} is not a power of two in [1 MiB, 128 TiB]",
                 config.size);
  if (config.mmap_top == 0) config.mmap_top = config.size;
  if (config.mmap_top > config.size || (config.mmap_top & ~kPageMask) || (config.mmap_min & ~kPageMask) ||
      config.mmap_min >= config.mmap_top)
    return failf(ErrorCode::InvalidArgument, "bad mmap window [{:#x}, {:#x})", config.mmap_min, config.mmap_top);

  std::unique_ptr<AddressSpace> as(new AddressSpace(config));
  auto pt = PageTable::create(config.size >> kPageBits);
  if (!pt) return std::unexpected(std::move(pt.error()));
  as->page_table_ = std::move(*pt);

  if (config.strategy == MemoryStrategy::Direct) {
    void* p = mmap(nullptr, config.size + 2 * kDirectGuard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
      return failf(ErrorCode::OutOfMemory, "cannot reserve {:#x} bytes for the guest: {}", config.size,
                   std::strerror(errno));
    as->region_ = static_cast<uint8_t*>(p) + kDirectGuard;
  } else if (config.frame_pool != nullptr) {
    as->pool_ = config.frame_pool;
  } else {
    auto pool = MemoryPool::create();
    if (!pool) return std::unexpected(std::move(pool.error()));
    as->own_pool_ = std::move(*pool);
    as->pool_ = as->own_pool_.get();
  }
  return as;
}

AddressSpace::AddressSpace(AddressSpaceConfig config) : config_(config) {}

AddressSpace::~AddressSpace() {
  if (region_ != nullptr) {
    munmap(region_ - kDirectGuard, config_.size + 2 * kDirectGuard);
  } else if (pool_ != nullptr) {
    for (const auto& [start, vma] : vmas_)
      for (uint64_t a = start; a < vma.end; a += kPageSize)
        if (uint8_t* host = page_table_.get(a >> kPageBits).host) (void)pool_->deallocate(host, kPageSize, kPageSize);
  }
}

uint64_t AddressSpace::add_invalidate_listener(InvalidateListener listener) {
  std::unique_lock lock(mutex_);
  listeners_.emplace_back(next_listener_, std::move(listener));
  return next_listener_++;
}

void AddressSpace::remove_invalidate_listener(uint64_t handle) {
  std::unique_lock lock(mutex_);
  std::erase_if(listeners_, [&](const auto& l) { return l.first == handle; });
}

void AddressSpace::set_watch_handler(WatchHandler handler) {
  std::unique_lock lock(mutex_);
  watch_handler_ = std::move(handler);
}

void AddressSpace::invalidate(uint64_t start, uint64_t end) {
  generation_.fetch_add(1, std::memory_order_acq_rel);
  for (auto& entry : listeners_) entry.second(GuestAddr(start), end - start);
}

core::Result<void> AddressSpace::check_range(GuestAddr addr, uint64_t length, const char* what) const {
  if (!addr.is_aligned(kPageSize))
    return fail(ErrorCode::InvalidArgument, fmt::format("{}: address is not page aligned", what), addr);
  if (length > config_.size || addr.value() > config_.size - length)
    return fail(ErrorCode::InvalidArgument,
                fmt::format("{}: range of {:#x} bytes is outside the guest address space", what, length), addr);
  return {};
}

// Makes addr a mapping boundary (splits the mapping that straddles it).
void AddressSpace::split_at(uint64_t addr) {
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.begin()) return;
  --it;
  if (it->first < addr && addr < it->second.end) {
    Vma tail = it->second;
    it->second.end = addr;
    vmas_.emplace(addr, tail);
  }
}

bool AddressSpace::range_free(uint64_t start, uint64_t end) const {
  auto it = vmas_.lower_bound(start);
  if (it != vmas_.end() && it->first < end) return false;
  if (it != vmas_.begin() && std::prev(it)->second.end > start) return false;
  return true;
}

core::Result<uint64_t> AddressSpace::find_free(uint64_t length) const {
  // Top-down like Linux's default x86-64 layout: the highest gap that fits.
  uint64_t top = config_.mmap_top;
  auto it = vmas_.lower_bound(top);
  while (true) {
    uint64_t gap_start = config_.mmap_min;
    if (it != vmas_.begin()) gap_start = std::max(gap_start, std::prev(it)->second.end);
    if (top >= gap_start && top - gap_start >= length) return top - length;
    if (it == vmas_.begin()) break;
    --it;
    top = std::min(top, it->first);
    if (top <= config_.mmap_min) break;
  }
  return failf(ErrorCode::OutOfMemory, "no free guest range of {:#x} bytes", length);
}

core::Result<void> AddressSpace::host_protect(uint64_t start, uint64_t end, uint8_t perms) {
  if (region_ == nullptr || start == end) return {};
  if (mprotect(region_ + start, end - start, host_prot(perms)) != 0)
    return failf(ErrorCode::OutOfMemory, "mprotect of guest [{:#x}, {:#x}) failed: {}", start, end,
                 std::strerror(errno));
  return {};
}

// Backs [start, end) (currently unmapped) with zeroed memory and fills the page table.
core::Result<void> AddressSpace::populate(uint64_t start, uint64_t end, uint8_t perms) {
  if (region_ != nullptr) {
    if (auto r = host_protect(start, end, perms); !r) return r;
    for (uint64_t a = start; a < end; a += kPageSize) page_table_.set(a >> kPageBits, region_ + a, perms);
    return {};
  }
  for (uint64_t a = start; a < end; a += kPageSize) {
    auto frame = pool_->allocate(kPageSize, kPageSize);
    if (!frame) {
      for (uint64_t b = start; b < a; b += kPageSize) {
        (void)pool_->deallocate(page_table_.get(b >> kPageBits).host, kPageSize, kPageSize);
        page_table_.clear(b >> kPageBits);
      }
      return fail(ErrorCode::OutOfMemory, fmt::format("no page frame for guest page: {}", frame.error().message),
                  GuestAddr(a));
    }
    std::memset(*frame, 0, kPageSize);
    page_table_.set(a >> kPageBits, static_cast<uint8_t*>(*frame), perms);
  }
  return {};
}

void AddressSpace::unmap_locked(uint64_t start, uint64_t end) {
  split_at(start);
  split_at(end);
  bool any = false;
  std::vector<uint8_t*> frames;
  for (auto it = vmas_.lower_bound(start); it != vmas_.end() && it->first < end;) {
    for (uint64_t a = it->first; a < it->second.end; a += kPageSize) {
      if (region_ == nullptr) frames.push_back(page_table_.get(a >> kPageBits).host);
      page_table_.clear(a >> kPageBits);
    }
    any = true;
    it = vmas_.erase(it);
  }
  if (!any) return;
  // TLBs drop the translations before the memory behind them goes away.
  invalidate(start, end);
  if (region_ != nullptr) {
    // A fresh PROT_NONE mapping over the range discards the contents and the
    // committed memory in one call.
    void* p = mmap(region_ + start, end - start, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                   -1, 0);
    VM_ASSERT(p != MAP_FAILED, "re-reserving part of the guest region failed");
    (void)p;
  } else {
    for (uint8_t* f : frames) (void)pool_->deallocate(f, kPageSize, kPageSize);
  }
}

core::Result<GuestAddr> AddressSpace::map_locked(GuestAddr addr, uint64_t length, uint8_t perms, uint32_t flags) {
  if (length == 0) return fail(ErrorCode::InvalidArgument, "map of 0 bytes", addr);
  if (perms & ~core::kPermRWX) return failf(ErrorCode::InvalidArgument, "bad permission bits {:#x}", perms);
  if (flags & ~uint32_t{kMapFixed | kMapFixedNoReplace})
    return failf(ErrorCode::InvalidArgument, "unknown map flags {:#x}", flags);
  if (length > config_.size) return failf(ErrorCode::OutOfMemory, "map of {:#x} bytes exceeds the guest space", length);
  uint64_t len = (length + kPageSize - 1) & kPageMask;
  uint64_t start = 0;
  if (flags & (kMapFixed | kMapFixedNoReplace)) {
    if (auto r = check_range(addr, len, "fixed map"); !r) return std::unexpected(std::move(r.error()));
    start = addr.value();
    if (start < config_.mmap_min)
      return fail(ErrorCode::InvalidArgument, "fixed map below the lowest mappable address", addr);
    if (!range_free(start, start + len)) {
      if (flags & kMapFixedNoReplace)
        return fail(ErrorCode::AlreadyExists, fmt::format("fixed map of {:#x} bytes overlaps a mapping", len), addr);
      unmap_locked(start, start + len);
    }
  } else {
    uint64_t hint = addr.align_down(kPageSize).value();
    if (hint >= config_.mmap_min && hint <= config_.size - len && range_free(hint, hint + len)) {
      start = hint;
    } else {
      auto f = find_free(len);
      if (!f) return std::unexpected(std::move(f.error()));
      start = *f;
    }
  }
  if (auto r = populate(start, start + len, perms); !r) return std::unexpected(std::move(r.error()));
  vmas_.emplace(start, Vma{start + len, perms});
  return GuestAddr(start);
}

core::Result<GuestAddr> AddressSpace::map(GuestAddr addr, uint64_t length, uint8_t perms, uint32_t flags) {
  std::unique_lock lock(mutex_);
  return map_locked(addr, length, perms, flags);
}

core::Result<GuestAddr> AddressSpace::map_file(GuestAddr addr, uint64_t length, uint8_t perms, uint32_t flags,
                                               std::span<const uint8_t> file, uint64_t offset) {
  if (offset & ~kPageMask) return failf(ErrorCode::InvalidArgument, "file offset {:#x} is not page aligned", offset);
  std::unique_lock lock(mutex_);
  auto start = map_locked(addr, length, perms, flags);
  if (!start) return start;
  if (offset < file.size()) {
    uint64_t n = std::min<uint64_t>(length, file.size() - offset);
    const uint8_t* src = file.data() + offset;
    // Copy page by page through the page table: works for both strategies
    // and ignores the guest permissions (the kernel fills read-only pages too).
    for (uint64_t done = 0; done < n;) {
      uint64_t a = start->value() + done;
      uint64_t chunk = std::min(n - done, kPageSize - (a & ~kPageMask));
      uint8_t* host = page_table_.get(a >> kPageBits).host + (a & ~kPageMask);
      if (region_ != nullptr && !(perms & core::kPermWrite)) {
        if (auto r = host_protect(a & kPageMask, (a & kPageMask) + kPageSize, core::kPermRW); !r)
          return std::unexpected(std::move(r.error()));
        std::memcpy(host, src + done, chunk);
        if (auto r = host_protect(a & kPageMask, (a & kPageMask) + kPageSize, perms); !r)
          return std::unexpected(std::move(r.error()));
      } else {
        std::memcpy(host, src + done, chunk);
      }
      done += chunk;
    }
  }
  return start;
}

core::Result<void> AddressSpace::unmap(GuestAddr addr, uint64_t length) {
  if (length == 0) return fail(ErrorCode::InvalidArgument, "unmap of 0 bytes", addr);
  uint64_t len = (length + kPageSize - 1) & kPageMask;
  if (len < length) return fail(ErrorCode::InvalidArgument, "unmap length overflows", addr);
  if (auto r = check_range(addr, len, "unmap"); !r) return r;
  std::unique_lock lock(mutex_);
  unmap_locked(addr.value(), addr.value() + len);
  return {};
}

core::Result<void> AddressSpace::protect(GuestAddr addr, uint64_t length, uint8_t perms) {
  if (perms & ~core::kPermRWX) return failf(ErrorCode::InvalidArgument, "bad permission bits {:#x}", perms);
  uint64_t len = (length + kPageSize - 1) & kPageMask;
  if (len < length) return fail(ErrorCode::InvalidArgument, "protect length overflows", addr);
  if (auto r = check_range(addr, len, "protect"); !r) return r;
  if (len == 0) return {};
  uint64_t start = addr.value(), end = start + len;
  std::unique_lock lock(mutex_);
  // Check first so a failing call changes nothing (Linux may apply a prefix).
  for (uint64_t a = start; a < end; a += kPageSize)
    if (!page_table_.get(a >> kPageBits).present())
      return fail(ErrorCode::NotFound, "protect of an unmapped page", GuestAddr(a));
  if (auto r = host_protect(start, end, perms); !r) return r;
  split_at(start);
  split_at(end);
  for (auto it = vmas_.lower_bound(start); it != vmas_.end() && it->first < end; ++it) it->second.perms = perms;
  for (uint64_t a = start; a < end; a += kPageSize) page_table_.set_perms(a >> kPageBits, perms);
  invalidate(start, end);
  return {};
}

core::Result<void> AddressSpace::set_write_watch(GuestAddr addr, uint64_t length, bool watch) {
  uint64_t len = (length + kPageSize - 1) & kPageMask;
  if (len < length) return fail(ErrorCode::InvalidArgument, "write watch length overflows", addr);
  if (auto r = check_range(addr, len, "write watch"); !r) return r;
  uint64_t start = addr.value(), end = start + len;
  std::unique_lock lock(mutex_);
  for (uint64_t a = start; a < end; a += kPageSize)
    if (!page_table_.get(a >> kPageBits).present())
      return fail(ErrorCode::NotFound, "write watch on an unmapped page", GuestAddr(a));
  for (uint64_t a = start; a < end; a += kPageSize)
    page_table_.set_flags(a >> kPageBits, watch ? uint8_t{kPageWatchWrite} : uint8_t{0});
  if (protect_watched_ && region_ != nullptr) {
    for (uint64_t a = start; a < end; a += kPageSize) {
      uint8_t perms = page_table_.get(a >> kPageBits).perms;
      if ((perms & core::kPermWrite) == 0) continue;  // the host page is read-only already
      uint8_t host = watch ? static_cast<uint8_t>(perms & ~core::kPermWrite) : perms;
      if (mprotect(region_ + a, kPageSize, host_prot(host)) != 0)
        return failf(ErrorCode::OutOfMemory, "mprotect of watched guest page {:#x} failed: {}", a, std::strerror(errno));
    }
  }
  invalidate(start, end);
  return {};
}

void AddressSpace::set_brk_start(GuestAddr start) {
  std::unique_lock lock(mutex_);
  brk_start_ = brk_ = start.value();
}

GuestAddr AddressSpace::brk(GuestAddr request) {
  std::unique_lock lock(mutex_);
  uint64_t want = request.value();
  if (want < brk_start_ || want > config_.size) return GuestAddr(brk_);
  uint64_t old_end = (brk_ + kPageSize - 1) & kPageMask;
  uint64_t new_end = (want + kPageSize - 1) & kPageMask;
  if (new_end > old_end) {
    if (!range_free(old_end, new_end)) return GuestAddr(brk_);
    if (!map_locked(GuestAddr(old_end), new_end - old_end, core::kPermRW, kMapFixedNoReplace)) return GuestAddr(brk_);
  } else if (new_end < old_end) {
    unmap_locked(new_end, old_end);
  }
  brk_ = want;
  return GuestAddr(brk_);
}

core::Result<void> AddressSpace::access(GuestAddr addr, uint8_t* buf, size_t size, Access kind) {
  if (size == 0) return {};
  std::shared_lock lock(mutex_);
  // Check every page first so a faulting access has no partial effect.
  uint64_t first = addr.value(), last = first + size - 1;
  if (last < first) return fail(ErrorCode::GuestFault, fmt::format("{} wraps around the address space", access_name(kind)), addr);
  bool watched = false;
  for (uint64_t page = first & kPageMask;; page += kPageSize) {
    PageEntry e = page_table_.get(page >> kPageBits);
    if (auto ok = check_access(e, GuestAddr(std::max(page, first)), kind); !ok) return ok;
    watched |= (e.flags & kPageWatchWrite) != 0;
    if (page == (last & kPageMask)) break;
  }
  // Host-protected watched pages (set_host_protect_watched) are opened for
  // the copy and those still watched closed again afterwards.
  bool reopen = false;
  auto set_watched_writable = [&](bool writable) {
    for (uint64_t page = first & kPageMask;; page += kPageSize) {
      PageEntry e = page_table_.get(page >> kPageBits);
      if ((e.flags & kPageWatchWrite) && (e.perms & core::kPermWrite))
        (void)mprotect(region_ + page, kPageSize, host_prot(writable ? e.perms : e.perms & ~core::kPermWrite));
      if (page == (last & kPageMask)) break;
    }
  };
  if (kind == Access::Write && watched) {
    if (watch_handler_) {
      for (uint64_t page = first & kPageMask;; page += kPageSize) {
        if (page_table_.get(page >> kPageBits).flags & kPageWatchWrite) watch_handler_(GuestAddr(page));
        if (page == (last & kPageMask)) break;
      }
    }
    reopen = protect_watched_ && region_ != nullptr;
    if (reopen) set_watched_writable(true);
  }
  for (size_t done = 0; done < size;) {
    uint64_t a = first + done;
    size_t n = std::min<uint64_t>(size - done, kPageSize - (a & ~kPageMask));
    uint8_t* host = page_table_.get(a >> kPageBits).host + (a & ~kPageMask);
    if (kind == Access::Write)
      std::memcpy(host, buf + done, n);
    else
      std::memcpy(buf + done, host, n);
    done += n;
  }
  if (reopen) set_watched_writable(false);
  return {};
}

core::Result<void> AddressSpace::read(GuestAddr addr, std::span<uint8_t> out) {
  return access(addr, out.data(), out.size(), Access::Read);
}
core::Result<void> AddressSpace::write(GuestAddr addr, std::span<const uint8_t> data) {
  return access(addr, const_cast<uint8_t*>(data.data()), data.size(), Access::Write);
}
core::Result<void> AddressSpace::fetch(GuestAddr addr, std::span<uint8_t> out) {
  return access(addr, out.data(), out.size(), Access::Fetch);
}

std::vector<MappingInfo> AddressSpace::mappings() const {
  std::shared_lock lock(mutex_);
  std::vector<MappingInfo> out;
  for (const auto& [start, vma] : vmas_) {
    if (!out.empty() && out.back().start.value() + out.back().length == start && out.back().perms == vma.perms)
      out.back().length += vma.end - start;
    else
      out.push_back(MappingInfo{GuestAddr(start), vma.end - start, vma.perms});
  }
  return out;
}

}  // namespace vm::mem
