// Shared set-up for the vm-mem benchmarks: a page table whose guest pages are
// backed by shuffled host frames, and a fixed pseudo-random address stream.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "vm/mem/page_table.hpp"

namespace vm::mem::bench {

struct BenchPages {
  PageTable pt;
  uint8_t* frames = nullptr;
  uint64_t pages = 0;

  explicit BenchPages(uint64_t n, uint8_t perms = core::kPermRWX) : pt(*PageTable::create(n)), pages(n) {
    frames = static_cast<uint8_t*>(
        mmap(nullptr, n * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    std::vector<uint64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
    for (uint64_t v = 0; v < n; ++v) pt.set(v, frames + order[v] * kPageSize, perms);
  }
  ~BenchPages() { munmap(frames, pages * kPageSize); }
  BenchPages(const BenchPages&) = delete;
  BenchPages& operator=(const BenchPages&) = delete;
};

// `count` 8-byte-aligned addresses spread over guest pages [0, pages).
inline std::vector<core::GuestAddr> address_stream(uint64_t pages, size_t count, uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  std::vector<core::GuestAddr> out(count);
  for (auto& a : out) a = core::GuestAddr((rng() % pages) * kPageSize + (rng() % (kPageSize / 8)) * 8);
  return out;
}

}  // namespace vm::mem::bench
