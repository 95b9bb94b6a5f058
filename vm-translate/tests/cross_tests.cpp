// Proof by execution for the cross translator: a corpus of random blocks is
// translated into one AArch64 (resp. RISC-V) object, linked with
// tests/cross_driver.c by the Debian cross compiler, run once under
// qemu-user, and every block's final state, memory and exit are compared
// with the vm-ir interpreter's from the same initial state and memory. The
// corpus: 240 random vm-ir blocks (every op, including SSE-like vector and
// float ops) and 200 blocks lifted from x86 code by the frontend.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "../../vm-engine/benches/lifted_corpus.hpp"
#include "lowering_harness.hpp"
#include "random_blocks.hpp"
#include "vm/ir/text.hpp"
#include "vm/translate/cross.hpp"

using namespace vm;
using vm::testing::FlatMemory;

namespace {

struct Case {
  uint32_t block = 0;
  core::X86State state;
  std::vector<uint8_t> window;
  // expected
  core::X86State want_state;
  std::vector<uint8_t> want_window;
  translate::ExitInfo want_exit;
  uint64_t want_fault_addr = 0;
};

constexpr uint64_t kWindowBase = 0x10000, kWindowSize = 0x1000;

void expect(Case& c, const ir::IRBlock& block, FlatMemory& m) {
  c.want_state = c.state;
  ir::HelperTable none;
  ir::Interpreter interp(m, none);
  auto r = interp.run(block, c.want_state);
  c.want_exit = testing::expected_exit(r);
  if (r.kind == ir::TermKind::Trap && r.trap == ir::TrapReason::MemoryFault && r.fault_addr) c.want_fault_addr = r.fault_addr->value();
  c.want_window = m.window();
}

int run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  if (rc != 0) MESSAGE("command failed (" << rc << "): " << cmd);
  return rc;
}

// Corpus: random blocks by kind of content (memory, flags/arithmetic,
// vector/float), plus the interpreter's results.
std::vector<ir::IRBlock> make_corpus(uint64_t seed, uint32_t n, uint32_t n_lifted, std::vector<Case>& cases,
                                     bool straddle) {
  std::mt19937_64 rng(seed);
  std::vector<ir::IRBlock> blocks;
  for (uint32_t i = 0; i < n; ++i) {
    ir::testing::RandomBlockOptions o;
    o.helpers = false;
    o.size = static_cast<uint32_t>(4 + rng() % 48);
    o.conditional_exits = i % 4 == 3;
    if (straddle) {  // accesses run past the end of the window, so some fault (softmmu only)
      o.mem_base = kWindowBase + kWindowSize - 0x100;
      o.mem_size = 0x200;
    }
    switch (i % 3) {
      case 0: break;  // everything
      case 1:  // integer and flags only
        o.regs = {core::X86Reg::Rax, core::X86Reg::Rcx, core::X86Reg::Rdx, core::X86Reg::Rbx, core::X86Reg::Cf,
                  core::X86Reg::Zf, core::X86Reg::Sf, core::X86Reg::Of, core::X86Reg::Pf, core::X86Reg::Af};
        break;
      case 2:  // SSE-like: xmm registers and mxcsr
        o.regs = {core::X86Reg::Xmm0, core::X86Reg::Xmm1, core::X86Reg::Xmm2, core::X86Reg::Xmm3, core::X86Reg::Mxcsr,
                  core::X86Reg::Rax};
        break;
    }
    blocks.push_back(ir::testing::random_block(rng, o));
    Case c;
    c.block = i;
    c.state = testing::random_state(rng);
    FlatMemory m(kWindowBase, kWindowSize);
    m.fill(rng);
    c.window = m.window();
    expect(c, blocks.back(), m);
    cases.push_back(std::move(c));
  }
  // Blocks lifted from x86 code by the frontend (integer, flags, memory via
  // r15 = the window base, divisions that may trap, string and locked ops).
  corpus::X86TextGen gen(seed);
  for (uint32_t i = 0; i < n_lifted; ++i) {
    // Every other sequence adds string ops (rep, either direction), locked ops, jcc and loop.
    auto code = translate::assemble_x86(gen.sequence(static_cast<uint32_t>(1 + rng() % 30), true, true, (i % 2) == 1, false));
    REQUIRE_MESSAGE(code.has_value(), (code ? "" : code.error().to_string()));
    auto mem = corpus::make_memory(*code, rng);
    REQUIRE(mem.has_value());
    auto block = translate::decode_block(*mem, core::GuestAddr(corpus::kCodeBase));
    REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
    blocks.push_back(std::move(*block));
    Case c;
    c.block = static_cast<uint32_t>(blocks.size() - 1);
    c.state = testing::random_state(rng);
    c.state.gpr[15] = kWindowBase;
    c.state.rip = corpus::kCodeBase;
    c.state.df = 0;
    // rsp points into the window so that push, pop, call and ret in the
    // corpus blocks reach mapped memory.
    c.state.gpr[4] = kWindowBase + 0x800;
    FlatMemory m(kWindowBase, kWindowSize);
    m.fill(rng);
    c.window = m.window();
    expect(c, blocks.back(), m);
    cases.push_back(std::move(c));
  }
  return blocks;
}

void cross_check(translate::Target target, const char* gcc, const char* qemu, const char* sysroot, uint64_t seed,
                 translate::MemoryStrategy strategy, uint32_t n_random, uint32_t n_lifted) {
  std::vector<Case> cases;
  bool softmmu = strategy == translate::MemoryStrategy::SoftMmu;
  auto blocks = make_corpus(seed, n_random, n_lifted, cases, softmmu);
  translate::CrossOptions xo;
  xo.memory = strategy;
  auto xt = translate::CrossTranslator::create(target, xo);
  REQUIRE_MESSAGE(xt.has_value(), (xt ? "" : xt.error().to_string()));
  auto obj = (*xt)->translate(blocks, translate::EmitKind::Object);
  REQUIRE_MESSAGE(obj.has_value(), (obj ? "" : obj.error().to_string()));

  auto dir = std::filesystem::temp_directory_path() /
             fmt::format("vm_cross_{}_{}_{}", translate::target_name(target), translate::memory_strategy_name(strategy),
                         static_cast<long>(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "blocks.o", std::ios::binary).write(obj->data(), static_cast<std::streamsize>(obj->size()));
  {
    std::ofstream in(dir / "in.bin", std::ios::binary);
    struct {
      uint32_t magic, cases;
      uint64_t state_size, window_base, window_size, region_mask, strategy;
    } h{0x564d4352u, static_cast<uint32_t>(cases.size()), sizeof(core::X86State), kWindowBase, kWindowSize,
        FlatMemory::kMask, softmmu ? 1u : 0u};
    in.write(reinterpret_cast<const char*>(&h), sizeof h);
    for (const auto& c : cases) {
      uint32_t idx[2] = {c.block, 0};
      in.write(reinterpret_cast<const char*>(idx), sizeof idx);
      in.write(reinterpret_cast<const char*>(&c.state), sizeof c.state);
      in.write(reinterpret_cast<const char*>(c.window.data()), static_cast<std::streamsize>(c.window.size()));
    }
  }
  std::string prog = (dir / "driver").string();
  REQUIRE(run(fmt::format("{} -O1 -o {} {} {} -lm -latomic", gcc, prog, VM_CROSS_DRIVER, (dir / "blocks.o").string())) == 0);
  REQUIRE(run(fmt::format("{} -L {} {} {} {}", qemu, sysroot, prog, (dir / "in.bin").string(), (dir / "out.bin").string())) == 0);

  std::ifstream out(dir / "out.bin", std::ios::binary);
  int failures = 0, faults = 0, skipped = 0;
  for (const auto& c : cases) {
    uint64_t code = 0, fault_addr = 0;
    core::X86State got;
    std::vector<uint8_t> window(kWindowSize);
    out.read(reinterpret_cast<char*>(&code), sizeof code);
    out.read(reinterpret_cast<char*>(&fault_addr), sizeof fault_addr);
    out.read(reinterpret_cast<char*>(&got), sizeof got);
    out.read(reinterpret_cast<char*>(window.data()), static_cast<std::streamsize>(window.size()));
    REQUIRE(out.good());
    bool interp_faulted = c.want_exit.kind == ir::TermKind::Trap && c.want_exit.trap == ir::TrapReason::MemoryFault;
    if (!softmmu && interp_faulted) {
      // Direct mode cannot detect a fault by design (lowering.hpp); the
      // softmmu runs compare faults.
      ++skipped;
      continue;
    }
    std::string diff = testing::state_diff(c.want_state, got) + testing::memory_diff(c.want_window, window, kWindowBase);
    auto exit = translate::decode_exit(code);
    if (exit != c.want_exit) diff += fmt::format("  exit: want {} got {}\n", int(c.want_exit.kind), int(exit.kind));
    if (c.want_fault_addr != 0 && fault_addr != c.want_fault_addr)
      diff += fmt::format("  fault addr: want {:#x} got {:#x}\n", c.want_fault_addr, fault_addr);
    if (c.want_fault_addr != 0) ++faults;
    if (!diff.empty() && failures++ < 3)
      FAIL_CHECK(fmt::format("{} block {}:\n{}{}", translate::target_name(target), c.block, diff, ir::print(blocks[c.block])));
  }
  CHECK(failures == 0);
  CHECK(skipped * 20 < static_cast<int>(cases.size()));  // at most 5% of the corpus is left out
  if (skipped) MESSAGE(skipped << " cases fault in the interpreter and are not comparable in direct mode");
  if (softmmu) CHECK(faults > 0);  // the straddling corpus must exercise precise faults
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("cross translation emits assembly text and LLVM IR for both targets") {
  std::mt19937_64 rng(3);
  auto block = ir::testing::random_block(rng);
  for (auto t : {translate::Target::AArch64, translate::Target::RiscV64}) {
    auto xt = translate::CrossTranslator::create(t);
    REQUIRE(xt.has_value());
    auto as = (*xt)->translate(block, translate::EmitKind::Assembly);
    REQUIRE_MESSAGE(as.has_value(), (as ? "" : as.error().to_string()));
    CHECK(as->find("vm_block_0:") != std::string::npos);
    auto ll = (*xt)->translate(block, translate::EmitKind::LlvmIr);
    REQUIRE(ll.has_value());
    CHECK(ll->find((*xt)->triple()) != std::string::npos);
  }
}

TEST_CASE("AArch64 objects run under qemu-aarch64 exactly like the interpreter (440 blocks, direct)") {
  cross_check(translate::Target::AArch64, "aarch64-linux-gnu-gcc", "qemu-aarch64", "/usr/aarch64-linux-gnu",
              ir::testing::test_seed(0xa64), translate::MemoryStrategy::Direct, 240, 200);
}

TEST_CASE("RISC-V objects run under qemu-riscv64 exactly like the interpreter (440 blocks, direct)") {
  cross_check(translate::Target::RiscV64, "riscv64-linux-gnu-gcc", "qemu-riscv64", "/usr/riscv64-linux-gnu",
              ir::testing::test_seed(0x5c5), translate::MemoryStrategy::Direct, 240, 200);
}

TEST_CASE("AArch64 softmmu objects fault precisely under qemu-aarch64 (150 blocks)") {
  cross_check(translate::Target::AArch64, "aarch64-linux-gnu-gcc", "qemu-aarch64", "/usr/aarch64-linux-gnu",
              ir::testing::test_seed(0xa65), translate::MemoryStrategy::SoftMmu, 150, 0);
}

TEST_CASE("RISC-V softmmu objects fault precisely under qemu-riscv64 (150 blocks)") {
  cross_check(translate::Target::RiscV64, "riscv64-linux-gnu-gcc", "qemu-riscv64", "/usr/riscv64-linux-gnu",
              ir::testing::test_seed(0x5c6), translate::MemoryStrategy::SoftMmu, 150, 0);
}
