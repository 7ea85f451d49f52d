/* Prometheus rendering. Label values are fixed names, except target names, which come
 * from the configuration and are escaped per the text format (backslash, quote, newline). */
#include "net/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const uint32_t idm_metrics_lat_bounds_us[IDM_MET_LAT_BUCKETS] = {
    50, 100, 250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};

static const char *ep_names[IDM_EP__COUNT] = {"token",   "introspect", "authz",  "discovery",
                                              "jwks",    "healthz",    "readyz", "metrics",
                                              "other"};
static const char *oc_names[IDM_OC__COUNT] = {"ok",           "invalid_request", "invalid_grant",
                                              "invalid_target", "access_denied", "not_found",
                                              "overloaded",   "error"};

const char *idm_endpoint_name(idm_endpoint_t ep) {
  return ep < IDM_EP__COUNT ? ep_names[ep] : "other";
}
const char *idm_outcome_name(idm_outcome_t oc) {
  return oc < IDM_OC__COUNT ? oc_names[oc] : "error";
}

void idm_metrics_request(idm_metrics_t *m, idm_endpoint_t ep, idm_outcome_t oc, int64_t lat_ns) {
  IDM_MET_INC(&m->requests[ep][oc]);
  uint64_t us = lat_ns > 0 ? (uint64_t)lat_ns / 1000 : 0;
  int b = 0;
  while (b < IDM_MET_LAT_BUCKETS && us > idm_metrics_lat_bounds_us[b])
    b++;
  IDM_MET_INC(&m->lat_bucket[b]);
  IDM_MET_ADD(&m->lat_sum_us, us);
  IDM_MET_INC(&m->lat_count);
}

typedef struct out {
  char *p;
  size_t cap, len;
  int overflow;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...) {
  if (o->overflow)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) {
    o->overflow = 1;
    return;
  }
  o->len += (size_t)n;
}

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define SUM(field)                                                                          \
  ({                                                                                        \
    uint64_t s_ = 0;                                                                        \
    for (size_t t_ = 0; t_ < n; t_++)                                                       \
      s_ += LD(threads[t_]->field);                                                         \
    s_;                                                                                     \
  })

static void put_label(out_t *o, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      put(o, "\\%c", *s);
    else if (*s == '\n')
      put(o, "\\n");
    else
      put(o, "%c", *s);
  }
}

idm_err_t idm_metrics_render(char *buf, size_t cap, size_t *len, idm_metrics_t *const *threads,
                             size_t n, const char *const *target_names, size_t target_count,
                             int ready) {
  out_t o = {buf, cap, 0, 0};
  put(&o, "# HELP idmint_http_requests_total HTTP requests by endpoint and outcome.\n"
          "# TYPE idmint_http_requests_total counter\n");
  for (int e = 0; e < IDM_EP__COUNT; e++)
    for (int c = 0; c < IDM_OC__COUNT; c++) {
      uint64_t v = SUM(requests[e][c]);
      if (v || c == IDM_OC_OK)
        put(&o, "idmint_http_requests_total{endpoint=\"%s\",outcome=\"%s\"} %llu\n", ep_names[e],
            oc_names[c], (unsigned long long)v);
    }
  put(&o, "# HELP idmint_http_request_duration_seconds Time from a complete request to its "
          "response being queued.\n# TYPE idmint_http_request_duration_seconds histogram\n");
  uint64_t cum = 0;
  for (int b = 0; b <= IDM_MET_LAT_BUCKETS; b++) {
    cum += SUM(lat_bucket[b]);
    if (b < IDM_MET_LAT_BUCKETS)
      put(&o, "idmint_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
          idm_metrics_lat_bounds_us[b] / 1e6, (unsigned long long)cum);
    else
      put(&o, "idmint_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
          (unsigned long long)cum);
  }
  put(&o, "idmint_http_request_duration_seconds_sum %.6f\n", SUM(lat_sum_us) / 1e6);
  put(&o, "idmint_http_request_duration_seconds_count %llu\n", (unsigned long long)SUM(lat_count));
  put(&o, "# HELP idmint_attest_cache_total Identity document verifications by cache result.\n"
          "# TYPE idmint_attest_cache_total counter\n"
          "idmint_attest_cache_total{result=\"hit\"} %llu\n"
          "idmint_attest_cache_total{result=\"miss\"} %llu\n",
      (unsigned long long)SUM(attest_hits), (unsigned long long)SUM(attest_misses));
  put(&o, "# HELP idmint_policy_decisions_total Policy decisions by outcome.\n"
          "# TYPE idmint_policy_decisions_total counter\n"
          "idmint_policy_decisions_total{decision=\"allow\"} %llu\n"
          "idmint_policy_decisions_total{decision=\"deny_default\"} %llu\n"
          "idmint_policy_decisions_total{decision=\"deny_forbid\"} %llu\n"
          "idmint_policy_decisions_total{decision=\"deny_scope\"} %llu\n",
      (unsigned long long)SUM(decisions_allow), (unsigned long long)SUM(decisions_deny_default),
      (unsigned long long)SUM(decisions_deny_forbid), (unsigned long long)SUM(decisions_deny_scope));
  put(&o, "# HELP idmint_tokens_minted_total Credentials minted by target.\n"
          "# TYPE idmint_tokens_minted_total counter\n");
  for (size_t t = 0; t < target_count && t < IDM_NET_METRIC_TARGETS_MAX; t++) {
    if (!target_names[t])
      continue;
    put(&o, "idmint_tokens_minted_total{target=\"");
    put_label(&o, target_names[t]);
    put(&o, "\"} %llu\n", (unsigned long long)SUM(minted[t]));
  }
  uint64_t other = SUM(minted[IDM_NET_METRIC_TARGETS_MAX]);
  if (other || target_count > IDM_NET_METRIC_TARGETS_MAX)
    put(&o, "idmint_tokens_minted_total{target=\"(other)\"} %llu\n", (unsigned long long)other);
  put(&o, "# HELP idmint_connections_total Connections accepted and refused at the limit.\n"
          "# TYPE idmint_connections_total counter\n"
          "idmint_connections_total{result=\"accepted\"} %llu\n"
          "idmint_connections_total{result=\"refused\"} %llu\n"
          "# HELP idmint_connections_open Connections open now.\n"
          "# TYPE idmint_connections_open gauge\n"
          "idmint_connections_open %llu\n",
      (unsigned long long)SUM(conns_accepted), (unsigned long long)SUM(conns_refused),
      (unsigned long long)SUM(conns_open));
  put(&o, "# HELP idmint_errors_total Protocol errors, timeouts and shed requests.\n"
          "# TYPE idmint_errors_total counter\n"
          "idmint_errors_total{kind=\"parse\"} %llu\n"
          "idmint_errors_total{kind=\"timeout\"} %llu\n"
          "idmint_errors_total{kind=\"overloaded\"} %llu\n"
          "idmint_errors_total{kind=\"h2_session\"} %llu\n",
      (unsigned long long)SUM(parse_errors), (unsigned long long)SUM(timeouts),
      (unsigned long long)SUM(overloaded), (unsigned long long)SUM(h2_sessions_failed));
  put(&o, "# HELP idmint_sends_total Coalesced socket sends and their bytes.\n"
          "# TYPE idmint_sends_total counter\n"
          "idmint_sends_total %llu\n"
          "idmint_send_bytes_total %llu\n",
      (unsigned long long)SUM(sends), (unsigned long long)SUM(send_bytes));
  put(&o, "# HELP idmint_audit_writes_total Audit log writes (each carries every batch line "
          "sealed while the thread's previous audit write or sync ran) and fdatasyncs.\n"
          "# TYPE idmint_audit_writes_total counter\n"
          "idmint_audit_writes_total %llu\n"
          "# TYPE idmint_audit_syncs_total counter\n"
          "idmint_audit_syncs_total %llu\n"
          "# HELP idmint_audit_prealloc_waits_total Times an audit write was held because "
          "preallocation had not zeroed its range yet (if it grows, raise audit_preallocate)\n"
          "# TYPE idmint_audit_prealloc_waits_total counter\n"
          "idmint_audit_prealloc_waits_total %llu\n",
      (unsigned long long)SUM(audit_writes), (unsigned long long)SUM(audit_syncs),
      (unsigned long long)SUM(audit_prealloc_waits));
  put(&o, "# HELP idmint_batch_seals_total Batches sealed, by what decided the seal.\n"
          "# TYPE idmint_batch_seals_total counter\n"
          "idmint_batch_seals_total{reason=\"saturated\"} %llu\n"
          "idmint_batch_seals_total{reason=\"idle\"} %llu\n"
          "idmint_batch_seals_total{reason=\"gap\"} %llu\n"
          "idmint_batch_seals_total{reason=\"single\"} %llu\n"
          "idmint_batch_seals_total{reason=\"other\"} %llu\n",
      (unsigned long long)SUM(seals[IDM_SEAL_SATURATED]),
      (unsigned long long)SUM(seals[IDM_SEAL_IDLE]), (unsigned long long)SUM(seals[IDM_SEAL_GAP]),
      (unsigned long long)SUM(seals[IDM_SEAL_SINGLE]),
      (unsigned long long)SUM(seals[IDM_SEAL_OTHER]));
  put(&o, "# HELP idmint_ready Whether the server is ready to issue (1) or not (0).\n"
          "# TYPE idmint_ready gauge\nidmint_ready %d\n", ready ? 1 : 0);
  if (o.overflow)
    return IDM_ERR_NOSPACE;
  *len = o.len;
  return IDM_OK;
}
