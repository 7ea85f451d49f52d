/* The audit transparency log: shared writer state and the line verifier.
 *
 * Writer. One idm_audit_log_t per process. Threads build and hash their own lines; the
 * only shared steps are an atomic sequence counter and idm_audit_chain, a few hundred
 * nanoseconds under a mutex once per batch: copy the caller's SHA-256 state, feed it the
 * previous line's hash (base64url) and the closing `"}`, finish, and reserve the line's
 * file range. Every write is positional, so the file holds lines in chain order however
 * the threads' rings complete them. Completed ranges are merged into a contiguous
 * "written" watermark; a record is released only when the watermark (or, for policy
 * batch, the fsynced watermark) passes its end, so no client ever holds a credential
 * whose line sits behind an unwritten hole. Any write or fsync failure latches the
 * failed state (fail closed) with its reason.
 *
 *   file:  | line 0 | line 1 | line 2 (writing) | line 3 (written) | ...
 *                            ^ written watermark: line 3 waits for line 2
 *
 * Verifier. A line is parsed with jansson (duplicate keys refused), but the chain is
 * checked on the raw bytes: the line must end with `,"prev":"<43 chars>"}` and its hash
 * is SHA-256 of all its bytes. Allow entries are re-derived: the credential's signing
 * input is rebuilt from the entry (and the line's iss, kid, time) with
 * idm_jwt_signing_input, its leaf hashed, the leaves must build the signed root, and the
 * root's signature must verify with the kid's Ed25519 key. */
#include "batch/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/curve25519.h>
#include <openssl/mem.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch/btoken.h"
#include "core/b64url.h"
#include "core/clock.h"
#include "core/limits.h"
#include "crypto/jwt.h"

#define PREV_KEY ",\"prev\":\""
#define PREV_KEY_LEN 9
#define HASH_B64 43
#define LINE_TAIL_LEN (PREV_KEY_LEN + HASH_B64 + 2) /* ,"prev":"<43>"} */

typedef struct range { uint64_t off, end; } range_t;
typedef struct qline { const char *rec; size_t len; uint64_t off; uint32_t owner; } qline_t;

#define LINE_START "{\"v\":2,\"seq\":"
#define LINE_START_LEN 13
#define PAGE 4096u

struct idm_audit_log {
  int fd;
  idm_audit_opts_t opts;
  pthread_mutex_t mu;
  _Atomic uint64_t next_seq;
  uint64_t end;                       /* next free offset (mu) */
  idm_hash_t last;                    /* hash of the last chained line (mu) */
  _Atomic uint64_t written;           /* [0, written) on file (updated under mu) */
  range_t done[IDM_AUDIT_RANGES_MAX]; /* written ranges beyond the watermark (mu) */
  size_t done_n;
  _Atomic uint64_t synced;            /* [0, synced) fsynced */
  bool sync_inflight;                 /* interval policy (mu) */
  int64_t last_sync_ns;
  _Atomic bool failed;
  char reason[IDM_WHY_LEN];           /* set once, before failed becomes true */
  uint64_t recovered;                 /* torn bytes cut at open */
  /* Preallocation (opts.preallocate > 0): see "Preallocation" below. */
  uint64_t zeroed;                    /* [0, zeroed) on file as lines or zeros (mu) */
  _Atomic uint64_t zero_lo;           /* start of the range being zeroed; UINT64_MAX: none */
  bool zkick, zstop, zthread;         /* (mu) */
  pthread_cond_t zcv;                 /* the zeroer waits here for the log to grow */
  pthread_cond_t zdone;               /* idm_audit_write_sync waits here for a claim's end */
  pthread_t zthr;
  uint8_t *zbuf;                      /* zero_chunk zero bytes */
  /* The shared write queue (see "Write queue" below). */
  qline_t *q;                         /* IDM_AUDIT_QUEUE_MAX; q[0..qn) sorted by offset (mu) */
  size_t qn;
  uint64_t qnext;                     /* where the next group starts (mu) */
  _Atomic bool writer;                /* a group is being written (set and cleared under mu) */
  _Atomic size_t qn_pub;              /* qn, for idm_audit_write_busy */
};

static void hash_b64(char out[HASH_B64], const idm_hash_t *h) {
  idm_b64url_encode(out, HASH_B64, h->b, IDM_HASH_LEN);
}

/* ---- open and recovery ------------------------------------------------------------- */

/* Parses the unsigned integer after `"seq":` at the start of a line. */
static bool line_seq(const char *l, size_t n, uint64_t *seq) {
  static const char pre[] = "{\"v\":2,\"seq\":";
  size_t pl = sizeof pre - 1;
  if (n < pl + 1 || memcmp(l, pre, pl))
    return false;
  uint64_t v = 0;
  size_t i = pl;
  if (l[i] < '0' || l[i] > '9')
    return false;
  for (; i < n && l[i] >= '0' && l[i] <= '9'; i++) {
    if (v > (UINT64_MAX - 9) / 10)
      return false;
    v = v * 10 + (uint64_t)(l[i] - '0');
  }
  *seq = v;
  return true;
}

/* Checks that l[0..n) ends with the chain tail and that its prev equals *prev. */
static bool line_chained(const char *l, size_t n, const idm_hash_t *prev) {
  if (n < LINE_TAIL_LEN + 2)
    return false;
  const char *t = l + n - LINE_TAIL_LEN;
  if (memcmp(t, PREV_KEY, PREV_KEY_LEN) || memcmp(l + n - 2, "\"}", 2))
    return false;
  char want[HASH_B64];
  hash_b64(want, prev);
  return memcmp(t + PREV_KEY_LEN, want, HASH_B64) == 0;
}

/* First offset at or after i (< size) whose byte is not zero, or size. */
static size_t zero_run_end(const char *m, size_t i, size_t size) {
  while (i < size && (i & 7))
    if (m[i])
      return i;
    else
      i++;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    memcpy(&w, m + i, 8);
    if (w)
      break;
  }
  while (i < size && !m[i])
    i++;
  return i;
}

/* Judges the tail m[pos, size) after the last complete good line (pos starts line
 * `lineno`): is it what a crash leaves? A crash leaves the unreleased lines of the last
 * moments, each written whole, in part (a prefix) or not at all, in any order, and zeros
 * (a preallocated region, or holes where a line was not written); a power loss may also
 * keep or lose whole pages. So every run of non-zero bytes after a zero byte must start
 * where a line starts (LINE_START, or a prefix of it) or where a page starts, and at most
 * IDM_AUDIT_TORN_LINES_MAX lines may end after the first zero byte. Otherwise *bad_off
 * and *bad_line say where, and what is wrong goes into *what. */
static bool tail_is_crash(const char *m, size_t pos, size_t size, uint64_t lineno,
                          uint64_t *bad_off, uint64_t *bad_line, const char **what) {
  bool zero_seen = false;
  uint64_t line = lineno, ends = 0;
  size_t i = pos;
  while (i < size) {
    if (!m[i]) {
      zero_seen = true;
      i = zero_run_end(m, i, size);
      continue;
    }
    size_t j = i;
    while (j < size && m[j])
      j++;
    if (zero_seen && i % PAGE) {
      size_t k = j - i < LINE_START_LEN ? j - i : LINE_START_LEN;
      if (memcmp(m + i, LINE_START, k)) {
        *bad_off = i;
        *bad_line = line;
        *what = "non-zero bytes after a zero-filled region do not start a line";
        return false;
      }
    }
    for (size_t q = i; q < j; q++) {
      if (m[q] != '\n')
        continue;
      if (zero_seen && ++ends > IDM_AUDIT_TORN_LINES_MAX) {
        *bad_off = q;
        *bad_line = line;
        *what = "more complete lines follow a zero-filled region than a crash leaves";
        return false;
      }
      line++;
    }
    i = j;
  }
  return true;
}

/* ---- preallocation ------------------------------------------------------------------
 *
 * A thread per log keeps [end, end + preallocate) of the file written with zeros and
 * synced, one zero_chunk at a time:
 *
 *   file: | lines (reserved: [0, end)) | zeros, synced ........ | zeros being written |
 *                                      ^ end                    ^ zero_lo  (claim) ^ zeroed
 *
 * INVARIANT (zeros never overwrite a line): under mu the zeroer claims [z, z + chunk)
 * with z = max(zeroed, end), i.e. at or beyond every offset reserved so far, publishes
 * zero_lo = z, and writes the zeros outside mu. A line reserved before the claim ends at
 * or before z. A line reserved during the claim (the log's end ran into the range being
 * zeroed: the zeroer fell behind) ends beyond zero_lo, so idm_audit_may_write is false
 * for it and its writer holds the write back until the zeroer has written the range and
 * reset zero_lo (release; the writer's acquire read orders its write after the zeros).
 * Later claims start at or beyond that line's end, so once true, may_write stays true.
 * The request path pays no allocation and no blocking call for this: an atomic read per
 * line, and under mu a condition signal (a futex wake) once per chunk the log grows.
 *
 * Each chunk is synced by the zeroer itself (fdatasync: the new size and blocks reach the
 * journal here, off the request path), so a request-path fdatasync finds at most one
 * chunk of zeros dirty. Any failure (ENOSPC) fails the log closed. */

static int write_all(int fd, const uint8_t *b, size_t n, uint64_t off) {
  while (n) {
    ssize_t w = pwrite(fd, b, n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? errno : ENOSPC;
    b += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

static void fail_locked(idm_audit_log_t *log, const char *reason);

/* Fault injection for tests only: IDMINT_FAULT_ZERO_DELAY_MS (0..10000) makes the zeroer
 * sleep that long before each chunk, so that the log's end runs into the range being
 * zeroed and the writers' hold path (idm_audit_may_write false) is exercised end to end
 * (tests/batch/prealloc_hold_test.sh). It can only slow issuance down, never change what
 * is written. */
static unsigned zero_delay_ms(void) {
  const char *v = getenv("IDMINT_FAULT_ZERO_DELAY_MS");
  if (!v || !*v)
    return 0;
  char *end;
  unsigned long n = strtoul(v, &end, 10);
  return *end || n > 10000 ? 0 : (unsigned)n;
}

static void *zeroer_main(void *arg) {
  idm_audit_log_t *log = arg;
  size_t chunk = log->opts.zero_chunk;
  unsigned delay_ms = zero_delay_ms();
  pthread_mutex_lock(&log->mu);
  while (!log->zstop && !atomic_load(&log->failed)) {
    if (log->zeroed >= log->end + log->opts.preallocate) {
      log->zkick = false;
      pthread_cond_wait(&log->zcv, &log->mu);
      continue;
    }
    uint64_t z = log->zeroed > log->end ? log->zeroed : log->end;
    atomic_store_explicit(&log->zero_lo, z, memory_order_relaxed); /* under mu */
    pthread_mutex_unlock(&log->mu);
    if (delay_ms) {
      struct timespec d = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
      nanosleep(&d, NULL);
    }
    int e = write_all(log->fd, log->zbuf, chunk, z);
    pthread_mutex_lock(&log->mu);
    atomic_store_explicit(&log->zero_lo, UINT64_MAX, memory_order_release);
    pthread_cond_broadcast(&log->zdone);
    if (!e) {
      log->zeroed = z + chunk;
      pthread_mutex_unlock(&log->mu);
      e = fdatasync(log->fd) ? errno : 0;
      pthread_mutex_lock(&log->mu);
    }
    if (e) {
      char r[IDM_WHY_LEN];
      snprintf(r, sizeof r, "audit log preallocation (zeros at offset %" PRIu64 ") failed: %s",
               z, strerror(e));
      fail_locked(log, r);
    }
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

static int zeroer_start(idm_audit_log_t *log, const char *path, idm_why_t *why) {
  if (!log->opts.zero_chunk)
    log->opts.zero_chunk = IDM_AUDIT_ZERO_CHUNK;
  log->zbuf = calloc(1, log->opts.zero_chunk);
  if (!log->zbuf) {
    idm_fail(why, IDM_ERR_NOMEM, "out of memory opening the audit log");
    return -1;
  }
  /* The thread takes no signals: SIGTERM and SIGHUP stay the process's, and a file-size
   * limit (RLIMIT_FSIZE) fails its write with EFBIG (fail closed) instead of SIGXFSZ
   * killing the process. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(&log->zthr, NULL, zeroer_main, log);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e) {
    idm_fail(why, IDM_ERR_IO, "%s: cannot start the audit preallocation thread: %s", path,
             strerror(e));
    free(log->zbuf);
    log->zbuf = NULL;
    return -1;
  }
  log->zthread = true;
  return 0;
}

bool idm_audit_may_write(const idm_audit_log_t *log, uint64_t end) {
  return end <= atomic_load_explicit(&log->zero_lo, memory_order_acquire);
}

uint64_t idm_audit_zeroed_upto(idm_audit_log_t *log) {
  pthread_mutex_lock(&log->mu);
  uint64_t z = log->zeroed;
  pthread_mutex_unlock(&log->mu);
  return z;
}

idm_audit_log_t *idm_audit_open(const char *path, const idm_audit_opts_t *opts,
                                idm_why_t *why) {
  if (opts && opts->fsync == IDM_AUDIT_FSYNC_INTERVAL && opts->fsync_interval_ms <= 0) {
    idm_fail(why, IDM_ERR_CONFIG, "audit fsync interval must be positive");
    return NULL;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    idm_fail(why, IDM_ERR_IO, "%s: cannot open audit log: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    idm_fail(why, IDM_ERR_IO, "%s: audit log is not a regular file", path);
    close(fd);
    return NULL;
  }
  idm_audit_log_t *log = calloc(1, sizeof *log);
  if (!log) {
    close(fd);
    idm_fail(why, IDM_ERR_NOMEM, "out of memory opening the audit log");
    return NULL;
  }
  log->fd = fd;
  if (opts)
    log->opts = *opts;
  pthread_mutex_init(&log->mu, NULL);
  uint64_t good = 0, seq_next = 0;
  if (st.st_size > 0) {
    char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      idm_fail(why, IDM_ERR_IO, "%s: cannot read audit log: %s", path, strerror(errno));
      goto fail;
    }
    size_t size = (size_t)st.st_size, pos = 0;
    uint64_t lineno = 0;
    while (pos < size) {
      const char *l = m + pos;
      const char *nl = memchr(l, '\n', size - pos);
      lineno++;
      bool torn = !nl || memchr(l, '\0', (size_t)(nl ? nl - l : (ptrdiff_t)(size - pos)));
      if (torn)
        break; /* unterminated or zero-filled: never released, cut it off */
      size_t n = (size_t)(nl - l);
      uint64_t seq;
      if (n >= 7 && !memcmp(l, "{\"v\":1,", 7)) {
        idm_fail(why, IDM_ERR_AUDIT_LINE,
                 "%s:%" PRIu64 ": audit line format v1 (an earlier idmint) cannot be extended "
                 "by this idmint, which writes v2; start a new log file",
                 path, lineno);
        munmap(m, size);
        goto fail;
      }
      if (!line_seq(l, n, &seq) || !line_chained(l, n, &log->last)) {
        idm_fail(why, IDM_ERR_AUDIT_CHAIN,
                 "%s:%" PRIu64 ": audit line is malformed or not chained to the line "
                 "before; refusing to extend it (check it with idmint audit verify)",
                 path, lineno);
        munmap(m, size);
        goto fail;
      }
      SHA256((const uint8_t *)l, n, log->last.b);
      if (seq + 1 > seq_next)
        seq_next = seq + 1;
      pos += n + 1;
      good = pos;
    }
    if (pos < size) {
      uint64_t bad_off, bad_line;
      const char *what;
      if (!tail_is_crash(m, pos, size, lineno, &bad_off, &bad_line, &what)) {
        idm_fail(why, IDM_ERR_AUDIT_CHAIN,
                 "%s: offset %" PRIu64 " (line %" PRIu64 "): %s; the tail after the last "
                 "complete line (offset %zu) is not what a crash leaves: refusing to extend "
                 "the log (check it with idmint audit verify)",
                 path, bad_off, bad_line, what, pos);
        munmap(m, size);
        goto fail;
      }
    }
    munmap(m, size);
    if (good < (uint64_t)st.st_size) {
      if (ftruncate(fd, (off_t)good)) {
        idm_fail(why, IDM_ERR_IO, "%s: cannot cut the torn tail: %s", path, strerror(errno));
        goto fail;
      }
      log->recovered = (uint64_t)st.st_size - good;
    }
  }
  log->q = calloc(IDM_AUDIT_QUEUE_MAX, sizeof *log->q);
  if (!log->q) {
    idm_fail(why, IDM_ERR_NOMEM, "out of memory opening the audit log");
    goto fail;
  }
  log->end = good;
  log->qnext = good;
  atomic_store(&log->written, good);
  atomic_store(&log->synced, good);
  atomic_store(&log->next_seq, seq_next);
  log->last_sync_ns = idm_clock_mono_ns();
  log->zeroed = good;
  atomic_store(&log->zero_lo, UINT64_MAX);
  pthread_cond_init(&log->zcv, NULL);
  pthread_cond_init(&log->zdone, NULL);
  if (log->opts.preallocate && zeroer_start(log, path, why))
    goto fail_cv;
  return log;
fail_cv:
  pthread_cond_destroy(&log->zcv);
  pthread_cond_destroy(&log->zdone);
fail:
  pthread_mutex_destroy(&log->mu);
  close(fd);
  free(log->q);
  free(log);
  return NULL;
}

void idm_audit_close(idm_audit_log_t *log) {
  if (!log)
    return;
  if (log->zthread) {
    pthread_mutex_lock(&log->mu);
    log->zstop = true;
    pthread_cond_signal(&log->zcv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->zthr, NULL);
    /* Every byte before the written watermark is a complete line; what follows is zeros
     * or lines that never completed (a failed log), none of them released. */
    if (ftruncate(log->fd, (off_t)atomic_load(&log->written)) == 0)
      (void)fdatasync(log->fd);
  }
  close(log->fd);
  pthread_cond_destroy(&log->zcv);
  pthread_cond_destroy(&log->zdone);
  pthread_mutex_destroy(&log->mu);
  free(log->zbuf);
  free(log->q);
  free(log);
}

int idm_audit_fd(const idm_audit_log_t *log) { return log->fd; }
const idm_audit_opts_t *idm_audit_options(const idm_audit_log_t *log) { return &log->opts; }
uint64_t idm_audit_recovered_bytes(const idm_audit_log_t *log) { return log->recovered; }

uint64_t idm_audit_seq_reserve(idm_audit_log_t *log) {
  return atomic_fetch_add_explicit(&log->next_seq, 1, memory_order_relaxed);
}

void idm_audit_chain(idm_audit_log_t *log, const SHA256_CTX *partial, char prev_b64[43],
                     size_t line_len, uint64_t *offset) {
  SHA256_CTX c = *partial;
  pthread_mutex_lock(&log->mu);
  hash_b64(prev_b64, &log->last);
  SHA256_Update(&c, prev_b64, HASH_B64);
  SHA256_Update(&c, "\"}", 2);
  SHA256_Final(log->last.b, &c);
  *offset = log->end;
  log->end += line_len;
  if (log->zthread && !log->zkick && log->end + log->opts.preallocate > log->zeroed) {
    log->zkick = true; /* one wake per chunk the log grows */
    pthread_cond_signal(&log->zcv);
  }
  pthread_mutex_unlock(&log->mu);
}

/* ---- write bookkeeping --------------------------------------------------------------- */

static void fail_locked(idm_audit_log_t *log, const char *reason) {
  if (atomic_load(&log->failed))
    return;
  snprintf(log->reason, sizeof log->reason, "%s", reason);
  atomic_store(&log->failed, true);
}

void idm_audit_fail(idm_audit_log_t *log, const char *reason) {
  pthread_mutex_lock(&log->mu);
  fail_locked(log, reason);
  pthread_mutex_unlock(&log->mu);
}

bool idm_audit_failed(const idm_audit_log_t *log, idm_why_t *why) {
  if (!atomic_load(&log->failed))
    return false;
  if (why)
    snprintf(why->text, sizeof why->text, "%s", log->reason);
  return true;
}

void idm_audit_written(idm_audit_log_t *log, uint64_t offset, int64_t n) {
  pthread_mutex_lock(&log->mu);
  if (n < 0) {
    char r[IDM_WHY_LEN];
    snprintf(r, sizeof r, "audit log write at offset %" PRIu64 " failed: %s", offset,
             strerror((int)-n));
    fail_locked(log, r);
    pthread_mutex_unlock(&log->mu);
    return;
  }
  uint64_t w = atomic_load(&log->written);
  range_t r = {offset, offset + (uint64_t)n};
  if (r.off <= w) {
    if (r.end > w)
      w = r.end;
  } else if (log->done_n == IDM_AUDIT_RANGES_MAX) {
    fail_locked(log, "audit log: too many writes completed out of order");
  } else {
    log->done[log->done_n++] = r;
  }
  /* Fold any parked ranges the watermark now reaches. */
  bool moved = true;
  while (moved) {
    moved = false;
    for (size_t i = 0; i < log->done_n; i++) {
      if (log->done[i].off <= w) {
        if (log->done[i].end > w)
          w = log->done[i].end;
        log->done[i] = log->done[--log->done_n];
        moved = true;
        break;
      }
    }
  }
  atomic_store(&log->written, w);
  pthread_mutex_unlock(&log->mu);
}

uint64_t idm_audit_written_upto(idm_audit_log_t *log) { return atomic_load(&log->written); }

void idm_audit_synced(idm_audit_log_t *log, uint64_t upto, int res) {
  pthread_mutex_lock(&log->mu);
  log->sync_inflight = false;
  log->last_sync_ns = idm_clock_mono_ns();
  if (res < 0) {
    char r[IDM_WHY_LEN];
    snprintf(r, sizeof r, "audit log fdatasync failed: %s", strerror(-res));
    fail_locked(log, r);
  } else if (upto > atomic_load(&log->synced)) {
    atomic_store(&log->synced, upto);
  }
  pthread_mutex_unlock(&log->mu);
}

uint64_t idm_audit_released_upto(const idm_audit_log_t *log) {
  if (log->opts.fsync == IDM_AUDIT_FSYNC_BATCH)
    return atomic_load(&log->synced);
  return atomic_load(&log->written);
}

bool idm_audit_fsync_due(idm_audit_log_t *log, int64_t now_ns, uint64_t *upto) {
  if (log->opts.fsync != IDM_AUDIT_FSYNC_INTERVAL)
    return false;
  bool due = false;
  pthread_mutex_lock(&log->mu);
  uint64_t w = atomic_load(&log->written);
  if (!log->sync_inflight && w > atomic_load(&log->synced) &&
      now_ns - log->last_sync_ns >= log->opts.fsync_interval_ms * 1000000) {
    log->sync_inflight = true;
    *upto = w;
    due = true;
  }
  pthread_mutex_unlock(&log->mu);
  return due;
}

/* ---- write queue ---------------------------------------------------------------------
 *
 * The server's group commit across threads. A sealed line is queued (idm_audit_enqueue)
 * once its bytes are final, in offset order (a line chained by another thread that has not
 * queued it yet leaves a gap, and nothing after the gap is taken until it comes). At most
 * one writer at a time takes every queued line contiguous from qnext — the lowest offset
 * not yet taken — as one group (idm_audit_take), writes it, reports it (idm_audit_written,
 * idm_audit_synced) and gives the role back (idm_audit_put). The file is thus written
 * strictly in order, one group after the other: a crash leaves a torn or missing tail,
 * never a hole before a written line. With fsync batch every group is written with
 * RWF_DSYNC, and since the one before it had completed (written and synced) when it was
 * taken, its end is synced when it completes: no separate fdatasync is needed.
 *
 *   queue: | l7 (t0) | l8 (t1) | l9 (t1) |   | l11 (t0) |    one group: l7..l9 at qnext
 *            ^ qnext                      ^ l10: chained by t0, not queued yet
 *
 * A line is taken only when idm_audit_may_write allows it (preallocation). */

void idm_audit_enqueue(idm_audit_log_t *log, const char *rec, size_t len, uint64_t offset,
                       uint32_t owner) {
  pthread_mutex_lock(&log->mu);
  if (log->qn == IDM_AUDIT_QUEUE_MAX) { /* cannot happen: one entry per batch slot */
    fail_locked(log, "audit log: write queue full");
    pthread_mutex_unlock(&log->mu);
    return;
  }
  size_t i = log->qn;
  while (i > 0 && log->q[i - 1].off > offset) { /* usually none: lines come in order */
    log->q[i] = log->q[i - 1];
    i--;
  }
  log->q[i] = (qline_t){rec, len, offset, owner};
  log->qn++;
  atomic_store_explicit(&log->qn_pub, log->qn, memory_order_relaxed);
  pthread_mutex_unlock(&log->mu);
}

bool idm_audit_take(idm_audit_log_t *log, idm_audit_group_t *grp, bool *held) {
  *held = false;
  pthread_mutex_lock(&log->mu);
  if (atomic_load(&log->writer) || atomic_load(&log->failed) || !log->qn ||
      log->q[0].off != log->qnext) {
    pthread_mutex_unlock(&log->mu);
    return false;
  }
  if (!idm_audit_may_write(log, log->q[0].off + log->q[0].len)) {
    *held = true;
    pthread_mutex_unlock(&log->mu);
    return false;
  }
  size_t n = 0;
  uint64_t end = log->q[0].off;
  while (n < log->qn && n < IDM_AUDIT_GROUP_LINES_MAX && log->q[n].off == end &&
         idm_audit_may_write(log, end + log->q[n].len)) {
    grp->iov[n] = (struct iovec){.iov_base = (void *)log->q[n].rec, .iov_len = log->q[n].len};
    grp->owner[n] = log->q[n].owner;
    end += log->q[n].len;
    n++;
  }
  grp->n = (unsigned)n;
  grp->off = log->q[0].off;
  grp->end = end;
  log->qn -= n;
  memmove(log->q, log->q + n, log->qn * sizeof *log->q);
  atomic_store_explicit(&log->qn_pub, log->qn, memory_order_relaxed);
  log->qnext = end;
  atomic_store(&log->writer, true);
  pthread_mutex_unlock(&log->mu);
  return true;
}

void idm_audit_put(idm_audit_log_t *log) {
  pthread_mutex_lock(&log->mu);
  atomic_store(&log->writer, false);
  pthread_mutex_unlock(&log->mu);
}

bool idm_audit_write_busy(const idm_audit_log_t *log) {
  return atomic_load_explicit(&log->writer, memory_order_relaxed) ||
         atomic_load_explicit(&log->qn_pub, memory_order_relaxed);
}

idm_err_t idm_audit_write_sync(idm_audit_log_t *log, const char *rec, size_t len,
                               uint64_t offset, idm_why_t *why) {
  if (idm_audit_failed(log, why))
    return IDM_ERR_AUDIT_FAILED;
  if (!idm_audit_may_write(log, offset + len)) { /* the zeroer is writing where it goes */
    pthread_mutex_lock(&log->mu);
    while (!idm_audit_may_write(log, offset + len))
      pthread_cond_wait(&log->zdone, &log->mu);
    pthread_mutex_unlock(&log->mu);
  }
  size_t done = 0;
  while (done < len) {
    ssize_t w = pwrite(log->fd, rec + done, len - done, (off_t)(offset + done));
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      idm_audit_written(log, offset + done, w < 0 ? -(int64_t)errno : -(int64_t)EIO);
      idm_audit_failed(log, why);
      return IDM_ERR_AUDIT_FAILED;
    }
    idm_audit_written(log, offset + done, w);
    done += (size_t)w;
  }
  if (log->opts.fsync == IDM_AUDIT_FSYNC_BATCH) {
    uint64_t upto = idm_audit_written_upto(log);
    idm_audit_synced(log, upto, fdatasync(log->fd) ? -errno : 0);
  } else {
    uint64_t upto;
    if (idm_audit_fsync_due(log, idm_clock_mono_ns(), &upto))
      idm_audit_synced(log, upto, fdatasync(log->fd) ? -errno : 0);
  }
  if (idm_audit_failed(log, why))
    return IDM_ERR_AUDIT_FAILED;
  return IDM_OK;
}

/* ---- verifier ---------------------------------------------------------------------- */

#define WINDOW_WORDS (IDM_AUDIT_REORDER_MAX / 64)

idm_err_t idm_audit_verifier_init(idm_audit_verifier_t *v, const idm_jwks_t *jwks) {
  memset(v, 0, sizeof *v);
  v->jwks = jwks;
  v->seq_seen = calloc(WINDOW_WORDS, sizeof *v->seq_seen);
  v->scratch = calloc(idm_merkle_tree_nodes(IDM_BATCH_ITEMS_MAX), sizeof *v->scratch);
  if (!v->seq_seen || !v->scratch) {
    idm_audit_verifier_cleanup(v);
    return IDM_ERR_NOMEM;
  }
  return IDM_OK;
}

void idm_audit_verifier_cleanup(idm_audit_verifier_t *v) {
  free(v->seq_seen);
  free(v->scratch);
  v->seq_seen = NULL;
  v->scratch = NULL;
}

static int hash_cmp(const void *a, const void *b) { return memcmp(a, b, IDM_HASH_LEN); }

void idm_audit_verifier_want(idm_audit_verifier_t *v, idm_hash_t *want, bool *found, size_t n) {
  qsort(want, n, sizeof *want, hash_cmp);
  memset(found, 0, n * sizeof *found);
  v->want = want;
  v->want_n = n;
  v->found = found;
}

static bool seq_bit(idm_audit_verifier_t *v, uint64_t seq, bool set) {
  uint64_t i = seq % IDM_AUDIT_REORDER_MAX;
  uint64_t *w = &v->seq_seen[i / 64], bit = 1ull << (i % 64);
  bool was = (*w & bit) != 0;
  if (set)
    *w |= bit;
  else
    *w &= ~bit;
  return was;
}

/* Accepts seq once, within the reorder window below the highest sequence seen. */
static idm_err_t seq_check(idm_audit_verifier_t *v, uint64_t seq, idm_why_t *why) {
  if (v->lines == 0) {
    v->seq_max = seq;
    seq_bit(v, seq, true);
    return IDM_OK;
  }
  if (seq > v->seq_max) {
    uint64_t gap = seq - v->seq_max;
    if (gap >= IDM_AUDIT_REORDER_MAX) {
      memset(v->seq_seen, 0, WINDOW_WORDS * sizeof *v->seq_seen);
    } else {
      for (uint64_t s = v->seq_max + 1; s < seq; s++)
        seq_bit(v, s, false); /* slots reused by the window: not yet seen */
    }
    v->seq_max = seq;
    seq_bit(v, seq, true);
    return IDM_OK;
  }
  if (v->seq_max - seq >= IDM_AUDIT_REORDER_MAX)
    return idm_fail(why, IDM_ERR_AUDIT_SEQUENCE,
                    "batch sequence %" PRIu64 " is %" PRIu64 " behind the highest seen (%" PRIu64 ")",
                    seq, v->seq_max - seq, v->seq_max);
  if (seq_bit(v, seq, true))
    return idm_fail(why, IDM_ERR_AUDIT_SEQUENCE, "batch sequence %" PRIu64 " repeated", seq);
  return IDM_OK;
}

static idm_err_t get_hash(const json_t *o, const char *key, uint8_t *out, size_t want,
                          idm_why_t *why) {
  const json_t *s = json_object_get(o, key);
  if (!json_is_string(s))
    return idm_fail(why, IDM_ERR_AUDIT_LINE, "\"%s\" missing or not a string", key);
  size_t got;
  idm_why_t w2;
  if (idm_b64url_decode(out, want, &got, json_string_value(s), json_string_length(s), &w2) ||
      got != want)
    return idm_fail(why, IDM_ERR_AUDIT_LINE, "\"%s\" is not %zu base64url bytes", key, want);
  return IDM_OK;
}

static const char *get_str(const json_t *o, const char *key) {
  const json_t *s = json_object_get(o, key);
  return json_is_string(s) ? json_string_value(s) : NULL;
}

static bool get_i64(const json_t *o, const char *key, int64_t *out) {
  const json_t *s = json_object_get(o, key);
  if (!json_is_integer(s))
    return false;
  *out = (int64_t)json_integer_value(s);
  return true;
}

/* Rebuilds an allow entry's signing input (format v2: see batch.c "Audit entries") and
 * its leaf hash into *leaf. */
static idm_err_t entry_check(const json_t *e, const char *iss, const char *line_kid,
                             int64_t line_time, idm_hash_t *leaf, size_t idx, idm_why_t *why) {
  const char *alg = get_str(e, "alg"), *kid = get_str(e, "kid"), *sub = get_str(e, "sub");
  const char *aud = get_str(e, "aud"), *jti = get_str(e, "jti"), *scope = get_str(e, "scope");
  const char *trust = get_str(e, "trust"), *policy = get_str(e, "policy");
  const char *target = get_str(e, "target");
  int64_t iat = line_time, nbf, exp, ttl;
  if (!sub || !jti || !scope || !target || !get_i64(e, "ttl", &ttl) ||
      (json_object_get(e, "aud") && !aud))
    return idm_fail(why, IDM_ERR_AUDIT_ENTRY,
                    "entry %zu: allow entry lacks sub, target, scope, ttl or jti, or has a "
                    "non-string aud", idx);
  if (!aud)
    aud = target;
  if (!alg != !kid || (alg && !strcmp(alg, IDM_BTOKEN_ALG)))
    return idm_fail(why, IDM_ERR_AUDIT_ENTRY,
                    "entry %zu: \"alg\" and \"kid\" go together, and only for a jwt-profile "
                    "credential",
                    idx);
  if ((json_object_get(e, "trust") && !trust) || (json_object_get(e, "policy") && !policy) ||
      (json_object_get(e, "iat") && !get_i64(e, "iat", &iat)))
    return idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: \"trust\", \"policy\" or \"iat\" "
                    "has the wrong type", idx);
  nbf = iat;
  if (json_object_get(e, "nbf") && !get_i64(e, "nbf", &nbf))
    return idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: \"nbf\" is not an integer", idx);
  if (__builtin_add_overflow(iat, ttl, &exp))
    return idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: iat + ttl overflows", idx);
  idm_claims_t c = {.iss = iss,
                    .sub = sub,
                    .sub_len = strlen(sub),
                    .aud = aud,
                    .iat = iat,
                    .nbf = nbf,
                    .exp = exp,
                    .jti = jti,
                    .scope = scope,
                    .scope_len = strlen(scope),
                    .trust = trust,
                    .policy = policy};
  static _Thread_local char buf[IDM_TOKEN_MAX];
  size_t len;
  if (idm_jwt_signing_input(buf, sizeof buf, &len, alg ? alg : IDM_BTOKEN_ALG,
                            kid ? kid : line_kid, &c))
    return idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: its fields do not form a credential",
                    idx);
  idm_merkle_leaf(leaf, buf, len);
  return IDM_OK;
}

idm_err_t idm_audit_verify_line(idm_audit_verifier_t *v, const char *line, size_t len,
                                idm_why_t *why) {
  idm_err_t err = IDM_OK;
  if (len > IDM_AUDIT_LINE_MAX_BYTES)
    return idm_fail(why, IDM_ERR_AUDIT_LINE, "line of %zu bytes exceeds the %d-byte limit", len,
                    IDM_AUDIT_LINE_MAX_BYTES);
  if (len < LINE_TAIL_LEN + 2 || memcmp(line + len - LINE_TAIL_LEN, PREV_KEY, PREV_KEY_LEN) ||
      memcmp(line + len - 2, "\"}", 2))
    return idm_fail(why, IDM_ERR_AUDIT_LINE, "line does not end with its \"prev\" chain hash");
  if (!line_chained(line, len, &v->prev))
    return idm_fail(why, IDM_ERR_AUDIT_CHAIN,
                    "\"prev\" is not the hash of the previous line (line removed, inserted, "
                    "reordered or edited before this one)");
  json_error_t je;
  json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
  if (!o || !json_is_object(o)) {
    err = idm_fail(why, IDM_ERR_AUDIT_LINE, "not a JSON object: %s (column %d)",
                   o ? "other value" : je.text, je.column);
    goto out;
  }
  int64_t ver, seq, time_s, size;
  if (get_i64(o, "v", &ver) && ver == 1) {
    err = idm_fail(why, IDM_ERR_AUDIT_LINE,
                   "audit line format v1 (an earlier idmint) is not supported; this idmint "
                   "writes and verifies v2");
    goto out;
  }
  if (!get_i64(o, "v", &ver) || ver != 2) {
    err = idm_fail(why, IDM_ERR_AUDIT_LINE, "\"v\" is not 2");
    goto out;
  }
  if (!get_i64(o, "seq", &seq) || seq < 0 || !get_i64(o, "time", &time_s) ||
      !get_i64(o, "size", &size) || size < 0 || size > IDM_BATCH_ITEMS_MAX) {
    err = idm_fail(why, IDM_ERR_AUDIT_LINE, "\"seq\", \"time\" or \"size\" missing or out of range");
    goto out;
  }
  const char *kid = get_str(o, "kid"), *iss = get_str(o, "iss");
  if (!kid || !iss || strlen(kid) > IDM_BTOKEN_KID_MAX) {
    err = idm_fail(why, IDM_ERR_AUDIT_LINE, "\"kid\" or \"iss\" missing or not a string");
    goto out;
  }
  idm_batch_head_t h = {.seq = (uint64_t)seq, .size = (uint64_t)size, .time_s = time_s};
  uint8_t sig[IDM_BTOKEN_SIG_LEN];
  if ((err = get_hash(o, "root", h.root.b, IDM_HASH_LEN, why)) ||
      (err = get_hash(o, "sig", sig, IDM_BTOKEN_SIG_LEN, why)))
    goto out;
  if ((err = seq_check(v, (uint64_t)seq, why)))
    goto out;
  if (v->jwks) {
    const idm_jwk_t *k = idm_jwks_find(v->jwks, kid, strlen(kid));
    const uint8_t *pub = k ? idm_jwk_ed25519_public(k) : NULL;
    if (!pub) {
      err = idm_fail(why, IDM_ERR_AUDIT_SIGNATURE, "no Ed25519 key with kid %s in the JWKS", kid);
      goto out;
    }
    uint8_t msg[IDM_BTOKEN_MSG_MAX];
    size_t mlen = idm_btoken_message(msg, kid, strlen(kid), &h);
    if (!ED25519_verify(msg, mlen, sig, pub)) {
      err = idm_fail(why, IDM_ERR_AUDIT_SIGNATURE,
                     "batch %" PRId64 ": signature over the root does not verify with kid %s",
                     seq, kid);
      goto out;
    }
  }
  const json_t *entries = json_object_get(o, "entries");
  if (!json_is_array(entries) || json_array_size(entries) > IDM_BATCH_ITEMS_MAX) {
    err = idm_fail(why, IDM_ERR_AUDIT_LINE, "\"entries\" missing, not an array or too long");
    goto out;
  }
  size_t allows = 0, denies = 0;
  for (size_t i = 0; i < json_array_size(entries); i++) {
    const json_t *e = json_array_get(entries, i);
    const char *d = get_str(e, "d");
    if (!json_is_object(e) || !d) {
      err = idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: not an object with \"d\"", i);
      goto out;
    }
    if (!strcmp(d, "deny")) {
      if (!get_str(e, "reason") || !get_str(e, "sub") || !json_is_array(json_object_get(e, "rules"))) {
        err = idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: deny entry lacks reason, sub or rules", i);
        goto out;
      }
      denies++;
      continue;
    }
    if (strcmp(d, "allow")) {
      err = idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: \"d\" is neither allow nor deny", i);
      goto out;
    }
    if (allows >= (size_t)size) {
      err = idm_fail(why, IDM_ERR_AUDIT_ENTRY,
                     "entry %zu: more credentials than the tree size %" PRId64, i, size);
      goto out;
    }
    if (!json_is_array(json_object_get(e, "rules"))) {
      err = idm_fail(why, IDM_ERR_AUDIT_ENTRY, "entry %zu: \"rules\" missing", i);
      goto out;
    }
    if ((err = entry_check(e, iss, kid, time_s, &v->scratch[allows], i, why)))
      goto out;
    allows++;
  }
  if (allows != (size_t)size) {
    err = idm_fail(why, IDM_ERR_AUDIT_ENTRY, "tree size %" PRId64 " but %zu credentials recorded",
                   size, allows);
    goto out;
  }
  idm_hash_t root;
  if (allows == 0) {
    idm_merkle_empty(&root);
  } else {
    /* Mark wanted leaves before the tree overwrites nothing: levels go after the leaves. */
    for (size_t i = 0; i < allows && v->want_n; i++) {
      const idm_hash_t *f = bsearch(&v->scratch[i], v->want, v->want_n, sizeof *v->want, hash_cmp);
      if (f)
        v->found[f - v->want] = true;
    }
    idm_merkle_tree(v->scratch, allows);
    root = v->scratch[idm_merkle_tree_nodes(allows) - 1];
  }
  if (CRYPTO_memcmp(root.b, h.root.b, IDM_HASH_LEN)) {
    err = idm_fail(why, IDM_ERR_AUDIT_ENTRY,
                   "the recorded credentials do not build the signed root (entry added, "
                   "removed, reordered or edited)");
    /* found[] marks are only meaningful for accepted lines; clear nothing: the caller
     * stops at the first bad line. */
    goto out;
  }
  SHA256((const uint8_t *)line, len, v->prev.b);
  v->lines++;
  v->entries += allows + denies;
  v->allows += allows;
  v->denies += denies;
out:
  json_decref(o);
  return err;
}

/* Reads one line (without its '\n') into *buf, growing it up to
 * IDM_AUDIT_LINE_MAX_BYTES + 1 bytes: a hostile log cannot make the verifier hold more.
 * Returns the length, -1 at end of file, -2 for an overlong line; *nl says whether the
 * line ended with '\n'. */
static ssize_t line_read(FILE *f, char **buf, size_t *cap, bool *nl, bool *nul) {
  size_t n = 0;
  int c;
  *nl = *nul = false;
  while ((c = getc_unlocked(f)) != EOF) {
    if (c == '\n') {
      *nl = true;
      break;
    }
    if (c == 0) { /* a zero-filled region starts (left unread but for this byte) */
      *nul = true;
      break;
    }
    if (n + 1 >= *cap) {
      if (*cap > IDM_AUDIT_LINE_MAX_BYTES)
        return -2;
      size_t nc = *cap ? *cap * 2 : 65536;
      char *p = realloc(*buf, nc);
      if (!p)
        return -2;
      *buf = p;
      *cap = nc;
    }
    (*buf)[n++] = (char)c;
  }
  if (n == 0 && !*nl && !*nul)
    return -1;
  return (ssize_t)n;
}

/* After a zero byte at offset `at`: the rest of the file must be zeros. Returns -1 when it
 * is, else the offset of the first non-zero byte. */
static int64_t zeros_to_eof(FILE *f, uint64_t at) {
  char b[65536];
  uint64_t off = at + 1;
  size_t n;
  while ((n = fread(b, 1, sizeof b, f)) > 0) {
    for (size_t i = 0; i < n; i++)
      if (b[i])
        return (int64_t)(off + i);
    off += n;
  }
  return -1;
}

idm_err_t idm_audit_verify_file(idm_audit_verifier_t *v, const char *path, uint64_t *bad_line,
                                idm_why_t *why) {
  *bad_line = 0;
  FILE *f = fopen(path, "re");
  if (!f)
    return idm_fail(why, IDM_ERR_IO, "%s: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  bool nl;
  idm_err_t err = IDM_OK;
  uint64_t no = 0, off = 0;
  bool nul;
  while ((n = line_read(f, &line, &cap, &nl, &nul)) != -1) {
    no++;
    if (nul && n >= 0) {
      uint64_t z = off + (uint64_t)n; /* the zero byte's offset */
      int64_t nz = zeros_to_eof(f, z);
      if (n > 0) {
        *bad_line = no;
        err = idm_fail(why, IDM_ERR_AUDIT_TORN, "line is incomplete (%zd bytes, then zero "
                       "bytes from offset %" PRIu64 "%s): torn write, truncated or edited log",
                       n, z, nz < 0 ? " to the end" : "");
      } else if (nz >= 0) {
        *bad_line = no;
        err = idm_fail(why, IDM_ERR_AUDIT_LINE, "non-zero byte at offset %" PRId64 " after the "
                       "zero-filled region that starts at offset %" PRIu64 " (a preallocated or "
                       "crashed log has only zeros after its last line)", nz, z);
      }
      break; /* else: a zero tail after the last line, accepted */
    }
    if (n == -2) {
      *bad_line = no;
      err = idm_fail(why, IDM_ERR_AUDIT_LINE, "line exceeds the %d-byte limit",
                     IDM_AUDIT_LINE_MAX_BYTES);
      break;
    }
    if (!nl) {
      *bad_line = no;
      err = idm_fail(why, IDM_ERR_AUDIT_TORN, "line is incomplete (%zd bytes, no newline): torn "
                     "write or truncated log", n);
      break;
    }
    if ((err = idm_audit_verify_line(v, line, (size_t)n, why))) {
      *bad_line = no;
      break;
    }
    off += (uint64_t)n + 1;
  }
  if (!err && ferror(f))
    err = idm_fail(why, IDM_ERR_IO, "%s: read error", path);
  free(line);
  fclose(f);
  return err;
}
