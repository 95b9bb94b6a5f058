// Text form: exact round trips (hand-written and random blocks), one
// rejection per parser error class with its line:column, and robustness
// against truncated and mutated input.
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "random_blocks.hpp"
#include "vm/core/memory.hpp"
#include "vm/ir/builder.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/text.hpp"
#include "vm/ir/verifier.hpp"

using namespace vm::ir;
using vm::core::X86Reg;
using namespace std::string_view_literals;

namespace {

// Every opcode at least once, in its canonical printed form (types valid).
constexpr std::string_view kEveryOpcode = R"(block 0x401000 len 32 {
  insn 0x401000
  %0:i64 = get_reg rax
  %1:i8 = get_reg rax+1
  set_reg rax+1, %1
  %2:i64 = const 0x10
  %3:i128 = const 0x0123456789abcdef0011223344556677
  %4:v128 = const 0x000000000000000000000000000000ff
  %5:f64 = const 0x3ff8000000000000  ; 1.5
  %6:f32 = const 0x3f800000  ; 1
  %7:i1 = get_reg zf
  %8:v128 = get_reg xmm1
  %9:v128 = get_reg xmm2
  %10:f64 = get_reg xmm3+8
  %11:i64 = load %0
  %12:i32 = load.zx8 %0
  %13:i64 = load.sx32 %0
  %14:v128 = load %0
  store %0, %12
  insn 0x401004
  %15:i64 = add %0, %2
  %16:v128 = add.i16x8 %8, %9
  %17:i64 = sub %0, %2
  %18:i32 = mul %12, %12
  %19:i64 = mulhu %0, %2
  %20:i64 = mulhs %0, %2
  %21:i64 = divu %0, %2
  %22:i64 = divs %0, %2
  %23:i128 = remu %3, %3
  %24:i128 = rems %3, %3
  %25:i64 = and %0, %2
  %26:i64 = or %0, %2
  %27:v128 = xor.i64x2 %8, %9
  %28:i1 = not %7
  %29:i64 = neg %0
  %30:v128 = abs.i8x16 %8
  %31:i64 = shl %0, %2
  %32:i64 = lshr %0, %2
  %33:v128 = ashr.i32x4 %8, %9
  %34:i8 = rotl %1, %1
  %35:i8 = rotr %1, %1
  %36:v128 = smin.i16x8 %8, %9
  %37:v128 = smax.i16x8 %8, %9
  %38:v128 = umin.i8x16 %8, %9
  %39:i64 = umax %0, %2
  %40:v128 = add_sat_s.i8x16 %8, %9
  %41:v128 = add_sat_u.i16x8 %8, %9
  %42:v128 = sub_sat_s.i8x16 %8, %9
  %43:v128 = sub_sat_u.i16x8 %8, %9
  %44:v128 = avg_u.i8x16 %8, %9
  %45:i1 = cmp.ult %0, %2
  %46:v128 = cmp.sgt.i32x4 %8, %9
  %47:i64 = select %45, %0, %2
  %48:i64 = zext %12
  %49:i64 = sext %1
  %50:i16 = trunc %0
  %51:f64 = bitcast %0
  %52:i64 = ctz %0
  %53:i64 = clz %0
  %54:i64 = popcount %0
  %55:i32 = bswap %12
  %56:i1 = parity %1
  %57:i1 = add_carry %0, %2, %7
  %58:i1 = add_overflow %0, %2, %7
  %59:i1 = sub_borrow %1, %1, %7
  %60:i1 = sub_overflow %1, %1, %7
  %61:f64 = fadd.rne %5, %10
  %62:v128 = fadd.dyn.f64x2 %8, %9
  %63:f64 = fsub.rdn %5, %10
  %64:f32 = fmul.rup %6, %6
  %65:v128 = fdiv.rtz.f32x4 %8, %9
  %66:f64 = fsqrt.dyn %5
  %67:f64 = fmin %5, %10
  %68:v128 = fmax.f32x4 %8, %9
  %69:i1 = fcmp.unord %5, %10
  %70:v128 = fcmp.nle.f64x2 %8, %9
  %71:f32 = fcvt.rne %5
  %72:f64 = fround.rtz %5
  %73:f64 = sitofp.dyn %0
  %74:v128 = sitofp.rne.i32x4 %8
  %75:i32 = fptosi.rtz %5
  %76:v128 = fptosi.dyn.f32x4 %8
  %77:i32 = vextract.i32x4 %8, 2
  %78:v128 = vinsert.f64x2 %8, %5, 1
  %79:v128 = vsplat.i8x16 %1
  %80:v128 = vshuffle %8, %9, [0,17,2,19,4,21,6,23,128,9,10,11,12,13,14,31]
  %81:v128 = vpshufb %8, %9
  %82:v128 = vpack_ss.i16x8 %8, %9
  %83:v128 = vpack_us.i32x4 %8, %9
  %84:i32 = vmovmsk.i8x16 %8
  %85:v128 = vmuladd.i16x8 %8, %9
  %86:v128 = vsad.i8x16 %8, %9
  %87:i32 = atomic_cmpxchg %0, %12, %18
  %88:i64 = atomic_rmw.xchg %0, %2
  %89:i16 = atomic_rmw.xor %0, %50
  fence
  call_helper cpuid
  %90:i64 = call_helper rdtsc
  %91:i64 = call_helper xgetbv, %0
  trap_if %7, general_protection
  exit_if %7, 0x401010
  %92:i64 = fill %0, %50, %2
  %93:i64 = copy %0, %2, %2, 16
  jump 0x401020
}
)";

// Every terminator kind (and both call forms, a trap with vector and escapes).
constexpr std::string_view kEveryTerminator = R"(block 0x1000 len 2 {
  jump 0x2000
}
block 0x1000 len 2 {
  %0:i1 = get_reg zf
  branch %0, 0x2000, 0x1002
}
block 0x1000 len 3 {
  %0:i64 = get_reg rax
  indirect_jump %0
}
block 0x1000 len 1 {
  %1:i64 = get_reg rsp
  %0:i64 = load %1
  ret %0
}
block 0x1000 len 5 {
  call 0x4000, ret 0x1005
}
block 0x1000 len 2 {
  %7:i64 = get_reg rdx
  call %7, ret 0x1002
}
block 0x1000 len 2 {
  syscall 0x1002
}
block 0x1000 len 2 {
  trap invalid_opcode 0x1000 "ud2"
}
block 0x1000 len 2 {
  trap interrupt 0x1000 vector 0x80 "int 0x80"
}
block 0x1000 len 1 {
  trap unsupported 0x1000 "quote \" backslash \\ newline \n tab \t byte \x01\xff ; not a comment"
}
block 0x1000 len 0 {
  exit 0x1000
}
)";

void check_round_trip(const IRBlock& b) {
  std::string text = print(b);
  auto parsed = parse(text);
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().message << "\n" << text);
  CHECK_MESSAGE(*parsed == b, text << "\nreprinted as\n" << print(*parsed));
  CHECK(print(*parsed) == text);
}

// "L:C: ..." with L and C inside the input (columns may point one past a line's end).
bool well_formed_error(std::string_view text, const vm::core::Error& e) {
  if (e.code != vm::core::ErrorCode::Parse) return false;
  size_t line = 0, col = 0;
  if (std::sscanf(e.message.c_str(), "%zu:%zu: ", &line, &col) != 2) return false;
  if (line == 0 || col == 0) return false;
  size_t cur = 1, start = 0;
  for (size_t i = 0; i < text.size() && cur < line; ++i)
    if (text[i] == '\n') {
      ++cur;
      start = i + 1;
    }
  if (cur != line) return false;
  size_t end = text.find('\n', start);
  size_t len = (end == std::string_view::npos ? text.size() : end) - start;
  return col <= len + 1;
}

}  // namespace

TEST_CASE("text: a block using every opcode round-trips exactly") {
  auto b = parse(kEveryOpcode);
  REQUIRE_MESSAGE(b.has_value(), b.error().message);
  CHECK(print(*b) == kEveryOpcode);
  auto v = verify(*b);
  CHECK_MESSAGE(v.has_value(), (v ? std::string() : v.error().message));
  auto again = parse(print(*b));
  REQUIRE(again.has_value());
  CHECK(*again == *b);

  std::set<Opcode> seen;
  for (const Op& op : b->ops) seen.insert(op.opcode);
  CHECK(seen.size() == kNumOpcodes);

  // A few fields pinned, so the syntax means what docs/ir-text.md says.
  const auto& ops = b->ops;
  CHECK(b->start_pc == GuestAddr(0x401000));
  CHECK(b->guest_len == 32);
  CHECK(ops[2].opcode == Opcode::GetReg);
  CHECK(ops[2].aux == static_cast<uint32_t>(X86Reg::Rax));
  CHECK(ops[2].imm == 1);
  CHECK(ops[2].type == Type::I8);
  CHECK(ops[2].result == 1);
  CHECK(ops[3].args[0] == 1);
  CHECK(ops[3].result == kNoValue);
  CHECK(ops[5].imm_hi == 0x0123456789abcdefULL);
  CHECK(ops[5].imm == 0x0011223344556677ULL);
  CHECK(ops[13].mod == static_cast<uint8_t>(Ext::None));
  CHECK(ops[13].aux == 64);
  CHECK(ops[14].mod == static_cast<uint8_t>(Ext::Zero));
  CHECK(ops[14].aux == 8);
  CHECK(ops[15].mod == static_cast<uint8_t>(Ext::Sign));
  CHECK(ops[15].aux == 32);
  CHECK(ops[17].args[0] == 0);
  CHECK(ops[17].args[1] == 12);
  CHECK(ops[20].lane == Lane::I16);
  const Op* fadd_lanes = &ops[0];
  const Op* shuffle = &ops[0];
  const Op* xgetbv = &ops[0];
  for (const Op& op : ops) {
    if (op.opcode == Opcode::FAdd && op.lane != Lane::None) fadd_lanes = &op;
    if (op.opcode == Opcode::VShuffle) shuffle = &op;
    if (op.opcode == Opcode::CallHelper && op.aux == static_cast<uint32_t>(Helper::Xgetbv)) xgetbv = &op;
  }
  CHECK(fadd_lanes->mod == static_cast<uint8_t>(Rounding::Dyn));
  CHECK(fadd_lanes->lane == Lane::F64);
  CHECK(shuffle->imm == 0x1706150413021100ULL);
  CHECK(shuffle->imm_hi == 0x1f0e0d0c0b0a0980ULL);
  CHECK(xgetbv->nargs == 1);
  CHECK(xgetbv->args[0] == 0);
  CHECK(xgetbv->type == Type::I64);
  CHECK(b->term.kind == TermKind::Jump);
  CHECK(b->term.target == GuestAddr(0x401020));
}

TEST_CASE("text: every terminator kind round-trips exactly") {
  auto blocks = parse_blocks(kEveryTerminator);
  REQUIRE_MESSAGE(blocks.has_value(), blocks.error().message);
  REQUIRE(blocks->size() == 11);
  std::string all;
  std::set<TermKind> kinds;
  for (const IRBlock& b : *blocks) {
    all += print(b);
    kinds.insert(b.term.kind);
    check_round_trip(b);
    auto v = verify(b);
    CHECK_MESSAGE(v.has_value(), (v ? std::string() : v.error().message));
  }
  CHECK(all == kEveryTerminator);
  CHECK(kinds.size() == 8);

  const auto& bs = *blocks;
  CHECK(bs[1].term.value == 0);
  CHECK(bs[1].term.target == GuestAddr(0x2000));
  CHECK(bs[1].term.fallthrough == GuestAddr(0x1002));
  CHECK(bs[4].term.value == kNoValue);
  CHECK(bs[4].term.target == GuestAddr(0x4000));
  CHECK(bs[5].term.value == 7);
  CHECK(bs[5].term.target == GuestAddr{});
  CHECK(bs[5].term.fallthrough == GuestAddr(0x1002));
  CHECK(bs[8].term.trap == TrapReason::Interrupt);
  CHECK(bs[8].term.vector == 0x80);
  CHECK(bs[9].term.message == std::string("quote \" backslash \\ newline \n tab \t byte \x01\xff ; not a comment"));
}

TEST_CASE("text: builder output prints in the documented syntax") {
  IRBlock b;
  b.start_pc = GuestAddr(0x401000);
  b.guest_len = 12;
  IRBuilder ir(b);
  ir.insn_start(GuestAddr(0x401000));
  Value rax = ir.get_reg(X86Reg::Rax, Type::I64);
  Value ah = ir.get_reg(X86Reg::Rax, Type::I8, 1);
  ir.set_reg(X86Reg::Rcx, ah, 1);
  Value k = ir.i64(0x10);
  Value sum = ir.add(rax, k);
  Value lt = ir.cmp(CmpPred::Ult, rax, k);
  Value x = ir.get_reg(X86Reg::Xmm0, Type::V128);
  Value v = ir.farith(Opcode::FAdd, x, x, Rounding::Dyn, Lane::F64);
  ir.vextract(Lane::I32, v, 2);
  Value m = ir.load_ext(Type::I32, sum, Ext::Zero, 8);
  ir.store(sum, m);
  ir.f64(-0.5);
  ir.atomic_rmw(RmwOp::Add, sum, rax);
  ir.branch(lt, GuestAddr(0x401010), GuestAddr(0x40100c));
  CHECK(print(b) == R"(block 0x401000 len 12 {
  insn 0x401000
  %0:i64 = get_reg rax
  %1:i8 = get_reg rax+1
  set_reg rcx+1, %1
  %2:i64 = const 0x10
  %3:i64 = add %0, %2
  %4:i1 = cmp.ult %0, %2
  %5:v128 = get_reg xmm0
  %6:v128 = fadd.dyn.f64x2 %5, %5
  %7:i32 = vextract.i32x4 %6, 2
  %8:i32 = load.zx8 %3
  store %3, %8
  %9:f64 = const 0xbfe0000000000000  ; -0.5
  %10:i64 = atomic_rmw.add %3, %0
  branch %4, 0x401010, 0x40100c
}
)");
  check_round_trip(b);
  CHECK(print_op(b.ops[7]) == "%5:v128 = get_reg xmm0");
  CHECK(print_terminator(b.term) == "branch %4, 0x401010, 0x40100c");
}

TEST_CASE("text: the parser accepts comments, blank lines and spacing") {
  auto b = parse("\n; leading comment\n  block   0x10 len 1 {   ; after brace\n\n"
                 "  %3 : i64 =  const 0X00ff ; hex digits any case\n"
                 "  set_reg rax + 0 , %3\n"
                 "  exit 0x11 }\n\n");
  REQUIRE_MESSAGE(b.has_value(), b.error().message);
  CHECK(b->ops.size() == 2);
  CHECK(b->ops[0].imm == 0xff);
  CHECK(b->ops[1].args[0] == 3);
  CHECK(b->term.kind == TermKind::Exit);
  CHECK(print(*b) == "block 0x10 len 1 {\n  %3:i64 = const 0xff\n  set_reg rax, %3\n  exit 0x11\n}\n");

  auto none = parse_blocks("  \n ; nothing here\n");
  REQUIRE(none.has_value());
  CHECK(none->empty());
}

TEST_CASE("text: ops print fields the text cannot carry as a comment") {
  Op op;
  op.opcode = Opcode::Add;
  op.type = Type::I64;
  op.result = 3;
  op.nargs = 2;
  op.args = {1, 2, kNoValue};
  op.aux = 5;
  CHECK(print_op(op) == "%3:i64 = add %1, %2  ; unprinted: aux=0x5");
  // Garbage enum values print without crashing (diagnostics of invalid blocks).
  Op bad;
  std::memset(static_cast<void*>(&bad), 0xee, sizeof bad);
  CHECK_FALSE(print_op(bad).empty());
  bad.opcode = Opcode::GetReg;
  CHECK(print_op(bad).find("<reg") != std::string::npos);
  Terminator t;
  t.kind = static_cast<TermKind>(200);
  CHECK(print_terminator(t).starts_with(";"));
  IRBlock empty;
  CHECK_FALSE(parse(print(empty)).has_value());  // no terminator: printed, but not parseable
}

TEST_CASE("text: random blocks round-trip exactly") {
  const uint64_t seed = vm::ir::testing::test_seed(0x7e47);
  const uint32_t count = 2000 * vm::ir::testing::test_scale();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);

  std::set<Opcode> opcodes;
  std::set<Type> types;
  std::set<Lane> lanes;
  std::set<std::pair<Opcode, uint8_t>> modifiers;
  std::set<TermKind> terms;
  std::set<TrapReason> traps;
  std::string concatenated;
  std::vector<IRBlock> kept;

  for (uint32_t i = 0; i < count; ++i) {
    vm::ir::testing::RandomBlockOptions opts;
    opts.size = 1 + static_cast<uint32_t>(rng() % 40);
    opts.sparse_ids = i % 3 == 0;
    opts.conditional_exits = true;
    IRBlock b = vm::ir::testing::random_block(rng, opts);
    auto v = verify(b);
    REQUIRE_MESSAGE(v.has_value(), v.error().message << "\n" << print(b));
    check_round_trip(b);
    for (const Op& op : b.ops) {
      opcodes.insert(op.opcode);
      types.insert(op.type);
      lanes.insert(op.lane);
      if (opcode_info(op.opcode).mod != ModKind::None) modifiers.insert({op.opcode, op.mod});
    }
    terms.insert(b.term.kind);
    if (b.term.kind == TermKind::Trap) traps.insert(b.term.trap);
    if (i < 50) {
      concatenated += print(b);
      if (i % 2) concatenated += "\n; between blocks\n";
      kept.push_back(std::move(b));
    }
  }

  // The generator reaches everything the text form has to carry.
  CHECK(opcodes.size() == kNumOpcodes);
  CHECK(types.size() == 10);  // nine value types and Void
  CHECK(lanes.size() == 7);
  CHECK(terms.size() == 8);
  CHECK(traps.size() == 7);  // every reason but memory_fault, which only arises at run time
  size_t expected_mods = 0;
  for (uint32_t o = 0; o < kNumOpcodes; ++o) {
    switch (opcode_info(static_cast<Opcode>(o)).mod) {
      case ModKind::None: break;
      case ModKind::Cmp: expected_mods += 10; break;
      case ModKind::FCmp: expected_mods += 8; break;
      case ModKind::Round: expected_mods += 5; break;
      case ModKind::Ext: expected_mods += 3; break;
      case ModKind::Rmw: expected_mods += 6; break;
    }
  }
  CHECK(modifiers.size() == expected_mods);

  auto all = parse_blocks(concatenated);
  REQUIRE_MESSAGE(all.has_value(), all.error().message);
  CHECK(*all == kept);
}

TEST_CASE("text: each parser error class is reported at its line and column") {
  struct Case {
    std::string_view text;
    std::string_view where;  // "line:col"
    std::string_view says;   // part of the message
  };
  static constexpr std::string_view kOk = "block 0x0 len 1 {\n";
  const Case cases[] = {
      // structure
      {"", "1:1", "expected 'block'"},
      {"blok 0x0 len 1 {\n  exit 0x1\n}\n", "1:1", "expected 'block'"},
      {"block 0x0 len 1\n  exit 0x1\n}\n", "1:16", "expected '{'"},
      {"block 0x0 size 1 {\n  exit 0x1\n}\n", "1:11", "expected 'len'"},
      {"block 0x0 len 1 {\n  %0:i64 = get_reg rax\n}\n", "3:1", "missing terminator"},
      {"block 0x0 len 1 {\n  exit 0x1\n  jump 0x2\n}\n", "3:3", "duplicate terminator (the block already ended on line 2)"},
      {"block 0x0 len 1 {\n  exit 0x1\n  fence\n}\n", "3:3", "op after the terminator"},
      {"block 0x0 len 1 {\n  exit 0x1\n", "3:1", "missing '}'"},
      {"block 0x0 len 1 {\n  exit 0x1\n}\nblock 0x0 len 1 {\n  exit 0x1\n}\n", "4:1", "after the block"},
      {"block 0x0 len 1 {\n  exit 0x1\n} exit\n", "3:3", "after '}'"},
      {"block 0x0 len 1 {\n  exit 0x1 0x2\n}\n", "2:12", "at the end of the statement"},
      {"block 0x0 len 1 {\n  fence %1\n}\n", "2:9", "at the end of the statement"},
      // lexical
      {"block 0x0 len 1 {\n  exit 0x1 @\n}\n", "2:12", "unexpected character '@'"},
      {"block 0x0 len 1 {\n  exit \x80\n}\n", "2:8", "unexpected byte 0x80"},
      {"block 0x0 len 1 {\n  trap halt 0x0 \"no end\n}\n", "2:17", "unterminated string"},
      {"block 0x0 len 1 {\n  trap halt 0x0 \"abc\\", "2:17", "unterminated string"},
      {"block 0x0 len 1 {\n  trap halt 0x0 \"a\\qb\"\n}\n", "2:19", "bad escape"},
      {"block 0x0 len 1 {\n  trap halt 0x0 \"a\\x4\"\n}\n", "2:19", "\\x needs two hex digits"},
      // names
      {"block 0x0 len 1 {\n  %0:i64 = frobnicate %1\n}\n", "2:12", "unknown opcode 'frobnicate'"},
      {"block 0x0 len 1 {\n  %0:i64 = get_reg rzz\n}\n", "2:20", "unknown register 'rzz'"},
      {"block 0x0 len 1 {\n  %0:i7 = get_reg rax\n}\n", "2:6", "unknown type 'i7'"},
      {"block 0x0 len 1 {\n  %0:void = fence\n}\n", "2:6", "unknown type 'void'"},
      {"block 0x0 len 1 {\n  %0:i64 = call_helper frob\n}\n", "2:24", "unknown helper 'frob'"},
      {"block 0x0 len 1 {\n  trap oops 0x0\n}\n", "2:8", "unknown trap reason 'oops'"},
      // modifiers and lanes
      {"block 0x0 len 1 {\n  %2:i1 = cmp %0, %1\n}\n", "2:14", "needs a comparison predicate"},
      {"block 0x0 len 1 {\n  %2:i1 = cmp.lt %0, %1\n}\n", "2:15", "'.lt' is not a comparison predicate"},
      {"block 0x0 len 1 {\n  %2:f64 = fadd %0, %1\n}\n", "2:16", "needs a rounding mode"},
      {"block 0x0 len 1 {\n  %2:i1 = fcmp.slt %0, %1\n}\n", "2:16", "is not a float predicate"},
      {"block 0x0 len 1 {\n  %2:i64 = atomic_rmw.nand %0, %1\n}\n", "2:23", "is not an atomic operation"},
      {"block 0x0 len 1 {\n  %2:i8 = rotl.i8x16 %0, %1\n}\n", "2:16", "'rotl' takes no lane suffix"},
      {"block 0x0 len 1 {\n  %2:v128 = add.i8x16.sat %0, %1\n}\n", "2:23", "unexpected suffix '.sat'"},
      {"block 0x0 len 1 {\n  %2:i64 = add.i8x12 %0, %1\n}\n", "2:16", "unexpected suffix '.i8x12'"},
      {"block 0x0 len 1 {\n  %2:i64 = load.zxq %0\n}\n", "2:17", "bad memory width"},
      // literals and value names
      {"block 0x0 len 1 {\n  %0:i64 = const 12\n}\n", "2:18", "expected a hex literal"},
      {"block 0x0 len 1 {\n  %0:i64 = const 0x1g\n}\n", "2:18", "bad hex literal '0x1g'"},
      {"block 0x0 len 1 {\n  %0:i64 = const 0x\n}\n", "2:18", "bad hex literal"},
      {"block 0x0 len 1 {\n  %0:i8 = const 0x100\n}\n", "2:17", "does not fit in 8 bits"},
      {"block 0x0 len 1 {\n  %0:i1 = const 0x2\n}\n", "2:17", "does not fit in 1 bits"},
      {"block 0x0 len 1 {\n  %0:i128 = const 0x1000000000000000000000000000000000\n}\n", "2:19", "does not fit in 128 bits"},
      {"block 0x0 len 1 {\n  jump 0x10000000000000000\n}\n", "2:8", "does not fit in 64 bits"},
      {"block 0xz len 1 {\n  exit 0x1\n}\n", "1:7", "bad hex literal"},
      {"block 0x0 len 4294967296 {\n  exit 0x1\n}\n", "1:15", "too large"},
      {"block 0x0 len 1x {\n  exit 0x1\n}\n", "1:15", "bad decimal number"},
      {"block 0x0 len 1 {\n  %x:i64 = get_reg rax\n}\n", "2:3", "bad value name '%x'"},
      {"block 0x0 len 1 {\n  ret %\n}\n", "2:7", "bad value name"},
      {"block 0x0 len 1 {\n  ret %4294967295\n}\n", "2:7", "too large"},
      {"block 0x0 len 1 {\n  %0:i32 = vextract.i32x4 %1, x\n}\n", "2:31", "expected a lane index"},
      {"block 0x0 len 1 {\n  %0:i64 = get_reg rax+0x1\n}\n", "2:24", "bad decimal number"},
      // operand lists
      {"block 0x0 len 1 {\n  %2:i64 = add %0 %1\n}\n", "2:19", "expected ','"},
      {"block 0x0 len 1 {\n  %2:i64 = add %0,\n}\n", "2:19", "expected a value (%N)"},
      {"block 0x0 len 1 {\n  %2:i64 = add 0x1, %1\n}\n", "2:16", "expected a value (%N)"},
      {"block 0x0 len 1 {\n  %0:i64 = get_reg\n}\n", "2:19", "expected a register name"},
      {"block 0x0 len 1 {\n  = get_reg rax\n}\n", "2:3", "expected an opcode"},
      {"block 0x0 len 1 {\n  %0 i64 = get_reg rax\n}\n", "2:6", "expected ':'"},
      {"block 0x0 len 1 {\n  %0:i64 get_reg rax\n}\n", "2:10", "expected '='"},
      {"block 0x0 len 1 {\n  %2:v128 = vshuffle %0, %1, [0,1,2]\n}\n", "2:36", "expected ','"},
      {"block 0x0 len 1 {\n  %2:v128 = vshuffle %0, %1, [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]\n}\n", "2:62",
       "exactly 16 entries"},
      {"block 0x0 len 1 {\n  %2:v128 = vshuffle %0, %1, [256,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]\n}\n", "2:31", "too large"},
      {"block 0x0 len 1 {\n  call_helper cpuid, %0, %1, %2, %3\n}\n", "2:32", "at most 3 arguments"},
      // terminators
      {"block 0x0 len 1 {\n  call 0x10, 0x20\n}\n", "2:14", "expected 'ret'"},
      {"block 0x0 len 1 {\n  branch %0, 0x1\n}\n", "2:17", "expected ','"},
      {"block 0x0 len 1 {\n  trap halt 0x0 vector 0x3 \"x\"\n}\n", "2:17", "only an interrupt trap takes a vector"},
      {"block 0x0 len 1 {\n  trap interrupt 0x0 vector 0x100\n}\n", "2:29", "does not fit in 8 bits"},
  };
  for (const Case& c : cases) {
    INFO("input: " << c.text);
    auto r = parse(c.text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == vm::core::ErrorCode::Parse);
    CHECK_MESSAGE(r.error().message.starts_with(std::string(c.where) + ": "), r.error().message);
    CHECK_MESSAGE(r.error().message.find(c.says) != std::string::npos, r.error().message);
    CHECK(well_formed_error(c.text, r.error()));
  }
  CHECK(parse(std::string(kOk) + "  exit 0x1\n}\n").has_value());
}

TEST_CASE("text: truncated and mutated input gives errors, never crashes") {
  const uint64_t seed = vm::ir::testing::test_seed(0xbadc0de);
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  static constexpr std::string_view kNoise = "\0\n\r\t \"\\%:=,+[]{};.0123456789xabcdefgz_\x7f\x80\xff"sv;

  std::vector<std::string> seeds = {std::string(kEveryOpcode), std::string(kEveryTerminator)};
  for (int i = 0; i < 40; ++i) {
    vm::ir::testing::RandomBlockOptions opts;
    opts.size = 4 + static_cast<uint32_t>(pick(24));
    seeds.push_back(print(vm::ir::testing::random_block(rng, opts)));
  }

  uint64_t inputs = 0, accepted = 0;
  auto feed = [&](const std::string& text) {
    ++inputs;
    auto one = parse(text);
    auto many = parse_blocks(text);
    if (one) {
      ++accepted;
      // Whatever parses re-prints to text that parses to the same block.
      auto again = parse(print(*one));
      REQUIRE(again.has_value());
      CHECK(*again == *one);
      REQUIRE(many.has_value());
      CHECK(many->size() == 1);
    } else {
      CHECK_MESSAGE(well_formed_error(text, one.error()), one.error().message);
    }
    if (!many) CHECK_MESSAGE(well_formed_error(text, many.error()), many.error().message);
  };

  // Every prefix of two seeds (every place a file can be cut off).
  for (size_t s = 0; s < 2; ++s)
    for (size_t n = 0; n < seeds[s].size(); ++n) feed(seeds[s].substr(0, n));

  const uint32_t rounds = 6000 * vm::ir::testing::test_scale();
  for (uint32_t r = 0; r < rounds; ++r) {
    std::string t = seeds[pick(seeds.size())];
    int edits = 1 + static_cast<int>(pick(4));
    for (int e = 0; e < edits && !t.empty(); ++e) {
      size_t at = pick(t.size());
      switch (pick(6)) {
        case 0: t[at] = kNoise[pick(kNoise.size())]; break;                 // replace a byte
        case 1: t.insert(at, 1, kNoise[pick(kNoise.size())]); break;         // insert a byte
        case 2: t.erase(at, 1 + pick(8)); break;                              // delete a few bytes
        case 3: t.resize(at); break;                                          // truncate
        case 4: t.insert(at, t.substr(pick(t.size()), 1 + pick(30))); break;  // duplicate a snippet
        default: t[at] = static_cast<char>(rng()); break;                     // random byte
      }
    }
    feed(t);
  }
  MESSAGE(inputs << " inputs, " << accepted << " still parsed");
  CHECK(inputs > 5000);
}

TEST_CASE("random blocks honour the generator options") {
  using vm::ir::testing::RandomBlockOptions;
  const uint64_t seed = vm::ir::testing::test_seed(0x5eed);
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);

  RandomBlockOptions narrow;
  narrow.size = 40;
  narrow.memory = false;
  narrow.helpers = false;
  narrow.division = false;
  narrow.trap_terminators = false;
  narrow.regs = {X86Reg::Rax, X86Reg::Zf, X86Reg::Xmm3};
  std::set<uint32_t> regs_seen;
  for (int i = 0; i < 300; ++i) {
    IRBlock b = vm::ir::testing::random_block(rng, narrow);
    REQUIRE(verify(b).has_value());
    CHECK(b.term.kind != TermKind::Trap);
    for (const Op& op : b.ops) {
      switch (op.opcode) {
        case Opcode::Load: case Opcode::Store: case Opcode::AtomicCmpxchg: case Opcode::AtomicRmw: case Opcode::Fence:
        case Opcode::CallHelper: case Opcode::DivU: case Opcode::DivS: case Opcode::RemU: case Opcode::RemS:
          FAIL_CHECK("excluded opcode " << print_op(op));
          break;
        case Opcode::GetReg: case Opcode::SetReg: regs_seen.insert(op.aux); break;
        default: break;
      }
    }
  }
  CHECK(regs_seen == std::set<uint32_t>{static_cast<uint32_t>(X86Reg::Rax), static_cast<uint32_t>(X86Reg::Zf),
                                         static_cast<uint32_t>(X86Reg::Xmm3)});

  // Without memory, helpers and trap terminators only division can trap;
  // division_traps = false must remove that too.
  RandomBlockOptions div;
  div.size = 30;
  div.memory = false;
  div.helpers = false;
  div.trap_terminators = false;
  vm::core::RegionMemory no_memory;
  int traps_with = 0, traps_without = 0;
  for (int i = 0; i < 600; ++i) {
    div.division_traps = i % 2 == 0;
    IRBlock b = vm::ir::testing::random_block(rng, div);
    REQUIRE(verify(b).has_value());
    vm::core::X86State state;
    for (auto& g : state.gpr) g = rng() % 2 ? rng() % 3 : rng();
    ExecResult r = Interpreter(no_memory).run(b, state);
    (div.division_traps ? traps_with : traps_without) += r.kind == TermKind::Trap;
  }
  CHECK(traps_with > 0);
  CHECK(traps_without == 0);

  RandomBlockOptions sparse;
  sparse.sparse_ids = true;
  sparse.size = 30;
  IRBlock b = vm::ir::testing::random_block(rng, sparse);
  REQUIRE(verify(b).has_value());
  size_t defined = 0;
  for (const Op& op : b.ops) defined += op.result != kNoValue;
  CHECK(b.value_count() > defined);
}
