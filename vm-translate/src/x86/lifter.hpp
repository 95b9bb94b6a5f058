// Private to vm-translate: the shared machinery of the x86-64 lifter.
//
// One Lifter lifts one decoded guest instruction into vm-ir. The per-class
// files (gp, shift, flags, control, string, atomic, system, sse) only describe
// what an instruction computes; this class owns how operands are reached
// (sub-registers, effective addresses, segment bases) and the ordering rule
// that keeps faults precise: every load and store of an instruction is
// emitted as the handler asks for it, while register and flag writes are
// queued and emitted only by finish(), after the last memory access. A
// faulting instruction therefore leaves the guest state untouched.
#pragma once

#include <Zydis/Zydis.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "vm/ir/builder.hpp"

namespace vm::translate::x86 {

using ir::Type;
using ir::Value;
using core::X86Reg;

struct DecodedInsn {
  ZydisDecodedInstruction zi{};
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT]{};
  uint64_t pc = 0;
  [[nodiscard]] uint64_t next_pc() const { return pc + zi.length; }
};

enum class LiftStatus {
  Continue,     // the block may continue with the next instruction
  EndBlock,     // the handler set the block terminator
  Unsupported,  // this form is not implemented: the block ends in Trap(unsupported)
};

// Instruction classes, one source file each; also the sections of docs/x86-coverage.md.
enum class InsnClass : uint8_t { Move, Arith, Shift, BitOps, Flags, Control, String, Atomic, System, Sse, SseFloat, SseExt, X87 };
std::string_view insn_class_name(InsnClass c);

class Lifter;
using LiftFn = LiftStatus (*)(Lifter& l, int aux);

// One row of the lifter's dispatch table: a mnemonic, the handler that lifts
// it (with a handler-specific parameter), and the forms it accepts. The
// same rows generate docs/x86-coverage.md.
struct LiftEntry {
  ZydisMnemonic mnemonic;
  InsnClass cls;
  LiftFn fn;
  int aux;
  std::string_view forms;
};

std::span<const LiftEntry> move_entries();
std::span<const LiftEntry> arith_entries();
std::span<const LiftEntry> shift_entries();
std::span<const LiftEntry> bitops_entries();
std::span<const LiftEntry> flags_entries();
std::span<const LiftEntry> control_entries();
std::span<const LiftEntry> string_entries();
std::span<const LiftEntry> atomic_entries();
std::span<const LiftEntry> system_entries();
std::span<const LiftEntry> sse_entries();
std::span<const LiftEntry> sse_float_entries();
std::span<const LiftEntry> sse_ext_entries();
std::span<const LiftEntry> x87_entries();

// Every entry of every class, and the lookup by mnemonic (nullptr: unsupported).
std::span<const LiftEntry* const> all_entries();
const LiftEntry* find_entry(ZydisMnemonic m);

class Lifter {
public:
  Lifter(ir::IRBuilder& b, const DecodedInsn& in);

  ir::IRBuilder& b;
  const DecodedInsn& in;

  // ---- operands (index into in.ops) ----
  [[nodiscard]] const ZydisDecodedOperand& op(int i) const { return in.ops[i]; }
  [[nodiscard]] bool is_reg(int i) const { return in.ops[i].type == ZYDIS_OPERAND_TYPE_REGISTER; }
  [[nodiscard]] bool is_mem(int i) const { return in.ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY; }
  [[nodiscard]] bool is_imm(int i) const { return in.ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE; }
  [[nodiscard]] uint32_t bits(int i) const { return in.ops[i].size; }
  [[nodiscard]] Type type(int i) const;
  [[nodiscard]] uint32_t opsize() const { return in.zi.operand_width; }
  [[nodiscard]] bool has_lock() const { return (in.zi.attributes & ZYDIS_ATTRIB_HAS_LOCK) != 0; }
  [[nodiscard]] uint64_t next_pc() const { return in.next_pc(); }
  [[nodiscard]] ZydisMnemonic mnemonic() const { return in.zi.mnemonic; }

  // Effective address of memory operand i (segment base and address size
  // applied); computed once per operand.
  Value address(int i);
  // Value of operand i at its own width (immediates: at the operand width).
  Value read(int i);
  // Value of operand i at type t (immediates sign-extended, registers/memory
  // read at t's width, which must not exceed the operand's).
  Value read_as(int i, Type t);
  // Register destinations are queued; memory destinations are stored now.
  void write(int i, Value v);

  // ---- registers ----
  Value gpr(unsigned n, Type t);           // low bits of GPR n
  void set_gpr(unsigned n, Value v);       // queued; 32-bit values zero-extend to 64
  Value reg(ZydisRegister r);              // any GPR/XMM by Zydis name, at its width
  void set_reg(ZydisRegister r, Value v);  // queued, x86 partial-write rules
  void set_state(X86Reg r, Value v, uint32_t offset = 0);  // queued raw write
  Value flag(X86Reg f);                    // i1
  void set_flag(X86Reg f, Value v);        // queued, v is i1
  Value rip_value();                       // address of the next instruction

  // Condition code 0..15 (the low nibble of jcc/setcc/cmovcc opcodes) as i1.
  Value cond(unsigned cc);

  // ---- helpers ----
  // Constant of type t from the low bits of v.
  Value c(Type t, uint64_t v) {
    uint32_t w = ir::type_bits(t);
    return b.constant(t, w >= 64 ? v : v & ((uint64_t{1} << w) - 1));
  }
  Value is_zero(Value v) { return b.cmp(ir::CmpPred::Eq, v, c(v.type, 0)); }
  Value msb(Value v);  // sign bit as i1
  Value bit(Value v, Value index);  // (v >> index) & 1 as i1
  Value push_value(Value v);        // store at rsp - size, returns new rsp (not yet written)
  Value to_i1(Value v) { return b.cmp(ir::CmpPred::Ne, v, c(v.type, 0)); }

  // Emits the queued register writes. Called once per instruction, after the handler.
  void finish();
  // Ends one step of a rep-prefixed instruction that the block continues
  // with another (rep stos: a page through `fill`, then one ordinary
  // iteration): emits the queued writes, forgets the cached addresses (they
  // depend on the registers just written) and opens the next step with a
  // marker at the same pc, where the instruction may be interrupted as
  // between any two of its iterations.
  void next_iteration();

private:
  struct PendingWrite {
    X86Reg reg;
    Value value;
    uint32_t offset;
  };
  std::vector<PendingWrite> pending_;
  Value addr_cache_[ZYDIS_MAX_OPERAND_COUNT]{};
};

// Whether memory operand i must be 16-byte aligned (#GP otherwise); Lifter::address() checks it.
bool needs_16_byte_alignment(const DecodedInsn& in, int i);

// SSE forms of the mnemonics shared with string instructions (sse_int.cpp, sse_float.cpp).
LiftStatus lift_sse_movsd(Lifter& l);
LiftStatus lift_sse_cmpsd(Lifter& l);

// The x87 part of an FXSAVE image at base (status word, abridged tag,
// st(0..7) in stack order), stored now / loaded and queued (x87.cpp).
void fxsave_x87(Lifter& l, Value base);
void fxrstor_x87(Lifter& l, Value base);

// Flag computation shared by the classes (flags.cpp).
void set_szp(Lifter& l, Value result);
void flags_logic(Lifter& l, Value result);
void flags_add(Lifter& l, Value a, Value b, Value carry_in, Value result);
void flags_sub(Lifter& l, Value a, Value b, Value borrow_in, Value result);
// AF of an add/sub: bit 4 of a ^ b ^ result.
Value aux_carry(Lifter& l, Value a, Value b, Value result);

}  // namespace vm::translate::x86
