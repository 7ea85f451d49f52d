/* idmint token verifier: the public C API a resource server or gateway links to check
 * idmint credentials of both profiles against the issuer's JWK Set.
 *
 *   jwt profile    alg EdDSA or ES256: a JWS, signature checked per token.
 *   batch profile  alg EdDSA-MTB1: leaf hash, Merkle path to the batch root, then the
 *                  Ed25519 signature over the batch message, checked once per batch and
 *                  remembered (IDM_VERIFY_CACHE_ENTRIES batches) so the next token of
 *                  the same batch costs two-to-twelve SHA-256 compressions.
 * Then the claims, by the same rules for both profiles (the jwt profile's): iss and aud
 * when configured, exp and nbf with leeway, iat not in the future, and the types of iss,
 * sub, jti, scope and idm. docs/VERIFY.md documents the API; docs/TOKENS.md the formats.
 *
 * Thread-safety: a verifier may be shared by threads; its signature cache is locked.
 * Memory: the verifier allocates at creation, and each thread reserves one scratch
 * arena on its first call; after that verification does not allocate.
 * Errors: 0 on success, else a negative idm error code (idm_err_name/idm_err_str in the
 * engine, or the reason text, which always says what was wrong). */
#ifndef IDMINT_VERIFY_H
#define IDMINT_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IDM_VERIFY_REASON_LEN 256

typedef struct idm_verifier idm_verifier_t;

typedef struct idm_verify_opts {
  const char *issuer;     /* required "iss"; NULL: any */
  const char *audience;   /* required "aud"; NULL: any */
  int64_t leeway_s;       /* clock skew allowed on exp/nbf; capped at 300 */
  int64_t now_s;          /* 0: real time; else the time to check against (tests) */
} idm_verify_opts_t;

/* The result of a successful verification. */
typedef struct idm_verified {
  int profile;            /* 0 jwt, 1 batch (EdDSA-MTB1) */
  int batch_cached;       /* batch profile: 1 when the batch signature came from the cache */
  uint64_t batch_seq;     /* batch profile: the batch sequence */
  uint64_t batch_size;    /* batch profile: tokens in the batch */
  int64_t exp;            /* the token's exp */
  size_t claims_len;      /* bytes of the claims JSON written to the caller's buffer */
} idm_verified_t;

/* Builds a verifier from a JWK Set document. NULL on failure, with the reason in
 * reason[IDM_VERIFY_REASON_LEN] (may be NULL). opts is copied (strings too). */
idm_verifier_t *idm_verifier_new(const char *jwks_json, size_t jwks_len,
                                 const idm_verify_opts_t *opts, char *reason);
void idm_verifier_free(idm_verifier_t *v); /* NULL is a no-op */

/* Verifies one compact token of either profile. On success returns 0, fills *out (may be
 * NULL) and, when claims is not NULL, writes the decoded claims JSON (NUL-terminated)
 * into claims[0..claims_cap). On failure returns a negative error code and writes the
 * reason into reason[IDM_VERIFY_REASON_LEN] (may be NULL). now_s overrides opts.now_s
 * when not 0. */
int idm_verify_token(idm_verifier_t *v, const char *token, size_t token_len, int64_t now_s,
                     idm_verified_t *out, char *claims, size_t claims_cap, char *reason);

/* Forgets every cached batch signature (e.g. after a JWKS change). */
void idm_verifier_cache_clear(idm_verifier_t *v);

#ifdef __cplusplus
}
#endif
#endif
