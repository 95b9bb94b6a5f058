// vm_enter_preserve_none (lowering.hpp): C++'s way into units with LLVM's
// preserve_none calling convention. Such a unit takes (state, mem) in r12
// and r13 and keeps only rsp and rbp for its caller, so the C callee-saved
// registers (rbx, rbp, r12-r15) are saved here around the call; rbp too,
// although the unit keeps it, so that the frame is the same for any unit.
// Six pushes and the return address leave rsp 8 bytes off a 16-byte
// boundary; the extra 8 give the unit the aligned stack a call expects.
#include <cstdint>

#include "vm/translate/lowering.hpp"

#if defined(__x86_64__) && defined(__ELF__)
asm(R"(
  .text
  .p2align 4
  .globl vm_enter_preserve_none
  .type vm_enter_preserve_none, @function
vm_enter_preserve_none:
  .cfi_startproc
  pushq %rbx
  .cfi_adjust_cfa_offset 8
  pushq %rbp
  .cfi_adjust_cfa_offset 8
  pushq %r12
  .cfi_adjust_cfa_offset 8
  pushq %r13
  .cfi_adjust_cfa_offset 8
  pushq %r14
  .cfi_adjust_cfa_offset 8
  pushq %r15
  .cfi_adjust_cfa_offset 8
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  movq %rsi, %r12
  movq %rdx, %r13
  callq *%rdi
  addq $8, %rsp
  .cfi_adjust_cfa_offset -8
  popq %r15
  .cfi_adjust_cfa_offset -8
  popq %r14
  .cfi_adjust_cfa_offset -8
  popq %r13
  .cfi_adjust_cfa_offset -8
  popq %r12
  .cfi_adjust_cfa_offset -8
  popq %rbp
  .cfi_adjust_cfa_offset -8
  popq %rbx
  .cfi_adjust_cfa_offset -8
  retq
  .cfi_endproc
  .size vm_enter_preserve_none, .-vm_enter_preserve_none
)");
#endif
