// Reference implementations of the runtime helpers (see VM_IR_HELPERS).
//
// cpuid describes the modelled CPU. It advertises exactly the instruction
// set the x86 frontend lifts (docs/x86-coverage.md), so guest libraries that
// dispatch on cpuid (glibc's ifuncs, musl, compiler runtimes) pick code
// paths we support: the x86-64 baseline (CMOV, CX8, FXSR, SSE, SSE2,
// SYSCALL, NX, LM), SSE3, SSSE3, SSE4.1, CX16, POPCNT, LZCNT and LAHF/SAHF
// in 64-bit mode. It does not advertise x87-dependent extensions beyond the
// architectural FPU bit, MMX, SSE4.2 and later SIMD, AVX, XSAVE/OSXSAVE (so
// xgetbv is not used), BMI, or ERMS. Unknown leaves read as zero.
#include <x86intrin.h>

#include "vm/ir/interpreter.hpp"
#include "vm/ir/x87.hpp"

namespace vm::ir {
namespace {

struct CpuidLeaf {
  uint32_t leaf;
  uint32_t eax, ebx, ecx, edx;
};

constexpr uint32_t bit(unsigned n) { return 1u << n; }

// Leaf 1 feature bits.
constexpr uint32_t kLeaf1Edx = bit(0) /*fpu*/ | bit(4) /*tsc*/ | bit(8) /*cx8*/ | bit(15) /*cmov*/ |
                               bit(24) /*fxsr*/ | bit(25) /*sse*/ | bit(26) /*sse2*/;
constexpr uint32_t kLeaf1Ecx = bit(0) /*sse3*/ | bit(9) /*ssse3*/ | bit(13) /*cx16*/ | bit(19) /*sse4.1*/ |
                               bit(23) /*popcnt*/;
// Leaf 0x80000001.
constexpr uint32_t kExtEdx = bit(11) /*syscall*/ | bit(20) /*nx*/ | bit(29) /*lm*/;
constexpr uint32_t kExtEcx = bit(0) /*lahf_lm*/ | bit(5) /*abm: lzcnt*/;

constexpr CpuidLeaf kLeaves[] = {
    // Max basic leaf 1, vendor "GenuineIntel" (ebx, edx, ecx).
    {0x0, 0x1, 0x756e6547, 0x6c65746e, 0x49656e69},
    // Family 6, model 0x3a, stepping 9; one logical processor, clflush size 64.
    {0x1, 0x000306a9, 0x00010800, kLeaf1Ecx, kLeaf1Edx},
    {0x80000000, 0x80000008, 0, 0, 0},
    {0x80000001, 0, 0, kExtEcx, kExtEdx},
    // "vm-translator modelled CPU", 48 bytes over leaves 0x80000002..4.
    {0x80000002, 0x742d6d76, 0x736e6172, 0x6f74616c, 0x6f6d2072},
    {0x80000003, 0x6c6c6564, 0x43206465, 0x00005550, 0},
    {0x80000004, 0, 0, 0, 0},
    // 48-bit virtual, 39-bit physical addresses.
    {0x80000008, 0x00003027, 0, 0, 0},
};

void set32(core::X86State* s, X86Reg r, uint32_t v) { s->gpr[static_cast<int>(r)] = v; }

uint64_t helper_cpuid(core::X86State* s, uint64_t, uint64_t, uint64_t) {
  uint32_t leaf = static_cast<uint32_t>(s->gpr[0]);
  CpuidLeaf out{leaf, 0, 0, 0, 0};
  for (const CpuidLeaf& l : kLeaves)
    if (l.leaf == leaf) out = l;
  set32(s, X86Reg::Rax, out.eax);
  set32(s, X86Reg::Rbx, out.ebx);
  set32(s, X86Reg::Rcx, out.ecx);
  set32(s, X86Reg::Rdx, out.edx);
  return 0;
}

uint64_t helper_rdtsc(core::X86State*, uint64_t, uint64_t, uint64_t) { return __rdtsc(); }
uint64_t helper_rdtscp(core::X86State* s, uint64_t, uint64_t, uint64_t) {
  s->gpr[static_cast<int>(X86Reg::Rcx)] = 0;  // TSC_AUX: processor id 0
  return __rdtsc();
}
// Only reachable if a frontend lifts xgetbv, which needs OSXSAVE advertised:
// XCR0 = x87 | SSE state.
uint64_t helper_xgetbv(core::X86State*, uint64_t, uint64_t, uint64_t) { return 0x3; }

}  // namespace

const HelperTable& HelperTable::defaults() {
  static const HelperTable table = [] {
    HelperTable t;
    t.fns[static_cast<size_t>(Helper::Cpuid)] = helper_cpuid;
    t.fns[static_cast<size_t>(Helper::Rdtsc)] = helper_rdtsc;
    t.fns[static_cast<size_t>(Helper::Rdtscp)] = helper_rdtscp;
    t.fns[static_cast<size_t>(Helper::Xgetbv)] = helper_xgetbv;
    t.fns[static_cast<size_t>(Helper::X87)] = x87_helper;
    return t;
  }();
  return table;
}

}  // namespace vm::ir
