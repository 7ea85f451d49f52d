/* The exchange pipeline: request fields → attest → policy → mint → RFC 8693 response.
 *
 * One path serves POST /v1/token, the gateway check /v1/authz/... and the offline
 * `idmint token exchange`, so all three give the same answer for the same input.
 *
 * CONTRACT:
 *  - An idm_exchange_ctx_t belongs to one thread: its attestation cache, request arena,
 *    jti generator and batcher are never shared. idm_exchange_run never calls malloc (the
 *    arena backs JSON parsing and attestation; the result is written into the caller's
 *    struct).
 *  - Every decision goes through the thread's batcher (batch/batch.h): a denial is recorded
 *    for the audit log and answered at once; an allowed credential is queued with the
 *    caller's cookie and res->pending is set — its token (res->token) is complete, and may
 *    be sent, only when idm_batch_complete reports the cookie (the batch is sealed and its
 *    audit line written). When the batch is full, x->seal(x->seal_ud) is called to seal it
 *    (and start its audit write) and the item is queued again.
 *  - Outcomes (DESIGN.md "HTTP API"): res->status 200 with a token; 400 invalid_request
 *    (malformed), 400 invalid_grant (subject token bad, expired or unverifiable), 400
 *    invalid_target (unknown target), 403 access_denied (policy), 500 server_error (no
 *    signing key), 503 temporarily_unavailable (arena exhausted). res->error names the
 *    OAuth error and res->description the specific reason.
 *  - Views in the request are borrowed for the call.
 */
#ifndef IDM_NET_EXCHANGE_H
#define IDM_NET_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "batch/batch.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/error.h"
#include "crypto/jwt.h"
#include "net/http.h"
#include "net/metrics.h"
#include "net/snapshot.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

struct idm_router;

#define IDM_EXCHANGE_POSTURE_MAX 16  /* posture entries read from X-Idmint-Posture */


typedef struct idm_exchange_req {
  idm_view_t grant_type;
  idm_view_t subject_token;
  idm_view_t subject_token_type;
  idm_view_t audience;
  idm_view_t resource;
  idm_view_t scope;
  idm_view_t requested_token_type;
  pol_context_t ctx;           /* now_s is filled by idm_exchange_run when 0 */
  /* The unix-socket peer (see idm_http_req_t): used instead of a subject_token when the
   * request has none (subject_token_type absent or urn:idmint:token-type:unix-peer). */
  bool unix_conn;
  const idm_identity_t *unix_peer;
  const char *unix_peer_why;
} idm_exchange_req_t;

typedef struct idm_exchange_res {
  int status;                  /* 200, 400, 403, 500, 503 */
  const char *error;           /* NULL on success; "invalid_request", ... */
  char description[IDM_WHY_LEN];
  char token[IDM_TOKEN_MAX];
  size_t token_len;
  bool pending;                /* 200 queued in the batcher: wait for its completion */
  int64_t expires_in;          /* seconds */
  const char *scope;           /* granted scope (into decision) */
  const pol_target_t *target;  /* NULL until known */
  pol_decision_t decision;
  bool decided;                /* decision is valid */
  const char *subject;         /* borrowed from the identity (valid until next run) */
  size_t subject_len;
  bool cached;                 /* identity served from the attestation cache */
} idm_exchange_res_t;

typedef struct idm_exchange_ctx {
  const idm_snapshot_t *snap;  /* borrowed; set per turn */
  idm_attest_cache_t *cache;   /* owned */
  idm_batch_t *batch;          /* borrowed: this thread's batcher (required to issue) */
  idm_err_t (*seal)(void *ud); /* seals a full batch (server: and submits its audit write) */
  void *seal_ud;
  idm_arena_t arena;           /* reset at the start of every exchange */
  idm_jti_gen_t jti;
  const idm_clock_t *clk;      /* NULL: real time */
  idm_metrics_t *m;            /* may be NULL */
  uint64_t hits_seen, misses_seen; /* cache stats already counted in metrics */
  pol_kv_t posture[IDM_EXCHANGE_POSTURE_MAX];
  idm_exchange_res_t res;      /* the HTTP handlers' result, valid until the next call */
  uint32_t signs;              /* jwt-profile credentials queued since the last seal (each
                                  costs a signature at seal); the server resets it when it
                                  seals and bounds a loop turn's work by it */
} idm_exchange_ctx_t;

idm_err_t idm_exchange_ctx_init(idm_exchange_ctx_t *x, unsigned thread_index,
                                const char *node_id, size_t cache_entries,
                                const idm_clock_t *clk, idm_metrics_t *m, idm_why_t *why);
void idm_exchange_ctx_cleanup(idm_exchange_ctx_t *x);
/* Points the context at a snapshot; a new generation empties the attestation cache. */
void idm_exchange_ctx_set_snapshot(idm_exchange_ctx_t *x, const idm_snapshot_t *snap);

/* Parses a POST /v1/token body (application/x-www-form-urlencoded, or application/json
 * with the same field names; no content type: form). Decoded strings live in x->arena.
 * IDM_ERR_EXCHANGE_REQUEST with the reason (repeated field, bad escape, wrong type...). */
idm_err_t idm_exchange_parse(idm_exchange_ctx_t *x, idm_exchange_req_t *req,
                             idm_view_t content_type, const uint8_t *body, size_t len,
                             idm_why_t *why);

/* Runs the pipeline. Never fails: the outcome is in *res (res->pending: see CONTRACT; the
 * cookie is what idm_batch_complete will report). Does not reset the arena (the caller
 * does, before parsing). res must stay in place until the cookie is reported. */
void idm_exchange_run(idm_exchange_ctx_t *x, idm_exchange_req_t *req, idm_exchange_res_t *res,
                      void *cookie);

/* The HTTP answer for a finished exchange result: POST /v1/token's JSON, or the gateway
 * check's headers (authz true). Bodies go to r->scratch. */
void idm_exchange_http_reply(struct idm_router *r, bool authz, const idm_exchange_res_t *res,
                             idm_http_resp_t *resp);

/* The RFC 8693 response (200) or the {"error","error_description"} body. */
idm_err_t idm_exchange_response_json(const idm_exchange_res_t *res, char *out, size_t cap,
                                     size_t *len);

/* Fills the policy context's source address and posture from the TCP peer and, when the
 * peer is a trusted proxy, X-Forwarded-For (rightmost address) and X-Idmint-Posture. */
void idm_exchange_context(idm_exchange_ctx_t *x, const idm_http_req_t *req, pol_context_t *ctx);

/* HTTP handlers (router.c dispatches here). */
void idm_exchange_http_token(idm_exchange_ctx_t *x, struct idm_router *r,
                             const idm_http_req_t *req, idm_http_resp_t *resp);
void idm_exchange_http_introspect(idm_exchange_ctx_t *x, struct idm_router *r,
                                  const idm_http_req_t *req, idm_http_resp_t *resp);
void idm_exchange_http_authz(idm_exchange_ctx_t *x, struct idm_router *r,
                             const idm_http_req_t *req, idm_http_resp_t *resp);

/* Parses "a.b.c.d" or an IPv6 literal into 16 bytes; family 4 or 6, or 0 if invalid. */
uint8_t idm_ip_parse(const char *s, size_t len, uint8_t out[16]);
bool idm_cidr_contains(const pol_cidr_t *c, const uint8_t addr[16], uint8_t family);

#ifdef __cplusplus
}
#endif
#endif
