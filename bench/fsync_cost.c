/* fsync_cost: what one audit-log sync costs on this file system, and what a zeroing thread
 * beside it does to that cost (docs/PERFORMANCE.md, "Preallocated audit log").
 *
 *   fsync_cost FILE MODE [N]
 *
 * N times (default 3000): pwrite 8 KiB at the next offset, then fdatasync, as the audit
 * log's `fsync batch` does per write. MODE:
 *   append      the file grows with every write (the default audit log)
 *   prezeroed   64 MiB of zeros written and synced first, then overwritten
 *   fallocate   posix_fallocate(64 MiB) first (unwritten extents)
 *   keepsize    fallocate(FALLOC_FL_KEEP_SIZE, 64 MiB) first
 *   zeroer      16 MiB of zeros first, and a thread keeps 64 MiB of zeros ahead of the
 *               writer in 256 KiB chunks, each synced (what audit_preallocate does)
 *   zeroer-nosync   the same without the zeroer's own fdatasync
 * Prints wall time per iteration, its p50/p99/max, and the CPU time of the whole machine
 * per iteration (from /proc/stat, so kernel threads count too). FILE is created and
 * truncated; remove it afterwards. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WRITE_BYTES 8192
#define LEAD (64L << 20)
#define CHUNK (256L << 10)

static int g_fd;
static bool g_zsync;
static _Atomic long g_end;
static _Atomic int g_stop;
static long g_zeroed;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Busy jiffies of all CPUs (user, nice, system, irq, softirq). */
static long long cpu_jiffies(void) {
  FILE *f = fopen("/proc/stat", "r");
  long long u = 0, n = 0, s = 0, idle = 0, io = 0, irq = 0, sirq = 0;
  if (!f)
    return 0;
  if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld", &u, &n, &s, &idle, &io, &irq, &sirq) !=
      7)
    u = n = s = irq = sirq = 0;
  fclose(f);
  return u + n + s + irq + sirq;
}

static void die(const char *what) {
  fprintf(stderr, "fsync_cost: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void write_zeros(int fd, long off, long len) {
  static char z[1 << 20];
  while (len > 0) {
    long n = len < (long)sizeof z ? len : (long)sizeof z;
    if (pwrite(fd, z, (size_t)n, off) != n)
      die("zero write");
    off += n;
    len -= n;
  }
}

static void *zeroer(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    if (g_zeroed < atomic_load(&g_end) + LEAD) {
      write_zeros(g_fd, g_zeroed, CHUNK);
      if (g_zsync && fdatasync(g_fd) != 0)
        die("zeroer fdatasync");
      g_zeroed += CHUNK;
    } else {
      usleep(100);
    }
  }
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fsync_cost FILE append|prezeroed|fallocate|keepsize|zeroer|"
                    "zeroer-nosync [N]\n");
    return 2;
  }
  const char *mode = argv[2];
  int n = argc > 3 ? atoi(argv[3]) : 3000;
  if (n <= 0 || n > 10000000) {
    fprintf(stderr, "fsync_cost: N must be 1..10000000\n");
    return 2;
  }
  g_fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (g_fd < 0)
    die(argv[1]);
  bool zero_thread = false;
  if (!strcmp(mode, "prezeroed")) {
    write_zeros(g_fd, 0, LEAD);
  } else if (!strcmp(mode, "fallocate")) {
    if ((errno = posix_fallocate(g_fd, 0, LEAD)) != 0)
      die("posix_fallocate");
  } else if (!strcmp(mode, "keepsize")) {
    if (fallocate(g_fd, FALLOC_FL_KEEP_SIZE, 0, LEAD) != 0)
      die("fallocate");
  } else if (!strcmp(mode, "zeroer") || !strcmp(mode, "zeroer-nosync")) {
    g_zeroed = 16L << 20;
    write_zeros(g_fd, 0, g_zeroed);
    zero_thread = true;
    g_zsync = !strcmp(mode, "zeroer");
  } else if (strcmp(mode, "append") != 0) {
    fprintf(stderr, "fsync_cost: unknown mode %s\n", mode);
    return 2;
  }
  if (fsync(g_fd) != 0)
    die("fsync");
  pthread_t t;
  if (zero_thread && pthread_create(&t, NULL, zeroer, NULL) != 0)
    die("pthread_create");
  char buf[WRITE_BYTES];
  memset(buf, 'x', sizeof buf);
  double *lat = malloc((size_t)n * sizeof *lat);
  if (!lat)
    die("malloc");
  long long c0 = cpu_jiffies();
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    double a = now_s();
    if (pwrite(g_fd, buf, sizeof buf, (off_t)i * WRITE_BYTES) != (ssize_t)sizeof buf)
      die("pwrite");
    atomic_store(&g_end, (long)(i + 1) * WRITE_BYTES);
    if (fdatasync(g_fd) != 0)
      die("fdatasync");
    lat[i] = now_s() - a;
  }
  double t1 = now_s();
  long long c1 = cpu_jiffies();
  atomic_store(&g_stop, 1);
  if (zero_thread)
    pthread_join(t, NULL);
  qsort(lat, (size_t)n, sizeof *lat, cmp_d);
  double hz = (double)sysconf(_SC_CLK_TCK);
  printf("%s: %.1f us/iter wall (p50 %.0f, p99 %.0f, max %.0f us), %.1f us/iter CPU (all CPUs)\n",
         mode, (t1 - t0) / n * 1e6, lat[n / 2] * 1e6, lat[(long)n * 99 / 100] * 1e6,
         lat[n - 1] * 1e6, (double)(c1 - c0) / hz / n * 1e6);
  free(lat);
  close(g_fd);
  return 0;
}
