#include <doctest/doctest.h>

#include <cstdlib>
#include <vector>

#include "test_support.hpp"
#include "vm/mem/concurrent_tlb.hpp"

using namespace vm::mem;
using vm::core::Access;
using vm::core::ErrorCode;
using vm::core::GuestAddr;
using vm::core::kPermExec;
using vm::core::kPermRead;
using vm::core::kPermRW;
using vm::core::kPermWrite;

namespace {

struct Pages : vm::mem::test::TestPages {
  Pages() : TestPages(1024) {}
};

}  // namespace

TEST_CASE("ConcurrentTlb: miss, fill, hit, permissions") {
  Pages p;
  uint8_t* f = p.map(3, kPermRead | kPermExec);
  ConcurrentTlb tlb(p.pt, 6);
  CHECK(tlb.entries() == 64);
  GuestAddr a(3 * kPageSize + 0x20);
  CHECK(tlb.lookup(a, 8, Access::Read) == nullptr);
  CHECK(*tlb.translate(a, 8, Access::Read) == f + 0x20);
  CHECK(tlb.lookup(a, 8, Access::Read) == f + 0x20);
  CHECK(tlb.lookup(a, 8, Access::Fetch) == f + 0x20);
  CHECK(tlb.lookup(a, 8, Access::Write) == nullptr);
  CHECK(tlb.translate(a, 8, Access::Write).error().code == ErrorCode::GuestFault);
  CHECK(tlb.translate(GuestAddr(4 * kPageSize), 1, Access::Read).error().code == ErrorCode::GuestFault);
  CHECK(tlb.translate(GuestAddr(4 * kPageSize - 2), 4, Access::Read).error().code == ErrorCode::InvalidArgument);
  CHECK(tlb.lookup(GuestAddr(4 * kPageSize - 2), 4, Access::Read) == nullptr);
  CHECK(tlb.fills() == 1);
}

TEST_CASE("ConcurrentTlb: flushes") {
  Pages p;
  for (uint64_t v = 0; v < 100; ++v) p.map(v, kPermRW);
  ConcurrentTlb tlb(p.pt, 7);
  auto fill = [&] {
    for (uint64_t v = 0; v < 100; ++v) REQUIRE(tlb.translate(GuestAddr(v * kPageSize), 4, Access::Read).has_value());
  };
  auto cached = [&](uint64_t v) { return tlb.lookup(GuestAddr(v * kPageSize), 4, Access::Read) != nullptr; };
  fill();
  for (uint64_t v = 0; v < 100; ++v) CHECK(cached(v));
  tlb.flush_page(GuestAddr(5 * kPageSize + 7));
  CHECK_FALSE(cached(5));
  CHECK(cached(4));
  tlb.flush_range(GuestAddr(20 * kPageSize), 10 * kPageSize);
  for (uint64_t v = 18; v < 32; ++v) CHECK(cached(v) == (v < 20 || v >= 30));
  tlb.flush_range(GuestAddr(0), ~uint64_t{0});
  for (uint64_t v = 0; v < 100; ++v) CHECK_FALSE(cached(v));
  fill();
  tlb.flush_all();
  for (uint64_t v = 0; v < 100; ++v) CHECK_FALSE(cached(v));
  // A remap followed by a flush is seen at once.
  fill();
  uint8_t* fresh = p.map(9, kPermRead);
  tlb.flush_page(GuestAddr(9 * kPageSize));
  CHECK(*tlb.translate(GuestAddr(9 * kPageSize), 4, Access::Read) == fresh);
  CHECK(tlb.translate(GuestAddr(9 * kPageSize), 4, Access::Write).error().code == ErrorCode::GuestFault);
}

TEST_CASE("ConcurrentTlb: watched pages never hit for writes") {
  Pages p;
  uint8_t* f = p.map(1, kPermRW, kPageWatchWrite);
  ConcurrentTlb tlb(p.pt, 4);
  CHECK(*tlb.translate(GuestAddr(kPageSize), 4, Access::Write) == f);
  CHECK(tlb.lookup(GuestAddr(kPageSize), 4, Access::Write) == nullptr);
  CHECK(tlb.lookup(GuestAddr(kPageSize), 4, Access::Read) == f);
}

TEST_CASE("property: single-threaded ConcurrentTlb agrees with the page table") {
  test::Rng rng(21);
  Pages p;
  constexpr uint64_t kPages = 200;
  for (uint64_t v = 0; v < kPages; ++v)
    if (rng.chance(70)) p.map(v, static_cast<uint8_t>(rng.below(8)));
  ConcurrentTlb tlb(p.pt, 5);
  int ops = vm::mem::test::proptest_iterations(20000);
  for (int op = 0; op < ops; ++op) {
    uint64_t r = rng.below(100);
    if (r < 5) {
      uint64_t v = rng.below(kPages);
      if (rng.chance(30)) p.pt.clear(v);
      else p.map(v, static_cast<uint8_t>(rng.below(8)));
      tlb.flush_range(GuestAddr(v * kPageSize), rng.range(1, 3) * kPageSize);
    } else if (r < 6) {
      tlb.flush_all();
    } else {
      uint64_t a = rng.below(kPages * kPageSize);
      uint32_t size = 1u << rng.below(4);
      auto kind = static_cast<Access>(rng.below(3));
      auto got = tlb.translate(GuestAddr(a), size, kind);
      PageEntry e = p.pt.get(a >> kPageBits);
      uint8_t need = required_perm(kind);
      if (((a ^ (a + size - 1)) & kPageMask) != 0) {
        REQUIRE_FALSE(got.has_value());
      } else if (e.present() && (e.perms & need)) {
        REQUIRE(got.has_value());
        REQUIRE(*got == e.host + (a & ~kPageMask));
      } else {
        REQUIRE_FALSE(got.has_value());
      }
    }
  }
}
