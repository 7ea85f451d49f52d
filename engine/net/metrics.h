/* Per-thread counters and their Prometheus text rendering.
 *
 * Each worker thread owns one idm_metrics_t and is its only writer (IDM_MET_INC: a relaxed
 * load and store, no lock prefix); /metrics sums every thread's counters with relaxed
 * loads. Counts may be a few increments stale, never torn.
 */
#ifndef IDM_NET_METRICS_H
#define IDM_NET_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum idm_endpoint {
  IDM_EP_TOKEN, IDM_EP_INTROSPECT, IDM_EP_AUTHZ, IDM_EP_DISCOVERY, IDM_EP_JWKS,
  IDM_EP_HEALTHZ, IDM_EP_READYZ, IDM_EP_METRICS, IDM_EP_OTHER, IDM_EP__COUNT
} idm_endpoint_t;

/* Outcome label of a request, from its status and (for the exchange) its error. */
typedef enum idm_outcome {
  IDM_OC_OK,              /* 2xx */
  IDM_OC_INVALID_REQUEST, /* 400 invalid_request and other malformed input (4xx) */
  IDM_OC_INVALID_GRANT,   /* 400 invalid_grant */
  IDM_OC_INVALID_TARGET,  /* 400 invalid_target */
  IDM_OC_DENIED,          /* 403 */
  IDM_OC_NOT_FOUND,       /* 404, 405 */
  IDM_OC_OVERLOADED,      /* 503 */
  IDM_OC_ERROR,           /* other 5xx */
  IDM_OC__COUNT
} idm_outcome_t;

/* Why a batch was sealed (server.c, seal_due): saturated (a full batch, or a turn that
 * reached its budget or left work behind), idle (the audit I/O was idle and the thread had
 * time to spare), gap (the seal gap passed), single (the last batch held one entry: a lone
 * client), other (drain, reload). */
typedef enum idm_seal_reason {
  IDM_SEAL_SATURATED, IDM_SEAL_IDLE, IDM_SEAL_GAP, IDM_SEAL_SINGLE, IDM_SEAL_OTHER,
  IDM_SEAL__COUNT
} idm_seal_reason_t;

#define IDM_MET_LAT_BUCKETS 14 /* upper bounds in idm_metrics_lat_bounds_us, then +Inf */

typedef struct idm_metrics {
  uint64_t requests[IDM_EP__COUNT][IDM_OC__COUNT];
  uint64_t lat_bucket[IDM_MET_LAT_BUCKETS + 1];
  uint64_t lat_sum_us;
  uint64_t lat_count;
  uint64_t attest_hits, attest_misses;
  uint64_t decisions_allow, decisions_deny_default, decisions_deny_forbid, decisions_deny_scope;
  uint64_t minted[IDM_NET_METRIC_TARGETS_MAX + 1]; /* by target index; last: others */
  uint64_t conns_accepted, conns_open, conns_refused;
  uint64_t h2_streams, h2_sessions_failed;
  uint64_t parse_errors, timeouts, overloaded;
  uint64_t sends, send_bytes;   /* coalescing: responses per send = lat_count / sends */
  uint64_t audit_writes, audit_syncs; /* audit group commit: lines per write, per sync */
  uint64_t audit_prealloc_waits; /* a write found preallocation not past it yet */
  uint64_t seals[IDM_SEAL__COUNT];
} idm_metrics_t;

#define IDM_MET_INC(p) IDM_MET_ADD(p, 1)
#define IDM_MET_ADD(p, n)                                                                  \
  __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

extern const uint32_t idm_metrics_lat_bounds_us[IDM_MET_LAT_BUCKETS];

/* Records one finished request. */
void idm_metrics_request(idm_metrics_t *m, idm_endpoint_t ep, idm_outcome_t oc, int64_t lat_ns);

/* Renders the sum of threads[0..n) in the Prometheus text format (version 0.0.4).
 * target_names[i] labels minted[i] (NULL entries are skipped). IDM_ERR_NOSPACE if out is
 * too small. */
idm_err_t idm_metrics_render(char *out, size_t cap, size_t *len, idm_metrics_t *const *threads,
                             size_t n, const char *const *target_names, size_t target_count,
                             int ready);

const char *idm_endpoint_name(idm_endpoint_t ep);
const char *idm_outcome_name(idm_outcome_t oc);

#ifdef __cplusplus
}
#endif
#endif
