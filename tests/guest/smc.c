// Self-modifying code: write a function, run it, rewrite it, run it again.
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
typedef int (*Fn)(int);
int main(void) {
  unsigned char* mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { perror("mmap"); return 1; }
  // lea eax, [rdi + 5]; ret
  static const unsigned char add5[] = {0x8d, 0x47, 0x05, 0xc3};
  // imul eax, edi, 7; ret
  static const unsigned char mul7[] = {0x6b, 0xc7, 0x07, 0xc3};
  memcpy(mem, add5, sizeof add5);
  Fn f = (Fn)mem;
  int a = 0;
  for (int i = 0; i < 100; ++i) a += f(i);
  printf("add5 sum %d\n", a);
  memcpy(mem, mul7, sizeof mul7);
  __builtin___clear_cache((char*)mem, (char*)mem + 4);
  int b = 0;
  for (int i = 0; i < 100; ++i) b += f(i);
  printf("mul7 sum %d\n", b);
  mem[2] = 9;  // patch one immediate byte: imul eax, edi, 9
  printf("mul9 %d\n", f(3));
  munmap(mem, 4096);
  return 0;
}
