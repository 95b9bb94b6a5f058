// vm-ir: the translator's own intermediate representation.
//
// An IRBlock is the lifted form of one guest translation unit: a straight
// list of SSA ops (each defines at most one typed value, used only after its
// definition) ending in exactly one Terminator. Guest state is reached only
// through get_reg/set_reg (register ids from vm-core's X86State table) and
// memory only through load/store/atomics, so every consumer — the reference
// interpreter, the passes, the LLVM lowering — sees the same explicit
// semantics. docs/ir.md specifies every op; the opcode table below is the one
// place an op is declared (name, operand count, modifier kind, properties).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vm/core/guest_addr.hpp"
#include "vm/core/tlb_layout.hpp"
#include "vm/core/x86_state.hpp"

namespace vm::ir {

using core::GuestAddr;
using core::X86Reg;

// ---------------------------------------------------------------- types ----
enum class Type : uint8_t { Void, I1, I8, I16, I32, I64, I128, F32, F64, V128 };

constexpr uint32_t type_bits(Type t) {
  switch (t) {
    case Type::Void: return 0;
    case Type::I1: return 1;
    case Type::I8: return 8;
    case Type::I16: return 16;
    case Type::I32: case Type::F32: return 32;
    case Type::I64: case Type::F64: return 64;
    case Type::I128: case Type::V128: return 128;
  }
  return 0;
}
constexpr uint32_t type_bytes(Type t) { return t == Type::I1 ? 1 : type_bits(t) / 8; }
constexpr bool is_int(Type t) { return t >= Type::I1 && t <= Type::I128; }
constexpr bool is_float(Type t) { return t == Type::F32 || t == Type::F64; }
std::string_view type_name(Type t);
std::optional<Type> parse_type(std::string_view s);
// The integer type of a width in bits (1, 8, 16, 32, 64, 128).
std::optional<Type> int_type(uint32_t bits);

// Element type of a lane-wise v128 operation.
enum class Lane : uint8_t { None, I8, I16, I32, I64, F32, F64 };
constexpr uint32_t lane_bits(Lane l) {
  switch (l) {
    case Lane::None: return 0;
    case Lane::I8: return 8;
    case Lane::I16: return 16;
    case Lane::I32: case Lane::F32: return 32;
    case Lane::I64: case Lane::F64: return 64;
  }
  return 0;
}
constexpr uint32_t lane_count(Lane l) { return l == Lane::None ? 0 : 128 / lane_bits(l); }
constexpr bool lane_is_float(Lane l) { return l == Lane::F32 || l == Lane::F64; }
constexpr Type lane_type(Lane l) {
  switch (l) {
    case Lane::I8: return Type::I8;
    case Lane::I16: return Type::I16;
    case Lane::I32: return Type::I32;
    case Lane::I64: return Type::I64;
    case Lane::F32: return Type::F32;
    case Lane::F64: return Type::F64;
    case Lane::None: break;
  }
  return Type::Void;
}
std::string_view lane_name(Lane l);  // "i16x8", "f64x2", ...
std::optional<Lane> parse_lane(std::string_view s);

// ------------------------------------------------------------ modifiers ----
enum class CmpPred : uint8_t { Eq, Ne, Slt, Sle, Sgt, Sge, Ult, Ule, Ugt, Uge };
// The eight SSE comparison predicates (CMPPS imm8 0..7), usable for scalars too.
// eq/lt/le/ord are false on NaN; neq/nlt/nle/unord are true on NaN.
enum class FCmpPred : uint8_t { Eq, Lt, Le, Unord, Neq, Nlt, Nle, Ord };
// Rounding: nearest-even, toward -inf, toward +inf, toward zero, or "dyn":
// the mode currently selected by the guest's MXCSR.RC field.
enum class Rounding : uint8_t { Rne, Rdn, Rup, Rtz, Dyn };
enum class Ext : uint8_t { None, Zero, Sign };
enum class RmwOp : uint8_t { Xchg, Add, Sub, And, Or, Xor };

// Which modifier an opcode carries in Op::mod (printed as ".name").
enum class ModKind : uint8_t { None, Cmp, FCmp, Round, Ext, Rmw };

// ------------------------------------------------------------- opcodes ----
// X(Enum, "text", operand count (-1 = 0..3), modifier kind, properties)
// Properties: T = may trap (fault or defined trap), S = side effect (state,
// memory, ordering), L = allowed lane-wise on v128, C = commutative.
// fill (%n:i64 = fill addr, value, count) stores `value` (i8..i64) at
// addr, addr + size, ... in ascending order, as many times as
// fill_elements() says, and returns that number: at most `count`, and at
// most one page's worth (docs/ir.md).
// copy (%n:i64 = copy dst, src, count, bits) moves `bits`-wide elements
// from src to dst, element by element in ascending order (each read after
// the writes before it, as x86 rep movs does), copy_elements() of them, and
// returns that number.
// trap_if and exit_if are the only conditional ops: when their i1 operand
// holds, trap_if traps at the current instruction (reason in aux) and exit_if
// leaves the block for guest pc imm as Jump(imm) would; no later op runs.
#define VM_IR_OPCODES(X)                                   \
  X(Const, "const", 0, None, "")                           \
  X(GetReg, "get_reg", 0, None, "")                        \
  X(SetReg, "set_reg", 1, None, "S")                       \
  X(Load, "load", 1, Ext, "T")                             \
  X(Store, "store", 2, None, "TS")                         \
  X(InsnStart, "insn", 0, None, "S")                       \
  X(Add, "add", 2, None, "LC")                             \
  X(Sub, "sub", 2, None, "L")                              \
  X(Mul, "mul", 2, None, "LC")                             \
  X(MulHiU, "mulhu", 2, None, "LC")                        \
  X(MulHiS, "mulhs", 2, None, "LC")                        \
  X(DivU, "divu", 2, None, "T")                            \
  X(DivS, "divs", 2, None, "T")                            \
  X(RemU, "remu", 2, None, "T")                            \
  X(RemS, "rems", 2, None, "T")                            \
  X(And, "and", 2, None, "LC")                             \
  X(Or, "or", 2, None, "LC")                               \
  X(Xor, "xor", 2, None, "LC")                             \
  X(Not, "not", 1, None, "L")                              \
  X(Neg, "neg", 1, None, "L")                              \
  X(Abs, "abs", 1, None, "L")                              \
  X(Shl, "shl", 2, None, "L")                              \
  X(LShr, "lshr", 2, None, "L")                            \
  X(AShr, "ashr", 2, None, "L")                            \
  X(Rotl, "rotl", 2, None, "")                             \
  X(Rotr, "rotr", 2, None, "")                             \
  X(SMin, "smin", 2, None, "LC")                           \
  X(SMax, "smax", 2, None, "LC")                           \
  X(UMin, "umin", 2, None, "LC")                           \
  X(UMax, "umax", 2, None, "LC")                           \
  X(AddSatS, "add_sat_s", 2, None, "LC")                   \
  X(AddSatU, "add_sat_u", 2, None, "LC")                   \
  X(SubSatS, "sub_sat_s", 2, None, "L")                    \
  X(SubSatU, "sub_sat_u", 2, None, "L")                    \
  X(AvgU, "avg_u", 2, None, "LC")                          \
  X(Cmp, "cmp", 2, Cmp, "L")                               \
  X(Select, "select", 3, None, "")                         \
  X(ZExt, "zext", 1, None, "")                             \
  X(SExt, "sext", 1, None, "")                             \
  X(Trunc, "trunc", 1, None, "")                           \
  X(Bitcast, "bitcast", 1, None, "")                       \
  X(Ctz, "ctz", 1, None, "")                               \
  X(Clz, "clz", 1, None, "")                               \
  X(Popcount, "popcount", 1, None, "")                     \
  X(Bswap, "bswap", 1, None, "")                           \
  X(Parity, "parity", 1, None, "")                         \
  X(AddCarry, "add_carry", 3, None, "")                    \
  X(AddOverflow, "add_overflow", 3, None, "")              \
  X(SubBorrow, "sub_borrow", 3, None, "")                  \
  X(SubOverflow, "sub_overflow", 3, None, "")              \
  X(FAdd, "fadd", 2, Round, "LC")                          \
  X(FSub, "fsub", 2, Round, "L")                           \
  X(FMul, "fmul", 2, Round, "LC")                          \
  X(FDiv, "fdiv", 2, Round, "L")                           \
  X(FSqrt, "fsqrt", 1, Round, "L")                         \
  X(FMin, "fmin", 2, None, "L")                            \
  X(FMax, "fmax", 2, None, "L")                            \
  X(FCmp, "fcmp", 2, FCmp, "L")                            \
  X(FCvt, "fcvt", 1, Round, "")                            \
  X(FRound, "fround", 1, Round, "")                        \
  X(SIToFP, "sitofp", 1, Round, "L")                       \
  X(FPToSI, "fptosi", 1, Round, "L")                       \
  X(VExtract, "vextract", 1, None, "L")                    \
  X(VInsert, "vinsert", 2, None, "L")                      \
  X(VSplat, "vsplat", 1, None, "L")                        \
  X(VShuffle, "vshuffle", 2, None, "")                     \
  X(VPshufb, "vpshufb", 2, None, "")                       \
  X(VPackSS, "vpack_ss", 2, None, "L")                     \
  X(VPackUS, "vpack_us", 2, None, "L")                     \
  X(VMovmsk, "vmovmsk", 1, None, "L")                      \
  X(VMulAdd, "vmuladd", 2, None, "L")                      \
  X(VSad, "vsad", 2, None, "L")                            \
  X(AtomicCmpxchg, "atomic_cmpxchg", 3, None, "TS")        \
  X(AtomicRmw, "atomic_rmw", 2, Rmw, "TS")                 \
  X(Fence, "fence", 0, None, "S")                          \
  X(CallHelper, "call_helper", -1, None, "S")              \
  X(TrapIf, "trap_if", 1, None, "TS")                      \
  X(ExitIf, "exit_if", 1, None, "S")                       \
  X(Fill, "fill", 3, None, "TS")                           \
  X(Copy, "copy", 3, None, "TS")

enum class Opcode : uint8_t {
#define VM_IR_OP_ENUM(e, text, n, mod, props) e,
  VM_IR_OPCODES(VM_IR_OP_ENUM)
#undef VM_IR_OP_ENUM
};

struct OpcodeInfo {
  Opcode opcode;
  std::string_view name;
  int nargs;  // -1: variable (0..3)
  ModKind mod;
  bool may_trap;
  bool side_effect;
  bool lane_wise;
  bool commutative;
};
const OpcodeInfo& opcode_info(Opcode op);

// The number of elements a `fill` of `count` elements of `size` bytes at
// `addr` stores: none for a zero count, else `count` limited to the
// elements that end on addr's 4 KiB page, but at least one (an element
// that straddles the page end is stored alone, like a store). So two or
// more elements always lie in one page, and a fault can only hit the first.
// The page is the guest's (the unit of permissions vm-mem and the TLB use).
constexpr uint64_t kFillPageBytes = core::kTlbPageSize;
constexpr uint64_t fill_elements(uint64_t addr, uint32_t size, uint64_t count) {
  if (count == 0) return 0;
  uint64_t room = (kFillPageBytes - (addr & (kFillPageBytes - 1))) / size;
  if (room == 0) room = 1;
  return count < room ? count : room;
}
// The number of elements a `copy` moves: as fill_elements, with both the
// source and the destination run limited to their pages.
constexpr uint64_t copy_elements(uint64_t dst, uint64_t src, uint32_t size, uint64_t count) {
  uint64_t d = fill_elements(dst, size, count), s = fill_elements(src, size, count);
  return d < s ? d : s;
}
std::optional<Opcode> parse_opcode(std::string_view name);
inline constexpr uint32_t kNumOpcodes = 0
#define VM_IR_OP_COUNT(e, text, n, mod, props) +1
    VM_IR_OPCODES(VM_IR_OP_COUNT)
#undef VM_IR_OP_COUNT
    ;

// ------------------------------------------------------------- helpers ----
// Runtime helpers reachable through call_helper. Each is a C function
// `uint64_t fn(core::X86State*, uint64_t a0, uint64_t a1, uint64_t a2)` that
// may read and write the guest state (so register caches are written back
// before and reloaded after a call). X(Enum, "text", args, returns value)
#define VM_IR_HELPERS(X)             \
  X(Cpuid, "cpuid", 0, false)        \
  X(Rdtsc, "rdtsc", 0, true)         \
  X(Rdtscp, "rdtscp", 0, true)       \
  X(Xgetbv, "xgetbv", 1, true)       \
  X(X87, "x87", 3, true)

enum class Helper : uint8_t {
#define VM_IR_HELPER_ENUM(e, text, n, ret) e,
  VM_IR_HELPERS(VM_IR_HELPER_ENUM)
#undef VM_IR_HELPER_ENUM
};
struct HelperInfo {
  Helper id;
  std::string_view name;
  int nargs;
  bool returns_value;
};
inline constexpr uint32_t kNumHelpers = 0
#define VM_IR_HELPER_COUNT(e, text, n, ret) +1
    VM_IR_HELPERS(VM_IR_HELPER_COUNT)
#undef VM_IR_HELPER_COUNT
    ;
const HelperInfo& helper_info(Helper h);
std::optional<Helper> parse_helper(std::string_view name);

// ----------------------------------------------------------------- ops ----
using ValueId = uint32_t;
inline constexpr ValueId kNoValue = 0xffffffffu;
// Value ids are dense small integers; the verifier rejects ids at or above this.
inline constexpr ValueId kMaxValueId = 1u << 20;

struct Op {
  Opcode opcode = Opcode::Const;
  Type type = Type::Void;    // result type; Void for ops without a result
  Lane lane = Lane::None;    // element type when lane-wise on v128 (or the lane of vextract etc.)
  uint8_t mod = 0;           // CmpPred / FCmpPred / Rounding / Ext / RmwOp by opcode_info().mod
  uint8_t nargs = 0;
  ValueId result = kNoValue;
  std::array<ValueId, 3> args = {kNoValue, kNoValue, kNoValue};
  uint32_t aux = 0;          // register id, helper id, lane index, load memory bits, trap_if reason
  uint64_t imm = 0;          // constant (low 64 bits), register byte offset, guest pc (insn, exit_if), shuffle mask lo
  uint64_t imm_hi = 0;       // constant / shuffle mask high 64 bits

  friend bool operator==(const Op&, const Op&) = default;
};

// ----------------------------------------------------------- terminators ----
enum class TermKind : uint8_t { None, Jump, Branch, IndirectJump, Ret, Call, Syscall, Trap, Exit };

enum class TrapReason : uint8_t {
  InvalidOpcode,  // undecodable bytes, ud2
  Unsupported,    // valid instruction we do not implement
  DivideError,    // #DE
  Breakpoint,     // int3
  Halt,           // hlt
  Interrupt,      // int n (vector in Terminator::vector)
  MemoryFault,    // only produced at run time by a faulting access
  GeneralProtection,
};
std::string_view trap_reason_name(TrapReason r);
std::optional<TrapReason> parse_trap_reason(std::string_view s);

struct Terminator {
  TermKind kind = TermKind::None;
  // Branch: condition (i1). IndirectJump/Ret: target (i64). Call: target
  // (i64) or kNoValue for a direct call to `target`.
  ValueId value = kNoValue;
  // Jump/Branch: taken target. Call: direct target. Syscall/Exit: next pc.
  // Trap: pc of the trapping instruction.
  GuestAddr target;
  // Branch: not-taken target. Call: return address (the pushed one).
  GuestAddr fallthrough;
  TrapReason trap = TrapReason::InvalidOpcode;
  uint8_t vector = 0;   // Interrupt vector
  std::string message;  // Trap: human-readable reason

  friend bool operator==(const Terminator&, const Terminator&) = default;
};

// ---------------------------------------------------------------- block ----
struct IRBlock {
  GuestAddr start_pc;
  uint32_t guest_len = 0;  // guest bytes covered by the block
  std::vector<Op> ops;
  Terminator term;

  // One more than the largest value id defined (size for value tables).
  [[nodiscard]] uint32_t value_count() const;
  friend bool operator==(const IRBlock&, const IRBlock&) = default;
};

}  // namespace vm::ir
