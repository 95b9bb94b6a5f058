// Shared by the ExecutionEngine tests (engine_tests.cpp, engine_fault_tests.cpp):
// a small guest address space, a runner that ends at the guest's first
// syscall (or trap), and the comparison with the interpreter's outcome.
#pragma once

#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>

#include "vm/engine/execution_engine.hpp"
#include "vm/translate/assembler.hpp"

namespace vm::engine_test {

using engine::EngineConfig;
using engine::EngineKind;

inline constexpr uint64_t kCode = 0x10000, kData = 0x200000, kScratch = 0x300000, kStack = 0x400000;

struct Outcome {
  ir::ExecResult exit;
  core::X86State state;
  std::vector<uint8_t> data;
  engine::EngineStats stats;
  std::string verify_error;
};

// Runs `text` from kCode until its first syscall (the guest's "exit"), or
// with `expect_fault` until its first trap.
inline Outcome run(std::string_view text, EngineConfig cfg, mem::MemoryStrategy strategy = mem::MemoryStrategy::SoftMmu,
            const ir::HelperTable& helpers = ir::HelperTable::defaults(), bool expect_fault = false,
            bool writable_code = false) {
  auto code = translate::assemble_x86(text);
  REQUIRE_MESSAGE(code.has_value(), code.error().to_string());
  mem::AddressSpaceConfig sc;
  sc.size = uint64_t{1} << 32;
  sc.strategy = strategy;
  auto space = mem::AddressSpace::create(sc);
  REQUIRE(space.has_value());
  mem::AddressSpace& as = **space;
  REQUIRE(as.map(core::GuestAddr(kCode), 0x10000, core::kPermRW, mem::kMapFixed).has_value());
  REQUIRE(as.write(core::GuestAddr(kCode), *code).has_value());
  uint8_t code_perms = core::kPermRead | core::kPermExec | (writable_code ? core::kPermWrite : 0);
  REQUIRE(as.protect(core::GuestAddr(kCode), 0x10000, code_perms).has_value());
  REQUIRE(as.map(core::GuestAddr(kData), 0x1000, core::kPermRW, mem::kMapFixed).has_value());
  REQUIRE(as.map(core::GuestAddr(kScratch), 0x1000, core::kPermRW | core::kPermExec, mem::kMapFixed).has_value());
  REQUIRE(as.map(core::GuestAddr(kStack), 0x10000, core::kPermRW, mem::kMapFixed).has_value());
  auto eng = engine::ExecutionEngine::create(as, cfg, helpers);
  REQUIRE(eng.has_value());
  Outcome out;
  out.state.rip = kCode;
  out.state.gpr[4] = kStack + 0x10000 - 64;
  engine::EngineExit exit = (*eng)->run(out.state);
  out.verify_error = exit.verify_error;
  out.exit = exit.result;
  if (out.verify_error.empty()) {
    CHECK_MESSAGE(exit.result.kind == (expect_fault ? ir::TermKind::Trap : ir::TermKind::Syscall), exit.result.message);
  }
  out.data.resize(0x1000);
  REQUIRE(as.read(core::GuestAddr(kData), out.data).has_value());
  out.stats = (*eng)->stats();
  return out;
}

inline void same_state(const Outcome& want, const Outcome& got) {
  for (const core::RegInfo& ri : core::kX86Regs) {
    const auto* w = reinterpret_cast<const uint8_t*>(&want.state) + ri.offset;
    const auto* g = reinterpret_cast<const uint8_t*>(&got.state) + ri.offset;
    CHECK_MESSAGE(std::memcmp(w, g, ri.size) == 0, "register ", ri.name);
  }
  CHECK(want.data == got.data);
}

// A loop with memory read-modify-writes, a call and a return per iteration,
// and a data-dependent branch: direct chaining, the inline jump cache (ret)
// and a region with an internal back edge all get exercised.
inline constexpr std::string_view kLoop = R"(
  mov rcx, 5000
  xor eax, eax
  mov rbx, 0x200000
loop:
  mov rdx, rcx
  and rdx, 7
  add qword ptr [rbx + rdx*8], rcx
  call f
  test rcx, 3
  jnz skip
  rol qword ptr [rbx + 64], 3
skip:
  dec rcx
  jnz loop
  mov qword ptr [rbx + 72], rax
  syscall
f:
  imul rax, rax, 3
  add rax, rdx
  xor rax, qword ptr [rbx]
  ret
)";

inline EngineConfig config(EngineKind kind) {
  EngineConfig c;
  c.kind = kind;
  c.hot_threshold = 4;
  c.opt_threshold = 16;
  c.background_compile = false;
  return c;
}

// Runs `text` under the interpreter, where it must end in a memory fault,
// and under the jit and tiered engines with both memory strategies:
// compiled code must fault (on the host with direct access, in a slow
// path with softmmu; not the interpreter's first run), restart from its
// last sync point and end in the interpreter's state and fault. `more`
// adds checks on each compiled run.
inline void expect_interpreter_fault(const std::string& text, const std::function<void(const Outcome&)>& more) {
  Outcome want = run(text, config(EngineKind::Interp), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(), true);
  REQUIRE(want.exit.trap == ir::TrapReason::MemoryFault);
  for (auto strategy : {mem::MemoryStrategy::Direct, mem::MemoryStrategy::SoftMmu}) {
    for (EngineKind kind : {EngineKind::Jit, EngineKind::Tiered}) {
      CAPTURE(engine::engine_kind_name(kind));
      CAPTURE(strategy == mem::MemoryStrategy::Direct);
      Outcome got = run(text, config(kind), strategy, ir::HelperTable::defaults(), true);
      same_state(want, got);
      CHECK(got.exit.trap == ir::TrapReason::MemoryFault);
      CHECK(got.exit.pc == want.exit.pc);
      CHECK(got.exit.fault_addr == want.exit.fault_addr);
      CHECK(got.exit.fault_access == want.exit.fault_access);
      if (strategy == mem::MemoryStrategy::Direct) CHECK(got.stats.host_faults > 0);
      else CHECK(got.stats.softmmu_faults > 0);
      if (kind == EngineKind::Tiered) CHECK(got.stats.regions > 0);
      more(got);
    }
  }
}

}  // namespace vm::engine_test
