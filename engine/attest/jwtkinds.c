/* The JWT-based trust kinds: oidc, kubernetes, github, gitlab, spiffe.
 *
 * Order of checks, each with its own error: the algorithm (none and HMAC are never
 * accepted; then the trust block's `algorithms` list), the signature with the key the
 * `kid` names (crypto/jose.h refuses an alg the key's type does not allow, so an RS256
 * token against an EC key, or HS256 keyed with the RSA public key, fail there), then the
 * registered claims (iss, aud, exp, nbf, iat, lifetime) with a leeway bounded by
 * IDM_ATTEST_LEEWAY_MAX_S, then the claims each platform guarantees, with their types.
 * Signature first: nothing an unauthenticated party wrote is trusted or reported back
 * beyond the reason it was refused.
 *
 * Attributes are views of the claims' strings, which live in the request arena (the JSON
 * tree was parsed there). */
#include <string.h>

#include "attest/internal.h"
#include "core/limits.h"

/* A string claim: absent → IDM_ERR_JWT_CLAIM_MISSING if required, else *out NULL; wrong
 * type → IDM_ERR_JWT_CLAIM_TYPE; over IDM_ATTEST_ATTR_MAX_BYTES → IDM_ERR_ATTEST_CLAIMS. */
static idm_err_t str_claim(const json_t *obj, const char *where, const char *key,
                           bool required, const char **out, size_t *out_len, idm_why_t *why) {
  *out = NULL;
  *out_len = 0;
  json_t *v = json_object_get(obj, key);
  if (!v || (json_is_null(v) && !required)) {
    if (required)
      return idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING, "required claim \"%s%s\" is missing",
                      where, key);
    return IDM_OK;
  }
  if (!json_is_string(v))
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"%s%s\" must be a string", where, key);
  size_t n = json_string_length(v);
  if (n > IDM_ATTEST_ATTR_MAX_BYTES)
    return idm_fail(why, IDM_ERR_ATTEST_CLAIMS, "claim \"%s%s\" is %zu bytes, over %d", where,
                    key, n, IDM_ATTEST_ATTR_MAX_BYTES);
  if (required && n == 0)
    return idm_fail(why, IDM_ERR_ATTEST_CLAIMS, "claim \"%s%s\" is empty", where, key);
  *out = json_string_value(v);
  *out_len = n;
  return IDM_OK;
}

/* A NumericDate: an integer (or a number with a fraction, truncated) in a sane range. */
static idm_err_t time_claim(const json_t *claims, const char *key, bool required, bool *present,
                            int64_t *out, idm_why_t *why) {
  json_t *v = json_object_get(claims, key);
  *present = false;
  if (!v) {
    if (required)
      return idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING, "required claim \"%s\" is missing", key);
    return IDM_OK;
  }
  double d;
  if (json_is_integer(v))
    d = (double)json_integer_value(v);
  else if (json_is_real(v))
    d = json_real_value(v);
  else
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"%s\" must be a number (NumericDate)",
                    key);
  if (!(d >= 0 && d < 253402300800.0)) /* year 10000 */
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"%s\" is out of range", key);
  *out = (int64_t)d;
  *present = true;
  return IDM_OK;
}

static bool aud_accepted(const idm_provider_t *p, const char *s, size_t n) {
  for (uint32_t i = 0; i < p->trust->audience_count; i++) {
    const char *a = p->trust->audience[i];
    if (strlen(a) == n && memcmp(a, s, n) == 0)
      return true;
  }
  return false;
}

static idm_err_t check_audience(const idm_provider_t *p, const json_t *claims, idm_why_t *why) {
  json_t *aud = json_object_get(claims, "aud");
  if (!aud)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING, "required claim \"aud\" is missing");
  if (json_is_string(aud)) {
    if (aud_accepted(p, json_string_value(aud), json_string_length(aud)))
      return IDM_OK;
    return idm_fail(why, IDM_ERR_JWT_AUDIENCE,
                    "audience \"%.80s\" is not accepted by trust \"%s\" (expects \"%.80s\")",
                    json_string_value(aud), p->trust->name, p->trust->audience[0]);
  }
  if (!json_is_array(aud) || json_array_size(aud) == 0)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE,
                    "claim \"aud\" must be a string or a non-empty array of strings");
  size_t i;
  json_t *v;
  bool ok = false;
  json_array_foreach(aud, i, v) {
    if (!json_is_string(v))
      return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"aud\"[%zu] must be a string", i);
    if (aud_accepted(p, json_string_value(v), json_string_length(v)))
      ok = true;
  }
  if (!ok)
    return idm_fail(why, IDM_ERR_JWT_AUDIENCE,
                    "none of the token's %zu audiences is accepted by trust \"%s\" (expects "
                    "\"%.80s\")",
                    json_array_size(aud), p->trust->name, p->trust->audience[0]);
  return IDM_OK;
}

static idm_err_t check_registered(const idm_provider_t *p, const json_t *claims,
                                  const idm_clock_t *clk, int64_t *exp_out, idm_why_t *why) {
  const char *iss;
  size_t iss_len;
  idm_err_t e = str_claim(claims, "", "iss", true, &iss, &iss_len, why);
  if (e)
    return e;
  if (strlen(p->issuer) != iss_len || memcmp(p->issuer, iss, iss_len) != 0)
    return idm_fail(why, IDM_ERR_JWT_ISSUER,
                    "issuer \"%.80s\" is not the issuer of trust \"%s\" (\"%.80s\")", iss,
                    p->trust->name, p->issuer);
  if ((e = check_audience(p, claims, why)))
    return e;
  int64_t exp = 0, nbf = 0, iat = 0;
  bool has_exp, has_nbf, has_iat;
  if ((e = time_claim(claims, "exp", true, &has_exp, &exp, why)) ||
      (e = time_claim(claims, "nbf", false, &has_nbf, &nbf, why)) ||
      (e = time_claim(claims, "iat", false, &has_iat, &iat, why)))
    return e;
  int64_t now = idm_clock_now_s(clk), leeway = p->leeway_s;
  if (now >= exp + leeway)
    return idm_fail(why, IDM_ERR_JWT_EXPIRED, "token expired %llds ago (leeway %llds)",
                    (long long)(now - exp), (long long)leeway);
  if (has_nbf && nbf > now + leeway)
    return idm_fail(why, IDM_ERR_JWT_NOT_YET_VALID, "token is not valid for another %llds (nbf)",
                    (long long)(nbf - now));
  if (has_iat && iat > now + leeway)
    return idm_fail(why, IDM_ERR_JWT_NOT_YET_VALID, "token is issued %llds in the future (iat)",
                    (long long)(iat - now));
  int64_t max = p->trust->max_lifetime_s;
  if (max > 0) {
    int64_t start = has_iat ? iat : has_nbf ? nbf : now;
    if (exp - start > max)
      return idm_fail(why, IDM_ERR_JWT_LIFETIME,
                      "token lifetime of %llds exceeds the %llds maximum of trust \"%s\"",
                      (long long)(exp - start), (long long)max, p->trust->name);
  }
  *exp_out = exp;
  return IDM_OK;
}

/* kubernetes: projected service-account tokens. sub is
 * system:serviceaccount:NAMESPACE:NAME and must agree with the kubernetes.io object. */
static idm_err_t map_kubernetes(const idm_provider_t *p, const json_t *claims,
                                const char *sub, size_t sub_len, pol_client_t *c,
                                idm_why_t *why) {
  static const char pre[] = "system:serviceaccount:";
  const size_t pl = sizeof pre - 1;
  json_t *k = json_object_get(claims, "kubernetes.io");
  if (!k)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING,
                    "required claim \"kubernetes.io\" is missing (legacy secret-based "
                    "service-account tokens are not accepted; use a projected token)");
  if (!json_is_object(k))
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"kubernetes.io\" must be an object");
  const char *ns, *sa, *pod = NULL, *node = NULL;
  size_t ns_len, sa_len, pod_len = 0, node_len = 0;
  idm_err_t e = str_claim(k, "kubernetes.io.", "namespace", true, &ns, &ns_len, why);
  if (e)
    return e;
  json_t *sao = json_object_get(k, "serviceaccount");
  if (!sao)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING,
                    "required claim \"kubernetes.io.serviceaccount\" is missing");
  if (!json_is_object(sao))
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE,
                    "claim \"kubernetes.io.serviceaccount\" must be an object");
  if ((e = str_claim(sao, "kubernetes.io.serviceaccount.", "name", true, &sa, &sa_len, why)))
    return e;
  const char *uid;
  size_t uid_len;
  if ((e = str_claim(sao, "kubernetes.io.serviceaccount.", "uid", true, &uid, &uid_len, why)))
    return e;
  json_t *po = json_object_get(k, "pod");
  if (po) {
    if (!json_is_object(po))
      return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"kubernetes.io.pod\" must be an object");
    if ((e = str_claim(po, "kubernetes.io.pod.", "name", true, &pod, &pod_len, why)))
      return e;
  }
  json_t *no = json_object_get(k, "node");
  if (no) {
    if (!json_is_object(no))
      return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"kubernetes.io.node\" must be an object");
    if ((e = str_claim(no, "kubernetes.io.node.", "name", true, &node, &node_len, why)))
      return e;
  }
  /* sub must be exactly system:serviceaccount:<namespace>:<name>. */
  if (sub_len != pl + ns_len + 1 + sa_len || memcmp(sub, pre, pl) != 0 ||
      memcmp(sub + pl, ns, ns_len) != 0 || sub[pl + ns_len] != ':' ||
      memcmp(sub + pl + ns_len + 1, sa, sa_len) != 0)
    return idm_fail(why, IDM_ERR_ATTEST_CLAIMS,
                    "sub \"%.120s\" is not system:serviceaccount:%.60s:%.60s as "
                    "kubernetes.io says",
                    sub, ns, sa);
  (void)p;
  idm_attr_set(c, POL_A_NAMESPACE, ns, ns_len);
  idm_attr_set(c, POL_A_SERVICE_ACCOUNT, sa, sa_len);
  if (pod)
    idm_attr_set(c, POL_A_POD, pod, pod_len);
  if (node)
    idm_attr_set(c, POL_A_NODE, node, node_len);
  return IDM_OK;
}

typedef struct claim_map {
  const char *claim;
  pol_attr_id_t attr;
  bool required;
} claim_map_t;

static idm_err_t map_claims(const json_t *claims, const claim_map_t *m, size_t n,
                            pol_client_t *c, idm_why_t *why) {
  for (size_t i = 0; i < n; i++) {
    const char *s;
    size_t len;
    idm_err_t e = str_claim(claims, "", m[i].claim, m[i].required, &s, &len, why);
    if (e)
      return e;
    if (s)
      idm_attr_set(c, m[i].attr, s, len);
  }
  return IDM_OK;
}

/* GitHub Actions OIDC tokens (docs.github.com "About security hardening with OpenID
 * Connect"): the repository claims are always present; environment only for jobs that
 * name one. */
static const claim_map_t github_map[] = {
    {"repository", POL_A_REPOSITORY, true},
    {"repository_owner", POL_A_REPOSITORY_OWNER, true},
    {"ref", POL_A_REF, true},
    {"ref_type", POL_A_REF_TYPE, true},
    {"workflow", POL_A_WORKFLOW, true},
    {"actor", POL_A_ACTOR, true},
    {"event_name", POL_A_EVENT_NAME, true},
    {"environment", POL_A_ENVIRONMENT, false},
};

/* GitLab CI ID tokens (docs.gitlab.com "OpenID Connect (OIDC) Authentication"). */
static const claim_map_t gitlab_map[] = {
    {"project_path", POL_A_PROJECT_PATH, true},
    {"namespace_path", POL_A_NAMESPACE_PATH, true},
    {"ref", POL_A_REF, true},
    {"environment", POL_A_ENVIRONMENT, false},
};

/* SPIFFE ID (SPIFFE-ID.md §2): spiffe://<trust domain>/<path>; the trust domain is
 * [a-z0-9.-_]+, path segments are [A-Za-z0-9.-_]+, neither "." nor "..", no empty
 * segment, no trailing slash, no query, fragment, port or userinfo; at most 2048 bytes. */
static idm_err_t map_spiffe(const idm_provider_t *p, const char *sub, size_t n,
                            pol_client_t *c, idm_why_t *why) {
  static const char scheme[] = "spiffe://";
  const size_t sl = sizeof scheme - 1;
  if (n > 2048 || n <= sl || memcmp(sub, scheme, sl) != 0)
    return idm_fail(why, IDM_ERR_ATTEST_SPIFFE_ID, "sub \"%.120s\" is not a SPIFFE ID", sub);
  size_t i = sl;
  while (i < n && sub[i] != '/') {
    char ch = sub[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
          ch == '_'))
      return idm_fail(why, IDM_ERR_ATTEST_SPIFFE_ID,
                      "SPIFFE ID \"%.120s\": trust domain has an invalid character", sub);
    i++;
  }
  size_t td_len = i - sl;
  if (td_len == 0)
    return idm_fail(why, IDM_ERR_ATTEST_SPIFFE_ID, "SPIFFE ID \"%.120s\" has no trust domain",
                    sub);
  if (i == n)
    return idm_fail(why, IDM_ERR_ATTEST_SPIFFE_ID,
                    "SPIFFE ID \"%.120s\" names a trust domain, not a workload", sub);
  while (i < n) { /* at a '/' */
    size_t j = i + 1;
    while (j < n && sub[j] != '/') {
      char ch = sub[j];
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '.' || ch == '-' || ch == '_'))
        return idm_fail(why, IDM_ERR_ATTEST_SPIFFE_ID,
                        "SPIFFE ID \"%.120s\": path has an invalid character", sub);
      j++;
    }
    size_t seg = j - i - 1;
    if (seg == 0 || (seg == 1 && sub[i + 1] == '.') ||
        (seg == 2 && sub[i + 1] == '.' && sub[i + 2] == '.'))
      return idm_fail(why, IDM_ERR_ATTEST_SPIFFE_ID,
                      "SPIFFE ID \"%.120s\": empty, \".\" or \"..\" path segment", sub);
    i = j;
  }
  const char *td = p->trust->trust_domain;
  if (strlen(td) != td_len || memcmp(td, sub + sl, td_len) != 0)
    return idm_fail(why, IDM_ERR_ATTEST_SPIFFE_ID,
                    "SPIFFE ID \"%.120s\" is not in trust domain \"%s\" of trust \"%s\"", sub,
                    td, p->trust->name);
  idm_attr_set(c, POL_A_SPIFFE_ID, sub, n);
  idm_attr_set(c, POL_A_TRUST_DOMAIN, sub + sl, td_len);
  return IDM_OK;
}

/* oidc: every top-level string claim becomes claims.NAME. */
static idm_err_t map_oidc(idm_arena_t *arena, const json_t *claims, pol_client_t *c,
                          idm_why_t *why) {
  size_t n = 0;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)claims, key, v) {
    if (json_is_string(v) && json_string_length(v) <= IDM_ATTEST_ATTR_MAX_BYTES)
      n++;
  }
  if (n > IDM_ATTEST_CLAIMS_MAX)
    n = IDM_ATTEST_CLAIMS_MAX;
  if (n == 0)
    return IDM_OK;
  pol_kv_t *kv = idm_arena_alloc(arena, n * sizeof *kv, _Alignof(pol_kv_t));
  if (!kv)
    return idm_fail(why, IDM_ERR_ARENA_FULL, "request arena exhausted");
  size_t i = 0;
  json_object_foreach((json_t *)claims, key, v) {
    if (i == n)
      break;
    if (!json_is_string(v) || json_string_length(v) > IDM_ATTEST_ATTR_MAX_BYTES)
      continue;
    kv[i].name.ptr = key;
    kv[i].name.len = (uint32_t)strlen(key);
    kv[i].value.ptr = json_string_value(v);
    kv[i].value.len = (uint32_t)json_string_length(v);
    i++;
  }
  c->claims = kv;
  c->claims_count = (uint32_t)i;
  return IDM_OK;
}

idm_err_t idm_attest_jwt(const idm_provider_t *p, idm_arena_t *arena, const idm_jws_t *jws,
                         const idm_clock_t *clk, idm_identity_t *out, idm_why_t *why) {
  const pol_trust_t *t = p->trust;
  idm_jws_alg_t alg = jws->alg;
  if (alg == IDM_JWS_NONE || alg == IDM_JWS_HS256 || alg == IDM_JWS_HS384 ||
      alg == IDM_JWS_HS512)
    return idm_fail(why, IDM_ERR_JWS_ALG_REFUSED,
                    "alg \"%s\" is never accepted (unsigned and HMAC tokens are refused)",
                    idm_jws_alg_name(alg));
  if (alg <= IDM_JWS_UNKNOWN || alg >= IDM_JWS__COUNT || alg == IDM_JWS_EDDSA_MTB1)
    return idm_fail(why, IDM_ERR_JWS_ALG_UNKNOWN, "alg \"%.32s\" is not supported",
                    jws->alg_name ? jws->alg_name : "?");
  if (!(p->alg_mask & (1u << alg)))
    return idm_fail(why, IDM_ERR_ATTEST_ALG_NOT_ALLOWED,
                    "alg \"%s\" is not in the algorithms of trust \"%s\"", idm_jws_alg_name(alg),
                    t->name);
  if (t->kind == POL_KIND_SPIFFE && jws->typ && strcmp(jws->typ, "JWT") != 0 &&
      strcmp(jws->typ, "JOSE") != 0)
    return idm_fail(why, IDM_ERR_JWS_HEADER, "JWT-SVID typ must be JWT or JOSE, not \"%.32s\"",
                    jws->typ);
  idm_err_t e = idm_jws_verify_set(jws, p->jwks, why);
  if (e)
    return e;
  return idm_attest_jwt_claims(p, arena, jws->claims, clk, out, why);
}

idm_err_t idm_attest_jwt_claims(const idm_provider_t *p, idm_arena_t *arena,
                                const json_t *claims, const idm_clock_t *clk,
                                idm_identity_t *out, idm_why_t *why) {
  const pol_trust_t *t = p->trust;
  idm_err_t e;
  if (!json_is_object(claims))
    return idm_fail(why, IDM_ERR_JWT_CLAIMS, "JWT claims are not a JSON object");
  int64_t exp = 0;
  if ((e = check_registered(p, claims, clk, &exp, why)))
    return e;
  const char *sub;
  size_t sub_len;
  if ((e = str_claim(claims, "", "sub", true, &sub, &sub_len, why)))
    return e;

  idm_attest_set_common(p, out);
  pol_client_t *c = &out->client;
  idm_attr_set(c, POL_A_SUBJECT, sub, sub_len);
  switch (t->kind) {
  case POL_KIND_KUBERNETES:
    e = map_kubernetes(p, claims, sub, sub_len, c, why);
    break;
  case POL_KIND_GITHUB:
    e = map_claims(claims, github_map, sizeof github_map / sizeof github_map[0], c, why);
    break;
  case POL_KIND_GITLAB:
    e = map_claims(claims, gitlab_map, sizeof gitlab_map / sizeof gitlab_map[0], c, why);
    break;
  case POL_KIND_SPIFFE:
    e = map_spiffe(p, sub, sub_len, c, why);
    break;
  case POL_KIND_OIDC:
    e = map_oidc(arena, claims, c, why);
    break;
  default:
    e = idm_fail(why, IDM_ERR_ATTEST_KIND_MISMATCH, "trust \"%s\" does not verify JWTs",
                 t->name);
  }
  if (e)
    return e;
  out->exp_s = exp;
  return IDM_OK;
}
