/* The jwt credential profile (DESIGN.md "Credentials"): minting and verification.
 *
 * CONTRACT (owned by the crypto area; consumers: server/exchange, batch, CLI):
 *  - Header {"alg":"EdDSA"|"ES256","typ":"JWT","kid":<thumbprint>}; claims iss, sub, aud,
 *    scope (omitted when empty), idm {trust, policy}, iat, nbf, exp, jti.
 *  - Minting writes into caller-owned buffers and never allocates.
 *  - jti is unique across the cluster: node id + thread + counter + randomness.
 */
#ifndef IDM_CRYPTO_JWT_H
#define IDM_CRYPTO_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/jose.h"
#include "crypto/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IDM_JTI_MAX 48   /* bytes of a jti, NUL included */
#define IDM_TOKEN_MAX 4096 /* bytes of a minted token (jwt or batch profile) */

/* What a credential says. Strings are borrowed for the call; *_len may be 0 to mean
 * strlen. */
typedef struct idm_claims {
  const char *iss;
  const char *sub;   size_t sub_len;
  const char *aud;
  int64_t iat, nbf, exp;           /* seconds since the epoch */
  const char *jti;
  const char *scope; size_t scope_len; /* "" or NULL: claim omitted */
  const char *trust;               /* idm.trust */
  const char *policy;              /* idm.policy */
} idm_claims_t;

/* Length of a claims string under the rule above: 0 for NULL, n when given, else strlen. */
static inline size_t idm_claims_strlen(const char *s, size_t n) {
  return s ? (n ? n : strlen(s)) : 0;
}

/* Per-thread jti source. node_id is copied (reduced to [A-Za-z0-9_-], at most 12 chars).
 * A jti reads "<node>.<thread hex>.<salt b64url>.<counter hex>", e.g.
 * "node-a.3.q83vEjRWeJA.1f"; the salt is 64 random bits drawn at init, so two generators
 * (two threads, two nodes, or one node before and after a restart) never collide. */
typedef struct idm_jti_gen {
  char prefix[32];   /* "<node>.<thread hex>.<salt b64url>.", base64url-safe */
  size_t prefix_len;
  uint64_t counter;
  uint64_t salt;     /* random per generator, mixed into each jti (through prefix) */
} idm_jti_gen_t;
void idm_jti_gen_init(idm_jti_gen_t *g, const char *node_id, unsigned thread_index);
/* Writes a NUL-terminated jti into out. */
void idm_jti_next(idm_jti_gen_t *g, char out[IDM_JTI_MAX]);

/* Writes "b64url(header).b64url(claims)" for alg name ("EdDSA", "ES256", "EdDSA-MTB1")
 * and kid into out (not NUL-terminated). Header {"alg":…,"typ":"JWT","kid":…}; claims are
 * idm_jwt_claims_fixed followed by idm_jwt_claims_varying: members in the order iss, sub,
 * aud, scope (omitted when empty), idm {trust, policy} (omitted when both are NULL), iat,
 * nbf, exp, jti. IDM_ERR_NOSPACE when out (or the internal claims buffer of IDM_TOKEN_MAX
 * bytes) is too small. Never allocates. */
idm_err_t idm_jwt_signing_input(char *out, size_t cap, size_t *len, const char *alg_name,
                                const char *kid, const idm_claims_t *c);

/* The pieces of idm_jwt_signing_input, for callers that cache the constant part of many
 * credentials (the batcher): the header JSON; the claims that stay the same between the
 * credentials of one identity and target issued in the same second, from '{' through the
 * ',' after "exp"; and the varying claim, "jti" through the closing '}'. fixed ‖ varying
 * is the claims JSON. IDM_ERR_NOSPACE when cap is too small. */
#define IDM_JWT_HEADER_MAX (IDM_JWK_KID_MAX_BYTES * 6 + 128)
idm_err_t idm_jwt_header(char *out, size_t cap, size_t *len, const char *alg_name,
                         const char *kid);
idm_err_t idm_jwt_claims_fixed(char *out, size_t cap, size_t *len, const idm_claims_t *c);
idm_err_t idm_jwt_claims_varying(char *out, size_t cap, size_t *len, const idm_claims_t *c);

/* Mints a complete jwt-profile token with key k into out (NUL-terminated; *len excludes
 * the NUL). IDM_ERR_KEY_NONE (k NULL), IDM_ERR_KEY_STATE (k is not ACTIVE),
 * IDM_ERR_NOSPACE, IDM_ERR_SIGN. Never allocates for EdDSA (BoringSSL's ECDSA allocates
 * internally for ES256). Thread-safe. */
idm_err_t idm_jwt_mint(char *out, size_t cap, size_t *len, const idm_key_t *k,
                       const idm_claims_t *c, idm_why_t *why);

/* What a verifier expects. */
typedef struct idm_jwt_expect {
  const char *issuer;     /* NULL: any */
  const char *audience;   /* NULL: any */
  int64_t leeway_s;       /* bounded: values over 300 are treated as 300, negative as 0 */
  int64_t max_lifetime_s; /* 0: no limit; else exp - max(iat, nbf) must not exceed it */
} idm_jwt_expect_t;

/* The claim checks of the jwt profile, shared with the batch profile's verifier:
 * iss, sub (non-empty), jti: strings; aud: string or non-empty array of strings; exp, iat:
 * integers; nbf optional integer; scope optional string; idm optional object of strings.
 * Errors: IDM_ERR_JWT_CLAIM_MISSING, IDM_ERR_JWT_CLAIM_TYPE, IDM_ERR_JWT_ISSUER,
 * IDM_ERR_JWT_AUDIENCE, IDM_ERR_JWT_CLAIMS (exp not after iat), IDM_ERR_JWT_LIFETIME,
 * IDM_ERR_JWT_EXPIRED ("token expired 42s ago"), IDM_ERR_JWT_NOT_YET_VALID (nbf, or iat in
 * the future beyond the leeway). expect may be NULL (no iss/aud check, no leeway). */
idm_err_t idm_jwt_check_claims(const json_t *claims, const idm_jwt_expect_t *expect,
                               const idm_clock_t *clk, idm_why_t *why);

/* The header checks of the jwt profile: alg EdDSA or ES256 (none/HS*:
 * IDM_ERR_JWS_ALG_REFUSED; unknown or EdDSA-MTB1: IDM_ERR_JWS_ALG_UNKNOWN; other JOSE
 * algs: IDM_ERR_JWT_PROFILE_ALG), typ "JWT" (IDM_ERR_JWT_TYPE), kid present
 * (IDM_ERR_JWS_HEADER). */
idm_err_t idm_jwt_check_header(const idm_jws_t *jws, idm_why_t *why);

/* Verifies a jwt-profile token against set: structure (idm_jws_parse errors), header
 * (idm_jwt_check_header), kid (IDM_ERR_JWS_KID_UNKNOWN), signature (idm_jws_verify
 * errors), claims (idm_jwt_check_claims). On success *claims (if claims is not NULL) is
 * the parsed claims object: owned by the caller (json_decref) when arena is NULL, else
 * living in the arena until its reset. Thread-safe; with an arena, allocation-free. */
idm_err_t idm_jwt_verify(const idm_jwks_t *set, const char *tok, size_t len,
                         const idm_jwt_expect_t *expect, const idm_clock_t *clk,
                         idm_arena_t *arena, json_t **claims, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
