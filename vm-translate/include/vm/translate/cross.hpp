// CrossTranslator: vm-ir blocks -> relocatable object, assembly or LLVM IR
// for AArch64 or RISC-V (rv64gc, lp64d), through the same lowering as the host
// JIT. Block i of a translation becomes the function `<prefix><i>` with the
// signature of lowering.hpp; the object also defines `<prefix>table`, an
// array of the N function pointers, and `<prefix>count` (uint64_t N), so a
// driver on the target can run any block by index. Results are x86's bit for
// bit (NaN rules and rounding are explicit in the lowering), which the tests
// prove by running the objects under qemu-user against the vm-ir interpreter.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/ir/ir.hpp"
#include "vm/translate/lowering.hpp"

namespace vm::translate {

enum class Target : uint8_t { X86_64, AArch64, RiscV64 };
std::string_view target_name(Target t);                     // "x86_64", "aarch64", "riscv64"
std::optional<Target> parse_target(std::string_view s);     // also "host" = x86_64

enum class EmitKind : uint8_t { Object, Assembly, LlvmIr };
std::optional<EmitKind> parse_emit_kind(std::string_view s);  // "obj", "asm", "llvm"

struct CrossOptions {
  MemoryStrategy memory = MemoryStrategy::Direct;
  bool optimize = true;  // the lean pipeline and full codegen optimisation; false: none
  std::string symbol_prefix = "vm_block_";
};

class CrossTranslator {
public:
  static core::Result<std::unique_ptr<CrossTranslator>> create(Target target, const CrossOptions& options = {});
  ~CrossTranslator();
  CrossTranslator(const CrossTranslator&) = delete;
  CrossTranslator& operator=(const CrossTranslator&) = delete;

  // Translates the blocks (each a separate function) into one output.
  core::Result<std::string> translate(std::span<const ir::IRBlock> blocks, EmitKind kind);
  core::Result<std::string> translate(const ir::IRBlock& block, EmitKind kind) {
    return translate(std::span<const ir::IRBlock>(&block, 1), kind);
  }

  [[nodiscard]] Target target() const;
  [[nodiscard]] std::string triple() const;

private:
  struct Impl;
  explicit CrossTranslator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vm::translate
