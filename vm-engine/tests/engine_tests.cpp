// ExecutionEngine: the compiled engines (chained blocks, the inline jump
// cache, Tier::Optimized regions, background compilation) must end in exactly
// the state the vm-ir interpreter reaches; self-modifying code must be seen
// by chained code; --verify-jit must catch a difference between the two.
#include <doctest/doctest.h>

#include <string>

#include "engine_test_support.hpp"

using namespace vm;
using namespace vm::engine_test;

// kLoop with two calls of f in the loop: the second call's return site is
// reached from outside a region headed elsewhere (f's ret), so it is one of
// that region's entries.
constexpr std::string_view kTwoCalls = R"(
  mov rcx, 5000
  xor eax, eax
  mov rbx, 0x200000
loop:
  mov rdx, rcx
  and rdx, 7
  call f
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

TEST_CASE("compiled engines end in the interpreter's state: chained, regions, both address-space strategies") {
  Outcome want = run(kLoop, config(EngineKind::Interp));
  CHECK(want.state.gpr[1] == 0);  // rcx counted down
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct}) {
    CAPTURE(mem::strategy_name(strategy));
    SUBCASE("jit") {
      Outcome got = run(kLoop, config(EngineKind::Jit), strategy);
      same_state(want, got);
      CHECK(got.stats.chain_links > 0);
      // 5,000 iterations of several blocks, but the dispatcher saw only the
      // first entries: the rest ran chained.
      CHECK(got.stats.native_executions < 200);
    }
    SUBCASE("tiered with regions") {
      Outcome got = run(kLoop, config(EngineKind::Tiered), strategy);
      same_state(want, got);
      CHECK(got.stats.regions > 0);
      CHECK(got.stats.compiled_fast > 0);
      // Its members are reached along the loop's own edges (f heads a
      // region of its own): none is an entry of the loop's region.
      CHECK(got.stats.region_entries == 0);
      Outcome want2 = run(kTwoCalls, config(EngineKind::Interp));
      Outcome got2 = run(kTwoCalls, config(EngineKind::Tiered), strategy);
      same_state(want2, got2);
      CHECK(got2.stats.region_entries > 0);  // a return site with fast code enters through its region
    }
    SUBCASE("tiered, the code cache flushed while regions serve their members") {
      EngineConfig c = config(EngineKind::Tiered);
      c.max_blocks = 7;  // the loop's blocks fit; the exit block's translation flushes them
      Outcome want2 = run(kTwoCalls, config(EngineKind::Interp));
      Outcome got = run(kTwoCalls, c, strategy);
      same_state(want2, got);
      CHECK(got.stats.region_entries > 0);
      CHECK(got.stats.cache_flushes > 0);
    }
    SUBCASE("tiered, regions entered only at their head") {
      EngineConfig c = config(EngineKind::Tiered);
      c.region_entries = false;
      Outcome got = run(kLoop, c, strategy);
      same_state(want, got);
      CHECK(got.stats.regions > 0);
      CHECK(got.stats.region_entries == 0);
    }
    SUBCASE("tiered, unchained") {
      EngineConfig c = config(EngineKind::Tiered);
      c.chain = false;
      Outcome got = run(kLoop, c, strategy);
      same_state(want, got);
      CHECK(got.stats.chain_links == 0);
    }
  }
}

TEST_CASE("returns and indirect jumps to region members: same state with and without region_calls") {
  // A recursive fib (calls of the region's own blocks, returns to the blocks
  // after them) and a loop dispatching through an indirect jump.
  constexpr std::string_view kCalls = R"(
    mov rdi, 16
    call fib
    mov r12, rax
    mov rcx, 3000
    xor ebx, ebx
  disp:
    lea rax, [rip + op_a]
    lea rdx, [rip + op_b]
    test rcx, 1
    cmovnz rax, rdx
    jmp rax
  op_a:
    add rbx, rcx
    jmp next
  op_b:
    imul rbx, rbx, 7
    xor rbx, rcx
  next:
    dec rcx
    jnz disp
    syscall
  fib:
    cmp rdi, 2
    jl base
    push rdi
    dec rdi
    call fib
    pop rdi
    push rax
    sub rdi, 2
    call fib
    pop rdx
    add rax, rdx
    ret
  base:
    mov rax, rdi
    ret
  )";
  Outcome want = run(kCalls, config(EngineKind::Interp));
  CHECK(want.state.gpr[12] == 987);  // fib(16)
  for (bool calls : {true, false}) {
    CAPTURE(calls);
    EngineConfig c = config(EngineKind::Tiered);
    c.region_calls = calls;
    Outcome got = run(kCalls, c);
    same_state(want, got);
    CHECK(got.stats.regions > 0);
    // With region_calls: one region for fib (its calls and returns inside)
    // and one for the dispatch loop, whose `jmp rax` targets, seen while it
    // was interpreted, joined the region of whichever of its blocks got hot
    // first. Without: the loop is cut at the indirect jump (4 and more).
    if (calls) CHECK(got.stats.regions == 2);
  }
}

TEST_CASE("regions take in the functions their loop calls, those that fit") {
  // A loop calling `scale` from two sites and `mix`, which calls `scale`
  // too (a callee of a callee), with a branch inside `mix`.
  constexpr std::string_view kCallLoop = R"(
    mov rcx, 3000
    xor ebx, ebx
    mov r12, 1
  top:
    mov rdi, rcx
    call scale
    add rbx, rax
    mov rdi, rbx
    call mix
    xor rbx, rax
    mov rdi, rcx
    call scale
    add r12, rax
    dec rcx
    jnz top
    syscall
  scale:
    lea rax, [rdi + rdi*2 + 1]
    ret
  mix:
    push rdi
    shr rdi, 3
    call scale
    pop rdi
    imul rax, rdi
    test rax, 1
    jz even
    add rax, 7
  even:
    ret
  )";
  Outcome want = run(kCallLoop, config(EngineKind::Interp));
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct})
    for (int variant = 0; variant < 4; ++variant) {
      CAPTURE(mem::strategy_name(strategy));
      CAPTURE(variant);
      EngineConfig c = config(EngineKind::Tiered);
      c.region_callees = variant != 1;
      if (variant == 2) c.max_region_blocks = 4;  // the loop and mix fit, with their callees they do not
      if (variant == 3) c.max_region_blocks = 6;  // scale fits, mix (4 blocks) does not: the loop takes scale only
      Outcome got = run(kCallLoop, c, strategy);
      same_state(want, got);
      CHECK(got.stats.regions > 0);
      if (variant == 0) {
        // scale and mix, once each, in the loop's region
        CHECK(got.stats.region_callees >= 2);
      } else if (variant == 3) {
        CHECK(got.stats.region_callees >= 1);
      } else {
        CHECK(got.stats.region_callees == 0);
      }
    }
}

TEST_CASE("regions take in the targets their indirect calls took, and leave for a new one") {
  // A loop calling through rdx: `inc3` and `dbl` alternate (both seen while
  // the call's block is interpreted), and for the last 1000 iterations
  // `neg`, which the region has never seen: that call leaves the region
  // and `neg`'s return comes back in at the return site.
  constexpr std::string_view kIndirectLoop = R"(
    mov rcx, 3000
    xor ebx, ebx
    lea r8, [rip + inc3]
    lea r9, [rip + dbl]
    lea r10, [rip + neg]
  top:
    mov rdx, r8
    test rcx, 1
    cmovz rdx, r9
    cmp rcx, 1000
    cmovbe rdx, r10
    mov rdi, rcx
    call rdx
    add rbx, rax
    dec rcx
    jnz top
    syscall
  inc3:
    lea rax, [rdi + 3]
    ret
  dbl:
    lea rax, [rdi + rdi]
    ret
  neg:
    mov rax, rdi
    neg rax
    ret
  )";
  Outcome want = run(kIndirectLoop, config(EngineKind::Interp));
  // Iterations 3000..1001 add rcx + 3 (odd) or 2 rcx (even), 1000..1 add -rcx.
  uint64_t sum = 0;
  for (uint64_t i = 3000; i > 1000; --i) sum += (i & 1) ? i + 3 : 2 * i;
  for (uint64_t i = 1000; i > 0; --i) sum -= i;
  REQUIRE(want.state.gpr[3] == sum);
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct})
    for (bool indirect : {true, false}) {
      bool softmmu = strategy == mem::MemoryStrategy::SoftMmu;
      CAPTURE(softmmu);
      CAPTURE(indirect);
      EngineConfig c = config(EngineKind::Tiered);
      c.region_indirect_callees = indirect;
      Outcome got = run(kIndirectLoop, c, strategy);
      same_state(want, got);
      REQUIRE(got.stats.regions > 0);
      if (indirect) {
        CHECK(got.stats.region_callees >= 2);  // inc3 and dbl
      } else {
        CHECK(got.stats.region_callees == 0);
      }
    }
}

TEST_CASE("background region compilation gives the same result") {
  Outcome want = run(kLoop, config(EngineKind::Interp));
  EngineConfig c = config(EngineKind::Tiered);
  c.background_compile = true;
  for (int i = 0; i < 3; ++i) same_state(want, run(kLoop, c));
}

TEST_CASE("chained code sees self-modifying code") {
  // Builds `mov eax, 1; ret` in a writable, executable page, calls it until
  // it is compiled and chained, patches the immediate to 1000, calls again.
  constexpr std::string_view kSmc = R"(
    mov rbx, 0x300000
    mov dword ptr [rbx], 0x1b8
    mov byte ptr [rbx + 4], 0
    mov byte ptr [rbx + 5], 0xc3
    xor r12d, r12d
    mov ecx, 200
  first:
    call rbx
    add r12, rax
    dec ecx
    jnz first
    mov dword ptr [rbx + 1], 1000
    mov ecx, 200
  second:
    call rbx
    add r12, rax
    dec ecx
    jnz second
    syscall
  )";
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct})
    for (EngineKind kind : {EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered}) {
      CAPTURE(mem::strategy_name(strategy));
      CAPTURE(engine::engine_kind_name(kind));
      Outcome got = run(kSmc, config(kind), strategy);
      CHECK(got.state.gpr[12] == 200 * 1 + 200 * 1000);
      CHECK(got.stats.invalidations > 0);
    }
}

TEST_CASE("regions of read-only code run without exit polls; one that rewrites its own page leaves its loop") {
  // The loop adds the immediate of `mov eax, 1` to r12 and stores 1000 to
  // the data page in every iteration, except in iteration 2001 of 4000,
  // where (after its add) the store rewrites that immediate instead. By
  // then the loop's three blocks are one region with the store inside it
  // (a region of one block returns after each pass anyway); with the code
  // page writable the region must leave at its back edge and run the new
  // code: r12 = 2001 * 1 + 1999 * 1000. Without the poll, softmmu and
  // direct code without sync points would go on adding 1.
  constexpr std::string_view kSelfPatch = R"(
    xor r12d, r12d
    mov ecx, 4000
    lea rbx, [rip + site]
    mov rsi, 0x200000
  site:
    mov eax, 1
    add r12, rax
    mov rdi, rsi
    cmp ecx, 2000
    cmove rdi, rbx
    test ecx, 1
    jz even
    add r13, 1
  even:
    mov dword ptr [rdi + 1], 1000
    dec ecx
    jnz site
    syscall
  )";
  constexpr uint64_t kWant = 2001 * 1 + 1999 * 1000;
  Outcome want = run(kSelfPatch, config(EngineKind::Interp), mem::MemoryStrategy::Direct, ir::HelperTable::defaults(),
                     false, true);
  REQUIRE(want.state.gpr[12] == kWant);
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct})
    for (bool precise : {true, false}) {
      bool softmmu = strategy == mem::MemoryStrategy::SoftMmu;
      CAPTURE(softmmu);
      CAPTURE(precise);
      EngineConfig c = config(EngineKind::Tiered);
      c.precise_faults = precise;
      Outcome got = run(kSelfPatch, c, strategy, ir::HelperTable::defaults(), false, true);
      same_state(want, got);
      CHECK(got.stats.regions > 0);
      CHECK(got.stats.invalidations > 0);
      CHECK(got.stats.regions_without_polls == 0);  // the loop's page is writable
    }

  // Read-only code: every region without polls (unless asked for them), and
  // the same state as the interpreter either way.
  Outcome loop_want = run(kLoop, config(EngineKind::Interp), mem::MemoryStrategy::Direct);
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct})
    for (bool elide : {true, false}) {
      bool softmmu = strategy == mem::MemoryStrategy::SoftMmu;
      CAPTURE(softmmu);
      CAPTURE(elide);
      EngineConfig c = config(EngineKind::Tiered);
      c.elide_exit_polls = elide;
      Outcome got = run(kLoop, c, strategy);
      same_state(loop_want, got);
      REQUIRE(got.stats.regions > 0);
      CHECK(got.stats.regions_without_polls == (elide ? got.stats.regions : 0));
      // Writable code keeps its polls.
      Outcome writable = run(kLoop, c, strategy, ir::HelperTable::defaults(), false, true);
      same_state(loop_want, writable);
      CHECK(writable.stats.regions_without_polls == 0);
    }
}

TEST_CASE("a region cut short by the block limit grows once it has run long enough") {
  // kLoop's loop is five blocks with the call of f. A limit of 2 or 3 blocks
  // cuts its region short (f and the blocks after the call stay out), so
  // the region counts its entries, and after 100 or 101 of them is formed
  // again with room for 16 blocks.
  Outcome want = run(kLoop, config(EngineKind::Interp));
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct})
    for (uint32_t limit : {2u, 3u})
      for (uint32_t threshold : {100u, 101u}) {
        bool softmmu = strategy == mem::MemoryStrategy::SoftMmu;
        CAPTURE(softmmu);
        CAPTURE(limit);
        CAPTURE(threshold);
        EngineConfig c = config(EngineKind::Tiered);
        c.max_region_blocks = limit;
        c.max_grown_region_blocks = 16;
        c.region_growth_threshold = threshold;
        Outcome got = run(kLoop, c, strategy);
        same_state(want, got);
        CHECK(got.stats.regions_grown == 1);
        CHECK(got.stats.regions >= 2);
        // Growth off: the cut region stays.
        c.region_growth_threshold = 0;
        Outcome off = run(kLoop, c, strategy);
        same_state(want, off);
        CHECK(off.stats.regions_grown == 0);
      }
  // A region entered at a member: the loop's head H branches to X inside
  // its two-block region or to Y, cut off, which jumps to X from outside.
  // Every entry after the first is at X, so the count returns there, and
  // the code must leave the state (rip = X) as it found it: storing the
  // head's pc there, as a single block does, fails this part.
  constexpr std::string_view kSideEntry = R"(
    mov rcx, 3000
    xor eax, eax
  h:
    add rax, rcx
    test rcx, 1
    jnz x
    xor rax, rcx
    rol rax, 5
    jmp x
  x:
    imul rax, rax, 3
    dec rcx
    jnz h
    syscall
  )";
  Outcome side_want = run(kSideEntry, config(EngineKind::Interp));
  for (auto strategy : {mem::MemoryStrategy::SoftMmu, mem::MemoryStrategy::Direct})
    for (uint32_t threshold : {100u, 101u}) {
      bool softmmu = strategy == mem::MemoryStrategy::SoftMmu;
      CAPTURE(softmmu);
      CAPTURE(threshold);
      EngineConfig c = config(EngineKind::Tiered);
      c.max_region_blocks = 2;
      c.max_grown_region_blocks = 16;
      c.region_growth_threshold = threshold;
      Outcome got = run(kSideEntry, c, strategy);
      same_state(side_want, got);
      CHECK(got.stats.regions_grown >= 1);
    }
  // A region the limits did not cut never asks to grow.
  EngineConfig c = config(EngineKind::Tiered);
  c.region_growth_threshold = 100;
  Outcome whole = run(kLoop, c, mem::MemoryStrategy::Direct);
  same_state(want, whole);
  CHECK(whole.stats.regions > 0);
  CHECK(whole.stats.regions_grown == 0);
  // In the background (growth waits for an idle compiler): the same state.
  c.max_region_blocks = 2;
  c.background_compile = true;
  for (int i = 0; i < 3; ++i) same_state(want, run(kLoop, c, mem::MemoryStrategy::Direct));
}

TEST_CASE("--verify-jit co-simulation passes on agreeing code and reports a difference") {
  EngineConfig c = config(EngineKind::Tiered);
  c.verify_jit = true;
  Outcome ok = run(kLoop, c);
  CHECK_MESSAGE(ok.verify_error.empty(), ok.verify_error);
  CHECK(ok.stats.verified_blocks > 0);
  same_state(run(kLoop, config(EngineKind::Interp)), ok);

  // A cpuid helper that answers differently on every call: the interpreter's
  // and the compiled run of the same block see different rax values.
  static uint64_t calls = 0;
  ir::HelperTable drifting = ir::HelperTable::defaults();
  drifting.fns[static_cast<size_t>(ir::Helper::Cpuid)] = [](core::X86State* s, uint64_t, uint64_t, uint64_t) -> uint64_t {
    s->gpr[0] = ++calls;
    return 0;
  };
  constexpr std::string_view kCpuidLoop = R"(
    mov ecx, 50
  again:
    xor eax, eax
    cpuid
    dec ecx
    jnz again
    syscall
  )";
  EngineConfig j = config(EngineKind::Jit);
  j.verify_jit = true;
  Outcome bad = run(kCpuidLoop, j, mem::MemoryStrategy::SoftMmu, drifting);
  CHECK(bad.verify_error.find("rax") != std::string::npos);
  CHECK(bad.verify_error.find("differs from the interpreter") != std::string::npos);
}
