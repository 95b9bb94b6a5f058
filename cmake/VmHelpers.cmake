# Shared helpers for module CMakeLists.

add_library(vm_warnings INTERFACE)
target_compile_options(vm_warnings INTERFACE -Wall -Wextra -Wshadow)
if(VM_WERROR)
  target_compile_options(vm_warnings INTERFACE -Werror)
endif()

# vm_module(NAME <name> SOURCES ... DEPS ...): a module library vm_<name>
# with public headers in include/ (vm/<name>/*.hpp).
function(vm_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  if(M_SOURCES)
    add_library(vm_${M_NAME} STATIC ${M_SOURCES})
    target_include_directories(vm_${M_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(vm_${M_NAME} PUBLIC ${M_PUBLIC_DEPS} PRIVATE ${M_PRIVATE_DEPS} vm_warnings)
  else()
    add_library(vm_${M_NAME} INTERFACE)
    target_include_directories(vm_${M_NAME} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_link_libraries(vm_${M_NAME} INTERFACE ${M_PUBLIC_DEPS})
  endif()
  add_library(vm::${M_NAME} ALIAS vm_${M_NAME})
endfunction()

# vm_test(NAME <name> SOURCES ... DEPS ...): one doctest binary registered
# with ctest. Individual test cases are visible with --list-test-cases.
function(vm_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} doctest::doctest vm_warnings)
  target_compile_definitions(${T_NAME} PRIVATE DOCTEST_CONFIG_SUPER_FAST_ASSERTS)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# vm_bench(NAME <name> SOURCES ... DEPS ...): a Google Benchmark binary,
# collected into the `benches` target and listed for scripts/suite bench.
function(vm_bench)
  cmake_parse_arguments(B "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${B_NAME} ${B_SOURCES})
  target_link_libraries(${B_NAME} PRIVATE ${B_DEPS} benchmark::benchmark vm_warnings)
  set_target_properties(${B_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench-bin)
  set_property(GLOBAL APPEND PROPERTY VM_BENCH_TARGETS ${B_NAME})
endfunction()
