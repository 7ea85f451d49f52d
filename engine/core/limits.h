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

/* ---- net ------------------------------------------------------------------------- */

/* ---- batch ----------------------------------------------------------------------- */

#endif
