// Test support: one fixed guest memory layout run two ways, on our frontend
// + vm-ir interpreter and on Unicorn (the oracle), so table tests and the
// differential tests compare like with like.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vm/core/x86_state.hpp"
#include "vm/translate/x86.hpp"

namespace vm::translate::test {

inline constexpr uint64_t kCodeBase = 0x1000000;
inline constexpr uint64_t kCodeSize = 0x4000;
inline constexpr uint64_t kDataBase = 0x200000;
inline constexpr uint64_t kDataSize = 0x2000;
inline constexpr uint64_t kStackBase = 0x7ff00000;
inline constexpr uint64_t kStackSize = 0x10000;

struct Machine {
  core::X86State regs;
  std::vector<uint8_t> data = std::vector<uint8_t>(kDataSize, 0);
  std::vector<uint8_t> stack = std::vector<uint8_t>(kStackSize, 0);
  Machine();  // rsp in the middle of the stack, rip at kCodeBase
};

struct Outcome {
  bool completed = false;  // reached the end of the code
  uint64_t pc = 0;         // where it stopped otherwise
  std::string what;        // reason for not completing
};

// Runs `code` at kCodeBase from m.regs.rip until rip == kCodeBase + size.
Outcome run_ours(std::span<const uint8_t> code, Machine& m);

// Runs `code` natively in a forked child at the same addresses (the oracle
// where Unicorn is known wrong). The epilogue must be reached by falling off
// the end of the code.
Outcome run_native(std::span<const uint8_t> code, Machine& m);

class Unicorn {
public:
  Unicorn();
  ~Unicorn();
  Unicorn(const Unicorn&) = delete;
  Unicorn& operator=(const Unicorn&) = delete;
  Outcome run(std::span<const uint8_t> code, Machine& m);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Compares registers, flags (except `flag_mask_out`, RFLAGS bit positions),
// and memory; returns a description of every difference.
std::string compare(const Machine& ours, const Machine& oracle, uint32_t flag_mask_out = 0, bool compare_xmm = true);

std::string describe(const Machine& m);

}  // namespace vm::translate::test
