// Arch: the instruction-set architectures the translator knows about, as a
// guest (x86-64 only for now) or as a code-generation target.
#pragma once

#include <optional>
#include <string_view>

namespace vm::core {

enum class Arch { X86_64, AArch64, RiscV64 };

constexpr std::string_view arch_name(Arch a) {
  switch (a) {
    case Arch::X86_64: return "x86_64";
    case Arch::AArch64: return "aarch64";
    case Arch::RiscV64: return "riscv64";
  }
  return "unknown";
}

constexpr std::optional<Arch> parse_arch(std::string_view s) {
  if (s == "x86_64" || s == "x86-64" || s == "amd64") return Arch::X86_64;
  if (s == "aarch64" || s == "arm64") return Arch::AArch64;
  if (s == "riscv64" || s == "rv64") return Arch::RiscV64;
  return std::nullopt;
}

}  // namespace vm::core
