// Tlb: the software TLB of one guest CPU for the softmmu strategy. Generated
// code inlines the hit check described in vm/core/tlb_layout.hpp against
// fast(); on a miss it calls translate(), which searches an 8-entry victim
// TLB, then refills from the PageTable. Only the owning CPU thread may use a
// Tlb (ConcurrentTlb is the shared, thread-safe variant).
//
// Flushes come in four strengths: one page, a range, everything (which is also
// when the table may grow or shrink), and a new tag for the current generation /
// address-space id, which drops every entry without touching the table.
// Statistics are off by default and cost one predictable branch when off.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/core/tlb_layout.hpp"
#include "vm/mem/page_table.hpp"

namespace vm::mem {

struct TlbConfig {
  unsigned initial_bits = 8;  // log2 of the number of entries
  unsigned min_bits = 6;
  unsigned max_bits = 14;
  bool stats = false;
  // Growth without a flush: once the slow path has seen conflicts (victim
  // hits plus live entries pushed out) amounting to conflict_grow times the
  // table's size since it was last sized, the table doubles in place (up to
  // max_bits). A user-mode guest never flushes, so this is how its table
  // fits a working set of many pages. 0: resize only in flush_all().
  uint8_t conflict_grow = 2;
  uint64_t stats_window = 4096;  // lookups per hit-rate window
};

struct TlbStats {
  uint64_t hits = 0;         // counted by lookup()/translate(); generated code's inline hits are not seen
  uint64_t misses = 0;       // slow-path entries
  uint64_t victim_hits = 0;  // misses satisfied by the victim TLB
  uint64_t fills = 0;        // refills from the page table
  uint64_t evictions = 0;    // live entries pushed out to the victim TLB
  uint64_t faults = 0;       // misses that ended in a guest fault
  uint64_t watch_hits = 0;   // writes to write-watched pages
  uint64_t flush_all = 0, flush_page = 0, flush_range = 0, flush_generation = 0, flush_asid = 0;
  uint64_t resizes_up = 0, resizes_down = 0;
  uint64_t entries = 0;         // current table size
  uint64_t occupied = 0;        // entries valid under the current tag (counted when stats() is called)
  // Hit rate of the last closed window. A window closes at the first miss
  // or stats() call after at least `stats_window` lookups, so the hit path
  // only increments a counter.
  double window_hit_rate = 0;
  [[nodiscard]] double hit_rate() const {
    return hits + misses == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(hits + misses);
  }
};

class Tlb {
public:
  static constexpr unsigned kVictimEntries = 8;
  using WatchHandler = std::function<void(core::GuestAddr page)>;

  explicit Tlb(const PageTable& page_table, TlbConfig config = {});

  // The fast path: host address of [addr, addr + size) or null on a miss
  // (including accesses that cross a page, or writes to watched pages).
  [[nodiscard]] uint8_t* lookup(core::GuestAddr addr, uint32_t size, core::Access kind) noexcept {
    uint64_t a = addr.value();
    const auto* e = reinterpret_cast<const core::TlbEntry*>(reinterpret_cast<const char*>(fast_.table) +
                                                            ((a >> core::kTlbIndexShift) & fast_.index_mask));
    uint64_t cmp = kind == core::Access::Read ? e->addr_read : kind == core::Access::Write ? e->addr_write : e->addr_code;
    if (cmp == core::tlb_comparator(a, size, fast_.tag)) [[likely]] {
      if (stats_enabled_) ++stats_.hits;
      return reinterpret_cast<uint8_t*>(a + e->addend);
    }
    return nullptr;
  }

  // lookup(), then the slow path. Faults are GuestFault errors. An access
  // crossing a page boundary has no single host address: it fails with
  // InvalidArgument; read()/write() split such accesses.
  core::Result<uint8_t*> translate(core::GuestAddr addr, uint32_t size, core::Access kind) {
    if (uint8_t* p = lookup(addr, size, kind)) [[likely]]
      return p;
    return translate_slow(addr, size, kind);
  }
  core::Result<uint8_t*> translate_slow(core::GuestAddr addr, uint32_t size, core::Access kind);

  // Checked copies through the TLB, split at page boundaries; a fault has
  // no partial effect. (What a JIT slow-path helper calls.)
  core::Result<void> read(core::GuestAddr addr, std::span<uint8_t> out);
  core::Result<void> write(core::GuestAddr addr, std::span<const uint8_t> data);

  void flush_all();
  void flush_page(core::GuestAddr addr);
  void flush_range(core::GuestAddr addr, uint64_t length);
  // Drops every entry of the current address-space id by giving it a new tag.
  void flush_generation();
  // Entries of other address-space ids stay in the table (with their own
  // tag) and hit again when the CPU switches back, unless a fill for the
  // current id reused their slot meanwhile.
  void switch_asid(uint16_t asid);
  void flush_asid(uint16_t asid);
  [[nodiscard]] uint16_t asid() const { return asid_; }

  [[nodiscard]] const core::TlbFast* fast() const { return &fast_; }
  [[nodiscard]] size_t entries() const { return size_t{1} << bits_; }

  void set_stats_enabled(bool on) { stats_enabled_ = on; }
  [[nodiscard]] bool stats_enabled() const { return stats_enabled_; }
  [[nodiscard]] TlbStats stats() const;
  void reset_stats();

  void set_watch_handler(WatchHandler handler) { watch_handler_ = std::move(handler); }

private:
  [[nodiscard]] bool live(const core::TlbEntry& e) const;
  [[nodiscard]] static uint64_t entry_page(const core::TlbEntry& e);
  core::TlbEntry& slot(uint64_t addr) {
    return fast_.table[(addr >> kPageBits) & ((size_t{1} << bits_) - 1)];
  }
  void allocate_table(unsigned bits);
  void grow_in_place();
  void clear_entries();
  uint64_t new_tag();
  void drop_if(uint64_t first_page, uint64_t last_page);
  void roll_window() const;
  core::Result<void> copy(core::GuestAddr addr, uint8_t* buf, size_t size, core::Access kind);

  core::TlbFast fast_;
  TlbConfig config_;
  const PageTable* page_table_;
  std::unique_ptr<core::TlbEntry[]> table_;
  unsigned bits_ = 0;
  std::array<core::TlbEntry, kVictimEntries> victim_{};
  unsigned victim_next_ = 0;
  uint64_t used_ = 0;              // slots filled since the last full flush
  unsigned window_flushes_ = 0;    // resize window
  double window_max_use_ = 0;
  uint16_t asid_ = 0;
  uint64_t next_tag_ = 0;
  std::unordered_map<uint16_t, uint64_t> asid_tags_;
  bool stats_enabled_ = false;
  mutable TlbStats stats_;
  mutable uint64_t window_start_lookups_ = 0, window_start_hits_ = 0;
  WatchHandler watch_handler_;
  uint64_t conflicts_ = 0;           // victim hits + evictions since the table was last sized
  uint64_t grow_at_ = ~uint64_t{0};  // conflicts_ that make the next miss grow the table
};

}  // namespace vm::mem
