// Interpreter: the reference semantics of vm-ir (tier 0 of the engine and the
// oracle for the JIT and the cross-arch backends). Executes one verified
// IRBlock on an X86State and a GuestMemory. Guest-level problems (memory
// faults, division by zero, trap terminators) end the block with an
// ExecResult describing them; nothing a guest does causes host UB.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vm/core/memory.hpp"
#include "vm/core/x86_state.hpp"
#include "vm/ir/ir.hpp"

namespace vm::ir {

// A value of any IR type: integers are zero-extended into lo (and hi for
// i128), floats are their bit patterns, v128 is lo = bytes 0..7, hi = 8..15.
struct Val {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Val&, const Val&) = default;
};

using HelperFn = uint64_t (*)(core::X86State* state, uint64_t a0, uint64_t a1, uint64_t a2);

struct HelperTable {
  std::array<HelperFn, kNumHelpers> fns{};
  // The reference implementations (modelled CPU for cpuid, host TSC, ...).
  static const HelperTable& defaults();
};

struct ExecResult {
  // How the block ended: the terminator taken, or Trap for a trap terminator
  // and for run-time traps (memory fault, divide error).
  TermKind kind = TermKind::None;
  TrapReason trap = TrapReason::InvalidOpcode;
  uint8_t vector = 0;
  GuestAddr pc;                          // Trap: pc of the trapping instruction
  std::optional<GuestAddr> fault_addr;   // MemoryFault: first inaccessible byte
  core::Access fault_access = core::Access::Read;
  std::string message;
  uint64_t ops_executed = 0;
};

class Interpreter {
public:
  explicit Interpreter(core::GuestMemory& memory, const HelperTable& helpers = HelperTable::defaults());

  // Runs `block` (which must verify) once. On return state.rip is the next pc
  // (Jump, Branch, IndirectJump, Ret, Call, Syscall, Exit) or the pc of the
  // trapping instruction (Trap), with all state changes of earlier
  // instructions applied.
  ExecResult run(const IRBlock& block, core::X86State& state);

private:
  core::GuestMemory* memory_;
  const HelperTable* helpers_;
  std::vector<Val> values_;
  std::vector<Type> types_;  // type of each value, for ops whose meaning depends on operand width
};

// Evaluates one op without side effects on constant operands. Returns
// nullopt for ops that touch state or memory, call helpers, would trap with
// these operands, or round with Rounding::Dyn when no MXCSR value is given.
// Used by constant folding, so folding and the interpreter share one
// definition of every op.
std::optional<Val> evaluate_pure(const Op& op, std::span<const Val> args, std::span<const Type> arg_types,
                                 std::optional<uint32_t> mxcsr = std::nullopt);

}  // namespace vm::ir
