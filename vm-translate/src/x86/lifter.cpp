#include "x86/lifter.hpp"

#include <algorithm>
#include <array>

#include "vm/core/assert.hpp"

namespace vm::translate::x86 {

using ir::CmpPred;

std::string_view insn_class_name(InsnClass c) {
  switch (c) {
    case InsnClass::Move: return "Data movement";
    case InsnClass::Arith: return "Integer arithmetic and logic";
    case InsnClass::Shift: return "Shifts and rotates";
    case InsnClass::BitOps: return "Bit operations";
    case InsnClass::Flags: return "Flags and conditions";
    case InsnClass::Control: return "Control flow";
    case InsnClass::String: return "String operations";
    case InsnClass::Atomic: return "Atomics";
    case InsnClass::System: return "System";
    case InsnClass::Sse: return "SSE integer and data movement (SSE2, SSSE3 and SSE4.1 subsets)";
    case InsnClass::SseFloat: return "SSE floating point and MXCSR";
    case InsnClass::SseExt: return "SSE3, SSSE3 and SSE4.1 additions";
    case InsnClass::X87: return "x87 floating point";
  }
  return "?";
}

namespace {

std::span<const LiftEntry> class_entries(InsnClass c) {
  switch (c) {
    case InsnClass::Move: return move_entries();
    case InsnClass::Arith: return arith_entries();
    case InsnClass::Shift: return shift_entries();
    case InsnClass::BitOps: return bitops_entries();
    case InsnClass::Flags: return flags_entries();
    case InsnClass::Control: return control_entries();
    case InsnClass::String: return string_entries();
    case InsnClass::Atomic: return atomic_entries();
    case InsnClass::System: return system_entries();
    case InsnClass::Sse: return sse_entries();
    case InsnClass::SseFloat: return sse_float_entries();
    case InsnClass::SseExt: return sse_ext_entries();
    case InsnClass::X87: return x87_entries();
  }
  return {};
}

struct Tables {
  std::vector<const LiftEntry*> all;
  std::array<const LiftEntry*, ZYDIS_MNEMONIC_MAX_VALUE + 1> by_mnemonic{};
  Tables() {
    for (int k = 0; k <= static_cast<int>(InsnClass::X87); ++k) {
      for (const LiftEntry& e : class_entries(static_cast<InsnClass>(k))) {
        VM_ASSERT(by_mnemonic[e.mnemonic] == nullptr, "mnemonic listed twice in the lifter tables");
        by_mnemonic[e.mnemonic] = &e;
        all.push_back(&e);
      }
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::span<const LiftEntry* const> all_entries() { return tables().all; }

const LiftEntry* find_entry(ZydisMnemonic m) {
  if (m < 0 || m > ZYDIS_MNEMONIC_MAX_VALUE) return nullptr;
  return tables().by_mnemonic[m];
}

Lifter::Lifter(ir::IRBuilder& builder, const DecodedInsn& insn) : b(builder), in(insn) {}

Type Lifter::type(int i) const {
  auto t = ir::int_type(in.ops[i].size);
  if (in.ops[i].size == 128) return Type::V128;
  return t ? *t : Type::I64;
}

Value Lifter::rip_value() { return c(Type::I64, next_pc()); }

bool needs_16_byte_alignment(const DecodedInsn& in, int i) {
  // Legacy-encoded SSE instructions with an m128 operand raise #GP(0) on a
  // misaligned address, except the explicitly unaligned moves. Smaller
  // operands (scalar, m64 forms) and non-SSE m128 users are not checked.
  if (in.zi.encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY || in.ops[i].size != 128) return false;
  switch (in.zi.mnemonic) {
    case ZYDIS_MNEMONIC_MOVUPS: case ZYDIS_MNEMONIC_MOVUPD: case ZYDIS_MNEMONIC_MOVDQU: case ZYDIS_MNEMONIC_LDDQU:
      return false;
    default: break;
  }
  for (int k = 0; k < in.zi.operand_count_visible; ++k)
    if (in.ops[k].type == ZYDIS_OPERAND_TYPE_REGISTER && ZydisRegisterGetClass(in.ops[k].reg.value) == ZYDIS_REGCLASS_XMM)
      return true;
  return false;
}

Value Lifter::address(int i) {
  if (addr_cache_[i].valid()) return addr_cache_[i];
  const auto& m = in.ops[i].mem;
  Value ea;
  auto add_term = [&](Value v) { ea = ea.valid() ? b.add(ea, v) : v; };
  if (m.base == ZYDIS_REGISTER_RIP || m.base == ZYDIS_REGISTER_EIP) {
    add_term(c(Type::I64, next_pc()));
  } else if (m.base != ZYDIS_REGISTER_NONE) {
    add_term(b.zext_or_trunc(reg(m.base), Type::I64));
  }
  if (m.index != ZYDIS_REGISTER_NONE) {
    Value idx = b.zext_or_trunc(reg(m.index), Type::I64);
    if (m.scale > 1) idx = b.mul(idx, c(Type::I64, m.scale));
    add_term(idx);
  }
  if (m.disp.has_displacement || !ea.valid()) add_term(c(Type::I64, static_cast<uint64_t>(m.disp.value)));
  if (in.zi.address_width == 32) ea = b.zext(b.trunc(ea, Type::I32), Type::I64);
  if (m.segment == ZYDIS_REGISTER_FS) ea = b.add(ea, b.get_reg(X86Reg::FsBase, Type::I64));
  if (m.segment == ZYDIS_REGISTER_GS) ea = b.add(ea, b.get_reg(X86Reg::GsBase, Type::I64));
  addr_cache_[i] = ea;
  // Emitted with the first use of the address, so before any access of the
  // instruction and before its register writes (finish()).
  if (needs_16_byte_alignment(in, i))
    b.trap_if(to_i1(b.and_(ea, c(Type::I64, 15))), ir::TrapReason::GeneralProtection);
  return ea;
}

Value Lifter::read(int i) { return read_as(i, type(i)); }

Value Lifter::read_as(int i, Type t) {
  const auto& o = in.ops[i];
  switch (o.type) {
    case ZYDIS_OPERAND_TYPE_IMMEDIATE: {
      uint64_t v = o.imm.value.u;
      return c(t, v);
    }
    case ZYDIS_OPERAND_TYPE_REGISTER: {
      Value v = reg(o.reg.value);
      if (v.type == t) return v;
      if (t == Type::V128 || v.type == Type::V128) return b.bitcast(v, t);
      return b.zext_or_trunc(v, t);
    }
    case ZYDIS_OPERAND_TYPE_MEMORY: return b.load(t, address(i));
    default: break;
  }
  VM_ASSERT(false, "read of an operand without a value");
  return c(t, 0);
}

void Lifter::write(int i, Value v) {
  const auto& o = in.ops[i];
  if (o.type == ZYDIS_OPERAND_TYPE_REGISTER) {
    set_reg(o.reg.value, v);
  } else {
    VM_ASSERT(o.type == ZYDIS_OPERAND_TYPE_MEMORY, "write to a non-lvalue operand");
    b.store(address(i), v);
  }
}

Value Lifter::gpr(unsigned n, Type t) { return b.get_reg(core::gpr(n), t); }

void Lifter::set_gpr(unsigned n, Value v) {
  if (v.type == Type::I32) v = b.zext(v, Type::I64);
  set_state(core::gpr(n), v);
}

namespace {

struct RegRef {
  X86Reg reg;
  uint32_t offset;
  Type type;
};

RegRef resolve(ZydisRegister r) {
  if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH) {
    // ah, ch, dh, bh are byte 1 of rax, rcx, rdx, rbx.
    static constexpr unsigned kHigh[] = {0, 1, 2, 3};
    return {core::gpr(kHigh[r - ZYDIS_REGISTER_AH]), 1, Type::I8};
  }
  if (r >= ZYDIS_REGISTER_XMM0 && r <= ZYDIS_REGISTER_XMM15)
    return {core::xmm_reg(static_cast<unsigned>(r - ZYDIS_REGISTER_XMM0)), 0, Type::V128};
  ZydisRegister full = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
  VM_ASSERT(full >= ZYDIS_REGISTER_RAX && full <= ZYDIS_REGISTER_R15, "not a general-purpose register");
  auto width = ZydisRegisterGetWidth(ZYDIS_MACHINE_MODE_LONG_64, r);
  return {core::gpr(static_cast<unsigned>(full - ZYDIS_REGISTER_RAX)), 0, *ir::int_type(width)};
}

}  // namespace

Value Lifter::reg(ZydisRegister r) {
  RegRef ref = resolve(r);
  return b.get_reg(ref.reg, ref.type, ref.offset);
}

void Lifter::set_reg(ZydisRegister r, Value v) {
  RegRef ref = resolve(r);
  if (ref.type == Type::V128) {
    set_state(ref.reg, v);
    return;
  }
  VM_ASSERT(v.type == ref.type, "register write of the wrong width");
  if (ref.type == Type::I32) v = b.zext(v, Type::I64);
  set_state(ref.reg, v, ref.offset);
}

void Lifter::set_state(X86Reg r, Value v, uint32_t offset) { pending_.push_back({r, v, offset}); }

Value Lifter::flag(X86Reg f) { return b.get_reg(f, Type::I1); }
void Lifter::set_flag(X86Reg f, Value v) {
  VM_ASSERT(v.type == Type::I1, "flags are i1");
  set_state(f, v);
}

Value Lifter::msb(Value v) { return b.cmp(CmpPred::Slt, v, c(v.type, 0)); }

Value Lifter::bit(Value v, Value index) {
  Value shifted = b.lshr(v, b.zext_or_trunc(index, v.type));
  return to_i1(b.and_(shifted, c(v.type, 1)));
}

Value Lifter::push_value(Value v) {
  Value rsp = gpr(4, Type::I64);
  Value new_rsp = b.sub(rsp, c(Type::I64, ir::type_bytes(v.type)));
  b.store(new_rsp, v);
  return new_rsp;
}

Value Lifter::cond(unsigned cc) {
  Value r;
  switch (cc >> 1) {
    case 0: r = flag(X86Reg::Of); break;
    case 1: r = flag(X86Reg::Cf); break;
    case 2: r = flag(X86Reg::Zf); break;
    case 3: r = b.or_(flag(X86Reg::Cf), flag(X86Reg::Zf)); break;
    case 4: r = flag(X86Reg::Sf); break;
    case 5: r = flag(X86Reg::Pf); break;
    case 6: r = b.xor_(flag(X86Reg::Sf), flag(X86Reg::Of)); break;
    default: r = b.or_(flag(X86Reg::Zf), b.xor_(flag(X86Reg::Sf), flag(X86Reg::Of))); break;
  }
  return (cc & 1) ? b.xor_(r, b.i1(true)) : r;
}

void Lifter::finish() {
  for (const auto& w : pending_) b.set_reg(w.reg, w.value, w.offset);
  pending_.clear();
}

void Lifter::next_iteration() {
  finish();
  for (auto& a : addr_cache_) a = Value{};
  b.insn_start(core::GuestAddr(in.pc));
}

// ------------------------------------------------------------ flag helpers ----

void set_szp(Lifter& l, Value r) {
  l.set_flag(X86Reg::Zf, l.is_zero(r));
  l.set_flag(X86Reg::Sf, l.msb(r));
  Value low = r.type == Type::I8 ? r : l.b.trunc(r, Type::I8);
  l.set_flag(X86Reg::Pf, l.b.parity(low));
}

void flags_logic(Lifter& l, Value r) {
  l.set_flag(X86Reg::Cf, l.b.i1(false));
  l.set_flag(X86Reg::Of, l.b.i1(false));
  // AF is undefined after logic ops; hardware and QEMU both leave it 0.
  l.set_flag(X86Reg::Af, l.b.i1(false));
  set_szp(l, r);
}

Value aux_carry(Lifter& l, Value a, Value b, Value r) {
  Value x = l.b.xor_(l.b.xor_(a, b), r);
  return l.to_i1(l.b.and_(x, l.c(x.type, 0x10)));
}

void flags_add(Lifter& l, Value a, Value b, Value cin, Value r) {
  l.set_flag(X86Reg::Cf, l.b.add_carry(a, b, cin));
  l.set_flag(X86Reg::Of, l.b.add_overflow(a, b, cin));
  l.set_flag(X86Reg::Af, aux_carry(l, a, b, r));
  set_szp(l, r);
}

void flags_sub(Lifter& l, Value a, Value b, Value bin, Value r) {
  l.set_flag(X86Reg::Cf, l.b.sub_borrow(a, b, bin));
  l.set_flag(X86Reg::Of, l.b.sub_overflow(a, b, bin));
  l.set_flag(X86Reg::Af, aux_carry(l, a, b, r));
  set_szp(l, r);
}

}  // namespace vm::translate::x86
