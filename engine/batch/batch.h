/* The per-thread batcher: gathers the credentials (and denials) a thread decides in one
 * event-loop turn, seals them as one batch under one Ed25519 signature over an RFC 9162
 * Merkle root, fills every token, and produces the batch's audit line.
 *
 * CONTRACT (owned by the batch area; consumers: server loop, exchange pipeline, CLI):
 *  - One batcher per thread, never shared. All memory is reserved by idm_batch_new
 *    (items_max entries × IDM_BATCH_INFLIGHT_MAX slots, record buffers, tree scratch);
 *    add/seal/complete never allocate.
 *  - idm_batch_add copies what it needs from the item during the call (claims strings are
 *    borrowed only for the call) and writes the token's signing input into the caller's
 *    output buffer at once (from a per-identity template when it has one); its leaf is
 *    hashed at seal, from the buffer. The output buffer and the cookie must stay valid, and
 *    the buffer unchanged, until the item's completion is reported.
 *  - Seal when idm_batch_full() or when the loop has no more ready work; a batch under
 *    light load therefore holds one entry and waits for nothing but its audit write.
 *  - idm_batch_seal: reserves the batch sequence, builds the tree, signs the root once
 *    with the batcher's Ed25519 key, signs each jwt-profile token with its own key,
 *    appends the proof (batch profile) or signature (jwt profile) to every output buffer,
 *    serializes the audit line, chains it (audit.h), and returns what to write where.
 *    Without an audit log (opts.log NULL: tests, benchmarks) no line is produced and the
 *    batch is released at once.
 *  - Responses are released only by idm_batch_complete, which reports each cookie once
 *    its batch's line is released by the log (written, or written and fsynced).
 *  - Denials (item.allow false) carry no token; they are recorded in the line of the
 *    batch being gathered and may carry a NULL cookie when the caller does not wait.
 *  - When the log has failed, add refuses with IDM_ERR_AUDIT_FAILED and complete reports
 *    every waiting cookie with IDM_ERR_AUDIT_FAILED: no credential leaves unrecorded.
 *
 * Typical server loop turn:
 *     reap CQEs (audit write → idm_audit_written / idm_audit_synced)
 *     for each ready request: decide; idm_batch_add (on IDM_ERR_BATCH_FULL: seal, submit,
 *                              add again)
 *     if idm_batch_pending(b): idm_batch_seal(b, &s); submit write(s.record, s.len, s.offset)
 *     idm_batch_complete(b, on_done, ctx)   → send the released responses */
#ifndef IDM_BATCH_BATCH_H
#define IDM_BATCH_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch/audit.h"
#include "batch/btoken.h"
#include "core/clock.h"
#include "core/error.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum idm_profile {
  IDM_PROFILE_JWT = 0,    /* JWS signed per token (EdDSA or ES256) */
  IDM_PROFILE_BATCH,      /* EdDSA-MTB1: Merkle proof + one signature per batch */
} idm_profile_t;

typedef struct idm_batch_opts {
  const idm_key_t *key;       /* Ed25519 key that signs batch roots (ACTIVE); borrowed */
  size_t items_max;           /* entries per batch, 1..IDM_BATCH_ITEMS_MAX (0: default) */
  idm_audit_log_t *log;       /* shared log, or NULL for no audit line; borrowed */
  const char *iss;            /* the issuer every credential names (the line's "iss");
                                 required with a log; items with another iss are refused */
  const idm_clock_t *clk;     /* batch issue time; NULL: real time */
} idm_batch_opts_t;

/* One decision to record, and for an allow the credential to mint. */
typedef struct idm_batch_item {
  bool allow;                 /* false: a denial, recorded only */
  idm_profile_t profile;      /* allow only */
  const idm_key_t *key;       /* jwt profile: its signing key; batch profile: NULL (the
                                 batcher's key) */
  const idm_claims_t *claims; /* allow: the claims (iat/nbf/exp as given); deny: sub,
                                 trust, aud used if set; borrowed for the call */
  const char *target;         /* target name for the audit entry (NULL: claims->aud) */
  const char *const *rules;   /* deciding rule names, rules_n of them; borrowed */
  size_t rules_n;
  const char *reason;         /* deny: why (NULL: "denied") */
  char *out;                  /* allow: token output (NUL-terminated at seal) */
  size_t out_cap;             /* bytes; IDM_TOKEN_MAX is always enough */
  size_t *out_len;            /* allow: token length set at seal; may be NULL */
  void *cookie;               /* reported by idm_batch_complete; NULL: not reported */
} idm_batch_item_t;

/* What idm_batch_seal produced. Pointers stay valid until the slot is completed. */
typedef struct idm_batch_sealed {
  uint64_t seq;               /* batch sequence */
  size_t size;                /* credentials (tree leaves) */
  size_t entries;             /* credentials + denials */
  const char *record;         /* audit line ('\n' included); NULL without a log */
  size_t record_len;
  uint64_t offset;            /* file offset the line must be written at */
} idm_batch_sealed_t;

typedef struct idm_batch idm_batch_t; /* opaque, per thread */

/* Reserves all memory. IDM_ERR_BATCH_KEY when key is NULL or not Ed25519,
 * IDM_ERR_INVALID_ARG for items_max out of range, IDM_ERR_NOMEM. */
idm_err_t idm_batch_new(idm_batch_t **out, const idm_batch_opts_t *opts, idm_why_t *why);
void idm_batch_free(idm_batch_t *b); /* NULL is a no-op; pending cookies are dropped */

/* Replaces the root-signing key (reload), between seals. IDM_ERR_BATCH_KEY if not Ed25519. */
idm_err_t idm_batch_set_key(idm_batch_t *b, const idm_key_t *key, idm_why_t *why);

/* Queues one entry. Errors: IDM_ERR_BATCH_FULL (the batch, or its audit line, is full:
 * seal, then add again), IDM_ERR_BATCH_BUSY (full, and every slot awaits its audit
 * write: shed the request), IDM_ERR_AUDIT_FAILED (fail closed), IDM_ERR_INVALID_ARG
 * (missing output/claims/key, or an iss other than opts.iss), IDM_ERR_AUDIT_RECORD (one
 * entry larger than IDM_AUDIT_ENTRY_MAX_BYTES), IDM_ERR_NOSPACE (the token cannot fit
 * out_cap), the errors of idm_jwt_signing_input. Nothing is queued on error. */
idm_err_t idm_batch_add(idm_batch_t *b, const idm_batch_item_t *item, idm_why_t *why);

bool idm_batch_full(const idm_batch_t *b);
/* True when entries are waiting to be sealed. */
bool idm_batch_pending(const idm_batch_t *b);

/* Seals the gathered batch (see CONTRACT). IDM_ERR_BATCH_EMPTY when nothing is pending,
 * IDM_ERR_BATCH_BUSY when IDM_BATCH_INFLIGHT_MAX sealed batches still await their audit
 * write (nothing changes; call again after completions). On a signing failure the batch
 * is sealed anyway and every entry of it is completed with the error (no line). */
idm_err_t idm_batch_seal(idm_batch_t *b, idm_batch_sealed_t *out, idm_why_t *why);

/* Reports every cookie whose batch is released (or failed), in add order per batch, and
 * frees those slots. err is IDM_OK, or why the credential must not be sent. Returns the
 * number of cookies reported. */
typedef void (*idm_batch_done_fn)(void *cookie, idm_err_t err, void *ctx);
size_t idm_batch_complete(idm_batch_t *b, idm_batch_done_fn done, void *ctx);

/* seal + idm_audit_write_sync + complete, for the CLI, tests and benchmarks. */
idm_err_t idm_batch_seal_sync(idm_batch_t *b, idm_batch_done_fn done, void *ctx,
                              idm_batch_sealed_t *out, idm_why_t *why);

/* Slots sealed and not yet completed (for metrics and tests). */
size_t idm_batch_inflight(const idm_batch_t *b);

/* Credentials minted from a cached per-identity template (hits), after building one
 * (misses), and without one (fields too large to cache; counted with the misses too when a
 * build was tried). For metrics and tests. */
typedef struct idm_batch_tmpl_stats {
  uint64_t hits, misses, uncached;
} idm_batch_tmpl_stats_t;
void idm_batch_template_stats(const idm_batch_t *b, idm_batch_tmpl_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
