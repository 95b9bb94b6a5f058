// ExecutionEngine over faults: restartable compiled code (direct and
// softmmu) must end in the interpreter's state and fault; direct access
// without sync points must handle code-page writes where they fault and
// report a fatal fault at the interpreter's pc; engines over different
// address spaces share a thread (engine_test_support.hpp has the runner).
#include <doctest/doctest.h>

#include <functional>
#include <random>
#include <string>

#include <fmt/format.h>

#include "engine_test_support.hpp"

using namespace vm;
using namespace vm::engine_test;

// A loop of `iterations` that runs `body` with rdi pointing at the data page
// (rbx), except in the iteration where rcx == fault_rcx, where rdi is
// `fault_base` (unmapped, or the read-only code page), then makes the
// guest's exit syscall. `setup` runs first (rcx is free there).
static std::string fault_loop(std::string_view fault_base, std::string_view body, std::string_view setup = "",
                       int iterations = 3000, int fault_rcx = 700) {
  return fmt::format(R"(
    mov rbx, 0x200000
    mov r8, {}
{}
    mov rcx, {}
  loop:
    mov rdi, rbx
    cmp rcx, {}
    cmove rdi, r8
{}
    dec rcx
    jnz loop
    syscall
  )", fault_base, setup, iterations, fault_rcx, body);
}

// Fault programs shared by the tests below (fault_loop): at rcx == 700,
// loads from unmapped memory right after read-modify-writes in the same
// block, which a restart from the block's start would repeat; a store to
// the read-only code page; a load whose value nothing uses (overwritten at
// once), which must still fault; writing back the value just read to a
// page that is readable but not writable (the code page), which must
// fault too.
constexpr std::string_view kLoadAfterStoresBody = R"(
    mov rdx, rcx
    and rdx, 7
    add qword ptr [rbx + rdx*8], rcx
    push rcx
    inc qword ptr [rbx + 64]
    pop rsi
    add rax, qword ptr [rdi + 8])";
static const std::string kLoadAfterStores = fault_loop("0x5000000", kLoadAfterStoresBody);
// The same with an address beyond the 4 GiB space: direct code reaches its
// masked alias (0x5000000, unmapped) and the host reports that one.
static const std::string kLoadBeyondSpace = fault_loop("0x105000000", kLoadAfterStoresBody);
static const std::string kStoreToCode = fault_loop("0x10000", R"(
    inc qword ptr [rbx + 72]
    mov qword ptr [rdi + 128], rcx)");
static const std::string kDeadLoad = fault_loop("0x5000000", R"(
    mov rax, qword ptr [rdi + 8]
    mov rax, rcx
    inc qword ptr [rbx + 16])");
static const std::string kNoopStoreToCode = fault_loop("0x10000", R"(
    mov rax, qword ptr [rdi + 128]
    mov qword ptr [rdi + 128], rax
    inc qword ptr [rbx + 72])");

TEST_CASE("restartable code (direct and softmmu): a guest fault in compiled code ends in the interpreter's state") {
  // Each program warms its loop up (compiled, chained, regions) and then
  // faults in compiled code: at rcx == 700 it reads unmapped memory (r8)
  // right after read-modify-writes in the same block, which a restart from
  // the block's start would repeat; or writes to the read-only code page;
  // or (loads only) runs a summing loop off the end of the data page, so
  // the last synced boundary lies hundreds of iterations back.
  constexpr std::string_view kLoadsOffTheEnd = R"(
    mov rbx, 0x200000
    mov rcx, 40
  outer:
    inc qword ptr [rbx + 80]
    mov rsi, rbx
    mov rdx, 500
    cmp rcx, 1
    jne sum
    mov rdx, 100000
  sum:
    add rax, qword ptr [rsi]
    add rsi, 8
    dec rdx
    jnz sum
    dec rcx
    jnz outer
    syscall
  )";
  // Stack slots (same base register, constant offsets): a store needs a
  // sync point only when it may overwrite a slot loaded earlier in the span.
  // A fault right after an exact overwrite, a partial one (4 bytes into an
  // 8-byte slot), and only disjoint stores: a restart from before the loads
  // must not see the overwritten slot.
  auto slots = [](std::string_view before_fault) {
    return fault_loop("0x5000000", fmt::format(R"(
    mov rdx, qword ptr [rsp + 8]
    mov rsi, qword ptr [rsp + 16]
    add rdx, rsi
    mov qword ptr [rsp + 24], rcx
    {}
    add rax, qword ptr [rdi + 8]
    add rax, rdx
    mov r9, qword ptr [rsp + 24]
    push r9
    pop r10)", before_fault), R"(
    sub rsp, 64
    mov qword ptr [rsp + 8], 3
    mov qword ptr [rsp + 16], 5)");
  };
  // The load and the store that overwrites its slot in two blocks of one
  // region: the span continues across the internal edge.
  const std::string kSpanAcrossBlocks = fault_loop("0x5000000", R"(
    mov rdx, qword ptr [rsp + 8]
    jmp next
  next:
    add rdx, rcx
    mov qword ptr [rsp + 8], rdx
    mov r11, rdx
    and r11, 7
    mov qword ptr [rbx + r11*8 + 128], rcx
    add rax, qword ptr [rdi + 8])", R"(
    sub rsp, 64
    mov qword ptr [rsp + 8], 3)");
  // The same across a change of rsp: the slot loaded in the first block is
  // [rsp + 24] in the second (the region's dataflow carries the span's
  // stack slots over the edge as offsets from rsp there). The store to
  // [rbx + 200] closes the span of the faulting load before the slot is
  // loaded, so only the overwrite of the slot can make the sync point after
  // it due; without that sync point the restart from the one before the
  // slot's load would load the overwritten value and store it plus rcx.
  const std::string kSpanAcrossRspChange = fault_loop("0x5000000", R"(
    add rax, qword ptr [rdi + 8]
    mov qword ptr [rbx + 200], rcx
    mov rdx, qword ptr [rsp + 16]
    lea rsp, [rsp - 8]
    jmp next
  next:
    add rdx, rcx
    mov qword ptr [rsp + 24], rdx
    lea rsp, [rsp + 8])", R"(
    sub rsp, 64
    mov qword ptr [rsp + 16], 3)");
  // Registers changed after the last sync point cross internal edges
  // (`jnz odd`, the join at `odd`) before the fault: the state must still
  // hold the sync point's values, since the restart re-runs from there.
  const std::string kRegistersAcrossEdges = fault_loop("0x5000000", R"(
    mov rdx, qword ptr [rbx + 8]
    mov qword ptr [rbx + 8], rcx
    add rdx, qword ptr [rbx + 16]
    inc r12
    add r13, rdx
    test rcx, 1
    jnz odd
    inc r14
  odd:
    add rax, qword ptr [rdi + 8])");
  // A sync point leaves flags unsynced that the block sets again before
  // anything observes them (here `add rdx, rcx` after the sync point right
  // after the store), but must store those read first: `adc` reads the CF
  // that `bt` set (the low bit of rcx: 1 in the faulting iteration, 0 in
  // the one before), and a restart from the sync point re-runs the adc.
  const std::string kFlagReadAfterSync = fault_loop("0x5000000", R"(
    bt rcx, 0
    mov rdx, qword ptr [rbx + 8]
    mov qword ptr [rbx + 8], rcx
    adc rsi, 0
    add rdx, rcx
    add rax, qword ptr [rdi + 8])", "", 3000, 701);
  // An access at a constant offset from a base inside the 4 GiB space that
  // ends past its end: the interpreter faults at 0x100010000; masking the
  // sum would wrap it around to 0x10000, the readable code page. Compiled
  // code masks the base and adds the offset after (LoweringOptions::
  // direct_guard), so the access lands in the guard above the region.
  constexpr std::string_view kPastTheEnd = R"(
    mov rbx, 0x1f0000
    mov r8, 0xfffffff8
    mov rcx, 3000
  loop:
    mov rdi, rbx
    cmp rcx, 700
    cmove rdi, r8
    add rax, qword ptr [rdi + 0x10008]
    inc qword ptr [rbx + 0x10010]
    dec rcx
    jnz loop
    syscall
  )";
  // rep stos (a vm-ir `fill` per page): 32 qwords at 0xe00 into the data
  // page; in the faulting iteration they start at 0x200f80, so 16 fit and
  // the next page (unmapped) faults with rcx = 16 and rdi = 0x201000.
  const std::string kRepStosOffTheEnd = fault_loop("0x200180", R"(
    mov rdx, rcx
    mov r9, rdi
    add rdi, 0xe00
    mov rax, rdx
    mov ecx, 32
    rep stosq
    mov rcx, rdx
    mov rdi, r9
    add rsi, qword ptr [rbx + 0xe08])");
  // rep movs (a vm-ir `copy` per page) the same way: from 0x100 above rdi,
  // so the faulting iteration's destination runs off the page after 16.
  const std::string kRepMovsOffTheEnd = fault_loop("0x200180", R"(
    mov rdx, rcx
    mov r9, rdi
    lea rsi, [rdi + 0x100]
    add rdi, 0xe00
    mov ecx, 32
    rep movsq
    mov rcx, rdx
    mov rdi, r9
    add rax, qword ptr [rbx + 0xe08])");
  const std::string kSlotOverwrite = slots("mov qword ptr [rsp + 8], rdx");
  const std::string kSlotPartial = slots("mov dword ptr [rsp + 12], ecx");
  const std::string kSlotsDisjoint = slots("mov qword ptr [rsp + 32], rdx");
  for (const std::string& text : {kLoadAfterStores, kStoreToCode, std::string(kLoadsOffTheEnd), kSlotOverwrite,
                                  kSlotPartial, kSlotsDisjoint, kSpanAcrossBlocks, kSpanAcrossRspChange, kDeadLoad,
                                  kNoopStoreToCode,
                                  kRegistersAcrossEdges, kFlagReadAfterSync, std::string(kPastTheEnd),
                                  kRepStosOffTheEnd, kRepMovsOffTheEnd}) {
    expect_interpreter_fault(text, [&](const Outcome& got) {
      // Its region syncs after the store in `next` (the span it continues
      // read the slot in `loop`), so the restart begins in the faulting
      // iteration; without that sync point it began where the region was
      // entered, thousands of blocks back (where, in this program, the
      // final state still happened to agree).
      if (text == kSpanAcrossBlocks || text == kSpanAcrossRspChange) CHECK(got.stats.restart_blocks <= 2);
      if (text == kRepStosOffTheEnd || text == kRepMovsOffTheEnd) {  // as x86 defines an interrupted rep
        CHECK(got.state.gpr[1] == 16);
        CHECK(got.state.gpr[7] == 0x201000);
        CHECK(got.exit.fault_addr == core::GuestAddr(0x201000));
        if (text == kRepMovsOffTheEnd) CHECK(got.state.gpr[6] == 0x200300);
      }
    });
  }
}

// Random loops of loads, stores, read-modify-writes and push/pop pairs on
// stack slots and a data page, cut into blocks by jumps, that fault at a
// random point of one iteration: the restart from the last sync point must
// reach the interpreter's state (the sync points are placed by an alias test
// on stack and data offsets, jit.md "Restartable state").
static std::string random_slot_program(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  const char* regs[] = {"rax", "rdx", "rsi", "r9", "r10", "r11"};
  const char* regs32[] = {"eax", "edx", "esi", "r9d", "r10d", "r11d"};
  auto reg = [&] { return pick(6); };
  std::string body;
  int n = 8 + pick(16), fault_at = pick(n), labels = 0;
  for (int i = 0; i < n; ++i) {
    if (i == fault_at) body += "    add rax, qword ptr [rdi + 8]\n";
    int r = reg(), r2 = reg(), k = pick(12);
    switch (pick(11)) {
      case 0: body += fmt::format("    mov {}, qword ptr [rsp + {}]\n", regs[r], 8 * k); break;
      case 1: body += fmt::format("    mov qword ptr [rsp + {}], {}\n", 8 * k, regs[r]); break;
      case 2: body += fmt::format("    mov dword ptr [rsp + {}], {}\n", 8 * k + 4, regs32[r]); break;
      case 3: body += fmt::format("    add qword ptr [rsp + {}], {}\n", 8 * k, regs[r]); break;
      case 4: body += fmt::format("    add {}, qword ptr [rbx + {}]\n", regs[r], 8 * k); break;
      case 5: body += fmt::format("    mov qword ptr [rbx + {}], {}\n", 8 * k, regs[r]); break;
      case 6: body += fmt::format("    inc qword ptr [rbx + {}]\n", 8 * k); break;
      case 7: body += fmt::format("    imul {}, {}, 3\n    add {}, {}\n", regs[r], regs[r], regs[r], regs[r2]); break;
      case 8: body += fmt::format("    push {}\n    pop {}\n", regs[r], regs[r2]); break;
      case 9: body += fmt::format("    xor {}, qword ptr [rsp + {}]\n    mov qword ptr [rsp + {}], {}\n", regs[r],
                                  8 * k, 8 * pick(12), regs[r]); break;
      default: body += fmt::format("    jmp part{0}\n  part{0}:\n", labels++); break;
    }
  }
  return fault_loop("0x5000000", body, R"(
    mov rcx, 12
    sub rsp, 128
    xor eax, eax
  init:
    mov qword ptr [rsp + rcx*8 - 8], rcx
    dec rcx
    jnz init)", 1500, 100 + static_cast<int>(seed % 700));
}

TEST_CASE("restartable code (direct and softmmu): random slot traffic faulting mid-iteration ends in the interpreter's state") {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    CAPTURE(seed);
    std::string text = random_slot_program(seed);
    CAPTURE(text);
    expect_interpreter_fault(text, [](const Outcome&) {});
  }
}

// Optimized code under direct access addresses guest memory through the
// thread's GS base (EngineConfig::guest_base_gs), which the engine sets to
// its own space's base whenever it runs code. Two engines over two spaces
// whose data differ take turns on one thread, each run ending at the
// guest's syscall and the next one resuming after it: a stale base would
// make one engine read and write the other's memory. The interpreter,
// taking the same turns, is the oracle.
TEST_CASE("direct access: engines over different address spaces take turns on one thread") {
  constexpr std::string_view kTurns = R"(
    mov rbx, 0x200000
  again:
    mov rcx, 3000
  loop:
    mov rdx, rcx
    and rdx, 7
    add rax, qword ptr [rbx + rdx*8]
    add qword ptr [rbx + 64], rax
    dec rcx
    jnz loop
    syscall
    jmp again
  )";
  auto code = translate::assemble_x86(kTurns);
  REQUIRE(code.has_value());
  struct Guest {
    std::unique_ptr<mem::AddressSpace> space;
    std::unique_ptr<engine::ExecutionEngine> engine;
    core::X86State state;
  };
  auto make = [&](EngineKind kind, uint64_t seed, bool gs) {
    mem::AddressSpaceConfig sc;
    sc.size = uint64_t{1} << 32;
    sc.strategy = mem::MemoryStrategy::Direct;
    Guest g;
    auto space = mem::AddressSpace::create(sc);
    REQUIRE(space.has_value());
    g.space = std::move(*space);
    REQUIRE(g.space->map(core::GuestAddr(kCode), 0x10000, core::kPermRW, mem::kMapFixed).has_value());
    REQUIRE(g.space->write(core::GuestAddr(kCode), *code).has_value());
    REQUIRE(g.space->protect(core::GuestAddr(kCode), 0x10000, core::kPermRead | core::kPermExec).has_value());
    REQUIRE(g.space->map(core::GuestAddr(kData), 0x1000, core::kPermRW, mem::kMapFixed).has_value());
    std::vector<uint8_t> words(64);
    for (size_t i = 0; i < words.size(); ++i) words[i] = static_cast<uint8_t>(seed * 31 + i * 7);
    REQUIRE(g.space->write(core::GuestAddr(kData), words).has_value());
    EngineConfig c = config(kind);
    c.guest_base_gs = gs;
    auto eng = engine::ExecutionEngine::create(*g.space, c);
    REQUIRE(eng.has_value());
    g.engine = std::move(*eng);
    g.state.rip = kCode;
    return g;
  };
  auto take_turns = [&](EngineKind kind, bool gs) {
    std::array<Guest, 2> guests = {make(kind, 1, gs), make(kind, 2, gs)};
    for (int turn = 0; turn < 12; ++turn) {
      Guest& g = guests[turn % 2];
      engine::EngineExit exit = g.engine->run(g.state);
      REQUIRE(exit.result.kind == ir::TermKind::Syscall);
    }
    std::array<std::pair<uint64_t, uint64_t>, 2> out{};
    for (size_t i = 0; i < 2; ++i) {
      std::vector<uint8_t> sum(8);
      REQUIRE(guests[i].space->read(core::GuestAddr(kData + 64), sum).has_value());
      uint64_t v = 0;
      std::memcpy(&v, sum.data(), 8);
      out[i] = {guests[i].state.gpr[0], v};
    }
    return std::pair{out, guests[0].engine->stats().regions + guests[1].engine->stats().regions};
  };
  auto [want, none] = take_turns(EngineKind::Interp, true);
  CHECK(want[0] != want[1]);
  for (bool gs : {true, false}) {
    CAPTURE(gs);
    auto [got, regions] = take_turns(EngineKind::Tiered, gs);
    CHECK(regions >= 2);  // each engine's loop ran as Optimized code
    CHECK(got == want);
  }
}

// Calls the `mov eax, imm32; ret` at rbx 300 times, rewriting the
// immediate to the loop count before each call; r12 sums the results
// (300 * 301 / 2).
constexpr std::string_view kRewriteLoop = R"(
    xor r12d, r12d
    mov ecx, 300
  again:
    mov dword ptr [rbx + 1], ecx
    call rbx
    add r12, rax
    dec ecx
    jnz again
    syscall
  )";
// The same with the callee written to the scratch page first.
const std::string kRewrite = std::string(R"(
    mov rbx, 0x300000
    mov dword ptr [rbx], 0x1b8
    mov byte ptr [rbx + 4], 0
    mov byte ptr [rbx + 5], 0xc3
)") + std::string(kRewriteLoop);

TEST_CASE("direct access: compiled code that writes code pages runs the new code") {
  // The writer loop is compiled; each of its stores to the callee's page
  // faults on the host (the page holds a translation), the restart writes it
  // in the interpreter and drops the stale translation.
  for (EngineKind kind : {EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered}) {
    CAPTURE(engine::engine_kind_name(kind));
    Outcome got = run(kRewrite, config(kind), mem::MemoryStrategy::Direct);
    CHECK(got.state.gpr[12] == 300 * 301 / 2);
    CHECK(got.stats.invalidations > 0);
    if (kind != EngineKind::Interp) CHECK(got.stats.host_faults > 0);
  }
}

// EngineConfig::precise_faults off: direct code without sync points.
static EngineConfig imprecise(EngineKind kind) {
  EngineConfig c = config(kind);
  c.precise_faults = false;
  return c;
}

TEST_CASE("direct access without sync points: writes to code pages are handled where they fault") {
  // The writer stores into the callee's page, a page of its own
  // (kRewrite), and (the second program) the page it runs from: each store
  // faults on the host, the handler drops the page's translations and lets
  // the store go ahead, and the next call runs the new code.
  const std::string kOtherPage = kRewrite;
  const std::string kOwnPage = "lea rbx, [rip + callee]\n" + std::string(kRewriteLoop) + R"(
  callee:
    mov eax, 7
    ret
  )";
  for (const std::string& text : {kOtherPage, kOwnPage})
    for (EngineKind kind : {EngineKind::Jit, EngineKind::Tiered}) {
      CAPTURE(engine::engine_kind_name(kind));
      CAPTURE(text == kOwnPage);
      Outcome got = run(text, imprecise(kind), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(), false,
                        text == kOwnPage);
      CHECK(got.state.gpr[12] == 300 * 301 / 2);
      // Tiered, a writer on its own page is retranslated after every store
      // and never becomes hot: the interpreter makes all its stores.
      if (kind == EngineKind::Jit || text == kOtherPage) CHECK(got.stats.code_writes > 0);
      CHECK(got.stats.host_faults == 0);  // none went back to the dispatcher
      CHECK(got.stats.invalidations > 0);
    }
}

TEST_CASE("direct access without sync points: a guest fault in compiled code ends with the interpreter's pc and address") {
  // The state the code leaves is its unit's entry; the interpreter finds
  // the faulting access again from there. Loads after read-modify-writes,
  // a store to the read-only code page (a real fault, not a code-page
  // write), a dead load and a no-op store to the code page; a load beyond
  // the space, whose masked alias the host saw (the interpreter's address,
  // the guest's, is the one reported).
  for (const std::string& text : {kLoadAfterStores, kStoreToCode, kDeadLoad, kNoopStoreToCode, kLoadBeyondSpace}) {
    Outcome want = run(text, config(EngineKind::Interp), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(), true);
    REQUIRE(want.exit.trap == ir::TrapReason::MemoryFault);
    for (EngineKind kind : {EngineKind::Jit, EngineKind::Tiered}) {
      CAPTURE(text);
      CAPTURE(engine::engine_kind_name(kind));
      Outcome got = run(text, imprecise(kind), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(), true);
      CHECK(got.exit.trap == ir::TrapReason::MemoryFault);
      CHECK(got.exit.pc == want.exit.pc);
      CHECK(got.state.rip == want.state.rip);
      CHECK(got.exit.fault_addr == want.exit.fault_addr);
      CHECK(got.exit.fault_access == want.exit.fault_access);
      CHECK(got.exit.message.find("approximate") == std::string::npos);
      CHECK(got.stats.imprecise_faults == 1);
      CHECK(got.stats.code_writes == 0);
      if (kind == EngineKind::Tiered) CHECK(got.stats.regions > 0);
    }
  }
}

TEST_CASE("direct access without sync points: a fault the interpreter cannot find again is reported as approximate") {
  // The faulting iteration is chosen by a counter in memory, which the
  // compiled code has moved past the value the fault needs by the time the
  // interpreter starts from the state of the unit's entry: its run reaches
  // the exit syscall instead, which is not made.
  constexpr std::string_view kCounter = R"(
    mov rbx, 0x200000
    mov r8, 0x5000000
    mov rcx, 3000
  loop:
    inc qword ptr [rbx]
    mov rdi, rbx
    cmp qword ptr [rbx], 700
    cmove rdi, r8
    add rax, qword ptr [rdi + 8]
    dec rcx
    jnz loop
    syscall
  )";
  Outcome want = run(kCounter, config(EngineKind::Interp), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(), true);
  REQUIRE(want.exit.trap == ir::TrapReason::MemoryFault);
  for (EngineKind kind : {EngineKind::Jit, EngineKind::Tiered}) {
    CAPTURE(engine::engine_kind_name(kind));
    Outcome precise = run(kCounter, config(kind), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(), true);
    same_state(want, precise);
    CHECK(precise.exit.pc == want.exit.pc);
    Outcome got = run(kCounter, imprecise(kind), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(), true);
    CHECK(got.exit.kind == ir::TermKind::Trap);
    CHECK(got.exit.trap == ir::TrapReason::MemoryFault);
    CHECK(got.exit.fault_addr == want.exit.fault_addr);
    CHECK(got.exit.fault_access == want.exit.fault_access);
    CHECK(got.exit.message.ends_with("pc approximate"));
    CHECK(got.stats.imprecise_faults == 1);
  }
}

TEST_CASE("require_precise_faults drops code made without sync points; faults after it are precise") {
  // `body` runs 3000 times (compiled, in a region when tiered), then the
  // guest makes a syscall, at which the owner asks for precise faults, and
  // calls `body` again until it faults at rcx == 700: the state must be
  // the interpreter's, which code made before the switch would not give.
  const std::string kTwoPhases = std::string(R"(
    mov rbx, 0x200000
    mov r8, 0x5000000
    mov rcx, 3000
  warm:
    mov rdi, rbx
    call body
    dec rcx
    jnz warm
    syscall
    mov rcx, 3000
  again:
    mov rdi, rbx
    cmp rcx, 700
    cmove rdi, r8
    call body
    dec rcx
    jnz again
    syscall
  body:)") + std::string(kLoadAfterStoresBody) + "\n    ret\n";
  auto code = translate::assemble_x86(kTwoPhases);
  REQUIRE_MESSAGE(code.has_value(), code.error().to_string());
  auto two_runs = [&](EngineConfig cfg, bool switch_between, engine::EngineStats* stats) {
    mem::AddressSpaceConfig sc;
    sc.size = uint64_t{1} << 32;
    sc.strategy = mem::MemoryStrategy::Direct;
    auto space = mem::AddressSpace::create(sc);
    REQUIRE(space.has_value());
    mem::AddressSpace& as = **space;
    REQUIRE(as.map(core::GuestAddr(kCode), 0x10000, core::kPermRW, mem::kMapFixed).has_value());
    REQUIRE(as.write(core::GuestAddr(kCode), *code).has_value());
    REQUIRE(as.protect(core::GuestAddr(kCode), 0x10000, core::kPermRead | core::kPermExec).has_value());
    REQUIRE(as.map(core::GuestAddr(kData), 0x1000, core::kPermRW, mem::kMapFixed).has_value());
    REQUIRE(as.map(core::GuestAddr(kStack), 0x10000, core::kPermRW, mem::kMapFixed).has_value());
    auto eng = engine::ExecutionEngine::create(as, cfg);
    REQUIRE(eng.has_value());
    Outcome out;
    out.state.rip = kCode;
    out.state.gpr[4] = kStack + 0x10000 - 64;
    REQUIRE((*eng)->run(out.state).result.kind == ir::TermKind::Syscall);
    CHECK((*eng)->precise_faults() == cfg.precise_faults);
    if (switch_between) (*eng)->require_precise_faults();
    CHECK((*eng)->precise_faults() == (cfg.precise_faults || switch_between));
    out.exit = (*eng)->run(out.state).result;
    out.data.resize(0x1000);
    REQUIRE(as.read(core::GuestAddr(kData), out.data).has_value());
    if (stats) *stats = (*eng)->stats();
    return out;
  };
  Outcome want = two_runs(config(EngineKind::Interp), false, nullptr);
  REQUIRE(want.exit.trap == ir::TrapReason::MemoryFault);
  for (EngineKind kind : {EngineKind::Jit, EngineKind::Tiered}) {
    CAPTURE(engine::engine_kind_name(kind));
    engine::EngineStats stats;
    Outcome got = two_runs(imprecise(kind), true, &stats);
    same_state(want, got);
    CHECK(got.exit.pc == want.exit.pc);
    CHECK(got.exit.fault_addr == want.exit.fault_addr);
    CHECK(stats.precise_switches == 1);
    CHECK(stats.imprecise_faults == 0);
    CHECK(stats.host_faults > 0);
  }
}
