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

/* Shedding before the pipeline: when the batcher would refuse every credential (its
 * gathering batch full, every other slot awaiting its audit write), POST /v1/token answers
 * 503 at once — even for a body that would otherwise be a 400, i.e. before parsing. */
#include <stdlib.h>
#include <unistd.h>

#include "batch/audit.h"
#include "batch/batch.h"
#include "core/limits.h"
#include "crypto/keys.h"
#include "net/exchange.h"

Test(exchange, sheds_before_parsing_when_every_batch_awaits_its_line) {
  char dir[128], kd[160], logpath[160];
  snprintf(dir, sizeof dir, "/tmp/idm_router_test_%d_XXXXXX", getpid());
  cr_assert_not_null(mkdtemp(dir));
  snprintf(kd, sizeof kd, "%s/keys", dir);
  snprintf(logpath, sizeof logpath, "%s/audit.log", dir);
  idm_clock_t clk;
  idm_clock_set_s(&clk, 1800000000);
  idm_why_t why = {{0}};
  cr_assert_eq(idm_keys_new(kd, IDM_KEY_EDDSA, &clk, NULL, &why), IDM_OK, "%s", why.text);
  idm_keyring_t *kr = idm_keyring_load(kd, &clk, &why);
  cr_assert_not_null(kr, "%s", why.text);
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, &why);
  cr_assert_not_null(log, "%s", why.text);
  idm_batch_opts_t o = {.key = idm_keyring_signer(kr, IDM_KEY_EDDSA), .items_max = 1,
                        .log = log, .iss = "https://idmint.test", .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, &why), IDM_OK, "%s", why.text);
  idm_claims_t dc = {.iss = "https://idmint.test", .sub = "s", .sub_len = 1, .aud = "a",
                     .trust = "t"};
  idm_batch_item_t deny = {.allow = false, .claims = &dc, .target = "a", .reason = "test"};
  /* Every slot sealed and never written, then one more entry fills the gathering batch. */
  for (int i = 0; i < IDM_BATCH_INFLIGHT_MAX; i++) {
    cr_assert_eq(idm_batch_add(b, &deny, &why), IDM_OK, "%s", why.text);
    idm_batch_sealed_t sealed;
    cr_assert_eq(idm_batch_seal(b, &sealed, &why), IDM_OK, "%s", why.text);
  }
  cr_assert_eq(idm_batch_add(b, &deny, &why), IDM_OK, "%s", why.text);
  idm_exchange_ctx_t x;
  cr_assert_eq(idm_exchange_ctx_init(&x, 0, "t", 0, &clk, &met, &why), IDM_OK, "%s", why.text);
  x.batch = b;
  idm_router_t r = router();
  r.ex = &x;
  idm_http_req_t req;
  memset(&req, 0, sizeof req);
  static const char body[] = "grant_type=%zz"; /* a bad escape: 400 if it were parsed */
  req.body = (const uint8_t *)body;
  req.body_len = sizeof body - 1;
  idm_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  idm_exchange_http_token(&x, &r, &req, &resp);
  cr_assert_eq(resp.status, 503, "status %d: %.*s", resp.status, (int)resp.body_len, resp.body);
  cr_assert_eq(resp.retry_after_s, 1);
  /* With room in the batcher the same body is parsed and refused as malformed. */
  idm_batch_free(b);
  cr_assert_eq(idm_batch_new(&b, &o, &why), IDM_OK, "%s", why.text);
  x.batch = b;
  memset(&resp, 0, sizeof resp);
  idm_exchange_http_token(&x, &r, &req, &resp);
  cr_assert_eq(resp.status, 400, "status %d", resp.status);
  idm_exchange_ctx_cleanup(&x);
  idm_batch_free(b);
  idm_audit_close(log);
  idm_keyring_free(kr);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
}

/* A JSON body the JSON parser refuses: the reason is "JSON body: " and the parser's own
 * words. (Found by fuzz/exchange_http: the reason was formatted from the very buffer it was
 * written into, and came out garbled, e.g. "JSON body: JSON body: ey in JSON at ...".) */
#include "core/json.h"

Test(exchange, json_body_error_keeps_the_parser_reason) {
  idm_json_init();
  idm_exchange_ctx_t x;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_exchange_ctx_init(&x, 0, "t", 0, NULL, NULL, &why), IDM_OK, "%s", why.text);
  static const char *const bodies[] = {"{\"audience\":\"db\",\"audience\":\"db\"}", "{\"a\":",
                                       "[1,", "{\"scope\":\"\\u0000\"}"};
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
    idm_why_t direct = {{0}};
    idm_err_t e = IDM_OK;
    cr_assert_null(idm_json_parse(bodies[i], strlen(bodies[i]), &e, &direct));
    char want[sizeof why.text];
    snprintf(want, sizeof want, "JSON body: %s", idm_why_str(&direct, e));
    idm_exchange_req_t req;
    memset(&req, 0, sizeof req);
    idm_arena_reset(&x.arena);
    memset(&why, 0, sizeof why);
    idm_view_t ct = {"application/json", 16};
    cr_assert_eq(idm_exchange_parse(&x, &req, ct, (const uint8_t *)bodies[i], strlen(bodies[i]),
                                    &why),
                 IDM_ERR_EXCHANGE_REQUEST);
    cr_assert_str_eq(why.text, want, "body %s", bodies[i]);
  }
  idm_exchange_ctx_cleanup(&x);
}
