/* Helpers for the fuzz targets that need files on disk (key directories, configuration,
 * join-token stores): a private temporary directory, whole-file writes with a mode, and
 * an idmint key file for a fixed Ed25519 seed (so seeds that name its kid stay valid).
 * Header-only: each target is one .c file (fuzz/CMakeLists.txt). */
#ifndef IDM_FUZZ_FILES_H
#define IDM_FUZZ_FILES_H

#include <fcntl.h>
#include <openssl/curve25519.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/b64url.h"
#include "core/json.h"
#include "crypto/internal.h"

#define FZ_FN static __attribute__((unused))

FZ_FN void fz_rmrf(const char *dir) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
}

static char fz_dir_[128];
static void fz_cleanup_(void) { fz_rmrf(fz_dir_); }

/* A new private directory under /tmp, removed when the process exits normally; aborts
 * on failure. One per process. */
FZ_FN void fz_tmpdir(char *out, size_t cap, const char *tag) {
  snprintf(fz_dir_, sizeof fz_dir_, "/tmp/idm_fuzz_%s_%d_XXXXXX", tag, (int)getpid());
  if (!mkdtemp(fz_dir_) || snprintf(out, cap, "%s", fz_dir_) >= (int)cap)
    abort();
  atexit(fz_cleanup_);
}

/* Writes the file whole, with mode (replacing it); aborts on failure. */
FZ_FN void fz_write(const char *path, const void *data, size_t n, mode_t mode) {
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    abort();
  const char *p = data;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w <= 0)
      abort();
    p += w;
    n -= (size_t)w;
  }
  if (fchmod(fd, mode) || close(fd))
    abort();
}

/* The Ed25519 key of seed byte s (seed[i] = s + 3i): its public key, its JWK members "x"
 * and "d", and its RFC 7638 thumbprint (the kid; the key file is named <kid>.json). */
typedef struct fz_edkey {
  uint8_t pub[32], priv[64];
  char x[48], d[48], kid[44];
} fz_edkey_t;

FZ_FN void fz_edkey(fz_edkey_t *k, uint8_t s) {
  uint8_t seed[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)(s + 3 * i);
  ED25519_keypair_from_seed(k->pub, k->priv, seed);
  k->x[idm_b64url_encode(k->x, sizeof k->x, k->pub, 32)] = 0;
  k->d[idm_b64url_encode(k->d, sizeof k->d, seed, 32)] = 0;
  json_t *o = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", k->x);
  if (!o || idm_jose_thumbprint(o, k->kid, NULL) != IDM_OK)
    abort();
  json_decref(o);
}

/* An idmint key file (engine/crypto/keys.c) for k, ACTIVE since created. */
FZ_FN int fz_keyfile(char *out, size_t cap, const fz_edkey_t *k, long long created) {
  return snprintf(out, cap,
                  "{\"idmint_key\":1,\"alg\":\"EdDSA\",\"state\":\"active\",\"created\":%lld,"
                  "\"activated\":%lld,\"retired\":0,\"publish_until\":0,\"jwk\":{\"kty\":\"OKP\","
                  "\"crv\":\"Ed25519\",\"x\":\"%s\",\"d\":\"%s\",\"kid\":\"%s\",\"alg\":\"EdDSA\","
                  "\"use\":\"sig\"}}\n",
                  created, created, k->x, k->d, k->kid);
}

#endif
