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

/* ---- attest ---------------------------------------------------------------------- */
/* Trust blocks one idm_attest_t serves; bounds the issuer scan when `iss` chooses. */
#define IDM_ATTEST_TRUSTS_MAX 256
/* Clock skew accepted on exp/nbf/iat whatever the trust block says. */
#define IDM_ATTEST_LEEWAY_MAX_S 300
/* Largest AWS IID subject token ({"document":...,"signature":...}); real ones are ~1.5 KiB. */
#define IDM_ATTEST_IID_MAX_BYTES (8 * 1024)
/* Largest value copied into one client attribute; longer claims are refused. */
#define IDM_ATTEST_ATTR_MAX_BYTES 1024
/* oidc: top-level string claims exposed as claims.NAME; more are ignored. */
#define IDM_ATTEST_CLAIMS_MAX 64
/* Cache: slots probed per lookup/insert (bounds the work of a miss). */
#define IDM_ATTEST_CACHE_PROBE_MAX 8
/* Cache: default ring bytes per identity when the caller gives no byte budget. */
#define IDM_ATTEST_CACHE_BYTES_PER_ENTRY 1024
/* Cache: documents longer than this are verified every time, never stored. */
#define IDM_ATTEST_CACHE_DOC_MAX_BYTES (8 * 1024)
/* Join tokens: name length, count per store, store file size, longest ttl. */
#define IDM_JOIN_NAME_MAX 64
#define IDM_JOIN_TOKEN_MAX 128 /* bytes of a token, NUL included */
#define IDM_JOIN_TOKENS_MAX 4096
#define IDM_JOIN_STORE_MAX_BYTES (1024 * 1024)
#define IDM_JOIN_TTL_MAX_S (7 * 86400)
/* unix: largest executable hashed for exe_sha256 (bounds the work of one peer). */
#define IDM_UNIX_EXE_MAX_BYTES (512LL * 1024 * 1024)

/* ---- net ------------------------------------------------------------------------- */

/* ---- batch ----------------------------------------------------------------------- */

#endif
