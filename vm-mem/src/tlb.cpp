#include "vm/mem/tlb.hpp"

#include <algorithm>
#include <cstring>

#include "vm/core/assert.hpp"

namespace vm::mem {

using core::Access;
using core::ErrorCode;
using core::fail;
using core::GuestAddr;
using core::kTlbEmptyComparator;
using core::kTlbInvalid;
using core::kTlbTagMask;
using core::kTlbWatch;
using core::TlbEntry;

namespace {

// QEMU's band: grow when a flush finds the table more than 70 % used, shrink
// when no flush in the last kResizeWindow saw it more than 30 % used.
constexpr double kGrowAbove = 0.7;
constexpr double kShrinkBelow = 0.3;
constexpr unsigned kResizeWindow = 8;

constexpr TlbEntry kEmpty{};

uint64_t comparator_of(const TlbEntry& e, Access kind) {
  return kind == Access::Read ? e.addr_read : kind == Access::Write ? e.addr_write : e.addr_code;
}

}  // namespace

Tlb::Tlb(const PageTable& page_table, TlbConfig config) : config_(config), page_table_(&page_table) {
  config_.min_bits = std::clamp(config_.min_bits, 1u, 20u);
  config_.max_bits = std::clamp(config_.max_bits, config_.min_bits, 20u);
  config_.initial_bits = std::clamp(config_.initial_bits, config_.min_bits, config_.max_bits);
  if (config_.stats_window == 0) config_.stats_window = 1;
  stats_enabled_ = config_.stats;
  allocate_table(config_.initial_bits);
  fast_.tag = new_tag();
  asid_tags_[asid_] = fast_.tag;
}

void Tlb::allocate_table(unsigned bits) {
  bits_ = bits;
  conflicts_ = 0;
  grow_at_ = config_.conflict_grow != 0 && bits < config_.max_bits ? uint64_t{config_.conflict_grow} << bits
                                                                     : ~uint64_t{0};
  table_ = std::make_unique<TlbEntry[]>(size_t{1} << bits);  // value-initialised: every comparator invalid
  fast_.table = table_.get();
  fast_.index_mask = ((uint64_t{1} << bits) - 1) << core::kTlbEntrySizeLog2;
}

// Doubles the table keeping its entries (of every tag): an entry's slot in
// the new table is its old slot or that plus the old size, so none collide.
void Tlb::grow_in_place() {
  std::unique_ptr<TlbEntry[]> old = std::move(table_);
  size_t old_entries = entries();
  allocate_table(bits_ + 1);
  used_ = 0;
  for (size_t i = 0; i < old_entries; ++i) {
    const TlbEntry& e = old[i];
    uint64_t page = entry_page(e);
    if (page == ~uint64_t{0}) continue;
    slot(page) = e;
    if (live(e)) ++used_;
  }
  if (stats_enabled_) ++stats_.resizes_up;
}

void Tlb::clear_entries() {
  std::fill_n(table_.get(), entries(), kEmpty);
  victim_.fill(kEmpty);
  used_ = 0;
}

uint64_t Tlb::new_tag() {
  if (next_tag_ == core::kTlbTagCount) {
    // Every tag has been used since the table was last cleared: clear it for
    // real, forget the other address spaces' tags and start again.
    clear_entries();
    asid_tags_.clear();
    next_tag_ = 0;
  }
  return (next_tag_++) << core::kTlbTagShift;
}

bool Tlb::live(const TlbEntry& e) const {
  for (uint64_t c : {e.addr_read, e.addr_write, e.addr_code})
    if ((c & kTlbInvalid) == 0 && (c & kTlbTagMask) == fast_.tag) return true;
  return false;
}

uint64_t Tlb::entry_page(const TlbEntry& e) {
  for (uint64_t c : {e.addr_read, e.addr_write, e.addr_code})
    if ((c & kTlbInvalid) == 0) return c & kPageMask;
  return ~uint64_t{0};
}

void Tlb::roll_window() const {
  uint64_t lookups = stats_.hits + stats_.misses;
  uint64_t n = lookups - window_start_lookups_;
  if (n >= config_.stats_window) {
    stats_.window_hit_rate = static_cast<double>(stats_.hits - window_start_hits_) / static_cast<double>(n);
    window_start_lookups_ = lookups;
    window_start_hits_ = stats_.hits;
  }
}

core::Result<uint8_t*> Tlb::translate_slow(GuestAddr addr, uint32_t size, Access kind) {
  uint64_t a = addr.value();
  if (stats_enabled_) {
    ++stats_.misses;
    roll_window();
  }
  if (size == 0 || ((a ^ (a + size - 1)) & kPageMask) != 0)
    return fail(ErrorCode::InvalidArgument, fmt::format("{}-byte access crosses a page boundary", size), addr);
  if (conflicts_ >= grow_at_) [[unlikely]]
    grow_in_place();
  uint64_t page = a & kPageMask;
  uint64_t cmp = page | fast_.tag;
  TlbEntry& main = slot(a);

  for (TlbEntry& v : victim_) {
    if (comparator_of(v, kind) == cmp) {
      std::swap(v, main);
      ++conflicts_;
      if (stats_enabled_) ++stats_.victim_hits;
      return reinterpret_cast<uint8_t*>(a + main.addend);
    }
  }

  PageEntry pe = page_table_->get(a >> kPageBits);
  if (auto ok = check_access(pe, addr, kind); !ok) {
    if (stats_enabled_) ++stats_.faults;
    return std::unexpected(std::move(ok.error()));
  }

  bool was_live = live(main);
  if (was_live && entry_page(main) != page) {
    victim_[victim_next_++ % kVictimEntries] = main;
    ++conflicts_;
    if (stats_enabled_) ++stats_.evictions;
  } else if (!was_live) {
    ++used_;
  }
  uint64_t valid = page | fast_.tag;
  main.addr_read = (pe.perms & core::kPermRead) ? valid : kTlbEmptyComparator;
  main.addr_write = (pe.perms & core::kPermWrite) ? valid | ((pe.flags & kPageWatchWrite) ? kTlbWatch : 0)
                                                  : kTlbEmptyComparator;
  main.addr_code = (pe.perms & core::kPermExec) ? valid : kTlbEmptyComparator;
  main.addend = reinterpret_cast<uint64_t>(pe.host) - page;
  if (stats_enabled_) ++stats_.fills;

  if (kind == Access::Write && (pe.flags & kPageWatchWrite)) {
    if (stats_enabled_) ++stats_.watch_hits;
    if (watch_handler_) watch_handler_(GuestAddr(page));
  }
  return pe.host + (a & ~kPageMask);
}

core::Result<void> Tlb::copy(GuestAddr addr, uint8_t* buf, size_t size, Access kind) {
  // First pass: translate every piece so a fault leaves memory untouched.
  // The second pass translates again (hits, or refills if the first pieces
  // were evicted by later ones in a tiny table).
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t done = 0; done < size;) {
      uint64_t a = addr.value() + done;
      auto n = static_cast<uint32_t>(std::min<uint64_t>(size - done, kPageSize - (a & ~kPageMask)));
      auto host = translate(GuestAddr(a), n, kind);
      if (!host) return std::unexpected(std::move(host.error()));
      if (pass == 1) {
        if (kind == Access::Write)
          std::memcpy(*host, buf + done, n);
        else
          std::memcpy(buf + done, *host, n);
      }
      done += n;
    }
  }
  return {};
}

core::Result<void> Tlb::read(GuestAddr addr, std::span<uint8_t> out) {
  return copy(addr, out.data(), out.size(), Access::Read);
}

core::Result<void> Tlb::write(GuestAddr addr, std::span<const uint8_t> data) {
  return copy(addr, const_cast<uint8_t*>(data.data()), data.size(), Access::Write);
}

void Tlb::flush_all() {
  if (stats_enabled_) ++stats_.flush_all;
  double use = std::min(1.0, static_cast<double>(used_) / static_cast<double>(entries()));
  window_max_use_ = std::max(window_max_use_, use);
  ++window_flushes_;
  unsigned bits = bits_;
  if (use > kGrowAbove && bits_ < config_.max_bits) {
    bits = bits_ + 1;
  } else if (window_flushes_ >= kResizeWindow) {
    if (window_max_use_ < kShrinkBelow && bits_ > config_.min_bits) bits = bits_ - 1;
    window_flushes_ = 0;
    window_max_use_ = 0;
  }
  if (bits != bits_) {
    if (stats_enabled_) ++(bits > bits_ ? stats_.resizes_up : stats_.resizes_down);
    allocate_table(bits);
    window_flushes_ = 0;
    window_max_use_ = 0;
    victim_.fill(kEmpty);
    used_ = 0;
  } else {
    clear_entries();
  }
}

// Drops entries (main and victim) whose page lies in [first_page, last_page].
void Tlb::drop_if(uint64_t first_page, uint64_t last_page) {
  auto in_range = [&](const TlbEntry& e) {
    uint64_t p = entry_page(e);
    return p >= first_page && p <= last_page;
  };
  uint64_t pages = ((last_page - first_page) >> kPageBits) + 1;
  if (pages < entries()) {
    for (uint64_t p = first_page;; p += kPageSize) {
      TlbEntry& e = slot(p);
      if (in_range(e)) e = kEmpty;
      if (p == last_page) break;
    }
  } else {
    for (size_t i = 0; i < entries(); ++i)
      if (in_range(table_[i])) table_[i] = kEmpty;
  }
  for (TlbEntry& v : victim_)
    if (in_range(v)) v = kEmpty;
}

void Tlb::flush_page(GuestAddr addr) {
  if (stats_enabled_) ++stats_.flush_page;
  uint64_t p = addr.value() & kPageMask;
  drop_if(p, p);
}

void Tlb::flush_range(GuestAddr addr, uint64_t length) {
  if (stats_enabled_) ++stats_.flush_range;
  if (length == 0) return;
  uint64_t first = addr.value() & kPageMask;
  uint64_t last = (addr.value() + std::min(length - 1, ~addr.value())) & kPageMask;
  drop_if(first, last);
}

void Tlb::flush_generation() {
  if (stats_enabled_) ++stats_.flush_generation;
  fast_.tag = new_tag();
  asid_tags_[asid_] = fast_.tag;
}

void Tlb::switch_asid(uint16_t asid) {
  asid_ = asid;
  auto it = asid_tags_.find(asid);
  if (it != asid_tags_.end()) {
    fast_.tag = it->second;
  } else {
    fast_.tag = new_tag();
    asid_tags_[asid_] = fast_.tag;
  }
}

void Tlb::flush_asid(uint16_t asid) {
  if (stats_enabled_) ++stats_.flush_asid;
  if (asid == asid_) {
    fast_.tag = new_tag();
    asid_tags_[asid_] = fast_.tag;
  } else {
    asid_tags_.erase(asid);  // a fresh tag is taken when the CPU switches to it
  }
}

TlbStats Tlb::stats() const {
  roll_window();
  TlbStats s = stats_;
  s.entries = entries();
  s.occupied = 0;
  for (size_t i = 0; i < entries(); ++i) s.occupied += live(table_[i]) ? 1 : 0;
  return s;
}

void Tlb::reset_stats() {
  stats_ = TlbStats{};
  window_start_lookups_ = window_start_hits_ = 0;
}

}  // namespace vm::mem
