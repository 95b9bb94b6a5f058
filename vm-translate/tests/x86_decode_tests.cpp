// Block formation and bad input: traps for undecodable and unsupported
// instructions, exact fetch-fault addresses, the size limit and the page
// policy of decode_block(), the coverage document, and the JSON state I/O.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "vm/ir/verifier.hpp"
#include "vm/translate/assembler.hpp"
#include "vm/translate/state_json.hpp"
#include "vm/translate/x86.hpp"

namespace vm::translate {
namespace {

using core::GuestAddr;

std::vector<uint8_t> asm_or_die(const char* text) {
  auto code = assemble_x86(text);
  REQUIRE_MESSAGE(code.has_value(), code.error().message);
  return *code;
}

core::RegionMemory memory_with(uint64_t base, std::vector<uint8_t> bytes, uint8_t perms = core::kPermRead | core::kPermExec) {
  core::RegionMemory mem;
  REQUIRE(mem.add_region(GuestAddr(base), std::move(bytes), perms).has_value());
  return mem;
}

}  // namespace

TEST_CASE("undecodable bytes lift to Trap(invalid_opcode) at their pc after the valid prefix of the block") {
  auto code = asm_or_die("mov eax, 1");
  code.push_back(0x06);  // push es: invalid in 64-bit mode
  auto mem = memory_with(0x1000, code);
  auto block = decode_block(mem, GuestAddr(0x1000));
  REQUIRE(block.has_value());
  REQUIRE(ir::verify(*block).has_value());
  CHECK(block->term.kind == ir::TermKind::Trap);
  CHECK(block->term.trap == ir::TrapReason::InvalidOpcode);
  CHECK(block->term.target == GuestAddr(0x1005));
  CHECK(block->term.message.find("0x1005") != std::string::npos);
  CHECK(block->term.message.find("06") != std::string::npos);

  core::X86State st;
  st.rip = 0x1000;
  RunResult r = run_interpreter(mem, st, GuestAddr(0x2000), 10);
  CHECK(r.reason == RunResult::Reason::Trap);
  CHECK(r.trap == ir::TrapReason::InvalidOpcode);
  CHECK(r.pc == GuestAddr(0x1005));
  CHECK(st.gpr[0] == 1);  // the instruction before the bad bytes ran
}

TEST_CASE("an unsupported instruction lifts to Trap(unsupported) naming mnemonic and address, and does not run") {
  struct Row {
    const char* text;
    const char* mnemonic;
    const char* note;
  };
  const Row rows[] = {{"fnsave [rsp]", "fnsave", "x87"},
                      {"vaddps ymm0, ymm1, ymm2", "vaddps", "VEX"},
                      {"mov ds, ax", "mov", ""},
                      {"paddb mm0, mm1", "paddb", ""}};
  for (const Row& row : rows) {
    auto code = asm_or_die((std::string("mov ecx, 7; ") + row.text).c_str());
    auto mem = memory_with(0x4000, code);
    auto block = decode_block(mem, GuestAddr(0x4000));
    REQUIRE(block.has_value());
    REQUIRE(ir::verify(*block).has_value());
    CHECK(block->term.kind == ir::TermKind::Trap);
    CHECK(block->term.trap == ir::TrapReason::Unsupported);
    CHECK(block->term.target == GuestAddr(0x4005));
    INFO(block->term.message);
    CHECK(block->term.message.find(std::string("'") + row.mnemonic + "'") != std::string::npos);
    CHECK(block->term.message.find("0x4005") != std::string::npos);
    CHECK(block->term.message.find(row.note) != std::string::npos);
    core::X86State st;
    st.rip = 0x4000;
    RunResult r = run_interpreter(mem, st, GuestAddr(0x5000), 10);
    CHECK(r.reason == RunResult::Reason::Trap);
    CHECK(r.pc == GuestAddr(0x4005));
    CHECK(st.gpr[1] == 7);
  }
}

TEST_CASE("fetching off mapped memory faults at the first byte that cannot be fetched") {
  auto movabs = asm_or_die("movabs rax, 0x1122334455667788");  // 10 bytes
  REQUIRE(movabs.size() == 10);
  SUBCASE("instruction straddling the end of the region") {
    auto mem = memory_with(0x1000, std::vector<uint8_t>(movabs.begin(), movabs.begin() + 4));
    auto block = decode_block(mem, GuestAddr(0x1000));
    REQUIRE_FALSE(block.has_value());
    CHECK(block.error().code == core::ErrorCode::GuestFault);
    REQUIRE(block.error().addr.has_value());
    CHECK(*block.error().addr == GuestAddr(0x1004));
  }
  SUBCASE("pc outside any region") {
    auto mem = memory_with(0x1000, movabs);
    auto block = decode_block(mem, GuestAddr(0x100a));
    REQUIRE_FALSE(block.has_value());
    CHECK(*block.error().addr == GuestAddr(0x100a));
  }
  SUBCASE("non-executable memory") {
    auto mem = memory_with(0x1000, movabs, core::kPermRW);
    auto block = decode_block(mem, GuestAddr(0x1000));
    REQUIRE_FALSE(block.has_value());
    CHECK(*block.error().addr == GuestAddr(0x1000));
  }
  SUBCASE("a later instruction that cannot be fetched ends the block before it; running reports the fault") {
    auto code = asm_or_die("nop");
    code.insert(code.end(), movabs.begin(), movabs.begin() + 5);
    auto mem = memory_with(0x1000, code);
    auto block = decode_block(mem, GuestAddr(0x1000));
    REQUIRE(block.has_value());
    CHECK(block->term.kind == ir::TermKind::Jump);
    CHECK(block->term.target == GuestAddr(0x1001));
    CHECK(block->guest_len == 1);
    core::X86State st;
    st.rip = 0x1000;
    RunResult r = run_interpreter(mem, st, GuestAddr(0x2000), 10);
    CHECK(r.reason == RunResult::Reason::Fault);
    CHECK(r.pc == GuestAddr(0x1001));
    REQUIRE(r.fault_addr.has_value());
    CHECK(*r.fault_addr == GuestAddr(0x1006));
  }
}

TEST_CASE("block size limit and page policy") {
  SUBCASE("at most max_insns instructions, then Jump to the next one") {
    auto mem = memory_with(0x1000, std::vector<uint8_t>(200, 0x90));
    auto block = decode_block(mem, GuestAddr(0x1000));
    REQUIRE(block.has_value());
    CHECK(block->guest_len == 64);
    CHECK(block->term.kind == ir::TermKind::Jump);
    CHECK(block->term.target == GuestAddr(0x1040));
    BlockOptions small;
    small.max_insns = 3;
    CHECK(decode_block(mem, GuestAddr(0x1000), small)->guest_len == 3);
  }
  SUBCASE("no instruction starting on the next page joins the block; a straddling one does") {
    auto movabs = asm_or_die("movabs rax, 0x1122334455667788");
    std::vector<uint8_t> code(0x10, 0x90);  // 0x1ff0..0x1fff
    code.erase(code.begin() + 12, code.end());  // nops up to 0x1ffc
    code.insert(code.end(), movabs.begin(), movabs.end());  // 0x1ffc..0x2006
    code.insert(code.end(), 16, 0x90);
    auto mem = memory_with(0x1ff0, code);
    auto block = decode_block(mem, GuestAddr(0x1ff0));
    REQUIRE(block.has_value());
    CHECK(block->guest_len == 0x16);  // ends after the straddling movabs at 0x2006
    CHECK(block->term.target == GuestAddr(0x2006));
  }
}

TEST_CASE("every lifter table row lifts blocks that verify, with each op after its insn marker") {
  const char* texts[] = {"add rax, qword ptr [rbx + rcx*4 + 8]", "rep movsb", "repne scasb", "lock cmpxchg16b xmmword ptr [rdi]",
                         "div rcx", "idiv byte ptr [rax]", "rcl word ptr [rax], cl", "shrd rax, rbx, cl", "cpuid", "rdtsc",
                         "syscall", "pushfq", "popfq", "bt qword ptr [rax], rcx", "xchg qword ptr [rax], rbx", "ret 8",
                         "call qword ptr [rip + 0x100]", "jmp rax", "1: loopne 1b", "int3", "int 0x80", "hlt", "ud2",
                         "lahf", "cmovbe eax, dword ptr fs:[rax]", "lea eax, [ebx + ecx]", "mov rax, qword ptr gs:[0x28]"};
  for (const char* t : texts) {
    auto code = asm_or_die(t);
    auto mem = memory_with(0x7000, code);
    auto block = decode_block(mem, GuestAddr(0x7000));
    REQUIRE(block.has_value());
    INFO(t);
    auto ok = ir::verify(*block);
    CHECK_MESSAGE(ok.has_value(), (ok ? std::string() : ok.error().message));
    REQUIRE_FALSE(block->ops.empty());
    CHECK(block->ops.front().opcode == ir::Opcode::InsnStart);
  }
}

TEST_CASE("cpuid reports the modelled CPU") {
  auto code = asm_or_die("mov eax, 1; cpuid");
  auto mem = memory_with(0x1000, code);
  core::X86State st;
  st.rip = 0x1000;
  REQUIRE(run_interpreter(mem, st, GuestAddr(0x1000 + code.size()), 10).reason == RunResult::Reason::Stop);
  uint32_t ecx = static_cast<uint32_t>(st.gpr[1]), edx = static_cast<uint32_t>(st.gpr[2]);
  CHECK((edx >> 25 & 1) == 1);  // SSE
  CHECK((edx >> 26 & 1) == 1);  // SSE2
  CHECK((ecx >> 23 & 1) == 1);  // POPCNT (lifted)
  CHECK((ecx >> 0 & 1) == 1);   // SSE3, SSSE3, SSE4.1: lifted and differentially tested
  CHECK((ecx >> 9 & 1) == 1);
  CHECK((ecx >> 19 & 1) == 1);
  CHECK((ecx >> 28 & 1) == 0);  // no AVX
  CHECK((ecx >> 27 & 1) == 0);  // no OSXSAVE, so xgetbv is not used
  CHECK((ecx >> 20 & 1) == 0);  // no SSE4.2
}

TEST_CASE("docs/x86-coverage.md is what the lifter tables generate") {
  // VM_UPDATE_GOLDEN=1 rewrites the file instead (same as `vm coverage --markdown`).
  if (const char* update = std::getenv("VM_UPDATE_GOLDEN"); update && std::string(update) == "1") {
    std::ofstream out(VM_SOURCE_DIR "/docs/x86-coverage.md");
    out << x86_coverage_markdown();
  }
  std::ifstream in(VM_SOURCE_DIR "/docs/x86-coverage.md");
  REQUIRE_MESSAGE(in.good(), "docs/x86-coverage.md is missing; run `vm coverage --markdown > docs/x86-coverage.md`");
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK_MESSAGE(ss.str() == x86_coverage_markdown(),
                "docs/x86-coverage.md is stale; regenerate it with `vm coverage --markdown > docs/x86-coverage.md`");
}

TEST_CASE("JSON state: round trip and clear errors") {
  const char* text = R"({
    "registers": {"rax": "0x10", "rsp": "0x8000", "xmm1": "0102030405060708090a0b0c0d0e0f10", "mxcsr": "0x1f80"},
    "flags": {"cf": 1, "zf": true},
    "memory": [{"address": "0x7000", "perms": "rw-", "bytes": "aabb"}, {"address": "0x9000", "size": "0x10"}]
  })";
  auto st = parse_state_json(text);
  REQUIRE_MESSAGE(st.has_value(), st.error().message);
  CHECK(st->regs.gpr[0] == 0x10);
  CHECK(st->regs.xmm[1].hi == 0x0102030405060708ull);
  CHECK(st->regs.xmm[1].lo == 0x090a0b0c0d0e0f10ull);
  CHECK(st->regs.cf == 1);
  CHECK(st->regs.zf == 1);
  REQUIRE(st->memory.regions().size() == 2);
  CHECK(st->memory.regions()[1].bytes.size() == 0x10);
  auto again = parse_state_json(state_to_json(*st, nullptr));
  REQUIRE(again.has_value());
  CHECK(again->regs == st->regs);
  CHECK(again->memory.regions()[0].bytes == st->memory.regions()[0].bytes);

  struct Bad {
    const char* json;
    const char* needle;
  };
  const Bad bad[] = {{"{", "state JSON"},
                     {R"({"registers": {"rqx": "0x1"}})", "unknown register 'rqx'"},
                     {R"({"registers": {"rax": "0xzz"}})", "not a hex value"},
                     {R"({"flags": {"cf": 2}})", "must be 0 or 1"},
                     {R"({"flags": {"if": 1}})", "unknown flag 'if'"},
                     {R"({"memory": [{"address": "0x1000", "size": "0x100"}, {"address": "0x1080", "size": "1"}]})", "overlaps"},
                     {R"({"memory": [{"address": "0x1000", "perms": "rwz", "size": "1"}]})", "permissions"},
                     {R"({"regs": {}})", "unknown key 'regs'"}};
  for (const Bad& b : bad) {
    auto r = parse_state_json(b.json);
    REQUIRE_FALSE(r.has_value());
    INFO(b.json, " -> ", r.error().message);
    CHECK(r.error().message.find(b.needle) != std::string::npos);
  }
}

}  // namespace vm::translate
