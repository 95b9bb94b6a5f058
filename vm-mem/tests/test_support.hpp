// Shared helpers of the vm-mem tests: the property-test iteration knob and a
// small deterministic random generator (fixed seeds; VM_PROPTEST_ITERATIONS
// scales the runs up for long local sessions).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>

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

}  // namespace vm::mem::test
