# Every third-party dependency is found here, through find_package, with a
# message that names the Debian package to install when it is missing.
# The package list itself lives in scripts/packages.txt; scripts/install-deps
# installs it.

macro(vm_require_package cmake_name debian_pkg)
  find_package(${cmake_name} ${ARGN} QUIET)
  if(NOT ${cmake_name}_FOUND)
    message(FATAL_ERROR
      "Missing dependency '${cmake_name}': install the Debian package '${debian_pkg}' "
      "(run scripts/install-deps, which installs everything in scripts/packages.txt).")
  endif()
endmacro()

# LLVM 19: Debian installs its CMake package under /usr/lib/llvm-19.
set(LLVM_DIR "/usr/lib/llvm-19/lib/cmake/llvm" CACHE PATH "LLVM 19 CMake package directory")
vm_require_package(LLVM llvm-19-dev 19.1 CONFIG)
message(STATUS "LLVM ${LLVM_PACKAGE_VERSION} from ${LLVM_DIR}")

vm_require_package(zydis libzydis-dev 4 CONFIG)
vm_require_package(doctest doctest-dev CONFIG)
vm_require_package(fmt libfmt-dev CONFIG)
vm_require_package(spdlog libspdlog-dev CONFIG)
vm_require_package(benchmark libbenchmark-dev CONFIG)
vm_require_package(CLI11 libcli11-dev CONFIG)
vm_require_package(nlohmann_json nlohmann-json3-dev CONFIG)
vm_require_package(mimalloc libmimalloc-dev CONFIG)
vm_require_package(Threads build-essential)

find_package(PkgConfig QUIET)
if(NOT PkgConfig_FOUND)
  message(FATAL_ERROR "Missing dependency 'pkg-config': install the Debian package 'pkg-config' (run scripts/install-deps).")
endif()
pkg_check_modules(UNICORN QUIET IMPORTED_TARGET unicorn)
if(NOT UNICORN_FOUND)
  message(FATAL_ERROR "Missing dependency 'unicorn': install the Debian package 'libunicorn-dev' (run scripts/install-deps).")
endif()

# One interface target carrying LLVM's include path, definitions and the
# components we use: ORC JIT and the X86, AArch64 and RISCV code generators.
llvm_map_components_to_libnames(VM_LLVM_LIBS
  core support irreader passes analysis transformutils scalaropts instcombine
  orcjit jitlink executionengine mc mcparser mcdisassembler object target targetparser
  x86codegen x86asmparser x86desc x86info x86disassembler
  aarch64codegen aarch64asmparser aarch64desc aarch64info
  riscvcodegen riscvasmparser riscvdesc riscvinfo)
add_library(vm_llvm INTERFACE)
target_include_directories(vm_llvm SYSTEM INTERFACE ${LLVM_INCLUDE_DIRS})
separate_arguments(_vm_llvm_defs NATIVE_COMMAND "${LLVM_DEFINITIONS}")
target_compile_definitions(vm_llvm INTERFACE ${_vm_llvm_defs})
target_link_libraries(vm_llvm INTERFACE ${VM_LLVM_LIBS})
