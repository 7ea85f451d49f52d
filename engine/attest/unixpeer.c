/* unix: the caller of a local Unix socket, identified by the kernel.
 *
 * SO_PEERCRED gives the uid, gid and pid the peer had when it connected; no secret is
 * involved. The executable comes from /proc/PID/exe: its path (readlink) and the SHA-256
 * of its contents, read through the link itself (which opens the very inode the process
 * runs, even if the path was replaced or deleted since). A pid can be reused between
 * connect and our read; we re-read the credentials of /proc/PID after hashing and refuse
 * if the process there no longer has the peer's uid/gid (docs/ATTESTATION.md says what
 * remains). The result is not cached: the server attests a unix connection once. */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "attest/internal.h"
#include "core/limits.h"

static char *fmt_u(idm_arena_t *arena, unsigned long v) {
  char b[24];
  int n = snprintf(b, sizeof b, "%lu", v);
  return idm_arena_strndup(arena, b, (size_t)n);
}

idm_err_t idm_attest_unix_peer(idm_attest_t *a, int fd, idm_arena_t *arena,
                               idm_identity_t *out, idm_why_t *why) {
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
  SHA256_CTX sha;
  SHA256_Init(&sha);
  uint8_t buf[64 * 1024];
  long long total = 0;
  for (;;) {
    ssize_t n = read(xfd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      close(xfd);
      return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: %s", link, strerror(err));
    }
    if (n == 0)
      break;
    total += n;
    if (total > IDM_UNIX_EXE_MAX_BYTES) {
      close(xfd);
      return idm_fail(why, IDM_ERR_UNIX_PEER, "%s: executable exceeds %lld bytes", path,
                      IDM_UNIX_EXE_MAX_BYTES);
    }
    SHA256_Update(&sha, buf, (size_t)n);
  }
  close(xfd);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, &sha);

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
