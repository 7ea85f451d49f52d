/* attest internals shared by the provider files (attest.c, jwtkinds.c, iid.c, join.c,
 * unixpeer.c) and the cache (cache.c). Not a public contract. */
#ifndef IDM_ATTEST_INTERNAL_H
#define IDM_ATTEST_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "attest/attest.h"
#include "crypto/jose.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evp_pkey_st EVP_PKEY;

/* One trust block made ready to verify. Immutable after idm_attest_new except join_mu. */
typedef struct idm_provider {
  const pol_trust_t *trust;    /* borrowed from the configuration */
  uint32_t index;              /* position in idm_attest_t.prov */
  uint64_t gen;                /* digest of the trust block and its key bytes (cache key):
                                  the same on a rebuild that changed neither; never 0 */
  uint8_t doc_type;            /* the idm_doc_type_t it verifies; IDM_DOC__COUNT: none (unix) */
  const char *issuer;          /* effective issuer (github/gitlab defaults) or NULL */
  uint32_t alg_mask;           /* bit per idm_jws_alg_t allowed by the trust block */
  int64_t leeway_s;            /* clamped to IDM_ATTEST_LEEWAY_MAX_S */
  idm_jwks_t *jwks;            /* JWT kinds: owned */
  EVP_PKEY *iid_key;           /* aws-iid: public key of the configured certificate; owned */
  pthread_mutex_t join_mu;     /* join-token: serialises this process's threads */
} idm_provider_t;

struct idm_attest {
  idm_provider_t *prov;        /* owned, n entries */
  size_t n;
};

/* Writes a string view of s[0..n) into the client attribute id (borrowed view). */
static inline void idm_attr_set(pol_client_t *c, pol_attr_id_t id, const char *s, size_t n) {
  c->attr[id].ptr = s;
  c->attr[id].len = (uint32_t)n;
}

/* Sets trust, kind (and nothing else) from the provider. */
void idm_attest_set_common(const idm_provider_t *p, idm_identity_t *out);

/* ---- providers ---------------------------------------------------------------------- */
idm_err_t idm_attest_jwt(const idm_provider_t *p, idm_arena_t *arena, const idm_jws_t *jws,
                         const idm_clock_t *clk, idm_identity_t *out, idm_why_t *why);
/* The claim checks and mapping of idm_attest_jwt, after the signature (fuzzed directly). */
idm_err_t idm_attest_jwt_claims(const idm_provider_t *p, idm_arena_t *arena,
                                const json_t *claims, const idm_clock_t *clk,
                                idm_identity_t *out, idm_why_t *why);
idm_err_t idm_attest_iid(const idm_provider_t *p, idm_arena_t *arena, const char *doc,
                         size_t len, const idm_clock_t *clk, idm_identity_t *out,
                         idm_why_t *why);
idm_err_t idm_attest_join(idm_provider_t *p, idm_arena_t *arena, const char *doc, size_t len,
                          const idm_clock_t *clk, idm_identity_t *out, idm_why_t *why);

/* Loads the PEM certificate at path and returns its public key (RSA). */
/* unix: the SHA-256 of the open executable xfd (name for messages), from a process-wide
 * cache keyed by device, inode, size, mtime and ctime; the counters are for tests. */
idm_err_t idm_attest_exe_digest(int xfd, const char *name, uint8_t digest[32], idm_why_t *why);
void idm_attest_exe_cache_stats(uint64_t *hits, uint64_t *misses);

idm_err_t idm_iid_load_cert(const char *path, EVP_PKEY **out, idm_why_t *why);

/* ---- the AWS IID wire form (no I/O, no crypto: fuzzed) ---------------------------- */
typedef struct idm_iid {
  const char *document;        /* the signed bytes (decoded JSON string), arena */
  size_t document_len;
  uint8_t *signature;          /* decoded base64 signature, arena */
  size_t signature_len;
  const char *account, *region, *instance_id, *image_id, *instance_type;
  size_t account_len, region_len, instance_id_len, image_id_len, instance_type_len;
  int64_t pending_s;           /* pendingTime, UTC seconds */
} idm_iid_t;
/* Parses {"document": "<IID JSON text>", "signature": "<base64>"} and the document inside
 * it, strictly (duplicate keys, types, id formats, RFC 3339 UTC pendingTime). Uses arena
 * for the JSON trees and decoded bytes. IDM_ERR_IID_FORMAT / IDM_ERR_TOO_LARGE. */
idm_err_t idm_iid_parse(idm_iid_t *out, idm_arena_t *arena, const char *tok, size_t len,
                        idm_why_t *why);
/* "2016-11-19T16:32:11Z" → seconds; -1 if not exactly that form or out of range. */
int64_t idm_iid_parse_time(const char *s, size_t n);

/* ---- the verified-identity cache ---------------------------------------------------- */
/* XXH3 of doc under the cache's random seed. */
uint64_t idm_attest_cache_hash(const idm_attest_cache_t *c, const char *doc, size_t len);
/* Looks up doc (h = its idm_attest_cache_hash); on a hit fills out (views into the cache) and returns true. Checks the
 * provider generation against a, the doc type, the trust name (if given) and exp. */
bool idm_attest_cache_get(idm_attest_cache_t *c, const idm_attest_t *a, idm_doc_type_t type,
                          const idm_provider_t *want, uint64_t h, const char *doc,
                          size_t len, int64_t now_s, idm_identity_t *out);
/* Stores a verified identity (copying doc and every attribute). Best effort: a document
 * or identity too large for the cache is simply not stored. */
void idm_attest_cache_put(idm_attest_cache_t *c, const idm_provider_t *p, idm_doc_type_t type,
                          uint64_t h, const char *doc, size_t len, const idm_identity_t *id);
/* The two index buckets a hash maps onto (its window); tests use it to place documents. */
void idm_attest_cache_buckets(const idm_attest_cache_t *c, uint64_t h, size_t out[2]);
/* The two stages of idm_attest_cache_prefetch, for a caller that has the hash. */
void idm_attest_cache_prefetch_index(const idm_attest_cache_t *c, uint64_t h);
void idm_attest_cache_prefetch_entry(const idm_attest_cache_t *c, uint64_t h, size_t len);

#ifdef __cplusplus
}
#endif
#endif
