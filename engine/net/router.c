/* Routing by exact path, then method. The token-issuing endpoints live in exchange.c;
 * the fixed documents (discovery, JWKS) are served from the snapshot without copying.
 * Each response's outcome and latency are counted here, once, for every protocol. */
#define _GNU_SOURCE
#include "net/router.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonw.h"
#include "batch/audit.h"
#include "net/exchange.h"

#define PATH_IS(req, lit) ((req)->path.len == sizeof(lit) - 1 && !memcmp((req)->path.ptr, lit, sizeof(lit) - 1))

idm_endpoint_t idm_route_endpoint(const idm_http_req_t *req) {
  if (!req->path.ptr)
    return IDM_EP_OTHER;
  if (PATH_IS(req, "/v1/token"))
    return IDM_EP_TOKEN;
  if (PATH_IS(req, "/v1/introspect"))
    return IDM_EP_INTROSPECT;
  if (req->path.len >= 9 && !memcmp(req->path.ptr, "/v1/authz", 9) &&
      (req->path.len == 9 || req->path.ptr[9] == '/'))
    return IDM_EP_AUTHZ;
  if (PATH_IS(req, "/.well-known/openid-configuration") ||
      PATH_IS(req, "/.well-known/oauth-authorization-server"))
    return IDM_EP_DISCOVERY;
  if (PATH_IS(req, "/.well-known/jwks.json"))
    return IDM_EP_JWKS;
  if (PATH_IS(req, "/healthz"))
    return IDM_EP_HEALTHZ;
  if (PATH_IS(req, "/readyz"))
    return IDM_EP_READYZ;
  if (PATH_IS(req, "/metrics"))
    return IDM_EP_METRICS;
  return IDM_EP_OTHER;
}

idm_outcome_t idm_route_outcome(const idm_http_resp_t *resp) {
  int s = resp->status;
  if (s < 400)
    return IDM_OC_OK;
  if (s == 403)
    return IDM_OC_DENIED;
  if (s == 404 || s == 405)
    return IDM_OC_NOT_FOUND;
  if (s == 503)
    return IDM_OC_OVERLOADED;
  if (s >= 500)
    return IDM_OC_ERROR;
  if (s == 400 && resp->body && resp->body_len > 10) {
    if (memmem(resp->body, resp->body_len, "\"invalid_grant\"", 15))
      return IDM_OC_INVALID_GRANT;
    if (memmem(resp->body, resp->body_len, "\"invalid_target\"", 16))
      return IDM_OC_INVALID_TARGET;
  }
  return IDM_OC_INVALID_REQUEST;
}

void idm_route_json(idm_http_resp_t *resp, int status, const char *body, size_t len,
                    bool no_store) {
  resp->status = status;
  resp->content_type = "application/json";
  resp->body = body;
  resp->body_len = len;
  resp->no_store = no_store;
}

void idm_route_error(idm_router_t *r, idm_http_resp_t *resp, int status, const char *error,
                     const char *description) {
  idm_jsonw_t w;
  idm_jsonw_init(&w, r->scratch, r->scratch_cap);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "error");
  idm_jsonw_str(&w, error);
  if (description) {
    idm_jsonw_key(&w, "error_description");
    idm_jsonw_str(&w, description);
  }
  idm_jsonw_obj_end(&w);
  size_t len = 0;
  if (idm_jsonw_finish(&w, &len) != IDM_OK) {
    static const char fallback[] = "{\"error\":\"server_error\"}";
    idm_route_json(resp, status, fallback, sizeof fallback - 1, true);
  } else {
    idm_route_json(resp, status, r->scratch, len, true);
  }
}

static void text(idm_http_resp_t *resp, int status, const char *body) {
  resp->status = status;
  resp->content_type = "text/plain; charset=utf-8";
  resp->body = body;
  resp->body_len = strlen(body);
  resp->no_store = true;
}

static bool method_ok(idm_router_t *r, const idm_http_req_t *req, idm_http_resp_t *resp,
                      bool get, bool post) {
  if ((get && (req->method == IDM_HTTP_GET || req->method == IDM_HTTP_HEAD)) ||
      (post && req->method == IDM_HTTP_POST))
    return true;
  idm_route_error(r, resp, 405, "invalid_request", "method not allowed on this endpoint");
  resp->allow = get && post ? "GET, HEAD, POST" : get ? "GET, HEAD" : "POST";
  return false;
}

static void readyz(idm_router_t *r, idm_http_resp_t *resp) {
  const char *why = r->draining ? "draining: shutting down" : r->not_ready;
  idm_why_t audit_why = {{0}};
  if (!why && r->audit && idm_audit_failed(r->audit, &audit_why)) {
    snprintf(r->scratch, r->scratch_cap, "audit log failed, issuance stopped: %s",
             audit_why.text[0] ? audit_why.text : "write error");
    why = r->scratch + r->scratch_cap / 2;
    memmove((char *)why, r->scratch, strlen(r->scratch) + 1);
  }
  if (!r->snap)
    why = "no configuration loaded";
  if (why) {
    size_t n = strlen(why);
    if (n + 16 > r->scratch_cap)
      n = r->scratch_cap - 16;
    memcpy(r->scratch, "not ready: ", 11);
    memcpy(r->scratch + 11, why, n);
    r->scratch[11 + n] = '\n';
    resp->status = 503;
    resp->content_type = "text/plain; charset=utf-8";
    resp->body = r->scratch;
    resp->body_len = 12 + n;
    resp->no_store = true;
    resp->retry_after_s = 1;
    return;
  }
  text(resp, 200, "ready\n");
}

static void metrics(idm_router_t *r, idm_http_resp_t *resp) {
  size_t len = 0;
  const char *const *names = r->snap ? r->snap->target_names : NULL;
  size_t tc = r->snap ? r->snap->target_count : 0;
  int ready = r->snap && !r->not_ready && !r->draining;
  if (idm_metrics_render(r->scratch, r->scratch_cap, &len, r->all_metrics, r->thread_count, names,
                         tc, ready) != IDM_OK) {
    idm_route_error(r, resp, 500, "server_error", "metrics exceed the response buffer");
    return;
  }
  resp->status = 200;
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  resp->body = r->scratch;
  resp->body_len = len;
  resp->no_store = true;
}

static void dispatch(idm_router_t *r, idm_endpoint_t ep, const idm_http_req_t *req,
                     idm_http_resp_t *resp) {
  switch (ep) {
  case IDM_EP_HEALTHZ:
    if (method_ok(r, req, resp, true, false))
      text(resp, 200, "ok\n");
    return;
  case IDM_EP_READYZ:
    if (method_ok(r, req, resp, true, false))
      readyz(r, resp);
    return;
  case IDM_EP_METRICS:
    if (method_ok(r, req, resp, true, false))
      metrics(r, resp);
    return;
  default:
    break;
  }
  if (!r->snap) {
    idm_route_error(r, resp, 503, "temporarily_unavailable", "no configuration loaded");
    resp->retry_after_s = 1;
    return;
  }
  switch (ep) {
  case IDM_EP_DISCOVERY:
    if (method_ok(r, req, resp, true, false))
      idm_route_json(resp, 200, r->snap->discovery, r->snap->discovery_len, false);
    return;
  case IDM_EP_JWKS:
    if (method_ok(r, req, resp, true, false)) {
      resp->status = 200;
      resp->content_type = "application/jwk-set+json";
      resp->body = r->snap->jwks_json;
      resp->body_len = r->snap->jwks_len;
    }
    return;
  case IDM_EP_TOKEN:
  case IDM_EP_INTROSPECT:
  case IDM_EP_AUTHZ:
    if (ep == IDM_EP_AUTHZ ? !method_ok(r, req, resp, true, true)
                           : !method_ok(r, req, resp, false, true))
      return;
    if (r->overloaded) {
      idm_route_error(r, resp, 503, "temporarily_unavailable",
                      "server overloaded, retry shortly");
      resp->retry_after_s = 1;
      IDM_MET_INC(&r->m->overloaded);
      return;
    }
    if (!r->ex) {
      idm_route_error(r, resp, 503, "temporarily_unavailable", "issuance is not configured");
      resp->retry_after_s = 1;
      return;
    }
    if (ep == IDM_EP_TOKEN)
      idm_exchange_http_token(r->ex, r, req, resp);
    else if (ep == IDM_EP_INTROSPECT)
      idm_exchange_http_introspect(r->ex, r, req, resp);
    else
      idm_exchange_http_authz(r->ex, r, req, resp);
    return;
  default:
    idm_route_error(r, resp, 404, "not_found", "no such endpoint");
    return;
  }
}

void idm_route_count(idm_router_t *r, idm_endpoint_t ep, const idm_http_resp_t *resp,
                     int64_t start_ns) {
  if (!r->m)
    return;
  int64_t lat = start_ns ? idm_clock_mono_ns() - start_ns : 0;
  idm_metrics_request(r->m, ep, idm_route_outcome(resp), lat);
}

void idm_route(idm_router_t *r, const idm_http_req_t *req, idm_http_resp_t *resp) {
  memset(resp, 0, sizeof *resp);
  idm_endpoint_t ep = idm_route_endpoint(req);
  dispatch(r, ep, req, resp);
  if (r->draining)
    resp->close = true;
  if (!resp->deferred)
    idm_route_count(r, ep, resp, req->start_ns);
}
