#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vm/mem/memory_pool.hpp"

using namespace vm::mem;
using vm::core::ErrorCode;

namespace {

std::unique_ptr<MemoryPool> make_pool(uint64_t arena = uint64_t{256} << 20) {
  auto p = MemoryPool::create(MemoryPoolConfig{arena});
  REQUIRE(p.has_value());
  return std::move(*p);
}

}  // namespace

TEST_CASE("MemoryPool size classes cover 16 B - 64 KiB tightly") {
  CHECK(MemoryPool::class_bytes(0) == 16);
  CHECK(MemoryPool::class_bytes(MemoryPool::kNumClasses - 1) == 64 * 1024);
  for (unsigned c = 1; c < MemoryPool::kNumClasses; ++c) {
    CHECK(MemoryPool::class_bytes(c) > MemoryPool::class_bytes(c - 1));
    CHECK(MemoryPool::class_bytes(c) % 16 == 0);
  }
  for (size_t s = 1; s <= MemoryPool::kMaxSmall; ++s) {
    unsigned c = MemoryPool::class_index(s);
    REQUIRE(c < MemoryPool::kNumClasses);
    REQUIRE(MemoryPool::class_bytes(c) >= s);
    if (c > 0) REQUIRE(MemoryPool::class_bytes(c - 1) < s);
    // At most 25 % internal waste above 128 bytes.
    if (s > 128) REQUIRE(MemoryPool::class_bytes(c) * 4 <= s * 5 + 64);
  }
  for (unsigned k = 4; k <= 16; ++k)
    CHECK(MemoryPool::class_bytes(MemoryPool::class_index(size_t{1} << k)) == (size_t{1} << k));
}

TEST_CASE("MemoryPool: allocate, write, free, reuse") {
  auto pool = make_pool();
  auto a = pool->allocate(100);
  REQUIRE(a.has_value());
  std::memset(*a, 0xab, 100);
  CHECK(*pool->block_size(*a) == 112);
  CHECK(pool->owns(*a));
  REQUIRE(pool->deallocate(*a).has_value());
  CHECK_FALSE(pool->owns(*a));
  auto b = pool->allocate(112);
  REQUIRE(b.has_value());
  CHECK(*b == *a);  // LIFO thread cache
  REQUIRE(pool->deallocate(*b, 112).has_value());
  MemoryPoolStats s = pool->stats();
  CHECK(s.allocations == 2);
  CHECK(s.deallocations == 2);
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slabs == 1);
}

TEST_CASE("MemoryPool: alignment") {
  auto pool = make_pool();
  for (size_t size : {16, 64, 256, 4096, 65536}) {
    auto p = pool->allocate(size);
    REQUIRE(p.has_value());
    CHECK(reinterpret_cast<uintptr_t>(*p) % size == 0);
  }
  auto page = pool->allocate(4096, 4096);
  REQUIRE(page.has_value());
  CHECK(reinterpret_cast<uintptr_t>(*page) % 4096 == 0);
  auto odd = pool->allocate(100, 256);
  REQUIRE(odd.has_value());
  CHECK(reinterpret_cast<uintptr_t>(*odd) % 256 == 0);
  CHECK(pool->deallocate(*odd, 100, 256).has_value());
  auto big = pool->allocate(100000, 4096);
  REQUIRE(big.has_value());
  CHECK(reinterpret_cast<uintptr_t>(*big) % 4096 == 0);
  CHECK(pool->allocate(64, 3).error().code == ErrorCode::InvalidArgument);
  CHECK(pool->allocate(64, 8192).error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("MemoryPool: misuse is an error, never undefined behaviour") {
  auto pool = make_pool();
  CHECK(pool->allocate(0).error().code == ErrorCode::InvalidArgument);
  CHECK(pool->deallocate(nullptr).error().code == ErrorCode::InvalidArgument);

  auto a = pool->allocate(48);
  REQUIRE(a.has_value());
  REQUIRE(pool->deallocate(*a).has_value());
  auto twice = pool->deallocate(*a);
  CHECK(twice.error().code == ErrorCode::InvalidArgument);
  CHECK(twice.error().message.find("double free") != std::string::npos);

  int on_stack = 0;
  CHECK(pool->deallocate(&on_stack).error().code == ErrorCode::InvalidArgument);
  void* from_malloc = std::malloc(32);
  CHECK(pool->deallocate(from_malloc).error().code == ErrorCode::InvalidArgument);
  std::free(from_malloc);

  auto b = pool->allocate(256);
  REQUIRE(b.has_value());
  auto interior = pool->deallocate(static_cast<uint8_t*>(*b) + 16);
  CHECK(interior.error().message.find("not the start") != std::string::npos);
  CHECK(pool->deallocate(*b, 512).error().code == ErrorCode::InvalidArgument);  // size mismatch
  CHECK(pool->deallocate(*b, 100000).error().code == ErrorCode::InvalidArgument);
  CHECK(pool->owns(*b));  // the failed calls freed nothing
  CHECK(pool->deallocate(*b, 250).has_value());  // same class: fine

  // A block inside a slab that was never handed out.
  auto c = pool->allocate(1024);
  REQUIRE(c.has_value());
  CHECK(pool->deallocate(static_cast<uint8_t*>(*c) + 1024 * 40).error().code == ErrorCode::InvalidArgument);
  REQUIRE(pool->deallocate(*c).has_value());

  auto big = pool->allocate(200000);
  REQUIRE(big.has_value());
  CHECK(pool->deallocate(*big, 64).error().code == ErrorCode::InvalidArgument);
  CHECK(pool->deallocate(*big, 300000).error().code == ErrorCode::InvalidArgument);
  REQUIRE(pool->deallocate(*big, 200000).has_value());
  CHECK(pool->deallocate(*big).error().code == ErrorCode::InvalidArgument);

  // Another pool's block is foreign here.
  auto other = make_pool();
  auto o = other->allocate(64);
  REQUIRE(o.has_value());
  CHECK(pool->deallocate(*o).error().code == ErrorCode::InvalidArgument);
  CHECK(other->deallocate(*o).has_value());

  MemoryPoolStats s = pool->stats();
  CHECK(s.double_frees == 2);
  CHECK(s.foreign_frees == 5);
  CHECK(s.size_mismatches == 4);
  CHECK(s.bytes_in_use == 0);
}

TEST_CASE("MemoryPool: large spans are page backed and counted") {
  auto pool = make_pool();
  auto a = pool->allocate(65537);
  REQUIRE(a.has_value());
  CHECK(*pool->block_size(*a) == 69632);
  std::memset(*a, 1, 65537);
  MemoryPoolStats s = pool->stats();
  CHECK(s.large_in_use == 1);
  CHECK(s.bytes_in_use == 69632);
  REQUIRE(pool->deallocate(*a).has_value());
  CHECK(pool->stats().large_in_use == 0);
}

TEST_CASE("MemoryPool: an exhausted arena is an error, and recovers after frees") {
  auto pool = make_pool(MemoryPool::kSlabBytes);  // one slab
  std::vector<void*> got;
  for (int i = 0; i < 4; ++i) {
    auto p = pool->allocate(65536);
    REQUIRE(p.has_value());
    got.push_back(*p);
  }
  auto full = pool->allocate(65536);
  CHECK(full.error().code == ErrorCode::OutOfMemory);
  CHECK(pool->allocate(16).error().code == ErrorCode::OutOfMemory);  // no slab left for another class
  REQUIRE(pool->deallocate(got.back()).has_value());
  CHECK(pool->allocate(65536).has_value());
  CHECK(MemoryPool::create(MemoryPoolConfig{4096}).error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("MemoryPool: a thread's cache goes back to the pool when it exits") {
  auto pool = make_pool();
  void* from_thread = nullptr;
  std::thread([&] {
    for (int i = 0; i < 10; ++i) {
      auto p = pool->allocate(64);
      REQUIRE(p.has_value());
      if (i == 0) from_thread = *p;
      else REQUIRE(pool->deallocate(*p).has_value());
    }
  }).join();
  // Freed here, by a thread that did not allocate it.
  REQUIRE(pool->deallocate(from_thread).has_value());
  std::thread([&] {
    auto p = pool->allocate(64);  // reuses the exited thread's cache
    REQUIRE(p.has_value());
    REQUIRE(pool->deallocate(*p).has_value());
  }).join();
  MemoryPoolStats s = pool->stats();
  CHECK(s.threads == 2);  // the main thread's cache and one reused by both workers
  CHECK(s.bytes_in_use == 0);
  CHECK(s.allocations == 11);
}

TEST_CASE("MemoryPool: a pool destroyed before a thread exits is skipped at exit") {
  std::thread t;
  {
    auto pool = make_pool();
    std::atomic<int> step{0};
    t = std::thread([&, p = pool.get()] {
      auto a = p->allocate(32);
      REQUIRE(a.has_value());
      REQUIRE(p->deallocate(*a).has_value());
      step = 1;
      while (step.load() != 2) std::this_thread::yield();
    });
    while (step.load() != 1) std::this_thread::yield();
    pool.reset();
    step = 2;
    t.join();  // the thread's exit must not touch the destroyed pool
  }
  auto again = make_pool();
  CHECK(again->allocate(32).has_value());
}

TEST_CASE("property: random allocate/free sequences against a shadow set") {
  auto pool = make_pool();
  test::Rng rng(31);
  struct Live {
    size_t size;
    size_t alignment;
    uint8_t fill;
  };
  std::map<uintptr_t, Live> live;
  int ops = test::proptest_iterations(20000);
  uint64_t expected_allocs = 0;
  auto check_and_free = [&](std::map<uintptr_t, Live>::iterator it) {
    auto* p = reinterpret_cast<uint8_t*>(it->first);
    bool intact = true;
    for (size_t i = 0; i < it->second.size; i += 61) intact &= p[i] == it->second.fill;
    intact &= p[it->second.size - 1] == it->second.fill;
    REQUIRE(intact);  // no other block overlapped this one
    bool sized = rng.chance(50);
    auto r = sized ? pool->deallocate(p, it->second.size, it->second.alignment) : pool->deallocate(p);
    REQUIRE(r.has_value());
    live.erase(it);
  };
  for (int op = 0; op < ops; ++op) {
    if (live.empty() || rng.chance(55)) {
      size_t size;
      uint64_t kind = rng.below(100);
      if (kind < 60) size = rng.range(1, 256);
      else if (kind < 95) size = rng.range(257, 65536);
      else size = rng.range(65537, 300000);
      size_t alignment = rng.chance(20) ? size_t{1} << rng.below(13) : 16;
      auto p = pool->allocate(size, alignment);
      REQUIRE(p.has_value());
      auto addr = reinterpret_cast<uintptr_t>(*p);
      REQUIRE(addr % std::min<size_t>(alignment, 4096) == 0);
      REQUIRE_FALSE(live.contains(addr));
      auto fill = static_cast<uint8_t>(rng.byte() | 1);
      std::memset(*p, fill, size);
      live[addr] = Live{size, alignment, fill};
      ++expected_allocs;
    } else {
      auto it = live.lower_bound(rng.below(~uintptr_t{0}));
      if (it == live.end()) it = live.begin();
      if (rng.chance(3)) {  // a wrong free first: must fail and change nothing
        auto* p = reinterpret_cast<uint8_t*>(it->first);
        REQUIRE_FALSE(pool->deallocate(p + 8).has_value());
      }
      check_and_free(it);
    }
    if (op % 1000 == 0) {
      // Live blocks never overlap.
      uintptr_t end = 0;
      for (const auto& [addr, l] : live) {
        REQUIRE(addr >= end);
        end = addr + l.size;
      }
    }
  }
  while (!live.empty()) check_and_free(live.begin());
  MemoryPoolStats s = pool->stats();
  CHECK(s.allocations == expected_allocs);
  CHECK(s.deallocations == expected_allocs);
  CHECK(s.bytes_in_use == 0);
  CHECK(s.large_in_use == 0);
}
