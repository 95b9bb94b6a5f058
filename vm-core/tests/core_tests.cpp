#include <doctest/doctest.h>

#include <cstring>
#include <unordered_set>

#include "vm/core/arch.hpp"
#include "vm/core/error.hpp"
#include "vm/core/log.hpp"
#include "vm/core/memory.hpp"
#include "vm/core/x86_state.hpp"

using namespace vm::core;

TEST_CASE("GuestAddr arithmetic, comparison, alignment and formatting") {
  GuestAddr a(0x1000);
  CHECK((a + 0x10).value() == 0x1010);
  CHECK((a - 1).value() == 0xfff);
  CHECK(GuestAddr(0x1010) - a == 0x10);
  CHECK(a < GuestAddr(0x1001));
  CHECK(GuestAddr(0x1234).align_down(0x1000) == a);
  CHECK(GuestAddr(0x1001).align_up(0x1000) == GuestAddr(0x2000));
  CHECK(a.is_aligned(0x1000));
  CHECK_FALSE(GuestAddr(0x1001).is_aligned(2));
  CHECK(fmt::format("{:#x}", a) == "0x1000");
  CHECK(fmt::format("{:08x}", a) == "00001000");
  // Wrapping arithmetic, like the guest's own.
  CHECK((GuestAddr(~0ULL) + 1).value() == 0);
  std::unordered_set<GuestAddr> set{a, a + 0x1000, a};
  CHECK(set.size() == 2);
}

TEST_CASE("Arch names round-trip") {
  for (Arch a : {Arch::X86_64, Arch::AArch64, Arch::RiscV64}) CHECK(parse_arch(arch_name(a)) == a);
  CHECK_FALSE(parse_arch("mips").has_value());
}

TEST_CASE("Error carries code, message and address") {
  Result<int> r = fail(ErrorCode::GuestFault, "write to read-only page", GuestAddr(0x4000));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == ErrorCode::GuestFault);
  CHECK(r.error().to_string() == "guest fault at 0x4000: write to read-only page");
  Result<int> p = failf(ErrorCode::Parse, "bad token '{}'", "x");
  CHECK(fmt::format("{}", p.error()) == "parse error: bad token 'x'");
}

TEST_CASE("X86State table is consistent with the struct") {
  CHECK(kNumX86Regs == 16 + 1 + 7 + 2 + 16 + 2 + 2 + 8);
  CHECK(reg_info(X86Reg::Rax).offset == 0);
  CHECK(reg_info(X86Reg::R15).offset == 15 * 8);
  CHECK(reg_info(X86Reg::Rip).offset == offsetof(X86State, rip));
  CHECK(reg_info(X86Reg::Xmm3).offset == offsetof(X86State, xmm) + 3 * 16);
  CHECK(reg_info(X86Reg::Zf).kind == RegKind::Flag);
  CHECK(find_reg("r11") == X86Reg::R11);
  CHECK(find_reg("xmm15") == X86Reg::Xmm15);
  CHECK_FALSE(find_reg("eax").has_value());
  CHECK(gpr(4) == X86Reg::Rsp);
  // Registers never overlap and all lie inside the struct.
  for (uint32_t i = 0; i < kNumX86Regs; ++i) {
    CHECK(kX86Regs[i].offset + kX86Regs[i].size <= sizeof(X86State));
    for (uint32_t j = i + 1; j < kNumX86Regs; ++j) {
      bool disjoint = kX86Regs[i].offset + kX86Regs[i].size <= kX86Regs[j].offset ||
                      kX86Regs[j].offset + kX86Regs[j].size <= kX86Regs[i].offset;
      CHECK(disjoint);
    }
  }
  X86State s;
  *reinterpret_cast<uint64_t*>(reg_ptr(s, X86Reg::Rbx)) = 42;
  CHECK(s.gpr[3] == 42);
}

TEST_CASE("rflags packs and unpacks the modelled flags") {
  X86State s;
  CHECK(get_rflags(s) == 0x202);
  set_rflags(s, 0x8d5 | 0x400);
  CHECK(s.cf == 1);
  CHECK(s.pf == 1);
  CHECK(s.af == 1);
  CHECK(s.zf == 1);
  CHECK(s.sf == 1);
  CHECK(s.df == 1);
  CHECK(s.of == 1);
  CHECK(get_rflags(s) == (0x8d5 | 0x400 | 0x202));
}

TEST_CASE("RegionMemory checks bounds and permissions") {
  RegionMemory mem;
  REQUIRE(mem.add_region(GuestAddr(0x1000), 0x1000, kPermRW).has_value());
  REQUIRE(mem.add_region(GuestAddr(0x2000), std::vector<uint8_t>{0x90, 0xc3}, kPermRead | kPermExec).has_value());
  auto overlap = mem.add_region(GuestAddr(0x1800), 0x100, kPermRW);
  REQUIRE_FALSE(overlap.has_value());
  CHECK(overlap.error().code == ErrorCode::AlreadyExists);
  CHECK_FALSE(mem.add_region(GuestAddr(0x9000), 0, kPermRW).has_value());
  CHECK_FALSE(mem.add_region(GuestAddr(~0ULL - 4), 16, kPermRW).has_value());

  uint8_t buf[4] = {1, 2, 3, 4};
  CHECK(mem.write(GuestAddr(0x1ffe), buf).error().addr == GuestAddr(0x2000));  // crosses into read-only
  uint8_t back[2];
  REQUIRE(mem.read(GuestAddr(0x1ffe), back).has_value());
  CHECK(back[0] == 0);  // the failed write had no partial effect
  uint8_t code[2];
  REQUIRE(mem.read(GuestAddr(0x1fff), code).has_value());  // read across regions works
  CHECK(code[1] == 0x90);
  CHECK(mem.fetch(GuestAddr(0x2000), code).has_value());
  auto nx = mem.fetch(GuestAddr(0x1000), code);
  REQUIRE_FALSE(nx.has_value());
  CHECK(nx.error().message.find("fetch") != std::string::npos);
  auto unmapped = mem.read(GuestAddr(0x2001), back);
  REQUIRE_FALSE(unmapped.has_value());
  CHECK(unmapped.error().addr == GuestAddr(0x2002));
}

TEST_CASE("logger is quiet by default and configurable") {
  set_log_level("off");
  CHECK(logger().level() == spdlog::level::off);
  set_log_level("debug");
  CHECK(logger().level() == spdlog::level::debug);
  set_log_level("nonsense");
  CHECK(logger().level() == spdlog::level::warn);
}
