// File I/O round trip in a fresh temporary directory.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
  char dir[] = "/tmp/vm-guest-XXXXXX";
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
  char path[256], path2[256];
  snprintf(path, sizeof path, "%s/data.txt", dir);
  snprintf(path2, sizeof path2, "%s/renamed.txt", dir);
  FILE* f = fopen(path, "w");
  for (int i = 0; i < 1000; ++i) fprintf(f, "line %d: %d\n", i, i * i);
  fclose(f);
  struct stat st;
  stat(path, &st);
  printf("size=%lld regular=%d\n", (long long)st.st_size, S_ISREG(st.st_mode));
  int fd = open(path, O_RDONLY);
  char buf[64];
  lseek(fd, 100, SEEK_SET);
  ssize_t n = read(fd, buf, 20);
  buf[n] = 0;
  printf("at 100: [%s]\n", buf);
  n = pread(fd, buf, 10, 0);
  buf[n] = 0;
  printf("pread: [%s]\n", buf);
  close(fd);
  f = fopen(path, "r");
  long sum = 0;
  int a, b;
  while (fscanf(f, "line %d: %d\n", &a, &b) == 2) sum += b;
  fclose(f);
  printf("sum=%ld\n", sum);
  if (rename(path, path2) != 0) perror("rename");
  printf("old exists=%d new exists=%d\n", access(path, F_OK) == 0, access(path2, F_OK) == 0);
  char sub[300];
  snprintf(sub, sizeof sub, "%s/sub", dir);
  mkdir(sub, 0755);
  DIR* d = opendir(dir);
  int entries = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) entries += e->d_name[0] != '.';
  closedir(d);
  printf("entries=%d\n", entries);
  rmdir(sub);
  unlink(path2);
  printf("rmdir=%d\n", rmdir(dir));
  return 0;
}
