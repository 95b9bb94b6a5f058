#include <setjmp.h>
#include <stdio.h>
static jmp_buf env;
static int level;
static void dive(int n) {
  if (n == 0) longjmp(env, 42 + level);
  dive(n - 1);
}
int main(void) {
  volatile int rounds = 0;
  for (level = 0; level < 5; ++level) {
    int r = setjmp(env);
    if (r == 0) {
      dive(level * 10);
      printf("not reached\n");
    } else {
      printf("level %d returned %d\n", level, r);
      ++rounds;
    }
  }
  printf("rounds %d\n", rounds);
  return 0;
}
