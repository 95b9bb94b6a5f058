// System: syscall, cpuid, rdtsc/rdtscp, the traps (ud2, hlt, int3, int n)
// and the instructions that are no-ops for a user-mode translator (nop,
// endbr, pause, prefetch*) or only order memory (lfence/mfence/sfence).
#include "x86/lifter.hpp"

#include <fmt/format.h>

namespace vm::translate::x86 {
namespace {

using core::GuestAddr;
using ir::TrapReason;

LiftStatus lift_nop(Lifter&, int) { return LiftStatus::Continue; }

LiftStatus lift_fence(Lifter& l, int) {
  l.b.fence();
  return LiftStatus::Continue;
}

LiftStatus lift_syscall(Lifter& l, int) {
  l.b.syscall(GuestAddr(l.next_pc()));
  return LiftStatus::EndBlock;
}

LiftStatus lift_cpuid(Lifter& l, int) {
  l.b.call_helper(ir::Helper::Cpuid);
  return LiftStatus::Continue;
}

enum TscKind { kRdtsc, kRdtscp };

LiftStatus lift_rdtsc(Lifter& l, int kind) {
  Value tsc = l.b.call_helper(kind == kRdtsc ? ir::Helper::Rdtsc : ir::Helper::Rdtscp);
  l.set_gpr(0, l.b.trunc(tsc, Type::I32));
  l.set_gpr(2, l.b.trunc(l.b.lshr(tsc, l.c(Type::I64, 32)), Type::I32));
  return LiftStatus::Continue;
}

enum TrapKind { kUd2, kHlt, kInt3, kInt, kXgetbv };

LiftStatus lift_trap(Lifter& l, int kind) {
  GuestAddr pc(l.in.pc);
  switch (kind) {
    case kUd2: l.b.trap(TrapReason::InvalidOpcode, pc, fmt::format("ud2 at {:#x}", l.in.pc)); break;
    case kHlt: l.b.trap(TrapReason::Halt, pc, fmt::format("hlt at {:#x}", l.in.pc)); break;
    case kInt3: l.b.trap(TrapReason::Breakpoint, pc, fmt::format("int3 at {:#x}", l.in.pc)); break;
    case kInt: {
      auto vector = static_cast<uint8_t>(l.op(0).imm.value.u);
      l.b.trap(TrapReason::Interrupt, pc, fmt::format("int {:#x} at {:#x}", vector, l.in.pc), vector);
      break;
    }
    default:
      // The modelled CPU does not advertise OSXSAVE, where xgetbv raises #UD.
      l.b.trap(TrapReason::InvalidOpcode, pc, fmt::format("xgetbv at {:#x}: OSXSAVE is not advertised", l.in.pc));
      break;
  }
  return LiftStatus::EndBlock;
}

constexpr LiftEntry kEntries[] = {
    {ZYDIS_MNEMONIC_NOP, InsnClass::System, lift_nop, 0, "90, 0F 1F /0 (all lengths)"},
    {ZYDIS_MNEMONIC_ENDBR64, InsnClass::System, lift_nop, 0, "no-op (CET not modelled)"},
    {ZYDIS_MNEMONIC_ENDBR32, InsnClass::System, lift_nop, 0, "no-op"},
    {ZYDIS_MNEMONIC_PAUSE, InsnClass::System, lift_nop, 0, "no-op"},
    {ZYDIS_MNEMONIC_PREFETCHNTA, InsnClass::System, lift_nop, 0, "m8, no-op"},
    {ZYDIS_MNEMONIC_PREFETCHT0, InsnClass::System, lift_nop, 0, "m8, no-op"},
    {ZYDIS_MNEMONIC_PREFETCHT1, InsnClass::System, lift_nop, 0, "m8, no-op"},
    {ZYDIS_MNEMONIC_PREFETCHT2, InsnClass::System, lift_nop, 0, "m8, no-op"},
    {ZYDIS_MNEMONIC_PREFETCHW, InsnClass::System, lift_nop, 0, "m8, no-op"},
    {ZYDIS_MNEMONIC_LFENCE, InsnClass::System, lift_fence, 0, "fence"},
    {ZYDIS_MNEMONIC_MFENCE, InsnClass::System, lift_fence, 0, "fence"},
    {ZYDIS_MNEMONIC_SFENCE, InsnClass::System, lift_fence, 0, "fence"},
    {ZYDIS_MNEMONIC_SYSCALL, InsnClass::System, lift_syscall, 0, "ends the block in Syscall(next pc)"},
    {ZYDIS_MNEMONIC_CPUID, InsnClass::System, lift_cpuid, 0, "call_helper(cpuid): the modelled CPU"},
    {ZYDIS_MNEMONIC_RDTSC, InsnClass::System, lift_rdtsc, kRdtsc, "edx:eax := host TSC"},
    {ZYDIS_MNEMONIC_RDTSCP, InsnClass::System, lift_rdtsc, kRdtscp, "edx:eax := host TSC, ecx := 0"},
    {ZYDIS_MNEMONIC_UD2, InsnClass::System, lift_trap, kUd2, "Trap(invalid_opcode)"},
    {ZYDIS_MNEMONIC_HLT, InsnClass::System, lift_trap, kHlt, "Trap(halt)"},
    {ZYDIS_MNEMONIC_INT3, InsnClass::System, lift_trap, kInt3, "Trap(breakpoint)"},
    {ZYDIS_MNEMONIC_INT, InsnClass::System, lift_trap, kInt, "imm8: Trap(interrupt, vector)"},
    {ZYDIS_MNEMONIC_XGETBV, InsnClass::System, lift_trap, kXgetbv, "Trap(invalid_opcode): OSXSAVE not advertised"},
};

}  // namespace

std::span<const LiftEntry> system_entries() { return kEntries; }

}  // namespace vm::translate::x86
