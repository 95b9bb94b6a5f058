// Printer of the vm-ir text form. The grammar is in docs/ir-text.md.
//
// The printer writes exactly the fields an opcode uses, so a verifier-valid
// block survives print -> parse unchanged; anything else (a field the text
// cannot carry) is listed in a trailing comment so that printing an invalid
// block for a diagnostic never hides what is wrong with it.
#include <algorithm>
#include <bit>
#include <iterator>

#include <fmt/format.h>

#include "text_common.hpp"
#include "vm/ir/text.hpp"

namespace vm::ir {
namespace {

using namespace text_detail;

// ------------------------------------------------------------ printer ----

class Writer {
public:
  std::string out;

  template <class... Args>
  void put(fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
  }
  void put(std::string_view s) { out += s; }

  void value(ValueId v) {
    if (v == kNoValue) {
      out += "%?";
    } else {
      put("%{}", v);
    }
  }
  void type(Type t) {
    if (valid_type(t)) {
      out += type_name(t);
    } else {
      put("<type {}>", static_cast<int>(t));
    }
  }
  void reg(uint32_t id, uint64_t offset) {
    if (core::is_valid_reg(id)) {
      out += core::kX86Regs[id].name;
    } else {
      put("<reg {}>", id);
    }
    if (offset != 0) put("+{}", offset);
  }
  void quoted(std::string_view s) {
    out += '"';
    for (char ch : s) {
      auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += ch;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c < 0x20 || c >= 0x7f) {
        put("\\x{:02x}", c);
      } else {
        out += ch;
      }
    }
    out += '"';
  }
};

// Fields of `op` that its printed form cannot carry, as "name=value" items.
std::vector<std::string> unprinted_fields(const Op& op, size_t printed_args) {
  std::vector<std::string> extra;
  const OpcodeInfo& info = opcode_info(op.opcode);
  FieldUse use = field_use(op.opcode);
  if (op.type == Type::Void && op.result != kNoValue) extra.push_back(fmt::format("result=%{}", op.result));
  if (info.mod == ModKind::None && op.mod != 0) extra.push_back(fmt::format("mod={}", op.mod));
  if (op.nargs != printed_args) extra.push_back(fmt::format("nargs={}", op.nargs));
  for (size_t i = printed_args; i < op.args.size(); ++i)
    if (op.args[i] != kNoValue) extra.push_back(fmt::format("args[{}]=%{}", i, op.args[i]));
  if (!use.aux && op.aux != 0) extra.push_back(fmt::format("aux={:#x}", op.aux));
  if (!use.imm && op.imm != 0) extra.push_back(fmt::format("imm={:#x}", op.imm));
  bool hi_printed = use.imm_hi && (op.opcode != Opcode::Const || is_wide(op.type));
  if (!hi_printed && op.imm_hi != 0) extra.push_back(fmt::format("imm_hi={:#x}", op.imm_hi));
  return extra;
}

std::string format_op(const Op& op) {
  Writer w;
  if (op.type != Type::Void) {
    w.value(op.result);
    w.put(":");
    w.type(op.type);
    w.put(" = ");
  }
  if (!valid_opcode(op.opcode)) {
    w.put("<opcode {}>", static_cast<int>(op.opcode));
    return std::move(w.out);
  }
  const OpcodeInfo& info = opcode_info(op.opcode);
  w.put(info.name);

  if (info.mod == ModKind::Ext) {
    // A plain load reads exactly its result width; only other widths are spelled out.
    switch (op.mod) {
      case static_cast<uint8_t>(Ext::None):
        if (op.aux != type_bits(op.type)) w.put(".{}", op.aux);
        break;
      case static_cast<uint8_t>(Ext::Zero): w.put(".zx{}", op.aux); break;
      case static_cast<uint8_t>(Ext::Sign): w.put(".sx{}", op.aux); break;
      default: w.put(".<ext {}>{}", op.mod, op.aux); break;
    }
  } else if (info.mod != ModKind::None) {
    auto names = modifier_names(info.mod);
    if (op.mod < names.size()) {
      w.put(".{}", names[op.mod]);
    } else {
      w.put(".<mod {}>", op.mod);
    }
  }
  if (op.lane != Lane::None) {
    if (valid_lane(op.lane)) {
      w.put(".{}", lane_name(op.lane));
    } else {
      w.put(".<lane {}>", static_cast<int>(op.lane));
    }
  }

  auto args = [&](size_t n) {
    for (size_t i = 0; i < n; ++i) {
      w.put(i == 0 ? " " : ", ");
      w.value(op.args[i]);
    }
  };
  size_t printed_args = info.nargs < 0 ? 0 : static_cast<size_t>(info.nargs);
  std::string note;
  switch (op.opcode) {
    case Opcode::Const:
      if (is_wide(op.type)) {
        w.put(" 0x{:016x}{:016x}", op.imm_hi, op.imm);
      } else {
        w.put(" {:#x}", op.imm);
      }
      // Float constants are bit patterns (exact); the decimal reading is a courtesy.
      if (op.type == Type::F32 && op.imm <= 0xffffffffu) {
        note = fmt::format("{}", std::bit_cast<float>(static_cast<uint32_t>(op.imm)));
      } else if (op.type == Type::F64) {
        note = fmt::format("{}", std::bit_cast<double>(op.imm));
      }
      break;
    case Opcode::GetReg:
      w.put(" ");
      w.reg(op.aux, op.imm);
      break;
    case Opcode::SetReg:
      w.put(" ");
      w.reg(op.aux, op.imm);
      w.put(", ");
      w.value(op.args[0]);
      break;
    case Opcode::InsnStart: w.put(" {:#x}", op.imm); break;
    case Opcode::TrapIf:
      args(1);
      if (valid_trap(static_cast<TrapReason>(op.aux))) {
        w.put(", {}", trap_reason_name(static_cast<TrapReason>(op.aux)));
      } else {
        w.put(", <trap {}>", op.aux);
      }
      break;
    case Opcode::ExitIf:
      args(1);
      w.put(", {:#x}", op.imm);
      break;
    case Opcode::Copy:
      args(3);
      w.put(", {}", op.aux);
      break;
    case Opcode::VExtract:
      args(1);
      w.put(", {}", op.aux);
      break;
    case Opcode::VInsert:
      args(2);
      w.put(", {}", op.aux);
      break;
    case Opcode::VShuffle:
      args(2);
      w.put(", [");
      for (int i = 0; i < 16; ++i) {
        uint64_t word = i < 8 ? op.imm : op.imm_hi;
        if (i > 0) w.put(",");
        w.put("{}", (word >> (8 * (i % 8))) & 0xff);
      }
      w.put("]");
      break;
    case Opcode::CallHelper:
      if (op.aux < kNumHelpers) {
        w.put(" {}", helper_info(static_cast<Helper>(op.aux)).name);
      } else {
        w.put(" <helper {}>", op.aux);
      }
      printed_args = std::min<size_t>(op.nargs, op.args.size());
      for (size_t i = 0; i < printed_args; ++i) {
        w.put(", ");
        w.value(op.args[i]);
      }
      break;
    default: args(printed_args); break;
  }

  auto extra = unprinted_fields(op, printed_args);
  if (!extra.empty()) {
    if (!note.empty()) note += "; ";
    note += fmt::format("unprinted: {}", fmt::join(extra, " "));
  }
  if (!note.empty()) w.put("  ; {}", note);
  return std::move(w.out);
}

std::string format_terminator(const Terminator& t) {
  Writer w;
  if (t.kind == TermKind::None || static_cast<uint32_t>(t.kind) >= kTermNames.size()) {
    w.put("; no terminator");
    if (t.kind != TermKind::None) w.put(" (kind {})", static_cast<int>(t.kind));
    return std::move(w.out);
  }
  w.put(kTermNames[static_cast<size_t>(t.kind)]);
  bool uses_value = false, uses_target = true, uses_fallthrough = false;
  switch (t.kind) {
    case TermKind::Jump:
    case TermKind::Syscall:
    case TermKind::Exit: w.put(" {:#x}", t.target); break;
    case TermKind::Branch:
      w.put(" ");
      w.value(t.value);
      w.put(", {:#x}, {:#x}", t.target, t.fallthrough);
      uses_value = uses_fallthrough = true;
      break;
    case TermKind::IndirectJump:
    case TermKind::Ret:
      w.put(" ");
      w.value(t.value);
      uses_value = true;
      uses_target = false;
      break;
    case TermKind::Call:
      if (t.value != kNoValue) {
        w.put(" ");
        w.value(t.value);
        uses_target = false;
      } else {
        w.put(" {:#x}", t.target);
      }
      w.put(", ret {:#x}", t.fallthrough);
      uses_value = uses_fallthrough = true;
      break;
    case TermKind::Trap:
      if (valid_trap(t.trap)) {
        w.put(" {} {:#x}", trap_reason_name(t.trap), t.target);
      } else {
        w.put(" <reason {}> {:#x}", static_cast<int>(t.trap), t.target);
      }
      if (t.trap == TrapReason::Interrupt) w.put(" vector {:#x}", t.vector);
      w.put(" ");
      w.quoted(t.message);
      break;
    case TermKind::None: break;
  }

  std::vector<std::string> extra;
  if (!uses_value && t.value != kNoValue) extra.push_back(fmt::format("value=%{}", t.value));
  if (!uses_target && t.target != GuestAddr{}) extra.push_back(fmt::format("target={:#x}", t.target));
  if (!uses_fallthrough && t.fallthrough != GuestAddr{}) extra.push_back(fmt::format("fallthrough={:#x}", t.fallthrough));
  if (t.kind != TermKind::Trap) {
    if (t.trap != TrapReason::InvalidOpcode) extra.push_back(fmt::format("trap={}", static_cast<int>(t.trap)));
    if (!t.message.empty()) extra.push_back("message=" + [&] { Writer q; q.quoted(t.message); return q.out; }());
  }
  if ((t.kind != TermKind::Trap || t.trap != TrapReason::Interrupt) && t.vector != 0)
    extra.push_back(fmt::format("vector={:#x}", t.vector));
  if (!extra.empty()) w.put("  ; unprinted: {}", fmt::join(extra, " "));
  return std::move(w.out);
}

}  // namespace

std::string print_op(const Op& op) { return format_op(op); }

std::string print_terminator(const Terminator& term) { return format_terminator(term); }

std::string print(const IRBlock& block) {
  std::string out = fmt::format("block {:#x} len {} {{\n", block.start_pc, block.guest_len);
  for (const Op& op : block.ops) {
    out += "  ";
    out += format_op(op);
    out += '\n';
  }
  out += "  ";
  out += format_terminator(block.term);
  out += "\n}\n";
  return out;
}

}  // namespace vm::ir
