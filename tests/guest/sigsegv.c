// A SIGSEGV handler that recovers with siglongjmp, twice.
#include <setjmp.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
static sigjmp_buf env;
static volatile void* fault_addr;
static void handler(int sig, siginfo_t* info, void* uc) {
  (void)uc;
  fault_addr = info->si_addr;
  siglongjmp(env, sig);
}
int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  for (volatile int i = 0; i < 2; ++i) {
    int r = sigsetjmp(env, 1);
    if (r == 0) {
      volatile int* p = (volatile int*)(uintptr_t)(0x10 + 0x1000 * i);
      *p = 1;
      printf("not reached\n");
    } else {
      printf("recovered from signal %d at %p\n", r, (void*)fault_addr);
    }
  }
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  printf("SIGSEGV blocked after recovery: %d\n", sigismember(&cur, SIGSEGV));
  return 0;
}
