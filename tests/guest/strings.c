// string.h over many lengths and alignments (libc picks SIMD paths by size).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t h = 2166136261u;
static void mix(uint64_t v) {
  h ^= (uint32_t)v;
  h *= 16777619u;
  h ^= (uint32_t)(v >> 32);
  h *= 16777619u;
}

// VM_GUEST_SCALE=N (default 1) repeats the work N times for the benchmarks.
static long guest_scale(void) {
  const char* s = getenv("VM_GUEST_SCALE");
  long v = s ? atol(s) : 1;
  return v > 0 ? v : 1;
}
int main(void) {
  static char a[1024], b[1024];
  for (long rep = guest_scale(); rep > 0; --rep) {
  for (int i = 0; i < 1024; ++i) a[i] = (char)('a' + (i * 7) % 26);
  for (int len = 0; len < 300; len += (len < 40 ? 1 : 13)) {
    for (int al = 0; al < 16; al += 3) {
      for (int bl = 0; bl < 16; bl += 5) {
        memset(b, 0, sizeof b);
        memcpy(b + bl, a + al, len);
        mix(memcmp(b + bl, a + al, len) == 0);
        b[bl + len] = 0;
        mix(strlen(b + bl));
        memmove(b + bl + 1, b + bl, len);
        mix((unsigned char)b[bl + len]);
        mix(strcmp(b + bl + 1, b + bl) > 0);
        char* p = strchr(b + bl, 'q');
        mix(p ? (uint64_t)(p - b) : 999);
        p = memchr(b + bl, 'z', len);
        mix(p ? (uint64_t)(p - b) : 999);
        mix(strncmp(a + al, b + bl + 1, len) == 0);
        memset(b + bl, 'x' + (len & 1), len);
        mix((unsigned char)b[bl + len / 2]);
      }
    }
    printf("len %3d hash %08x\n", len, h);
  }
  }
  char hay[200];
  for (int i = 0; i < 199; ++i) hay[i] = "abcab"[i % 5];
  hay[199] = 0;
  strcpy(hay + 150, "needle-in-haystack");
  printf("strstr %ld\n", (long)(strstr(hay, "needle") - hay));
  printf("strrchr %ld\n", (long)(strrchr(hay, 'a') - hay));
  printf("strspn %zu strcspn %zu\n", strspn(hay, "abc"), strcspn(hay, "n"));
  char dup[64];
  strncpy(dup, "short", sizeof dup);
  strcat(dup, "+tail");
  printf("%s %zu\n", dup, strlen(dup));
  return 0;
}
