// The x87 runtime helper's operations.
//
// Every x87 instruction the frontend lifts becomes call_helper(x87, a0, a1,
// a2). The host is x86-64, so the helper does not model x87 arithmetic
// itself: it loads the guest's x87 state (fpu_cw, fpu_sw, fpu_tag, fpr0..7)
// into the host FPU, runs the very same instruction on the host, and stores
// the resulting state back. Results, condition codes C0..C3, TOP, tags,
// stack overflow/underflow responses and the sticky exception flags are
// therefore exactly the host CPU's. VM_X87_OPS lists the operations, one per
// instruction form and st(i) index, with the Intel-syntax text that the
// helper executes; memory operands are the helper's own buffer (`[rsi]`),
// never guest memory: the lifted IR loads and stores guest memory itself so
// faults stay precise.
//
// Helper arguments:
//   a0 = X87Op | (output chunk << kX87ChunkShift) | kX87DryRun?
//   a1, a2 = the memory operand's bytes 0..7 and 8..15 for forms that read
//            memory (zero-extended); for fldenv, a1 = cw | sw << 16 | tag << 32.
// The result is bytes [8 * chunk, 8 * chunk + 8) of the memory operand after
// the instruction (the value a store form writes). With kX87DryRun the guest
// state is left untouched, so a store form is lifted as dry runs returning
// the bytes to store, the guest stores, then one committing run: a faulting
// store leaves the x87 state as it was.
//
// Not modelled: unmasked exceptions (the host runs every operation with all
// exceptions masked, so the guest sees the masked responses, and ES/B stay
// clear; fwait never traps); the FPU instruction/operand pointers (fnstenv
// stores them as zero).
#pragma once

#include <cstdint>

#include "vm/core/x86_state.hpp"

namespace vm::ir {

// How the helper treats an operation beyond running it.
enum class X87Kind : uint8_t {
  Plain,    // reads/writes only x87 state (and reads memory from a1/a2)
  Eflags,   // fcomi family: also writes ZF, PF, CF and clears OF, SF, AF
  Cmov,     // fcmovcc: reads CF, ZF, PF
  Store,    // writes its memory operand: lifted as dry runs + stores + commit
  LoadEnv,  // fldenv: a1 packs cw, sw and tag
};

#define VM_X87_STI(X, name, kind, pre, post) \
  X(name##0, kind, pre "0" post)             \
  X(name##1, kind, pre "1" post)             \
  X(name##2, kind, pre "2" post)             \
  X(name##3, kind, pre "3" post)             \
  X(name##4, kind, pre "4" post)             \
  X(name##5, kind, pre "5" post)             \
  X(name##6, kind, pre "6" post)             \
  X(name##7, kind, pre "7" post)

// fadd-style arithmetic: memory (float and integer) and the three st(i) forms.
#define VM_X87_ARITH(X, name, mn)                                 \
  X(F##name##M32, Plain, "f" mn " dword ptr [rsi]")               \
  X(F##name##M64, Plain, "f" mn " qword ptr [rsi]")               \
  X(FI##name##M16, Plain, "fi" mn " word ptr [rsi]")              \
  X(FI##name##M32, Plain, "fi" mn " dword ptr [rsi]")             \
  VM_X87_STI(X, F##name##St0Sti, Plain, "f" mn " st(0), st(", ")") \
  VM_X87_STI(X, F##name##StiSt0, Plain, "f" mn " st(", "), st(0)") \
  VM_X87_STI(X, F##name##PSti, Plain, "f" mn "p st(", "), st(0)")

#define VM_X87_OPS(X)                                              \
  VM_X87_ARITH(X, Add, "add")                                      \
  VM_X87_ARITH(X, Mul, "mul")                                      \
  VM_X87_ARITH(X, Sub, "sub")                                      \
  VM_X87_ARITH(X, Subr, "subr")                                    \
  VM_X87_ARITH(X, Div, "div")                                      \
  VM_X87_ARITH(X, Divr, "divr")                                    \
  X(FComM32, Plain, "fcom dword ptr [rsi]")                        \
  X(FComM64, Plain, "fcom qword ptr [rsi]")                        \
  X(FCompM32, Plain, "fcomp dword ptr [rsi]")                      \
  X(FCompM64, Plain, "fcomp qword ptr [rsi]")                      \
  X(FIComM16, Plain, "ficom word ptr [rsi]")                       \
  X(FIComM32, Plain, "ficom dword ptr [rsi]")                      \
  X(FICompM16, Plain, "ficomp word ptr [rsi]")                     \
  X(FICompM32, Plain, "ficomp dword ptr [rsi]")                    \
  VM_X87_STI(X, FComSti, Plain, "fcom st(", ")")                   \
  VM_X87_STI(X, FCompSti, Plain, "fcomp st(", ")")                 \
  VM_X87_STI(X, FUComSti, Plain, "fucom st(", ")")                 \
  VM_X87_STI(X, FUCompSti, Plain, "fucomp st(", ")")               \
  VM_X87_STI(X, FComISti, Eflags, "fcomi st(0), st(", ")")         \
  VM_X87_STI(X, FComIPSti, Eflags, "fcomip st(0), st(", ")")       \
  VM_X87_STI(X, FUComISti, Eflags, "fucomi st(0), st(", ")")       \
  VM_X87_STI(X, FUComIPSti, Eflags, "fucomip st(0), st(", ")")     \
  X(FCompp, Plain, "fcompp")                                       \
  X(FUCompp, Plain, "fucompp")                                     \
  X(FTst, Plain, "ftst")                                           \
  X(FXam, Plain, "fxam")                                           \
  X(FLdM32, Plain, "fld dword ptr [rsi]")                          \
  X(FLdM64, Plain, "fld qword ptr [rsi]")                          \
  X(FLdM80, Plain, "fld tbyte ptr [rsi]")                          \
  X(FILdM16, Plain, "fild word ptr [rsi]")                         \
  X(FILdM32, Plain, "fild dword ptr [rsi]")                        \
  X(FILdM64, Plain, "fild qword ptr [rsi]")                        \
  VM_X87_STI(X, FLdSti, Plain, "fld st(", ")")                     \
  X(FLd1, Plain, "fld1")                                           \
  X(FLdL2T, Plain, "fldl2t")                                       \
  X(FLdL2E, Plain, "fldl2e")                                       \
  X(FLdPi, Plain, "fldpi")                                         \
  X(FLdLg2, Plain, "fldlg2")                                       \
  X(FLdLn2, Plain, "fldln2")                                       \
  X(FLdZ, Plain, "fldz")                                           \
  X(FStM32, Store, "fst dword ptr [rsi]")                          \
  X(FStM64, Store, "fst qword ptr [rsi]")                          \
  X(FStpM32, Store, "fstp dword ptr [rsi]")                        \
  X(FStpM64, Store, "fstp qword ptr [rsi]")                        \
  X(FStpM80, Store, "fstp tbyte ptr [rsi]")                        \
  X(FIStM16, Store, "fist word ptr [rsi]")                         \
  X(FIStM32, Store, "fist dword ptr [rsi]")                        \
  X(FIStpM16, Store, "fistp word ptr [rsi]")                       \
  X(FIStpM32, Store, "fistp dword ptr [rsi]")                      \
  X(FIStpM64, Store, "fistp qword ptr [rsi]")                      \
  X(FISttpM16, Store, "fisttp word ptr [rsi]")                     \
  X(FISttpM32, Store, "fisttp dword ptr [rsi]")                    \
  X(FISttpM64, Store, "fisttp qword ptr [rsi]")                    \
  X(FNStEnv, Store, "fnstenv [rsi]")                               \
  X(FLdEnv, LoadEnv, "fldenv [rsi]")                               \
  VM_X87_STI(X, FStSti, Plain, "fst st(", ")")                     \
  VM_X87_STI(X, FStpSti, Plain, "fstp st(", ")")                   \
  VM_X87_STI(X, FXchSti, Plain, "fxch st(", ")")                   \
  VM_X87_STI(X, FFreeSti, Plain, "ffree st(", ")")                 \
  VM_X87_STI(X, FFreepSti, Plain, "ffreep st(", ")")               \
  VM_X87_STI(X, FCmovBSti, Cmov, "fcmovb st(0), st(", ")")         \
  VM_X87_STI(X, FCmovESti, Cmov, "fcmove st(0), st(", ")")         \
  VM_X87_STI(X, FCmovBESti, Cmov, "fcmovbe st(0), st(", ")")       \
  VM_X87_STI(X, FCmovUSti, Cmov, "fcmovu st(0), st(", ")")         \
  VM_X87_STI(X, FCmovNBSti, Cmov, "fcmovnb st(0), st(", ")")       \
  VM_X87_STI(X, FCmovNESti, Cmov, "fcmovne st(0), st(", ")")       \
  VM_X87_STI(X, FCmovNBESti, Cmov, "fcmovnbe st(0), st(", ")")     \
  VM_X87_STI(X, FCmovNUSti, Cmov, "fcmovnu st(0), st(", ")")       \
  X(FChs, Plain, "fchs")                                           \
  X(FAbs, Plain, "fabs")                                           \
  X(FSqrt, Plain, "fsqrt")                                         \
  X(FRndInt, Plain, "frndint")                                     \
  X(FScale, Plain, "fscale")                                       \
  X(FPrem, Plain, "fprem")                                         \
  X(FPrem1, Plain, "fprem1")                                       \
  X(FXtract, Plain, "fxtract")                                     \
  X(F2xm1, Plain, "f2xm1")                                         \
  X(FYl2x, Plain, "fyl2x")                                         \
  X(FYl2xp1, Plain, "fyl2xp1")                                     \
  X(FPtan, Plain, "fptan")                                         \
  X(FPatan, Plain, "fpatan")                                       \
  X(FSin, Plain, "fsin")                                           \
  X(FCos, Plain, "fcos")                                           \
  X(FSinCos, Plain, "fsincos")                                     \
  X(FIncStp, Plain, "fincstp")                                     \
  X(FDecStp, Plain, "fdecstp")                                     \
  X(FNInit, Plain, "fninit")                                       \
  X(FNClex, Plain, "fnclex")

enum class X87Op : uint16_t {
#define VM_X87_OP_ENUM(name, kind, text) name,
  VM_X87_OPS(VM_X87_OP_ENUM)
#undef VM_X87_OP_ENUM
};

inline constexpr uint32_t kNumX87Ops = 0
#define VM_X87_OP_COUNT(name, kind, text) +1
    VM_X87_OPS(VM_X87_OP_COUNT)
#undef VM_X87_OP_COUNT
    ;

inline constexpr X87Kind kX87OpKinds[] = {
#define VM_X87_OP_KIND(name, kind, text) X87Kind::kind,
    VM_X87_OPS(VM_X87_OP_KIND)
#undef VM_X87_OP_KIND
};

inline constexpr uint64_t kX87ChunkShift = 16;
inline constexpr uint64_t kX87DryRun = uint64_t{1} << 20;

constexpr X87Kind x87_kind(X87Op op) { return kX87OpKinds[static_cast<uint16_t>(op)]; }
// The st(i) variant of the first op of an 8-op group.
constexpr X87Op x87_sti(X87Op first, unsigned i) {
  return static_cast<X87Op>(static_cast<uint16_t>(first) + (i & 7));
}

// The helper itself (registered as Helper::X87 in HelperTable::defaults()).
uint64_t x87_helper(core::X86State* state, uint64_t a0, uint64_t a1, uint64_t a2);

}  // namespace vm::ir
