#include <stdio.h>
#include <stdlib.h>
static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
static int ack(int m, int n) { return m == 0 ? n + 1 : n == 0 ? ack(m - 1, 1) : ack(m - 1, ack(m, n - 1)); }
static int depth(int n, volatile char* prev) {
  volatile char frame[64];
  frame[0] = (char)n;
  if (n == 0) return (int)(prev - frame);
  return depth(n - 1, frame) + frame[0] - n;
}
// VM_GUEST_SCALE=N (default 1) repeats the work N times for the benchmarks.
static long guest_scale(void) {
  const char* s = getenv("VM_GUEST_SCALE");
  long v = s ? atol(s) : 1;
  return v > 0 ? v : 1;
}
int main(void) {
  long f = 0;
  volatile int n = 24;  // re-read each time, so the calls are not hoisted
  for (long r = guest_scale(); r > 0; --r) f = fib(n);
  printf("fib(24)=%ld\n", f);
  printf("ack(2,300)=%d ack(3,5)=%d\n", ack(2, 300), ack(3, 5));
  char base;
  printf("deep recursion ok=%d\n", depth(10000, &base) > 0);
  return 0;
}
