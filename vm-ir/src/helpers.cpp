// Reference implementations of the runtime helpers (see VM_IR_HELPERS).
// cpuid describes the modelled CPU: it advertises only what the translator
// implements, so guest libraries pick code paths we support.
#include <x86intrin.h>

#include "vm/ir/interpreter.hpp"

namespace vm::ir {
namespace {

void set32(core::X86State* s, X86Reg r, uint32_t v) { s->gpr[static_cast<int>(r)] = v; }

uint64_t helper_cpuid(core::X86State* s, uint64_t, uint64_t, uint64_t) {
  uint32_t leaf = static_cast<uint32_t>(s->gpr[0]);
  uint32_t a = 0, b = 0, c = 0, d = 0;
  switch (leaf) {
    case 0:  // max basic leaf, vendor "GenuineIntel"
      a = 1;
      b = 0x756e6547;
      d = 0x49656e69;
      c = 0x6c65746e;
      break;
    case 1:
      a = 0x000306a9;  // family 6
      // edx: fpu tsc cx8 cmov fxsr sse sse2; ecx: sse3 ssse3 cx16 sse4.1 popcnt
      d = (1u << 0) | (1u << 4) | (1u << 8) | (1u << 15) | (1u << 24) | (1u << 25) | (1u << 26);
      c = (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 23);
      break;
    default: break;
  }
  set32(s, X86Reg::Rax, a);
  set32(s, X86Reg::Rbx, b);
  set32(s, X86Reg::Rcx, c);
  set32(s, X86Reg::Rdx, d);
  return 0;
}

uint64_t helper_rdtsc(core::X86State*, uint64_t, uint64_t, uint64_t) { return __rdtsc(); }
uint64_t helper_rdtscp(core::X86State* s, uint64_t, uint64_t, uint64_t) {
  s->gpr[static_cast<int>(X86Reg::Rcx)] = 0;  // TSC_AUX: processor id 0
  return __rdtsc();
}
uint64_t helper_xgetbv(core::X86State*, uint64_t, uint64_t, uint64_t) { return 0x3; }  // x87 + SSE state

}  // namespace

const HelperTable& HelperTable::defaults() {
  static const HelperTable table = [] {
    HelperTable t;
    t.fns[static_cast<size_t>(Helper::Cpuid)] = helper_cpuid;
    t.fns[static_cast<size_t>(Helper::Rdtsc)] = helper_rdtsc;
    t.fns[static_cast<size_t>(Helper::Rdtscp)] = helper_rdtscp;
    t.fns[static_cast<size_t>(Helper::Xgetbv)] = helper_xgetbv;
    return t;
  }();
  return table;
}

}  // namespace vm::ir
