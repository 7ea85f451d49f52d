/* The router: maps a protocol-neutral request to its handler and fills the response.
 *
 * CONTRACT:
 *  - idm_route never fails: every request gets a response (404/405 for unknown paths and
 *    methods; the JSON error bodies of DESIGN.md "HTTP API" for the exchange endpoints).
 *  - It never allocates: bodies are written into r->scratch (r->scratch_cap bytes) or point
 *    at snapshot memory, valid until the next idm_route call on the same router.
 *  - One router per worker thread; the snapshot pointer is refreshed by the server between
 *    loop turns.
 */
#ifndef IDM_NET_ROUTER_H
#define IDM_NET_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "net/http.h"
#include "net/metrics.h"
#include "net/snapshot.h"

#ifdef __cplusplus
extern "C" {
#endif

struct idm_exchange_ctx;

typedef struct idm_router {
  const idm_snapshot_t *snap;         /* borrowed, current for this turn */
  struct idm_exchange_ctx *ex;        /* this thread's exchange pipeline; NULL: none */
  idm_metrics_t *m;                   /* this thread's counters */
  idm_metrics_t *const *all_metrics;  /* every thread's, for /metrics */
  size_t thread_count;
  char *scratch;                      /* response bodies; scratch_cap bytes */
  size_t scratch_cap;
  const char *not_ready;              /* NULL: ready; else why /readyz is 503 */
  bool draining;                      /* SIGTERM: /readyz says so, responses close */
  bool overloaded;                    /* this thread's queue is full: shed with 503 */
  struct idm_audit_log *audit;        /* for /readyz (fail closed); NULL: none */
  /* Storage for an exchange whose answer may be deferred (the server's pending pool):
   * get returns NULL when the pool is empty (the request is shed with 503). */
  struct idm_exchange_res *(*pend_get)(void *ud, void **cookie);
  void (*pend_put)(void *ud, void *cookie);
  void *pend_ud;
} idm_router_t;

void idm_route(idm_router_t *r, const idm_http_req_t *req, idm_http_resp_t *resp);

/* Counts a finished request in the metrics (idm_route does it, except for deferred
 * answers, which the server counts when it sends them). */
void idm_route_count(idm_router_t *r, idm_endpoint_t ep, const idm_http_resp_t *resp,
                     int64_t start_ns);

/* Which endpoint a path is (for metrics); IDM_EP_OTHER if none. */
idm_endpoint_t idm_route_endpoint(const idm_http_req_t *req);

/* Sets resp to a JSON answer: status, type application/json, the body (kept by the caller
 * until the response is sent), Cache-Control: no-store when no_store. */
void idm_route_json(idm_http_resp_t *resp, int status, const char *body, size_t len,
                    bool no_store);

/* Fills resp with a JSON {"error":…, "error_description":…} body in r->scratch. */
void idm_route_error(idm_router_t *r, idm_http_resp_t *resp, int status, const char *error,
                     const char *description);

/* The outcome label of a finished response. */
idm_outcome_t idm_route_outcome(const idm_http_resp_t *resp);

#ifdef __cplusplus
}
#endif
#endif
