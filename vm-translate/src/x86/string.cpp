// String operations: movs, stos, lods, cmps, scas in all widths, with and
// without rep/repe/repne, honouring DF and the address-size override.
//
// A block is straight-line code, so a rep-prefixed instruction executes one
// iteration per block run and ends the block with Branch(again, pc, next):
// it loops back to itself while the count (and for cmps/scas the ZF
// condition) says so. Interrupting after any iteration is therefore exact.
// With a zero count the instruction must do nothing at all (no access, no
// fault): an exit_if on rcx == 0 leaves the block for the next instruction
// before the first access.
//
// rep stos with 64-bit addressing first stores as many elements as fit in
// the destination's page with one vm-ir `fill` (none when DF is set: fill
// only ascends), then does one ordinary iteration, so a run of the block
// covers a page instead of an element. rep movs likewise with `copy`, as
// many elements as fit in both the source's and the destination's page.
// The two parts are separate steps of the instruction (a marker at the
// same pc between them), so the state between them is the one after that
// many iterations, as x86 defines it.
#include "x86/lifter.hpp"

namespace vm::translate::x86 {
namespace {

using ir::CmpPred;
using core::GuestAddr;

enum Kind { kMovs, kStos, kLods, kCmps, kScas };

struct StringOp {
  Kind kind;
  uint32_t bits;
};

LiftStatus lift_string(Lifter& l, StringOp s) {
  Type t = *ir::int_type(s.bits);
  Type at = l.in.zi.address_width == 32 ? Type::I32 : Type::I64;
  uint64_t attrs = l.in.zi.attributes;
  bool rep = (attrs & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE)) != 0;
  bool compares = s.kind == kCmps || s.kind == kScas;
  bool repe = compares && (attrs & ZYDIS_ATTRIB_HAS_REPE) != 0;
  bool repne = compares && (attrs & ZYDIS_ATTRIB_HAS_REPNE) != 0;

  // Zydis lists the memory operands: [rdi] (es, destination) and [rsi]
  // (ds or an override); address() applies segment base and address size.
  int di_op = -1, si_op = -1;
  for (int i = 0; i < l.in.zi.operand_count; ++i) {
    if (!l.is_mem(i)) continue;
    ZydisRegister base = l.op(i).mem.base;
    if (base == ZYDIS_REGISTER_RDI || base == ZYDIS_REGISTER_EDI) di_op = i;
    if (base == ZYDIS_REGISTER_RSI || base == ZYDIS_REGISTER_ESI) si_op = i;
  }

  // rep stos and rep movs with 64-bit addresses: first a page's worth at
  // once (nothing when DF is set), as one step of the instruction.
  if (rep && at == Type::I64 && di_op >= 0 && (s.kind == kStos || (s.kind == kMovs && si_op >= 0))) {
    Value before = l.gpr(1, at);
    l.b.exit_if(l.is_zero(before), GuestAddr(l.next_pc()));
    Value count = l.b.select(l.flag(X86Reg::Df), l.c(at, 0), before);
    Value dst = l.address(di_op);
    Value n;
    if (s.kind == kStos) {
      Value v = l.gpr(0, t);
      n = l.b.fill(dst, v, count);
    } else {
      Value src = l.address(si_op);
      n = l.b.copy(dst, src, count, s.bits);
    }
    Value moved = l.b.mul(n, l.c(at, s.bits / 8));
    if (s.kind == kMovs) l.set_gpr(6, l.b.add(l.gpr(6, at), moved));
    l.set_gpr(7, l.b.add(l.gpr(7, at), moved));
    l.set_gpr(1, l.b.sub(before, n));
    l.next_iteration();
  }
  Value rcx;
  if (rep) {
    rcx = l.gpr(1, at);
    l.b.exit_if(l.is_zero(rcx), GuestAddr(l.next_pc()));
  }
  Value acc = l.gpr(0, t);
  Value src, dst_val;
  switch (s.kind) {
    case kMovs:
      src = l.b.load(t, l.address(si_op));
      l.b.store(l.address(di_op), src);
      break;
    case kStos: l.b.store(l.address(di_op), acc); break;
    case kLods: src = l.b.load(t, l.address(si_op)); break;
    case kCmps:
      src = l.b.load(t, l.address(si_op));
      dst_val = l.b.load(t, l.address(di_op));
      break;
    case kScas: dst_val = l.b.load(t, l.address(di_op)); break;
  }

  Value df = l.flag(X86Reg::Df);
  Value step = l.b.select(df, l.c(at, -static_cast<uint64_t>(s.bits / 8)), l.c(at, s.bits / 8));
  auto advance = [&](unsigned n) { l.set_gpr(n, l.b.add(l.gpr(n, at), step)); };
  if (s.kind == kMovs || s.kind == kLods || s.kind == kCmps) advance(6);
  if (s.kind != kLods) advance(7);
  if (s.kind == kLods) {
    if (t == Type::I8 || t == Type::I16) {
      l.set_state(X86Reg::Rax, src);
    } else {
      l.set_gpr(0, src);
    }
  }
  Value zf_after;
  if (compares) {
    Value a = s.kind == kCmps ? src : acc;
    Value b = dst_val;
    Value r = l.b.sub(a, b);
    Value f = l.b.i1(false);
    l.set_flag(X86Reg::Cf, l.b.sub_borrow(a, b, f));
    l.set_flag(X86Reg::Of, l.b.sub_overflow(a, b, f));
    l.set_flag(X86Reg::Af, aux_carry(l, a, b, r));
    zf_after = l.is_zero(r);
    l.set_flag(X86Reg::Zf, zf_after);
    l.set_flag(X86Reg::Sf, l.msb(r));
    l.set_flag(X86Reg::Pf, l.b.parity(t == Type::I8 ? r : l.b.trunc(r, Type::I8)));
  }
  if (!rep) return LiftStatus::Continue;

  Value new_rcx = l.b.sub(rcx, l.c(at, 1));
  l.set_gpr(1, new_rcx);
  Value again = l.to_i1(new_rcx);
  if (repe) again = l.b.and_(again, zf_after);
  if (repne) again = l.b.and_(again, l.b.xor_(zf_after, l.b.i1(true)));
  l.b.branch(again, GuestAddr(l.in.pc), GuestAddr(l.next_pc()));
  return LiftStatus::EndBlock;
}

template <Kind K, uint32_t Bits>
LiftStatus lift(Lifter& l, int) {
  return lift_string(l, {K, Bits});
}

// movsd and cmpsd are also SSE2 mnemonics (0F-map encodings).
LiftStatus lift_movsd(Lifter& l, int) {
  if (l.in.zi.opcode_map != ZYDIS_OPCODE_MAP_DEFAULT) return lift_sse_movsd(l);
  return lift_string(l, {kMovs, 32});
}
LiftStatus lift_cmpsd(Lifter& l, int) {
  if (l.in.zi.opcode_map != ZYDIS_OPCODE_MAP_DEFAULT) return lift_sse_cmpsd(l);
  return lift_string(l, {kCmps, 32});
}

constexpr const char* kRepStos =
    "rep (64-bit addresses: each run of the block stores the rest of the destination's page with one vm-ir "
    "`fill` when DF is clear, then one element)";
constexpr const char* kRepMovs =
    "rep (64-bit addresses: each run of the block moves what fits in the source's and the destination's page "
    "with one vm-ir `copy` when DF is clear, then one element)";

#define STR(m, k, bits, forms) {ZYDIS_MNEMONIC_##m, InsnClass::String, lift<k, bits>, 0, forms}

constexpr LiftEntry kEntries[] = {
    STR(MOVSB, kMovs, 8, kRepMovs), STR(MOVSW, kMovs, 16, kRepMovs),
    {ZYDIS_MNEMONIC_MOVSD, InsnClass::String, lift_movsd, 0,
     "rep (string form, as movsb; the SSE2 form is listed under SSE)"},
    STR(MOVSQ, kMovs, 64, kRepMovs),
    STR(STOSB, kStos, 8, kRepStos), STR(STOSW, kStos, 16, kRepStos), STR(STOSD, kStos, 32, kRepStos),
    STR(STOSQ, kStos, 64, kRepStos),
    STR(LODSB, kLods, 8, "rep"), STR(LODSW, kLods, 16, "rep"), STR(LODSD, kLods, 32, "rep"), STR(LODSQ, kLods, 64, "rep"),
    STR(CMPSB, kCmps, 8, "repe, repne"), STR(CMPSW, kCmps, 16, "repe, repne"),
    {ZYDIS_MNEMONIC_CMPSD, InsnClass::String, lift_cmpsd, 0, "repe, repne (string form; the SSE2 form is listed under SSE)"},
    STR(CMPSQ, kCmps, 64, "repe, repne"),
    STR(SCASB, kScas, 8, "repe, repne"), STR(SCASW, kScas, 16, "repe, repne"), STR(SCASD, kScas, 32, "repe, repne"),
    STR(SCASQ, kScas, 64, "repe, repne"),
};
#undef STR

}  // namespace

std::span<const LiftEntry> string_entries() { return kEntries; }

}  // namespace vm::translate::x86
