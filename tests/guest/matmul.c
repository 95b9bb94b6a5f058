#include <stdio.h>
enum { N = 96 };
static double a[N][N], b[N][N], c[N][N];
int main(void) {
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      a[i][j] = (double)((i * 31 + j * 17) % 101) / 7.0;
      b[i][j] = (double)((i * 13 + j * 29) % 97) / 11.0 - 3.0;
    }
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < N; ++k)
      for (int j = 0; j < N; ++j) c[i][j] += a[i][k] * b[k][j];
  double trace = 0, sum = 0;
  for (int i = 0; i < N; ++i) {
    trace += c[i][i];
    for (int j = 0; j < N; ++j) sum += c[i][j] * (j % 3 - 1);
  }
  printf("trace %.6f weighted %.6f corner %.6f\n", trace, sum, c[N - 1][N - 1]);
  long isum = 0;
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) isum += (long)(c[i][j] * 1000) % 1013;
  printf("isum %ld\n", isum);
  return 0;
}
