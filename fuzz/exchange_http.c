/* Fuzz target: the credential endpoints behind the HTTP layers, through the router with a
 * real configuration snapshot — POST /v1/token (form and JSON bodies: idm_exchange_parse),
 * POST /v1/introspect (its form body), GET|POST /v1/authz (X-Idmint-Subject-Token,
 * Authorization: Bearer, X-Idmint-Target, X-Idmint-Scope), and the trusted-proxy headers
 * X-Forwarded-For and X-Idmint-Posture (idm_exchange_context).
 *
 * At start the harness writes a configuration in a temporary directory: a fixed Ed25519
 * signing key (fuzz_files.h), an oidc trust whose JWKS holds a second fixed key (the
 * "issuer"), a jwt target and a batch target, a permit that needs posture and a source
 * address from a trusted proxy. The clock is fixed, so the seeds' subject tokens (signed
 * by the issuer key) and introspected tokens (signed by the signing key) never expire.
 *
 * Input: byte 0 picks the endpoint (bits 0-1), the Content-Type (bits 2-4), the peer
 * (bits 5-6: 127.0.0.1 and ::1 are trusted proxies, 10.9.8.7 is not, or no address) and
 * the method (bit 7: GET instead of POST). Then six lines (each ending in '\n'; an empty
 * line is an absent header): X-Forwarded-For, X-Idmint-Posture, Authorization,
 * X-Idmint-Subject-Token, X-Idmint-Target, X-Idmint-Scope; the rest is the body. An input
 * whose header lines hold a control byte other than HTAB is skipped: both HTTP layers
 * refuse such a field value, so the router never sees it.
 *
 * Properties: no crash, leak or sanitizer report; every answer has a known status and,
 * when it has a JSON body, the body parses and names an error (with a description) or is
 * the endpoint's success document; every credential issued (200 from /v1/token or
 * /v1/authz) verifies against the snapshot's own keys once its batch is sealed and is
 * reported active by /v1/introspect; every credential and every denial by policy is in
 * the audit line of its batch, and that line verifies (chain, signature, entries).
 * IDM_FUZZ_WRITE_SEEDS=DIR writes the seed corpus (tokens signed by the fixed keys). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch/audit.h"
#include "batch/batch.h"
#include "batch/verify_engine.h"
#include "core/limits.h"
#include "fuzz_files.h"
#include "net/exchange.h"
#include "net/router.h"
#include "net/snapshot.h"

#define NOW 1800000000LL

static char dir[128];
static idm_clock_t clk;
static idm_snapshot_t *snap;
static idm_exchange_ctx_t x;
static idm_batch_t *batch;
static idm_router_t router;
static idm_metrics_t met;
static idm_metrics_t *all_met[1] = {&met};
static char scratch[IDM_NET_RESP_BODY_MAX_BYTES];
static idm_arena_t varena;
static fz_edkey_t issuer;
static idm_audit_log_t *audit;
static idm_audit_verifier_t aver;
static char audit_path[192];
static unsigned runs_since_rotate;
static idm_exchange_res_t pend_res;
static bool pend_used, pend_done;
static idm_err_t pend_err;

static idm_exchange_res_t *pend_get(void *ud, void **cookie) {
  (void)ud;
  if (pend_used)
    abort(); /* one request at a time: the previous one was answered */
  pend_used = true;
  *cookie = &pend_res;
  return &pend_res;
}

static void pend_put(void *ud, void *cookie) {
  (void)ud;
  if (cookie != &pend_res || !pend_used)
    abort();
  pend_used = false;
}

static void on_done(void *cookie, idm_err_t err, void *ctx) {
  (void)ctx;
  if (cookie != &pend_res || pend_done)
    abort();
  pend_done = true;
  pend_err = err;
}

static const char *const conf =
    "server {\n"
    "  listen \"127.0.0.1:1\"\n"
    "  issuer \"http://idmint.fuzz\"\n"
    "  keys \"keys\"\n"
    "  trusted_proxies [127.0.0.1/32, ::1/128]\n"
    "}\n"
    "trust \"wl\" {\n"
    "  kind oidc\n"
    "  issuer \"https://issuer.fuzz\"\n"
    "  jwks \"issuer.jwks.json\"\n"
    "  audience \"idmint\"\n"
    "}\n"
    "target \"db\" {\n"
    "  audience \"spiffe://fuzz/db\"\n"
    "  format jwt\n"
    "  alg EdDSA\n"
    "  ttl 5m\n"
    "}\n"
    "target \"cache\" {\n"
    "  audience \"spiffe://fuzz/cache\"\n"
    "  format batch\n"
    "  ttl 2m\n"
    "}\n"
    "permit \"readers\" {\n"
    "  client trust == \"wl\"\n"
    "  target \"db\"\n"
    "  scope \"db.read db.write\"\n"
    "}\n"
    "permit \"edge\" {\n"
    "  client trust == \"wl\" and claims.team == \"edge\"\n"
    "  target \"cache\"\n"
    "  when source_ip in 10.0.0.0/8 and posture.tier == \"gold\"\n"
    "  scope \"cache.read\"\n"
    "  ttl 1m\n"
    "}\n"
    "forbid \"no-bad\" {\n"
    "  client subject like \"bad-*\"\n"
    "}\n";

/* A fresh audit log, batcher and verifier (at start, and every few thousand inputs so the
 * log does not grow without end). */
static void open_audit(void) {
  if (batch) {
    idm_batch_free(batch);
    idm_audit_close(audit);
    idm_audit_verifier_cleanup(&aver);
  }
  unlink(audit_path);
  idm_why_t why = {{0}};
  audit = idm_audit_open(audit_path, NULL, &why);
  idm_batch_opts_t bo = {.key = idm_keyring_signer(snap->keys, IDM_KEY_EDDSA), .items_max = 4,
                         .log = audit, .iss = "http://idmint.fuzz", .clk = &clk};
  if (!audit || idm_batch_new(&batch, &bo, &why) || idm_audit_verifier_init(&aver, snap->own_jwks)) {
    fprintf(stderr, "exchange_http: audit: %s\n", why.text);
    abort();
  }
  x.batch = batch;
  runs_since_rotate = 0;
}

/* Seals what the request queued: its one decision must be in the line, and the line must
 * verify (chain, signature, every entry) whatever hostile strings it records. */
static void seal_one(bool want_entry) {
  idm_why_t why = {{0}};
  idm_batch_sealed_t s;
  memset(&s, 0, sizeof s);
  idm_err_t e = idm_batch_pending(batch) ? idm_batch_seal_sync(batch, on_done, NULL, &s, &why)
                                         : IDM_ERR_BATCH_EMPTY;
  if (want_entry && (e || s.entries != 1)) {
    fprintf(stderr, "exchange_http: decision not recorded: %s (%zu entries)\n",
            e ? idm_why_str(&why, e) : "", s.entries);
    abort();
  }
  if (e)
    return;
  if (!s.record || s.record_len < 2 ||
      idm_audit_verify_line(&aver, s.record, s.record_len - 1, &why)) {
    fprintf(stderr, "exchange_http: audit line refused: %s\n%.*s\n", why.text,
            (int)s.record_len, s.record ? s.record : "");
    abort();
  }
}

static void setup(void) {
  idm_json_init();
  idm_clock_set_s(&clk, NOW);
  fz_tmpdir(dir, sizeof dir, "exchange");
  char path[256], kd[192], buf[2048];
  snprintf(kd, sizeof kd, "%s/keys", dir);
  if (mkdir(kd, 0700))
    abort();
  fz_edkey_t signer;
  fz_edkey(&signer, 11);
  snprintf(path, sizeof path, "%s/%s.json", kd, signer.kid);
  int n = fz_keyfile(buf, sizeof buf, &signer, NOW - 3600);
  fz_write(path, buf, (size_t)n, 0600);
  fz_edkey(&issuer, 77);
  n = snprintf(buf, sizeof buf,
               "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"iss-1\","
               "\"alg\":\"EdDSA\",\"use\":\"sig\"}]}",
               issuer.x);
  snprintf(path, sizeof path, "%s/issuer.jwks.json", dir);
  fz_write(path, buf, (size_t)n, 0600);
  snprintf(path, sizeof path, "%s/idmint.conf", dir);
  fz_write(path, conf, strlen(conf), 0600);
  idm_err_t err;
  idm_why_t why = {{0}};
  snap = idm_snapshot_load(path, &clk, &err, &why);
  if (!snap) {
    fprintf(stderr, "exchange_http: %s\n", why.text);
    abort();
  }
  snap->gen = 1;
  if (idm_exchange_ctx_init(&x, 0, "fz", 64, &clk, &met, &why))
    abort();
  idm_exchange_ctx_set_snapshot(&x, snap);
  snprintf(audit_path, sizeof audit_path, "%s/audit.log", dir);
  open_audit();
  router.snap = snap;
  router.ex = &x;
  router.m = &met;
  router.all_metrics = all_met;
  router.thread_count = 1;
  router.scratch = scratch;
  router.scratch_cap = sizeof scratch;
  router.pend_get = pend_get;
  router.pend_put = pend_put;
  if (idm_arena_init(&varena, 1 << 20))
    abort();
}

/* A compact JWS of the issuer key over the claims. */
static size_t issuer_token(char *out, size_t cap, const char *claims) {
  static const char hdr[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"iss-1\"}";
  size_t n = idm_b64url_encode(out, cap, (const uint8_t *)hdr, sizeof hdr - 1);
  out[n++] = '.';
  n += idm_b64url_encode(out + n, cap - n, (const uint8_t *)claims, strlen(claims));
  uint8_t sig[64];
  if (!ED25519_sign(sig, (const uint8_t *)out, n, issuer.priv))
    abort();
  out[n++] = '.';
  n += idm_b64url_encode(out + n, cap - n, sig, 64);
  out[n] = 0;
  return n;
}

/* Checks a credential we issued: it verifies against our own keys, and introspection
 * through the router says it is active. */
static void check_issued(const char *tok, size_t len) {
  idm_arena_reset(&varena);
  json_t *claims = NULL;
  idm_why_t why = {{0}};
  if (idm_verifier_check(snap->own_verifier, &varena, tok, len, NOW, NULL, &claims, &why) ||
      !claims) {
    fprintf(stderr, "exchange_http: issued token does not verify: %s\n%.*s\n", why.text,
            (int)len, tok);
    abort();
  }
  static char body[IDM_TOKEN_MAX + 16];
  int n = snprintf(body, sizeof body, "token=%.*s", (int)len, tok);
  idm_http_req_t req;
  memset(&req, 0, sizeof req);
  idm_http_req_method(&req, "POST", 4);
  idm_http_req_target(&req, "/v1/introspect", 14);
  req.body = (const uint8_t *)body;
  req.body_len = (size_t)n;
  idm_http_resp_t resp;
  idm_route(&router, &req, &resp);
  if (resp.status != 200 || !memmem(resp.body, resp.body_len, "\"active\":true", 13)) {
    fprintf(stderr, "exchange_http: issued token not active: %d %.*s\n", resp.status,
            (int)resp.body_len, resp.body);
    abort();
  }
}

static const char *const content_types[8] = {
    NULL, "application/x-www-form-urlencoded", "application/json",
    "application/json; charset=utf-8", "application/x-www-form-urlencoded;charset=UTF-8",
    "text/plain", "", "APPLICATION/JSON"};

static void run(const uint8_t *data, size_t size) {
  if (size < 1 || size > IDM_NET_BODY_MAX_BYTES + 8192)
    return;
  uint8_t ctl = data[0];
  data++, size--;
  idm_http_req_t req;
  memset(&req, 0, sizeof req);
  static const char *const paths[4] = {"/v1/token", "/v1/introspect", "/v1/authz/check",
                                       "/v1/authz"};
  int ep = ctl & 3;
  bool get = ctl & 0x80;
  idm_http_req_method(&req, get ? "GET" : "POST", get ? 3 : 4);
  idm_http_req_target(&req, paths[ep], strlen(paths[ep]));
  const char *ct = content_types[(ctl >> 2) & 7];
  if (ct)
    req.content_type = (idm_view_t){ct, (uint32_t)strlen(ct)};
  switch ((ctl >> 5) & 3) {
  case 0: req.peer[0] = 127, req.peer[3] = 1, req.peer_family = 4; break;
  case 1: req.peer[0] = 10, req.peer[1] = 9, req.peer[2] = 8, req.peer[3] = 7, req.peer_family = 4; break;
  case 2: req.peer[15] = 1, req.peer_family = 6; break;
  default: break;
  }
  idm_view_t *hdr[6] = {&req.forwarded_for, &req.posture, &req.authorization,
                        &req.subject_token, &req.target, &req.scope};
  size_t off = 0;
  for (int i = 0; i < 6 && off < size; i++) {
    const uint8_t *nl = memchr(data + off, '\n', size - off);
    size_t end = nl ? (size_t)(nl - data) : size;
    /* What the HTTP layers let through: a field value with a control byte other than
     * HTAB never reaches the router (http1.c refuses it; so does nghttp2). */
    for (size_t k = off; k < end; k++)
      if ((data[k] < 0x20 && data[k] != '\t') || data[k] == 0x7f)
        return;
    if (end > off)
      *hdr[i] = (idm_view_t){(const char *)data + off, (uint32_t)(end - off)};
    off = nl ? end + 1 : size;
  }
  /* The body in its own allocation, so ASan sees any read past it. */
  size_t blen = size - off;
  uint8_t *body = malloc(blen ? blen : 1);
  memcpy(body, data + off, blen);
  req.body = body;
  req.body_len = blen;

  idm_http_resp_t resp;
  pend_done = false;
  idm_route(&router, &req, &resp);
  bool authz = ep >= 2;
  if (resp.deferred) {
    seal_one(true);
    if (!pend_done || pend_err)
      abort();
    memset(&resp, 0, sizeof resp);
    idm_exchange_http_reply(&router, authz, &pend_res, &resp);
    pend_put(NULL, &pend_res);
  } else {
    seal_one(resp.status == 403); /* every denial by policy is recorded */
  }
  if (pend_used || idm_batch_inflight(batch))
    abort();
  if (getenv("IDM_FUZZ_VERBOSE"))
    fprintf(stderr, "exchange_http: %d %.*s%s\n", resp.status, (int)resp.body_len,
            resp.body ? resp.body : "", resp.token ? " (token)" : "");
  switch (resp.status) {
  case 200: case 400: case 401: case 403: case 404: case 405: case 413: case 415: case 503:
    break;
  default:
    fprintf(stderr, "exchange_http: status %d\n", resp.status);
    abort();
  }
  char tok[IDM_TOKEN_MAX];
  size_t tok_len = 0;
  if (resp.body_len && resp.content_type && strstr(resp.content_type, "json")) {
    json_error_t je;
    json_t *o = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
      fprintf(stderr, "exchange_http: body is not a JSON object: %.*s\n", (int)resp.body_len,
              resp.body);
      abort();
    }
    json_t *err = json_object_get(o, "error");
    if (resp.status != 200) {
      const char *d = json_string_value(json_object_get(o, "error_description"));
      if (!json_is_string(err) || !d || !d[0])
        abort(); /* an error without its name or reason */
    } else if (ep == 1) {
      if (!json_is_boolean(json_object_get(o, "active")))
        abort();
    } else if (!authz) {
      const char *t = json_string_value(json_object_get(o, "access_token"));
      if (!t || strlen(t) >= sizeof tok ||
          !json_is_integer(json_object_get(o, "expires_in")))
        abort();
      tok_len = strlen(t);
      memcpy(tok, t, tok_len);
    }
    json_decref(o);
  }
  if (authz && resp.status == 200) {
    if (!resp.token || !resp.token_len || resp.token_len >= sizeof tok)
      abort();
    memcpy(tok, resp.token, resp.token_len);
    tok_len = resp.token_len;
  }
  if (resp.status == 200 && ep != 1 && !tok_len)
    abort(); /* a 200 credential answer without a credential */
  if (tok_len)
    check_issued(tok, tok_len);
  free(body);
}

static const char *seed_dir;

static void seed(const char *name, int ctl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seed(const char *name, int ctl, const char *fmt, ...) {
  static char buf[8192];
  buf[0] = (char)ctl;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + 1, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof buf - 1)
    abort();
  char path[512];
  snprintf(path, sizeof path, "%s/%s", seed_dir, name);
  fz_write(path, buf, (size_t)n + 1, 0644);
}

#define CLAIMS(...)                                                                         \
  snprintf(claims, sizeof claims,                                                           \
           "{\"iss\":\"https://issuer.fuzz\",\"sub\":\"%s\",\"aud\":\"idmint\",\"iat\":%lld,"  \
           "\"nbf\":%lld,\"exp\":%lld%s}",                                                       \
           __VA_ARGS__)

static void write_seeds(void) {
  char ok[1024], edge[1024], bad[1024], old[1024], claims[512];
  CLAIMS("svc-a", NOW - 60, NOW - 60, NOW + 3600, "");
  issuer_token(ok, sizeof ok, claims);
  CLAIMS("svc-e", NOW - 60, NOW - 60, NOW + 3600, ",\"team\":\"edge\"");
  issuer_token(edge, sizeof edge, claims);
  CLAIMS("bad-1", NOW - 60, NOW - 60, NOW + 3600, "");
  issuer_token(bad, sizeof bad, claims);
  CLAIMS("svc-a", NOW - 7200, NOW - 7200, NOW - 3600, "");
  issuer_token(old, sizeof old, claims);
  const char *gt = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
                   "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt";
  const char *gtj = "\"grant_type\":\"urn:ietf:params:oauth:grant-type:token-exchange\","
                    "\"subject_token_type\":\"urn:ietf:params:oauth:token-type:jwt\"";
  const int form = 1 << 2, json = 2 << 2;
  seed("token-form-db", form, "\n\n\n\n\n\n%s&audience=db&subject_token=%s", gt, ok);
  seed("token-form-nocontenttype", 0,
       "\n\n\n\n\n\n%s&audience=spiffe%%3A%%2F%%2Ffuzz%%2Fdb&scope=db.read&subject_token=%s", gt, ok);
  seed("token-form-edge-posture", form,
       "198.51.100.1, 10.1.2.3\ntier=gold, os = linux\n\n\n\n\n%s&audience=cache&subject_token=%s",
       gt, edge);
  seed("token-form-edge-untrusted", form | 1 << 5,
       "10.1.2.3\ntier=gold\n\n\n\n\n%s&audience=cache&subject_token=%s", gt, edge);
  seed("token-form-edge-v6proxy", form | 2 << 5,
       "::ffff:10.0.0.1\ntier=gold,,=x,y\n\n\n\n\n%s&audience=cache&scope=cache.read&subject_token=%s",
       gt, edge);
  seed("token-form-forbidden", form, "\n\n\n\n\n\n%s&audience=db&subject_token=%s", gt, bad);
  seed("token-form-expired", form, "\n\n\n\n\n\n%s&audience=db&subject_token=%s", gt, old);
  seed("token-form-scope-denied", form, "\n\n\n\n\n\n%s&audience=db&scope=db.admin&subject_token=%s",
       gt, ok);
  seed("token-form-repeated", form,
       "\n\n\n\n\n\n%s&audience=db&audience=cache&subject_token=%s", gt, ok);
  seed("token-form-escapes", 4 << 2,
       "\n\n\n\n\n\n%s&audience=d%%62&scope=db.read+db.write&client_id=x&subject_token=%s&&=&bad=%%zz",
       gt, ok);
  seed("token-form-unknown-target", form, "\n\n\n\n\n\n%s&audience=nope&subject_token=%s", gt, ok);
  seed("token-json", json, "\n\n\n\n\n\n{%s,\"audience\":\"db\",\"scope\":\"db.read\",\"subject_token\":\"%s\"}",
       gtj, ok);
  seed("token-json-charset", 3 << 2,
       "\n\n\n\n\n\n{%s,\"audience\":\"cache\",\"subject_token\":\"%s\",\"scope\":1}", gtj, ok);
  seed("token-json-dup", 7 << 2, "\n\n\n\n\n\n{\"audience\":\"db\",\"audience\":\"db\",\"x\":[\"\\u0000\"]}");
  seed("token-json-nul", json, "\n\n\n\n\n\n{%s,\"audience\":\"d\\u0000b\",\"subject_token\":\"%s\"}", gtj, ok);
  seed("token-text", 5 << 2, "\n\n\n\n\n\n%s&subject_token=%s", gt, ok);
  seed("authz-header", 2, "\n\n\n%s\ndb\ndb.read\n", ok);
  seed("authz-bearer", 3 | 0x80, "10.0.0.9\ntier=gold\nBearer %s\n\ncache\n\n", edge);
  seed("authz-missing", 2, "\n\n\n\n\n\n");
  /* Introspection of credentials issued now (the signing key and the clock are fixed). */
  char req[4096];
  int n = snprintf(req, sizeof req, "%c\n\n\n\n\n\n%s&audience=db&subject_token=%s", form, gt, ok);
  run((const uint8_t *)req, (size_t)n);
  if (pend_res.status != 200)
    abort();
  seed("introspect-jwt", 1 | form, "\n\n\n\n\n\ntoken_type_hint=access_token&token=%s",
       pend_res.token);
  n = snprintf(req, sizeof req, "%c198.51.100.1, 10.1.2.3\ntier=gold\n\n\n\n\n%s&audience=cache&subject_token=%s",
               form, gt, edge);
  run((const uint8_t *)req, (size_t)n);
  if (pend_res.status != 200)
    abort();
  seed("introspect-batch", 1, "\n\n\n\n\n\ntoken=%s", pend_res.token);
  seed("introspect-bad", 1 | form, "\n\n\n\n\n\ntoken=a.b.c&token=x");
  seed("introspect-json", 1 | json, "\n\n\n\n\n\n{\"token\":\"x\"}");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!snap) {
    setup();
    seed_dir = getenv("IDM_FUZZ_WRITE_SEEDS");
    if (seed_dir)
      write_seeds();
  }
  run(data, size);
  if (++runs_since_rotate >= 4096)
    open_audit();
  return 0;
}
