// Block formation: fetch, Zydis decode, dispatch to the lifter tables, and
// the policies documented in vm/translate/x86.hpp.
#include <Zydis/Zydis.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "vm/ir/verifier.hpp"
#include "vm/translate/x86.hpp"
#include "x86/lifter.hpp"

namespace vm::translate {

using core::ErrorCode;
using core::GuestAddr;
using x86::DecodedInsn;
using x86::LiftStatus;

namespace {

constexpr size_t kMaxInsnBytes = ZYDIS_MAX_INSTRUCTION_LENGTH;

const ZydisDecoder& decoder() {
  static const ZydisDecoder d = [] {
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
    return dec;
  }();
  return d;
}

// Fetches up to 15 bytes at pc; returns how many could be fetched (>= 1),
// or the fault of the first byte.
core::Result<size_t> fetch(core::GuestMemory& memory, uint64_t pc, std::array<uint8_t, kMaxInsnBytes>& buf) {
  auto whole = memory.fetch(GuestAddr(pc), buf);
  if (whole) return buf.size();
  if (!whole.error().addr) return std::unexpected(whole.error());
  uint64_t first_bad = whole.error().addr->value();
  uint64_t avail = first_bad - pc;
  if (first_bad <= pc || avail >= buf.size()) return std::unexpected(whole.error());
  auto part = memory.fetch(GuestAddr(pc), std::span<uint8_t>(buf.data(), avail));
  if (!part) return std::unexpected(part.error());
  return avail;
}

std::string hex_bytes(std::span<const uint8_t> bytes) {
  std::string s;
  for (uint8_t b : bytes) s += fmt::format("{}{:02x}", s.empty() ? "" : " ", b);
  return s;
}

std::string unsupported_message(const ZydisDecodedInstruction& zi, uint64_t pc) {
  std::string msg = fmt::format("unsupported instruction '{}' at {:#x}", ZydisMnemonicGetString(zi.mnemonic), pc);
  if (zi.meta.isa_set == ZYDIS_ISA_SET_X87 || zi.meta.category == ZYDIS_CATEGORY_X87_ALU)
    msg += " (this x87 instruction is not supported)";
  else if (zi.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY)
    msg += " (VEX/EVEX/XOP encodings are not supported)";
  else
    msg += fmt::format(" (isa {})", ZydisISASetGetString(zi.meta.isa_set));
  return msg;
}

// Handlers reach visible register operands through Lifter::reg(), which
// knows general-purpose and xmm registers; forms naming any other register
// file (MMX, x87, ymm, control, ...) are unsupported whatever the mnemonic.
bool operands_supported(const DecodedInsn& insn) {
  for (int i = 0; i < insn.zi.operand_count_visible; ++i) {
    if (insn.ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER) continue;
    switch (ZydisRegisterGetClass(insn.ops[i].reg.value)) {
      case ZYDIS_REGCLASS_GPR8: case ZYDIS_REGCLASS_GPR16: case ZYDIS_REGCLASS_GPR32: case ZYDIS_REGCLASS_GPR64:
      case ZYDIS_REGCLASS_XMM: case ZYDIS_REGCLASS_SEGMENT: case ZYDIS_REGCLASS_X87: break;
      default: return false;
    }
  }
  return true;
}

}  // namespace

core::Result<ir::IRBlock> decode_block(core::GuestMemory& memory, GuestAddr pc, const BlockOptions& options) {
  ir::IRBlock block;
  block.start_pc = pc;
  ir::IRBuilder b(block);
  const uint64_t start = pc.value();
  const uint64_t page = start / kCodePageSize;
  uint64_t cur = start;
  uint64_t end = start;
  uint32_t count = 0;
  for (;;) {
    if (count >= std::max<uint32_t>(options.max_insns, 1) || (count > 0 && cur / kCodePageSize != page) ||
        (count > 0 && options.stop_pc == cur)) {
      b.jump(GuestAddr(cur));
      break;
    }
    std::array<uint8_t, kMaxInsnBytes> buf{};
    auto avail = fetch(memory, cur, buf);
    if (!avail) {
      if (count == 0) return std::unexpected(avail.error());
      b.jump(GuestAddr(cur));
      break;
    }
    DecodedInsn insn;
    insn.pc = cur;
    ZyanStatus st = ZydisDecoderDecodeFull(&decoder(), buf.data(), *avail, &insn.zi, insn.ops);
    if (st == ZYDIS_STATUS_NO_MORE_DATA && *avail < kMaxInsnBytes) {
      // The instruction continues into bytes that cannot be fetched.
      if (count == 0) {
        return core::fail(ErrorCode::GuestFault, fmt::format("instruction fetch at {:#x} runs off mapped memory", cur),
                          GuestAddr(cur + *avail));
      }
      b.jump(GuestAddr(cur));
      break;
    }
    b.insn_start(GuestAddr(cur));
    if (!ZYAN_SUCCESS(st)) {
      size_t shown = std::min<size_t>(*avail, 4);
      b.trap(ir::TrapReason::InvalidOpcode, GuestAddr(cur),
             fmt::format("undecodable bytes at {:#x}: {}", cur, hex_bytes(std::span(buf.data(), shown))));
      end = cur + 1;
      break;
    }
    ++count;
    const size_t mark = block.ops.size();
    const x86::LiftEntry* entry =
        insn.zi.encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY && operands_supported(insn) ? x86::find_entry(insn.zi.mnemonic)
                                                                                          : nullptr;
    x86::Lifter lifter(b, insn);
    LiftStatus status = entry ? entry->fn(lifter, entry->aux) : LiftStatus::Unsupported;
    if (status == LiftStatus::Unsupported) {
      block.ops.resize(mark);  // nothing of a half-lifted instruction may run
      b.trap(ir::TrapReason::Unsupported, GuestAddr(cur), unsupported_message(insn.zi, cur));
      end = insn.next_pc();
      break;
    }
    lifter.finish();
    cur = insn.next_pc();
    end = cur;
    if (status == LiftStatus::EndBlock) break;
  }
  block.guest_len = static_cast<uint32_t>(end - start);
  return block;
}

core::Result<InsnInfo> describe_insn(std::span<const uint8_t> bytes, uint64_t pc) {
  ZydisDecodedInstruction zi;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder(), bytes.data(), bytes.size(), &zi, ops)))
    return core::fail(ErrorCode::Decode, "undecodable bytes", GuestAddr(pc));
  InsnInfo info;
  info.length = zi.length;
  info.mnemonic = ZydisMnemonicGetString(zi.mnemonic);
  if (zi.cpu_flags) {
    info.flags_tested = zi.cpu_flags->tested;
    info.flags_written = zi.cpu_flags->modified | zi.cpu_flags->set_0 | zi.cpu_flags->set_1;
    info.flags_undefined = zi.cpu_flags->undefined;
  }
  info.supported = zi.encoding == ZYDIS_INSTRUCTION_ENCODING_LEGACY && x86::find_entry(zi.mnemonic) != nullptr;
  ZydisFormatter fmt;
  ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
  char text[256];
  if (ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&fmt, &zi, ops, zi.operand_count_visible, text, sizeof text, pc,
                                                   ZYAN_NULL)))
    info.text = text;
  return info;
}

std::string_view run_reason_name(RunResult::Reason r) {
  switch (r) {
    case RunResult::Reason::Stop: return "end";
    case RunResult::Reason::Trap: return "trap";
    case RunResult::Reason::Fault: return "fault";
    case RunResult::Reason::Syscall: return "syscall";
    case RunResult::Reason::StepLimit: return "step_limit";
  }
  return "?";
}

RunResult run_interpreter(core::GuestMemory& memory, core::X86State& state, GuestAddr stop_pc, uint64_t max_blocks,
                          const ir::HelperTable& helpers) {
  ir::Interpreter interp(memory, helpers);
  RunResult out;
  for (;;) {
    out.pc = GuestAddr(state.rip);
    if (state.rip == stop_pc.value()) {
      out.reason = RunResult::Reason::Stop;
      return out;
    }
    if (out.blocks >= max_blocks) {
      out.reason = RunResult::Reason::StepLimit;
      return out;
    }
    BlockOptions options;
    options.stop_pc = stop_pc.value();
    auto block = decode_block(memory, GuestAddr(state.rip), options);
    if (!block) {
      out.reason = block.error().code == ErrorCode::GuestFault ? RunResult::Reason::Fault : RunResult::Reason::Trap;
      out.trap = ir::TrapReason::MemoryFault;
      out.fault_addr = block.error().addr;
      out.message = block.error().message;
      return out;
    }
    if (auto ok = ir::verify(*block); !ok) {
      // A verifier failure is our bug, reported rather than executed.
      out.reason = RunResult::Reason::Trap;
      out.trap = ir::TrapReason::Unsupported;
      out.message = "internal error: lifted block does not verify: " + ok.error().message;
      return out;
    }
    ++out.blocks;
    ir::ExecResult r = interp.run(*block, state);
    if (r.kind == ir::TermKind::Trap) {
      out.pc = r.pc;
      out.trap = r.trap;
      out.message = r.message;
      if (r.trap == ir::TrapReason::MemoryFault) {
        out.reason = RunResult::Reason::Fault;
        out.fault_addr = r.fault_addr;
      } else {
        out.reason = RunResult::Reason::Trap;
      }
      return out;
    }
    if (r.kind == ir::TermKind::Syscall) {
      out.reason = RunResult::Reason::Syscall;
      out.pc = GuestAddr(state.rip);
      return out;
    }
  }
}

}  // namespace vm::translate
