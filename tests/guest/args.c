// argv, envp and the auxiliary vector as the loader built them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(int argc, char** argv) {
  printf("argc=%d\n", argc);
  for (int i = 1; i < argc; ++i) printf("argv[%d]=%s\n", i, argv[i]);
  const char* v = getenv("VM_GUEST_TEST");
  printf("VM_GUEST_TEST=%s\n", v ? v : "(unset)");
  printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
  printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
  printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
  printf("AT_UID matches=%d\n", getauxval(AT_UID) == (unsigned long)getuid());
  printf("AT_EGID matches=%d\n", getauxval(AT_EGID) == (unsigned long)getegid());
  printf("AT_RANDOM set=%d\n", getauxval(AT_RANDOM) != 0);
  printf("AT_PHDR set=%d\n", getauxval(AT_PHDR) != 0);
  printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
  const char* fn = (const char*)getauxval(AT_EXECFN);
  printf("AT_EXECFN matches=%d\n", fn != NULL && strcmp(fn, argv[0]) == 0);
  const char* plat = (const char*)getauxval(AT_PLATFORM);
  printf("AT_PLATFORM=%s\n", plat ? plat : "(none)");
  return argc;  // the exit status carries information too
}
