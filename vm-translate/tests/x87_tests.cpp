// x87 tests with the host CPU as the oracle: each program runs on our
// frontend + interpreter and natively in a forked child (x86_native.cpp
// loads and saves the whole x87 state with fxrstor/fxsave), and the final
// registers, x87 state, flags and memory must be identical. The sweeps run
// every arithmetic form over all pairs of a value list that covers signed
// zeros, denormals, infinities, NaN and values that round differently,
// under every rounding and precision control setting; the sequences cover
// stack overflow/underflow, tags, exchange, environment and control words.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <string>
#include <vector>

#include "vm/translate/assembler.hpp"
#include "x86_machine.hpp"

namespace vm::translate::test {
namespace {

// Data layout (rbx = kDataBase): doubles at +0, their float roundings at
// +0x100, 32-bit integers at +0x180, results from +0x400.
constexpr uint64_t kDoubles = 0, kFloats = 0x100, kInts = 0x180, kCwSlot = 0x1f0, kOut = 0x400;

const std::vector<double>& values() {
  static const std::vector<double> v = {0.0,   -0.0,     1.0,    -1.5,     3.0,   1.0 / 3.0,
                                        1e300, -1e-300,  5e-324, 1e308,    -7.25, 123456789.75,
                                        0.5,   9.2e18,   std::bit_cast<double>(0x7ff0000000000000ull),
                                        std::bit_cast<double>(0xfff8000000000001ull)};
  return v;
}
constexpr int32_t kIntValues[] = {0, 1, -1, 7, -32768, 65535, 2147483647, -2147483647 - 1};

Machine make_machine(uint16_t cw) {
  Machine m;
  m.regs.gpr[3] = kDataBase;  // rbx
  const auto& v = values();
  for (size_t i = 0; i < v.size(); ++i) {
    std::memcpy(m.data.data() + kDoubles + 8 * i, &v[i], 8);
    float f = static_cast<float>(v[i]);
    std::memcpy(m.data.data() + kFloats + 4 * i, &f, 4);
  }
  std::memcpy(m.data.data() + kInts, kIntValues, sizeof kIntValues);
  std::memcpy(m.data.data() + kCwSlot, &cw, 2);
  return m;
}

// Runs `text` (prefixed with fldcw from kCwSlot) both ways and compares.
void check_program(const std::string& text, uint16_t cw, const std::string& label) {
  auto code = assemble_x86(fmt::format("fldcw word ptr [rbx + {:#x}]\n", kCwSlot) + text);
  REQUIRE_MESSAGE(code.has_value(), label);
  REQUIRE_MESSAGE(code->size() < kCodeSize - 0x400, label);  // room for the native epilogue
  Machine ours = make_machine(cw), native = make_machine(cw);
  Outcome o1 = run_ours(*code, ours);
  Outcome o2 = run_native(*code, native);
  INFO(label << fmt::format(" cw={:#x}", cw));
  CHECK_MESSAGE(o1.completed, "ours stopped at " << fmt::format("{:#x}", o1.pc) << ": " << o1.what);
  CHECK_MESSAGE(o2.completed, o2.what);
  std::string diff = compare(ours, native);
  CHECK_MESSAGE(diff.empty(), diff);
}

// Every rounding control x precision control combination, exceptions masked.
std::vector<uint16_t> control_words() {
  std::vector<uint16_t> out;
  for (uint16_t rc = 0; rc < 4; ++rc)
    for (uint16_t pc : {0, 2, 3}) out.push_back(static_cast<uint16_t>(0x3f | pc << 8 | rc << 10));
  return out;
}

// One program per form: for every pair (a, b) load a then b, apply `op`,
// store st(0) as m80 and the status word, and empty the stack again.
std::string pairs_program(const std::string& op, int pops_after, bool b_from_memory, bool b_is_float) {
  std::string s;
  const size_t n = values().size();
  uint64_t out = kOut;
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = 0; b < n; ++b) {
      s += fmt::format("fld qword ptr [rbx + {:#x}]\n", kDoubles + 8 * a);
      std::string operand = b_is_float ? fmt::format("dword ptr [rbx + {:#x}]", kFloats + 4 * b)
                                       : fmt::format("qword ptr [rbx + {:#x}]", kDoubles + 8 * b);
      if (b_from_memory) {
        s += fmt::format("{} {}\n", op, operand);
      } else {
        s += fmt::format("fld qword ptr [rbx + {:#x}]\n{}\n", kDoubles + 8 * b, op);
      }
      s += fmt::format("fnstsw word ptr [rbx + {:#x}]\n", out + 10);
      s += fmt::format("fstp tbyte ptr [rbx + {:#x}]\n", out);
      for (int k = 0; k < pops_after; ++k) s += "fstp st(0)\n";
      out += 12;
    }
  }
  return s;
}

TEST_CASE("x87 arithmetic, register forms, all pairs, every control word") {
  // st(0) = b, st(1) = a after the loads.
  const struct {
    const char* op;
    int pops;
  } kForms[] = {
      {"fadd st(0), st(1)", 1},  {"fsub st(0), st(1)", 1},  {"fsubr st(0), st(1)", 1}, {"fmul st(0), st(1)", 1},
      {"fdiv st(0), st(1)", 1},  {"fdivr st(0), st(1)", 1}, {"fadd st(1), st(0)", 1},  {"fsub st(1), st(0)", 1},
      {"fsubr st(1), st(0)", 1}, {"fdiv st(1), st(0)", 1},  {"fdivr st(1), st(0)", 1}, {"faddp st(1), st(0)", 0},
      {"fsubp st(1), st(0)", 0}, {"fsubrp st(1), st(0)", 0}, {"fmulp st(1), st(0)", 0}, {"fdivp st(1), st(0)", 0},
      {"fdivrp st(1), st(0)", 0}, {"fprem", 1}, {"fprem1", 1}, {"fscale", 1}, {"fxch st(1)", 1},
  };
  for (const auto& f : kForms)
    for (uint16_t cw : control_words()) check_program(pairs_program(f.op, f.pops, false, false), cw, f.op);
}

TEST_CASE("x87 arithmetic, memory forms") {
  for (const char* op : {"fadd", "fsub", "fsubr", "fmul", "fdiv", "fdivr"}) {
    for (uint16_t cw : {uint16_t{0x37f}, uint16_t{0x7f}, uint16_t{0xf7f}}) {
      check_program(pairs_program(op, 0, true, false), cw, std::string(op) + " m64");
      check_program(pairs_program(op, 0, true, true), cw, std::string(op) + " m32");
    }
  }
}

TEST_CASE("x87 compares set C0..C3 and EFLAGS like the host") {
  const struct {
    const char* op;
    int pops;
  } kForms[] = {
      {"fcom st(1)", 1}, {"fcomp st(1)", 0}, {"fucom st(1)", 1}, {"fucomp st(1)", 0},
      {"fcomi st(0), st(1)", 1}, {"fucomi st(0), st(1)", 1}, {"fcomip st(0), st(1)", 0}, {"fucomip st(0), st(1)", 0},
  };
  for (const auto& f : kForms) {
    // The flags of the last pair are compared by the state comparison; each
    // pair's flags are stored too.
    std::string prog = pairs_program(f.op, f.pops, false, false);
    std::string with_flags;
    size_t pos = 0, k = 0;
    const std::string marker = std::string(f.op) + "\n";
    while (true) {
      size_t at = prog.find(marker, pos);
      if (at == std::string::npos) break;
      with_flags += prog.substr(pos, at + marker.size() - pos);
      with_flags += fmt::format("pushfq\npop rax\nmov qword ptr [rbx + {:#x}], rax\n", 0x1000 + 8 * k++);
      pos = at + marker.size();
    }
    with_flags += prog.substr(pos);
    check_program(with_flags, 0x37f, f.op);
  }
  check_program(pairs_program("fcompp\nfld1", 0, false, false), 0x37f, "fcompp");
  check_program(pairs_program("fucompp\nfldz", 0, false, false), 0x37f, "fucompp");
  check_program(pairs_program("fcom", 0, true, false), 0x37f, "fcom m64");
  check_program(pairs_program("fcomp", 0, true, true) , 0x37f, "fcomp m32");
}

TEST_CASE("x87 unary operations over every value and control word") {
  for (const char* op : {"fchs", "fabs", "fsqrt", "frndint", "ftst", "fxam", "f2xm1", "fsin", "fcos"}) {
    for (uint16_t cw : control_words()) {
      std::string s;
      uint64_t out = kOut;
      for (size_t a = 0; a < values().size(); ++a, out += 12)
        s += fmt::format("fld qword ptr [rbx + {:#x}]\n{}\nfnstsw word ptr [rbx + {:#x}]\nfstp tbyte ptr [rbx + {:#x}]\n",
                         kDoubles + 8 * a, op, out + 10, out);
      check_program(s, cw, op);
    }
  }
  // Two results.
  for (const char* op : {"fxtract", "fptan", "fsincos"}) {
    std::string s;
    uint64_t out = kOut;
    for (size_t a = 0; a < values().size(); ++a, out += 24)
      s += fmt::format("fld qword ptr [rbx + {:#x}]\n{}\nfstp tbyte ptr [rbx + {:#x}]\nfstp tbyte ptr [rbx + {:#x}]\n",
                       kDoubles + 8 * a, op, out, out + 12);
    check_program(s, 0x37f, op);
  }
}

TEST_CASE("x87 loads and stores of every format, every rounding mode") {
  for (uint16_t cw : control_words()) {
    std::string s;
    uint64_t out = kOut;
    for (size_t a = 0; a < values().size(); ++a, out += 48) {
      s += fmt::format("fld qword ptr [rbx + {:#x}]\n", kDoubles + 8 * a);
      s += fmt::format("fld1\nfdivr st(0), st(1)\n");  // a value that needs rounding for every a
      s += fmt::format("fst dword ptr [rbx + {:#x}]\nfst qword ptr [rbx + {:#x}]\n", out, out + 4);
      s += fmt::format("fist word ptr [rbx + {:#x}]\nfist dword ptr [rbx + {:#x}]\n", out + 12, out + 14);
      s += fmt::format("fld st(0)\nfistp qword ptr [rbx + {:#x}]\n", out + 18);
      s += fmt::format("fld st(0)\nfisttp word ptr [rbx + {:#x}]\n", out + 26);
      s += fmt::format("fld st(0)\nfisttp dword ptr [rbx + {:#x}]\n", out + 28);
      s += fmt::format("fld st(0)\nfisttp qword ptr [rbx + {:#x}]\n", out + 32);
      s += fmt::format("fld st(1)\nfistp dword ptr [rbx + {:#x}]\nfistp word ptr [rbx + {:#x}]\n", out + 40, out + 44);
      s += fmt::format("fstp dword ptr [rbx + {:#x}]\nfnstsw word ptr [rbx + {:#x}]\n", out + 46 - 2, out + 46);
      s += fmt::format("fld dword ptr [rbx + {:#x}]\nfld tbyte ptr [rbx + {:#x}]\nfstp st(1)\nfstp st(0)\n",
                       kFloats + 4 * a, kOut);
    }
    for (size_t i = 0; i < std::size(kIntValues); ++i, out += 32) {
      s += fmt::format("fild dword ptr [rbx + {:#x}]\nfild word ptr [rbx + {:#x}]\nfild qword ptr [rbx + {:#x}]\n",
                       kInts + 4 * i, kInts + 4 * i, kDoubles + 8 * i);
      s += fmt::format("fiadd dword ptr [rbx + {:#x}]\nfimul word ptr [rbx + {:#x}]\nfisub dword ptr [rbx + {:#x}]\n",
                       kInts + 4 * i, kInts + 4 * i, kInts);
      s += fmt::format("fidivr dword ptr [rbx + {:#x}]\nficom dword ptr [rbx + {:#x}]\nficomp word ptr [rbx + {:#x}]\n",
                       kInts + 4 * i, kInts + 4, kInts + 4 * i);
      s += fmt::format("fnstsw ax\nmov word ptr [rbx + {:#x}], ax\n", out);
      s += fmt::format("fstp tbyte ptr [rbx + {:#x}]\nfstp tbyte ptr [rbx + {:#x}]\n", out + 2, out + 12);
    }
    check_program(s, cw, "loads and stores");
  }
}

TEST_CASE("x87 constants, stack management, tags, conditional moves") {
  check_program("fld1\nfldl2t\nfldl2e\nfldpi\nfldlg2\nfldln2\nfldz\nfld st(3)\n", 0x37f, "constants");
  // Nine pushes: the ninth overflows (masked: QNaN indefinite, C1 = 1).
  check_program("fld1\nfld1\nfld1\nfld1\nfld1\nfld1\nfld1\nfld1\nfldpi\nfnstsw ax\n", 0x37f, "overflow");
  // Underflow: arithmetic and stores on an empty stack.
  check_program("fadd st(0), st(3)\nfnstsw ax\nfst qword ptr [rbx + 0x400]\nfistp dword ptr [rbx + 0x410]\n", 0x37f,
                "underflow");
  check_program("fld1\nfldpi\nfxch st(1)\nffree st(1)\nfincstp\nfdecstp\nfdecstp\nfld qword ptr [rbx]\n", 0x37f,
                "ffree, fincstp, fdecstp");
  check_program("fld1\nfldpi\nffreep st(0)\nfld qword ptr [rbx + 8]\nfstp st(3)\nfst st(2)\n", 0x37f, "ffreep, fst st(i)");
  check_program("fld1\nfld1\nfdiv st(0), st(2)\nfnclex\nfnstsw ax\nfninit\nfld1\n", 0x37f, "fnclex, fninit");
  for (const char* cc : {"b", "e", "be", "u", "nb", "ne", "nbe", "nu"}) {
    for (const char* setup : {"xor eax, eax", "stc", "mov eax, 0xffffffff\nadd eax, 1", "fld qword ptr [rbx + 0x78]\nfucomip st(0), st(0)"}) {
      check_program(fmt::format("fldpi\nfld1\n{}\nfcmov{} st(0), st(1)\n", setup, cc), 0x37f,
                    fmt::format("fcmov{} after {}", cc, setup));
    }
  }
}

TEST_CASE("x87 control, status and environment words") {
  check_program("fnstcw word ptr [rbx + 0x400]\nfld1\nfldz\nfdiv st(1), st(0)\nfnstsw word ptr [rbx + 0x402]\n"
                "fnstsw ax\n",
                0x37f, "fnstcw, fnstsw");
  check_program("mov word ptr [rbx + 0x400], 0xc7f\nfldcw word ptr [rbx + 0x400]\nfld qword ptr [rbx + 0x28]\n"
                "frndint\nfnstcw word ptr [rbx + 0x402]\n",
                0x37f, "fldcw");
  // fnstenv then fldenv; the instruction/operand pointer fields differ
  // between the host and us by design and are cleared before comparing.
  check_program("fld1\nfldpi\nfdiv st(0), st(3)\nfnstenv [rbx + 0x400]\nmov dword ptr [rbx + 0x40c], 0\n"
                "mov dword ptr [rbx + 0x410], 0\nmov dword ptr [rbx + 0x414], 0\nmov dword ptr [rbx + 0x418], 0\n"
                "fnstcw word ptr [rbx + 0x420]\nfninit\nfldenv [rbx + 0x400]\nfnstsw ax\nfld1\n",
                0x27f, "fnstenv, fldenv");
}

TEST_CASE("fxsave and fxrstor carry the x87 state") {
  // The pointer fields (FOP, FIP, FDP) and MXCSR_MASK are host-specific and
  // cleared before comparing.
  std::string clear;
  for (unsigned base : {0x800, 0xa00})
    clear += fmt::format("mov word ptr [rbx + {0:#x}], 0\nmov qword ptr [rbx + {1:#x}], 0\nmov qword ptr [rbx + {2:#x}], 0\n"
                         "mov dword ptr [rbx + {3:#x}], 0\n",
                         base + 6, base + 8, base + 16, base + 28);
  check_program(fmt::format("fld1\nfldpi\nfld qword ptr [rbx + 0x28]\nfincstp\nfdiv st(0), st(4)\nfxsave [rbx + 0x800]\n{}",
                            clear),
                0x37f, "fxsave");
  // Save a state, change everything, restore it, and use it.
  check_program(fmt::format("fldpi\nfld qword ptr [rbx + 0x18]\nfld qword ptr [rbx + 0x28]\nfxsave [rbx + 0x800]\n"
                            "fninit\nfldz\nfld1\nfxrstor [rbx + 0x800]\nfaddp st(1), st(0)\nfxch st(1)\n"
                            "fstp tbyte ptr [rbx + 0x400]\nfxsave64 [rbx + 0xa00]\nfxrstor64 [rbx + 0x800]\n{}",
                            clear),
                0x37f, "fxrstor");
}

TEST_CASE("x87 store to an unmapped address faults before any state change") {
  auto code = assemble_x86("fld1\nfldpi\nfstp qword ptr [rbx]\n");
  REQUIRE(code.has_value());
  Machine m = make_machine(0x37f);
  m.regs.gpr[3] = 0x10;  // unmapped
  Outcome o = run_ours(*code, m);
  CHECK_FALSE(o.completed);
  CHECK(o.pc == kCodeBase + 4);  // fld1 (2) + fldpi (2); the fstp faults
  // Both loads happened, the pop of the faulting fstp did not.
  CHECK(((m.regs.fpu_sw >> 11) & 7) == 6);
  CHECK(m.regs.fpu_tag == 0xc0);
}

}  // namespace
}  // namespace vm::translate::test
