// What the vm-ir text printer (text_print.cpp) and parser (text_parse.cpp)
// share: the spelling of modifiers and terminators, which fields each opcode
// carries, and range checks of enum values. Internal to vm-ir.
#pragma once

#include <array>
#include <span>
#include <string_view>

#include "vm/ir/ir.hpp"

namespace vm::ir::text_detail {

inline constexpr std::array<std::string_view, 10> kCmpNames = {"eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"};
inline constexpr std::array<std::string_view, 8> kFCmpNames = {"eq", "lt", "le", "unord", "neq", "nlt", "nle", "ord"};
inline constexpr std::array<std::string_view, 5> kRoundNames = {"rne", "rdn", "rup", "rtz", "dyn"};
inline constexpr std::array<std::string_view, 6> kRmwNames = {"xchg", "add", "sub", "and", "or", "xor"};
inline constexpr std::array<std::string_view, 9> kTermNames = {"",    "jump",    "branch", "indirect_jump", "ret",
                                                        "call", "syscall", "trap",   "exit"};

inline std::span<const std::string_view> modifier_names(ModKind k) {
  switch (k) {
    case ModKind::Cmp: return kCmpNames;
    case ModKind::FCmp: return kFCmpNames;
    case ModKind::Round: return kRoundNames;
    case ModKind::Rmw: return kRmwNames;
    case ModKind::None:
    case ModKind::Ext: break;
  }
  return {};
}

inline std::string_view modifier_kind_description(ModKind k) {
  switch (k) {
    case ModKind::Cmp: return "a comparison predicate (eq ne slt sle sgt sge ult ule ugt uge)";
    case ModKind::FCmp: return "a float predicate (eq lt le unord neq nlt nle ord)";
    case ModKind::Round: return "a rounding mode (rne rdn rup rtz dyn)";
    case ModKind::Rmw: return "an atomic operation (xchg add sub and or xor)";
    case ModKind::None:
    case ModKind::Ext: break;
  }
  return "a modifier";
}

// Which of aux/imm/imm_hi an opcode carries; the others must be zero.
struct FieldUse {
  bool aux = false;
  bool imm = false;
  bool imm_hi = false;
};

inline FieldUse field_use(Opcode op) {
  switch (op) {
    case Opcode::Const: return {false, true, true};
    case Opcode::GetReg:
    case Opcode::SetReg: return {true, true, false};
    case Opcode::Load:
    case Opcode::VExtract:
    case Opcode::VInsert:
    case Opcode::CallHelper:
    case Opcode::TrapIf:
    case Opcode::Copy: return {true, false, false};
    case Opcode::InsnStart:
    case Opcode::ExitIf: return {false, true, false};
    case Opcode::VShuffle: return {false, true, true};
    default: return {};
  }
}

inline bool is_wide(Type t) { return t == Type::I128 || t == Type::V128; }
inline bool valid_opcode(Opcode o) { return static_cast<uint32_t>(o) < kNumOpcodes; }
inline bool valid_type(Type t) { return static_cast<uint32_t>(t) <= static_cast<uint32_t>(Type::V128); }
inline bool valid_lane(Lane l) { return static_cast<uint32_t>(l) <= static_cast<uint32_t>(Lane::F64); }
inline bool valid_trap(TrapReason r) {
  return static_cast<uint32_t>(r) <= static_cast<uint32_t>(TrapReason::GeneralProtection);
}

}  // namespace vm::ir::text_detail
