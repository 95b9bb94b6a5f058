// Test support for comparing lowered code with the vm-ir interpreter: a flat
// guest memory window that both sides see (the interpreter through
// core::GuestMemory with faults outside the window, generated code through
// the Direct strategy's guest_base + (addr & mask)), random initial states,
// and a readable diff of two final states. Header-only so vm-engine's JIT
// tests and vm-translate's cross tests share it.
#pragma once

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "vm/core/memory.hpp"
#include "vm/core/x86_state.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/translate/lowering.hpp"

namespace vm::testing {

// Guest addresses [base, base + size) are accessible; host storage is a
// buffer of mask + 1 bytes indexed by addr & mask.
class FlatMemory final : public core::GuestMemory {
public:
  static constexpr uint64_t kMask = 0x1ffff;
  FlatMemory(uint64_t base, uint64_t size) : base_(base), size_(size), bytes_(kMask + 1 + 64, 0) {}

  core::Result<void> read(core::GuestAddr addr, std::span<uint8_t> out) override {
    if (auto r = check(addr.value(), out.size()); !r) return r;
    for (size_t i = 0; i < out.size(); ++i) out[i] = bytes_[(addr.value() + i) & kMask];
    return {};
  }
  core::Result<void> write(core::GuestAddr addr, std::span<const uint8_t> data) override {
    if (auto r = check(addr.value(), data.size()); !r) return r;
    for (size_t i = 0; i < data.size(); ++i) bytes_[(addr.value() + i) & kMask] = data[i];
    return {};
  }
  core::Result<void> fetch(core::GuestAddr addr, std::span<uint8_t> out) override { return read(addr, out); }

  uint8_t* host() { return bytes_.data(); }
  uint64_t base() const { return base_; }
  uint64_t size() const { return size_; }
  // The window's bytes, in guest order.
  std::vector<uint8_t> window() const {
    std::vector<uint8_t> w(size_);
    for (uint64_t i = 0; i < size_; ++i) w[i] = bytes_[(base_ + i) & kMask];
    return w;
  }
  void fill(std::mt19937_64& rng) {
    for (uint64_t i = 0; i < size_; ++i) bytes_[(base_ + i) & kMask] = static_cast<uint8_t>(rng());
  }
  void copy_from(const FlatMemory& o) { bytes_ = o.bytes_; }

  // A MemoryContext for the Direct strategy over this memory.
  translate::MemoryContext direct_context(const ir::HelperFn* helpers = nullptr) {
    translate::MemoryContext c;
    c.guest_base = reinterpret_cast<uint64_t>(bytes_.data());
    c.region_mask = kMask;
    c.helpers = helpers;
    return c;
  }

private:
  core::Result<void> check(uint64_t addr, size_t n) const {
    for (size_t i = 0; i < n; ++i) {
      uint64_t a = addr + i;
      if (a < base_ || a >= base_ + size_)
        return core::fail(core::ErrorCode::GuestFault, "outside the test window", core::GuestAddr(a));
    }
    return {};
  }
  uint64_t base_, size_;
  std::vector<uint8_t> bytes_;
};

// Random register values with a bias toward interesting floats, flags 0/1,
// and a random MXCSR rounding field (exceptions masked).
inline core::X86State random_state(std::mt19937_64& rng) {
  core::X86State s;
  auto special = [&]() -> uint64_t {
    static constexpr uint64_t kSpecial[] = {0x7ff8000000000001ull, 0xfff0000000000000ull, 0x7ff4000000000000ull,
                                            0x8000000000000000ull, 0x3ff0000000000000ull, 0x7fc000017fa00002ull,
                                            0x000000007f800001ull, 0x41dfffffffc00000ull, 0xc3e0000000000000ull,
                                            0x3fe0000000000000ull, 0x4f0000004effffffull, 0xff800000ffc00000ull};
    return kSpecial[rng() % std::size(kSpecial)];
  };
  auto value = [&]() -> uint64_t {
    switch (rng() % 5) {
      case 0: return special();
      case 1: return rng() % 256;
      default: return rng();
    }
  };
  for (auto& g : s.gpr) g = value();
  s.rip = 0x401000;
  s.fs_base = rng();
  s.gs_base = rng();
  s.cf = rng() & 1;
  s.pf = rng() & 1;
  s.af = rng() & 1;
  s.zf = rng() & 1;
  s.sf = rng() & 1;
  s.of = rng() & 1;
  s.df = rng() & 1;
  for (auto& x : s.xmm) x = core::Xmm{value(), value()};
  s.mxcsr = core::kDefaultMxcsr | static_cast<uint32_t>((rng() % 4) << 13);
  return s;
}

inline std::string state_diff(const core::X86State& want, const core::X86State& got) {
  std::string out;
  for (const auto& ri : core::kX86Regs) {
    const uint8_t* a = core::reg_ptr(want, ri.id);
    const uint8_t* b = core::reg_ptr(got, ri.id);
    if (std::memcmp(a, b, ri.size) == 0) continue;
    uint64_t wa[2] = {}, wb[2] = {};
    std::memcpy(wa, a, ri.size);
    std::memcpy(wb, b, ri.size);
    out += fmt::format("  {}: want {:#x}:{:#x} got {:#x}:{:#x}\n", ri.name, wa[1], wa[0], wb[1], wb[0]);
  }
  return out;
}

inline std::string memory_diff(const std::vector<uint8_t>& want, const std::vector<uint8_t>& got, uint64_t base) {
  std::string out;
  int shown = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    if (want[i] == got[i]) continue;
    if (shown++ < 8) out += fmt::format("  mem[{:#x}]: want {:#04x} got {:#04x}\n", base + i, want[i], got[i]);
  }
  if (want.size() != got.size()) out += "  memory sizes differ\n";
  return out;
}

// The exit the interpreter's result corresponds to.
inline translate::ExitInfo expected_exit(const ir::ExecResult& r) {
  if (r.kind == ir::TermKind::Trap) return {r.kind, r.trap, r.vector};
  return {r.kind, ir::TrapReason::InvalidOpcode, 0};
}

}  // namespace vm::testing
