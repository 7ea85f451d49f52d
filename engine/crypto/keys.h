/* Signing keys: a directory of key files, their rotation states, signing, and the
 * published JWK Set.
 *
 * CONTRACT (owned by the crypto area; consumers: server, batch, CLI):
 *  - DIR is created 0700 if missing, key files are written 0600; a key file readable or
 *    writable by group/others, truncated, or of the wrong type is refused at load with a
 *    reason that names the file and the problem.
 *  - States (DESIGN.md "keys"): NEXT (published in the JWKS, never signs), ACTIVE (signs;
 *    at most one per algorithm), RETIRED (published until every token it signed has
 *    expired, then dropped). `keys rotate` turns NEXT into ACTIVE, ACTIVE into RETIRED and
 *    makes a new NEXT, so verifiers always learn a key before it signs.
 *  - kid is the RFC 7638 thumbprint of the public key.
 *  - A loaded keyring is immutable and shared read-only by all threads; reload builds a
 *    new one and swaps it.
 */
#ifndef IDM_CRYPTO_KEYS_H
#define IDM_CRYPTO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/jose.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum idm_key_alg { IDM_KEY_EDDSA, IDM_KEY_ES256 } idm_key_alg_t;
typedef enum idm_key_state { IDM_KEY_NEXT, IDM_KEY_ACTIVE, IDM_KEY_RETIRED } idm_key_state_t;

#define IDM_KID_LEN 43            /* base64url SHA-256 thumbprint */
#define IDM_SIG_MAX 64            /* Ed25519 and ES256 (raw r||s) signatures are 64 bytes */

typedef struct idm_key idm_key_t;         /* opaque */
typedef struct idm_keyring idm_keyring_t; /* opaque, immutable */

/* "EdDSA" / "ES256" and back; -1 for an unknown name. */
const char *idm_key_alg_name(idm_key_alg_t alg);
int idm_key_alg_from_name(const char *name);

/* Loads every key file of dir. Retired keys past their publication window are skipped. */
idm_keyring_t *idm_keyring_load(const char *dir, const idm_clock_t *clk, idm_why_t *why);
void idm_keyring_free(idm_keyring_t *kr); /* NULL is a no-op */

/* The ACTIVE key of an algorithm, or NULL (IDM_ERR_KEY_NONE for callers). */
const idm_key_t *idm_keyring_signer(const idm_keyring_t *kr, idm_key_alg_t alg);
size_t idm_keyring_count(const idm_keyring_t *kr);
const idm_key_t *idm_keyring_at(const idm_keyring_t *kr, size_t i);

/* The published JWK Set (NEXT, ACTIVE and RETIRED keys), serialized once at load.
 * Every JWK carries kty, crv, x (, y), kid, "alg" (EdDSA or ES256) and "use":"sig".
 * Valid while kr lives. */
const char *idm_keyring_jwks_json(const idm_keyring_t *kr, size_t *len);
/* The same set, parsed (for verifying our own tokens, e.g. introspection); NULL when the
 * keyring is empty. Valid while kr lives. */
const idm_jwks_t *idm_keyring_jwks(const idm_keyring_t *kr);
/* The published key with this kid, or NULL. */
const idm_key_t *idm_keyring_find(const idm_keyring_t *kr, const char *kid, size_t kid_len);

const char *idm_key_kid(const idm_key_t *k);     /* IDM_KID_LEN chars, NUL-terminated */
idm_key_alg_t idm_key_alg(const idm_key_t *k);
idm_key_state_t idm_key_state(const idm_key_t *k);
const char *idm_key_state_name(idm_key_state_t s); /* "next", "active", "retired" */
/* Lifecycle times, seconds since the epoch; 0 when the event has not happened. A retired
 * key is published until publish_until (retired + max token ttl + max leeway). */
int64_t idm_key_created_s(const idm_key_t *k);
int64_t idm_key_activated_s(const idm_key_t *k);
int64_t idm_key_retired_s(const idm_key_t *k);
int64_t idm_key_publish_until_s(const idm_key_t *k);

/* Signs msg; writes the JOSE signature form (Ed25519: 64 bytes; ES256: raw r||s, 64 bytes).
 * Thread-safe. */
idm_err_t idm_key_sign(const idm_key_t *k, uint8_t sig[IDM_SIG_MAX], size_t *sig_len,
                       const uint8_t *msg, size_t msg_len);

/* Key directory management (CLI). new: creates a key (ACTIVE if the dir has no active key
 * of that alg, else NEXT; IDM_ERR_KEY_STATE if it already has both). rotate, per
 * algorithm present: writes a new NEXT; if there was a NEXT, promotes it to ACTIVE and
 * retires the old ACTIVE (the first rotate of a directory without a NEXT therefore only
 * pre-publishes); deletes retired keys past publish_until. IDM_ERR_KEY_NONE when the dir
 * has no key. max_token_ttl_s (<= 0: IDM_KEYS_MAX_TOKEN_TTL_S) bounds how long a retired
 * key stays published: it must be at least the longest ttl any target grants. Loading
 * refuses the whole directory (IDM_ERR_PERM, IDM_ERR_KEY_FILE, ...) if one file is bad. */
idm_err_t idm_keys_new(const char *dir, idm_key_alg_t alg, const idm_clock_t *clk,
                       char kid_out[IDM_KID_LEN + 1], idm_why_t *why);
idm_err_t idm_keys_rotate(const char *dir, const idm_clock_t *clk, int64_t max_token_ttl_s,
                          idm_why_t *why);
/* Like idm_keys_rotate, for one algorithm only (only_alg an idm_key_alg_t, or -1: all). */
idm_err_t idm_keys_rotate_alg(const char *dir, const idm_clock_t *clk, int64_t max_token_ttl_s,
                              int only_alg, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
