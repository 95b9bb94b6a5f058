#include "vm/translate/toolchain.hpp"

#include <llvm/Config/llvm-config.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/TargetSelect.h>

#include <Zydis/Zydis.h>
#include <fmt/format.h>

namespace vm::translate {

std::string llvm_version() { return LLVM_VERSION_STRING; }

std::string zydis_version() {
  ZyanU64 v = ZydisGetVersion();
  return fmt::format("{}.{}.{}", ZYDIS_VERSION_MAJOR(v), ZYDIS_VERSION_MINOR(v), ZYDIS_VERSION_PATCH(v));
}

std::string registered_targets() {
  LLVMInitializeX86TargetInfo();
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeRISCVTargetInfo();
  std::string out;
  for (const auto& t : llvm::TargetRegistry::targets()) {
    if (!out.empty()) out += ",";
    out += t.getName();
  }
  return out;
}

}  // namespace vm::translate
