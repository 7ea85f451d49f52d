/* JOSE building blocks shared by our verifier and the attestation providers:
 * JWK / JWK Set parsing (RFC 7517), RFC 7638 thumbprints, and compact JWS parsing and
 * signature verification (RFC 7515) for RS256/384/512, PS256/384/512, ES256/384 and
 * EdDSA (Ed25519). `none` and every HMAC algorithm are always refused.
 *
 * CONTRACT (owned by the crypto area; consumers: attest, jwt, batch verifier):
 *  - A key's `kty`/`crv` decide which algorithms it may verify; a token whose `alg` does
 *    not fit the key is refused (IDM_ERR_JWS_ALG_MISMATCH), which closes algorithm
 *    confusion (HS256 with an RSA public key as the secret, RS256 against an EC key...).
 *  - Parsing is strict: exactly three base64url segments, canonical encodings, header and
 *    payload are JSON objects without duplicate keys, size bounded by IDM_JWT_MAX_BYTES.
 *  - Every rejection returns its own error code and a reason in *why.
 */
#ifndef IDM_CRYPTO_JOSE_H
#define IDM_CRYPTO_JOSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum idm_jws_alg {
  IDM_JWS_UNKNOWN = 0,
  IDM_JWS_NONE,                 /* always refused */
  IDM_JWS_HS256, IDM_JWS_HS384, IDM_JWS_HS512, /* always refused */
  IDM_JWS_RS256, IDM_JWS_RS384, IDM_JWS_RS512,
  IDM_JWS_PS256, IDM_JWS_PS384, IDM_JWS_PS512,
  IDM_JWS_ES256, IDM_JWS_ES384,
  IDM_JWS_EDDSA,
  IDM_JWS_EDDSA_MTB1,           /* idmint batch profile (EdDSA-MTB1), see docs/TOKENS.md */
  IDM_JWS__COUNT
} idm_jws_alg_t;

/* "RS256" etc.; IDM_JWS_UNKNOWN for anything else. */
idm_jws_alg_t idm_jws_alg_from_name(const char *name, size_t len);
const char *idm_jws_alg_name(idm_jws_alg_t alg);

typedef struct idm_jwk idm_jwk_t;     /* one public key (opaque) */
typedef struct idm_jwks idm_jwks_t;   /* a key set (opaque, immutable after parse) */

/* Parses a JWK Set ({"keys": [...]}); SPIFFE bundle members (use "jwt-svid",
 * spiffe_sequence, spiffe_refresh_hint) are accepted. Keys with unsupported kty or
 * use "x509-svid" are skipped, not fatal; a set with no usable key is an error.
 * Returns NULL with a reason on failure. Allocates (start-up / reload path). */
idm_jwks_t *idm_jwks_parse(const char *json, size_t len, idm_why_t *why);
idm_jwks_t *idm_jwks_load(const char *path, idm_why_t *why);
/* idm_jwks_load that also gives the SHA-256 of the exact bytes it parsed (sha256 != NULL),
 * so that a caller can tell whether a reload brought other keys. */
idm_jwks_t *idm_jwks_load_digest(const char *path, uint8_t sha256[32], idm_why_t *why);
void idm_jwks_free(idm_jwks_t *set); /* NULL is a no-op */

size_t idm_jwks_count(const idm_jwks_t *set);
const idm_jwk_t *idm_jwks_at(const idm_jwks_t *set, size_t i);
/* The key with this kid, or NULL. */
const idm_jwk_t *idm_jwks_find(const idm_jwks_t *set, const char *kid, size_t kid_len);

/* The key's kid as given in the set (may be empty), and its RFC 7638 thumbprint
 * (base64url SHA-256, 43 chars). */
const char *idm_jwk_kid(const idm_jwk_t *key);
const char *idm_jwk_thumbprint(const idm_jwk_t *key);
/* True if this key may verify alg (kty/crv fit, and the JWK's own "alg", if any, equals). */
bool idm_jwk_allows(const idm_jwk_t *key, idm_jws_alg_t alg);
/* "RSA", "EC" or "OKP". */
const char *idm_jwk_kty(const idm_jwk_t *key);
/* The 32-byte Ed25519 public key of an OKP/Ed25519 key, else NULL (for the batch
 * verifier, which checks EdDSA-MTB1 batch signatures itself). An Ed25519 key allows
 * EdDSA-MTB1 when its JWK "alg" is absent, "EdDSA" or "EdDSA-MTB1". */
const uint8_t *idm_jwk_ed25519_public(const idm_jwk_t *key);

/* A parsed compact JWS. Every pointer is into the token itself or into the arena given to
 * idm_jws_parse (valid until that arena is reset and while the token's bytes live), or,
 * when no arena was given, into memory that idm_jws_cleanup releases. */
typedef struct idm_jws {
  idm_jws_alg_t alg;
  const char *alg_name;         /* as written in the header */
  const char *kid;              /* NULL if absent */
  size_t kid_len;
  const char *typ;              /* NULL if absent */
  const char *signing_input;    /* "b64(header).b64(payload)" inside the token */
  size_t signing_input_len;
  const uint8_t *payload;       /* decoded payload bytes (JSON) */
  size_t payload_len;
  const uint8_t *sig;           /* decoded signature (JOSE form: raw r||s for ECDSA) */
  size_t sig_len;
  json_t *header;               /* parsed header object */
  json_t *claims;               /* parsed payload object */
  void *heap_;                  /* private: malloc'd scratch when parsed without arena */
} idm_jws_t;

/* Splits, decodes and parses tok. Scratch memory and the JSON trees come from arena
 * (through idm_json_use_arena), so no malloc happens when an arena is given. */
idm_err_t idm_jws_parse(idm_jws_t *out, idm_arena_t *arena, const char *tok, size_t len,
                        idm_why_t *why);
/* Releases what idm_jws_parse allocated when it was given no arena (decoded bytes and the
 * JSON trees); a no-op for arena-parsed or zeroed JWSs. Safe to call twice.
 * Errors of idm_jws_parse: IDM_ERR_JWT_TOO_LARGE (over IDM_JWT_MAX_BYTES),
 * IDM_ERR_JWS_FORMAT (segments, base64url, JSON, non-object), IDM_ERR_JWS_HEADER
 * (alg missing or not a string, kid/typ not strings, crit present, header too large),
 * IDM_ERR_ARENA_FULL / IDM_ERR_NOMEM. An unknown alg name parses (alg IDM_JWS_UNKNOWN)
 * and is refused by verification. */
void idm_jws_cleanup(idm_jws_t *jws);

/* Verifies the signature of a parsed JWS with key: refuses none/HS*
 * (IDM_ERR_JWS_ALG_REFUSED), unknown algs and EdDSA-MTB1, which only the batch verifier
 * checks (IDM_ERR_JWS_ALG_UNKNOWN), an alg the key does not allow
 * (IDM_ERR_JWS_ALG_MISMATCH), then checks the signature (IDM_ERR_JWS_SIGNATURE, also for
 * a signature of the wrong length). Thread-safe: keys are shared read-only. */
idm_err_t idm_jws_verify(const idm_jws_t *jws, const idm_jwk_t *key, idm_why_t *why);

/* Finds the key by the JWS's kid in set (or, when the token has no kid and the set has
 * exactly one key that allows the alg, that key) and verifies. IDM_ERR_JWS_KID_UNKNOWN
 * when no key fits. */
idm_err_t idm_jws_verify_set(const idm_jws_t *jws, const idm_jwks_t *set, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
