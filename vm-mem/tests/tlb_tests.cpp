#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "test_support.hpp"
#include "vm/mem/tlb.hpp"

using namespace vm::mem;
using vm::core::Access;
using vm::core::ErrorCode;
using vm::core::GuestAddr;
using vm::core::kPermExec;
using vm::core::kPermRead;
using vm::core::kPermRW;
using vm::core::kPermRWX;
using vm::core::kPermWrite;
using vm::core::TlbEntry;
using vm::core::TlbFast;

namespace {

struct Pages : test::TestPages {
  Pages() : TestPages(4096) {}
};

// Exactly the check the LLVM lowering emits (vm/core/tlb_layout.hpp).
uint8_t* inline_check(const TlbFast* fast, uint64_t addr, uint64_t size, size_t comparator_offset) {
  const char* entry = reinterpret_cast<const char*>(fast->table) +
                      ((addr >> vm::core::kTlbIndexShift) & fast->index_mask);
  uint64_t cmp = vm::core::tlb_comparator(addr, size, fast->tag);
  uint64_t stored, addend;
  std::memcpy(&stored, entry + comparator_offset, 8);
  std::memcpy(&addend, entry + vm::core::kTlbEntryAddendOffset, 8);
  return stored == cmp ? reinterpret_cast<uint8_t*>(addr + addend) : nullptr;
}

}  // namespace

TEST_CASE("Tlb entry layout is what the lowering expects") {
  static_assert(sizeof(TlbEntry) == 32 && alignof(TlbEntry) == 32);
  TlbEntry e;
  CHECK(e.addr_read == vm::core::kTlbInvalid);
  CHECK((vm::core::kTlbTagMask & (vm::core::kTlbInvalid | vm::core::kTlbWatch)) == 0);
  CHECK((vm::core::kTlbTagMask & kPageMask) == 0);
  Pages p;
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 6});
  CHECK(tlb.fast()->index_mask == (63u << 5));
  CHECK(reinterpret_cast<uintptr_t>(tlb.fast()->table) % 32 == 0);
}

TEST_CASE("Tlb: miss, refill, hit, and the inline check agrees") {
  Pages p;
  uint8_t* f = p.map(5, kPermRW);
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 6, .stats = true});
  GuestAddr a(5 * kPageSize + 0x10);
  CHECK(tlb.lookup(a, 4, Access::Read) == nullptr);
  CHECK(inline_check(tlb.fast(), a.value(), 4, vm::core::kTlbEntryReadOffset) == nullptr);
  auto r = tlb.translate(a, 4, Access::Read);
  REQUIRE(r.has_value());
  CHECK(*r == f + 0x10);
  CHECK(tlb.lookup(a, 4, Access::Read) == f + 0x10);
  CHECK(tlb.lookup(a, 8, Access::Write) == f + 0x10);
  CHECK(tlb.lookup(a, 1, Access::Fetch) == nullptr);  // not executable
  CHECK(inline_check(tlb.fast(), a.value(), 4, vm::core::kTlbEntryReadOffset) == f + 0x10);
  CHECK(inline_check(tlb.fast(), a.value(), 4, vm::core::kTlbEntryWriteOffset) == f + 0x10);
  CHECK(inline_check(tlb.fast(), a.value(), 4, vm::core::kTlbEntryCodeOffset) == nullptr);
  // Last bytes of the page hit; one byte further crosses and misses.
  CHECK(tlb.lookup(GuestAddr(6 * kPageSize - 8), 8, Access::Read) == f + kPageSize - 8);
  CHECK(tlb.lookup(GuestAddr(6 * kPageSize - 7), 8, Access::Read) == nullptr);
  CHECK(inline_check(tlb.fast(), 6 * kPageSize - 7, 8, vm::core::kTlbEntryReadOffset) == nullptr);
  TlbStats s = tlb.stats();
  CHECK(s.misses == 1);
  CHECK(s.fills == 1);
  CHECK(s.hits == 3);
  CHECK(s.occupied == 1);
}

TEST_CASE("Tlb: faults and page-crossing accesses are errors") {
  Pages p;
  p.map(1, kPermRead);
  p.map(2, kPermExec);
  Tlb tlb(p.pt);
  auto unmapped = tlb.translate(GuestAddr(0x3010), 4, Access::Read);
  CHECK(unmapped.error().code == ErrorCode::GuestFault);
  CHECK(unmapped.error().addr == GuestAddr(0x3010));
  CHECK(tlb.translate(GuestAddr(0x1000), 4, Access::Write).error().code == ErrorCode::GuestFault);
  CHECK(tlb.translate(GuestAddr(0x2000), 4, Access::Fetch).has_value());
  CHECK(tlb.translate(GuestAddr(0x2000), 4, Access::Read).error().code == ErrorCode::GuestFault);
  CHECK(tlb.translate(GuestAddr(0x1ffe), 4, Access::Read).error().code == ErrorCode::InvalidArgument);
  CHECK(tlb.translate(GuestAddr(uint64_t{1} << 40), 4, Access::Read).error().code == ErrorCode::GuestFault);
  // read() splits; a fault in the second page leaves the buffer alone.
  uint8_t buf[8] = {};
  CHECK(tlb.read(GuestAddr(0x1ffc), buf).error().addr == GuestAddr(0x2000));
  p.map(3, kPermRW);
  uint8_t data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(tlb.write(GuestAddr(0x2ffc), data).error().addr == GuestAddr(0x2ffc));
  REQUIRE(tlb.write(GuestAddr(0x3ffc), std::span(data, 4)).has_value());
  p.map(4, kPermRW);
  REQUIRE(tlb.write(GuestAddr(0x3ffc), data).has_value());
  REQUIRE(tlb.read(GuestAddr(0x3ffc), buf).has_value());
  CHECK(std::memcmp(buf, data, 8) == 0);
}

TEST_CASE("Tlb: victim TLB catches conflict misses") {
  Pages p;
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 4, .stats = true});
  uint64_t n = tlb.entries();
  uint8_t* fa = p.map(7, kPermRW);
  uint8_t* fb = p.map(7 + n, kPermRW);  // same slot
  GuestAddr a(7 * kPageSize), b((7 + n) * kPageSize);
  REQUIRE(tlb.translate(a, 1, Access::Read).has_value());
  REQUIRE(tlb.translate(b, 1, Access::Read).has_value());  // evicts a to the victim TLB
  CHECK(tlb.lookup(a, 1, Access::Read) == nullptr);
  CHECK(*tlb.translate(a, 1, Access::Read) == fa);  // victim hit, swapped back
  CHECK(tlb.lookup(a, 1, Access::Read) == fa);
  CHECK(*tlb.translate(b, 1, Access::Read) == fb);
  TlbStats s = tlb.stats();
  CHECK(s.fills == 2);
  CHECK(s.victim_hits == 2);
  CHECK(s.evictions == 1);
}

TEST_CASE("Tlb: flush kinds") {
  Pages p;
  for (uint64_t v = 0; v < 32; ++v) p.map(v, kPermRW);
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 6, .stats = true});
  auto fill = [&] {
    for (uint64_t v = 0; v < 32; ++v) REQUIRE(tlb.translate(GuestAddr(v * kPageSize), 8, Access::Read).has_value());
  };
  auto cached = [&](uint64_t v) { return tlb.lookup(GuestAddr(v * kPageSize), 8, Access::Read) != nullptr; };
  fill();
  tlb.flush_page(GuestAddr(3 * kPageSize + 100));
  CHECK_FALSE(cached(3));
  CHECK(cached(2));
  CHECK(cached(4));
  tlb.flush_range(GuestAddr(10 * kPageSize + 1), 3 * kPageSize);  // pages 10..13
  for (uint64_t v = 9; v <= 14; ++v) CHECK(cached(v) == (v < 10 || v > 13));
  tlb.flush_range(GuestAddr(0), ~uint64_t{0});  // whole-table scan path
  for (uint64_t v = 0; v < 32; ++v) CHECK_FALSE(cached(v));
  fill();
  tlb.flush_all();
  for (uint64_t v = 0; v < 32; ++v) CHECK_FALSE(cached(v));
  fill();
  TlbEntry before = tlb.fast()->table[5];
  tlb.flush_generation();
  for (uint64_t v = 0; v < 32; ++v) CHECK_FALSE(cached(v));
  // The generation flush did not touch the table.
  CHECK(std::memcmp(&before, &tlb.fast()->table[5], sizeof before) == 0);
  CHECK(tlb.stats().occupied == 0);
  fill();
  CHECK(tlb.stats().occupied == 32);
  TlbStats s = tlb.stats();
  CHECK(s.flush_page == 1);
  CHECK(s.flush_range == 2);
  CHECK(s.flush_all == 1);
  CHECK(s.flush_generation == 1);
}

TEST_CASE("Tlb: flushes drop victim entries too") {
  Pages p;
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 4});
  uint64_t n = tlb.entries();
  p.map(1, kPermRW);
  p.map(1 + n, kPermRW);
  REQUIRE(tlb.translate(GuestAddr(kPageSize), 1, Access::Read).has_value());
  REQUIRE(tlb.translate(GuestAddr((1 + n) * kPageSize), 1, Access::Read).has_value());
  // Page 1 now sits in the victim TLB. Remap it, flush it: the old frame must not come back.
  uint8_t* fresh = p.map(1, kPermRW);
  tlb.flush_page(GuestAddr(kPageSize));
  CHECK(*tlb.translate(GuestAddr(kPageSize), 1, Access::Read) == fresh);
}

TEST_CASE("Tlb: address-space ids keep their entries across switches") {
  Pages p;
  p.map(1, kPermRW);
  p.map(2, kPermRW);
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 6, .stats = true});
  GuestAddr a(kPageSize), b(2 * kPageSize);
  REQUIRE(tlb.translate(a, 4, Access::Read).has_value());
  tlb.switch_asid(7);
  CHECK(tlb.asid() == 7);
  CHECK(tlb.lookup(a, 4, Access::Read) == nullptr);
  REQUIRE(tlb.translate(b, 4, Access::Read).has_value());  // another slot: id 0's entry survives
  tlb.switch_asid(0);
  CHECK(tlb.lookup(a, 4, Access::Read) != nullptr);
  CHECK(tlb.lookup(b, 4, Access::Read) == nullptr);
  tlb.switch_asid(7);
  CHECK(tlb.lookup(b, 4, Access::Read) != nullptr);
  tlb.switch_asid(0);
  tlb.flush_asid(7);
  tlb.switch_asid(7);
  CHECK(tlb.lookup(b, 4, Access::Read) == nullptr);  // flushed while switched away
  REQUIRE(tlb.translate(b, 4, Access::Read).has_value());
  tlb.flush_asid(7);
  CHECK(tlb.lookup(b, 4, Access::Read) == nullptr);
  CHECK(tlb.stats().flush_asid == 2);
}

TEST_CASE("Tlb: tag wrap-around clears the table for real") {
  Pages p;
  p.map(1, kPermRW);
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 6});
  GuestAddr a(kPageSize);
  for (int i = 0; i < 3000; ++i) {
    REQUIRE(tlb.translate(a, 4, Access::Read).has_value());
    REQUIRE(tlb.lookup(a, 4, Access::Read) != nullptr);
    tlb.flush_generation();
    REQUIRE(tlb.lookup(a, 4, Access::Read) == nullptr);
  }
}

TEST_CASE("Tlb: resizing inside the 30-70 % use band") {
  Pages p;
  for (uint64_t v = 0; v < 2048; ++v) p.map(v, kPermRead);
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 6, .min_bits = 4, .max_bits = 8, .stats = true, .conflict_grow = 0});
  auto touch = [&](uint64_t pages) {
    for (uint64_t v = 0; v < pages; ++v) REQUIRE(tlb.translate(GuestAddr(v * kPageSize), 1, Access::Read).has_value());
  };
  touch(60);  // 60 of 64 slots used
  tlb.flush_all();
  CHECK(tlb.entries() == 128);
  touch(1000);  // full
  tlb.flush_all();
  CHECK(tlb.entries() == 256);
  touch(2000);
  tlb.flush_all();
  CHECK(tlb.entries() == 256);  // max_bits
  // Half-used tables stay; mostly idle ones shrink after a window of flushes.
  for (int i = 0; i < 8; ++i) {
    touch(128);
    tlb.flush_all();
  }
  CHECK(tlb.entries() == 256);
  for (int i = 0; i < 16; ++i) {  // the window must first forget the half-used flushes
    touch(10);
    tlb.flush_all();
  }
  CHECK(tlb.entries() == 128);
  for (int i = 0; i < 40; ++i) tlb.flush_all();
  CHECK(tlb.entries() == 16);  // min_bits
  TlbStats s = tlb.stats();
  CHECK(s.resizes_up == 2);
  CHECK(s.resizes_down == 4);
  // Still translating correctly after all that.
  CHECK(*tlb.translate(GuestAddr(77 * kPageSize + 3), 1, Access::Read) == p.pt.get(77).host + 3);
}

TEST_CASE("Tlb: conflicts grow the table without a flush, keeping its entries") {
  Pages p;
  for (uint64_t v = 0; v < 64; ++v) p.map(v, kPermRW);
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 4, .min_bits = 4, .max_bits = 6, .stats = true});
  auto touch = [&](uint64_t pages) {
    for (uint64_t v = 0; v < pages; ++v) REQUIRE(tlb.translate(GuestAddr(v * kPageSize), 1, Access::Read).has_value());
  };
  auto cached = [&](uint64_t v) { return tlb.lookup(GuestAddr(v * kPageSize), 1, Access::Read) != nullptr; };
  // 16 pages fit 16 slots: no conflict, no growth however often they are used.
  for (int i = 0; i < 10; ++i) touch(16);
  CHECK(tlb.entries() == 16);
  CHECK(tlb.stats().resizes_up == 0);
  // 24 pages in 16 slots: each round pushes 8 live entries out. After
  // 2 x 16 conflicts the next miss doubles the table.
  touch(24);  // 8 evictions
  touch(24);  // 16 more conflicts (victim hits and evictions)
  touch(24);
  touch(24);
  CHECK(tlb.entries() == 32);
  // Now all 24 stay in the table: looked up inline, no more misses.
  touch(24);
  uint64_t misses = tlb.stats().misses;
  for (uint64_t v = 0; v < 24; ++v) CHECK(cached(v));
  touch(24);
  CHECK(tlb.stats().misses == misses);
  // Entries made before the growth still hit after it.
  CHECK(*tlb.translate(GuestAddr(5 * kPageSize + 7), 1, Access::Read) == p.pt.get(5).host + 7);
  // 64 pages grow it to max_bits (64 slots) and no further.
  for (int i = 0; i < 20; ++i) touch(64);
  CHECK(tlb.entries() == 64);
  CHECK(tlb.stats().resizes_up == 2);
  for (uint64_t v = 0; v < 64; ++v) CHECK(cached(v));
  // conflict_grow = 0 keeps the old behaviour: size changes only in flush_all.
  Tlb fixed(p.pt, TlbConfig{.initial_bits = 4, .min_bits = 4, .max_bits = 6, .conflict_grow = 0});
  for (int i = 0; i < 20; ++i)
    for (uint64_t v = 0; v < 64; ++v) REQUIRE(fixed.translate(GuestAddr(v * kPageSize), 1, Access::Read).has_value());
  CHECK(fixed.entries() == 16);
}

TEST_CASE("Tlb: statistics off cost nothing observable, on count lookups and windows") {
  Pages p;
  p.map(1, kPermRW);
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 6, .stats = false, .stats_window = 100});
  for (int i = 0; i < 50; ++i) REQUIRE(tlb.translate(GuestAddr(kPageSize), 4, Access::Read).has_value());
  TlbStats off = tlb.stats();
  CHECK(off.hits == 0);
  CHECK(off.misses == 0);
  tlb.set_stats_enabled(true);
  tlb.flush_all();
  // 1 miss + 99 hits close the first window, 100 hits the second.
  for (int i = 0; i < 100; ++i) REQUIRE(tlb.translate(GuestAddr(kPageSize), 4, Access::Read).has_value());
  CHECK(tlb.stats().window_hit_rate == doctest::Approx(0.99));
  for (int i = 0; i < 100; ++i) REQUIRE(tlb.translate(GuestAddr(kPageSize), 4, Access::Read).has_value());
  TlbStats on = tlb.stats();
  CHECK(on.misses == 1);
  CHECK(on.hits == 199);
  CHECK(on.hit_rate() == doctest::Approx(199.0 / 200.0));
  CHECK(on.window_hit_rate == doctest::Approx(1.0));
  tlb.reset_stats();
  CHECK(tlb.stats().hits == 0);
}

TEST_CASE("Tlb: writes to watched pages take the slow path and call the handler") {
  Pages p;
  uint8_t* f = p.map(2, kPermRWX, kPageWatchWrite);
  Tlb tlb(p.pt, TlbConfig{.stats = true});
  std::vector<uint64_t> hits;
  tlb.set_watch_handler([&](GuestAddr page) { hits.push_back(page.value()); });
  GuestAddr a(2 * kPageSize + 8);
  CHECK(*tlb.translate(a, 4, Access::Write) == f + 8);
  CHECK(tlb.lookup(a, 4, Access::Read) == f + 8);
  CHECK(tlb.lookup(a, 4, Access::Fetch) == f + 8);
  CHECK(tlb.lookup(a, 4, Access::Write) == nullptr);
  CHECK(*tlb.translate(a, 4, Access::Write) == f + 8);
  CHECK(hits == std::vector<uint64_t>{2 * kPageSize, 2 * kPageSize});
  CHECK(tlb.stats().watch_hits == 2);
}

TEST_CASE("property: every Tlb translation matches the page table") {
  test::Rng rng(11);
  Pages p;
  constexpr uint64_t kPages = 300;
  for (uint64_t v = 0; v < kPages; ++v)
    if (rng.chance(70)) p.map(v, static_cast<uint8_t>(rng.below(8)));
  Tlb tlb(p.pt, TlbConfig{.initial_bits = 4, .min_bits = 3, .max_bits = 7});
  int ops = test::proptest_iterations(20000);
  for (int op = 0; op < ops; ++op) {
    uint64_t r = rng.below(100);
    if (r < 5) {  // remap or unmap a page, then flush it the way AddressSpace does
      uint64_t v = rng.below(kPages);
      if (rng.chance(30)) p.pt.clear(v);
      else p.map(v, static_cast<uint8_t>(rng.below(8)));
      if (rng.chance(50)) tlb.flush_page(GuestAddr(v * kPageSize));
      else tlb.flush_range(GuestAddr(v * kPageSize), rng.range(1, 4) * kPageSize);
    } else if (r < 6) {
      tlb.flush_all();
    } else if (r < 7) {
      tlb.flush_generation();
    } else if (r < 8) {
      // One page table for all ids here: page flushes reach every id's
      // entries, so switching back must never resurrect a stale one.
      tlb.switch_asid(static_cast<uint16_t>(rng.below(3)));
    } else {
      uint64_t a = rng.below(kPages * kPageSize);
      uint32_t size = 1u << rng.below(4);
      auto kind = static_cast<Access>(rng.below(3));
      auto got = tlb.translate(GuestAddr(a), size, kind);
      PageEntry e = p.pt.get(a >> kPageBits);
      uint8_t need = required_perm(kind);
      bool crosses = ((a ^ (a + size - 1)) & kPageMask) != 0;
      if (crosses) {
        REQUIRE_FALSE(got.has_value());
      } else if (e.present() && (e.perms & need)) {
        REQUIRE(got.has_value());
        REQUIRE(*got == e.host + (a & ~kPageMask));
        uint8_t* inl = inline_check(tlb.fast(), a, size, kind == Access::Read    ? vm::core::kTlbEntryReadOffset
                                                          : kind == Access::Write ? vm::core::kTlbEntryWriteOffset
                                                                                  : vm::core::kTlbEntryCodeOffset);
        REQUIRE((inl == nullptr || inl == *got));
      } else {
        REQUIRE_FALSE(got.has_value());
        REQUIRE(got.error().code == ErrorCode::GuestFault);
      }
    }
  }
}
