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

# One interface target carrying LLVM's include path and definitions. Debian
# builds LLVM as one shared library (LLVM_LINK_LLVM_DYLIB) holding every
# component we use — core, passes, ORC JIT/JITLink, MC, and the X86, AArch64
# and RISCV targets — so we link that instead of ~60 static component
# archives: links take seconds instead of minutes, which matters on 2 cores.
if(NOT TARGET LLVM)
  message(FATAL_ERROR "LLVM 19 was found without its shared library target 'LLVM': reinstall the Debian package 'llvm-19-dev'.")
endif()
foreach(_vm_target X86 AArch64 RISCV)
  if(NOT "${_vm_target}" IN_LIST LLVM_TARGETS_TO_BUILD)
    message(FATAL_ERROR "LLVM 19 was built without the ${_vm_target} target; the Debian package 'llvm-19-dev' has it.")
  endif()
endforeach()
add_library(vm_llvm INTERFACE)
target_include_directories(vm_llvm SYSTEM INTERFACE ${LLVM_INCLUDE_DIRS})
separate_arguments(_vm_llvm_defs NATIVE_COMMAND "${LLVM_DEFINITIONS}")
target_compile_definitions(vm_llvm INTERFACE ${_vm_llvm_defs})
# A target with the property VM_STATIC_LLVM set links LLVM's static
# component archives instead (only the `vm` executable does): loading the
# shared library costs every process ~60 ms of relocation and page faults
# before main, which is most of a short `vm run`.
option(VM_STATIC_LLVM "link the vm executable with LLVM's static component libraries" ON)
llvm_map_components_to_libnames(_vm_llvm_static_libs
  core irreader passes analysis instcombine scalaropts transformutils codegen selectiondag asmprinter mc mcparser
  object orcjit jitlink orctargetprocess executionengine runtimedyld target targetparser support
  x86codegen x86asmparser x86desc x86info aarch64codegen aarch64asmparser aarch64desc aarch64info aarch64utils
  riscvcodegen riscvasmparser riscvdesc riscvinfo)
add_library(vm_llvm_static INTERFACE)
target_link_libraries(vm_llvm_static INTERFACE ${_vm_llvm_static_libs})
target_link_libraries(vm_llvm INTERFACE "$<IF:$<BOOL:$<TARGET_PROPERTY:VM_STATIC_LLVM>>,vm_llvm_static,LLVM>")
