// The builder produces well-typed blocks, and the verifier rejects each kind
// of malformed block with a message naming the op index and the rule.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "vm/ir/builder.hpp"
#include "vm/ir/verifier.hpp"

using namespace vm::ir;
using vm::core::GuestAddr;

namespace {

// A valid block to start from: every rule test breaks exactly one thing.
IRBlock base_block() {
  IRBlock b;
  b.start_pc = GuestAddr(0x1000);
  IRBuilder ir(b);
  ir.insn_start(GuestAddr(0x1000));
  Value a = ir.get_reg(X86Reg::Rax, Type::I64);  // %0
  Value c = ir.i64(1);                            // %1
  Value s = ir.add(a, c);                         // %2
  ir.set_reg(X86Reg::Rax, s);
  ir.branch(ir.cmp(CmpPred::Eq, s, c), GuestAddr(0x2000), GuestAddr(0x1004));  // %3
  return b;
}

std::string reject(const IRBlock& b) {
  auto r = verify(b);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == vm::core::ErrorCode::Verify);
  return r.error().message;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("the base block verifies") { CHECK(verify(base_block()).has_value()); }

TEST_CASE("verifier: operand count") {
  IRBlock b = base_block();
  b.ops[3].nargs = 1;
  b.ops[3].args[1] = kNoValue;
  auto m = reject(b);
  CHECK(contains(m, "op 3 (add)"));
  CHECK(contains(m, "expects 2 operand"));
}

TEST_CASE("verifier: use before definition") {
  IRBlock b = base_block();
  b.ops[3].args[1] = 7;
  CHECK(contains(reject(b), "before its definition"));
}

TEST_CASE("verifier: value defined twice") {
  IRBlock b = base_block();
  b.ops[2].result = 0;
  CHECK(contains(reject(b), "defined twice"));
}

TEST_CASE("verifier: result missing or unexpected") {
  IRBlock b = base_block();
  b.ops[2].result = kNoValue;
  CHECK(contains(reject(b), "result value id missing"));
  IRBlock c = base_block();
  c.ops[4].result = 9;
  CHECK(contains(reject(c), "defines a value"));
}

TEST_CASE("verifier: operand types must agree") {
  IRBlock b;
  IRBuilder ir(b);
  ir.add(ir.i64(1), ir.i32(1));
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(b), "op 2 (add): operands and result must have the same integer type"));
}

TEST_CASE("verifier: unknown register and bad sub-register ranges") {
  IRBlock b = base_block();
  b.ops[1].aux = 999;
  CHECK(contains(reject(b), "unknown register id 999"));
  IRBlock c;
  IRBuilder ir(c);
  ir.get_reg(X86Reg::Rax, Type::I32, 6);
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(c), "outside register rax"));
  IRBlock d;
  IRBuilder ir2(d);
  ir2.get_reg(X86Reg::Zf, Type::I8);
  ir2.jump(GuestAddr(0));
  CHECK(contains(reject(d), "flag zf"));
  IRBlock e;
  IRBuilder ir3(e);
  ir3.set_reg(X86Reg::Rax, ir3.i1(true));
  ir3.jump(GuestAddr(0));
  CHECK(contains(reject(e), "cannot be accessed as i1"));
}

TEST_CASE("verifier: modifier out of range") {
  IRBlock b = base_block();
  b.ops[5].mod = 200;  // the cmp
  CHECK(contains(reject(b), "modifier 200 out of range"));
}

TEST_CASE("verifier: lane rules") {
  IRBlock b = base_block();
  b.ops[1].lane = Lane::I8;  // get_reg is never lane-wise
  CHECK(contains(reject(b), "cannot be lane-wise"));
  IRBlock c;
  IRBuilder ir(c);
  Value v = ir.constant(Type::V128, 0, 0);
  ir.vextract(Lane::I32, v, 4);
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(c), "lane index 4 out of range"));
  IRBlock d;
  IRBuilder ir2(d);
  ir2.binary(Opcode::Add, ir2.i64(1), ir2.i64(2), Lane::I32);
  ir2.jump(GuestAddr(0));
  CHECK(contains(reject(d), "lane-wise integer op needs v128"));
}

TEST_CASE("verifier: unused fields must be empty") {
  IRBlock b = base_block();
  b.ops[3].aux = 5;
  CHECK(contains(reject(b), "aux field must be 0"));
  IRBlock c = base_block();
  c.ops[3].imm = 5;
  CHECK(contains(reject(c), "imm field must be 0"));
  IRBlock d = base_block();
  d.ops[3].args[2] = 0;
  CHECK(contains(reject(d), "unused operand slot 2"));
}

TEST_CASE("verifier: constants must fit their type") {
  IRBlock b;
  IRBuilder ir(b);
  ir.constant(Type::I8, 0x100);
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(b), "does not fit in i8"));
}

TEST_CASE("verifier: loads and stores") {
  IRBlock b;
  IRBuilder ir(b);
  ir.load(Type::I64, ir.i32(0));
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(b), "address must be i64"));
  IRBlock c;
  IRBuilder ir2(c);
  ir2.load_ext(Type::I16, ir2.i64(0), Ext::Zero, 32);
  ir2.jump(GuestAddr(0));
  CHECK(contains(reject(c), "extending load"));
}

TEST_CASE("verifier: conversions need the right widths") {
  IRBlock b;
  IRBuilder ir(b);
  ir.zext(ir.i64(1), Type::I32);
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(b), "wider integer"));
  IRBlock c;
  IRBuilder ir2(c);
  ir2.bitcast(ir2.i64(1), Type::F32);
  ir2.jump(GuestAddr(0));
  CHECK(contains(reject(c), "equal width"));
}

TEST_CASE("verifier: shuffle selectors") {
  IRBlock b;
  IRBuilder ir(b);
  std::array<uint8_t, 16> mask{};
  mask[3] = 40;
  Value v = ir.constant(Type::V128, 0);
  ir.vshuffle(v, v, mask);
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(b), "selector 40 at byte 3"));
}

TEST_CASE("verifier: helpers") {
  IRBlock b;
  IRBuilder ir(b);
  ir.call_helper(Helper::Xgetbv);  // needs one argument
  ir.jump(GuestAddr(0));
  CHECK(contains(reject(b), "expects 1 operand"));
  IRBlock c = base_block();
  Op bad;
  bad.opcode = Opcode::CallHelper;
  bad.aux = 77;
  c.ops.push_back(bad);
  CHECK(contains(reject(c), "unknown helper id 77"));
}

TEST_CASE("verifier: terminator rules") {
  IRBlock none = base_block();
  none.term = Terminator{};
  CHECK(contains(reject(none), "no terminator"));
  IRBlock cond = base_block();
  cond.term.value = 0;  // an i64, not i1
  CHECK(contains(reject(cond), "branch condition"));
  IRBlock jmp = base_block();
  IRBuilder(jmp).indirect_jump(Value{2, Type::I64});
  CHECK(verify(jmp).has_value());
  jmp.term.target = GuestAddr(5);
  CHECK(contains(reject(jmp), "no static target"));
  IRBlock trap = base_block();
  IRBuilder(trap).trap(TrapReason::MemoryFault, GuestAddr(0x1000), "x");
  CHECK(contains(reject(trap), "only arises at run time"));
  IRBlock vec = base_block();
  IRBuilder(vec).trap(TrapReason::Breakpoint, GuestAddr(0x1000), "int3", 3);
  CHECK(contains(reject(vec), "only an interrupt trap has a vector"));
  IRBlock msg = base_block();
  msg.term.message = "stray";
  CHECK(contains(reject(msg), "trap fields"));
  IRBlock ft = base_block();
  IRBuilder(ft).jump(GuestAddr(0x10));
  ft.term.fallthrough = GuestAddr(0x20);
  CHECK(contains(reject(ft), "fallthrough"));
}

TEST_CASE("verifier never crashes on arbitrary field garbage") {
  std::mt19937_64 rng(1234);
  int rejected = 0;
  for (int i = 0; i < 5000; ++i) {
    IRBlock b = base_block();
    Op& op = b.ops[rng() % b.ops.size()];
    switch (rng() % 8) {
      case 0: op.opcode = static_cast<Opcode>(rng() % 256); break;
      case 1: op.type = static_cast<Type>(rng() % 256); break;
      case 2: op.lane = static_cast<Lane>(rng() % 256); break;
      case 3: op.nargs = static_cast<uint8_t>(rng() % 256); break;
      case 4: op.args[rng() % 3] = static_cast<ValueId>(rng()); break;
      case 5: op.result = static_cast<ValueId>(rng()); break;
      case 6: op.aux = static_cast<uint32_t>(rng()); break;
      default: b.term.kind = static_cast<TermKind>(rng() % 256); break;
    }
    if (!verify(b)) ++rejected;
  }
  CHECK(rejected > 4000);
}

TEST_CASE("builder infers result types") {
  IRBlock b;
  IRBuilder ir(b);
  Value x = ir.i32(5);
  CHECK(ir.cmp(CmpPred::Ult, x, x).type == Type::I1);
  CHECK(ir.zext(x, Type::I64).type == Type::I64);
  Value v = ir.constant(Type::V128, 1, 2);
  CHECK(ir.vextract(Lane::F64, v, 1).type == Type::F64);
  CHECK(ir.vmovmsk(Lane::I8, v).type == Type::I32);
  CHECK(ir.cmp(CmpPred::Eq, v, v, Lane::I16).type == Type::V128);
  CHECK(ir.call_helper(Helper::Rdtsc).type == Type::I64);
  CHECK_FALSE(ir.call_helper(Helper::Cpuid).valid());
  CHECK(ir.zext_or_trunc(x, Type::I32).id == x.id);
  ir.jump(GuestAddr(0));
  CHECK(verify(b).has_value());
  // Numbering continues after existing values.
  uint32_t before = b.value_count();
  IRBuilder again(b);
  Value next = again.i8(1);
  CHECK(next.id == before);
}

#include <fstream>
#include <sstream>

TEST_CASE("docs/ir.md covers every opcode and helper") {
  std::ifstream in(std::string(VM_SOURCE_DIR) + "/docs/ir.md");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  for (uint32_t i = 0; i < kNumOpcodes; ++i) {
    std::string name(opcode_info(static_cast<Opcode>(i)).name);
    INFO("opcode " << name << " is not documented in docs/ir.md");
    CHECK(doc.find("`" + name) != std::string::npos);
  }
  for (uint32_t i = 0; i < kNumHelpers; ++i) {
    std::string name(helper_info(static_cast<Helper>(i)).name);
    INFO("helper " << name << " is not documented in docs/ir.md");
    CHECK(doc.find("`" + name + "`") != std::string::npos);
  }
}
