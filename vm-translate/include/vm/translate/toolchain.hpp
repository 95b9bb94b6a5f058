// Versions of the code-generation toolchain vm-translate is built against
// (LLVM, Zydis). Reported by `vm --version` and stored with benchmark results.
#pragma once

#include <string>

namespace vm::translate {

std::string llvm_version();
std::string zydis_version();
// Target triples LLVM was initialised for (host, aarch64, riscv64), comma separated.
std::string registered_targets();

}  // namespace vm::translate
