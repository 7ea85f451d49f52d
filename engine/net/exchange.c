/* The exchange pipeline (see exchange.h).
 *
 * Order of checks, each with its own answer: the request's shape (400 invalid_request),
 * the target (400 invalid_target), the subject token (400 invalid_grant), the policy
 * (403 access_denied), then the mint. The target is resolved before the subject token is
 * verified so that a typo in the audience costs no signature check. Minting goes through
 * exchange_mint() only, the one place that changes when credentials are batched.
 */
#include "net/exchange.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "batch/verify_engine.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "core/limits.h"
#include "crypto/jose.h"
#include "net/http1.h"
#include "net/router.h"

#define GT_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define TT_JWT "urn:ietf:params:oauth:token-type:jwt"
#define TT_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define TT_UNIX_PEER "urn:idmint:token-type:unix-peer"

static bool view_is(idm_view_t v, const char *s) {
  size_t n = strlen(s);
  return v.ptr && v.len == n && !memcmp(v.ptr, s, n);
}

idm_err_t idm_exchange_ctx_init(idm_exchange_ctx_t *x, unsigned thread_index,
                                const char *node_id, size_t cache_entries,
                                const idm_clock_t *clk, idm_metrics_t *m, idm_why_t *why) {
  memset(x, 0, sizeof *x);
  if (idm_arena_init(&x->arena, IDM_NET_REQ_ARENA_BYTES) != IDM_OK)
    return idm_fail(why, IDM_ERR_NOMEM, "cannot reserve the request arena");
  if (cache_entries) {
    x->cache = idm_attest_cache_new(cache_entries, 0);
    if (!x->cache) {
      idm_arena_cleanup(&x->arena);
      return idm_fail(why, IDM_ERR_NOMEM, "cannot reserve the attestation cache");
    }
  }
  idm_jti_gen_init(&x->jti, node_id ? node_id : "idmint", thread_index);
  x->clk = clk;
  x->m = m;
  return IDM_OK;
}

void idm_exchange_ctx_cleanup(idm_exchange_ctx_t *x) {
  idm_attest_cache_free(x->cache);
  idm_arena_cleanup(&x->arena);
  memset(x, 0, sizeof *x);
}

void idm_exchange_ctx_set_snapshot(idm_exchange_ctx_t *x, const idm_snapshot_t *snap) {
  if (x->snap == snap)
    return;
  x->snap = snap;
  /* The attestation cache is kept across a reload: an entry names its provider by index
   * and generation, and a provider's generation is a digest of its trust block and key
   * bytes (engine/attest/attest.c, gen_begin), so the entries of a trust block the reload
   * left as it was stay valid, and those of a changed one miss and are dropped as they are
   * met. A policy-only reload thus costs the fleet no signature checks. */
}

/* ---- request parsing ----------------------------------------------------------- */

static int hexval(uint8_t c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes s[0..n) ('+' is a space) into the arena. */
static idm_err_t form_decode(idm_arena_t *a, const uint8_t *s, size_t n, idm_view_t *out,
                             idm_why_t *why) {
  /* Most values (tokens, URNs after a client that does not escape ':') need no decoding:
   * then the view points into the body itself, which outlives the exchange. */
  if (!memchr(s, '%', n) && !memchr(s, '+', n) && !memchr(s, '\0', n)) {
    out->ptr = (const char *)s;
    out->len = (uint32_t)n;
    return IDM_OK;
  }
  char *d = idm_arena_alloc(a, n + 1, 1);
  if (!d)
    return idm_fail(why, IDM_ERR_ARENA_FULL, "request too large for the arena");
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      d[k++] = ' ';
    } else if (s[i] == '%') {
      int h = i + 2 < n ? hexval(s[i + 1]) : -1, l = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (h < 0 || l < 0)
        return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST, "bad percent-escape in form body");
      d[k++] = (char)(h * 16 + l);
      i += 2;
    } else {
      d[k++] = (char)s[i];
    }
  }
  d[k] = '\0';
  if (memchr(d, '\0', k))
    return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST, "NUL byte in form field");
  out->ptr = d;
  out->len = (uint32_t)k;
  return IDM_OK;
}

typedef struct field_map {
  const char *name;
  size_t off;
} field_map_t;

static const field_map_t fields[] = {
    {"grant_type", offsetof(idm_exchange_req_t, grant_type)},
    {"subject_token", offsetof(idm_exchange_req_t, subject_token)},
    {"subject_token_type", offsetof(idm_exchange_req_t, subject_token_type)},
    {"audience", offsetof(idm_exchange_req_t, audience)},
    {"resource", offsetof(idm_exchange_req_t, resource)},
    {"scope", offsetof(idm_exchange_req_t, scope)},
    {"requested_token_type", offsetof(idm_exchange_req_t, requested_token_type)},
};

static idm_view_t *field_slot(idm_exchange_req_t *req, const char *name, size_t n) {
  static size_t lens[sizeof fields / sizeof fields[0]];
  if (!lens[0])
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
      lens[i] = strlen(fields[i].name);
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (lens[i] == n && !memcmp(fields[i].name, name, n))
      return (idm_view_t *)((char *)req + fields[i].off);
  return NULL;
}

static idm_err_t parse_form(idm_exchange_ctx_t *x, idm_exchange_req_t *req, const uint8_t *b,
                            size_t len, idm_why_t *why) {
  size_t i = 0;
  while (i < len) {
    size_t s = i;
    const uint8_t *amp = memchr(b + i, '&', len - i);
    i = amp ? (size_t)(amp - b) : len;
    size_t e = i++;
    if (e == s)
      continue;
    const uint8_t *eq = memchr(b + s, '=', e - s);
    size_t kl = eq ? (size_t)(eq - (b + s)) : e - s;
    idm_view_t key;
    idm_err_t err = form_decode(&x->arena, b + s, kl, &key, why);
    if (err)
      return err;
    idm_view_t *slot = field_slot(req, key.ptr, key.len);
    if (!slot)
      continue; /* client_id, token_type_hint, ...: not ours to judge */
    if (slot->ptr)
      return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST, "parameter %.*s appears more than once",
                      (int)key.len, key.ptr);
    const uint8_t *v = eq ? eq + 1 : b + e;
    err = form_decode(&x->arena, v, (size_t)(b + e - v), slot, why);
    if (err)
      return err;
  }
  return IDM_OK;
}

static idm_err_t parse_json_body(idm_exchange_ctx_t *x, idm_exchange_req_t *req,
                                 const uint8_t *b, size_t len, idm_why_t *why) {
  idm_arena_t *prev = idm_json_use_arena(&x->arena);
  idm_err_t err = IDM_OK;
  idm_why_t inner = {{0}}; /* not why itself: formatting why from its own text overlaps */
  json_t *root = idm_json_parse((const char *)b, len, &err, &inner);
  idm_json_use_arena(prev);
  if (!root)
    return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST, "JSON body: %s", idm_why_str(&inner, err));
  if (!json_is_object(root))
    return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST, "JSON body is not an object");
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    json_t *v = json_object_get(root, fields[i].name);
    if (!v)
      continue;
    if (!json_is_string(v))
      return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST, "JSON field %s is not a string",
                      fields[i].name);
    idm_view_t *slot = (idm_view_t *)((char *)req + fields[i].off);
    slot->ptr = json_string_value(v);
    slot->len = (uint32_t)json_string_length(v);
    if (memchr(slot->ptr, '\0', slot->len))
      return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST, "NUL byte in JSON field %s",
                      fields[i].name);
  }
  return IDM_OK;
}

idm_err_t idm_exchange_parse(idm_exchange_ctx_t *x, idm_exchange_req_t *req,
                             idm_view_t ct, const uint8_t *body, size_t len, idm_why_t *why) {
  size_t mt = 0; /* media type without parameters */
  if (ct.ptr)
    while (mt < ct.len && ct.ptr[mt] != ';' && ct.ptr[mt] != ' ')
      mt++;
  if (ct.ptr && idm_h1_eq(ct.ptr, mt, "application/json"))
    return parse_json_body(x, req, body, len, why);
  if (!ct.ptr || mt == 0 || idm_h1_eq(ct.ptr, mt, "application/x-www-form-urlencoded"))
    return parse_form(x, req, body, len, why);
  return idm_fail(why, IDM_ERR_EXCHANGE_REQUEST,
                  "unsupported content type (use application/x-www-form-urlencoded or "
                  "application/json)");
}

/* ---- the pipeline -------------------------------------------------------------- */

static void fail(idm_exchange_res_t *res, int status, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(idm_exchange_res_t *res, int status, const char *error, const char *fmt, ...) {
  res->status = status;
  res->error = error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->description, sizeof res->description, fmt, ap);
  va_end(ap);
}

/* Records a decision in the batcher, sealing a full batch first. */
static idm_err_t batch_add(idm_exchange_ctx_t *x, const idm_batch_item_t *it, idm_why_t *why) {
  idm_err_t e = idm_batch_add(x->batch, it, why);
  if (e == IDM_ERR_BATCH_FULL && x->seal) {
    e = x->seal(x->seal_ud);
    if (!e || e == IDM_ERR_BATCH_EMPTY)
      e = idm_batch_add(x->batch, it, why);
  }
  return e;
}

static size_t rule_names(const idm_snapshot_t *snap, const pol_decision_t *d,
                         const char *names[POL_DECISION_RULES_MAX]) {
  size_t n = 0;
  for (uint32_t i = 0; i < d->rule_count && i < POL_DECISION_RULES_MAX; i++)
    names[n++] = pol_config_rule_name(snap->cfg, d->rules[i]);
  return n;
}

static void count_cache(idm_exchange_ctx_t *x) {
  if (!x->m || !x->cache)
    return;
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(x->cache, &st);
  if (st.hits > x->hits_seen)
    IDM_MET_ADD(&x->m->attest_hits, st.hits - x->hits_seen);
  if (st.misses > x->misses_seen)
    IDM_MET_ADD(&x->m->attest_misses, st.misses - x->misses_seen);
  x->hits_seen = st.hits;
  x->misses_seen = st.misses;
}

void idm_exchange_run(idm_exchange_ctx_t *x, idm_exchange_req_t *req, idm_exchange_res_t *res,
                      void *cookie) {
  res->status = 0;
  res->pending = false;
  res->error = NULL;
  res->description[0] = '\0';
  res->token_len = 0;
  res->token[0] = '\0';
  res->expires_in = 0;
  res->scope = "";
  res->target = NULL;
  res->decided = false;
  res->subject = NULL;
  res->subject_len = 0;
  res->cached = false;
  const idm_snapshot_t *snap = x->snap;
  if (!snap) {
    fail(res, 503, "temporarily_unavailable", "no configuration loaded");
    return;
  }
  if (!req->grant_type.ptr) {
    fail(res, 400, "invalid_request", "missing grant_type");
    return;
  }
  if (!view_is(req->grant_type, GT_EXCHANGE)) {
    fail(res, 400, "invalid_request", "grant_type must be %s", GT_EXCHANGE);
    return;
  }
  /* The unix-socket peer stands in for a document: on a unix connection a request with
   * no subject_token (and no type, or the unix-peer type) uses the identity attested at
   * accept. Anywhere else the unix-peer type is refused: a TCP client has no peer to show. */
  bool peer_type = req->subject_token_type.ptr && view_is(req->subject_token_type, TT_UNIX_PEER);
  bool use_peer = peer_type || (req->unix_conn && !req->subject_token.ptr &&
                                !req->subject_token_type.ptr);
  int dt = -1;
  if (use_peer) {
    if (!req->unix_conn) {
      fail(res, 400, "invalid_request", "subject_token_type %s is only accepted on the unix "
           "socket (server.unix_socket)", TT_UNIX_PEER);
      return;
    }
    if (req->subject_token.ptr) {
      fail(res, 400, "invalid_request", "subject_token must be absent with subject_token_type %s",
           TT_UNIX_PEER);
      return;
    }
  } else {
    if (!req->subject_token.ptr || !req->subject_token.len) {
      fail(res, 400, "invalid_request", "missing subject_token");
      return;
    }
    if (!req->subject_token_type.ptr) {
      fail(res, 400, "invalid_request", "missing subject_token_type");
      return;
    }
    dt = idm_doc_type_from_uri(req->subject_token_type.ptr, req->subject_token_type.len);
    if (dt < 0) {
      fail(res, 400, "invalid_request", "unsupported subject_token_type %.*s",
           (int)(req->subject_token_type.len > 80 ? 80 : req->subject_token_type.len),
           req->subject_token_type.ptr);
      return;
    }
  }
  if (req->requested_token_type.ptr && !view_is(req->requested_token_type, TT_JWT) &&
      !view_is(req->requested_token_type, TT_ACCESS)) {
    fail(res, 400, "invalid_request", "requested_token_type must be %s", TT_JWT);
    return;
  }
  idm_view_t aud = req->audience.ptr ? req->audience : req->resource;
  if (!aud.ptr || !aud.len) {
    fail(res, 400, "invalid_request", "missing audience (a target's name or audience URI)");
    return;
  }
  if (memchr(aud.ptr, ' ', aud.len)) {
    fail(res, 400, "invalid_target", "exactly one audience is supported");
    return;
  }
  const pol_target_t *t = pol_config_target_find(snap->cfg, aud.ptr, aud.len);
  if (!t) {
    fail(res, 400, "invalid_target", "unknown target %.*s", (int)(aud.len > 120 ? 120 : aud.len),
         aud.ptr);
    return;
  }
  res->target = t;
  if (req->scope.ptr && req->scope.len >= POL_SCOPE_MAX) {
    fail(res, 400, "invalid_request", "scope exceeds %d bytes", POL_SCOPE_MAX - 1);
    return;
  }
  if (!req->ctx.now_s)
    req->ctx.now_s = idm_clock_now_s(x->clk);

  idm_identity_t id;
  idm_why_t why = {{0}};
  idm_err_t e;
  if (use_peer) {
    if (req->unix_peer) {
      id = *req->unix_peer;
      e = IDM_OK;
    } else {
      e = idm_fail(&why, IDM_ERR_UNIX_PEER, "unix peer not identified: %s",
                   req->unix_peer_why ? req->unix_peer_why : "unknown reason");
    }
  } else {
    e = snap->attest ? idm_attest_verify(snap->attest, x->cache, &x->arena,
                                                 (idm_doc_type_t)dt, NULL, req->subject_token.ptr,
                                                 req->subject_token.len, x->clk, &id, &why)
                             : idm_fail(&why, IDM_ERR_ATTEST_TRUST_UNKNOWN, "no trust blocks");
  }
  count_cache(x);
  if (e == IDM_ERR_ARENA_FULL) {
    fail(res, 503, "temporarily_unavailable", "%s", idm_why_str(&why, e));
    return;
  }
  if (e) {
    fail(res, 400, "invalid_grant", "%s", idm_why_str(&why, e));
    return;
  }
  res->cached = id.cached;
  res->subject = id.client.attr[POL_A_SUBJECT].ptr;
  res->subject_len = id.client.attr[POL_A_SUBJECT].len;

  pol_ask_t ask = {.scope = {req->scope.ptr, req->scope.len}, .ttl_s = 0};
  pol_eval(snap->cfg, &id.client, t->index, &req->ctx, &ask, &res->decision);
  res->decided = true;
  if (x->m) {
    switch (res->decision.outcome) {
    case POL_ALLOW: IDM_MET_INC(&x->m->decisions_allow); break;
    case POL_DENY_DEFAULT: IDM_MET_INC(&x->m->decisions_deny_default); break;
    case POL_DENY_FORBID: IDM_MET_INC(&x->m->decisions_deny_forbid); break;
    case POL_DENY_SCOPE: IDM_MET_INC(&x->m->decisions_deny_scope); break;
    }
  }
  const pol_str_t sub = id.client.attr[POL_A_SUBJECT];
  const char *names[POL_DECISION_RULES_MAX];
  size_t nrules = rule_names(snap, &res->decision, names);
  if (!res->decision.allow) {
    const char *rule = res->decision.rule_count
                           ? pol_config_rule_name(snap->cfg, res->decision.rules[0]) : NULL;
    switch (res->decision.outcome) {
    case POL_DENY_FORBID:
      fail(res, 403, "access_denied", "forbidden by rule %s", rule ? rule : "?");
      break;
    case POL_DENY_SCOPE:
      fail(res, 403, "access_denied", "requested scope is not granted for target %s", t->name);
      break;
    default:
      fail(res, 403, "access_denied", "no permit rule allows this client to reach target %s",
           t->name);
      break;
    }
    if (x->batch) { /* the denial is recorded; nobody waits for its line */
      idm_claims_t dc = {.iss = snap->server->issuer,
                         .sub = sub.ptr ? sub.ptr : "", .sub_len = sub.ptr ? sub.len : 0,
                         .aud = t->audience ? t->audience : t->name,
                         .scope = req->scope.ptr, .scope_len = req->scope.len,
                         .trust = id.trust ? id.trust->name : ""};
      idm_batch_item_t it = {.allow = false, .claims = &dc, .target = t->name, .rules = names,
                             .rules_n = nrules, .reason = res->description};
      /* A full or failed log also refuses the next allow. An entry too large to record (a
       * requested scope or a subject that grows past IDM_AUDIT_ENTRY_MAX_BYTES once
       * escaped) is recorded without the scope, then without the subject too, and its
       * reason says what was left out: every decision is in the log. */
      char reason[IDM_WHY_LEN + 96];
      if (batch_add(x, &it, &why) == IDM_ERR_AUDIT_RECORD) {
        snprintf(reason, sizeof reason, "%s; requested scope of %u bytes not recorded",
                 res->description, (unsigned)req->scope.len);
        dc.scope = NULL;
        dc.scope_len = 0;
        it.reason = reason;
        if (batch_add(x, &it, &why) == IDM_ERR_AUDIT_RECORD) {
          snprintf(reason, sizeof reason,
                   "%s; requested scope of %u bytes and subject of %u bytes not recorded",
                   res->description, (unsigned)req->scope.len, (unsigned)dc.sub_len);
          dc.sub = "";
          dc.sub_len = 0;
          (void)batch_add(x, &it, &why);
        }
      }
    }
    return;
  }
  char jti[IDM_JTI_MAX];
  idm_jti_next(&x->jti, jti);
  int64_t ttl = res->decision.ttl_s > 0 ? res->decision.ttl_s : t->ttl_s;
  idm_claims_t c = {
      .iss = snap->server->issuer,
      .sub = sub.ptr ? sub.ptr : "", .sub_len = sub.ptr ? sub.len : 0,
      .aud = t->audience ? t->audience : t->name,
      .iat = req->ctx.now_s, .nbf = req->ctx.now_s, .exp = req->ctx.now_s + ttl,
      .jti = jti,
      .scope = res->decision.scope, .scope_len = res->decision.scope_len,
      .trust = id.trust ? id.trust->name : "",
      .policy = pol_config_policy_id(snap->cfg),
  };
  if (!x->batch) {
    fail(res, 503, "temporarily_unavailable", "issuance is not available in this context");
    return;
  }
  const idm_key_t *k = NULL;
  if (t->format == POL_FORMAT_JWT) {
    k = idm_keyring_signer(snap->keys, t->alg == POL_ALG_ES256 ? IDM_KEY_ES256 : IDM_KEY_EDDSA);
    if (!k) {
      fail(res, 500, "server_error", "no active %s signing key for target %s",
           t->alg == POL_ALG_ES256 ? "ES256" : "EdDSA", t->name);
      return;
    }
  }
  idm_batch_item_t it = {.allow = true,
                         .profile = t->format == POL_FORMAT_BATCH ? IDM_PROFILE_BATCH
                                                                  : IDM_PROFILE_JWT,
                         .key = k, .claims = &c, .target = t->name, .rules = names,
                         .rules_n = nrules, .out = res->token, .out_cap = sizeof res->token,
                         .out_len = &res->token_len, .cookie = cookie};
  e = batch_add(x, &it, &why);
  if (e == IDM_ERR_BATCH_BUSY || e == IDM_ERR_AUDIT_FAILED || e == IDM_ERR_BATCH_FULL) {
    fail(res, 503, "temporarily_unavailable", "%s", idm_why_str(&why, e));
    return;
  }
  if (e) {
    fail(res, 500, "server_error", "%s", idm_why_str(&why, e));
    return;
  }
  res->pending = true;
  if (it.profile == IDM_PROFILE_JWT)
    x->signs++;
  if (x->m) {
    size_t ti = t->index < IDM_NET_METRIC_TARGETS_MAX ? t->index : IDM_NET_METRIC_TARGETS_MAX;
    IDM_MET_INC(&x->m->minted[ti]);
  }
  res->status = 200;
  res->expires_in = ttl;
  res->scope = res->decision.scope;
}

idm_err_t idm_exchange_response_json(const idm_exchange_res_t *res, char *out, size_t cap,
                                     size_t *len) {
  if (res->status == 200) {
    /* The hot path, written directly: a token is base64url segments and dots, so it is
     * copied without escaping (checked in debug builds; a bug elsewhere must not produce
     * invalid JSON unnoticed), and only the scope goes through the escaper. */
#ifndef NDEBUG
    for (size_t i = 0; i < res->token_len; i++) {
      char ch = res->token[i];
      bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                ch == '-' || ch == '_' || ch == '.';
      if (!ok)
        return IDM_ERR_INVALID_ARG;
    }
#endif
    static const char p1[] = "{\"access_token\":\"";
    static const char p2[] = "\",\"issued_token_type\":\"" TT_JWT
                             "\",\"token_type\":\"Bearer\",\"expires_in\":";
    static const char p3[] = ",\"scope\":\"";
    char num[24];
    int nl = snprintf(num, sizeof num, "%lld", (long long)res->expires_in);
    const char *scope = res->scope ? res->scope : "";
    size_t sl = strlen(scope);
    size_t need = sizeof p1 - 1 + res->token_len + sizeof p2 - 1 + (size_t)nl + sizeof p3 - 1 +
                  6 * sl + 3;
    if (need > cap)
      return IDM_ERR_NOSPACE;
    size_t n = 0;
    memcpy(out + n, p1, sizeof p1 - 1), n += sizeof p1 - 1;
    memcpy(out + n, res->token, res->token_len), n += res->token_len;
    memcpy(out + n, p2, sizeof p2 - 1), n += sizeof p2 - 1;
    memcpy(out + n, num, (size_t)nl), n += (size_t)nl;
    memcpy(out + n, p3, sizeof p3 - 1), n += sizeof p3 - 1;
    size_t el = idm_json_escape(out + n, cap - n, scope, sl);
    if (el == (size_t)-1)
      return IDM_ERR_NOSPACE;
    n += el;
    out[n++] = '"';
    out[n++] = '}';
    if (n < cap)
      out[n] = '\0';
    *len = n;
    return IDM_OK;
  }
  idm_jsonw_t w;
  idm_jsonw_init(&w, out, cap);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "error");
  idm_jsonw_str(&w, res->error ? res->error : "server_error");
  idm_jsonw_key(&w, "error_description");
  idm_jsonw_str(&w, res->description);
  idm_jsonw_obj_end(&w);
  return idm_jsonw_finish(&w, len);
}

/* ---- context: source address and posture ---------------------------------------- */

uint8_t idm_ip_parse(const char *s, size_t len, uint8_t out[16]) {
  char buf[64];
  while (len && (*s == ' ' || *s == '\t'))
    s++, len--;
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
    len--;
  if (len == 0 || len >= sizeof buf)
    return 0;
  memcpy(buf, s, len);
  buf[len] = '\0';
  memset(out, 0, 16);
  if (inet_pton(AF_INET, buf, out) == 1)
    return 4;
  if (inet_pton(AF_INET6, buf, out) == 1) {
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(out, v4mapped, 12)) {
      memmove(out, out + 12, 4);
      memset(out + 4, 0, 12);
      return 4;
    }
    return 6;
  }
  return 0;
}

bool idm_cidr_contains(const pol_cidr_t *c, const uint8_t addr[16], uint8_t family) {
  if (c->family != family)
    return false;
  unsigned bits = c->prefix, maxb = family == 4 ? 32 : 128;
  if (bits > maxb)
    return false;
  for (unsigned i = 0; i < bits / 8; i++)
    if (c->addr[i] != addr[i])
      return false;
  if (bits % 8) {
    uint8_t mask = (uint8_t)(0xff << (8 - bits % 8));
    if ((c->addr[bits / 8] & mask) != (addr[bits / 8] & mask))
      return false;
  }
  return true;
}

static bool trusted_proxy(const idm_snapshot_t *s, const uint8_t peer[16], uint8_t fam) {
  if (!s || !fam)
    return false;
  for (uint32_t i = 0; i < s->server->trusted_proxy_count; i++)
    if (idm_cidr_contains(&s->server->trusted_proxies[i], peer, fam))
      return true;
  return false;
}

void idm_exchange_context(idm_exchange_ctx_t *x, const idm_http_req_t *req, pol_context_t *ctx) {
  memset(ctx, 0, sizeof *ctx);
  memcpy(ctx->source_ip, req->peer, 16);
  ctx->source_family = req->peer_family;
  if (!trusted_proxy(x->snap, req->peer, req->peer_family))
    return;
  if (req->forwarded_for.ptr) {
    /* The rightmost address is the one our trusted proxy saw. */
    const char *v = req->forwarded_for.ptr;
    size_t n = req->forwarded_for.len, s = n;
    while (s && v[s - 1] != ',')
      s--;
    uint8_t ip[16];
    uint8_t fam = idm_ip_parse(v + s, n - s, ip);
    if (fam) {
      memcpy(ctx->source_ip, ip, 16);
      ctx->source_family = fam;
    }
  }
  if (req->posture.ptr) {
    const char *v = req->posture.ptr;
    size_t n = req->posture.len, i = 0;
    uint32_t k = 0;
    while (i < n && k < IDM_EXCHANGE_POSTURE_MAX) {
      while (i < n && (v[i] == ' ' || v[i] == ','))
        i++;
      size_t s = i;
      while (i < n && v[i] != ',')
        i++;
      size_t e = i;
      while (e > s && v[e - 1] == ' ')
        e--;
      const char *eq = memchr(v + s, '=', e - s);
      if (!eq || eq == v + s)
        continue;
      size_t nl = (size_t)(eq - (v + s));
      while (nl && v[s + nl - 1] == ' ')
        nl--;
      const char *val = eq + 1;
      while (val < v + e && *val == ' ')
        val++;
      x->posture[k].name = (pol_str_t){v + s, (uint32_t)nl};
      x->posture[k].value = (pol_str_t){val, (uint32_t)(v + e - val)};
      k++;
    }
    ctx->posture = x->posture;
    ctx->posture_count = k;
  }
}

/* ---- HTTP handlers ------------------------------------------------------------- */

static void reply(idm_router_t *r, idm_http_resp_t *resp, const idm_exchange_res_t *res) {
  size_t len = 0;
  if (idm_exchange_response_json(res, r->scratch, r->scratch_cap, &len) != IDM_OK) {
    idm_route_error(r, resp, 500, "server_error", "response exceeds the buffer");
    return;
  }
  idm_route_json(resp, res->status, r->scratch, len, true);
  if (res->status == 503)
    resp->retry_after_s = 1;
}

void idm_exchange_http_reply(idm_router_t *r, bool authz, const idm_exchange_res_t *res,
                             idm_http_resp_t *resp) {
  if (!authz) {
    reply(r, resp, res);
    return;
  }
  if (res->status == 200) {
    resp->status = 200;
    resp->token = res->token;
    resp->token_len = res->token_len;
    resp->no_store = true;
    return;
  }
  reply(r, resp, res);
  /* A gateway only needs allow/deny; an unverifiable identity is 401 so it can tell. */
  if (res->status == 400 && res->error && !strcmp(res->error, "invalid_grant"))
    resp->status = 401;
}

/* Runs an exchange in storage from the server's pending pool; defers the answer when the
 * credential waits for its batch. */
static void run_http(idm_exchange_ctx_t *x, idm_router_t *r, bool authz, idm_exchange_req_t *er,
                     idm_http_resp_t *resp) {
  void *cookie = NULL;
  idm_exchange_res_t *res = r->pend_get ? r->pend_get(r->pend_ud, &cookie) : &x->res;
  if (!res) {
    idm_route_error(r, resp, 503, "temporarily_unavailable", "server overloaded, retry shortly");
    resp->retry_after_s = 1;
    if (r->m)
      IDM_MET_INC(&r->m->overloaded);
    return;
  }
  idm_exchange_run(x, er, res, cookie);
  if (res->pending && r->pend_get) {
    resp->deferred = true;
    resp->cookie = cookie;
    return;
  }
  idm_exchange_http_reply(r, authz, res, resp);
  if (r->pend_put)
    r->pend_put(r->pend_ud, cookie);
}

/* The batcher would refuse any credential now (its gathering batch is full and every
 * other slot awaits its audit write): answer 503 before parsing, attesting and evaluating
 * the request, so that shedding costs little. Such a request is not decided at all, so
 * one that would have been denied gets the 503 too (retry later), and nothing is logged. */
static bool shed(idm_exchange_ctx_t *x, idm_router_t *r, idm_http_resp_t *resp) {
  if (!x->batch || !idm_batch_full(x->batch) ||
      idm_batch_inflight(x->batch) < IDM_BATCH_INFLIGHT_MAX)
    return false;
  idm_route_error(r, resp, 503, "temporarily_unavailable",
                  "every batch awaits its audit write; retry shortly");
  resp->retry_after_s = 1;
  if (r->m)
    IDM_MET_INC(&r->m->overloaded);
  return true;
}

/* The start both credential endpoints share: shed when the batcher can't take a credential,
 * else a fresh arena and a request that carries the connection's unix peer. */
static bool begin(idm_exchange_ctx_t *x, idm_router_t *r, const idm_http_req_t *req,
                  idm_http_resp_t *resp, idm_exchange_req_t *er) {
  if (shed(x, r, resp))
    return false;
  idm_arena_reset(&x->arena);
  memset(er, 0, sizeof *er);
  er->unix_conn = req->unix_conn;
  er->unix_peer = req->unix_peer;
  er->unix_peer_why = req->unix_peer_why;
  return true;
}

void idm_exchange_http_token(idm_exchange_ctx_t *x, idm_router_t *r, const idm_http_req_t *req,
                             idm_http_resp_t *resp) {
  idm_exchange_req_t er;
  if (!begin(x, r, req, resp, &er))
    return;
  idm_why_t why = {{0}};
  idm_err_t e = idm_exchange_parse(x, &er, req->content_type, req->body, req->body_len, &why);
  if (e) {
    idm_route_error(r, resp, e == IDM_ERR_ARENA_FULL ? 503 : 400,
                    e == IDM_ERR_ARENA_FULL ? "temporarily_unavailable" : "invalid_request",
                    idm_why_str(&why, e));
    return;
  }
  idm_exchange_context(x, req, &er.ctx);
  run_http(x, r, false, &er, resp);
}

void idm_exchange_http_authz(idm_exchange_ctx_t *x, idm_router_t *r, const idm_http_req_t *req,
                             idm_http_resp_t *resp) {
  idm_exchange_req_t er;
  if (!begin(x, r, req, resp, &er))
    return;
  er.grant_type = (idm_view_t){GT_EXCHANGE, sizeof GT_EXCHANGE - 1};
  er.subject_token_type = (idm_view_t){TT_JWT, sizeof TT_JWT - 1};
  er.subject_token = req->subject_token;
  if (!er.subject_token.ptr && req->authorization.ptr && req->authorization.len > 7 &&
      idm_h1_eq(req->authorization.ptr, 7, "bearer "))
    er.subject_token = (idm_view_t){req->authorization.ptr + 7, req->authorization.len - 7};
  er.audience = req->target;
  er.scope = req->scope;
  if (!er.subject_token.ptr && req->unix_conn)
    er.subject_token_type = (idm_view_t){NULL, 0}; /* the connection's peer is the identity */
  else if (!er.subject_token.ptr) {
    idm_route_error(r, resp, 401, "invalid_request",
                    "no identity document (X-Idmint-Subject-Token or Authorization: Bearer)");
    return;
  }
  if (!er.audience.ptr) {
    idm_route_error(r, resp, 400, "invalid_request", "missing X-Idmint-Target");
    return;
  }
  idm_exchange_context(x, req, &er.ctx);
  run_http(x, r, true, &er, resp);
}

void idm_exchange_http_introspect(idm_exchange_ctx_t *x, idm_router_t *r,
                                  const idm_http_req_t *req, idm_http_resp_t *resp) {
  idm_arena_reset(&x->arena);
  /* RFC 7662: form body with "token" (and an optional token_type_hint we ignore). */
  const uint8_t *b = req->body;
  size_t len = req->body_len, i = 0;
  idm_view_t tok = {0};
  idm_why_t why = {{0}};
  size_t mt = 0;
  if (req->content_type.ptr)
    while (mt < req->content_type.len && req->content_type.ptr[mt] != ';')
      mt++;
  if (req->content_type.ptr && !idm_h1_eq(req->content_type.ptr, mt,
                                          "application/x-www-form-urlencoded")) {
    idm_route_error(r, resp, 400, "invalid_request",
                    "introspection takes an application/x-www-form-urlencoded body");
    return;
  }
  while (i < len) {
    size_t s = i;
    while (i < len && b[i] != '&')
      i++;
    size_t e = i++;
    if (e - s > 6 && !memcmp(b + s, "token=", 6)) {
      if (tok.ptr) {
        idm_route_error(r, resp, 400, "invalid_request", "parameter token appears more than once");
        return;
      }
      if (form_decode(&x->arena, b + s + 6, e - s - 6, &tok, &why) != IDM_OK) {
        idm_route_error(r, resp, 400, "invalid_request", idm_why_str(&why, IDM_ERR_EXCHANGE_REQUEST));
        return;
      }
    }
  }
  if (!tok.ptr) {
    idm_route_error(r, resp, 400, "invalid_request", "missing token");
    return;
  }
  /* Both profiles (jwt and EdDSA-MTB1 batch tokens), through the verifier library; its
   * scratch and the claims come from this request's arena. */
  json_t *claims = NULL;
  idm_err_t e = idm_verifier_check(x->snap->own_verifier, &x->arena, tok.ptr, tok.len,
                                   idm_clock_now_s(x->clk), NULL, &claims, &why);
  idm_jsonw_t w;
  idm_jsonw_init(&w, r->scratch, r->scratch_cap);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "active");
  idm_jsonw_bool(&w, e == IDM_OK && claims);
  if (e == IDM_OK && claims) {
    static const char *const str_claims[] = {"iss", "sub", "aud", "jti", "scope"};
    for (size_t k = 0; k < sizeof str_claims / sizeof str_claims[0]; k++) {
      json_t *v = json_object_get(claims, str_claims[k]);
      if (json_is_string(v)) {
        idm_jsonw_key(&w, str_claims[k]);
        idm_jsonw_strn(&w, json_string_value(v), json_string_length(v));
      }
    }
    static const char *const int_claims[] = {"iat", "nbf", "exp"};
    for (size_t k = 0; k < sizeof int_claims / sizeof int_claims[0]; k++) {
      json_t *v = json_object_get(claims, int_claims[k]);
      if (json_is_integer(v)) {
        idm_jsonw_key(&w, int_claims[k]);
        idm_jsonw_int(&w, json_integer_value(v));
      }
    }
    idm_jsonw_key(&w, "token_type");
    idm_jsonw_str(&w, "Bearer");
    json_t *idm = json_object_get(claims, "idm");
    if (json_is_object(idm)) {
      idm_jsonw_key(&w, "idm");
      idm_jsonw_obj_begin(&w);
      const char *k;
      json_t *v;
      json_object_foreach(idm, k, v) {
        if (json_is_string(v)) {
          idm_jsonw_key(&w, k);
          idm_jsonw_strn(&w, json_string_value(v), json_string_length(v));
        }
      }
      idm_jsonw_obj_end(&w);
    }
  }
  idm_jsonw_obj_end(&w);
  size_t olen = 0;
  if (idm_jsonw_finish(&w, &olen) != IDM_OK) {
    idm_route_error(r, resp, 500, "server_error", "response exceeds the buffer");
    return;
  }
  idm_route_json(resp, 200, r->scratch, olen, true);
}
