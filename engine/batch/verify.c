/* The public token verifier (include/idmint/verify.h).
 *
 * jwt-profile tokens go to the crypto area's idm_jwt_verify. Batch-profile tokens are
 * checked here, cheapest and most specific check first, so hostile input is refused
 * before any public-key operation: split into exactly three segments, decode and parse
 * the header (alg EdDSA-MTB1, typ JWT, a kid the JWKS has as an Ed25519 key), decode the
 * proof (strict layout), hash the leaf and walk the path to the root, then check the
 * signature over the batch message, unless that exact message (kid, sequence, size,
 * time, root) has already been verified: its SHA-256 (with the signature bytes) is looked up in a small
 * direct-mapped cache, confirmed by full compare, under a mutex. Only then are the
 * claims parsed and checked.
 *
 * Scratch memory (decoded segments, JSON trees) comes from a per-thread arena reserved
 * on a thread's first call, so steady-state verification does not call malloc. */
#include "idmint/verify.h"

#include "batch/verify_engine.h"

#include <inttypes.h>
#include <openssl/curve25519.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch/btoken.h"
#include "core/arena.h"
#include "core/b64url.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "crypto/jose.h"
#include "crypto/jwt.h"

#define LEEWAY_MAX_S 300
#define SCRATCH_BYTES (4 * IDM_JWT_MAX_BYTES + 2 * IDM_JSON_INPUT_MAX_BYTES)

struct idm_verifier {
  idm_jwks_t *jwks;
  bool borrowed;                  /* jwks belongs to the caller (idm_verifier_new_set) */
  char *issuer, *audience;
  int64_t leeway_s, now_s;
  pthread_mutex_t mu;
  idm_hash_t cache[IDM_VERIFY_CACHE_ENTRIES]; /* SHA-256 of verified batch messages */
  bool cache_used[IDM_VERIFY_CACHE_ENTRIES];
};

static pthread_once_t json_once = PTHREAD_ONCE_INIT;
static _Thread_local idm_arena_t tl_arena;

static void set_reason(char *reason, const idm_why_t *why, int err) {
  if (reason)
    snprintf(reason, IDM_VERIFY_REASON_LEN, "%s", idm_why_str(why, (idm_err_t)err));
}

static int verifier_opts(idm_verifier_t *v, const idm_verify_opts_t *opts) {
  v->issuer = opts->issuer ? strdup(opts->issuer) : NULL;
  v->audience = opts->audience ? strdup(opts->audience) : NULL;
  v->leeway_s = opts->leeway_s < 0 ? 0 : opts->leeway_s > LEEWAY_MAX_S ? LEEWAY_MAX_S : opts->leeway_s;
  v->now_s = opts->now_s;
  return (opts->issuer && !v->issuer) || (opts->audience && !v->audience) ? -1 : 0;
}

idm_verifier_t *idm_verifier_new(const char *jwks_json, size_t jwks_len,
                                 const idm_verify_opts_t *opts, char *reason) {
  pthread_once(&json_once, idm_json_init);
  idm_why_t why = {{0}};
  idm_verifier_t *v = calloc(1, sizeof *v);
  if (!v) {
    set_reason(reason, &why, IDM_ERR_NOMEM);
    return NULL;
  }
  pthread_mutex_init(&v->mu, NULL);
  v->jwks = idm_jwks_parse(jwks_json, jwks_len, &why);
  if (!v->jwks) {
    if (reason)
      snprintf(reason, IDM_VERIFY_REASON_LEN, "JWKS: %.240s", why.text);
    idm_verifier_free(v);
    return NULL;
  }
  if (opts && verifier_opts(v, opts)) {
    if (reason)
      snprintf(reason, IDM_VERIFY_REASON_LEN, "out of memory");
    idm_verifier_free(v);
    return NULL;
  }
  return v;
}

void idm_verifier_free(idm_verifier_t *v) {
  if (!v)
    return;
  if (!v->borrowed)
    idm_jwks_free(v->jwks);
  free(v->issuer);
  free(v->audience);
  pthread_mutex_destroy(&v->mu);
  free(v);
}

void idm_verifier_cache_clear(idm_verifier_t *v) {
  pthread_mutex_lock(&v->mu);
  memset(v->cache_used, 0, sizeof v->cache_used);
  pthread_mutex_unlock(&v->mu);
}

static size_t cache_slot(const idm_hash_t *h) {
  uint64_t x;
  memcpy(&x, h->b, sizeof x);
  return (size_t)(x % IDM_VERIFY_CACHE_ENTRIES);
}

static bool cache_has(idm_verifier_t *v, const idm_hash_t *h) {
  size_t i = cache_slot(h);
  pthread_mutex_lock(&v->mu);
  bool hit = v->cache_used[i] && !CRYPTO_memcmp(v->cache[i].b, h->b, IDM_HASH_LEN);
  pthread_mutex_unlock(&v->mu);
  return hit;
}

static void cache_put(idm_verifier_t *v, const idm_hash_t *h) {
  size_t i = cache_slot(h);
  pthread_mutex_lock(&v->mu);
  v->cache[i] = *h;
  v->cache_used[i] = true;
  pthread_mutex_unlock(&v->mu);
}

/* Decodes one base64url segment into arena memory. */
static idm_err_t seg_decode(idm_arena_t *a, const char *s, size_t n, uint8_t **out,
                            size_t *out_len, const char *what, idm_why_t *why) {
  size_t cap = idm_b64url_decoded_max(n) + 1;
  uint8_t *p = idm_arena_alloc(a, cap, 1);
  if (!p)
    return idm_fail(why, IDM_ERR_ARENA_FULL, "verifier scratch exhausted");
  idm_why_t w2;
  if (idm_b64url_decode(p, cap, out_len, s, n, &w2))
    return idm_fail(why, IDM_ERR_BTOKEN_FORMAT, "%s is not canonical base64url: %s", what, w2.text);
  p[*out_len] = '\0';
  *out = p;
  return IDM_OK;
}

/* The claim checks are the jwt profile's (idm_jwt_check_claims), so both profiles
 * accept and refuse exactly the same claims. */
static idm_err_t claims_check(const idm_verifier_t *v, const json_t *c, int64_t now,
                              int64_t *exp_out, idm_why_t *why) {
  idm_jwt_expect_t ex = {.issuer = v->issuer, .audience = v->audience, .leeway_s = v->leeway_s};
  idm_clock_t clk = {0};
  idm_clock_set_s(&clk, now);
  idm_err_t e = idm_jwt_check_claims(c, &ex, &clk, why);
  if (e)
    return e;
  *exp_out = (int64_t)json_integer_value(json_object_get(c, "exp"));
  return IDM_OK;
}

/* h: the token's parsed header (the router already decoded it). */
static idm_err_t verify_batch(idm_verifier_t *v, idm_arena_t *a, const json_t *h,
                              const char *tok, size_t len, const char *d1, const char *d2,
                              int64_t now, idm_verified_t *out, json_t **claims_json,
                              char *claims_out, size_t claims_cap, idm_why_t *why) {
  idm_err_t e;
  uint8_t *pl = NULL, *proof = NULL;
  size_t pll, prl;
  if (!json_is_object(h))
    return idm_fail(why, IDM_ERR_BTOKEN_FORMAT, "header is not a JSON object");
  const json_t *typ = json_object_get(h, "typ"), *kid = json_object_get(h, "kid");
  if (json_object_size(h) != 3 || !json_is_string(kid) || !json_is_string(typ) ||
      strcmp(json_string_value(typ), "JWT"))
    return idm_fail(why, IDM_ERR_BTOKEN_FORMAT,
                    "EdDSA-MTB1 header must be exactly {alg, typ \"JWT\", kid}");
  const char *kid_s = json_string_value(kid);
  size_t kid_len = json_string_length(kid);
  if (kid_len > IDM_BTOKEN_KID_MAX)
    return idm_fail(why, IDM_ERR_BTOKEN_FORMAT, "kid longer than %d bytes", IDM_BTOKEN_KID_MAX);
  const idm_jwk_t *k = idm_jwks_find(v->jwks, kid_s, kid_len);
  const uint8_t *pub = k && idm_jwk_allows(k, IDM_JWS_EDDSA_MTB1) ? idm_jwk_ed25519_public(k) : NULL;
  if (!pub)
    return idm_fail(why, IDM_ERR_BTOKEN_KID, "no Ed25519 key with kid \"%.64s\" may verify EdDSA-MTB1",
                    kid_s);
  if ((e = seg_decode(a, d2 + 1, len - (size_t)(d2 + 1 - tok), &proof, &prl, "proof", why)))
    return e;
  idm_btoken_proof_t p;
  if ((e = idm_btoken_proof_decode(&p, proof, prl, why)))
    return e;
  if ((e = idm_btoken_proof_root(&p.head.root, &p, tok, (size_t)(d2 - tok), why)))
    return e;
  uint8_t msg[IDM_BTOKEN_MSG_MAX];
  size_t ml = idm_btoken_message(msg, kid_s, kid_len, &p.head);
  /* The cache key covers the signature too: a token whose signature bytes were changed
   * must fail even when its batch was verified before. */
  idm_hash_t mh;
  SHA256_CTX sc;
  SHA256_Init(&sc);
  SHA256_Update(&sc, msg, ml);
  SHA256_Update(&sc, p.sig, sizeof p.sig);
  SHA256_Final(mh.b, &sc);
  bool cached = cache_has(v, &mh);
  if (!cached) {
    if (!ED25519_verify(msg, ml, p.sig, pub))
      return idm_fail(why, IDM_ERR_BTOKEN_SIGNATURE,
                      "batch %" PRIu64 " signature does not verify (token, proof or root altered)",
                      p.head.seq);
    cache_put(v, &mh);
  }
  if ((e = seg_decode(a, d1 + 1, (size_t)(d2 - d1 - 1), &pl, &pll, "claims", why)))
    return e;
  json_t *c = idm_json_parse((const char *)pl, pll, &e, why);
  if (!c)
    return e; /* idm_json_parse's reason names the position */
  int64_t exp;
  if ((e = claims_check(v, c, now, &exp, why)))
    return e;
  if (claims_out) {
    if (pll + 1 > claims_cap)
      return idm_fail(why, IDM_ERR_NOSPACE, "claims need %zu bytes", pll + 1);
    memcpy(claims_out, pl, pll + 1);
  }
  if (out) {
    out->profile = 1;
    out->batch_cached = cached;
    out->batch_seq = p.head.seq;
    out->batch_size = p.head.size;
    out->exp = exp;
    out->claims_len = pll;
  }
  if (claims_json)
    *claims_json = c;
  return IDM_OK;
}

static idm_err_t verify_jwt(idm_verifier_t *v, idm_arena_t *a, const char *tok, size_t len,
                            int64_t now, idm_verified_t *out, json_t **claims_json,
                            char *claims_out, size_t claims_cap, idm_why_t *why) {
  idm_jwt_expect_t ex = {.issuer = v->issuer, .audience = v->audience, .leeway_s = v->leeway_s};
  idm_clock_t clk = {0};
  idm_clock_set_s(&clk, now);
  json_t *claims = NULL;
  idm_err_t e = idm_jwt_verify(v->jwks, tok, len, &ex, &clk, a, &claims, why);
  if (e)
    return e;
  int64_t exp = (int64_t)json_integer_value(json_object_get(claims, "exp"));
  size_t n = 0;
  if (claims_out) {
    n = json_dumpb(claims, claims_out, claims_cap, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (n + 1 > claims_cap)
      return idm_fail(why, IDM_ERR_NOSPACE, "claims need %zu bytes", n + 1);
    claims_out[n] = '\0';
  }
  if (out) {
    memset(out, 0, sizeof *out);
    out->exp = exp;
    out->claims_len = n;
  }
  if (claims_json)
    *claims_json = claims;
  return IDM_OK;
}

/* Both entry points: routes on the header's alg, with scratch from arena a. */
static idm_err_t verify_any(idm_verifier_t *v, idm_arena_t *a, const char *tok, size_t len,
                            int64_t now_s, idm_verified_t *out, json_t **claims_json,
                            char *claims, size_t claims_cap, idm_why_t *why) {
  if (!tok || len == 0)
    return idm_fail(why, IDM_ERR_BTOKEN_FORMAT, "empty token");
  if (len > IDM_JWT_MAX_BYTES)
    return idm_fail(why, IDM_ERR_TOO_LARGE, "token of %zu bytes exceeds %d", len, IDM_JWT_MAX_BYTES);
  int64_t now = now_s ? now_s : v->now_s ? v->now_s : idm_clock_now_s(NULL);
  const char *d1 = memchr(tok, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
  if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
    return idm_fail(why, IDM_ERR_BTOKEN_FORMAT, "a token has exactly three dot-separated segments");
  /* Read alg from the header to route; each path re-checks it fully. */
  uint8_t *hdr = NULL;
  size_t hl = 0;
  idm_arena_t *prev = idm_json_use_arena(a);
  idm_err_t e = seg_decode(a, tok, (size_t)(d1 - tok), &hdr, &hl, "header", why);
  json_t *h = e ? NULL : idm_json_parse((const char *)hdr, hl, &e, why);
  const json_t *alg = h ? json_object_get(h, "alg") : NULL;
  if (!e && !json_is_string(alg))
    e = idm_fail(why, IDM_ERR_BTOKEN_FORMAT, "header has no string \"alg\"");
  if (!e) {
    if (!strcmp(json_string_value(alg), IDM_BTOKEN_ALG))
      e = verify_batch(v, a, h, tok, len, d1, d2, now, out, claims_json, claims, claims_cap, why);
    else
      e = verify_jwt(v, a, tok, len, now, out, claims_json, claims, claims_cap, why);
  }
  idm_json_use_arena(prev);
  return e;
}

int idm_verify_token(idm_verifier_t *v, const char *tok, size_t len, int64_t now_s,
                     idm_verified_t *out, char *claims, size_t claims_cap, char *reason) {
  idm_why_t why = {{0}};
  idm_err_t e;
  if (!tl_arena.base && idm_arena_init(&tl_arena, SCRATCH_BYTES)) {
    e = idm_fail(&why, IDM_ERR_NOMEM, "out of memory for verifier scratch");
  } else {
    idm_arena_reset(&tl_arena);
    e = verify_any(v, &tl_arena, tok, len, now_s, out, NULL, claims, claims_cap, &why);
  }
  if (e)
    set_reason(reason, &why, e);
  return (int)e;
}

/* ---- engine-side entry points (batch/verify_engine.h) ------------------------------- */

idm_verifier_t *idm_verifier_new_set(const idm_jwks_t *set, const idm_verify_opts_t *opts,
                                     idm_why_t *why) {
  pthread_once(&json_once, idm_json_init);
  idm_verifier_t *v = calloc(1, sizeof *v);
  if (!v) {
    idm_fail(why, IDM_ERR_NOMEM, "out of memory for the verifier");
    return NULL;
  }
  pthread_mutex_init(&v->mu, NULL);
  v->jwks = (idm_jwks_t *)set;
  v->borrowed = true;
  if (opts && verifier_opts(v, opts)) {
    idm_verifier_free(v);
    idm_fail(why, IDM_ERR_NOMEM, "out of memory for the verifier");
    return NULL;
  }
  return v;
}

idm_err_t idm_verifier_check(idm_verifier_t *v, idm_arena_t *arena, const char *tok,
                             size_t len, int64_t now_s, idm_verified_t *out, json_t **claims,
                             idm_why_t *why) {
  return verify_any(v, arena, tok, len, now_s, out, claims, NULL, 0, why);
}
