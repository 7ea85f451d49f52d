/* Every named limit of the engine, in one place. Each says what it prevents.
 * Derived limits are checked with _Static_assert where they meet. Areas append their
 * own section; keep the units in the names. */
#ifndef IDM_CORE_LIMITS_H
#define IDM_CORE_LIMITS_H

/* ---- core ---------------------------------------------------------------------- */
/* Deepest nesting the JSON writer tracks; deeper output is a programming error. */
#define IDM_JSONW_DEPTH_MAX 16
/* Largest JSON document parsed from outside input (JWT payloads, JWKS, IID, requests).
 * Bounds parser memory and time for hostile input. */
#define IDM_JSON_INPUT_MAX_BYTES (64 * 1024)

/* ---- crypto: keys, JOSE, JWT ------------------------------------------------------ */
/* Largest compact JWS accepted from outside. Real k8s/GitHub tokens are 1-2 KiB. */
#define IDM_JWT_MAX_BYTES (16 * 1024)
/* Largest key or JWKS file read from disk. */
#define IDM_KEYFILE_MAX_BYTES (64 * 1024)
/* Largest decoded JWS header. Bounds the JSON parse of a header before any key is
 * consulted; real headers (alg, typ, kid) are under 200 bytes. */
#define IDM_JWS_HEADER_MAX_BYTES 4096
/* Most keys kept from one JWK Set, and the longest kid: bound memory and lookup time for
 * a hostile or corrupt set (real k8s/OIDC sets hold 1-4 keys). */
#define IDM_JWKS_KEYS_MAX 64
#define IDM_JWK_KID_MAX_BYTES 256
/* RSA moduli outside this range are refused: under 2048 bits is forgeable in practice,
 * over 8192 bits makes each verification a CPU-exhaustion vector. */
#define IDM_RSA_MODULUS_MIN_BITS 2048
#define IDM_RSA_MODULUS_MAX_BITS 8192
/* Clock-skew allowance on exp/nbf/iat: larger requested values are clamped to this. */
#define IDM_JWT_LEEWAY_MAX_S 300
/* Default upper bound on the lifetime of a token we sign; a retired key stays published
 * for this long after retirement (plus leeway), so every token it signed can be verified. */
#define IDM_KEYS_MAX_TOKEN_TTL_S (24 * 3600)
/* Most key files in one key directory. */
#define IDM_KEYDIR_FILES_MAX 256

/* ---- attest ---------------------------------------------------------------------- */

/* ---- net ------------------------------------------------------------------------- */

/* ---- batch ----------------------------------------------------------------------- */

#endif
