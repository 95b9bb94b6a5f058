// Tables derived from the X-macros in ir.hpp: names, properties, parsing.
#include "vm/ir/ir.hpp"

#include <algorithm>

namespace vm::ir {
namespace {

constexpr bool has_prop(std::string_view props, char c) { return props.find(c) != std::string_view::npos; }

constexpr std::array<OpcodeInfo, kNumOpcodes> kOpcodeInfo = {{
#define VM_IR_OP_INFO(e, text, n, modkind, props)                                                     \
  OpcodeInfo{Opcode::e, text, n, ModKind::modkind, has_prop(props, 'T'), has_prop(props, 'S'), \
             has_prop(props, 'L'), has_prop(props, 'C')},
    VM_IR_OPCODES(VM_IR_OP_INFO)
#undef VM_IR_OP_INFO
}};

constexpr std::array<HelperInfo, kNumHelpers> kHelperInfo = {{
#define VM_IR_HELPER_INFO(e, text, n, ret) HelperInfo{Helper::e, text, n, ret},
    VM_IR_HELPERS(VM_IR_HELPER_INFO)
#undef VM_IR_HELPER_INFO
}};

constexpr std::array<std::string_view, 10> kTypeNames = {"void", "i1", "i8", "i16", "i32", "i64", "i128", "f32", "f64", "v128"};
constexpr std::array<std::string_view, 7> kLaneNames = {"", "i8x16", "i16x8", "i32x4", "i64x2", "f32x4", "f64x2"};
constexpr std::array<std::string_view, 8> kTrapNames = {"invalid_opcode", "unsupported", "divide_error", "breakpoint",
                                                        "halt", "interrupt", "memory_fault", "general_protection"};

}  // namespace

std::string_view type_name(Type t) { return kTypeNames[static_cast<size_t>(t)]; }

std::optional<Type> parse_type(std::string_view s) {
  for (size_t i = 1; i < kTypeNames.size(); ++i)
    if (kTypeNames[i] == s) return static_cast<Type>(i);
  return std::nullopt;
}

std::optional<Type> int_type(uint32_t bits) {
  switch (bits) {
    case 1: return Type::I1;
    case 8: return Type::I8;
    case 16: return Type::I16;
    case 32: return Type::I32;
    case 64: return Type::I64;
    case 128: return Type::I128;
    default: return std::nullopt;
  }
}

std::string_view lane_name(Lane l) { return kLaneNames[static_cast<size_t>(l)]; }

std::optional<Lane> parse_lane(std::string_view s) {
  for (size_t i = 1; i < kLaneNames.size(); ++i)
    if (kLaneNames[i] == s) return static_cast<Lane>(i);
  return std::nullopt;
}

const OpcodeInfo& opcode_info(Opcode op) { return kOpcodeInfo[static_cast<size_t>(op)]; }

std::optional<Opcode> parse_opcode(std::string_view name) {
  for (const auto& info : kOpcodeInfo)
    if (info.name == name) return info.opcode;
  return std::nullopt;
}

const HelperInfo& helper_info(Helper h) { return kHelperInfo[static_cast<size_t>(h)]; }

std::optional<Helper> parse_helper(std::string_view name) {
  for (const auto& info : kHelperInfo)
    if (info.name == name) return info.id;
  return std::nullopt;
}

std::string_view trap_reason_name(TrapReason r) { return kTrapNames[static_cast<size_t>(r)]; }

std::optional<TrapReason> parse_trap_reason(std::string_view s) {
  for (size_t i = 0; i < kTrapNames.size(); ++i)
    if (kTrapNames[i] == s) return static_cast<TrapReason>(i);
  return std::nullopt;
}

uint32_t IRBlock::value_count() const {
  uint32_t n = 0;
  for (const auto& op : ops)
    if (op.result != kNoValue) n = std::max(n, op.result + 1);
  return n;
}

}  // namespace vm::ir
