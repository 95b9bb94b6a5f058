// Multi-threaded stress tests, built as their own binary so CI can run them
// under ThreadSanitizer. Every check compares what a thread observed with
// what the page table / allocator promised; none depends on timing.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vm/mem/address_space.hpp"
#include "vm/mem/concurrent_tlb.hpp"
#include "vm/mem/memory_pool.hpp"

using namespace vm::mem;
using vm::core::Access;
using vm::core::ErrorCode;
using vm::core::GuestAddr;
using vm::core::kPermExec;
using vm::core::kPermRead;
using vm::core::kPermRW;
using vm::core::kPermRWX;
using vm::core::kPermWrite;

namespace {

// Every host frame the stress test ever maps says which guest page and which
// version of that page's mapping it is, and with which permissions. Frames
// are never reused, so a translation can be checked long after it was made.
struct FrameHeader {
  uint64_t vpn;
  uint64_t version;
  uint8_t perms;
};


// `bits` = log2 of the TLB size: 16 slots for 48 pages makes slots change
// owner constantly (torn-entry hunting); 64 slots keeps stale entries alive
// long enough for readers to find them (lost-flush hunting).
void concurrent_tlb_stress(unsigned bits) {
  CAPTURE(bits);
  constexpr uint64_t kPages = 48;
  const int mutations = vm::mem::test::proptest_iterations(3000);
  const uint64_t frames_needed = kPages + static_cast<uint64_t>(mutations) + 1;
  void* arena = mmap(nullptr, frames_needed * kPageSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(arena != MAP_FAILED);
  auto* frames = static_cast<uint8_t*>(arena);
  uint64_t next_frame = 0;

  auto pt = PageTable::create(kPages);
  REQUIRE(pt.has_value());
  ConcurrentTlb tlb(*pt, bits);
  // Widen the refill/flush race window on one refill in four.
  tlb.set_fill_pause_for_testing([] {
    thread_local uint32_t n = 0;
    if ((++n & 3) == 0) std::this_thread::yield();
  });
  std::vector<std::atomic<uint64_t>> committed(kPages);
  std::vector<uint64_t> version(kPages, 0);  // mutator-private

  auto install = [&](uint64_t vpn, uint64_t v, uint8_t perms) {
    uint8_t* f = frames + (next_frame++) * kPageSize;
    auto* h = reinterpret_cast<FrameHeader*>(f);
    h->vpn = vpn;
    h->version = v;
    h->perms = perms;
    pt->set(vpn, f, perms);
  };
  for (uint64_t v = 0; v < kPages; ++v) {
    install(v, 0, kPermRWX);
    committed[v].store(0);
  }

  std::atomic<bool> done{false};
  std::atomic<uint64_t> checked{0}, faults{0};
  std::atomic<int> failures{0};

  auto reader = [&](uint64_t seed) {
    vm::mem::test::Rng rng(seed);
    uint64_t local_checked = 0;
    while (!done.load(std::memory_order_relaxed) || local_checked < 2000) {
      uint64_t vpn = rng.below(kPages);
      uint64_t off = rng.below(kPageSize - 8);
      auto kind = static_cast<Access>(rng.below(3));
      uint64_t floor = committed[vpn].load(std::memory_order_acquire);
      uint8_t* host = nullptr;
      if (rng.chance(50)) {
        host = tlb.lookup(GuestAddr(vpn * kPageSize + off), 8, kind);
      } else {
        auto r = tlb.translate(GuestAddr(vpn * kPageSize + off), 8, kind);
        if (r) host = *r;
        else if (r.error().code != ErrorCode::GuestFault) failures.fetch_add(1);
        else faults.fetch_add(1, std::memory_order_relaxed);
      }
      if (host == nullptr) continue;
      auto frame = reinterpret_cast<uintptr_t>(host) & ~uintptr_t{kPageSize - 1};
      const auto* h = reinterpret_cast<const FrameHeader*>(frame);
      bool ok = reinterpret_cast<uintptr_t>(host) - frame == off  // right offset
                && h->vpn == vpn                                   // right guest page (no torn entry)
                && h->version >= floor                             // nothing flushed before we started
                && (h->perms & required_perm(kind)) != 0;                // permissions of that same mapping
      if (!ok) failures.fetch_add(1);
      ++local_checked;
    }
    checked.fetch_add(local_checked);
  };

  // Changes the page table, flushes, then publishes the new version: a
  // reader that starts after the publication must not see older frames.
  auto mutator = [&] {
    vm::mem::test::Rng rng(100);
    for (int i = 0; i < mutations; ++i) {
      uint64_t vpn = rng.below(kPages);
      uint64_t v = ++version[vpn];
      if (rng.chance(15)) pt->clear(vpn);
      else install(vpn, v, static_cast<uint8_t>(rng.range(1, 7)));
      uint64_t how = rng.below(10);
      if (how == 0) tlb.flush_all();
      else if (how < 4) tlb.flush_range(GuestAddr((vpn - std::min<uint64_t>(vpn, 2)) * kPageSize), 5 * kPageSize);
      else tlb.flush_page(GuestAddr(vpn * kPageSize + rng.below(kPageSize)));
      committed[vpn].store(v, std::memory_order_release);
    }
  };

  // Flushes with no page-table change, racing with fills.
  auto flusher = [&] {
    vm::mem::test::Rng rng(200);
    while (!done.load(std::memory_order_relaxed)) {
      uint64_t how = rng.below(10);
      if (how == 0) tlb.flush_all();
      else if (how < 3) tlb.flush_range(GuestAddr(rng.below(kPages) * kPageSize), rng.range(1, 20) * kPageSize);
      else tlb.flush_page(GuestAddr(rng.below(kPages) * kPageSize));
      std::this_thread::yield();
    }
  };

  std::vector<std::thread> threads;
  for (uint64_t r = 0; r < 3; ++r) threads.emplace_back(reader, 1000 + r);
  threads.emplace_back(flusher);
  std::thread m(mutator);
  m.join();
  done = true;
  for (auto& t : threads) t.join();

  CHECK(failures.load() == 0);
  CHECK(checked.load() >= 6000);
  MESSAGE("checked ", checked.load(), " translations, ", faults.load(), " faults, ", tlb.fills(), " fills");

  // Quiescent: every translation is exactly the page table's.
  for (uint64_t vpn = 0; vpn < kPages; ++vpn) {
    PageEntry e = pt->get(vpn);
    for (Access kind : {Access::Read, Access::Write, Access::Fetch}) {
      auto r = tlb.translate(GuestAddr(vpn * kPageSize + 16), 8, kind);
      if (e.present() && (e.perms & required_perm(kind))) {
        REQUIRE(r.has_value());
        CHECK(*r == e.host + 16);
      } else {
        CHECK_FALSE(r.has_value());
      }
    }
  }
  munmap(arena, frames_needed * kPageSize);
}

}  // namespace

TEST_CASE("stress: ConcurrentTlb translations always match a current-or-newer page table mapping") {
  concurrent_tlb_stress(4);
  concurrent_tlb_stress(6);
}

TEST_CASE("stress: MemoryPool blocks passed between threads stay intact") {
  auto created = MemoryPool::create(MemoryPoolConfig{uint64_t{1} << 30});
  REQUIRE(created.has_value());
  MemoryPool& pool = **created;
  const int per_thread = vm::mem::test::proptest_iterations(3000);
  std::mutex queue_mutex;
  std::deque<std::pair<uint8_t*, size_t>> queue;
  std::atomic<int> failures{0};
  std::atomic<int> producers_left{3};

  auto worker = [&](uint64_t seed) {
    vm::mem::test::Rng rng(seed);
    auto check_free = [&](uint8_t* p, size_t n) {
      auto tag = static_cast<uint8_t>(n * 31);
      for (size_t i = 0; i < n; i += 97)
        if (p[i] != tag) failures.fetch_add(1);
      if (!pool.deallocate(p, n)) failures.fetch_add(1);
    };
    for (int i = 0; i < per_thread; ++i) {
      size_t n = rng.chance(80) ? rng.range(1, 512) : rng.range(513, 20000);
      auto p = pool.allocate(n);
      if (!p) {
        failures.fetch_add(1);
        continue;
      }
      std::memset(*p, static_cast<uint8_t>(n * 31), n);
      std::pair<uint8_t*, size_t> mine{static_cast<uint8_t*>(*p), n}, other{nullptr, 0};
      {
        std::lock_guard lock(queue_mutex);
        queue.push_back(mine);
        if (queue.size() > 64) {
          other = queue.front();
          queue.pop_front();
        }
      }
      if (other.first != nullptr) check_free(other.first, other.second);
    }
    if (producers_left.fetch_sub(1) == 1) {
      std::lock_guard lock(queue_mutex);
      for (auto [p, n] : queue) check_free(p, n);
      queue.clear();
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 3; ++t) threads.emplace_back(worker, 500 + t);
  for (auto& t : threads) t.join();
  CHECK(failures.load() == 0);
  MemoryPoolStats s = pool.stats();
  CHECK(s.bytes_in_use == 0);
  CHECK(s.allocations == 3 * static_cast<uint64_t>(per_thread));
  CHECK(s.deallocations == s.allocations);
}

TEST_CASE("stress: racing double frees - exactly one free of each block succeeds") {
  auto created = MemoryPool::create(MemoryPoolConfig{uint64_t{1} << 28});
  REQUIRE(created.has_value());
  MemoryPool& pool = **created;
  constexpr int kBlocks = 2000;
  std::vector<void*> blocks;
  for (int i = 0; i < kBlocks; ++i) blocks.push_back(*pool.allocate(64));
  std::atomic<int> ok{0}, rejected{0};
  auto freer = [&] {
    for (void* p : blocks) (pool.deallocate(p) ? ok : rejected).fetch_add(1);
  };
  std::thread a(freer), b(freer);
  a.join();
  b.join();
  CHECK(ok.load() == kBlocks);
  CHECK(rejected.load() == kBlocks);
  CHECK(pool.stats().double_frees == static_cast<uint64_t>(kBlocks));
  CHECK(pool.stats().bytes_in_use == 0);
}

TEST_CASE("stress: AddressSpace reads never see a half-done map or unmap") {
  for (auto strategy : {MemoryStrategy::Direct, MemoryStrategy::SoftMmu}) {
    std::string name = strategy_name(strategy);
    CAPTURE(name);
    AddressSpaceConfig cfg;
    cfg.size = uint64_t{16} << 20;
    cfg.strategy = strategy;
    auto created = AddressSpace::create(cfg);
    REQUIRE(created.has_value());
    AddressSpace& as = **created;
    constexpr uint64_t kBase = 0x100000, kSpan = 8 * kPageSize;
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::atomic<uint64_t> reads{0};
    std::atomic<int> readers_started{0};
    const int rounds = vm::mem::test::proptest_iterations(3000) / 3;

    // Each round replaces the span with a file mapping of one fill byte (one
    // locked operation: replace + copy) and sometimes unmaps it. A read of
    // the whole span either faults or sees exactly one fill byte; guest-level
    // writes are left out on purpose, since racing guest reads and writes
    // may legitimately interleave.
    auto writer = [&] {
      std::vector<uint8_t> data(kSpan);
      vm::mem::test::Rng rng(7);
      while (readers_started.load() < 2) std::this_thread::yield();
      for (int i = 0; i <= rounds; ++i) {
        std::fill(data.begin(), data.end(), static_cast<uint8_t>(1 + i % 250));
        auto report = [&](const vm::core::Error& e) {
          if (failures.fetch_add(1) == 0) MESSAGE(e.to_string());
        };
        if (auto r = as.map_file(GuestAddr(kBase), kSpan, kPermRW, kMapFixed, data, 0); !r) report(r.error());
        if (i == rounds) break;  // leave the span mapped at the end
        if (rng.chance(30)) {
          if (auto r = as.unmap(GuestAddr(kBase + rng.below(8) * kPageSize), kPageSize); !r) report(r.error());
        } else if (rng.chance(30)) {
          if (auto r = as.protect(GuestAddr(kBase), kSpan, kPermRead); !r) report(r.error());
        }
      }
    };
    auto reader = [&] {
      std::vector<uint8_t> out(kSpan);
      readers_started.fetch_add(1);
      for (uint64_t after_done = 0; after_done < 100;) {
        if (done.load(std::memory_order_relaxed)) ++after_done;
        if (as.read(GuestAddr(kBase), out)) {
          uint8_t first = out[0];
          if (first == 0) failures.fetch_add(1);
          for (uint64_t i = 0; i < kSpan; i += 256)
            if (out[i] != first) failures.fetch_add(1);
          reads.fetch_add(1, std::memory_order_relaxed);
        }
        (void)as.mappings();
      }
    };
    std::thread r1(reader), r2(reader);
    std::thread w(writer);
    w.join();
    done = true;
    r1.join();
    r2.join();
    CHECK(failures.load() == 0);
    CHECK(reads.load() > 0);
    MESSAGE(name, ": ", reads.load(), " consistent whole-span reads");
  }
}
