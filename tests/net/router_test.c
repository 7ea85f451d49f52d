/* Router and metrics without a network: routing, methods, fixed documents, readiness,
 * the Prometheus text format. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <string.h>

#include "net/metrics.h"
#include "net/router.h"
#include "net/snapshot.h"

static char scratch[IDM_NET_RESP_BODY_MAX_BYTES];
static idm_metrics_t met;
static idm_metrics_t *all[1] = {&met};

static idm_router_t router(void) {
  idm_router_t r;
  memset(&r, 0, sizeof r);
  r.m = &met;
  r.all_metrics = all;
  r.thread_count = 1;
  r.scratch = scratch;
  r.scratch_cap = sizeof scratch;
  return r;
}

static idm_http_resp_t get(idm_router_t *r, const char *method, const char *target) {
  idm_http_req_t req;
  memset(&req, 0, sizeof req);
  idm_http_req_method(&req, method, strlen(method));
  idm_http_req_target(&req, target, strlen(target));
  idm_http_resp_t resp;
  idm_route(r, &req, &resp);
  return resp;
}

Test(router, health_and_unknown) {
  memset(&met, 0, sizeof met);
  idm_router_t r = router();
  idm_http_resp_t x = get(&r, "GET", "/healthz?probe=1");
  cr_assert_eq(x.status, 200);
  cr_assert(x.body_len == 3 && !memcmp(x.body, "ok\n", 3));
  x = get(&r, "GET", "/nope");
  cr_assert_eq(x.status, 503, "no configuration: only health endpoints answer");
  idm_snapshot_t snap;
  memset(&snap, 0, sizeof snap);
  r.snap = &snap;
  x = get(&r, "GET", "/nope");
  cr_assert_eq(x.status, 404);
  cr_assert(strstr(x.body, "\"error\":\"not_found\""));
  x = get(&r, "PUT", "/healthz");
  cr_assert_eq(x.status, 405);
  cr_assert_str_eq(x.allow, "GET, HEAD");
  x = get(&r, "GET", "/v1/token");
  cr_assert_eq(x.status, 405);
  cr_assert_str_eq(x.allow, "POST");
  cr_assert_eq(met.requests[IDM_EP_HEALTHZ][IDM_OC_OK], 1);
  cr_assert_eq(met.requests[IDM_EP_OTHER][IDM_OC_NOT_FOUND], 1);
  cr_assert_eq(met.requests[IDM_EP_OTHER][IDM_OC_OVERLOADED], 1);
}

Test(router, readiness) {
  idm_router_t r = router();
  idm_http_resp_t x = get(&r, "GET", "/readyz");
  cr_assert_eq(x.status, 503, "no snapshot: not ready");
  cr_assert_eq(x.retry_after_s, 1);
  idm_snapshot_t snap;
  memset(&snap, 0, sizeof snap);
  r.snap = &snap;
  x = get(&r, "GET", "/readyz");
  cr_assert_eq(x.status, 200);
  r.draining = true;
  x = get(&r, "GET", "/readyz");
  cr_assert_eq(x.status, 503);
  cr_assert(memmem(x.body, x.body_len, "draining", 8));
  cr_assert(x.close, "draining closes connections after the answer");
}

Test(router, endpoints_by_path) {
  idm_http_req_t req;
  memset(&req, 0, sizeof req);
  const struct { const char *p; idm_endpoint_t ep; } cases[] = {
      {"/v1/token", IDM_EP_TOKEN}, {"/v1/introspect", IDM_EP_INTROSPECT},
      {"/v1/authz", IDM_EP_AUTHZ}, {"/v1/authz/a/b", IDM_EP_AUTHZ},
      {"/v1/authzx", IDM_EP_OTHER}, {"/.well-known/jwks.json", IDM_EP_JWKS},
      {"/.well-known/openid-configuration", IDM_EP_DISCOVERY}, {"/metrics", IDM_EP_METRICS},
      {"/v1/token/", IDM_EP_OTHER}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    idm_http_req_target(&req, cases[i].p, strlen(cases[i].p));
    cr_assert_eq(idm_route_endpoint(&req), cases[i].ep, "%s", cases[i].p);
  }
}

Test(router, discovery_document) {
  size_t len = 0;
  char *d = idm_discovery_json("https://idmint.example/", &len);
  cr_assert_not_null(d);
  cr_assert(strstr(d, "\"issuer\":\"https://idmint.example/\""));
  cr_assert(strstr(d, "\"jwks_uri\":\"https://idmint.example/.well-known/jwks.json\""));
  cr_assert(strstr(d, "\"token_endpoint\":\"https://idmint.example/v1/token\""));
  cr_assert(strstr(d, "urn:ietf:params:oauth:grant-type:token-exchange"));
  free(d);
}

Test(metrics, prometheus_text) {
  idm_metrics_t m;
  memset(&m, 0, sizeof m);
  idm_metrics_request(&m, IDM_EP_TOKEN, IDM_OC_OK, 300000);     /* 300 us */
  idm_metrics_request(&m, IDM_EP_TOKEN, IDM_OC_DENIED, 3000000); /* 3 ms */
  m.minted[1] = 7;
  idm_metrics_t *t[1] = {&m};
  const char *names[2] = {"a", "b\"q"};
  static char out[16384];
  size_t len = 0;
  cr_assert_eq(idm_metrics_render(out, sizeof out, &len, t, 1, names, 2, 1), IDM_OK);
  out[len] = 0;
  cr_assert(strstr(out, "idmint_http_requests_total{endpoint=\"token\",outcome=\"ok\"} 1\n"));
  cr_assert(strstr(out, "idmint_http_requests_total{endpoint=\"token\",outcome=\"access_denied\"} 1\n"));
  cr_assert(strstr(out, "idmint_http_request_duration_seconds_bucket{le=\"0.0005\"} 1\n"), "%s", out);
  cr_assert(strstr(out, "idmint_http_request_duration_seconds_bucket{le=\"0.005\"} 2\n"));
  cr_assert(strstr(out, "idmint_http_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
  cr_assert(strstr(out, "idmint_tokens_minted_total{target=\"b\\\"q\"} 7\n"), "label escaped");
  cr_assert(strstr(out, "# TYPE idmint_http_request_duration_seconds histogram\n"));
  cr_assert_eq(idm_metrics_render(out, 100, &len, t, 1, names, 2, 1), IDM_ERR_NOSPACE);
}
