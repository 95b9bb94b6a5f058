#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <vector>

#include "test_support.hpp"
#include "vm/mem/address_space.hpp"
#include "vm/mem/tlb.hpp"

using namespace vm::mem;
using vm::core::Access;
using vm::core::ErrorCode;
using vm::core::GuestAddr;
using vm::core::kPermExec;
using vm::core::kPermNone;
using vm::core::kPermRead;
using vm::core::kPermRW;
using vm::core::kPermRWX;
using vm::core::kPermWrite;

namespace {

constexpr uint64_t kSmallSpace = uint64_t{16} << 20;

std::unique_ptr<AddressSpace> make_space(MemoryStrategy strategy, uint64_t size = kSmallSpace) {
  AddressSpaceConfig cfg;
  cfg.size = size;
  cfg.strategy = strategy;
  auto as = AddressSpace::create(cfg);
  REQUIRE(as.has_value());
  return std::move(*as);
}

std::vector<uint8_t> bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

}  // namespace

TEST_CASE("AddressSpace rejects bad configurations") {
  AddressSpaceConfig cfg;
  cfg.size = 3 << 20;
  CHECK(AddressSpace::create(cfg).error().code == ErrorCode::InvalidArgument);
  cfg.size = 1 << 12;
  CHECK(AddressSpace::create(cfg).error().code == ErrorCode::InvalidArgument);
  cfg.size = kSmallSpace;
  cfg.mmap_top = kSmallSpace + 0x1000;
  CHECK(AddressSpace::create(cfg).error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("AddressSpace default reserves 64 GiB without committing it") {
  auto as = AddressSpace::create();
  REQUIRE(as.has_value());
  CHECK((*as)->size() == uint64_t{64} << 30);
  CHECK((*as)->address_mask() == (uint64_t{64} << 30) - 1);
  CHECK((*as)->guest_base() != nullptr);
  auto top = (*as)->map(GuestAddr(0), 0x2000, kPermRW);
  REQUIRE(top.has_value());
  CHECK(top->value() == (uint64_t{64} << 30) - 0x2000);  // top-down placement
}

TEST_CASE("map: argument errors follow Linux") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    CHECK(as->map(GuestAddr(0x100000), 0, kPermRW, kMapFixed).error().code == ErrorCode::InvalidArgument);
    auto unaligned = as->map(GuestAddr(0x100010), 0x1000, kPermRW, kMapFixed);
    CHECK(unaligned.error().code == ErrorCode::InvalidArgument);
    CHECK(unaligned.error().addr == GuestAddr(0x100010));
    CHECK(as->map(GuestAddr(0x100000), 0x1000, 0x10, kMapFixed).error().code == ErrorCode::InvalidArgument);
    CHECK(as->map(GuestAddr(0x100000), 0x1000, kPermRW, 0x80).error().code == ErrorCode::InvalidArgument);
    CHECK(as->map(GuestAddr(kSmallSpace - 0x1000), 0x2000, kPermRW, kMapFixed).error().code ==
          ErrorCode::InvalidArgument);
    CHECK(as->map(GuestAddr(0x1000), 0x1000, kPermRW, kMapFixed).error().code == ErrorCode::InvalidArgument);
    CHECK(as->map(GuestAddr(0), kSmallSpace * 2, kPermRW).error().code == ErrorCode::OutOfMemory);
    CHECK(as->mappings().empty());

    REQUIRE(as->map(GuestAddr(0x100000), 0x3000, kPermRW, kMapFixed).has_value());
    auto clash = as->map(GuestAddr(0x102000), 0x1000, kPermRW, kMapFixedNoReplace);
    CHECK(clash.error().code == ErrorCode::AlreadyExists);
    CHECK(as->mappings().size() == 1);
  }
}

TEST_CASE("map: placement of non-fixed mappings") {
  auto as = make_space(MemoryStrategy::Direct);
  auto a = as->map(GuestAddr(0), 0x1800, kPermRW);  // rounded up to two pages
  REQUIRE(a.has_value());
  CHECK(a->value() == kSmallSpace - 0x2000);
  auto b = as->map(GuestAddr(0), 0x1000, kPermRead);
  REQUIRE(b.has_value());
  CHECK(b->value() == kSmallSpace - 0x3000);
  // A free hint is honoured; an occupied one is not.
  auto c = as->map(GuestAddr(0x200000), 0x1000, kPermRW);
  REQUIRE(c.has_value());
  CHECK(c->value() == 0x200000);
  auto d = as->map(GuestAddr(0x200000), 0x1000, kPermRW);
  REQUIRE(d.has_value());
  CHECK(d->value() == kSmallSpace - 0x4000);
  // A gap left by an unmap is reused when it fits.
  REQUIRE(as->unmap(*b, 0x1000).has_value());
  auto e = as->map(GuestAddr(0), 0x1000, kPermRW);
  REQUIRE(e.has_value());
  CHECK(*e == *b);
  // Too big for any gap.
  CHECK(as->map(GuestAddr(0), kSmallSpace - 0x10000, kPermRW).error().code == ErrorCode::OutOfMemory);
}

TEST_CASE("mappings are zero-filled, fixed maps replace, partial unmaps split") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    REQUIRE(as->map(GuestAddr(0x100000), 0x4000, kPermRW, kMapFixed).has_value());
    std::vector<uint8_t> out(0x4000, 0xff);
    REQUIRE(as->read(GuestAddr(0x100000), out).has_value());
    CHECK(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
    auto data = bytes(0x4000, 3);
    REQUIRE(as->write(GuestAddr(0x100000), data).has_value());

    // MAP_FIXED over the middle: new zero pages with new permissions.
    REQUIRE(as->map(GuestAddr(0x101000), 0x1000, kPermRead, kMapFixed).has_value());
    REQUIRE(as->read(GuestAddr(0x100000), out).has_value());
    CHECK(std::equal(out.begin(), out.begin() + 0x1000, data.begin()));
    CHECK(std::all_of(out.begin() + 0x1000, out.begin() + 0x2000, [](uint8_t b) { return b == 0; }));
    CHECK(std::equal(out.begin() + 0x2000, out.end(), data.begin() + 0x2000));
    std::vector<MappingInfo> expect{{GuestAddr(0x100000), 0x1000, kPermRW},
                                    {GuestAddr(0x101000), 0x1000, kPermRead},
                                    {GuestAddr(0x102000), 0x2000, kPermRW}};
    CHECK(as->mappings() == expect);

    // Unmap a range that covers a hole and part of a mapping.
    REQUIRE(as->unmap(GuestAddr(0x0fe000), 0x3000).has_value());
    expect = {{GuestAddr(0x101000), 0x1000, kPermRead}, {GuestAddr(0x102000), 0x2000, kPermRW}};
    CHECK(as->mappings() == expect);
    CHECK_FALSE(as->is_mapped(GuestAddr(0x100000)));
    auto fault = as->read(GuestAddr(0x100ff0), std::span(out.data(), 0x20));
    CHECK(fault.error().code == ErrorCode::GuestFault);
    CHECK(fault.error().addr == GuestAddr(0x100ff0));

    CHECK(as->unmap(GuestAddr(0x100001), 0x1000).error().code == ErrorCode::InvalidArgument);
    CHECK(as->unmap(GuestAddr(0x100000), 0).error().code == ErrorCode::InvalidArgument);
    CHECK(as->unmap(GuestAddr(kSmallSpace - 0x1000), 0x2000).error().code == ErrorCode::InvalidArgument);
    // Unmapping nothing is fine, like Linux.
    CHECK(as->unmap(GuestAddr(0x400000), 0x10000).has_value());
  }
}

TEST_CASE("protect: permissions, unmapped pages and atomicity") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    REQUIRE(as->map(GuestAddr(0x100000), 0x3000, kPermRW, kMapFixed).has_value());
    auto data = bytes(16, 1);
    REQUIRE(as->write(GuestAddr(0x101000), data).has_value());
    REQUIRE(as->protect(GuestAddr(0x101000), 0x1000, kPermRead | kPermExec).has_value());
    auto w = as->write(GuestAddr(0x101008), data);
    CHECK(w.error().code == ErrorCode::GuestFault);
    CHECK(w.error().addr == GuestAddr(0x101008));
    std::vector<uint8_t> out(16);
    REQUIRE(as->fetch(GuestAddr(0x101000), out).has_value());
    CHECK(out == data);
    CHECK(as->fetch(GuestAddr(0x100000), out).error().code == ErrorCode::GuestFault);
    std::vector<MappingInfo> expect{{GuestAddr(0x100000), 0x1000, kPermRW},
                                    {GuestAddr(0x101000), 0x1000, kPermRead | kPermExec},
                                    {GuestAddr(0x102000), 0x1000, kPermRW}};
    CHECK(as->mappings() == expect);

    // Range reaching an unmapped page: error at that page, nothing changed.
    auto bad = as->protect(GuestAddr(0x100000), 0x4000, kPermNone);
    CHECK(bad.error().code == ErrorCode::NotFound);
    CHECK(bad.error().addr == GuestAddr(0x103000));
    CHECK(as->mappings() == expect);
    CHECK(as->protect(GuestAddr(0x100800), 0x1000, kPermRead).error().code == ErrorCode::InvalidArgument);
    CHECK(as->protect(GuestAddr(0x100000), 0, kPermRead).has_value());

    // Back to one mapping once permissions agree again.
    REQUIRE(as->protect(GuestAddr(0x101000), 0x1000, kPermRW).has_value());
    CHECK(as->mappings().size() == 1);
    REQUIRE(as->protect(GuestAddr(0x100000), 0x3000, kPermNone).has_value());
    CHECK(as->read(GuestAddr(0x100000), out).error().code == ErrorCode::GuestFault);
  }
}

TEST_CASE("a faulting access has no partial effect and reports the first bad byte") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    REQUIRE(as->map(GuestAddr(0x100000), 0x1000, kPermRW, kMapFixed).has_value());
    REQUIRE(as->map(GuestAddr(0x101000), 0x1000, kPermRead, kMapFixed).has_value());
    auto data = bytes(32, 9);
    auto w = as->write(GuestAddr(0x100ff0), data);
    REQUIRE_FALSE(w.has_value());
    CHECK(w.error().addr == GuestAddr(0x101000));
    std::vector<uint8_t> out(16, 0xff);
    REQUIRE(as->read(GuestAddr(0x100ff0), out).has_value());
    CHECK(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
    // Reads crossing into readable memory work; beyond the space they fault.
    std::vector<uint8_t> two(0x1800);
    CHECK(as->read(GuestAddr(0x100800), two).has_value());
    CHECK(as->read(GuestAddr(kSmallSpace - 8), out).error().code == ErrorCode::GuestFault);
    CHECK(as->read(GuestAddr(~uint64_t{0} - 4), out).error().code == ErrorCode::GuestFault);
    CHECK(as->read(GuestAddr(0x100000), std::span<uint8_t>()).has_value());
  }
}

TEST_CASE("map_file copies the file and zero-fills the rest") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    auto file = bytes(0x2800, 5);
    auto a = as->map_file(GuestAddr(0x400000), 0x2000, kPermRead | kPermExec, kMapFixed, file, 0x1000);
    REQUIRE(a.has_value());
    std::vector<uint8_t> out(0x2000);
    REQUIRE(as->fetch(*a, out).has_value());
    CHECK(std::equal(out.begin(), out.begin() + 0x1800, file.begin() + 0x1000));
    CHECK(std::all_of(out.begin() + 0x1800, out.end(), [](uint8_t b) { return b == 0; }));
    CHECK(as->write(*a, std::span(file.data(), 1)).error().code == ErrorCode::GuestFault);
    CHECK(as->map_file(GuestAddr(0x500000), 0x1000, kPermRead, kMapFixed, file, 0x10).error().code ==
          ErrorCode::InvalidArgument);
    // Offset past the end of the file: all zero.
    auto z = as->map_file(GuestAddr(0x500000), 0x1000, kPermRead, kMapFixed, file, 0x4000);
    REQUIRE(z.has_value());
    REQUIRE(as->read(*z, std::span(out.data(), 0x1000)).has_value());
    CHECK(std::all_of(out.begin(), out.begin() + 0x1000, [](uint8_t b) { return b == 0; }));
  }
}

TEST_CASE("brk grows, shrinks and refuses like Linux") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    as->set_brk_start(GuestAddr(0x600123));
    CHECK(as->brk(GuestAddr(0)) == GuestAddr(0x600123));
    CHECK(as->brk(GuestAddr(0x602000)) == GuestAddr(0x602000));
    CHECK(as->is_mapped(GuestAddr(0x601000)));
    CHECK_FALSE(as->is_mapped(GuestAddr(0x600000)));  // the page holding the start belongs to bss
    uint8_t v = 0x5a;
    REQUIRE(as->write(GuestAddr(0x601fff), std::span(&v, 1)).has_value());
    CHECK(as->brk(GuestAddr(0x500000)) == GuestAddr(0x602000));  // below the start: refused
    // Growing into an existing mapping is refused.
    REQUIRE(as->map(GuestAddr(0x604000), 0x1000, kPermRead, kMapFixed).has_value());
    CHECK(as->brk(GuestAddr(0x605000)) == GuestAddr(0x602000));
    // Shrinking unmaps; growing again gives zeroed memory.
    CHECK(as->brk(GuestAddr(0x601000)) == GuestAddr(0x601000));
    CHECK_FALSE(as->is_mapped(GuestAddr(0x601000)));
    CHECK(as->brk(GuestAddr(0x602000)) == GuestAddr(0x602000));
    REQUIRE(as->read(GuestAddr(0x601fff), std::span(&v, 1)).has_value());
    CHECK(v == 0);
  }
}

TEST_CASE("Direct strategy: guest memory is at guest_base + address") {
  auto as = make_space(MemoryStrategy::Direct);
  REQUIRE(as->map(GuestAddr(0x100000), 0x2000, kPermRW, kMapFixed).has_value());
  uint64_t value = 0x1122334455667788;
  std::memcpy(as->guest_base() + 0x100ff8, &value, 8);  // what generated code does
  std::array<uint8_t, 8> out{};
  REQUIRE(as->read(GuestAddr(0x100ff8), out).has_value());
  CHECK(std::memcmp(out.data(), &value, 8) == 0);
  CHECK(as->page_table().get(GuestAddr(0x101000)).host == as->guest_base() + 0x101000);
}

TEST_CASE("SoftMmu strategy: page frames come from the MemoryPool") {
  auto pool = MemoryPool::create(MemoryPoolConfig{uint64_t{64} << 20});
  REQUIRE(pool.has_value());
  AddressSpaceConfig cfg;
  cfg.size = kSmallSpace;
  cfg.strategy = MemoryStrategy::SoftMmu;
  cfg.frame_pool = pool->get();
  auto as = AddressSpace::create(cfg);
  REQUIRE(as.has_value());
  CHECK((*as)->guest_base() == nullptr);
  uint64_t before = (*pool)->stats().bytes_in_use;
  REQUIRE((*as)->map(GuestAddr(0x100000), 0x5000, kPermRW, kMapFixed).has_value());
  CHECK((*pool)->stats().bytes_in_use == before + 0x5000);
  PageEntry e = (*as)->page_table().get(GuestAddr(0x102000));
  CHECK((*pool)->owns(e.host));
  CHECK(reinterpret_cast<uintptr_t>(e.host) % kPageSize == 0);
  REQUIRE((*as)->unmap(GuestAddr(0x101000), 0x2000).has_value());
  CHECK((*pool)->stats().bytes_in_use == before + 0x3000);
  as->reset();
  CHECK((*pool)->stats().bytes_in_use == before);
}

TEST_CASE("listeners see every change that narrows a translation; watch handler sees watched writes") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    std::vector<std::pair<uint64_t, uint64_t>> seen;
    as->add_invalidate_listener([&](GuestAddr a, uint64_t n) { seen.emplace_back(a.value(), n); });
    std::vector<uint64_t> watched;
    as->set_watch_handler([&](GuestAddr page) { watched.push_back(page.value()); });
    REQUIRE(as->map(GuestAddr(0x100000), 0x3000, kPermRWX, kMapFixed).has_value());
    CHECK(seen.empty());  // a new mapping narrows nothing
    uint64_t g0 = as->generation();
    REQUIRE(as->protect(GuestAddr(0x101000), 0x1000, kPermRead).has_value());
    REQUIRE(as->unmap(GuestAddr(0x102000), 0x1000).has_value());
    REQUIRE(as->map(GuestAddr(0x100000), 0x1000, kPermRW, kMapFixed).has_value());  // replaces
    CHECK(as->generation() == g0 + 3);
    std::vector<std::pair<uint64_t, uint64_t>> expect{{0x101000, 0x1000}, {0x102000, 0x1000}, {0x100000, 0x1000}};
    CHECK(seen == expect);
    int other_calls = 0;
    uint64_t other = as->add_invalidate_listener([&](GuestAddr, uint64_t) { ++other_calls; });
    REQUIRE(as->protect(GuestAddr(0x100000), 0x1000, kPermRead).has_value());
    as->remove_invalidate_listener(other);
    REQUIRE(as->protect(GuestAddr(0x100000), 0x1000, kPermRW).has_value());
    CHECK(other_calls == 1);
    CHECK(seen.size() == 5);

    REQUIRE(as->set_write_watch(GuestAddr(0x100000), 0x1000, true).has_value());
    CHECK(as->set_write_watch(GuestAddr(0x102000), 0x1000, true).error().code == ErrorCode::NotFound);
    auto data = bytes(8, 0);
    REQUIRE(as->write(GuestAddr(0x100ffc), std::span(data.data(), 4)).has_value());
    CHECK(watched == std::vector<uint64_t>{0x100000});
    REQUIRE(as->set_write_watch(GuestAddr(0x100000), 0x1000, false).has_value());
    REQUIRE(as->write(GuestAddr(0x100ffc), std::span(data.data(), 4)).has_value());
    CHECK(watched.size() == 1);
  }
}

TEST_CASE("garbage arguments give errors, never crashes or broken state") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    CAPTURE(strategy_name(strategy));
    auto as = make_space(strategy);
    test::Rng rng(77);
    // Values around the edges of the space and of 2^64.
    const uint64_t edges[] = {0, 1, 0xfff, 0x1000, 0x10000, kSmallSpace - 0x1000, kSmallSpace, kSmallSpace + 1,
                              uint64_t{1} << 63, ~uint64_t{0} - 0xfff, ~uint64_t{0}};
    auto pick = [&] { return rng.chance(50) ? edges[rng.below(std::size(edges))] : rng.below(~uint64_t{0}); };
    std::vector<uint8_t> buf(64);
    for (int i = 0; i < 2000; ++i) {
      GuestAddr a(pick());
      uint64_t n = pick();
      auto perms = static_cast<uint8_t>(rng.below(16));
      switch (rng.below(7)) {
        case 0: (void)as->map(a, n, perms, static_cast<uint32_t>(rng.below(4))); break;
        case 1: (void)as->unmap(a, n); break;
        case 2: (void)as->protect(a, n, perms); break;
        case 3: (void)as->read(a, buf); break;
        case 4: (void)as->write(a, buf); break;
        case 5: (void)as->set_write_watch(a, n, rng.chance(50)); break;
        default: (void)as->brk(a); break;
      }
    }
    // Whatever got mapped is page aligned, ordered, inside the space and readable as the listing says.
    uint64_t end = 0;
    for (const MappingInfo& m : as->mappings()) {
      CHECK(m.start.value() >= end);
      CHECK(m.start.is_aligned(kPageSize));
      CHECK(m.length % kPageSize == 0);
      CHECK(m.start.value() + m.length <= kSmallSpace);
      end = m.start.value() + m.length;
      CHECK(as->read(m.start, buf).has_value() == ((m.perms & kPermRead) != 0));
    }
  }
}

// ---------------------------------------------------------------------------
// Property test: random map / unmap / protect / brk / read / write / fetch
// against a reference model (an ordered map of pages), with a Tlb kept
// coherent through the invalidate listener reading alongside.

namespace {

struct ModelPage {
  uint8_t perms = 0;
  std::vector<uint8_t> data = std::vector<uint8_t>(kPageSize, 0);
};

class Model {
public:
  explicit Model(uint64_t size, uint64_t mmap_min) : size_(size), mmap_min_(mmap_min) {}

  std::map<uint64_t, ModelPage> pages;  // page address -> page
  uint64_t brk_start = 0, brk = 0;

  bool free(uint64_t start, uint64_t end) const {
    auto it = pages.lower_bound(start);
    return it == pages.end() || it->first >= end;
  }
  void map(uint64_t start, uint64_t len, uint8_t perms) {
    for (uint64_t a = start; a < start + len; a += kPageSize) pages[a] = ModelPage{perms};
  }
  void unmap(uint64_t start, uint64_t len) {
    pages.erase(pages.lower_bound(start), pages.lower_bound(start + len));
  }
  // Linux's top-down search: the highest free range of len bytes.
  std::optional<uint64_t> find_free(uint64_t len) const {
    uint64_t top = size_;
    for (auto it = pages.rbegin();; ++it) {
      uint64_t bottom = it == pages.rend() ? mmap_min_ : std::max(mmap_min_, it->first + kPageSize);
      if (top >= bottom && top - bottom >= len) return top - len;
      if (it == pages.rend()) return std::nullopt;
      top = std::min(top, it->first);
      if (top <= mmap_min_) return std::nullopt;
    }
  }
  // Which byte of [addr, addr+n) first fails `need`, if any.
  std::optional<uint64_t> first_fault(uint64_t addr, uint64_t n, uint8_t need) const {
    for (uint64_t a = addr; a < addr + n; a = (a & kPageMask) + kPageSize) {
      auto it = pages.find(a & kPageMask);
      if (it == pages.end() || !(it->second.perms & need)) return a;
    }
    return std::nullopt;
  }
  std::vector<MappingInfo> listing() const {
    std::vector<MappingInfo> out;
    for (const auto& [a, p] : pages) {
      if (!out.empty() && out.back().start.value() + out.back().length == a && out.back().perms == p.perms)
        out.back().length += kPageSize;
      else
        out.push_back(MappingInfo{GuestAddr(a), kPageSize, p.perms});
    }
    return out;
  }

private:
  uint64_t size_, mmap_min_;
};

void run_property(MemoryStrategy strategy, uint64_t seed, int ops) {
  CAPTURE(strategy_name(strategy));
  CAPTURE(seed);
  test::Rng rng(seed);
  constexpr uint64_t kSpace = uint64_t{4} << 20;  // 1024 pages
  constexpr uint64_t kMin = 0x10000;
  AddressSpaceConfig cfg;
  cfg.size = kSpace;
  cfg.strategy = strategy;
  cfg.mmap_min = kMin;
  auto created = AddressSpace::create(cfg);
  REQUIRE(created.has_value());
  AddressSpace& as = **created;
  Tlb tlb(as.page_table(), TlbConfig{.initial_bits = 3, .min_bits = 2, .max_bits = 5});
  as.add_invalidate_listener([&](GuestAddr a, uint64_t n) { tlb.flush_range(a, n); });
  Model model(kSpace, kMin);
  model.brk_start = model.brk = 0x80000 + 0x123;
  as.set_brk_start(GuestAddr(model.brk));

  // Most activity in a 48-page window so operations overlap often.
  constexpr uint64_t kWindow = 0x40000;
  auto window_page = [&] { return kWindow + rng.below(48) * kPageSize; };
  auto random_perms = [&] { return static_cast<uint8_t>(rng.below(8)); };

  for (int op = 0; op < ops; ++op) {
    CAPTURE(op);
    switch (rng.below(10)) {
      case 0: {  // fixed map (replacing)
        uint64_t a = window_page(), len = rng.range(1, 6) * kPageSize - rng.below(kPageSize);
        uint8_t perms = random_perms();
        bool noreplace = rng.chance(30);
        auto r = as.map(GuestAddr(a), len, perms, noreplace ? kMapFixedNoReplace : kMapFixed);
        uint64_t rounded = (len + kPageSize - 1) & kPageMask;
        if (noreplace && !model.free(a, a + rounded)) {
          REQUIRE_FALSE(r.has_value());
          CHECK(r.error().code == ErrorCode::AlreadyExists);
        } else {
          REQUIRE(r.has_value());
          CHECK(r->value() == a);
          model.unmap(a, rounded);
          model.map(a, rounded, perms);
        }
        break;
      }
      case 1: {  // non-fixed map with a hint
        uint64_t hint = rng.chance(50) ? window_page() : 0;
        uint64_t len = rng.range(1, 8) * kPageSize;
        uint8_t perms = random_perms();
        auto r = as.map(GuestAddr(hint), len, perms);
        std::optional<uint64_t> expect;
        if (hint >= kMin && model.free(hint, hint + len)) expect = hint;
        else expect = model.find_free(len);
        REQUIRE(expect.has_value());
        REQUIRE(r.has_value());
        CHECK(r->value() == *expect);
        model.map(*expect, len, perms);
        if (rng.chance(70)) {  // keep the top of the space from filling up
          REQUIRE(as.unmap(*r, len).has_value());
          model.unmap(*expect, len);
        }
        break;
      }
      case 2: {  // unmap
        uint64_t a = window_page(), len = rng.range(1, 8) * kPageSize - rng.below(kPageSize);
        REQUIRE(as.unmap(GuestAddr(a), len).has_value());
        model.unmap(a, (len + kPageSize - 1) & kPageMask);
        break;
      }
      case 3: {  // protect
        uint64_t a = window_page(), len = rng.range(0, 5) * kPageSize;
        uint8_t perms = random_perms();
        auto r = as.protect(GuestAddr(a), len, perms);
        bool unmapped = false;
        for (uint64_t p = a; p < a + len; p += kPageSize) unmapped |= !model.pages.contains(p);
        if (unmapped) {
          REQUIRE_FALSE(r.has_value());
          CHECK(r.error().code == ErrorCode::NotFound);
        } else {
          REQUIRE(r.has_value());
          for (uint64_t p = a; p < a + len; p += kPageSize) model.pages[p].perms = perms;
        }
        break;
      }
      case 4: {  // brk
        uint64_t want = rng.chance(10) ? 0 : model.brk_start - 0x1000 + rng.below(0x20000);
        GuestAddr got = as.brk(GuestAddr(want));
        uint64_t expect = model.brk;
        if (want >= model.brk_start) {
          uint64_t old_end = (model.brk + kPageSize - 1) & kPageMask;
          uint64_t new_end = (want + kPageSize - 1) & kPageMask;
          if (new_end > old_end) {
            if (model.free(old_end, new_end)) {
              model.map(old_end, new_end - old_end, kPermRW);
              expect = want;
            }
          } else {
            model.unmap(new_end, old_end - new_end);
            expect = want;
          }
        }
        model.brk = expect;
        CHECK(got.value() == expect);
        break;
      }
      case 5:
      case 6: {  // write through the address space or the Tlb
        uint64_t a = kWindow - 0x800 + rng.below(0x70000), n = rng.range(1, 6000);
        std::vector<uint8_t> data(n);
        for (auto& b : data) b = rng.byte();
        bool via_tlb = strategy == MemoryStrategy::SoftMmu && rng.chance(50);
        auto r = via_tlb ? tlb.write(GuestAddr(a), data) : as.write(GuestAddr(a), data);
        auto fault = model.first_fault(a, n, kPermWrite);
        if (fault) {
          REQUIRE_FALSE(r.has_value());
          CHECK(r.error().code == ErrorCode::GuestFault);
          CHECK(r.error().addr == GuestAddr(*fault));
        } else {
          REQUIRE(r.has_value());
          for (uint64_t i = 0; i < n; ++i) model.pages[(a + i) & kPageMask].data[(a + i) & ~kPageMask] = data[i];
        }
        break;
      }
      default: {  // read or fetch
        uint64_t a = kWindow - 0x800 + rng.below(0x70000), n = rng.range(1, 6000);
        bool fetch = rng.chance(30);
        bool via_tlb = !fetch && strategy == MemoryStrategy::SoftMmu && rng.chance(50);
        std::vector<uint8_t> out(n);
        auto r = fetch ? as.fetch(GuestAddr(a), out) : via_tlb ? tlb.read(GuestAddr(a), out) : as.read(GuestAddr(a), out);
        auto fault = model.first_fault(a, n, fetch ? kPermExec : kPermRead);
        if (fault) {
          REQUIRE_FALSE(r.has_value());
          CHECK(r.error().code == ErrorCode::GuestFault);
          CHECK(r.error().addr == GuestAddr(*fault));
        } else {
          REQUIRE(r.has_value());
          bool same = true;
          for (uint64_t i = 0; i < n && same; ++i)
            same = model.pages[(a + i) & kPageMask].data[(a + i) & ~kPageMask] == out[i];
          CHECK(same);
        }
        break;
      }
    }
    if (op % 64 == 0) REQUIRE(as.mappings() == model.listing());
  }
  CHECK(as.mappings() == model.listing());
}

}  // namespace

TEST_CASE("property: AddressSpace matches the page-map model (direct)") {
  int ops = test::proptest_iterations(3000);
  for (uint64_t seed : {1, 2}) run_property(MemoryStrategy::Direct, seed, ops);
}

TEST_CASE("property: AddressSpace matches the page-map model (softmmu, with a Tlb)") {
  int ops = test::proptest_iterations(3000);
  for (uint64_t seed : {3, 4}) run_property(MemoryStrategy::SoftMmu, seed, ops);
}
