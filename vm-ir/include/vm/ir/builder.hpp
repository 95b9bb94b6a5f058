// IRBuilder: appends ops to an IRBlock, numbering SSA values and inferring
// result types. It does not validate; run the Verifier on the result.
#pragma once

#include <array>
#include <initializer_list>
#include <string>

#include "vm/ir/ir.hpp"

namespace vm::ir {

struct Value {
  ValueId id = kNoValue;
  Type type = Type::Void;
  [[nodiscard]] bool valid() const { return id != kNoValue; }
};

class IRBuilder {
public:
  // Continues value numbering after the values already in `block`.
  explicit IRBuilder(IRBlock& block);

  IRBlock& block() { return *block_; }

  // Constants. Floating-point and vector constants are given as bit patterns.
  Value constant(Type t, uint64_t lo, uint64_t hi = 0);
  Value i1(bool v) { return constant(Type::I1, v ? 1 : 0); }
  Value i8(uint64_t v) { return constant(Type::I8, v & 0xff); }
  Value i16(uint64_t v) { return constant(Type::I16, v & 0xffff); }
  Value i32(uint64_t v) { return constant(Type::I32, v & 0xffffffffu); }
  Value i64(uint64_t v) { return constant(Type::I64, v); }
  Value f32(float v);
  Value f64(double v);

  // Guest state. `byte_offset` selects a sub-register (e.g. ah = rax+1, the
  // low f64 of xmm0 = xmm0+0 with type f64). set_reg writes exactly the bits
  // of the value's type and leaves the rest of the register unchanged.
  Value get_reg(X86Reg r, Type t, uint32_t byte_offset = 0);
  void set_reg(X86Reg r, Value v, uint32_t byte_offset = 0);

  // Memory. load_ext reads `mem_bits` and zero/sign extends to `t`.
  Value load(Type t, Value addr);
  Value load_ext(Type t, Value addr, Ext ext, uint32_t mem_bits);
  void store(Value addr, Value v);

  // Marks the start of guest instruction `pc`: faults in the following ops
  // are reported at this pc.
  void insn_start(GuestAddr pc);

  // Generic forms. Result type: the first operand's type (binary/unary).
  Value binary(Opcode op, Value a, Value b, Lane lane = Lane::None);
  Value unary(Opcode op, Value a, Lane lane = Lane::None);

  Value add(Value a, Value b) { return binary(Opcode::Add, a, b); }
  Value sub(Value a, Value b) { return binary(Opcode::Sub, a, b); }
  Value mul(Value a, Value b) { return binary(Opcode::Mul, a, b); }
  Value and_(Value a, Value b) { return binary(Opcode::And, a, b); }
  Value or_(Value a, Value b) { return binary(Opcode::Or, a, b); }
  Value xor_(Value a, Value b) { return binary(Opcode::Xor, a, b); }
  Value shl(Value a, Value b) { return binary(Opcode::Shl, a, b); }
  Value lshr(Value a, Value b) { return binary(Opcode::LShr, a, b); }
  Value ashr(Value a, Value b) { return binary(Opcode::AShr, a, b); }
  Value not_(Value a) { return unary(Opcode::Not, a); }
  Value neg(Value a) { return unary(Opcode::Neg, a); }

  Value cmp(CmpPred p, Value a, Value b, Lane lane = Lane::None);
  Value fcmp(FCmpPred p, Value a, Value b, Lane lane = Lane::None);
  Value select(Value cond, Value a, Value b);

  Value zext(Value v, Type t);
  Value sext(Value v, Type t);
  Value trunc(Value v, Type t);
  Value bitcast(Value v, Type t);
  // Zero-extends, truncates or returns v so that the result has type t.
  Value zext_or_trunc(Value v, Type t);

  // Bit counting: ctz/clz/popcount keep the operand type; parity gives i1.
  Value parity(Value v);

  // Carry/borrow and signed overflow of a op b op carry_in (i1).
  Value add_carry(Value a, Value b, Value cin);
  Value add_overflow(Value a, Value b, Value cin);
  Value sub_borrow(Value a, Value b, Value bin);
  Value sub_overflow(Value a, Value b, Value bin);

  // Floating point. `farith` covers fadd/fsub/fmul/fdiv (rounded) and fmin/fmax.
  Value farith(Opcode op, Value a, Value b, Rounding rm = Rounding::Dyn, Lane lane = Lane::None);
  Value fsqrt(Value a, Rounding rm = Rounding::Dyn, Lane lane = Lane::None);
  Value fcvt(Value a, Type to, Rounding rm = Rounding::Dyn);
  Value fround(Value a, Rounding rm);
  Value sitofp(Value a, Type to, Rounding rm = Rounding::Dyn, Lane lane = Lane::None);
  Value fptosi(Value a, Type to, Rounding rm, Lane lane = Lane::None);

  // Vectors.
  Value vextract(Lane lane, Value v, uint32_t index);
  Value vinsert(Lane lane, Value v, Value scalar, uint32_t index);
  Value vsplat(Lane lane, Value scalar);
  // Byte shuffle of a||b: mask[i] < 16 picks a[i], 16..31 picks b[i-16], >= 0x80 gives zero.
  Value vshuffle(Value a, Value b, const std::array<uint8_t, 16>& mask);
  Value vpshufb(Value a, Value control);
  Value vpack_ss(Lane src_lane, Value a, Value b);
  Value vpack_us(Lane src_lane, Value a, Value b);
  Value vmovmsk(Lane lane, Value v);
  Value vmuladd(Value a, Value b);  // pmaddwd: i16 pairs -> i32 sums
  Value vsad(Value a, Value b);     // psadbw: u8 |a-b| sums per 64-bit half

  // Atomics return the old memory value.
  Value atomic_cmpxchg(Value addr, Value expected, Value desired);
  Value atomic_rmw(RmwOp op, Value addr, Value v);
  // Stores v (i8..i64) fill_elements(addr, size, count) times from addr up; returns that number (i64).
  Value fill(Value addr, Value v, Value count);
  // Moves copy_elements(dst, src, bits / 8, count) elements of `bits` (8..64) bits from src up to dst up, one
  // by one; returns that number (i64).
  Value copy(Value dst, Value src, Value count, uint32_t bits);
  void fence();

  // Conditional leaves: when `cond` (i1) holds, trap at the current
  // instruction, or end the block and continue at `target`.
  void trap_if(Value cond, TrapReason reason);
  void exit_if(Value cond, GuestAddr target);

  // Returns an i64 value when the helper returns one, else an invalid Value.
  Value call_helper(Helper h, std::initializer_list<Value> args = {});

  // Terminators (each replaces any previous terminator).
  void jump(GuestAddr target);
  void branch(Value cond, GuestAddr taken, GuestAddr not_taken);
  void indirect_jump(Value target);
  void ret(Value target);
  void call(GuestAddr target, GuestAddr return_pc);
  void call_indirect(Value target, GuestAddr return_pc);
  void syscall(GuestAddr next_pc);
  void trap(TrapReason reason, GuestAddr pc, std::string message, uint8_t vector = 0);
  void exit(GuestAddr next_pc);

  // Appends an arbitrary op (its result id is assigned here when type != Void).
  Value append(Op op);

private:
  IRBlock* block_;
  ValueId next_ = 0;
};

}  // namespace vm::ir
