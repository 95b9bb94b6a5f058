// The x87 helper: runs one x87 instruction on the host FPU with the guest's
// x87 state loaded (see vm/ir/x87.hpp for why and for what is not modelled).
//
// Each operation is a tiny assembly stub generated from VM_X87_OPS:
//   fxrstor [rdi]        guest state image (exceptions masked) into the FPU
//   push rdx / popfq     guest CF/PF/ZF for fcmovcc
//   <the instruction>    memory operand = the helper's buffer at [rsi]
//   pushfq / pop [rcx]   EFLAGS out for fcomi
//   fxsave [rdi]         resulting state back into the image
//   fninit / fldcw [r8]  the host's own empty stack and control word again
// The stubs are ordinary functions to the compiler, which already treats
// the xmm registers fxrstor overwrites as clobbered by a call; MXCSR in the
// image is the host's current value, so it is unchanged.
#include <cstring>

#include "vm/ir/x87.hpp"

extern "C" {
#define VM_X87_STUB_DECL(name, kind, text) \
  void vm_x87_stub_##name(void* image, void* mem, uint64_t rflags_in, uint64_t* rflags_out, const uint16_t* host_cw);
VM_X87_OPS(VM_X87_STUB_DECL)
#undef VM_X87_STUB_DECL
}

#define VM_X87_STUB_ASM(name, kind, text)                                                            \
  ".globl vm_x87_stub_" #name "\n.hidden vm_x87_stub_" #name "\n.type vm_x87_stub_" #name ", @function\n" \
  ".p2align 4\nvm_x87_stub_" #name ":\n"                                                              \
  "fxrstor [rdi]\npush rdx\npopfq\n" text "\npushfq\npop qword ptr [rcx]\nfxsave [rdi]\nfninit\n"     \
  "fldcw word ptr [r8]\nret\n.size vm_x87_stub_" #name ", .-vm_x87_stub_" #name "\n"

asm(".pushsection .text\n.intel_syntax noprefix\n" VM_X87_OPS(VM_X87_STUB_ASM) ".att_syntax prefix\n.popsection\n");
#undef VM_X87_STUB_ASM

namespace vm::ir {
namespace {

using Stub = void (*)(void*, void*, uint64_t, uint64_t*, const uint16_t*);

const Stub kStubs[] = {
#define VM_X87_STUB_PTR(name, kind, text) vm_x87_stub_##name,
    VM_X87_OPS(VM_X87_STUB_PTR)
#undef VM_X87_STUB_PTR
};
static_assert(sizeof(kStubs) / sizeof(kStubs[0]) == kNumX87Ops);

// FXSAVE image offsets (64-bit layout; the x87 part is the same in both).
constexpr size_t kFcw = 0, kFsw = 2, kMxcsr = 24;
constexpr uint16_t kAllMasked = 0x3f;
// Status word bits the host never produces with every exception masked:
// the exception summary (ES) and busy (B) bits.
constexpr uint16_t kSummaryBits = 0x8080;
// fnstenv (32-bit operand size, 28 bytes): fcw, fsw, ftw as dwords, then the
// instruction and operand pointers, which the guest would see as host
// addresses inside the stub; they are stored as zero instead.
constexpr size_t kEnvPointers = 12, kEnvSize = 28;

uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

}  // namespace

uint64_t x87_helper(core::X86State* s, uint64_t a0, uint64_t a1, uint64_t a2) {
  const uint64_t op_id = a0 & 0xffff;
  if (op_id >= kNumX87Ops) return 0;
  const auto op = static_cast<X87Op>(op_id);
  const X87Kind kind = x87_kind(op);
  const unsigned chunk = static_cast<unsigned>((a0 >> kX87ChunkShift) & 3);
  const bool dry = (a0 & kX87DryRun) != 0;

  alignas(64) uint8_t image[512] = {};
  put16(image + kFcw, s->fpu_cw | kAllMasked);
  core::store_x87_fxsave(*s, image);
  put16(image + kFsw, s->fpu_sw & ~kSummaryBits);
  uint32_t mxcsr = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  std::memcpy(image + kMxcsr, &mxcsr, 4);

  alignas(16) uint8_t mem[32] = {};
  std::memcpy(mem, &a1, 8);
  std::memcpy(mem + 8, &a2, 8);
  if (kind == X87Kind::LoadEnv) {
    std::memset(mem, 0, sizeof mem);
    put16(mem + 0, static_cast<uint16_t>(a1) | kAllMasked);
    put16(mem + 4, static_cast<uint16_t>(a1 >> 16) & ~kSummaryBits);
    put16(mem + 8, static_cast<uint16_t>(a1 >> 32));
  }

  const uint64_t rflags_in = core::kDefaultRflags | uint64_t(s->cf & 1) << core::kFlagBitCf |
                             uint64_t(s->pf & 1) << core::kFlagBitPf | uint64_t(s->zf & 1) << core::kFlagBitZf;
  uint64_t rflags_out = rflags_in;
  uint16_t host_cw = 0;
  asm volatile("fnstcw %0" : "=m"(host_cw));
  kStubs[op_id](image, mem, rflags_in, &rflags_out, &host_cw);

  if (op == X87Op::FNStEnv) {
    put16(mem + 0, s->fpu_cw);
    std::memset(mem + kEnvPointers, 0, kEnvSize - kEnvPointers);
  }
  uint64_t out = 0;
  std::memcpy(&out, mem + 8 * chunk, 8);
  if (dry) return out;

  // The control word only changes where the instruction defines it: the
  // image ran with every exception masked.
  switch (op) {
    case X87Op::FNInit: s->fpu_cw = get16(image + kFcw); break;
    case X87Op::FLdEnv:  // the host normalised the reserved bits; the masks are the guest's
      s->fpu_cw = static_cast<uint16_t>((get16(image + kFcw) & ~kAllMasked) | (a1 & kAllMasked));
      break;
    case X87Op::FNStEnv: s->fpu_cw = s->fpu_cw | kAllMasked; break;
    default: break;
  }
  core::load_x87_fxsave(*s, image);
  if (kind == X87Kind::Eflags) {
    s->cf = (rflags_out >> core::kFlagBitCf) & 1;
    s->pf = (rflags_out >> core::kFlagBitPf) & 1;
    s->zf = (rflags_out >> core::kFlagBitZf) & 1;
    s->of = s->sf = s->af = 0;
  }
  return out;
}

}  // namespace vm::ir
