// The lowering on its own: every random block lowers to LLVM IR that the
// LLVM verifier accepts, for every target and memory strategy, and the
// generated function has the documented signature. (Execution is checked
// against the interpreter by vm-engine's JIT tests and the cross tests.)
#include <doctest/doctest.h>

#include <random>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

#include "random_blocks.hpp"
#include "vm/ir/text.hpp"
#include "sync_points.hpp"
#include "vm/translate/llvm_lowering.hpp"

using namespace vm;

TEST_CASE("exit codes round-trip") {
  auto e = translate::decode_exit(translate::encode_exit(ir::TermKind::Trap, ir::TrapReason::Interrupt, 0x80));
  CHECK(e.kind == ir::TermKind::Trap);
  CHECK(e.trap == ir::TrapReason::Interrupt);
  CHECK(e.vector == 0x80);
  CHECK(translate::decode_exit(translate::encode_exit(ir::TermKind::Jump)).kind == ir::TermKind::Jump);
}

TEST_CASE("random blocks lower to valid LLVM IR for every target and strategy") {
  std::mt19937_64 rng(ir::testing::test_seed(0x10e7));
  llvm::LLVMContext ctx;
  for (uint32_t i = 0; i < 300 * ir::testing::test_scale(); ++i) {
    ir::testing::RandomBlockOptions bo;
    bo.conditional_exits = (i % 2) == 1;
    auto block = ir::testing::random_block(rng, bo);
    for (auto target : {translate::LoweringTarget::X86_64, translate::LoweringTarget::AArch64, translate::LoweringTarget::RiscV64}) {
      for (auto mem : {translate::MemoryStrategy::Direct, translate::MemoryStrategy::SoftMmu}) {
        llvm::Module module("t", ctx);
        translate::LoweringOptions o;
        o.target = target;
        o.memory = mem;
        o.chain_exits = (i % 2) == 0;
        auto r = translate::lower_block(block, module, o);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().to_string() + "\n" + ir::print(block)));
        CHECK(r->ir_instructions > 0);
      }
    }
  }
}

TEST_CASE("text dump names the function and takes state and memory context") {
  auto block = ir::parse("block 0x1000 len 1 {\n  insn 0x1000\n  jump 0x1001\n}");
  REQUIRE(block.has_value());
  auto text = translate::lower_to_llvm_text(*block);
  REQUIRE(text.has_value());
  CHECK(text->find("define i64 @vm_block(ptr noalias nocapture %state, ptr nocapture %mem)") != std::string::npos);
}

TEST_CASE("direct access with a constant region mask neither loads nor keeps the mask") {
  auto block = ir::parse(
      "block 0x1000 len 4 {\n  insn 0x1000\n  %0:i64 = get_reg rbx\n  %1:i64 = const 0x10\n"
      "  %2:i64 = add %0, %1\n  %3:i64 = load %2\n  set_reg rax, %3\n  jump 0x1004\n}");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  translate::LoweringOptions o;
  o.memory = translate::MemoryStrategy::Direct;
  auto loaded = translate::lower_to_llvm_text(*block, o);
  REQUIRE(loaded.has_value());
  CHECK(loaded->find("%region_mask = load i64") != std::string::npos);
  o.direct_mask = 0xffffffff;  // a 4 GiB space
  auto constant = translate::lower_to_llvm_text(*block, o);
  REQUIRE(constant.has_value());
  CHECK(constant->find("region_mask") == std::string::npos);
  CHECK(constant->find(", 4294967295") != std::string::npos);
  o.direct_mask = 0x12345;  // not 2^k - 1
  auto bad = translate::lower_to_llvm_text(*block, o);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find("direct_mask") != std::string::npos);
}

TEST_CASE("unverifiable blocks are rejected with an error, not lowered") {
  ir::IRBlock bad;  // no terminator
  bad.start_pc = core::GuestAddr(0x1000);
  auto r = translate::lower_to_llvm_text(bad);
  CHECK_FALSE(r.has_value());
}

TEST_CASE("isolate_fast_isel_fallbacks starts a block at each run FastISel rejects") {
  // One straight-line block: a 64x64->128 multiply (i128 run), then an i1
  // select (a run of its own), with FastISel-friendly code around them.
  const char* text = R"(
define i64 @f(i64 %a, i64 %b, i1 %c, i1 %d) {
entry:
  %s = add i64 %a, 1
  %wa = zext i64 %s to i128
  %wb = zext i64 %b to i128
  %p = mul i128 %wa, %wb
  %h = lshr i128 %p, 64
  %hi = trunc i128 %h to i64
  %t = xor i64 %hi, %a
  %sel = select i1 %c, i1 %d, i1 false
  %z = zext i1 %sel to i64
  %r = add i64 %t, %z
  ret i64 %r
}
)";
  llvm::LLVMContext ctx;
  llvm::SMDiagnostic diag;
  auto module = llvm::parseAssemblyString(text, diag, ctx);
  REQUIRE(module != nullptr);
  CHECK(translate::isolate_fast_isel_fallbacks(*module) == 2);
  llvm::Function& f = *module->getFunction("f");
  CHECK_FALSE(llvm::verifyFunction(f, &llvm::errs()));
  REQUIRE(f.size() == 3);
  auto bb = f.begin();
  ++bb;
  CHECK(bb->front().getName() == "wa");  // the i128 run opens the second block
  ++bb;
  CHECK(bb->front().getName() == "sel");  // the select opens the third
  // Blocks that start with a rejected run, or hold none, are left alone.
  CHECK(translate::isolate_fast_isel_fallbacks(*module) == 0);
}

namespace {

size_t count_in(const llvm::Function& f, const std::string& needle) {
  std::string text;
  llvm::raw_string_ostream os(text);
  f.print(os);
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Parses `text`, runs rewrite_fast_isel_rejects over it and checks how many
// instructions it rewrote and that the result still verifies.
std::unique_ptr<llvm::Module> rewritten(const std::string& text, llvm::LLVMContext& ctx, uint32_t expected) {
  llvm::SMDiagnostic diag;
  auto module = llvm::parseAssemblyString(text, diag, ctx);
  REQUIRE(module != nullptr);
  CHECK(translate::rewrite_fast_isel_rejects(*module) == expected);
  CHECK_FALSE(llvm::verifyModule(*module, &llvm::errs()));
  return module;
}

}  // namespace

TEST_CASE("rewrite_fast_isel_rejects turns wide multiplies and i1 selects into what FastISel selects") {
  // The lowering's MulHiU/MulHiS after InstCombine: 128-bit products of
  // extended 64-bit factors, read as the high half, the low half or "the
  // high half is zero"; an i1 select from a logical and.
  const char* text = R"(
target triple = "x86_64-pc-linux-gnu"
define i64 @f(i64 %a, i64 %b, i32 %c, i1 %p, i1 %q) {
entry:
  %wa = zext i64 %a to i128
  %wb = zext i64 %b to i128
  %prod = mul i128 %wa, %wb
  %h = lshr i128 %prod, 64
  %hi = trunc i128 %h to i64
  %lo = trunc i128 %prod to i64
  %fits = icmp ult i128 %prod, 18446744073709551616
  %sq = mul i128 %wb, %wb
  %sqh = lshr i128 %sq, 127
  %sqhi = trunc i128 %sqh to i64
  %sa = sext i64 %a to i128
  %sc = sext i32 %c to i128
  %sprod = mul i128 %sa, %sc
  %sh = lshr i128 %sprod, 70
  %shi = trunc i128 %sh to i16
  %mixed = mul i128 %wa, %sa
  %mh = lshr i128 %mixed, 64
  %mhi = trunc i128 %mh to i64
  %sel = select i1 %p, i1 %q, i1 false
  %x1 = xor i64 %hi, %lo
  %x2 = zext i16 %shi to i64
  %x3 = xor i64 %x1, %x2
  %x4a = xor i64 %x3, %mhi
  %x4 = xor i64 %x4a, %sqhi
  %and = and i1 %sel, %fits
  %x5 = zext i1 %and to i64
  %r = add i64 %x4, %x5
  ret i64 %r
}
)";
  // The select and three multiplies (two unsigned, one signed); `mixed`
  // (an unsigned-only factor times a signed-only one) has no 64-bit x86
  // multiply and stays.
  llvm::LLVMContext ctx;
  auto module = rewritten(text, ctx, 4);
  llvm::Function& f = *module->getFunction("f");
  CHECK(count_in(f, "\"mulq $3\"") == 2);
  CHECK(count_in(f, "\"imulq $3\"") == 1);
  CHECK(count_in(f, "mul i128") == 1);
  CHECK(count_in(f, "select") == 0);
  std::vector<std::string> wide;  // what is left of 128 bits: `mixed`'s chain
  for (const llvm::Instruction& inst : f.getEntryBlock())
    if (inst.getType()->isIntegerTy(128)) wide.push_back(inst.getName().str());
  CHECK(wide == std::vector<std::string>{"wa", "sa", "mixed", "mh"});
}

TEST_CASE("rewrite_fast_isel_rejects follows one multiply's high half into the next") {
  // InstCombine drops the trunc/zext between MulHiU's result and the next
  // 64-bit multiply; the high half (below 2^31 here) is a factor of a
  // signed multiply.
  const char* text = R"(
target triple = "x86_64-pc-linux-gnu"
define i16 @f(i32 %c, i64 %a, i64 %b) {
entry:
  %n = and i64 %a, 9223372036854775807
  %za = zext nneg i64 %n to i128
  %zc = zext i32 %c to i128
  %p1 = mul i128 %zc, %za
  %h1 = lshr i128 %p1, 64
  %sb = sext i64 %b to i128
  %p2 = mul i128 %h1, %sb
  %h2 = lshr i128 %p2, 70
  %r = trunc i128 %h2 to i16
  ret i16 %r
}
)";
  llvm::LLVMContext ctx;
  auto module = rewritten(text, ctx, 2);
  llvm::Function& f = *module->getFunction("f");
  CHECK(count_in(f, "i128") == 0);
  CHECK(count_in(f, "\"mulq $3\"") == 1);
  CHECK(count_in(f, "\"imulq $3\"") == 1);
}

TEST_CASE("rewrite_fast_isel_rejects leaves other targets and full products alone") {
  const char* body = R"(
define i128 @f(i64 %a, i64 %b) {
entry:
  %wa = zext i64 %a to i128
  %wb = zext i64 %b to i128
  %p = mul i128 %wa, %wb
  ret i128 %p
}
)";
  for (const char* triple : {"x86_64-pc-linux-gnu", "aarch64-linux-gnu"}) {
    CAPTURE(triple);
    llvm::LLVMContext ctx;
    rewritten(fmt::format("target triple = \"{}\"\n{}", triple, body), ctx, 0);  // the whole product is returned
  }
  llvm::LLVMContext ctx;
  const char* sel = R"(
target triple = "aarch64-linux-gnu"
define i1 @g(i1 %p, i1 %q) {
entry:
  %s = select i1 %p, i1 %q, i1 false
  ret i1 %s
}
)";
  rewritten(sel, ctx, 0);  // an i1 select is fine for other targets' instruction selection
}

TEST_CASE("fast_isel lowering leaves out the popcount and the asm FastISel rejects") {
  // An 8-bit parity flag (live at the exit), a load whose value is dead and
  // a store, under restartable direct access.
  auto block = ir::parse(
      "block 0x1000 len 1 {\n  insn 0x1000\n  %0:i64 = get_reg rsp\n  %1:i64 = load %0\n  %2:i64 = get_reg rax\n"
      "  store %0, %2\n  %3:i8 = trunc %2\n  %4:i1 = parity %3\n  set_reg pf, %4\n  jump 0x1001\n}");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  translate::LoweringOptions o;
  o.memory = translate::MemoryStrategy::Direct;
  o.restartable = true;
  auto usual = translate::lower_to_llvm_text(*block, o);
  REQUIRE(usual.has_value());
  CHECK(usual->find("llvm.ctpop") != std::string::npos);
  CHECK(usual->find("asm") != std::string::npos);
  o.fast_isel = true;
  auto fast = translate::lower_to_llvm_text(*block, o);
  REQUIRE(fast.has_value());
  CHECK(fast->find("llvm.ctpop") == std::string::npos);
  CHECK(fast->find("asm") == std::string::npos);
  // The dead load's value still reaches a volatile store (-O0 keeps it).
  CHECK(fast->find("store volatile i64") != std::string::npos);
}

TEST_CASE("sync points may leave unsynced the flags set again before anything observes them") {
  // Markers: the first (cf and zf set before the load), A (an add-with-carry
  // reads the carry forwarded from before A, then sets the carry and the
  // zero flag; a load follows), B (a load before any flag is set), C (reads
  // sf through get_reg, then sets sf and zf), D (sets cf and of before the
  // block ends).
  auto block = ir::parse(
      "block 0x1000 len 9 {\n  insn 0x1000\n  %0:i64 = get_reg rax\n  %1:i64 = get_reg rbx\n"
      "  %2:i1 = cmp.ult %0, %1\n  set_reg cf, %2\n  %3:i1 = cmp.eq %0, %1\n  set_reg zf, %3\n"
      "  insn 0x1003\n  %4:i64 = zext %2\n  %5:i64 = add %0, %4\n  set_reg rax, %5\n"
      "  %6:i1 = cmp.ult %5, %0\n  set_reg cf, %6\n  set_reg zf, %6\n"
      "  insn 0x1006\n  %7:i64 = load %1\n  set_reg rcx, %7\n"
      "  insn 0x1009\n  %8:i1 = get_reg sf\n  %9:i1 = cmp.ult %7, %1\n  set_reg sf, %9\n  set_reg zf, %8\n"
      "  insn 0x100c\n  %10:i64 = add %5, %7\n  set_reg rdx, %10\n  %11:i1 = cmp.eq %10, %7\n"
      "  set_reg cf, %11\n  set_reg of, %11\n"
      "  jump 0x1010\n}");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  auto bit = [](core::X86Reg r) { return uint64_t{1} << static_cast<unsigned>(r); };
  std::vector<uint64_t> reset = translate::detail::flags_set_before_observed(*block);
  std::vector<size_t> markers;
  for (size_t i = 0; i < block->ops.size(); ++i)
    if (block->ops[i].opcode == ir::Opcode::InsnStart) markers.push_back(i);
  REQUIRE(markers.size() == 5);
  CHECK(reset[markers[0]] == (bit(core::X86Reg::Cf) | bit(core::X86Reg::Zf)));
  CHECK(reset[markers[1]] == bit(core::X86Reg::Zf));  // A: cf is read (through %2), zf is not
  CHECK(reset[markers[2]] == 0);                      // B: the load comes first
  // C: sf is read first; zf and of are set again, cf too but D reads it.
  CHECK(reset[markers[3]] == (bit(core::X86Reg::Zf) | bit(core::X86Reg::Of)));
  // D: whatever was computed from a flag's value counts as reading it, so
  // the use of %5 (the add-with-carry's result, from the carry %2) keeps cf.
  CHECK(reset[markers[4]] == bit(core::X86Reg::Of));
}

namespace {

// flags_set_before_observed's second half as its documentation states it:
// from every marker, scan up to the next observer for uses of values from
// before the marker that came from a flag (quadratic; the lowering's own
// version sweeps once).
std::vector<uint64_t> flags_set_before_observed_by_scanning(const ir::IRBlock& blk) {
  auto flag_bit = [](uint32_t reg) -> uint64_t {
    return reg < core::kNumX86Regs && core::kX86Regs[reg].kind == core::RegKind::Flag ? uint64_t{1} << reg : 0;
  };
  auto observer = [](const ir::Op& op) {
    if (op.opcode == ir::Opcode::InsnStart || op.opcode == ir::Opcode::SetReg) return false;
    const ir::OpcodeInfo& info = ir::opcode_info(op.opcode);
    return info.may_trap || info.side_effect;
  };
  const size_t n = blk.ops.size();
  std::vector<uint64_t> out(n, 0);
  uint64_t set = 0;
  for (size_t k = n; k-- > 0;) {
    const ir::Op& op = blk.ops[k];
    if (op.opcode == ir::Opcode::SetReg) set |= flag_bit(op.aux);
    else if (op.opcode == ir::Opcode::GetReg) set &= ~flag_bit(op.aux);
    else if (observer(op)) set = 0;
    out[k] = set;
  }
  std::vector<int64_t> def(blk.value_count(), -1);
  std::vector<uint64_t> from(blk.value_count(), 0);
  for (size_t i = 0; i < n; ++i) {
    const ir::Op& op = blk.ops[i];
    if (op.result != ir::kNoValue) def[op.result] = static_cast<int64_t>(i);
    if (op.opcode == ir::Opcode::GetReg && op.result != ir::kNoValue) from[op.result] |= flag_bit(op.aux);
    if (op.opcode == ir::Opcode::SetReg && op.args[0] != ir::kNoValue) from[op.args[0]] |= flag_bit(op.aux);
  }
  for (const ir::Op& op : blk.ops)
    if (op.result != ir::kNoValue)
      for (int a = 0; a < op.nargs && a < 3; ++a)
        if (op.args[a] != ir::kNoValue) from[op.result] |= from[op.args[a]];
  auto earlier = [&](ir::ValueId v, size_t k) -> uint64_t {
    return v != ir::kNoValue && def[v] >= 0 && static_cast<size_t>(def[v]) < k ? from[v] : 0;
  };
  for (size_t k = 0; k < n; ++k) {
    if (blk.ops[k].opcode != ir::Opcode::InsnStart) continue;
    uint64_t read = 0;
    size_t j = k + 1;
    for (; j < n && !observer(blk.ops[j]); ++j)
      for (int a = 0; a < blk.ops[j].nargs && a < 3; ++a) read |= earlier(blk.ops[j].args[a], k);
    if (j == n) read |= earlier(blk.term.value, k);
    out[k] &= ~read;
  }
  return out;
}

}  // namespace

TEST_CASE("a flag value read just before a marker and used after it keeps the flag synced there") {
  // %1 comes from cf at the op right before the second marker; after the
  // marker it feeds rbx before cf is set again, so a restart from that
  // marker would read cf from the state: it must not be left unsynced.
  auto block = ir::parse(
      "block 0x1000 len 6 {\n  insn 0x1000\n  %0:i64 = get_reg rax\n  %1:i1 = get_reg cf\n"
      "  insn 0x1003\n  %2:i64 = zext %1\n  set_reg rbx, %2\n  %3:i1 = cmp.eq %0, %2\n  set_reg cf, %3\n"
      "  jump 0x1006\n}");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  std::vector<uint64_t> reset = translate::detail::flags_set_before_observed(*block);
  size_t second = 0;
  for (size_t i = 1; i < block->ops.size(); ++i)
    if (block->ops[i].opcode == ir::Opcode::InsnStart) second = i;
  REQUIRE(second == 3);
  CHECK(reset[second] == 0);
  CHECK(reset == flags_set_before_observed_by_scanning(*block));
}

TEST_CASE("flags_set_before_observed agrees with a scan from every marker on random blocks") {
  std::mt19937_64 rng(ir::testing::test_seed(0xf1a95));
  for (uint32_t i = 0; i < 400 * ir::testing::test_scale(); ++i) {
    ir::testing::RandomBlockOptions bo;
    bo.size = 8 + static_cast<uint32_t>(rng() % 120);
    bo.memory = (i % 3) == 0;  // without memory, observers are rare and spans long
    bo.helpers = (i % 5) == 0;
    bo.regs = {core::X86Reg::Rax, core::X86Reg::Rbx, core::X86Reg::Cf, core::X86Reg::Zf, core::X86Reg::Sf,
               core::X86Reg::Of};
    auto block = ir::testing::random_block(rng, bo);
    CAPTURE(i);
    REQUIRE(translate::detail::flags_set_before_observed(block) == flags_set_before_observed_by_scanning(block));
  }
}

TEST_CASE("sync points: what a span read reaches the next region member relative to its registers") {
  using translate::detail::SpanReads;
  using translate::detail::stores_needing_sync;
  const auto rsp = static_cast<uint32_t>(core::X86Reg::Rsp);
  const auto rbx = static_cast<uint32_t>(core::X86Reg::Rbx);
  // Reads [rsp + 8] into rax, moves rsp down by 16, reads [rax] (rbx
  // holds the address a while), then clears rax and rbx, so no register
  // holds that address at the end; leaves on an exit_if and at the jump.
  auto first = ir::parse(
      "block 0x1000 len 9 {\n  insn 0x1000\n  %0:i64 = get_reg rsp\n  %1:i64 = const 0x8\n  %2:i64 = add %0, %1\n"
      "  %3:i64 = load %2\n  set_reg rax, %3\n"
      "  insn 0x1004\n  %4:i64 = const 0x10\n  %5:i64 = sub %0, %4\n  set_reg rsp, %5\n"
      "  %6:i1 = cmp.eq %3, %4\n  exit_if %6, 0x3000\n"
      "  insn 0x1008\n  set_reg rbx, %3\n  %7:i32 = load %3\n  %8:i64 = const 0x0\n  set_reg rbx, %8\n  set_reg rax, %8\n"
      "  jump 0x2000\n}");
  REQUIRE_MESSAGE(first.has_value(), (first ? "" : first.error().to_string()));
  auto syncs = stores_needing_sync(*first, SpanReads{});
  REQUIRE(syncs.edges.size() == 2);
  // At the exit_if: [old rsp + 8] is [rsp + 24] now.
  CHECK_FALSE(syncs.edges[0].second.any);
  REQUIRE(syncs.edges[0].second.locs.size() == 1);
  CHECK(syncs.edges[0].second.locs[0] == SpanReads::Loc{rsp, 24, 8});
  // At the jump: the load through rbx's old value has no register left.
  CHECK(syncs.edges[1].first == first->ops.size());
  CHECK(syncs.edges[1].second.any);

  // A member entered with [rsp + 24] (8 bytes) read: a store to [rsp + 16]
  // is disjoint, one to [rsp + 20] overlaps. After rsp moves up by 8 and is
  // read back (a get_reg after the set_reg: not the entry value any more),
  // [rsp + 16] is the entry's [rsp + 24] and overlaps too.
  auto second = ir::parse(
      "block 0x2000 len 12 {\n  insn 0x2000\n  %0:i64 = get_reg rsp\n  %1:i64 = get_reg rax\n"
      "  %2:i64 = const 0x10\n  %3:i64 = add %0, %2\n  store %3, %1\n"
      "  insn 0x2004\n  %4:i64 = const 0x14\n  %5:i64 = add %0, %4\n  store %5, %1\n"
      "  insn 0x2008\n  %6:i64 = const 0x8\n  %7:i64 = add %0, %6\n  set_reg rsp, %7\n"
      "  %8:i64 = get_reg rsp\n  %9:i64 = add %8, %2\n  store %9, %1\n"
      "  jump 0x1000\n}");
  REQUIRE_MESSAGE(second.has_value(), (second ? "" : second.error().to_string()));
  std::vector<size_t> stores;
  for (size_t i = 0; i < second->ops.size(); ++i)
    if (second->ops[i].opcode == ir::Opcode::Store) stores.push_back(i);
  REQUIRE(stores.size() == 3);
  SpanReads entry;
  entry.locs = {SpanReads::Loc{rsp, 24, 8}};
  auto due = stores_needing_sync(*second, entry).at;
  CHECK_FALSE(due[stores[0]]);
  CHECK(due[stores[1]]);
  // The second store made a sync point due at 0x2008, which closes the
  // span: the third store follows no load of its own span.
  CHECK_FALSE(due[stores[2]]);
  // Without the middle store the span stays open and the third store overlaps.
  auto no_middle = ir::parse(
      "block 0x2000 len 12 {\n  insn 0x2000\n  %0:i64 = get_reg rsp\n  %1:i64 = get_reg rax\n"
      "  %2:i64 = const 0x10\n  %3:i64 = add %0, %2\n  store %3, %1\n"
      "  insn 0x2008\n  %4:i64 = const 0x8\n  %5:i64 = add %0, %4\n  set_reg rsp, %5\n"
      "  %6:i64 = get_reg rsp\n  %7:i64 = add %6, %2\n  store %7, %1\n"
      "  jump 0x1000\n}");
  REQUIRE_MESSAGE(no_middle.has_value(), (no_middle ? "" : no_middle.error().to_string()));
  stores.clear();
  for (size_t i = 0; i < no_middle->ops.size(); ++i)
    if (no_middle->ops[i].opcode == ir::Opcode::Store) stores.push_back(i);
  REQUIRE(stores.size() == 2);
  due = stores_needing_sync(*no_middle, entry).at;
  CHECK_FALSE(due[stores[0]]);
  CHECK(due[stores[1]]);
  // Other registers' entry values are other bases.
  entry.locs = {SpanReads::Loc{rbx, 16, 8}};
  due = stores_needing_sync(*no_middle, entry).at;
  CHECK(due[stores[0]]);  // rbx + 16 and rsp + 16 may be the same bytes
  // Anything read: the first store is due.
  due = stores_needing_sync(*second, SpanReads{true, {}}).at;
  CHECK(due[stores[0]]);
  // A lone block (nothing read on entry): no store follows a load.
  due = stores_needing_sync(*second, SpanReads{}).at;
  CHECK(std::none_of(due.begin(), due.end(), [](bool b) { return b; }));

  // Merging: a union, kept sorted; past kMaxLocs it becomes "anything".
  SpanReads a, b;
  a.locs = {SpanReads::Loc{rsp, 8, 8}};
  b.locs = {SpanReads::Loc{rsp, 0, 8}, SpanReads::Loc{rsp, 8, 8}};
  CHECK(a.merge(b));
  CHECK(a.locs == b.locs);
  CHECK_FALSE(a.merge(b));
  SpanReads many;
  for (int64_t i = 0; i <= static_cast<int64_t>(SpanReads::kMaxLocs); ++i) many.locs.push_back(SpanReads::Loc{rsp, 8 * i + 100, 8});
  CHECK(a.merge(many));
  CHECK(a.any);
  CHECK(a.locs.empty());
}

TEST_CASE("chained exits use the caller's slot words first, then globals") {
  auto block = ir::parse(
      "block 0x1000 len 2 {\n  insn 0x1000\n  %0:i64 = get_reg rax\n  %1:i64 = const 0x0\n"
      "  %2:i1 = cmp.eq %0, %1\n  branch %2, 0x2000, 0x3000\n}");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  void* words[1] = {nullptr};
  translate::LoweringOptions o;
  o.chain_exits = true;
  o.chain_slot_storage = words;
  o.chain_slot_capacity = 1;
  llvm::LLVMContext ctx;
  llvm::Module module("t", ctx);
  auto r = translate::lower_block(*block, module, o);
  REQUIRE(r.has_value());
  REQUIRE(r->chain_slots.size() == 2);
  CHECK(r->chain_slots[0].storage == &words[0]);
  CHECK(r->chain_slots[0].symbol.empty());
  CHECK(r->chain_slots[1].storage == nullptr);
  CHECK(module.getNamedGlobal(r->chain_slots[1].symbol) != nullptr);
  CHECK(r->chain_slots[0].target.value() + r->chain_slots[1].target.value() == 0x5000);
  // Only the exit past the capacity has a global.
  size_t globals = 0;
  for (const auto& g : module.globals()) globals += g.getName().contains(".chain");
  CHECK(globals == 1);
}

namespace {

// A block with one chained exit (exit_if) and one jump-cache probe (indirect_jump).
ir::IRBlock exit_if_and_indirect_jump() {
  auto block = ir::parse(
      "block 0x1000 len 2 {\n  insn 0x1000\n  %0:i64 = get_reg rax\n  %1:i64 = const 0x0\n"
      "  %2:i1 = cmp.eq %0, %1\n  exit_if %2, 0x4000\n  %3:i64 = get_reg rcx\n  indirect_jump %3\n}");
  REQUIRE_MESSAGE(block.has_value(), (block ? "" : block.error().to_string()));
  return *block;
}

size_t occurrences(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

constexpr std::string_view kContinueBit = "-9223372036854775808";  // kExitContinue as LLVM prints an i64

}  // namespace

TEST_CASE("chain_by_return hands chained and jump-cache successors back instead of tail-calling them") {
  auto block = exit_if_and_indirect_jump();
  translate::LoweringOptions o;
  o.chain_exits = true;
  o.inline_jump_cache = true;
  auto tail = translate::lower_to_llvm_text(block, o);
  REQUIRE(tail.has_value());
  CHECK(tail->find("musttail") != std::string::npos);
  o.chain_by_return = true;
  auto handed = translate::lower_to_llvm_text(block, o);
  REQUIRE(handed.has_value());
  CHECK(handed->find("musttail") == std::string::npos);
  // Both exits return the successor's entry with the continue bit.
  CHECK(occurrences(*handed, kContinueBit) == 2);
}

TEST_CASE("preserve_none units tail-call tagged successors and hand back the others; x86-64 only") {
  auto block = exit_if_and_indirect_jump();
  translate::LoweringOptions o;
  o.chain_exits = true;
  o.inline_jump_cache = true;
  o.preserve_none = true;
  auto text = translate::lower_to_llvm_text(block, o);
  REQUIRE_MESSAGE(text.has_value(), (text ? "" : text.error().to_string()));
  // The function, the chained exit and the jump-cache hit; a mismatch
  // would make the callee misread its arguments.
  CHECK(text->find("define preserve_nonecc i64") != std::string::npos);
  CHECK(occurrences(*text, "musttail call preserve_nonecc i64") == 2);
  // Both hand an entry without this convention's tag back instead.
  CHECK(occurrences(*text, "\ncontinue_c") == 2);  // the blocks continue_c, continue_c1
  CHECK(occurrences(*text, kContinueBit) == 2);
  o.target = translate::LoweringTarget::AArch64;
  auto refused = translate::lower_to_llvm_text(block, o);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("x86-64") != std::string::npos);
}

TEST_CASE("softmmu guest accesses and TLB loads carry disjoint alias scopes") {
  auto block = ir::parse(
      "block 0x1000 len 1 {\n  insn 0x1000\n  %0:i64 = get_reg rsp\n  %1:i64 = load %0\n  store %0, %1\n"
      "  jump 0x1001\n}");
  REQUIRE(block.has_value());
  translate::LoweringOptions o;
  o.memory = translate::MemoryStrategy::SoftMmu;
  auto text = translate::lower_to_llvm_text(*block, o);
  REQUIRE(text.has_value());
  // The guest load and store on the TLB-hit path: scoped as guest memory,
  // and declared not to alias the TLB scope (and the other way round).
  auto count = [&](std::string_view needle) {
    size_t n = 0;
    for (size_t at = text->find(needle); at != std::string::npos; at = text->find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count("!alias.scope") >= 2 + 4);  // guest load + store, at least the TLB fields of one lookup
  CHECK(count("!alias.scope") == count("!noalias"));
  CHECK(text->find("\"guest memory\"") != std::string::npos);
  CHECK(text->find("\"tlb\"") != std::string::npos);
  // Direct mode has no TLB and no scopes.
  o.memory = translate::MemoryStrategy::Direct;
  auto direct = translate::lower_to_llvm_text(*block, o);
  REQUIRE(direct.has_value());
  CHECK(direct->find("!alias.scope") == std::string::npos);
}
