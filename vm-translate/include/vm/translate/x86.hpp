// The x86-64 frontend: turns guest machine code into vm-ir.
//
// decode_block() decodes (Zydis, 64-bit mode) from a guest pc and lifts the
// instructions into one IRBlock. A block ends
//   - after a control transfer (jmp, jcc, call, ret, loop*, syscall),
//   - after a rep-prefixed string instruction (it loops on itself, one
//     iteration per run),
//   - at a trap: undecodable bytes give Trap(invalid_opcode), a valid but
//     unsupported instruction gives Trap(unsupported) naming the mnemonic
//     and address; neither instruction is executed,
//   - after `max_insns` instructions (default 64), with Jump(next pc),
//   - before an instruction that starts on a different 4 KiB page than the
//     block's first instruction, with Jump(that pc): a block covers at most
//     its first page plus the tail of one instruction straddling the page
//     end, which keeps code-page invalidation simple,
//   - before an instruction whose bytes cannot be fetched (Jump to it), so
//     the fault is reported by the block that starts there.
// When the block's first instruction cannot be fetched, decode_block returns
// a GuestFault error whose address is the first byte that could not be
// fetched among those the instruction needs. Nothing a guest puts in memory
// makes it crash.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vm/core/error.hpp"
#include "vm/core/memory.hpp"
#include "vm/core/x86_state.hpp"
#include "vm/ir/interpreter.hpp"
#include "vm/ir/ir.hpp"

namespace vm::translate {

struct BlockOptions {
  uint32_t max_insns = 64;
  // When set, the block ends (Jump) before an instruction at this pc, so a
  // runner that stops there never executes past it.
  std::optional<uint64_t> stop_pc;
};

inline constexpr uint64_t kCodePageSize = 4096;

core::Result<ir::IRBlock> decode_block(core::GuestMemory& memory, core::GuestAddr pc, const BlockOptions& options = {});

// What Zydis knows about one instruction: its length, Intel-syntax text and
// the RFLAGS bits (ZYDIS_CPUFLAG_* = RFLAGS positions) it tests, writes and
// leaves undefined. Used by test oracles to mask undefined flags.
struct InsnInfo {
  uint32_t length = 0;
  std::string text;
  std::string mnemonic;
  uint32_t flags_tested = 0;
  uint32_t flags_written = 0;  // modified, set to 0 or set to 1
  uint32_t flags_undefined = 0;
  bool supported = false;  // the lifter has a table entry for the mnemonic
};
core::Result<InsnInfo> describe_insn(std::span<const uint8_t> bytes, uint64_t pc);

// docs/x86-coverage.md, generated from the lifter's dispatch tables.
std::string x86_coverage_markdown();

// Runs guest code with the vm-ir interpreter, one decoded block at a time,
// until rip == stop_pc, a trap or fault, a syscall, or max_blocks blocks.
struct RunResult {
  enum class Reason { Stop, Trap, Fault, Syscall, StepLimit };
  Reason reason = Reason::Stop;
  core::GuestAddr pc;                        // rip at the end (trap/fault: the faulting instruction)
  std::optional<core::GuestAddr> fault_addr;  // Fault: the first inaccessible byte
  ir::TrapReason trap = ir::TrapReason::InvalidOpcode;
  std::string message;
  uint64_t blocks = 0;
};
std::string_view run_reason_name(RunResult::Reason r);

RunResult run_interpreter(core::GuestMemory& memory, core::X86State& state, core::GuestAddr stop_pc,
                          uint64_t max_blocks, const ir::HelperTable& helpers = ir::HelperTable::defaults());

}  // namespace vm::translate
