/* Helpers shared by the crypto tests (header-only; each test binary includes it once). */
#ifndef IDM_TESTS_CRYPTO_TESTUTIL_H
#define IDM_TESTS_CRYPTO_TESTUTIL_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/b64url.h"
#include "core/json.h"

/* The jose-generated vectors (tests/interop/gen_jose_vectors.mjs). Caller json_decref. */
static inline json_t *tu_vectors(void) {
  json_error_t je;
  json_t *v = json_load_file(IDM_SRC_DIR "/tests/crypto/data/jose_vectors.json", 0, &je);
  if (!v) {
    fprintf(stderr, "vectors: %s\n", je.text);
    abort();
  }
  return v;
}

/* Frees what json_dumps returned (jansson's allocator hooks are installed). */
static inline void tu_jfree(char *p) { idm_json_dumps_free(p); }

/* b64url(header) "." b64url(payload) "." b64url(sig), malloc'd. */
static inline char *tu_token(const char *header, const char *payload, const void *sig,
                             size_t sig_len) {
  size_t hl = strlen(header), pl = strlen(payload);
  size_t cap = idm_b64url_encoded_len(hl) + idm_b64url_encoded_len(pl) +
               idm_b64url_encoded_len(sig_len) + 3;
  char *t = malloc(cap);
  size_t o = idm_b64url_encode(t, cap, (const uint8_t *)header, hl);
  t[o++] = '.';
  o += idm_b64url_encode(t + o, cap - o, (const uint8_t *)payload, pl);
  t[o++] = '.';
  o += idm_b64url_encode(t + o, cap - o, sig, sig_len);
  t[o] = '\0';
  return t;
}

/* A fresh private directory under /tmp (0700), malloc'd path. */
static inline char *tu_tmpdir(void) {
  char *d = strdup("/tmp/idm-crypto-test-XXXXXX");
  if (!mkdtemp(d))
    abort();
  return d;
}

static inline void tu_rmrf(const char *d) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
  if (system(cmd) != 0)
    fprintf(stderr, "cleanup of %s failed\n", d);
}

#endif
