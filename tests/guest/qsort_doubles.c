#include <stdio.h>
#include <stdlib.h>
#include <math.h>

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(void) {
  enum { N = 2000 };
  static double v[N];
  unsigned long s = 12345;
  for (int i = 0; i < N; ++i) {
    s = s * 6364136223846793005UL + 1442695040888963407UL;
    v[i] = (double)(s >> 11) / (double)(1UL << 53) * 2000.0 - 1000.0;
    if (i % 7 == 0) v[i] = sqrt(fabs(v[i])) * (i % 2 ? -1 : 1);
  }
  qsort(v, N, sizeof v[0], cmp);
  for (int i = 0; i < N; i += 97) printf("%4d %.6f %g %e\n", i, v[i], v[i] / 3.0, v[i] * 1e-7);
  double total = 0;
  for (int i = 0; i < N; ++i) total += v[i];
  printf("total %.9f min %.3f max %.3f\n", total, v[0], v[N - 1]);
  printf("%.17g %a\n", 1.0 / 3.0, 0.1);
  return 0;
}
