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
/* Most entries (credentials + denials) one batch holds. Bounds the Merkle path in every
 * batch token (log2 of it), the per-thread batcher memory and one audit line. A server
 * configures a smaller maximum (default IDM_BATCH_ITEMS_DEFAULT). */
#define IDM_BATCH_ITEMS_MAX 4096
#define IDM_BATCH_ITEMS_DEFAULT 256
/* Sealed batches per thread whose audit record is still being written. When every slot
 * waits, idm_batch_add sheds load (IDM_ERR_BATCH_BUSY) instead of queueing without end. */
#define IDM_BATCH_INFLIGHT_MAX 8
/* Longest Merkle inclusion path a proof may carry: a tree of 2^32 leaves. Real paths are
 * at most ceil(log2(IDM_BATCH_ITEMS_MAX)) = 12 long; parsers refuse longer ones. */
#define IDM_MERKLE_PATH_MAX 32
/* Bytes of one audit entry (subject, trust, target, audience, scope, jti, rules, reason
 * escaped); an entry that does not fit is recorded truncated with "trunc":true. */
#define IDM_AUDIT_ENTRY_MAX_BYTES 3072
/* Bytes of an audit line outside its entries (sequence, kid, root, signature, chain). */
#define IDM_AUDIT_HEAD_MAX_BYTES 1024
/* Longest audit line the verifier reads: a full batch of full entries. Bounds memory
 * when reading a hostile log. */
#define IDM_AUDIT_LINE_MAX_BYTES (IDM_BATCH_ITEMS_MAX * IDM_AUDIT_ENTRY_MAX_BYTES + IDM_AUDIT_HEAD_MAX_BYTES)
/* How far out of file order batch sequences may appear (threads seal concurrently and
 * reserve sequences before they chain their lines). Bounds the verifier's window. */
#define IDM_AUDIT_REORDER_MAX 65536
/* Written ranges of the audit log that complete ahead of an earlier unwritten one
 * (threads' writes finish out of order). Bounded by threads x IDM_BATCH_INFLIGHT_MAX in
 * practice; overflowing it fails the log closed rather than losing track. */
#define IDM_AUDIT_RANGES_MAX 4096
/* Verified batch signatures a verifier remembers, so that it checks each batch's
 * signature once. */
#define IDM_VERIFY_CACHE_ENTRIES 1024

#endif
