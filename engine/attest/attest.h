/* attest: trust providers and the verified-identity cache.
 *
 * A workload presents an identity document its platform gave it (a Kubernetes projected
 * service-account token, a GitHub/GitLab CI OIDC token, a SPIFFE JWT-SVID, a generic OIDC
 * token, an AWS EC2 instance identity document, a one-time join token, or simply its
 * Unix-socket peer credentials). attest verifies it against the matching `trust` block of
 * the configuration and produces the client attributes of DESIGN.md as a pol_client_t.
 *
 * CONTRACT (owned by the attest area; consumers: server/exchange, CLI):
 *  - idm_attest_t is built at start (and again on SIGHUP: build a new one from the new
 *    configuration, swap, free the old one once no thread uses it). Building it reads every
 *    JWKS file, AWS certificate and join-token store path named by the trust blocks. It is
 *    immutable afterwards and shared read-only by every thread; the only mutable part is
 *    the join-token store, which is locked internally (mutex + flock on the store file) and
 *    one-time even under concurrency across threads and processes.
 *  - Each provider carries a generation derived from its trust block and its key material.
 *    A rebuilt idm_attest_t whose provider has the same block and the same key bytes keeps
 *    the generation, so cached identities stay valid; a provider whose keys changed gets a
 *    new generation, which clears its entries from every cache (lazily, on lookup).
 *  - idm_attest_cache_t is per thread, never shared, never locked. It is allocated once,
 *    at creation, and never allocates afterwards.
 *  - idm_attest_verify never calls malloc when given an arena (JSON trees and views come
 *    from the arena); join-token documents and the CLI are the exceptions (file I/O).
 *  - Every refusal returns a specific code (engine/errors/attest.def and the JWT codes of
 *    engine/errors/crypto.def) and a reason in *why ("token expired 42s ago").
 */
#ifndef IDM_ATTEST_ATTEST_H
#define IDM_ATTEST_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/error.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The RFC 8693 subject_token_type of the document. */
typedef enum idm_doc_type {
  IDM_DOC_JWT,        /* urn:ietf:params:oauth:token-type:jwt (oidc, kubernetes, github, gitlab, spiffe) */
  IDM_DOC_AWS_IID,    /* urn:idmint:token-type:aws-iid */
  IDM_DOC_JOIN_TOKEN, /* urn:idmint:token-type:join-token */
  IDM_DOC__COUNT
} idm_doc_type_t;

/* The document type for a subject_token_type URI, or -1 (as int) when unknown. */
int idm_doc_type_from_uri(const char *uri, size_t len);
const char *idm_doc_type_uri(idm_doc_type_t t);

/* What attestation established about one client.
 *  - client.attr[] views and client.claims point into the cache entry the identity was
 *    served from, or into the arena given to idm_attest_verify; they stay valid until the
 *    arena is reset or the next idm_attest_verify / idm_attest_cache_* call on the same
 *    cache, whichever comes first. Callers use them within the request.
 *  - trust is borrowed from the configuration the idm_attest_t was built from. */
typedef struct idm_identity {
  pol_client_t client;
  const pol_trust_t *trust;
  int64_t exp_s;   /* when the document stops being valid (UTC s); 0: no expiry (unix) */
  bool cached;     /* served from the verified-identity cache (no signature checked) */
} idm_identity_t;

typedef struct idm_attest idm_attest_t;
typedef struct idm_attest_cache idm_attest_cache_t;

/* Builds one provider per trust block of cfg. cfg must outlive the result. NULL with a
 * reason naming the trust block and the file at fault. Allocates (start-up path). */
idm_attest_t *idm_attest_new(const pol_config_t *cfg, idm_why_t *why);
/* Same from an explicit list of trust blocks (tests, tools). The array is copied; the
 * pol_trust_t objects are borrowed and must outlive the result. */
idm_attest_t *idm_attest_new_from_trusts(const pol_trust_t *const *trusts, size_t n,
                                         idm_why_t *why);
void idm_attest_free(idm_attest_t *a); /* NULL is a no-op */

/* A cache of verified identities for one thread: at most entries_max identities and
 * bytes_max bytes of stored documents and attributes (0: entries_max *
 * IDM_ATTEST_CACHE_BYTES_PER_ENTRY; at least 64 KiB). It reserves exactly that budget
 * (rounded up to 64 bytes) plus an index of about 12 bytes per entry, once; a stored
 * identity takes about its document's length less the JWS header segment, plus its
 * attributes and 16 bytes (docs/ATTESTATION.md). Eviction is oldest-first. NULL on
 * allocation failure. */
idm_attest_cache_t *idm_attest_cache_new(size_t entries_max, size_t bytes_max);
void idm_attest_cache_free(idm_attest_cache_t *c); /* NULL is a no-op */

typedef struct idm_attest_cache_stats {
  uint64_t hits;       /* verifications served from the cache */
  uint64_t misses;     /* lookups that found nothing usable (then verified in full) */
  uint64_t inserts;    /* identities stored */
  uint64_t evictions;  /* live identities displaced to make room */
  uint64_t stale;      /* entries found expired or of an old provider generation */
  size_t entries;      /* index slots in use (live or not yet overwritten) */
  size_t bytes_used;   /* bytes of the record ring written so far, capped at its size */
  size_t bytes_reserved; /* memory the cache holds (index + ring) */
  size_t index_bytes;  /* of bytes_reserved, the index (the rest is the record ring) */
} idm_attest_cache_stats_t;
void idm_attest_cache_stats(const idm_attest_cache_t *c, idm_attest_cache_stats_t *out);
/* Forgets everything (e.g. tests, a new configuration snapshot). */
void idm_attest_cache_clear(idm_attest_cache_t *c);
/* A hint for a caller that has several documents queued (e.g. the requests of one event-
 * loop turn): starts loading the memory that looking doc up will touch, so that the DRAM
 * latencies of several lookups overlap instead of adding up. entry = false loads the
 * document's index lines; entry = true reads those lines (so call it after the first stage
 * has had time to land, e.g. a few documents later) and loads the records they name.
 * Changes nothing, never fails, and is never needed for correctness; a lookup of a cold
 * identity over a large cache costs about two DRAM misses without it
 * (docs/PERFORMANCE.md). c may be NULL (no-op). */
void idm_attest_cache_prefetch(const idm_attest_cache_t *c, const char *doc, size_t len,
                               bool entry);

/* Verifies one identity document.
 *  - trust_name: the trust block to use, or NULL to choose: for a JWT, the provider whose
 *    issuer equals the token's `iss` (the payload is read before any signature check only
 *    to choose; IDM_ERR_ATTEST_TRUST_AMBIGUOUS if several match); for an AWS IID or a join
 *    token, the only provider of that kind (ambiguous if several).
 *  - cache may be NULL (no caching). With a cache, a document that verified before and has
 *    not expired is served without a signature check (out->cached = true).
 *  - arena: scratch and output memory for a full verification (required).
 *  - clk: NULL for real time.
 * Errors: IDM_ERR_ATTEST_TRUST_UNKNOWN, IDM_ERR_ATTEST_TRUST_AMBIGUOUS,
 * IDM_ERR_ATTEST_KIND_MISMATCH, the JWS/JWT codes (IDM_ERR_JWS_*, IDM_ERR_JWT_*),
 * IDM_ERR_ATTEST_ALG_NOT_ALLOWED, IDM_ERR_ATTEST_CLAIMS, IDM_ERR_ATTEST_SPIFFE_ID,
 * IDM_ERR_IID_*, IDM_ERR_JOIN_*, IDM_ERR_ARENA_FULL. */
idm_err_t idm_attest_verify(idm_attest_t *a, idm_attest_cache_t *cache, idm_arena_t *arena,
                            idm_doc_type_t type, const char *trust_name, const char *doc,
                            size_t len, const idm_clock_t *clk, idm_identity_t *out,
                            idm_why_t *why);

/* Identifies the peer of a connected AF_UNIX socket fd by SO_PEERCRED (uid, gid, pid) and
 * its executable (/proc/PID/exe: path and SHA-256), under the first trust block of kind
 * unix. Attribute strings come from arena. Reads the executable (not for hot loops; the
 * server calls it once per accepted unix connection).
 * Errors: IDM_ERR_ATTEST_TRUST_UNKNOWN (no unix trust), IDM_ERR_UNIX_PEER. */
idm_err_t idm_attest_unix_peer(idm_attest_t *a, int fd, idm_arena_t *arena,
                               idm_identity_t *out, idm_why_t *why);

/* The same without ever hashing: when the executable's digest is not in the process-wide
 * digest cache it returns IDM_ERR_UNIX_EXE_UNHASHED and *exe_fd, an open descriptor of
 * the very executable (read through /proc/PID/exe), which the caller hashes elsewhere with
 * idm_attest_unix_exe_hash (another thread: hashing a large binary takes milliseconds to
 * hundreds of them) and closes, then calls this again. *exe_fd is -1 on every other
 * return. The server's event loop uses this pair. */
idm_err_t idm_attest_unix_peer_cached(idm_attest_t *a, int fd, idm_arena_t *arena,
                                      idm_identity_t *out, int *exe_fd, idm_why_t *why);
/* Hashes the executable exe_fd into the digest cache (IDM_OK, or why it cannot be:
 * changed while read, too large, not a regular file). Does not close exe_fd. */
idm_err_t idm_attest_unix_exe_hash(int exe_fd, idm_why_t *why);

/* Writes the identity's attributes as one JSON object ({"trust": ..., "kind": ...,
 * "namespace": ..., "claims": {...}}) into out (NUL-terminated). IDM_ERR_NOSPACE if cap is
 * too small. Used by `idmint attest` and the audit log. */
idm_err_t idm_identity_to_json(const idm_identity_t *id, char *out, size_t cap, size_t *len);

/* ---- join tokens (DESIGN.md `idmint join-token new`) ------------------------------- */

/* Creates a one-time token named name valid for ttl_s seconds in the store of the
 * join-token trust block t, writing the token (NUL-terminated) into out. Only a SHA-256
 * of the token is stored. Errors: IDM_ERR_JOIN_FORMAT (bad name/ttl), IDM_ERR_JOIN_STORE,
 * IDM_ERR_NOSPACE (cap < IDM_JOIN_TOKEN_MAX). */
idm_err_t idm_join_token_new(const pol_trust_t *t, const char *name, int64_t ttl_s,
                             const idm_clock_t *clk, char *out, size_t cap, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
