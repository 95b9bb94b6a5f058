// A guest fault in hot code with no handler installed: after a loop has run
// long enough to be compiled (into a region, under tiered), one iteration
// reads through a null pointer. The process dies with SIGSEGV. Under `vm
// run --mmu direct` that code keeps no precise fault state (no handler), so
// the engine finds the faulting access again by interpreting; the crash
// line must name the pc and address the interpreter names
// (run_guest_test.py compares them).
#include <stdint.h>
#include <stdio.h>

static long buf[16];

int main(int argc, char** argv) {
  (void)argv;
  volatile long limit = 200000 + argc;  // read at run time: the loop stays a loop
  long sum = 0;
  printf("walking\n");
  fflush(stdout);
  for (long i = 0; i < limit; ++i) {
    long* p = buf;
    if (i == 150000) p = (long*)(intptr_t)(argc - 1);  // a null pointer (argc is 1)
    sum += p[i & 7];
    buf[(i + 3) & 15] = sum;
  }
  printf("unreachable %ld\n", sum);
  return 0;
}
