// Realistic lifted x86 code for JIT tests and benchmarks: random straight-
// line x86-64 integer code (ALU, flags consumers, shifts, multiplies, loads
// and stores relative to r15, setcc/cmov, lea, bswap) assembled with the
// project's assembler and lifted by the x86 frontend, the same path real
// guest code takes. Header-only; shared by vm_engine_tests and the benches.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "vm/core/memory.hpp"
#include "vm/translate/assembler.hpp"
#include "vm/translate/x86.hpp"

namespace vm::corpus {

inline constexpr uint64_t kCodeBase = 0x400000;   // page aligned: a block may use the whole page
inline constexpr uint64_t kDataBase = 0x10000;    // r15 points here
inline constexpr uint64_t kDataSize = 0x1000;
inline constexpr uint64_t kStackBase = 0x20000;
inline constexpr uint64_t kStackSize = 0x1000;

class X86TextGen {
public:
  explicit X86TextGen(uint64_t seed) : rng_(seed) {}

  uint64_t u(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  std::string reg(unsigned bits) {
    static const char* k64[] = {"rax", "rcx", "rdx", "rbx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "rbp"};
    static const char* k32[] = {"eax", "ecx", "edx", "ebx", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "ebp"};
    static const char* k16[] = {"ax", "cx", "dx", "bx", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "bp"};
    static const char* k8[] = {"al", "cl", "dl", "bl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "bpl"};
    size_t i = u(14);
    return bits == 64 ? k64[i] : bits == 32 ? k32[i] : bits == 16 ? k16[i] : k8[i];
  }
  static const char* ptr(unsigned bits) {
    return bits == 8 ? "byte ptr" : bits == 16 ? "word ptr" : bits == 32 ? "dword ptr" : "qword ptr";
  }
  std::string mem(unsigned bits) { return fmt::format("{} [r15 + {:#x}]", ptr(bits), u(0x7f) * 8); }
  unsigned width() {
    static constexpr unsigned kW[] = {8, 16, 32, 64, 64, 32};
    return kW[u(6)];
  }
  std::string imm(unsigned bits) {
    int64_t v = static_cast<int64_t>(rng_());
    if (bits == 8) return fmt::format("{}", static_cast<int8_t>(v));
    if (bits == 16) return fmt::format("{}", static_cast<int16_t>(v));
    return fmt::format("{}", static_cast<int32_t>(v % 100000));
  }

  // Control flow, stack, string and locked instructions (need rsp in the
  // stack region; most of them end the lifted block).
  std::string extended_insn(bool stack = true) {
    static const char* kCc[] = {"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"};
    static const char* kLock[] = {"add", "sub", "and", "or", "xor"};
    static const char* kStr[] = {"movs", "stos", "lods", "cmps", "scas"};
    static const char* kSfx[] = {"b", "w", "d", "q"};
    unsigned w = width();
    uint64_t pick = u(8);
    if (!stack && (pick == 0 || pick == 6)) pick = 4;  // no push/call without a stack: a string op instead
    switch (pick) {
      case 0: return fmt::format("push {}; pop {}", reg(64), u(2) ? reg(64) : mem(64));
      case 1: return fmt::format("lock {} {}, {}", kLock[u(5)], mem(w), reg(w));
      case 2: return u(2) ? fmt::format("lock xadd {}, {}", mem(w), reg(w)) : fmt::format("lock cmpxchg {}, {}", mem(w), reg(w));
      case 3: return fmt::format("xchg {}, {}", mem(w), reg(w));
      case 4: {
        const char* op = kStr[u(5)];
        bool cmp = op[0] == 'c' || (op[0] == 's' && op[1] == 'c');
        const char* rep = u(3) == 0 ? "" : cmp ? (u(2) ? "repe " : "repne ") : "rep ";
        return fmt::format("lea rsi, [r15 + {:#x}]; lea rdi, [r15 + {:#x}]; mov ecx, {}; {}; {}{}{}", 0x400 + u(0x100),
                           0x800 + u(0x100), u(6), u(2) ? "std" : "cld", rep, op, kSfx[u(4)]);
      }
      case 5: return fmt::format("cmp {}, {}; j{} 1f; mov {}, {}; 1:", reg(w), reg(w), kCc[u(16)], reg(32), imm(32));
      case 6: return fmt::format("call 1f; 1: pop {}", reg(64));
      default: return fmt::format("mov ecx, {}; 1: add rdx, rbx; loop 1b", 1 + u(4));
    }
  }

  // One instruction (sometimes a short idiom); `memory` allows r15-relative operands.
  std::string insn(bool memory = true, bool division = true) {
    static const char* kAlu[] = {"add", "adc", "sub", "sbb", "cmp", "and", "or", "xor", "test"};
    static const char* kShift[] = {"shl", "shr", "sar", "rol", "ror"};
    static const char* kCc[] = {"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"};
    unsigned w = width();
    auto rm = [&](unsigned bits) { return memory && u(4) == 0 ? mem(bits) : reg(bits); };
    switch (u(division ? 14 : 13)) {
      case 0: case 1: case 2: case 3: {
        const char* op = kAlu[u(9)];
        switch (u(3)) {
          case 0: return fmt::format("{} {}, {}", op, rm(w), reg(w));
          case 1: return fmt::format("{} {}, {}", op, reg(w), rm(w));
          default: return fmt::format("{} {}, {}", op, rm(w), imm(w));
        }
      }
      case 4: {
        static const char* kUnary[] = {"inc", "dec", "neg", "not"};
        return fmt::format("{} {}", kUnary[u(4)], rm(w));
      }
      case 5: return fmt::format("{} {}, {}", kShift[u(5)], reg(w), u(2) ? fmt::format("{}", u(w)) : std::string("cl"));
      case 6: {
        if (w == 8) w = 32;
        return u(2) ? fmt::format("imul {}, {}", reg(w), rm(w)) : fmt::format("imul {}, {}, {}", reg(w), reg(w), imm(w == 16 ? 16 : 32));
      }
      case 7: return fmt::format("set{} {}", kCc[u(16)], rm(8));
      case 8: {
        if (w == 8) w = 64;
        return fmt::format("cmov{} {}, {}", kCc[u(16)], reg(w), rm(w));
      }
      case 9: {
        switch (u(4)) {
          case 0: return fmt::format("mov {}, {}", rm(w), reg(w));
          case 1: return fmt::format("mov {}, {}", reg(w), rm(w));
          case 2: return fmt::format("movzx {}, {}", reg(u(2) ? 32 : 64), rm(u(2) ? 8 : 16));
          default: return fmt::format("movsx {}, {}", reg(u(2) ? 32 : 64), rm(u(2) ? 8 : 16));
        }
      }
      case 10: return fmt::format("lea {}, [{} + {}*{} + {}]", reg(64), reg(64), reg(64), 1u << u(4), static_cast<int32_t>(rng_() % 4096));
      case 11: return fmt::format("bswap {}", reg(u(2) ? 32 : 64));
      case 12: return u(2) ? fmt::format("mul {}", reg(w == 8 ? 64 : w)) : fmt::format("imul {}", reg(w == 8 ? 32 : w));
      default: {
        // Division with a divisor that may be zero: both engines must report #DE alike.
        if (w == 8) w = 32;
        std::string d = reg(w);
        if (d.find("ax") != std::string::npos || d.find("dx") != std::string::npos) return "xor edx, edx";
        return fmt::format("xor edx, edx; {} {}", u(2) ? "div" : "idiv", d);
      }
    }
  }

  std::string sequence(uint32_t n, bool memory = true, bool division = true, bool extended = false,
                       bool stack = true) {
    std::string s;
    for (uint32_t i = 0; i < n; ++i) {
      if (i) s += "; ";
      s += extended && u(6) == 0 ? extended_insn(stack) : insn(memory, division);
    }
    return s;
  }

private:
  std::mt19937_64 rng_;
};

// Guest memory for a corpus program: code (filled with hlt after the
// program), data at r15 and a small stack.
inline core::Result<core::RegionMemory> make_memory(const std::vector<uint8_t>& code, std::mt19937_64& rng) {
  core::RegionMemory m;
  std::vector<uint8_t> page(0x2000, 0xf4);
  std::copy(code.begin(), code.end(), page.begin());
  if (auto r = m.add_region(core::GuestAddr(kCodeBase), std::move(page), core::kPermRWX); !r) return std::unexpected(r.error());
  std::vector<uint8_t> data(kDataSize);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  if (auto r = m.add_region(core::GuestAddr(kDataBase), std::move(data), core::kPermRW); !r) return std::unexpected(r.error());
  if (auto r = m.add_region(core::GuestAddr(kStackBase), kStackSize, core::kPermRW); !r) return std::unexpected(r.error());
  return m;
}

// Assembles and lifts `n` instructions into one block (max_insns raised so
// long sequences stay one block).
inline core::Result<ir::IRBlock> lifted_block(X86TextGen& gen, uint32_t n, std::mt19937_64& rng, bool memory = true,
                                              bool division = true) {
  auto code = translate::assemble_x86(gen.sequence(n, memory, division));
  if (!code) return std::unexpected(code.error());
  auto mem = make_memory(*code, rng);
  if (!mem) return std::unexpected(mem.error());
  translate::BlockOptions bo;
  bo.max_insns = n + 1;
  return translate::decode_block(*mem, core::GuestAddr(kCodeBase), bo);
}

}  // namespace vm::corpus
