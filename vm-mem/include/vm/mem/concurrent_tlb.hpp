// ConcurrentTlb: one software TLB shared by several guest-CPU threads (for
// example translation threads, or CPUs of a multi-threaded guest sharing an
// address space). Lookups take no lock and never wait: each slot is a
// seqlock-versioned entry, and a reader that sees a writer in progress treats
// it as a miss. Fills and flushes lock a single slot for a few stores.
//
// Guarantees (argued in docs/memory.md, checked by the stress test under
// ThreadSanitizer):
//  - a lookup never returns a host page other than one the page table mapped
//    for that guest page (no torn entries);
//  - once flush_page / flush_range / flush_all has returned, no lookup that
//    starts afterwards returns a translation the page table dropped before
//    the flush began, even if a fill raced with the flush.
// Callers change the page table first and flush second, as with a hardware TLB.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/mem/page_table.hpp"

namespace vm::mem {

class ConcurrentTlb {
public:
  explicit ConcurrentTlb(const PageTable& page_table, unsigned bits = 10);

  // Host address of [addr, addr + size), or null on a miss (also for a page
  // crossing, a write to a watched page, or a slot being written right now).
  [[nodiscard]] uint8_t* lookup(core::GuestAddr addr, uint32_t size, core::Access kind) const noexcept {
    uint64_t a = addr.value();
    if (((a ^ (a + size - 1)) & kPageMask) != 0) return nullptr;
    const Slot& s = slots_[(a >> kPageBits) & mask_];
    uint64_t gen = generation_.load(std::memory_order_acquire);
    uint64_t seq = s.seq.load(std::memory_order_acquire);
    if (seq & 1) return nullptr;
    // Acquire loads keep the second seq load after them; a writer's release
    // stores make a value from a half-done write imply a changed seq.
    uint64_t page = s.page.load(std::memory_order_acquire);
    uint64_t host = s.host.load(std::memory_order_acquire);
    uint64_t g = s.gen.load(std::memory_order_acquire);
    if (s.seq.load(std::memory_order_relaxed) != seq) return nullptr;
    if (page != (a & kPageMask) || g != gen || (host & allow_bit(kind)) == 0) return nullptr;
    return reinterpret_cast<uint8_t*>((host & kPageMask) | (a & ~kPageMask));
  }

  // lookup(), then a refill from the page table. Faults are GuestFault
  // errors; a page-crossing access fails with InvalidArgument.
  core::Result<uint8_t*> translate(core::GuestAddr addr, uint32_t size, core::Access kind) {
    if (uint8_t* p = lookup(addr, size, kind)) [[likely]]
      return p;
    return translate_slow(addr, size, kind);
  }
  core::Result<uint8_t*> translate_slow(core::GuestAddr addr, uint32_t size, core::Access kind);

  void flush_all() noexcept;
  void flush_page(core::GuestAddr addr) noexcept;
  void flush_range(core::GuestAddr addr, uint64_t length) noexcept;

  // Fault injection for the stress test, called in the two race windows of
  // a refill: after reading the page table (where a racing flush must be
  // noticed) and halfway through writing the slot (where readers must not
  // take a half-written entry). A yield there turns rare interleavings into
  // common ones. Null (the default) costs a predictable branch on refills.
  void set_fill_pause_for_testing(void (*pause)()) { fill_pause_ = pause; }

  [[nodiscard]] size_t entries() const { return mask_ + 1; }
  [[nodiscard]] uint64_t fills() const { return fills_.load(std::memory_order_relaxed); }

private:
  // host word: host page | kAllowRead | kAllowWrite | kAllowFetch. A write
  // to a watched page is not allowed here, so it always reaches the slow path.
  static constexpr uint64_t kAllowRead = 1, kAllowWrite = 2, kAllowFetch = 4;
  static constexpr uint64_t kNoPage = 1;  // never a page address
  static constexpr uint64_t allow_bit(core::Access kind) {
    return kind == core::Access::Read ? kAllowRead : kind == core::Access::Write ? kAllowWrite : kAllowFetch;
  }

  struct alignas(32) Slot {
    std::atomic<uint64_t> seq{0};  // odd while a writer owns the slot
    std::atomic<uint64_t> page{kNoPage};
    std::atomic<uint64_t> host{0};
    std::atomic<uint64_t> gen{0};
  };

  uint64_t lock(Slot& s) const noexcept;
  static void unlock(Slot& s, uint64_t locked_seq) noexcept { s.seq.store(locked_seq + 1, std::memory_order_release); }
  void drop(Slot& s, uint64_t first_page, uint64_t last_page) noexcept;

  const PageTable* page_table_;
  std::unique_ptr<Slot[]> slots_;
  uint64_t mask_ = 0;
  void (*fill_pause_)() = nullptr;
  alignas(64) std::atomic<uint64_t> generation_{1};  // flush_all: entries of older generations never hit
  alignas(64) std::atomic<uint64_t> epoch_{0};       // bumped by every page/range flush
  alignas(64) std::atomic<uint64_t> fills_{0};
};

}  // namespace vm::mem
