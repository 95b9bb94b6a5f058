// Integer division by zero: the process dies with SIGFPE.
#include <stdio.h>
int main(int argc, char** argv) {
  (void)argv;
  volatile int zero = argc - 1;
  printf("dividing\n");
  fflush(stdout);
  return 10 / zero;
}
