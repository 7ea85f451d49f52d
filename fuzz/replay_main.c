/* Corpus replay driver: runs LLVMFuzzerTestOneInput over every file of the
 * directories (or files) named on the command line. It lets the GCC builds,
 * optimized and ASan+UBSan, replay each fuzz target's seed corpus as a test
 * without libFuzzer. Exit status is non-zero if a path cannot be read; a crash
 * or sanitizer report fails the test on its own. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  if (fseek(f, 0, SEEK_END) != 0) {
    fclose(f);
    return -1;
  }
  long len = ftell(f);
  rewind(f);
  uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
  if (!buf || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    free(buf);
    fclose(f);
    return -1;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, (size_t)len);
  free(buf);
  (*count)++;
  return 0;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  size_t count = 0;
  int rc = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      fprintf(stderr, "replay: no such corpus %s\n", argv[i]);
      rc = 1;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      rc |= replay_file(argv[i], &count) != 0;
      continue;
    }
    DIR *d = opendir(argv[i]);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
      rc |= replay_file(path, &count) != 0;
    }
    if (d)
      closedir(d);
  }
  if (count == 0) {
    fprintf(stderr, "replay: empty corpus\n");
    rc = 1;
  }
  printf("replayed %zu inputs\n", count);
  return rc;
}
