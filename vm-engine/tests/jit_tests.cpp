// The JIT against the reference interpreter: random verifier-valid blocks run
// from identical random states and memory through both, at both tiers and
// with both memory strategies, must leave identical state, memory and exit.
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "lowering_harness.hpp"
#include "random_blocks.hpp"
#include "vm/engine/jit.hpp"
#include "vm/ir/builder.hpp"
#include "vm/ir/text.hpp"

using namespace vm;
using vm::testing::FlatMemory;

namespace {

// `restartable`: the engine's restartable state (sync points; under Direct
// also loads kept alive); with no fault it must change nothing.
engine::JITCompiler& jit_for(translate::MemoryStrategy s, bool restartable = false) {
  static std::unique_ptr<engine::JITCompiler> direct, softmmu, direct_restartable, softmmu_restartable;
  const bool d = s == translate::MemoryStrategy::Direct;
  auto& slot = restartable ? (d ? direct_restartable : softmmu_restartable) : d ? direct : softmmu;
  if (!slot) {
    engine::JitOptions o;
    o.memory = s;
    o.restartable = restartable;
    auto j = engine::JITCompiler::create(o);
    REQUIRE_MESSAGE(j.has_value(), (j ? "" : j.error().to_string()));
    slot = std::move(*j);
  }
  return *slot;
}

// A TLB covering the window's pages of `mem` with real entries, so softmmu
// code takes the inline fast path there and the slow path elsewhere.
struct WindowTlb {
  std::vector<core::TlbEntry> entries = std::vector<core::TlbEntry>(64);
  core::TlbFast fast;
  WindowTlb(FlatMemory& mem, uint64_t tag) {
    fast.index_mask = (entries.size() - 1) << core::kTlbEntrySizeLog2;
    fast.table = entries.data();
    fast.tag = tag << core::kTlbTagShift;
    for (uint64_t page = mem.base(); page < mem.base() + mem.size(); page += core::kTlbPageSize) {
      auto& e = entries[(page >> core::kTlbPageBits) % entries.size()];
      e.addr_read = page | fast.tag;
      e.addr_write = page | fast.tag;
      e.addend = reinterpret_cast<uint64_t>(mem.host() + (page & FlatMemory::kMask)) - page;
    }
  }
};

// SoftMmuRestartable: slow paths only, as the engine compiles softmmu code.
// A memory fault leaves with kExitRestart and the state of an earlier
// instruction boundary, which only the engine can run on from (decoding
// x86 there; engine_tests.cpp checks that): here the fault must be the
// interpreter's, at the same address.
enum class Mode { Direct, SoftMmuSlow, SoftMmuTlb, DirectRestartable, SoftMmuRestartable };

// Runs a block, or a region, through the interpreter and the JIT; returns ""
// when they agree. For a region the interpreter follows the jumps and
// branches that reach another of its blocks. `entry` > 0: the region is
// compiled with every block as an entry and entered at blocks[entry] (the
// state's rip says where, as it does when the engine enters code).
// `indirect_members`: the region is compiled with it, and the interpreter
// also follows indirect jumps and calls to any block of the region and a
// return to the block after a call whose callee reaches the returning block
// without returning (through jumps, branches, early exits, indirect jumps
// to any block, and calls to the blocks after them).
std::string compare_one(std::span<const ir::IRBlock> blocks, const core::X86State& s0, const FlatMemory& m0,
                        engine::Tier tier, Mode mode, size_t* edges_followed = nullptr, size_t entry = 0,
                        bool indirect_members = false, size_t* indirect_followed = nullptr) {
  FlatMemory mi(m0.base(), m0.size());
  mi.copy_from(m0);
  core::X86State si = s0;
  ir::HelperTable no_helpers;
  ir::Interpreter interp(mi, no_helpers);
  const ir::IRBlock* cur = &blocks[entry];
  ir::ExecResult want = interp.run(*cur, si);
  auto index_of = [&](uint64_t pc) -> std::optional<size_t> {
    for (size_t i = 0; i < blocks.size(); ++i)
      if (blocks[i].start_pc.value() == pc) return i;
    return std::nullopt;
  };
  // Whether a callee starting at block `from` reaches block `to` before it returns.
  auto reaches = [&](size_t from, size_t to) {
    std::vector<bool> seen(blocks.size(), false);
    std::vector<size_t> work{from};
    seen[from] = true;
    while (!work.empty()) {
      size_t b = work.back();
      work.pop_back();
      if (b == to) return true;
      const ir::Terminator& t = blocks[b].term;
      std::vector<uint64_t> next;
      if (t.kind == ir::TermKind::Jump) next = {t.target.value()};
      if (t.kind == ir::TermKind::Branch) next = {t.target.value(), t.fallthrough.value()};
      if (t.kind == ir::TermKind::Call) next = {t.fallthrough.value()};
      if (t.kind == ir::TermKind::IndirectJump)
        for (const auto& m : blocks) next.push_back(m.start_pc.value());
      for (const auto& op : blocks[b].ops)
        if (op.opcode == ir::Opcode::ExitIf) next.push_back(op.imm);
      for (uint64_t pc : next)
        if (auto i = index_of(pc); i && !seen[*i]) seen[*i] = true, work.push_back(*i);
    }
    return false;
  };
  // A return from `cur` to `pc` stays inside when pc follows a call whose callee reaches cur.
  auto is_return_site = [&](uint64_t pc, const ir::IRBlock* ret_block) {
    size_t from_block = static_cast<size_t>(ret_block - blocks.data());
    return std::any_of(blocks.begin(), blocks.end(), [&](const ir::IRBlock& b) {
      if (b.term.kind != ir::TermKind::Call || b.term.fallthrough.value() != pc) return false;
      if (b.term.value != ir::kNoValue) {  // an indirect call may enter any member
        for (size_t i = 0; i < blocks.size(); ++i)
          if (reaches(i, from_block)) return true;
        return false;
      }
      auto callee = index_of(b.term.target.value());
      return callee && reaches(*callee, from_block);
    });
  };
  for (size_t steps = 0; blocks.size() > 1 && steps < 64; ++steps) {
    bool follow = want.kind == ir::TermKind::Jump || want.kind == ir::TermKind::Branch;
    if (want.kind == ir::TermKind::Call && cur->term.value == ir::kNoValue) follow = true;  // a direct call
    if (indirect_members && (want.kind == ir::TermKind::IndirectJump || want.kind == ir::TermKind::Call)) follow = true;
    if (indirect_members && want.kind == ir::TermKind::Ret && is_return_site(si.rip, cur)) follow = true;
    if (!follow) break;
    auto next = std::find_if(blocks.begin(), blocks.end(), [&](const ir::IRBlock& b) { return b.start_pc.value() == si.rip; });
    if (next == blocks.end()) break;
    bool indirect = want.kind == ir::TermKind::IndirectJump || want.kind == ir::TermKind::Ret ||
                    (want.kind == ir::TermKind::Call && cur->term.value != ir::kNoValue);
    if (indirect && indirect_followed) ++*indirect_followed;
    cur = &*next;
    want = interp.run(*cur, si);
    if (edges_followed) ++*edges_followed;
  }

  FlatMemory mj(m0.base(), m0.size());
  mj.copy_from(m0);
  core::X86State sj = s0;
  bool direct = mode == Mode::Direct || mode == Mode::DirectRestartable;
  auto strategy = direct ? translate::MemoryStrategy::Direct : translate::MemoryStrategy::SoftMmu;
  engine::JITCompiler& jit = jit_for(strategy, mode == Mode::DirectRestartable || mode == Mode::SoftMmuRestartable);
  engine::UnitOptions unit;
  unit.all_entries = entry > 0;
  unit.indirect_members = indirect_members;
  auto compiled = jit.compile_region(blocks, tier, unit);
  if (!compiled) return "compile failed: " + compiled.error().to_string();
  translate::ExitInfo got;
  uint64_t fault_addr = 0;
  if (direct) {
    auto ctx = mj.direct_context(no_helpers.fns.data());
    got = engine::execute(*compiled, sj, ctx);
  } else {
    engine::GuestMemoryBridge bridge(mj, no_helpers);
    WindowTlb tlb(mj, 5);
    if (mode == Mode::SoftMmuTlb) bridge.context().tlb = &tlb.fast;
    got = engine::execute(*compiled, sj, bridge.context());
    fault_addr = bridge.context().fault_addr;
  }
  (void)jit.release(*compiled);
  std::string diff;
  if (got.restart) {
    if (mode != Mode::SoftMmuRestartable) diff += "  a restart exit without restartable softmmu\n";
    got.restart = false;  // below: the same fault as the interpreter's
  } else {
    diff = testing::state_diff(si, sj) + testing::memory_diff(mi.window(), mj.window(), m0.base());
  }
  if (got != testing::expected_exit(want))
    diff += fmt::format("  exit: want kind {} trap {} got kind {} trap {}\n", int(want.kind), int(want.trap),
                        int(got.kind), int(got.trap));
  if (want.trap == ir::TrapReason::MemoryFault && want.kind == ir::TermKind::Trap && want.fault_addr &&
      want.fault_addr->value() != fault_addr)
    diff += fmt::format("  fault addr: want {:#x} got {:#x}\n", want.fault_addr->value(), fault_addr);
  return diff;
}

void differential(uint64_t seed, uint32_t count, Mode mode, const ir::testing::RandomBlockOptions& base_opts,
                  uint64_t window_base = 0x10000, uint64_t window_size = 0x1000) {
  std::mt19937_64 rng(seed);
  uint32_t failures = 0;
  for (uint32_t i = 0; i < count && failures < 3; ++i) {
    auto opts = base_opts;
    opts.size = static_cast<uint32_t>(4 + rng() % 60);
    ir::IRBlock block = ir::testing::random_block(rng, opts);
    core::X86State s0 = testing::random_state(rng);
    FlatMemory m0(window_base, window_size);
    m0.fill(rng);
    for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
      std::string diff = compare_one(std::span<const ir::IRBlock>(&block, 1), s0, m0, tier, mode);
      if (!diff.empty()) {
        ++failures;
        FAIL_CHECK(fmt::format("seed {} block {} tier {}:\n{}{}", seed, i, engine::tier_name(tier), diff, ir::print(block)));
      }
    }
  }
}

// A random region of 2-8 random blocks: each block's jump, branch or
// exit_if goes forward, to a later block of the region or out of it, so
// every run ends.
// Most blocks get such a terminator; the others keep their random one.
std::vector<ir::IRBlock> random_region(std::mt19937_64& rng, const ir::testing::RandomBlockOptions& base_opts,
                                       bool indirect_exits = false) {
  size_t n = 2 + rng() % 7;
  std::vector<uint64_t> pcs;
  for (size_t i = 0; i < n; ++i) pcs.push_back(0x401000 + i * 0x100);
  const uint64_t outside = 0x480000;
  std::vector<ir::IRBlock> blocks;
  std::vector<uint64_t> return_sites;
  for (size_t i = 0; i < n; ++i) {
    auto opts = base_opts;
    opts.size = static_cast<uint32_t>(4 + rng() % 40);
    opts.start_pc = core::GuestAddr(pcs[i]);
    ir::IRBlock b = ir::testing::random_block(rng, opts);
    auto forward = [&] { return core::GuestAddr(i + 1 < n && rng() % 4 != 0 ? pcs[i + 1 + rng() % (n - i - 1)] : outside); };
    ir::Terminator& t = b.term;
    if (rng() % 5 != 0) {
      auto cond = std::find_if(b.ops.begin(), b.ops.end(),
                               [](const ir::Op& op) { return op.type == ir::Type::I1 && op.result != ir::kNoValue; });
      t = ir::Terminator{};
      if (indirect_exits && rng() % 2 == 0) {
        // An indirect jump, indirect call or return to a constant pc (a
        // later block or outside), or a direct call whose return site is a
        // later block (the target of some later return).
        static constexpr ir::TermKind kinds[] = {ir::TermKind::IndirectJump, ir::TermKind::Ret, ir::TermKind::Call,
                                                 ir::TermKind::Call};
        t.kind = kinds[rng() % 4];
        uint64_t target = forward().value();
        // Outside pcs vary (a dispatch must tell each from every member).
        if (target == outside && t.kind != ir::TermKind::Call) target += 0x40 * (rng() % 32);
        if (t.kind == ir::TermKind::Ret && !return_sites.empty() && rng() % 4 != 0) {
          auto later = std::find_if(return_sites.begin(), return_sites.end(), [&](uint64_t pc) { return pc > pcs[i]; });
          if (later != return_sites.end()) target = *later;
        }
        if (t.kind == ir::TermKind::Call && rng() % 2 == 0) {
          t.target = core::GuestAddr(target);  // direct
          t.fallthrough = forward();
          if (t.fallthrough.value() != outside) return_sites.push_back(t.fallthrough.value());
        } else {
          ir::Op c;
          c.opcode = ir::Opcode::Const;
          c.type = ir::Type::I64;
          c.result = b.value_count();
          c.imm = target;
          b.ops.push_back(c);
          t.value = c.result;
          if (t.kind == ir::TermKind::Call) t.fallthrough = forward();
        }
      } else if (cond != b.ops.end() && rng() % 3 != 0) {
        t.kind = ir::TermKind::Branch;
        t.value = cond->result;
        t.fallthrough = forward();
      } else {
        t.kind = ir::TermKind::Jump;
      }
      if (t.kind == ir::TermKind::Jump || t.kind == ir::TermKind::Branch) t.target = forward();
    } else if (t.kind == ir::TermKind::Jump || t.kind == ir::TermKind::Branch || t.kind == ir::TermKind::Call) {
      // Keep the random terminator, but its static targets must not enter
      // the region backwards (the region would loop) or from a call.
      for (auto* a : {&t.target, &t.fallthrough})
        if (std::find(pcs.begin(), pcs.end(), a->value()) != pcs.end()) *a = core::GuestAddr(outside + 0x10);
    }
    for (ir::Op& op : b.ops)  // early leaves: forward into the region or out
      if (op.opcode == ir::Opcode::ExitIf) op.imm = forward().value();
    blocks.push_back(std::move(b));
  }
  return blocks;
}

ir::testing::RandomBlockOptions no_helper_options() {
  ir::testing::RandomBlockOptions o;
  o.helpers = false;  // rdtsc is not deterministic
  return o;
}

}  // namespace

TEST_CASE("JIT matches the interpreter on 1000 random blocks (direct memory, both tiers)") {
  uint64_t seed = ir::testing::test_seed(0x5eed0001);
  differential(seed, 1000 * ir::testing::test_scale(), Mode::Direct, no_helper_options());
}

TEST_CASE("JIT with restartable state (sync points, loads kept alive) matches the interpreter on random blocks") {
  uint64_t seed = ir::testing::test_seed(0x5eed000a);
  differential(seed, 500 * ir::testing::test_scale(), Mode::DirectRestartable, no_helper_options());
}

TEST_CASE("JIT matches the interpreter with softmmu slow paths, including precise faults") {
  uint64_t seed = ir::testing::test_seed(0x5eed0002);
  auto o = no_helper_options();
  // The block's accesses straddle the end of the mapped window, so some fault.
  o.mem_base = 0x10f00;
  o.mem_size = 0x200;
  differential(seed, 250 * ir::testing::test_scale(), Mode::SoftMmuSlow, o);
}

TEST_CASE("JIT with restartable softmmu matches the interpreter, or faults where it does") {
  uint64_t seed = ir::testing::test_seed(0x5eed000b);
  auto o = no_helper_options();
  o.mem_base = 0x10f00;
  o.mem_size = 0x200;
  differential(seed, 250 * ir::testing::test_scale(), Mode::SoftMmuRestartable, o);
}

TEST_CASE("JIT matches the interpreter with softmmu TLB hits and misses") {
  uint64_t seed = ir::testing::test_seed(0x5eed0003);
  auto o = no_helper_options();
  o.mem_base = 0x10e00;
  o.mem_size = 0x400;
  differential(seed, 250 * ir::testing::test_scale(), Mode::SoftMmuTlb, o);
}

TEST_CASE("JIT regions match the interpreter on random regions (every memory mode, both tiers)") {
  // Registers live in SSA values across a region's internal edges and every
  // exit (chain, side exit, fault) stores what the region wrote.
  uint64_t seed = ir::testing::test_seed(0x5eed0007);
  std::mt19937_64 rng(seed);
  uint32_t failures = 0, regions = 400 * ir::testing::test_scale(), crossing = 0, indirect_crossing = 0;
  for (uint32_t i = 0; i < regions && failures < 3; ++i) {
    Mode mode = static_cast<Mode>((i / 4) % 5);  // each mode with every i % 4 variant below
    auto o = no_helper_options();
    if (mode == Mode::SoftMmuTlb) o.mem_base = 0x10e00, o.mem_size = 0x400;
    // Half the regions use a few registers, so values often cross edges.
    using R = core::X86Reg;
    if (i % 2 == 0) o.regs = {R::Rax, R::Rcx, R::Rdx, R::Rsp, R::Cf, R::Zf, R::Sf, R::Of, R::Xmm0, R::Xmm1};
    o.conditional_exits = i % 4 < 2;  // trap_if and exit_if inside the blocks
    // Half the regions have indirect jumps, calls and returns, kept inside
    // the region when they reach a member (indirect_members).
    bool indirect = i % 4 == 1 || i % 4 == 2;
    auto blocks = random_region(rng, o, indirect);
    // A third of the regions are entered at a later block (all_entries).
    size_t entry = i % 3 == 2 ? rng() % blocks.size() : 0;
    core::X86State s0 = testing::random_state(rng);
    s0.rip = blocks[entry].start_pc.value();
    FlatMemory m0(0x10000, 0x1000);
    m0.fill(rng);
    for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
      size_t edges = 0, indirect_edges = 0;
      std::string diff = compare_one(blocks, s0, m0, tier, mode, &edges, entry, indirect, &indirect_edges);
      if (tier == engine::Tier::Fast && edges > 0) ++crossing;
      if (tier == engine::Tier::Fast && indirect_edges > 0) ++indirect_crossing;
      if (!diff.empty()) {
        ++failures;
        std::string text;
        for (const auto& b : blocks) text += ir::print(b);
        FAIL_CHECK(fmt::format("seed {} region {} mode {} tier {} entry {}:\n{}{}", seed, i, int(mode),
                               engine::tier_name(tier), entry, diff, text));
      }
    }
  }
  // The runs must actually cross internal edges (not only leave at once).
  CHECK_MESSAGE(crossing * 4 >= regions, "only ", crossing, " of ", regions, " regions crossed an internal edge");
  // And some of them must stay inside through an indirect jump, call or return.
  CHECK_MESSAGE(indirect_crossing * 40 >= regions, "only ", indirect_crossing, " of ", regions,
                " regions crossed an indirect internal edge");
  MESSAGE(crossing, " of ", regions, " regions crossed an internal edge, ", indirect_crossing, " an indirect one");
}

TEST_CASE("grouped accesses (one TLB check for a push sequence) fault where the interpreter does") {
  // Three pushes and two loads off rsp: softmmu checks each group's bytes
  // once. With rsp near the window's start the group spans a page boundary
  // and the pushes take their own checks: the third faults, the first two
  // are done. With rsp near the end, the first push is already outside.
  auto block = ir::parse(R"(block 0x1000 len 16 {
  insn 0x1000
  %0:i64 = get_reg rsp
  %1:i64 = get_reg rax
  %2:i64 = const 0x8
  %3:i64 = sub %0, %2
  store %3, %1
  insn 0x1001
  %4:i64 = get_reg rcx
  %5:i64 = sub %3, %2
  store %5, %4
  insn 0x1002
  %6:i64 = get_reg rdx
  %7:i64 = sub %5, %2
  store %7, %6
  set_reg rsp, %7
  insn 0x1003
  %8:i64 = const 0x10
  %9:i64 = add %7, %8
  %10:i32 = load %9
  %11:i64 = load %7
  %12:i64 = zext %10
  %13:i64 = add %12, %11
  set_reg rbx, %13
  exit 0x2000
})");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  std::mt19937_64 rng(11);
  FlatMemory m0(0x10000, 0x1000);
  m0.fill(rng);
  for (uint64_t rsp : {0x10010ull, 0x10018ull, 0x10800ull, 0x10ff8ull, 0x11000ull, 0x11008ull, 0x10004ull}) {
    core::X86State s0 = testing::random_state(rng);
    s0.gpr[4] = rsp;
    s0.rip = 0x1000;
    for (Mode mode : {Mode::SoftMmuTlb, Mode::SoftMmuSlow})
      for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
        CAPTURE(rsp);
        CAPTURE(int(mode));
        CAPTURE(engine::tier_name(tier));
        CHECK(compare_one(std::span<const ir::IRBlock>(&*block, 1), s0, m0, tier, mode) == "");
      }
  }
}

TEST_CASE("a group of loads and stores takes the fast path only when the page is readable and writable") {
  // A load of [rsp] and a store to [rsp + 8] form one group. Its check must
  // compare both comparators: a page whose write comparator is watched or
  // invalid sends the store (not the load) to the slow path, and a page
  // that is not readable sends the load.
  auto block = ir::parse(R"(block 0x1000 len 8 {
  insn 0x1000
  %0:i64 = get_reg rsp
  %1:i64 = load %0
  insn 0x1004
  %2:i64 = const 0x8
  %3:i64 = add %0, %2
  %4:i64 = get_reg rcx
  %5:i64 = add %1, %4
  store %3, %5
  set_reg rax, %5
  exit 0x2000
})");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  static int loads_slow = 0, stores_slow = 0;
  static translate::LoadSlowFn real_load = nullptr;
  static translate::StoreSlowFn real_store = nullptr;
  for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
    auto compiled = jit_for(translate::MemoryStrategy::SoftMmu).compile(*block, tier);
    REQUIRE(compiled.has_value());
    struct Case {
      uint64_t read_bits, write_bits;
      int loads_slow, stores_slow;
    };
    for (Case c : {Case{0, 0, 0, 0}, Case{0, core::kTlbWatch, 0, 1}, Case{0, core::kTlbInvalid, 0, 1},
                   Case{core::kTlbInvalid, 0, 1, 0}}) {
      CAPTURE(engine::tier_name(tier));
      CAPTURE(c.read_bits);
      CAPTURE(c.write_bits);
      std::mt19937_64 rng(5);
      FlatMemory m0(0x10000, 0x1000);
      m0.fill(rng);
      core::X86State s0 = testing::random_state(rng);
      s0.gpr[4] = 0x10400;
      s0.rip = 0x1000;
      FlatMemory mi(0x10000, 0x1000), mj(0x10000, 0x1000);
      mi.copy_from(m0);
      mj.copy_from(m0);
      core::X86State si = s0, sj = s0;
      ir::HelperTable no_helpers;
      ir::Interpreter interp(mi, no_helpers);
      interp.run(*block, si);
      engine::GuestMemoryBridge bridge(mj, no_helpers);
      WindowTlb tlb(mj, 5);
      auto& e = tlb.entries[(0x10000 >> core::kTlbPageBits) % tlb.entries.size()];
      e.addr_read |= c.read_bits;
      e.addr_write |= c.write_bits;
      auto& ctx = bridge.context();
      ctx.tlb = &tlb.fast;
      real_load = ctx.load_slow;
      real_store = ctx.store_slow;
      loads_slow = stores_slow = 0;
      ctx.load_slow = [](translate::MemoryContext* m, uint64_t a, uint64_t n, void* out) {
        ++loads_slow;
        return real_load(m, a, n, out);
      };
      ctx.store_slow = [](translate::MemoryContext* m, uint64_t a, uint64_t n, const void* in) {
        ++stores_slow;
        return real_store(m, a, n, in);
      };
      auto got = engine::execute(*compiled, sj, ctx);
      CHECK(got.kind == ir::TermKind::Exit);
      CHECK(testing::state_diff(si, sj) == "");
      CHECK(testing::memory_diff(mi.window(), mj.window(), 0x10000) == "");
      CHECK(loads_slow == c.loads_slow);
      CHECK(stores_slow == c.stores_slow);
    }
    (void)jit_for(translate::MemoryStrategy::SoftMmu).release(*compiled);
  }
}

TEST_CASE("helper calls see the flushed state and their writes are reloaded") {
  auto block = ir::parse(R"(block 0x1000 len 2 {
  insn 0x1000
  %0:i64 = const 0x1
  set_reg rax, %0
  %1:i64 = const 0x0
  set_reg rcx, %1
  call_helper cpuid
  %2:i64 = get_reg rax
  %3:i64 = get_reg rbx
  %4:i64 = add %2, %3
  set_reg rdx, %4
  exit 0x1002
})");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  FlatMemory m(0x10000, 0x1000);
  core::X86State want{}, got{};
  ir::Interpreter interp(m);
  interp.run(*block, want);
  auto compiled = jit_for(translate::MemoryStrategy::Direct).compile(*block, engine::Tier::Optimized);
  REQUIRE(compiled.has_value());
  auto ctx = m.direct_context(ir::HelperTable::defaults().fns.data());
  auto exit = engine::execute(*compiled, got, ctx);
  CHECK(exit.kind == ir::TermKind::Exit);
  CHECK(testing::state_diff(want, got) == "");
  CHECK(got.gpr[2] != 0);
}

TEST_CASE("128-bit divisions agree with the host's __int128 arithmetic on both paths (64-bit fast path, libgcc)") {
  // dividend rdx:rax, divisor rcx (sign- or zero-extended): quotients and
  // remainders, low and high halves, in rbx rsi rdi rbp r8 r9 r10 r11.
  auto block = ir::parse(R"(block 0x1000 len 2 {
  insn 0x1000
  %0:i64 = get_reg rax
  %1:i64 = get_reg rdx
  %2:i64 = get_reg rcx
  %3:i128 = zext %0
  %4:i128 = zext %1
  %5:i128 = const 0x40
  %6:i128 = shl %4, %5
  %7:i128 = or %6, %3
  %8:i128 = sext %2
  %9:i128 = zext %2
  %10:i128 = divs %7, %8
  %11:i128 = rems %7, %8
  %12:i128 = divu %7, %9
  %13:i128 = remu %7, %9
  %14:i64 = trunc %10
  set_reg rbx, %14
  %15:i128 = lshr %10, %5
  %16:i64 = trunc %15
  set_reg rsi, %16
  %17:i64 = trunc %11
  set_reg rdi, %17
  %18:i128 = lshr %11, %5
  %19:i64 = trunc %18
  set_reg rbp, %19
  %20:i64 = trunc %12
  set_reg r8, %20
  %21:i128 = lshr %12, %5
  %22:i64 = trunc %21
  set_reg r9, %22
  %23:i64 = trunc %13
  set_reg r10, %23
  %24:i128 = lshr %13, %5
  %25:i64 = trunc %24
  set_reg r11, %25
  exit 0x1002
})");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  constexpr uint64_t kMin = uint64_t{1} << 63, kAll = ~uint64_t{0};
  struct Case {
    uint64_t hi, lo, divisor;
  };
  const Case cases[] = {
      {0, 1000003, 7},              // both fit: the 64-bit path
      {kAll, uint64_t(-1000003), 7}, {0, 1000003, uint64_t(-7)}, {kAll, uint64_t(-5), uint64_t(-3)},
      {kAll, kMin, kAll},           // 64-bit MIN / -1: fits 64 bits as a dividend, not as a quotient
      {kAll, kMin, 1},  {0, kMin, 3}, {0, kAll, kAll},  // unsigned: fits; signed: dividend 2^64-1 does not
      {5, 0x123456789abcdef0, 0xfedcba9876543210},      // dividend wider than 64 bits
      {0x7fffffffffffffff, kAll, 0x100000001}, {kAll - 3, 17, 0x8000000000000001}, {1, 0, 2},
  };
  for (engine::Tier tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
    auto compiled = jit_for(translate::MemoryStrategy::Direct).compile(*block, tier);
    REQUIRE_MESSAGE(compiled.has_value(), (compiled ? "" : compiled.error().to_string()));
    for (const Case& c : cases) {
      CAPTURE(engine::tier_name(tier));
      CAPTURE(c.hi);
      CAPTURE(c.lo);
      CAPTURE(c.divisor);
      FlatMemory m(0x10000, 0x1000);
      core::X86State want{}, got{};
      want.gpr[0] = got.gpr[0] = c.lo;
      want.gpr[2] = got.gpr[2] = c.hi;
      want.gpr[1] = got.gpr[1] = c.divisor;
      ir::Interpreter interp(m);
      ir::ExecResult r = interp.run(*block, want);
      auto ctx = m.direct_context(ir::HelperTable::defaults().fns.data());
      auto exit = engine::execute(*compiled, got, ctx);
      REQUIRE(r.kind == ir::TermKind::Exit);  // no case divides by zero or overflows 128 bits
      CHECK(exit.kind == ir::TermKind::Exit);
      CHECK(testing::state_diff(want, got) == "");
      // The host compiler's 128-bit arithmetic as the oracle.
      using i128 = __int128;
      using u128 = unsigned __int128;
      u128 dividend = (u128(c.hi) << 64) | c.lo;
      i128 sd = i128(int64_t(c.divisor));
      i128 sq = i128(dividend) / sd, sr = i128(dividend) % sd;
      u128 uq = dividend / c.divisor, ur = dividend % c.divisor;
      CHECK(got.gpr[3] == uint64_t(sq));
      CHECK(got.gpr[6] == uint64_t(u128(sq) >> 64));
      CHECK(got.gpr[7] == uint64_t(sr));
      CHECK(got.gpr[5] == uint64_t(u128(sr) >> 64));
      CHECK(got.gpr[8] == uint64_t(uq));
      CHECK(got.gpr[9] == uint64_t(uq >> 64));
      CHECK(got.gpr[10] == uint64_t(ur));
      CHECK(got.gpr[11] == uint64_t(ur >> 64));
    }
  }
}

TEST_CASE("released code is freed and compiling continues") {
  auto& jit = jit_for(translate::MemoryStrategy::Direct);
  std::mt19937_64 rng(7);
  auto block = ir::testing::random_block(rng, no_helper_options());
  size_t before = jit.live_units();
  auto a = jit.compile(block, engine::Tier::Fast);
  REQUIRE(a.has_value());
  CHECK(jit.live_units() == before + 1);
  CHECK(a->stats.code_bytes > 0);
  CHECK(a->stats.ir_instructions > 0);
  REQUIRE(jit.release(*a).has_value());
  CHECK(jit.live_units() == before);
  CHECK_FALSE(jit.release(*a).has_value());
  auto b = jit.compile(block, engine::Tier::Optimized);
  REQUIRE(b.has_value());
  CHECK(jit.release(*b).has_value());
}

TEST_CASE("the codegen pipelines leave out the passes that have nothing to do in generated code") {
  // The names in jit.cpp's list must still be LLVM's: X86 adds 41 of them at
  // CodeGenOptLevel::None and 50 at Default (LLVM 19), and an Optimized unit
  // without vector operations (what a compile with no module counts as)
  // also leaves out the machine scheduler. A renamed pass would stay in the
  // pipeline and only cost time, so this is what notices.
  auto& jit = jit_for(translate::MemoryStrategy::Direct);
  auto fast = jit.codegen_passes_left_out(engine::Tier::Fast);
  auto optimized = jit.codegen_passes_left_out(engine::Tier::Optimized);
  REQUIRE(fast.has_value());
  REQUIRE(optimized.has_value());
  CHECK(*fast >= 40);
  CHECK(*optimized >= 51);
}

TEST_CASE("a chained exit tail-calls the successor stored in its slot") {
  auto a = ir::parse(R"(block 0x1000 len 4 {
  insn 0x1000
  %0:i64 = get_reg rax
  %1:i64 = const 0x5
  %2:i64 = add %0, %1
  set_reg rax, %2
  jump 0x2000
})");
  auto b = ir::parse(R"(block 0x2000 len 4 {
  insn 0x2000
  %0:i64 = get_reg rax
  %1:i64 = const 0x3
  %2:i64 = mul %0, %1
  set_reg rax, %2
  exit 0x3000
})");
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  engine::JitOptions o;
  o.chain_exits = true;
  auto jit = engine::JITCompiler::create(o);
  REQUIRE(jit.has_value());
  auto ca = (*jit)->compile(*a, engine::Tier::Fast);
  auto cb = (*jit)->compile(*b, engine::Tier::Optimized);
  REQUIRE(ca.has_value());
  REQUIRE(cb.has_value());
  REQUIRE(ca->chain_slots.size() == 1);
  CHECK(ca->chain_targets[0] == core::GuestAddr(0x2000));
  FlatMemory m(0x10000, 0x1000);
  auto ctx = m.direct_context();
  core::X86State s{};
  s.gpr[0] = 1;
  auto e1 = engine::execute(*ca, s, ctx);  // unchained: returns at 0x2000
  CHECK(e1.kind == ir::TermKind::Jump);
  CHECK(s.rip == 0x2000);
  CHECK(s.gpr[0] == 6);
  *ca->chain_slots[0] = reinterpret_cast<void*>(cb->entry);
  s.gpr[0] = 1;
  auto e2 = engine::execute(*ca, s, ctx);  // chained: runs b too
  CHECK(e2.kind == ir::TermKind::Exit);
  CHECK(s.rip == 0x3000);
  CHECK(s.gpr[0] == 18);
}

TEST_CASE("preserve_none Optimized units chain with Fast ones and leave the C caller's registers alone") {
  // Block a sets every guest register but rsp (so its code uses every host
  // register it can) and jumps to b. With JitOptions::preserve_none only
  // Optimized units have the convention, and a chain slot holds b's entry
  // tagged when it has it: Optimized code tail-calls a tagged entry and
  // hands an untagged one back to run_unit, Fast code hands back either.
  // Entered from C++, every pairing must give the expected registers, and
  // this function's values kept across the call (in callee-saved
  // registers) must survive.
  std::string text = "block 0x1000 len 4 {\n  insn 0x1000\n";
  for (int i = 0, v = 0; i < 16; ++i, v += 3) {
    if (i == 4) {  // rsp
      v -= 3;
      continue;
    }
    text += fmt::format("  %{0}:i64 = get_reg {1}\n  %{2}:i64 = const 0x{3:x}\n  %{4}:i64 = mul %{0}, %{2}\n  set_reg {1}, %{4}\n",
                        v, core::reg_name(static_cast<core::X86Reg>(i)), v + 1, 2 * i + 3, v + 2);
  }
  text += "  jump 0x2000\n}\n";
  auto a = ir::parse(text);
  REQUIRE_MESSAGE(a.has_value(), (a ? "" : a.error().to_string()));
  auto b = ir::parse(R"(block 0x2000 len 4 {
  insn 0x2000
  %0:i64 = get_reg rax
  %1:i64 = get_reg r15
  %2:i64 = add %0, %1
  set_reg rax, %2
  exit 0x3000
})");
  REQUIRE(b.has_value());
  engine::JitOptions o;
  o.chain_exits = true;
  o.preserve_none = true;
  auto jit = engine::JITCompiler::create(o);
  REQUIRE(jit.has_value());
  using translate::UnitCall;
  for (engine::Tier ta : {engine::Tier::Fast, engine::Tier::Optimized})
    for (engine::Tier tb : {engine::Tier::Fast, engine::Tier::Optimized}) {
      CAPTURE(static_cast<int>(ta));
      CAPTURE(static_cast<int>(tb));
      auto ca = (*jit)->compile(*a, ta);
      auto cb = (*jit)->compile(*b, tb);
      REQUIRE_MESSAGE(ca.has_value(), (ca ? "" : ca.error().to_string()));
      REQUIRE_MESSAGE(cb.has_value(), (cb ? "" : cb.error().to_string()));
      CHECK(ca->call == (ta == engine::Tier::Optimized ? UnitCall::PreserveNone : UnitCall::C));
      CHECK(cb->call == (tb == engine::Tier::Optimized ? UnitCall::PreserveNone : UnitCall::C));
      REQUIRE(ca->chain_slots.size() == 1);
      uint64_t bits = reinterpret_cast<uint64_t>(cb->entry);
      *ca->chain_slots[0] =
          reinterpret_cast<void*>(cb->call == UnitCall::PreserveNone ? bits | translate::kPreserveNoneTag : bits);
      FlatMemory m(0x10000, 0x1000);
      auto ctx = m.direct_context();
      core::X86State s{};
      for (int i = 0; i < 16; ++i) s.gpr[i] = 100 + i;
      core::X86State want = s;
      for (int i = 0; i < 16; ++i)
        if (i != 4) want.gpr[i] = (100 + i) * uint64_t(2 * i + 3);
      want.gpr[0] += want.gpr[15];
      // Values the compiler keeps in callee-saved registers across the call.
      volatile uint64_t seed = 0x1234567;
      uint64_t k0 = seed * 3, k1 = seed * 5, k2 = seed * 7, k3 = seed * 11, k4 = seed * 13, k5 = seed * 17;
      auto e = engine::execute(*ca, s, ctx);
      CHECK(e.kind == ir::TermKind::Exit);
      CHECK(s.rip == 0x3000);
      for (int i = 0; i < 16; ++i) {
        CAPTURE(i);
        CHECK(s.gpr[i] == want.gpr[i]);
      }
      CHECK(k0 + k1 + k2 + k3 + k4 + k5 == seed * (3 + 5 + 7 + 11 + 13 + 17));
      CHECK(k0 * k1 * k2 * k3 * k4 * k5 == seed * 3 * seed * 5 * seed * 7 * seed * 11 * seed * 13 * seed * 17);
      (void)(*jit)->release(*ca);
      (void)(*jit)->release(*cb);
    }
}

TEST_CASE("a region keeps jumps between its blocks inside one function") {
  auto blocks = ir::parse_blocks(R"(block 0x1000 len 4 {
  insn 0x1000
  %0:i64 = get_reg rcx
  %1:i64 = const 0x1
  %2:i64 = sub %0, %1
  set_reg rcx, %2
  %3:i64 = get_reg rax
  %4:i64 = add %3, %0
  set_reg rax, %4
  %5:i64 = const 0x0
  %6:i1 = cmp.ne %2, %5
  branch %6, 0x1000, 0x1010
}
block 0x1010 len 1 {
  insn 0x1010
  %0:i64 = get_reg rax
  %1:i64 = const 0x2
  %2:i64 = shl %0, %1
  set_reg rax, %2
  exit 0x2000
})");
  REQUIRE_MESSAGE(blocks.has_value(), (blocks ? "" : blocks.error().to_string()));
  auto& jit = jit_for(translate::MemoryStrategy::Direct);
  for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized}) {
    auto c = jit.compile_region(*blocks, tier);
    REQUIRE(c.has_value());
    FlatMemory m(0x10000, 0x1000);
    auto ctx = m.direct_context();
    core::X86State s{};
    s.gpr[1] = 10;
    auto e = engine::execute(*c, s, ctx);
    CHECK(e.kind == ir::TermKind::Exit);
    CHECK(s.rip == 0x2000);
    CHECK(s.gpr[0] == 55 * 4);
    CHECK(s.gpr[1] == 0);
  }
}

TEST_CASE("a region's indirect dispatch compares with the targets the guest took; others leave the region") {
  // Two calls, each of its own function: a return compares with the return
  // site of the call whose callee reaches it only. The indirect jump at
  // 0x4000 was seen going to 0x5000 only. rbx and rcx record which blocks
  // ran; every exit from the region tells where it left.
  auto blocks = ir::parse_blocks(R"(block 0x1000 len 5 {
  call 0x2000, ret 0x1005
}
block 0x1005 len 1 {
  %0:i64 = get_reg rbx
  %1:i64 = const 0x1
  %2:i64 = add %0, %1
  set_reg rbx, %2
  exit 0x1006
}
block 0x1100 len 5 {
  call 0x3000, ret 0x1105
}
block 0x1105 len 1 {
  %0:i64 = get_reg rbx
  %1:i64 = const 0x10
  %2:i64 = add %0, %1
  set_reg rbx, %2
  exit 0x1106
}
block 0x2000 len 1 {
  %0:i64 = get_reg rsp
  %1:i64 = load %0
  %2:i64 = const 0x8
  %3:i64 = add %0, %2
  set_reg rsp, %3
  ret %1
}
block 0x3000 len 1 {
  %0:i64 = get_reg rsp
  %1:i64 = load %0
  %2:i64 = const 0x8
  %3:i64 = add %0, %2
  set_reg rsp, %3
  ret %1
}
block 0x4000 len 2 {
  %0:i64 = get_reg rax
  indirect_jump %0
}
block 0x5000 len 1 {
  %0:i64 = const 0x5
  set_reg rcx, %0
  exit 0x5001
}
block 0x6000 len 1 {
  %0:i64 = const 0x6
  set_reg rcx, %0
  exit 0x6001
})");
  REQUIRE_MESSAGE(blocks.has_value(), (blocks ? "" : blocks.error().to_string()));
  auto& jit = jit_for(translate::MemoryStrategy::Direct);
  struct Case {
    uint64_t entry, ret_addr, rax;
    bool targets_known;
    ir::TermKind kind;
    uint64_t rip, rbx, rcx;
  };
  const Case cases[] = {
      // 0x2000's return to its own call's site stays inside; to the other
      // call's site it leaves (before, it compared with every return site).
      {0x2000, 0x1005, 0, true, ir::TermKind::Exit, 0x1006, 1, 0},
      {0x2000, 0x1105, 0, true, ir::TermKind::Ret, 0x1105, 0, 0},
      {0x3000, 0x1105, 0, true, ir::TermKind::Exit, 0x1106, 16, 0},
      {0x3000, 0x1005, 0, true, ir::TermKind::Ret, 0x1005, 0, 0},
      // The jump's known target stays inside, another member leaves...
      {0x4000, 0, 0x5000, true, ir::TermKind::Exit, 0x5001, 0, 5},
      {0x4000, 0, 0x6000, true, ir::TermKind::IndirectJump, 0x6000, 0, 0},
      // ...unless its targets are not known: then every member is compared.
      {0x4000, 0, 0x6000, false, ir::TermKind::Exit, 0x6001, 0, 6},
  };
  for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized})
    for (const Case& k : cases) {
      CAPTURE(engine::tier_name(tier));
      CAPTURE(k.entry);
      CAPTURE(k.ret_addr);
      CAPTURE(k.rax);
      engine::UnitOptions unit;
      unit.all_entries = true;
      unit.indirect_members = true;
      unit.indirect_targets.resize(blocks->size());
      if (k.targets_known) unit.indirect_targets[6] = {0x5000};
      auto c = jit.compile_region(*blocks, tier, unit);
      REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().to_string()));
      FlatMemory m(0x10000, 0x1000);
      uint64_t ret = k.ret_addr;
      std::array<uint8_t, 8> bytes{};
      std::memcpy(bytes.data(), &ret, sizeof ret);
      REQUIRE(m.write(core::GuestAddr(0x10800), bytes));
      auto ctx = m.direct_context();
      core::X86State s{};
      s.rip = k.entry;
      s.gpr[4] = 0x10800;  // rsp
      s.gpr[0] = k.rax;
      auto e = engine::execute(*c, s, ctx);
      CHECK(e.kind == k.kind);
      CHECK(s.rip == k.rip);
      CHECK(s.gpr[3] == k.rbx);
      CHECK(s.gpr[1] == k.rcx);
      (void)jit.release(*c);
    }
}

TEST_CASE("a region entered at a member that is not one of its entries returns at once, the state untouched") {
  auto blocks = ir::parse_blocks(R"(block 0x1000 len 4 {
  %0:i64 = get_reg rax
  %1:i64 = const 0x1
  %2:i64 = add %0, %1
  set_reg rax, %2
  jump 0x1010
}
block 0x1010 len 4 {
  %0:i64 = get_reg rax
  %1:i64 = const 0x1
  %2:i64 = shl %0, %1
  set_reg rax, %2
  exit 0x2000
})");
  REQUIRE_MESSAGE(blocks.has_value(), (blocks ? "" : blocks.error().to_string()));
  auto& jit = jit_for(translate::MemoryStrategy::Direct);
  for (auto tier : {engine::Tier::Fast, engine::Tier::Optimized})
    for (bool listed : {true, false}) {
      CAPTURE(engine::tier_name(tier));
      CAPTURE(listed);
      engine::UnitOptions unit;
      unit.all_entries = true;
      if (listed) unit.entry_pcs = {0x1000};  // 0x1010 is reached from 0x1000 only
      auto c = jit.compile_region(*blocks, tier, unit);
      REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().to_string()));
      FlatMemory m(0x10000, 0x1000);
      auto ctx = m.direct_context();
      core::X86State s{};
      s.gpr[0] = 20;
      s.rip = 0x1000;
      auto e = engine::execute(*c, s, ctx);
      CHECK(e.kind == ir::TermKind::Exit);
      CHECK(s.rip == 0x2000);
      CHECK(s.gpr[0] == 42);
      core::X86State t{};
      t.gpr[0] = 20;
      t.rip = 0x1010;
      core::X86State before = t;
      e = engine::execute(*c, t, ctx);
      if (listed) {
        // Not an entry: back to the owner with exit kind Jump at the same pc,
        // which runs that block's own code.
        CHECK(e.kind == ir::TermKind::Jump);
        CHECK(testing::state_diff(before, t).empty());
      } else {
        CHECK(e.kind == ir::TermKind::Exit);
        CHECK(t.gpr[0] == 40);
      }
      (void)jit.release(*c);
    }
}

TEST_CASE("dump gives each stage") {
  std::mt19937_64 rng(11);
  auto block = ir::testing::random_block(rng, no_helper_options());
  auto& jit = jit_for(translate::MemoryStrategy::Direct);
  auto lowered = jit.dump(block, engine::Tier::Fast, engine::Stage::Lowered);
  auto opt = jit.dump(block, engine::Tier::Optimized, engine::Stage::Optimized);
  auto as = jit.dump(block, engine::Tier::Optimized, engine::Stage::Assembly);
  REQUIRE(lowered.has_value());
  REQUIRE(opt.has_value());
  REQUIRE(as.has_value());
  CHECK(lowered->find("define i64 @vm_401000(ptr noalias") != std::string::npos);
  CHECK(as->find("vm_401000:") != std::string::npos);
}
