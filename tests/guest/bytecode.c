// A small stack-machine interpreter: the classic dispatch-loop workload.
#include <stdio.h>
#include <stdlib.h>
enum { PUSH, ADD, SUB, MUL, DUP, SWAP, JNZ, DEC, POP, PRINT, HALT, OVER, MOD };
// VM_GUEST_SCALE=N (default 1) repeats the work N times for the benchmarks.
static long guest_scale(void) {
  const char* s = getenv("VM_GUEST_SCALE");
  long v = s ? atol(s) : 1;
  return v > 0 ? v : 1;
}
int main(void) {
  // sum = 0; for (i = N; i != 0; --i) sum = (sum + i * i) % 1000003;
  long code[] = {PUSH, 0,      // sum
                 PUSH, 30000,  // i (times VM_GUEST_SCALE)
                 /* 4 */ SWAP, OVER, DUP, MUL, ADD, PUSH, 1000003, MOD, SWAP, DEC, DUP, JNZ, 4, POP, PRINT, HALT};
  code[3] *= guest_scale();
  long stack[64];
  int sp = 0;
  long pc = 0;
  long steps = 0;
  for (;;) {
    ++steps;
    switch (code[pc++]) {
      case PUSH: stack[sp++] = code[pc++]; break;
      case ADD: --sp; stack[sp - 1] += stack[sp]; break;
      case SUB: --sp; stack[sp - 1] -= stack[sp]; break;
      case MUL: --sp; stack[sp - 1] *= stack[sp]; break;
      case MOD: --sp; stack[sp - 1] %= stack[sp]; break;
      case DUP: stack[sp] = stack[sp - 1]; ++sp; break;
      case OVER: stack[sp] = stack[sp - 2]; ++sp; break;
      case SWAP: { long t = stack[sp - 1]; stack[sp - 1] = stack[sp - 2]; stack[sp - 2] = t; break; }
      case JNZ: { long t = code[pc++]; if (stack[--sp] != 0) pc = t; break; }
      case DEC: stack[sp - 1]--; break;
      case POP: --sp; break;
      case PRINT: printf("result %ld\n", stack[sp - 1]); break;
      case HALT: printf("steps %ld\n", steps); return 0;
    }
  }
}
