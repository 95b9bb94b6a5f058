#include "vm/mem/concurrent_tlb.hpp"

#include <algorithm>
#include <thread>

namespace vm::mem {

using core::Access;
using core::ErrorCode;
using core::fail;
using core::GuestAddr;

ConcurrentTlb::ConcurrentTlb(const PageTable& page_table, unsigned bits)
    : page_table_(&page_table),
      slots_(std::make_unique<Slot[]>(size_t{1} << std::clamp(bits, 1u, 20u))),
      mask_((uint64_t{1} << std::clamp(bits, 1u, 20u)) - 1) {}

// Spins until the slot's seq is even and this thread moved it to odd.
// Writers hold a slot for four stores, so the spin is short.
uint64_t ConcurrentTlb::lock(Slot& s) const noexcept {
  for (unsigned spins = 0;; ++spins) {
    uint64_t seq = s.seq.load(std::memory_order_relaxed);
    if ((seq & 1) == 0 &&
        s.seq.compare_exchange_weak(seq, seq + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
      return seq + 1;
    if (spins > 64) std::this_thread::yield();
  }
}

core::Result<uint8_t*> ConcurrentTlb::translate_slow(GuestAddr addr, uint32_t size, Access kind) {
  uint64_t a = addr.value();
  if (size == 0 || ((a ^ (a + size - 1)) & kPageMask) != 0)
    return fail(ErrorCode::InvalidArgument, fmt::format("{}-byte access crosses a page boundary", size), addr);
  uint64_t page = a & kPageMask;
  Slot& s = slots_[(a >> kPageBits) & mask_];
  for (;;) {
    // Read the flush counters before the page table: if a flush of this page
    // completes its counter bump after this point, the check under the slot
    // lock below sees it and the (possibly stale) fill is abandoned.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    uint64_t epoch = epoch_.load(std::memory_order_acquire);
    PageEntry pe = page_table_->get(a >> kPageBits);
    if (auto ok = check_access(pe, addr, kind); !ok) return std::unexpected(std::move(ok.error()));
    uint64_t allow = ((pe.perms & core::kPermRead) ? kAllowRead : 0) |
                     ((pe.perms & core::kPermWrite) && !(pe.flags & kPageWatchWrite) ? kAllowWrite : 0) |
                     ((pe.perms & core::kPermExec) ? kAllowFetch : 0);
    if (fill_pause_ != nullptr) [[unlikely]]
      fill_pause_();
    uint64_t locked = lock(s);
    if (epoch_.load(std::memory_order_seq_cst) != epoch) {
      s.seq.store(locked - 1, std::memory_order_release);  // nothing written: restore the old even value
      continue;
    }
    s.page.store(page, std::memory_order_release);
    if (fill_pause_ != nullptr) [[unlikely]]
      fill_pause_();
    s.host.store(reinterpret_cast<uint64_t>(pe.host) | allow, std::memory_order_release);
    s.gen.store(gen, std::memory_order_release);
    unlock(s, locked);
    fills_.fetch_add(1, std::memory_order_relaxed);
    return pe.host + (a & ~kPageMask);
  }
}

void ConcurrentTlb::flush_all() noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }

void ConcurrentTlb::drop(Slot& s, uint64_t first_page, uint64_t last_page) noexcept {
  // Unlocked pre-check, so a flush takes no lock for slots holding other
  // pages. It is sound because the epoch bump, a filler's lock and epoch
  // re-check, and these loads are all seq_cst: a filler that missed our bump
  // locked the slot earlier in that single order, so these loads see its
  // lock (odd seq, we lock and wait) or its finished write (we drop it).
  auto in_range = [&](uint64_t p) { return p != kNoPage && p >= first_page && p <= last_page; };
  uint64_t seq = s.seq.load(std::memory_order_seq_cst);
  if ((seq & 1) == 0) {
    uint64_t page = s.page.load(std::memory_order_seq_cst);
    if (s.seq.load(std::memory_order_seq_cst) == seq && !in_range(page)) return;
  }
  uint64_t locked = lock(s);
  uint64_t p = s.page.load(std::memory_order_relaxed);
  if (in_range(p)) s.page.store(kNoPage, std::memory_order_release);
  unlock(s, locked);
}

void ConcurrentTlb::flush_page(GuestAddr addr) noexcept { flush_range(addr, 1); }

void ConcurrentTlb::flush_range(GuestAddr addr, uint64_t length) noexcept {
  if (length == 0) return;
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  uint64_t first = addr.value() & kPageMask;
  uint64_t last = (addr.value() + std::min(length - 1, ~addr.value())) & kPageMask;
  uint64_t pages = ((last - first) >> kPageBits) + 1;
  if (pages <= mask_) {
    for (uint64_t p = first;; p += kPageSize) {
      drop(slots_[(p >> kPageBits) & mask_], first, last);
      if (p == last) break;
    }
  } else {
    for (uint64_t i = 0; i <= mask_; ++i) drop(slots_[i], first, last);
  }
}

}  // namespace vm::mem
