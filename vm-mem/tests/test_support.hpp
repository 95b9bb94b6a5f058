// Shared helpers of the vm-mem tests: the property-test iteration knob and a
// small deterministic random generator (fixed seeds; VM_PROPTEST_ITERATIONS
// scales the runs up for long local sessions).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "vm/mem/page_table.hpp"

namespace vm::mem::test {

// Number of random operations for a property test: `fallback` in CI, or
// VM_PROPTEST_ITERATIONS when set.
inline int proptest_iterations(int fallback) {
  if (const char* v = std::getenv("VM_PROPTEST_ITERATIONS")) {
    long n = std::strtol(v, nullptr, 10);
    if (n > 0) return static_cast<int>(n);
  }
  return fallback;
}

class Rng {
public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(gen_); }
  uint64_t range(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(gen_); }
  bool chance(unsigned percent) { return below(100) < percent; }
  uint8_t byte() { return static_cast<uint8_t>(below(256)); }

private:
  std::mt19937_64 gen_;
};

// A page table whose pages are backed by separately allocated frames, so
// translations of different pages are unrelated host addresses. A frame is
// filled with the low byte of its page number.
struct TestPages {
  PageTable pt;
  std::vector<uint8_t*> frames;
  explicit TestPages(uint64_t pages) : pt(*PageTable::create(pages)) {}
  ~TestPages() {
    for (uint8_t* f : frames) std::free(f);
  }
  TestPages(const TestPages&) = delete;
  TestPages& operator=(const TestPages&) = delete;
  uint8_t* map(uint64_t vpn, uint8_t perms, uint8_t flags = 0) {
    auto* f = static_cast<uint8_t*>(std::aligned_alloc(kPageSize, kPageSize));
    std::memset(f, static_cast<int>(vpn & 0xff), kPageSize);
    frames.push_back(f);
    pt.set(vpn, f, perms, flags);
    return f;
  }
};

}  // namespace vm::mem::test
