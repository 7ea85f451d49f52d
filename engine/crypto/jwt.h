/* The jwt credential profile (DESIGN.md "Credentials"): minting and verification.
 *
 * CONTRACT (owned by the crypto area; consumers: server/exchange, batch, CLI):
 *  - Header {"alg":"EdDSA"|"ES256","typ":"JWT","kid":<thumbprint>}; claims iss, sub, aud,
 *    iat, nbf, exp, jti, scope (omitted when empty), idm {trust, policy}.
 *  - Minting writes into caller-owned buffers and never allocates.
 *  - jti is unique across the cluster: node id + thread + counter + randomness.
 */
#ifndef IDM_CRYPTO_JWT_H
#define IDM_CRYPTO_JWT_H

#include <stddef.h>
#include <stdint.h>

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

/* Per-thread jti source. node_id is copied (truncated to fit). */
typedef struct idm_jti_gen {
  char prefix[24];   /* node + thread, base64url-safe */
  size_t prefix_len;
  uint64_t counter;
  uint64_t salt;     /* random per generator, mixed into each jti */
} idm_jti_gen_t;
void idm_jti_gen_init(idm_jti_gen_t *g, const char *node_id, unsigned thread_index);
/* Writes a NUL-terminated jti into out. */
void idm_jti_next(idm_jti_gen_t *g, char out[IDM_JTI_MAX]);

/* Writes "b64url(header).b64url(claims)" for alg name ("EdDSA", "ES256", "EdDSA-MTB1")
 * and kid into out. */
idm_err_t idm_jwt_signing_input(char *out, size_t cap, size_t *len, const char *alg_name,
                                const char *kid, const idm_claims_t *c);

/* Mints a complete jwt-profile token with key k into out (NUL-terminated). */
idm_err_t idm_jwt_mint(char *out, size_t cap, size_t *len, const idm_key_t *k,
                       const idm_claims_t *c, idm_why_t *why);

/* What a verifier expects. */
typedef struct idm_jwt_expect {
  const char *issuer;     /* NULL: any */
  const char *audience;   /* NULL: any */
  int64_t leeway_s;       /* bounded: values over 300 are treated as 300 */
} idm_jwt_expect_t;

/* Verifies a jwt-profile token against set: structure, alg fits key (EdDSA/ES256 only),
 * signature, kid, iss, aud, exp/nbf with leeway, required claims and their types. On
 * success *claims is the parsed claims object (owned by the caller, or by arena if given). */
idm_err_t idm_jwt_verify(const idm_jwks_t *set, const char *tok, size_t len,
                         const idm_jwt_expect_t *expect, const idm_clock_t *clk,
                         idm_arena_t *arena, json_t **claims, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
