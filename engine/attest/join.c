/* join-token: one-time bootstrap tokens for devices with no platform identity.
 *
 * A token is "idmjt1.<name>.<43 base64url chars: 32 random bytes>". The store keeps only
 * SHA-256(token) (hex), the name, and the creation, expiry and use times:
 *     {"version":1,"tokens":[{"name":"edge-7","sha256":"…","created":T,"expires":T,"used":0}]}
 * Every read-modify-write holds an exclusive flock on "<store>.lock" (other processes,
 * e.g. `idmint join-token new` beside a running server, or several servers on one node)
 * and, inside the server, the provider's mutex (other threads); the new store is written
 * atomically (temporary file, fsync, rename). Marking a token used and persisting that
 * happen under the lock before success is reported, so a token is accepted at most once
 * even when two requests race, and a crash after acceptance leaves it used.
 *
 * Used and expired entries are kept a week past expiry so a second attempt is told "already
 * used" or "expired" rather than "unknown", then pruned. This path reads and writes a file
 * and allocates: bootstrap is rare, and it is the only attestation path that does. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/mem.h>
#include <openssl/sha.h>

#include "attest/internal.h"
#include "core/b64url.h"
#include "core/file.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/random.h"

#define JOIN_PREFIX "idmjt1."
#define JOIN_SECRET_B64 43
#define JOIN_KEEP_S (7 * 86400)
#define JOIN_TIME_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

static bool name_ok(const char *s, size_t n) {
  if (n == 0 || n > IDM_JOIN_NAME_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_'))
      return false;
  }
  return true;
}

static void hex(char *out, const uint8_t *in, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[in[i] >> 4];
    out[2 * i + 1] = d[in[i] & 15];
  }
  out[2 * n] = '\0';
}

/* An exclusive lock on "<store>.lock", held until unlock_store. */
static idm_err_t lock_store(const char *store, int *fd_out, idm_why_t *why) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s.lock", store) >= (int)sizeof path)
    return idm_fail(why, IDM_ERR_JOIN_STORE, "%s: path too long", store);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return idm_fail(why, IDM_ERR_JOIN_STORE, "%s: %s", path, strerror(errno));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      int err = errno;
      close(fd);
      return idm_fail(why, IDM_ERR_JOIN_STORE, "%s: flock: %s", path, strerror(err));
    }
  }
  *fd_out = fd;
  return IDM_OK;
}

static void unlock_store(int fd) {
  flock(fd, LOCK_UN);
  close(fd);
}

/* Reads the store (a missing file is an empty store) into a new malloc'd tree. */
static idm_err_t read_store(const char *store, json_t **out, idm_why_t *why) {
  char *buf = NULL;
  size_t n = 0;
  idm_why_t w;
  idm_why_clear(&w);
  if (access(store, F_OK) != 0 && errno == ENOENT) {
    *out = json_pack("{s:i, s:[]}", "version", 1, "tokens");
    return *out ? IDM_OK : idm_fail(why, IDM_ERR_NOMEM, "out of memory");
  }
  idm_err_t e = idm_file_read_secret(store, IDM_JOIN_STORE_MAX_BYTES, &buf, &n, &w);
  if (e)
    return idm_fail(why, IDM_ERR_JOIN_STORE, "%s", idm_why_str(&w, e));
  json_t *root = idm_json_parse(buf, n, &e, &w);
  free(buf);
  json_t *tokens = root ? json_object_get(root, "tokens") : NULL;
  if (!root || !json_is_object(root) || !json_is_array(tokens)) {
    json_decref(root);
    return idm_fail(why, IDM_ERR_JOIN_STORE, "%s: not a join-token store (%s)", store,
                    root ? "no \"tokens\" array" : idm_why_str(&w, e));
  }
  size_t i;
  json_t *t;
  json_array_foreach(tokens, i, t) {
    if (!json_is_object(t) || !json_is_string(json_object_get(t, "name")) ||
        !json_is_string(json_object_get(t, "sha256")) ||
        json_string_length(json_object_get(t, "sha256")) != 64 ||
        !json_is_integer(json_object_get(t, "expires")) ||
        !json_is_integer(json_object_get(t, "used"))) {
      json_decref(root);
      return idm_fail(why, IDM_ERR_JOIN_STORE, "%s: entry %zu is malformed", store, i);
    }
    /* Times are compared with and subtracted from the clock: out of range they would
     * overflow (a damaged or hand-edited store). */
    static const char *const times[] = {"expires", "used"};
    for (size_t k = 0; k < 2; k++) {
      json_int_t v = json_integer_value(json_object_get(t, times[k]));
      if (v < 0 || v > JOIN_TIME_MAX) {
        json_decref(root);
        return idm_fail(why, IDM_ERR_JOIN_STORE,
                        "%s: entry %zu: \"%s\" %lld is not a time in seconds (0 to %lld)", store,
                        i, times[k], (long long)v, (long long)JOIN_TIME_MAX);
      }
    }
  }
  *out = root;
  return IDM_OK;
}

static idm_err_t write_store(const char *store, json_t *root, int64_t now, idm_why_t *why) {
  json_t *tokens = json_object_get(root, "tokens");
  for (size_t i = json_array_size(tokens); i-- > 0;) {
    json_t *t = json_array_get(tokens, i);
    if (json_integer_value(json_object_get(t, "expires")) + JOIN_KEEP_S < now)
      json_array_remove(tokens, i);
  }
  /* json_dumpb into our own buffer: json_dumps memory belongs to jansson's allocator. */
  size_t n = json_dumpb(root, NULL, 0, JSON_COMPACT);
  char *text = n ? malloc(n) : NULL;
  if (!text || json_dumpb(root, text, n, JSON_COMPACT) != n) {
    free(text);
    return idm_fail(why, IDM_ERR_NOMEM, "out of memory");
  }
  idm_why_t w;
  idm_why_clear(&w);
  idm_err_t e = n + 1 > IDM_JOIN_STORE_MAX_BYTES
                    ? idm_fail(&w, IDM_ERR_TOO_LARGE, "%s: store would exceed %d bytes", store,
                               IDM_JOIN_STORE_MAX_BYTES)
                    : idm_file_write_atomic(store, text, n, 0600, &w);
  free(text);
  return e ? idm_fail(why, IDM_ERR_JOIN_STORE, "%s", idm_why_str(&w, e)) : IDM_OK;
}

idm_err_t idm_join_token_new(const pol_trust_t *t, const char *name, int64_t ttl_s,
                             const idm_clock_t *clk, char *out, size_t cap, idm_why_t *why) {
  if (!t || t->kind != POL_KIND_JOIN_TOKEN || !t->store)
    return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\" is not a join-token trust with a store",
                    t && t->name ? t->name : "?");
  size_t nl = name ? strlen(name) : 0;
  if (!name_ok(name, nl))
    return idm_fail(why, IDM_ERR_JOIN_FORMAT,
                    "join-token name must be 1 to %d characters of [A-Za-z0-9_-]",
                    IDM_JOIN_NAME_MAX);
  if (ttl_s <= 0 || ttl_s > IDM_JOIN_TTL_MAX_S)
    return idm_fail(why, IDM_ERR_JOIN_FORMAT, "join-token ttl must be 1s to %ds",
                    IDM_JOIN_TTL_MAX_S);
  if (cap < IDM_JOIN_TOKEN_MAX)
    return idm_fail(why, IDM_ERR_NOSPACE, "token buffer too small");
  uint8_t secret[32];
  if (idm_random_bytes(secret, sizeof secret) != IDM_OK)
    return idm_fail(why, IDM_ERR_RANDOM, "random generator failed");
  int len = snprintf(out, cap, JOIN_PREFIX "%s.", name);
  size_t sl = idm_b64url_encode(out + len, cap - (size_t)len - 1, secret, sizeof secret);
  OPENSSL_cleanse(secret, sizeof secret);
  out[len + (int)sl] = '\0';
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256((const uint8_t *)out, strlen(out), digest);
  char dhex[65];
  hex(dhex, digest, sizeof digest);

  int64_t now = idm_clock_now_s(clk);
  int lfd;
  idm_err_t e = lock_store(t->store, &lfd, why);
  if (e)
    goto fail;
  idm_arena_t *prev = idm_json_use_arena(NULL);
  json_t *root = NULL;
  if ((e = read_store(t->store, &root, why)) == IDM_OK) {
    json_t *tokens = json_object_get(root, "tokens");
    if (json_array_size(tokens) >= IDM_JOIN_TOKENS_MAX)
      e = idm_fail(why, IDM_ERR_JOIN_STORE, "%s holds %d tokens already", t->store,
                   IDM_JOIN_TOKENS_MAX);
    else {
      json_array_append_new(tokens, json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", name,
                                              "sha256", dhex, "created", (json_int_t)now,
                                              "expires", (json_int_t)(now + ttl_s), "used",
                                              (json_int_t)0));
      e = write_store(t->store, root, now, why);
    }
  }
  json_decref(root);
  idm_json_use_arena(prev);
  unlock_store(lfd);
  if (e == IDM_OK)
    return IDM_OK;
fail:
  OPENSSL_cleanse(out, cap);
  return e;
}

idm_err_t idm_attest_join(idm_provider_t *p, idm_arena_t *arena, const char *doc, size_t len,
                          const idm_clock_t *clk, idm_identity_t *out, idm_why_t *why) {
  const size_t pl = sizeof JOIN_PREFIX - 1;
  /* Shape: prefix, name, '.', 43-char secret. */
  if (len < pl + 2 + JOIN_SECRET_B64 || len >= IDM_JOIN_TOKEN_MAX ||
      memcmp(doc, JOIN_PREFIX, pl) != 0 || doc[len - JOIN_SECRET_B64 - 1] != '.')
    return idm_fail(why, IDM_ERR_JOIN_FORMAT,
                    "not a join token (idmjt1.NAME.SECRET from `idmint join-token new`)");
  const char *name = doc + pl;
  size_t nl = len - pl - JOIN_SECRET_B64 - 1;
  if (!name_ok(name, nl))
    return idm_fail(why, IDM_ERR_JOIN_FORMAT, "join token has an invalid name");
  uint8_t secret[33];
  size_t sn = 0;
  if (idm_b64url_decode(secret, sizeof secret, &sn, doc + len - JOIN_SECRET_B64,
                        JOIN_SECRET_B64, NULL) != IDM_OK ||
      sn != 32)
    return idm_fail(why, IDM_ERR_JOIN_FORMAT, "join token secret is not 32 base64url bytes");
  OPENSSL_cleanse(secret, sizeof secret);
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256((const uint8_t *)doc, len, digest);

  char *nm = idm_arena_strndup(arena, name, nl);
  if (!nm)
    return idm_fail(why, IDM_ERR_ARENA_FULL, "request arena exhausted");
  int64_t now = idm_clock_now_s(clk);
  const char *store = p->trust->store;

  pthread_mutex_lock(&p->join_mu);
  int lfd;
  idm_err_t e = lock_store(store, &lfd, why);
  if (e) {
    pthread_mutex_unlock(&p->join_mu);
    return e;
  }
  idm_arena_t *prev = idm_json_use_arena(NULL);
  json_t *root = NULL;
  int64_t expires = 0;
  if ((e = read_store(store, &root, why)) == IDM_OK) {
    json_t *tokens = json_object_get(root, "tokens");
    json_t *hit = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(tokens, i, t) {
      char h[65];
      hex(h, digest, sizeof digest);
      /* Constant time over the hex digests: the store's hashes are not secret, but the
       * comparison should not hand out a prefix oracle either. */
      if (CRYPTO_memcmp(h, json_string_value(json_object_get(t, "sha256")), 64) == 0)
        hit = t;
    }
    if (!hit) {
      e = idm_fail(why, IDM_ERR_JOIN_UNKNOWN, "join token \"%s\" is not in the store of trust \"%s\"",
                   nm, p->trust->name);
    } else {
      json_int_t used = json_integer_value(json_object_get(hit, "used"));
      expires = json_integer_value(json_object_get(hit, "expires"));
      if (used)
        e = idm_fail(why, IDM_ERR_JOIN_USED, "join token \"%s\" was already used %llds ago", nm,
                     (long long)(now - used));
      else if (now >= expires)
        e = idm_fail(why, IDM_ERR_JOIN_EXPIRED, "join token \"%s\" expired %llds ago", nm,
                     (long long)(now - expires));
      else {
        json_object_set_new(hit, "used", json_integer(now > 0 ? now : 1));
        e = write_store(store, root, now, why);
      }
    }
  }
  json_decref(root);
  idm_json_use_arena(prev);
  unlock_store(lfd);
  pthread_mutex_unlock(&p->join_mu);
  if (e)
    return e;
  idm_attest_set_common(p, out);
  idm_attr_set(&out->client, POL_A_SUBJECT, nm, nl);
  idm_attr_set(&out->client, POL_A_TOKEN_NAME, nm, nl);
  out->exp_s = expires;
  return IDM_OK;
}
