// Where the lean pipeline puts values in Optimized region code: pure
// computations that only exits, or only blocks after a loop, need must be
// computed there, not on the hot path. Each test reads the optimised IR of a
// small region (JITCompiler::dump_region) for where the value ended up, then
// runs the compiled code against hand-worked results.
#include <doctest/doctest.h>

#include <array>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lowering_harness.hpp"
#include "vm/engine/jit.hpp"
#include "vm/ir/text.hpp"

using namespace vm;
using vm::testing::FlatMemory;

namespace {

engine::JITCompiler& direct_jit() {
  static std::unique_ptr<engine::JITCompiler> jit = [] {
    engine::JitOptions o;
    o.memory = translate::MemoryStrategy::Direct;
    auto j = engine::JITCompiler::create(o);
    REQUIRE_MESSAGE(j.has_value(), (j ? "" : j.error().to_string()));
    return std::move(*j);
  }();
  return *jit;
}

// The basic blocks of a dumped LLVM function, by label: their instruction lines.
std::map<std::string, std::string> basic_blocks(const std::string& ir_text) {
  std::map<std::string, std::string> body;
  std::string cur;
  std::istringstream in(ir_text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != ' ' && line.find(':') != std::string::npos && line.find("define") == std::string::npos)
      cur = line.substr(0, line.find(':'));
    else if (!cur.empty())
      body[cur] += line + "\n";
  }
  return body;
}

// The labels of the blocks whose instructions include a multiply.
std::vector<std::string> blocks_with_mul(const std::map<std::string, std::string>& body) {
  std::vector<std::string> names;
  for (const auto& [name, text] : body)
    if (text.find(" = mul ") != std::string::npos) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("Optimized code computes a value used only where the region leaves a loop on that exit, not in the loop") {
  // rdx = rax * rax each iteration, read by nobody inside the loop: the
  // exit at the back edge (taken when an exit is requested) stores it, and
  // the block after the loop adds 7 (the shape of the flags a loop leaves
  // behind, which several exits store). The product belongs on those two
  // ways out, a copy on each, not in the loop's blocks.
  auto blocks = ir::parse_blocks(R"(block 0x1000 len 4 {
  insn 0x1000
  %0:i64 = get_reg rcx
  %1:i64 = const 0x1
  %2:i64 = sub %0, %1
  set_reg rcx, %2
  %4:i64 = get_reg rax
  %5:i64 = add %4, %0
  set_reg rax, %5
  %3:i64 = mul %5, %5
  set_reg rdx, %3
  %6:i64 = const 0x0
  %7:i1 = cmp.ne %2, %6
  branch %7, 0x1000, 0x1010
}
block 0x1010 len 1 {
  insn 0x1010
  %0:i64 = get_reg rax
  %1:i64 = const 0x2
  %2:i64 = shl %0, %1
  set_reg rax, %2
  %3:i64 = get_reg rdx
  %4:i64 = const 0x7
  %5:i64 = add %3, %4
  set_reg rdx, %5
  exit 0x2000
})");
  REQUIRE_MESSAGE(blocks.has_value(), (blocks ? "" : blocks.error().to_string()));
  auto& jit = direct_jit();
  auto ir_text = jit.dump_region(*blocks, engine::Tier::Optimized, engine::Stage::Optimized);
  REQUIRE(ir_text.has_value());
  // The loop is the header and every block that branches back to it.
  std::map<std::string, std::string> body = basic_blocks(*ir_text);
  REQUIRE(body.count("block_1000") == 1);
  int loop_blocks = 0;
  for (const auto& [name, text] : body) {
    bool in_loop = name == "block_1000" || text.find("label %block_1000") != std::string::npos;
    if (!in_loop) continue;
    ++loop_blocks;
    CAPTURE(name);
    CHECK(text.find(" = mul ") == std::string::npos);
  }
  CHECK(loop_blocks >= 2);  // the header and the back edge's block
  // And the product still reaches the state on both ways out.
  auto c = jit.compile_region(*blocks, engine::Tier::Optimized);
  REQUIRE(c.has_value());
  FlatMemory m(0x10000, 0x1000);
  auto ctx = m.direct_context();
  core::X86State s{};
  s.gpr[1] = 10;
  auto e = engine::execute(*c, s, ctx);
  CHECK(e.kind == ir::TermKind::Exit);
  CHECK(s.gpr[2] == 55 * 55 + 7);
  CHECK(s.gpr[0] == 55 * 4);
  s = core::X86State{};
  s.gpr[1] = 10;
  ctx.exit_request = 1;  // leave at the first back edge
  (void)engine::execute(*c, s, ctx);
  CHECK(s.rip == 0x1000);
  CHECK(s.gpr[1] == 9);
  CHECK(s.gpr[2] == 100);
  CHECK(s.gpr[0] == 10);
  (void)jit.release(*c);
}

TEST_CASE("Optimized code sinks a value out of a loop with two ways in, which is no natural loop") {
  // The loop 0x1010 <-> 0x1020 is entered at 0x1010 or at 0x1020, as a
  // region's loops are through the entry switch on rip: LoopInfo sees no
  // loop here, CycleInfo sees one. rdx = rax * rax in 0x1010 is read only
  // outside the loop: by 0x1030 after it and by the exit-request exit of
  // the back edge 0x1010 -> 0x1020 (0x1020 comes first in the region, so
  // that edge is the back edge; 0x1020 sets rdx again). Two places with no
  // common dominator outside the loop, so LLVM's Sink leaves it; the
  // product belongs on those two ways out, not in the loop's blocks.
  auto blocks = ir::parse_blocks(R"(block 0x1000 len 1 {
  insn 0x1000
  %0:i64 = get_reg rcx
  %1:i64 = const 0x1
  %2:i64 = and %0, %1
  %3:i64 = const 0x0
  %4:i1 = cmp.ne %2, %3
  branch %4, 0x1020, 0x1010
}
block 0x1020 len 1 {
  insn 0x1020
  %0:i64 = get_reg rax
  %1:i64 = const 0x1
  %2:i64 = add %0, %1
  set_reg rax, %2
  set_reg rdx, %2
  jump 0x1010
}
block 0x1010 len 1 {
  insn 0x1010
  %0:i64 = get_reg rcx
  %1:i64 = const 0x1
  %2:i64 = sub %0, %1
  set_reg rcx, %2
  %4:i64 = get_reg rax
  %5:i64 = add %4, %2
  set_reg rax, %5
  %3:i64 = mul %5, %5
  set_reg rdx, %3
  %6:i64 = const 0x0
  %7:i1 = cmp.ne %2, %6
  branch %7, 0x1020, 0x1030
}
block 0x1030 len 1 {
  insn 0x1030
  %3:i64 = get_reg rdx
  %4:i64 = const 0x7
  %5:i64 = add %3, %4
  set_reg rdx, %5
  exit 0x2000
})");
  REQUIRE_MESSAGE(blocks.has_value(), (blocks ? "" : blocks.error().to_string()));
  auto& jit = direct_jit();
  auto ir_text = jit.dump_region(*blocks, engine::Tier::Optimized, engine::Stage::Optimized);
  REQUIRE(ir_text.has_value());
  std::map<std::string, std::string> body = basic_blocks(*ir_text);
  REQUIRE(body.count("block_1010") == 1);
  REQUIRE(body.count("block_1020") == 1);
  std::vector<std::string> with_mul = blocks_with_mul(body);
  for (const std::string& name : with_mul) {
    CAPTURE(name);
    CHECK(name != "block_1010");
    CHECK(name != "block_1020");
  }
  CHECK(with_mul.size() == 2);  // after the loop, and on the exit-request exit
  auto c = jit.compile_region(*blocks, engine::Tier::Optimized);
  REQUIRE(c.has_value());
  FlatMemory m(0x10000, 0x1000);
  auto ctx = m.direct_context();
  // rcx = 4 enters at 0x1010, rcx = 5 at 0x1020 (worked out by hand).
  for (auto [rcx, rax, rdx] : {std::array<uint64_t, 3>{4, 9, 81 + 7}, std::array<uint64_t, 3>{5, 15, 225 + 7}}) {
    CAPTURE(rcx);
    core::X86State s{};
    s.gpr[1] = rcx;
    auto e = engine::execute(*c, s, ctx);
    CHECK(e.kind == ir::TermKind::Exit);
    CHECK(s.rip == 0x2000);
    CHECK(s.gpr[0] == rax);
    CHECK(s.gpr[1] == 0);
    CHECK(s.gpr[2] == rdx);
  }
  // Leaving at the first back edge stores the first round's product.
  core::X86State s{};
  s.gpr[1] = 4;
  ctx.exit_request = 1;
  (void)engine::execute(*c, s, ctx);
  CHECK(s.rip == 0x1020);
  CHECK(s.gpr[0] == 3);
  CHECK(s.gpr[1] == 3);
  CHECK(s.gpr[2] == 9);
  (void)jit.release(*c);
}

TEST_CASE("Optimized code computes a value only traps' exits store on those exits, not before the checks") {
  // rdx = rax * rax, overwritten before the block ends: only the two
  // trap_if exits (rcx == 0, rsi == 0) store the product. LLVM's Sink moves
  // a value into one successor only; SinkIntoColdPathsPass puts a copy on
  // each exit, so the straight path computes nothing.
  auto block = ir::parse(R"(block 0x1000 len 3 {
  insn 0x1000
  %0:i64 = get_reg rax
  %1:i64 = mul %0, %0
  set_reg rdx, %1
  insn 0x1001
  %2:i64 = get_reg rcx
  %3:i64 = const 0x0
  %4:i1 = cmp.eq %2, %3
  trap_if %4, general_protection
  insn 0x1002
  %6:i64 = get_reg rsi
  %7:i1 = cmp.eq %6, %3
  trap_if %7, general_protection
  %5:i64 = const 0x5
  set_reg rdx, %5
  exit 0x2000
})");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  auto& jit = direct_jit();
  auto ir_text = jit.dump(*block, engine::Tier::Optimized, engine::Stage::Optimized);
  REQUIRE(ir_text.has_value());
  std::map<std::string, std::string> body = basic_blocks(*ir_text);
  std::vector<std::string> with_mul = blocks_with_mul(body);
  for (const std::string& name : with_mul) {
    CAPTURE(name);
    CHECK(name.rfind("trap_if", 0) == 0);
  }
  CHECK(with_mul.size() == 2);
  auto c = jit.compile(*block, engine::Tier::Optimized);
  REQUIRE(c.has_value());
  FlatMemory m(0x10000, 0x1000);
  auto ctx = m.direct_context();
  for (int which = 0; which < 3; ++which) {
    CAPTURE(which);
    core::X86State s{};
    s.gpr[0] = 9;
    s.gpr[1] = which == 0 ? 0 : 1;  // rcx
    s.gpr[6] = which == 1 ? 0 : 1;  // rsi
    auto e = engine::execute(*c, s, ctx);
    if (which < 2) {
      CHECK(e.kind == ir::TermKind::Trap);
      CHECK(s.gpr[2] == 81);
      CHECK(s.rip == 0x1001 + static_cast<uint64_t>(which));
    } else {
      CHECK(e.kind == ir::TermKind::Exit);
      CHECK(s.gpr[2] == 5);
    }
  }
  (void)jit.release(*c);
}
