// GuestAddr: a guest virtual address as a distinct type, so host pointers,
// sizes and guest addresses cannot be mixed up silently. Arithmetic with
// plain integers wraps modulo 2^64 like the guest's own address arithmetic.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

#include <fmt/format.h>

namespace vm::core {

class GuestAddr {
public:
  constexpr GuestAddr() = default;
  constexpr explicit GuestAddr(uint64_t value) : value_(value) {}

  [[nodiscard]] constexpr uint64_t value() const { return value_; }

  constexpr GuestAddr& operator+=(uint64_t delta) { value_ += delta; return *this; }
  constexpr GuestAddr& operator-=(uint64_t delta) { value_ -= delta; return *this; }
  friend constexpr GuestAddr operator+(GuestAddr a, uint64_t delta) { return GuestAddr(a.value_ + delta); }
  friend constexpr GuestAddr operator-(GuestAddr a, uint64_t delta) { return GuestAddr(a.value_ - delta); }
  // Distance between two addresses (b may be above a; the result wraps).
  friend constexpr uint64_t operator-(GuestAddr a, GuestAddr b) { return a.value_ - b.value_; }

  [[nodiscard]] constexpr GuestAddr align_down(uint64_t alignment) const { return GuestAddr(value_ & ~(alignment - 1)); }
  [[nodiscard]] constexpr GuestAddr align_up(uint64_t alignment) const {
    return GuestAddr((value_ + alignment - 1) & ~(alignment - 1));
  }
  [[nodiscard]] constexpr bool is_aligned(uint64_t alignment) const { return (value_ & (alignment - 1)) == 0; }

  friend constexpr auto operator<=>(GuestAddr, GuestAddr) = default;
  friend constexpr bool operator==(GuestAddr, GuestAddr) = default;

private:
  uint64_t value_ = 0;
};

}  // namespace vm::core

template <>
struct std::hash<vm::core::GuestAddr> {
  size_t operator()(vm::core::GuestAddr a) const noexcept {
    // Guest code addresses share low-bit patterns; mix so hash tables spread them.
    uint64_t x = a.value();
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return static_cast<size_t>(x);
  }
};

// Formats like the underlying integer: "{}", "{:#x}", "{:016x}" all work.
template <>
struct fmt::formatter<vm::core::GuestAddr> : fmt::formatter<uint64_t> {
  auto format(vm::core::GuestAddr a, format_context& ctx) const {
    return fmt::formatter<uint64_t>::format(a.value(), ctx);
  }
};
