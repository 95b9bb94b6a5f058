// The x86-64 guest CPU state, described once.
//
// VM_X86_STATE_REGS is the single source of truth for the guest register
// file: the X86Reg ids used by vm-ir's get_reg/set_reg, the interpreter's
// accessors, the LLVM lowering's offsets, the JSON state I/O and the tests
// are all generated from it. To add a register, add one line here and a
// member to X86State; everything else follows.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace vm::core {

// How a register is stored in X86State. Flags are one byte holding 0 or 1.
enum class RegKind : uint8_t { Flag, I16, I32, I64, V128 };

constexpr uint32_t reg_kind_bytes(RegKind k) {
  switch (k) {
    case RegKind::Flag: return 1;
    case RegKind::I16: return 2;
    case RegKind::I32: return 4;
    case RegKind::I64: return 8;
    case RegKind::V128: return 16;
  }
  return 0;
}

struct Xmm {
  uint64_t lo = 0;  // bytes 0..7 (little endian)
  uint64_t hi = 0;  // bytes 8..15
  friend constexpr bool operator==(const Xmm&, const Xmm&) = default;
};

// X(Id, "name", kind, member-expression)
// GPR order is the x86 encoding order, so X86Reg::Rax + n is GPR number n.
#define VM_X86_STATE_REGS(X)            \
  X(Rax, "rax", I64, gpr[0])            \
  X(Rcx, "rcx", I64, gpr[1])            \
  X(Rdx, "rdx", I64, gpr[2])            \
  X(Rbx, "rbx", I64, gpr[3])            \
  X(Rsp, "rsp", I64, gpr[4])            \
  X(Rbp, "rbp", I64, gpr[5])            \
  X(Rsi, "rsi", I64, gpr[6])            \
  X(Rdi, "rdi", I64, gpr[7])            \
  X(R8, "r8", I64, gpr[8])              \
  X(R9, "r9", I64, gpr[9])              \
  X(R10, "r10", I64, gpr[10])           \
  X(R11, "r11", I64, gpr[11])           \
  X(R12, "r12", I64, gpr[12])           \
  X(R13, "r13", I64, gpr[13])           \
  X(R14, "r14", I64, gpr[14])           \
  X(R15, "r15", I64, gpr[15])           \
  X(Rip, "rip", I64, rip)               \
  X(Cf, "cf", Flag, cf)                 \
  X(Pf, "pf", Flag, pf)                 \
  X(Af, "af", Flag, af)                 \
  X(Zf, "zf", Flag, zf)                 \
  X(Sf, "sf", Flag, sf)                 \
  X(Of, "of", Flag, of)                 \
  X(Df, "df", Flag, df)                 \
  X(FsBase, "fs_base", I64, fs_base)    \
  X(GsBase, "gs_base", I64, gs_base)    \
  X(Xmm0, "xmm0", V128, xmm[0])         \
  X(Xmm1, "xmm1", V128, xmm[1])         \
  X(Xmm2, "xmm2", V128, xmm[2])         \
  X(Xmm3, "xmm3", V128, xmm[3])         \
  X(Xmm4, "xmm4", V128, xmm[4])         \
  X(Xmm5, "xmm5", V128, xmm[5])         \
  X(Xmm6, "xmm6", V128, xmm[6])         \
  X(Xmm7, "xmm7", V128, xmm[7])         \
  X(Xmm8, "xmm8", V128, xmm[8])         \
  X(Xmm9, "xmm9", V128, xmm[9])         \
  X(Xmm10, "xmm10", V128, xmm[10])      \
  X(Xmm11, "xmm11", V128, xmm[11])      \
  X(Xmm12, "xmm12", V128, xmm[12])      \
  X(Xmm13, "xmm13", V128, xmm[13])      \
  X(Xmm14, "xmm14", V128, xmm[14])      \
  X(Xmm15, "xmm15", V128, xmm[15])      \
  X(Mxcsr, "mxcsr", I32, mxcsr)         \
  X(FpuCw, "fpu_cw", I16, fpu_cw)       \
  X(FpuSw, "fpu_sw", I16, fpu_sw)       \
  X(FpuTag, "fpu_tag", I16, fpu_tag)    \
  X(Fpr0, "fpr0", V128, fpr[0])         \
  X(Fpr1, "fpr1", V128, fpr[1])         \
  X(Fpr2, "fpr2", V128, fpr[2])         \
  X(Fpr3, "fpr3", V128, fpr[3])         \
  X(Fpr4, "fpr4", V128, fpr[4])         \
  X(Fpr5, "fpr5", V128, fpr[5])         \
  X(Fpr6, "fpr6", V128, fpr[6])         \
  X(Fpr7, "fpr7", V128, fpr[7])

enum class X86Reg : uint16_t {
#define VM_X86_ENUM(id, name, kind, member) id,
  VM_X86_STATE_REGS(VM_X86_ENUM)
#undef VM_X86_ENUM
};

#define VM_X86_COUNT(id, name, kind, member) +1
inline constexpr uint32_t kNumX86Regs = 0 VM_X86_STATE_REGS(VM_X86_COUNT);
#undef VM_X86_COUNT

inline constexpr uint32_t kDefaultMxcsr = 0x1f80;   // all exceptions masked, round to nearest
inline constexpr uint16_t kDefaultFpuCw = 0x037f;   // x87 power-on control word
inline constexpr uint64_t kDefaultRflags = 0x202;   // IF set, reserved bit 1 set

// x87: fpu_sw is the architectural status word (TOP in bits 11..13, so
// ST(i) is fpr[(TOP + i) & 7]); fpu_tag is the abridged tag of FXSAVE (bit
// i set: physical register i holds a value); fpr[i] is physical register i
// as an 80-bit extended value in the low 10 bytes of a 16-byte slot (the
// rest zero). Only the x87 runtime helper (vm-ir x87.hpp) interprets them.
//
// The guest CPU state. Plain data: the JIT accesses it by offset, the
// interpreter by member. Layout is fixed by the table above and asserted below.
struct alignas(16) X86State {
  uint64_t gpr[16] = {};
  uint64_t rip = 0;
  uint64_t fs_base = 0;
  uint64_t gs_base = 0;
  uint8_t cf = 0, pf = 0, af = 0, zf = 0, sf = 0, of = 0, df = 0;
  uint8_t reserved0_ = 0;
  uint32_t mxcsr = kDefaultMxcsr;
  uint16_t fpu_cw = kDefaultFpuCw;
  uint16_t fpu_sw = 0;
  uint16_t fpu_tag = 0;
  uint16_t reserved1_ = 0;
  uint32_t reserved2_ = 0;
  Xmm xmm[16] = {};
  Xmm fpr[8] = {};

  friend bool operator==(const X86State&, const X86State&) = default;
};

struct RegInfo {
  X86Reg id;
  std::string_view name;
  RegKind kind;
  uint32_t offset;  // byte offset in X86State
  uint32_t size;    // bytes
};

#define VM_X86_INFO(id, name, kind, member) \
  RegInfo{X86Reg::id, name, RegKind::kind, static_cast<uint32_t>(offsetof(X86State, member)), reg_kind_bytes(RegKind::kind)},
inline constexpr std::array<RegInfo, kNumX86Regs> kX86Regs = {VM_X86_STATE_REGS(VM_X86_INFO)};
#undef VM_X86_INFO

constexpr const RegInfo& reg_info(X86Reg r) { return kX86Regs[static_cast<uint16_t>(r)]; }
constexpr std::string_view reg_name(X86Reg r) { return reg_info(r).name; }
constexpr bool is_valid_reg(uint32_t id) { return id < kNumX86Regs; }

constexpr std::optional<X86Reg> find_reg(std::string_view name) {
  for (const auto& r : kX86Regs)
    if (r.name == name) return r.id;
  return std::nullopt;
}

constexpr X86Reg gpr(unsigned n) { return static_cast<X86Reg>(static_cast<unsigned>(X86Reg::Rax) + n); }
constexpr X86Reg xmm_reg(unsigned n) { return static_cast<X86Reg>(static_cast<unsigned>(X86Reg::Xmm0) + n); }
constexpr X86Reg fpr_reg(unsigned n) { return static_cast<X86Reg>(static_cast<unsigned>(X86Reg::Fpr0) + n); }

// Raw byte view of one register inside a state (for generic consumers).
inline uint8_t* reg_ptr(X86State& s, X86Reg r) { return reinterpret_cast<uint8_t*>(&s) + reg_info(r).offset; }
inline const uint8_t* reg_ptr(const X86State& s, X86Reg r) {
  return reinterpret_cast<const uint8_t*>(&s) + reg_info(r).offset;
}

// RFLAGS bit positions of the flags we model.
inline constexpr unsigned kFlagBitCf = 0, kFlagBitPf = 2, kFlagBitAf = 4, kFlagBitZf = 6, kFlagBitSf = 7,
                          kFlagBitDf = 10, kFlagBitOf = 11;

// The architectural RFLAGS value: the modelled flags, bit 1 and IF (always 1
// in user mode).
constexpr uint64_t get_rflags(const X86State& s) {
  return kDefaultRflags | uint64_t(s.cf & 1) << kFlagBitCf | uint64_t(s.pf & 1) << kFlagBitPf |
         uint64_t(s.af & 1) << kFlagBitAf | uint64_t(s.zf & 1) << kFlagBitZf | uint64_t(s.sf & 1) << kFlagBitSf |
         uint64_t(s.df & 1) << kFlagBitDf | uint64_t(s.of & 1) << kFlagBitOf;
}

constexpr void set_rflags(X86State& s, uint64_t v) {
  s.cf = (v >> kFlagBitCf) & 1;
  s.pf = (v >> kFlagBitPf) & 1;
  s.af = (v >> kFlagBitAf) & 1;
  s.zf = (v >> kFlagBitZf) & 1;
  s.sf = (v >> kFlagBitSf) & 1;
  s.df = (v >> kFlagBitDf) & 1;
  s.of = (v >> kFlagBitOf) & 1;
}

// The x87 part of a 512-byte FXSAVE image other than the control word and
// the instruction/operand pointers: the status word (offset 2), the abridged
// tag (4) and st(0..7) in stack order (32 + 16 * i, 10 bytes each). Signal
// frames, the native test oracle and the x87 helper all convert with these.
inline void store_x87_fxsave(const X86State& s, uint8_t* image) {
  std::memcpy(image + 2, &s.fpu_sw, 2);
  image[4] = static_cast<uint8_t>(s.fpu_tag);
  const unsigned top = (s.fpu_sw >> 11) & 7;
  for (unsigned i = 0; i < 8; ++i) std::memcpy(image + 32 + 16 * i, &s.fpr[(top + i) & 7], 10);
}
inline void load_x87_fxsave(X86State& s, const uint8_t* image) {
  std::memcpy(&s.fpu_sw, image + 2, 2);
  s.fpu_tag = image[4];
  const unsigned top = (s.fpu_sw >> 11) & 7;
  for (unsigned i = 0; i < 8; ++i) {
    Xmm& r = s.fpr[(top + i) & 7];
    uint16_t hi = 0;
    std::memcpy(&r.lo, image + 32 + 16 * i, 8);
    std::memcpy(&hi, image + 32 + 16 * i + 8, 2);
    r.hi = hi;
  }
}

static_assert(sizeof(X86State) == 16 * 8 + 3 * 8 + 8 + 4 + 3 * 2 + 2 + 4 + 16 * 16 + 8 * 16, "X86State layout changed");
static_assert(offsetof(X86State, fpr) % 16 == 0);
static_assert(offsetof(X86State, xmm) % 16 == 0);

}  // namespace vm::core
