#include <doctest/doctest.h>

#include "vm/translate/toolchain.hpp"

TEST_CASE("the build is wired to LLVM 19 and Zydis 4 with all three targets") {
  CHECK(vm::translate::llvm_version().rfind("19.", 0) == 0);
  CHECK(vm::translate::zydis_version().rfind("4.", 0) == 0);
  auto targets = vm::translate::registered_targets();
  CHECK(targets.find("x86-64") != std::string::npos);
  CHECK(targets.find("aarch64") != std::string::npos);
  CHECK(targets.find("riscv64") != std::string::npos);
}
