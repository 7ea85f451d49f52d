/* unix: the caller of a local Unix socket, identified by the kernel.
 *
 * SO_PEERCRED gives the uid, gid and pid the peer had when it connected; no secret is
 * involved. The executable comes from /proc/PID/exe: its path (readlink) and the SHA-256
 * of its contents, read through the link itself (which opens the very inode the process
 * runs, even if the path was replaced or deleted since). A pid can be reused between
 * connect and our read; we re-read the credentials of /proc/PID after hashing and refuse
 * if the process there no longer has the peer's uid/gid (docs/ATTESTATION.md says what
 * remains). The identity is not cached (the server attests a unix connection once), but the
 * executable's digest is: hashing a large binary on every accept would hold up the worker
 * that owns the socket (and every TCP connection it serves) for tens of milliseconds.
 *
 * The digest cache: 64 entries keyed by the executable's device, inode, size, mtime and
 * ctime (nanoseconds). Any write, truncate, chmod or rename of the file moves its ctime, and
 * ctime cannot be set from user space, so a file whose key is unchanged has the contents
 * that were hashed; a file being executed cannot be opened for writing anyway (ETXTBSY).
 * The file is stat'ed again after a miss is hashed: if it changed meanwhile the peer is
 * refused, because the digest may match no version of it. One mutex guards the table (one
 * lookup per accepted connection; the hash itself is computed outside it). */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>

#include <openssl/sha.h>

#include "attest/internal.h"
#include "core/limits.h"

static char *fmt_u(idm_arena_t *arena, unsigned long v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%lu", v);
  return idm_arena_strndup(arena, b, (size_t)n);
}

typedef struct {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
} exe_key_t;

#define EXE_CACHE_N 64
static struct {
  pthread_mutex_t mu;
  struct {
    exe_key_t key;
    uint8_t digest[SHA256_DIGEST_LENGTH];
    bool used;
  } e[EXE_CACHE_N];
  unsigned next; /* the entry a miss replaces (round robin) */
  uint64_t hits, misses;
} g_exe = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void exe_key(const struct stat *st, exe_key_t *k) {
  memset(k, 0, sizeof *k);
  k->dev = st->st_dev;
  k->ino = st->st_ino;
  k->size = st->st_size;
  k->mtime = st->st_mtim;
  k->ctime = st->st_ctim;
}

static bool exe_key_eq(const exe_key_t *a, const exe_key_t *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static bool exe_cache_get(const exe_key_t *k, uint8_t digest[SHA256_DIGEST_LENGTH]) {
  bool hit = false;
  pthread_mutex_lock(&g_exe.mu);
  for (unsigned i = 0; i < EXE_CACHE_N && !hit; i++)
    if (g_exe.e[i].used && exe_key_eq(&g_exe.e[i].key, k)) {
      memcpy(digest, g_exe.e[i].digest, SHA256_DIGEST_LENGTH);
      hit = true;
    }
  if (hit)
    g_exe.hits++;
  else
    g_exe.misses++;
  pthread_mutex_unlock(&g_exe.mu);
  return hit;
}

static void exe_cache_put(const exe_key_t *k, const uint8_t digest[SHA256_DIGEST_LENGTH]) {
  pthread_mutex_lock(&g_exe.mu);
  unsigned i = g_exe.next++ % EXE_CACHE_N;
  g_exe.e[i].key = *k;
  memcpy(g_exe.e[i].digest, digest, SHA256_DIGEST_LENGTH);
  g_exe.e[i].used = true;
  pthread_mutex_unlock(&g_exe.mu);
}

void idm_attest_exe_cache_stats(uint64_t *hits, uint64_t *misses) {
  pthread_mutex_lock(&g_exe.mu);
  *hits = g_exe.hits;
  *misses = g_exe.misses;
  pthread_mutex_unlock(&g_exe.mu);
}

static idm_err_t exe_digest(int xfd, const char *name, bool may_hash, uint8_t digest[32],
                            idm_why_t *why);

/* Fault injection for tests only: IDMINT_FAULT_HASH_DELAY_MS (0..10000) makes every hash
 * of an executable take that much longer, as a very large binary would, so that a test
 * can tell whether hashing holds up the server's event loop
 * (tests/net/unix_hash_test.sh). It can only slow hashing down, never change a digest. */
static void hash_fault_delay(void) {
  const char *v = getenv("IDMINT_FAULT_HASH_DELAY_MS");
  if (!v || !*v)
    return;
  char *end;
  unsigned long n = strtoul(v, &end, 10);
  if (!*end && n <= 10000)
    usleep((useconds_t)n * 1000);
}

idm_err_t idm_attest_exe_digest(int xfd, const char *name, uint8_t digest[32], idm_why_t *why) {
  return exe_digest(xfd, name, true, digest, why);
}

idm_err_t idm_attest_unix_exe_hash(int exe_fd, idm_why_t *why) {
  uint8_t digest[32];
  return exe_digest(exe_fd, "the peer's executable", true, digest, why);
}

static idm_err_t exe_digest(int xfd, const char *name, bool may_hash, uint8_t digest[32],
                            idm_why_t *why) {
  struct stat st;
  if (fstat(xfd, &st) != 0)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: %s", name, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: not a regular file", name);
  if (st.st_size > IDM_UNIX_EXE_MAX_BYTES)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: executable exceeds %lld bytes", name,
                    IDM_UNIX_EXE_MAX_BYTES);
  exe_key_t k;
  exe_key(&st, &k);
  if (exe_cache_get(&k, digest))
    return IDM_OK;
  if (!may_hash)
    return idm_fail(why, IDM_ERR_UNIX_EXE_UNHASHED, "%s: not hashed yet", name);
  hash_fault_delay();
  SHA256_CTX sha;
  SHA256_Init(&sha);
  uint8_t buf[64 * 1024];
  long long total = 0;
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(xfd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: %s", name, strerror(errno));
    if (n == 0)
      break;
    off += n;
    total += n;
    if (total > IDM_UNIX_EXE_MAX_BYTES)
      return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: executable exceeds %lld bytes", name,
                      IDM_UNIX_EXE_MAX_BYTES);
    SHA256_Update(&sha, buf, (size_t)n);
  }
  SHA256_Final(digest, &sha);
  exe_key_t k2;
  if (fstat(xfd, &st) != 0)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: %s", name, strerror(errno));
  exe_key(&st, &k2);
  if (!exe_key_eq(&k, &k2) || total != k.size)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: executable changed while being hashed", name);
  exe_cache_put(&k, digest);
  return IDM_OK;
}

static idm_err_t unix_peer(idm_attest_t *a, int fd, idm_arena_t *arena, idm_identity_t *out,
                           int *exe_fd, idm_why_t *why);

idm_err_t idm_attest_unix_peer(idm_attest_t *a, int fd, idm_arena_t *arena,
                               idm_identity_t *out, idm_why_t *why) {
  return unix_peer(a, fd, arena, out, NULL, why);
}

idm_err_t idm_attest_unix_peer_cached(idm_attest_t *a, int fd, idm_arena_t *arena,
                                      idm_identity_t *out, int *exe_fd, idm_why_t *why) {
  *exe_fd = -1;
  return unix_peer(a, fd, arena, out, exe_fd, why);
}

/* exe_fd NULL: hash the executable here when its digest is not cached; else hand it out. */
static idm_err_t unix_peer(idm_attest_t *a, int fd, idm_arena_t *arena, idm_identity_t *out,
                           int *exe_fd, idm_why_t *why) {
  if (!a || !arena || !out)
    return idm_fail(why, IDM_ERR_INVALID_ARG, "idm_attest_unix_peer: missing argument");
  memset(out, 0, sizeof *out);
  const idm_provider_t *p = NULL;
  for (size_t i = 0; i < a->n && !p; i++)
    if (a->prov[i].trust->kind == POL_KIND_UNIX)
      p = &a->prov[i];
  if (!p)
    return idm_fail(why, IDM_ERR_ATTEST_TRUST_UNKNOWN, "no trust block of kind unix");

  struct ucred cred;
  socklen_t cl = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cl != sizeof cred)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "SO_PEERCRED: %s", strerror(errno));
  if (cred.pid <= 0)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "peer has no process (pid %d)", (int)cred.pid);

  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/%d/exe", (int)cred.pid);
  ssize_t pn = readlink(link, path, sizeof path - 1);
  if (pn <= 0)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: %s", link, pn < 0 ? strerror(errno) : "empty");
  path[pn] = '\0';

  int xfd = open(link, O_RDONLY | O_CLOEXEC);
  if (xfd < 0)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: %s", link, strerror(errno));
  uint8_t digest[SHA256_DIGEST_LENGTH];
  idm_err_t e = exe_digest(xfd, path, exe_fd == NULL, digest, why);
  if (e == IDM_ERR_UNIX_EXE_UNHASHED) {
    *exe_fd = xfd; /* the caller hashes it and asks again */
    return e;
  }
  close(xfd);
  if (e != IDM_OK)
    return e;

  /* The pid must still be a process of the peer's uid/gid. */
  char proc[64];
  struct stat st;
  snprintf(proc, sizeof proc, "/proc/%d", (int)cred.pid);
  if (stat(proc, &st) != 0 || st.st_uid != cred.uid || st.st_gid != cred.gid)
    return idm_fail(why, IDM_ERR_UNIX_PEER, "peer process %d went away while being identified",
                    (int)cred.pid);

  char hexd[65];
  static const char d[] = "0123456789abcdef";
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    hexd[2 * i] = d[digest[i] >> 4];
    hexd[2 * i + 1] = d[digest[i] & 15];
  }
  hexd[64] = '\0';
  char subj[32];
  int sl = snprintf(subj, sizeof subj, "uid:%u", (unsigned)cred.uid);
  char *uid = fmt_u(arena, cred.uid), *gid = fmt_u(arena, cred.gid);
  char *exe = idm_arena_strndup(arena, path, (size_t)pn);
  char *shax = idm_arena_strndup(arena, hexd, 64);
  char *sub = idm_arena_strndup(arena, subj, (size_t)sl);
  if (!uid || !gid || !exe || !shax || !sub)
    return idm_fail(why, IDM_ERR_ARENA_FULL, "request arena exhausted");
  idm_attest_set_common(p, out);
  idm_attr_set(&out->client, POL_A_SUBJECT, sub, (size_t)sl);
  idm_attr_set(&out->client, POL_A_UID, uid, strlen(uid));
  idm_attr_set(&out->client, POL_A_GID, gid, strlen(gid));
  idm_attr_set(&out->client, POL_A_EXE, exe, (size_t)pn);
  idm_attr_set(&out->client, POL_A_EXE_SHA256, shax, 64);
  out->exp_s = 0;
  return IDM_OK;
}
