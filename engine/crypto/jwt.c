/* The jwt credential profile: minting and verification.
 *
 * Design. Minting is the hot path of the server and allocates nothing: the header and
 * the claims are written with the core JSON writer into stack buffers, base64url-encoded
 * straight into the caller's output buffer (which then holds the signing input), signed
 * in place and the signature appended. The header always has the same three members in
 * the same order, so the token bytes are a pure function of (key, claims).
 *
 *   out: b64url({"alg":"EdDSA","typ":"JWT","kid":"<thumbprint>"}) "." b64url(claims)
 *        "." b64url(signature)  NUL
 *
 * Verification is layered so that the batch profile can reuse everything but the
 * signature check: idm_jws_parse (structure) -> header checks for this profile (alg
 * EdDSA/ES256, typ JWT, kid) -> kid lookup -> idm_jws_verify (signature, alg fits key)
 * -> idm_jwt_check_claims (required claims, types, iss, aud, time). Each failure has its
 * own error code and a reason with the numbers ("token expired 42s ago"). */
#include "crypto/jwt.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/b64url.h"
#include "core/jsonw.h"
#include "core/limits.h"
#include "core/random.h"

/* ---- jti ------------------------------------------------------------------------- */

void idm_jti_gen_init(idm_jti_gen_t *g, const char *node_id, unsigned thread_index) {
  memset(g, 0, sizeof *g);
  size_t o = 0;
  /* The node id, reduced to base64url-safe characters, at most 12 of them. */
  for (const char *p = node_id ? node_id : ""; *p && o < 12; p++) {
    char ch = *p;
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_';
    g->prefix[o++] = ok ? ch : '_';
  }
  if (!o)
    g->prefix[o++] = 'n';
  o += (size_t)snprintf(g->prefix + o, sizeof g->prefix - o, ".%x.", thread_index & 0xffffu);
  g->salt = idm_random_u64();
  /* The salt (64 random bits per generator) keeps jtis unique across restarts of a node
   * whose counter starts again at zero; its base64url is part of the prefix. */
  uint8_t s[8];
  for (int i = 0; i < 8; i++)
    s[i] = (uint8_t)(g->salt >> (8 * i));
  o += idm_b64url_encode(g->prefix + o, sizeof g->prefix - o, s, sizeof s);
  g->prefix[o++] = '.';
  g->prefix_len = o;
}

void idm_jti_next(idm_jti_gen_t *g, char out[IDM_JTI_MAX]) {
  /* "<node>.<thread>.<salt>.<counter>" */
  static const char hex[] = "0123456789abcdef";
  size_t o = g->prefix_len;
  memcpy(out, g->prefix, o);
  uint64_t v = g->counter++;
  char t[16];
  size_t n = 0;
  do {
    t[n++] = hex[v & 15];
    v >>= 4;
  } while (v);
  while (n)
    out[o++] = t[--n];
  out[o] = '\0';
}
_Static_assert(12 + 1 + 4 + 1 + 11 + 1 + 16 < IDM_JTI_MAX, "longest jti fits");
_Static_assert(12 + 1 + 4 + 1 + 11 + 1 < sizeof ((idm_jti_gen_t *)0)->prefix, "prefix fits");

/* ---- minting ------------------------------------------------------------------------ */

/* Claims are written in two parts so that the batcher can cache the first: the members
 * that stay the same between the credentials of one identity and target issued within
 * the same second, then the one that changes with every credential (jti). */

idm_err_t idm_jwt_claims_fixed(char *out, size_t cap, size_t *len, const idm_claims_t *c) {
  idm_jcat_t w;
  idm_jcat_init(&w, out, cap);
  IDM_JCAT_LIT(&w, "{\"iss\":");
  idm_jcat_str(&w, c->iss, idm_claims_strlen(c->iss, 0));
  IDM_JCAT_LIT(&w, ",\"sub\":");
  idm_jcat_str(&w, c->sub, idm_claims_strlen(c->sub, c->sub_len));
  IDM_JCAT_LIT(&w, ",\"aud\":");
  idm_jcat_str(&w, c->aud, idm_claims_strlen(c->aud, 0));
  IDM_JCAT_LIT(&w, ",");
  size_t sl = idm_claims_strlen(c->scope, c->scope_len);
  if (sl) {
    IDM_JCAT_LIT(&w, "\"scope\":");
    idm_jcat_str(&w, c->scope, sl);
    IDM_JCAT_LIT(&w, ",");
  }
  if (c->trust || c->policy) {
    IDM_JCAT_LIT(&w, "\"idm\":{");
    if (c->trust) {
      IDM_JCAT_LIT(&w, "\"trust\":");
      idm_jcat_str(&w, c->trust, strlen(c->trust));
      if (c->policy)
        IDM_JCAT_LIT(&w, ",");
    }
    if (c->policy) {
      IDM_JCAT_LIT(&w, "\"policy\":");
      idm_jcat_str(&w, c->policy, strlen(c->policy));
    }
    IDM_JCAT_LIT(&w, "},");
  }
  IDM_JCAT_LIT(&w, "\"iat\":");
  idm_jcat_int(&w, c->iat);
  IDM_JCAT_LIT(&w, ",\"nbf\":");
  idm_jcat_int(&w, c->nbf);
  IDM_JCAT_LIT(&w, ",\"exp\":");
  idm_jcat_int(&w, c->exp);
  IDM_JCAT_LIT(&w, ",");
  return idm_jcat_finish(&w, out, len);
}

idm_err_t idm_jwt_claims_varying(char *out, size_t cap, size_t *len, const idm_claims_t *c) {
  idm_jcat_t w;
  idm_jcat_init(&w, out, cap);
  IDM_JCAT_LIT(&w, "\"jti\":");
  idm_jcat_str(&w, c->jti, idm_claims_strlen(c->jti, 0));
  IDM_JCAT_LIT(&w, "}");
  return idm_jcat_finish(&w, out, len);
}

idm_err_t idm_jwt_header(char *out, size_t cap, size_t *len, const char *alg_name,
                         const char *kid) {
  idm_jcat_t w;
  idm_jcat_init(&w, out, cap);
  IDM_JCAT_LIT(&w, "{\"alg\":");
  idm_jcat_str(&w, alg_name, idm_claims_strlen(alg_name, 0));
  IDM_JCAT_LIT(&w, ",\"typ\":\"JWT\",\"kid\":");
  idm_jcat_str(&w, kid, idm_claims_strlen(kid, 0));
  IDM_JCAT_LIT(&w, "}");
  return idm_jcat_finish(&w, out, len);
}

idm_err_t idm_jwt_signing_input(char *out, size_t cap, size_t *len, const char *alg_name,
                                const char *kid, const idm_claims_t *c) {
  char hdr[IDM_JWT_HEADER_MAX];
  char claims[IDM_TOKEN_MAX];
  size_t hl, fl, vl;
  idm_err_t e;
  if ((e = idm_jwt_header(hdr, sizeof hdr, &hl, alg_name, kid)) ||
      (e = idm_jwt_claims_fixed(claims, sizeof claims, &fl, c)) ||
      (e = idm_jwt_claims_varying(claims + fl, sizeof claims - fl, &vl, c)))
    return e;
  size_t cl = fl + vl;
  size_t need = idm_b64url_encoded_len(hl) + 1 + idm_b64url_encoded_len(cl);
  if (need > cap)
    return IDM_ERR_NOSPACE;
  size_t o = idm_b64url_encode(out, cap, (const uint8_t *)hdr, hl);
  out[o++] = '.';
  o += idm_b64url_encode(out + o, cap - o, (const uint8_t *)claims, cl);
  *len = o;
  return IDM_OK;
}

idm_err_t idm_jwt_mint(char *out, size_t cap, size_t *len, const idm_key_t *k,
                       const idm_claims_t *c, idm_why_t *why) {
  if (!k)
    return idm_fail(why, IDM_ERR_KEY_NONE, "no active signing key");
  if (idm_key_state(k) != IDM_KEY_ACTIVE)
    return idm_fail(why, IDM_ERR_KEY_STATE, "key %s is %s; only the active key signs",
                    idm_key_kid(k), idm_key_state_name(idm_key_state(k)));
  size_t si;
  idm_err_t e = idm_jwt_signing_input(out, cap, &si, idm_key_alg_name(idm_key_alg(k)),
                                      idm_key_kid(k), c);
  if (e)
    return idm_fail(why, e, "token does not fit in %zu bytes", cap);
  uint8_t sig[IDM_SIG_MAX];
  size_t sl;
  if ((e = idm_key_sign(k, sig, &sl, (const uint8_t *)out, si)))
    return idm_fail(why, e, "signing with key %s failed", idm_key_kid(k));
  size_t need = si + 1 + idm_b64url_encoded_len(sl) + 1;
  if (need > cap)
    return idm_fail(why, IDM_ERR_NOSPACE, "token of %zu bytes does not fit in %zu", need, cap);
  out[si] = '.';
  size_t o = si + 1 + idm_b64url_encode(out + si + 1, cap - si - 1, sig, sl);
  out[o] = '\0';
  *len = o;
  return IDM_OK;
}

/* ---- verification ------------------------------------------------------------------- */

static idm_err_t need_int(const json_t *claims, const char *name, bool required, int64_t *out,
                          bool *present, idm_why_t *why) {
  json_t *v = json_object_get(claims, name);
  *present = v != NULL;
  if (!v)
    return required ? idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING, "claim \"%s\" is missing", name)
                    : IDM_OK;
  if (!json_is_integer(v))
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"%s\" must be an integer (NumericDate)",
                    name);
  *out = json_integer_value(v);
  return IDM_OK;
}

static idm_err_t need_str(const json_t *claims, const char *name, bool required,
                          const char **out, idm_why_t *why) {
  json_t *v = json_object_get(claims, name);
  *out = NULL;
  if (!v)
    return required ? idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING, "claim \"%s\" is missing", name)
                    : IDM_OK;
  if (!json_is_string(v))
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"%s\" must be a string", name);
  *out = json_string_value(v);
  return IDM_OK;
}

idm_err_t idm_jwt_check_claims(const json_t *claims, const idm_jwt_expect_t *expect,
                               const idm_clock_t *clk, idm_why_t *why) {
  static const idm_jwt_expect_t none = {0};
  if (!expect)
    expect = &none;
  if (!json_is_object(claims))
    return idm_fail(why, IDM_ERR_JWT_CLAIMS, "claims are not a JSON object");
  const char *iss, *sub, *jti, *scope;
  idm_err_t e;
  if ((e = need_str(claims, "iss", true, &iss, why)) || (e = need_str(claims, "sub", true, &sub, why)) ||
      (e = need_str(claims, "jti", true, &jti, why)) ||
      (e = need_str(claims, "scope", false, &scope, why)))
    return e;
  if (!*sub)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"sub\" is empty");
  int64_t iat = 0, nbf = 0, exp = 0;
  bool has_iat, has_nbf, has_exp;
  if ((e = need_int(claims, "exp", true, &exp, &has_exp, why)) ||
      (e = need_int(claims, "iat", true, &iat, &has_iat, why)) ||
      (e = need_int(claims, "nbf", false, &nbf, &has_nbf, why)))
    return e;
  json_t *idm = json_object_get(claims, "idm");
  if (idm) {
    json_t *t = json_object_get(idm, "trust"), *p = json_object_get(idm, "policy");
    if (!json_is_object(idm) || (t && !json_is_string(t)) || (p && !json_is_string(p)))
      return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE,
                      "claim \"idm\" must be an object with string \"trust\" and \"policy\"");
  }
  /* aud: a string or a non-empty array of strings (RFC 7519 §4.1.3). */
  json_t *aud = json_object_get(claims, "aud");
  if (!aud)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING, "claim \"aud\" is missing");
  bool aud_ok = json_is_string(aud) || (json_is_array(aud) && json_array_size(aud) > 0);
  for (size_t i = 0; aud_ok && json_is_array(aud) && i < json_array_size(aud); i++)
    aud_ok = json_is_string(json_array_get(aud, i));
  if (!aud_ok)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE,
                    "claim \"aud\" must be a string or a non-empty array of strings");
  if (expect->issuer && strcmp(iss, expect->issuer))
    return idm_fail(why, IDM_ERR_JWT_ISSUER, "issuer \"%.80s\" is not the expected \"%.80s\"", iss,
                    expect->issuer);
  if (expect->audience) {
    bool found = false;
    if (json_is_string(aud))
      found = !strcmp(json_string_value(aud), expect->audience);
    for (size_t i = 0; !found && json_is_array(aud) && i < json_array_size(aud); i++)
      found = !strcmp(json_string_value(json_array_get(aud, i)), expect->audience);
    if (!found)
      return idm_fail(why, IDM_ERR_JWT_AUDIENCE, "audience %s\"%.80s\"%s is not \"%.80s\"",
                      json_is_array(aud) ? "[" : "",
                      json_string_value(json_is_array(aud) ? json_array_get(aud, 0) : aud),
                      json_is_array(aud) && json_array_size(aud) > 1 ? ", ...]"
                      : json_is_array(aud)                           ? "]"
                                                                     : "",
                      expect->audience);
  }
  if (exp <= iat)
    return idm_fail(why, IDM_ERR_JWT_CLAIMS, "exp (%lld) is not after iat (%lld)", (long long)exp,
                    (long long)iat);
  int64_t start = has_nbf && nbf > iat ? nbf : iat;
  int64_t life;
  if (expect->max_lifetime_s > 0 &&
      (__builtin_sub_overflow(exp, start, &life) || life > expect->max_lifetime_s))
    return idm_fail(why, IDM_ERR_JWT_LIFETIME, "token lifetime of %llds exceeds the maximum %llds",
                    (long long)(__builtin_sub_overflow(exp, start, &life) ? INT64_MAX : life),
                    (long long)expect->max_lifetime_s);
  int64_t leeway = expect->leeway_s < 0 ? 0
                   : expect->leeway_s > IDM_JWT_LEEWAY_MAX_S ? IDM_JWT_LEEWAY_MAX_S
                                                             : expect->leeway_s;
  int64_t now = idm_clock_now_s(clk);
  /* Comparisons are written so that hostile values near INT64 limits cannot overflow. */
  if (now - leeway >= exp)
    return idm_fail(why, IDM_ERR_JWT_EXPIRED, "token expired %llds ago",
                    exp < now - (INT64_C(1) << 62) ? (long long)(INT64_C(1) << 62)
                                                   : (long long)(now - exp));
  if (has_nbf && nbf > now + leeway)
    return idm_fail(why, IDM_ERR_JWT_NOT_YET_VALID, "token not valid for another %llds",
                    (long long)(nbf > now + (INT64_C(1) << 62) ? (INT64_C(1) << 62) : nbf - now));
  if (iat > now + leeway)
    return idm_fail(why, IDM_ERR_JWT_NOT_YET_VALID, "token issued %llds in the future",
                    (long long)(iat > now + (INT64_C(1) << 62) ? (INT64_C(1) << 62) : iat - now));
  return IDM_OK;
}

idm_err_t idm_jwt_check_header(const idm_jws_t *jws, idm_why_t *why) {
  switch (jws->alg) {
  case IDM_JWS_EDDSA:
  case IDM_JWS_ES256:
    break;
  case IDM_JWS_NONE:
  case IDM_JWS_HS256:
  case IDM_JWS_HS384:
  case IDM_JWS_HS512:
    return idm_fail(why, IDM_ERR_JWS_ALG_REFUSED, "alg \"%s\" is never accepted", jws->alg_name);
  case IDM_JWS_UNKNOWN:
    return idm_fail(why, IDM_ERR_JWS_ALG_UNKNOWN, "alg \"%.64s\" is not supported", jws->alg_name);
  case IDM_JWS_EDDSA_MTB1:
    return idm_fail(why, IDM_ERR_JWS_ALG_UNKNOWN,
                    "alg \"EdDSA-MTB1\" is a batch-profile token; verify it with the batch verifier");
  default:
    return idm_fail(why, IDM_ERR_JWT_PROFILE_ALG,
                    "alg \"%s\" is not allowed for idmint tokens (EdDSA or ES256 only)",
                    jws->alg_name);
  }
  if (!jws->typ)
    return idm_fail(why, IDM_ERR_JWT_TYPE, "header \"typ\" is missing (must be \"JWT\")");
  /* RFC 7515 §4.1.9: typ compares case-insensitively. */
  if (strcasecmp(jws->typ, "JWT"))
    return idm_fail(why, IDM_ERR_JWT_TYPE, "header typ \"%.32s\" is not \"JWT\"", jws->typ);
  if (!jws->kid)
    return idm_fail(why, IDM_ERR_JWS_HEADER, "header \"kid\" is missing");
  return IDM_OK;
}

idm_err_t idm_jwt_verify(const idm_jwks_t *set, const char *tok, size_t len,
                         const idm_jwt_expect_t *expect, const idm_clock_t *clk,
                         idm_arena_t *arena, json_t **claims, idm_why_t *why) {
  idm_jws_t j;
  idm_err_t e = idm_jws_parse(&j, arena, tok, len, why);
  if (e)
    return e;
  if ((e = idm_jwt_check_header(&j, why)))
    goto out;
  const idm_jwk_t *key = idm_jwks_find(set, j.kid, j.kid_len);
  if (!key) {
    e = idm_fail(why, IDM_ERR_JWS_KID_UNKNOWN, "no key with kid \"%.64s\" in the key set", j.kid);
    goto out;
  }
  if ((e = idm_jws_verify(&j, key, why)))
    goto out;
  if ((e = idm_jwt_check_claims(j.claims, expect, clk, why)))
    goto out;
  if (claims) {
    if (!arena)
      json_incref(j.claims); /* survives idm_jws_cleanup: the caller owns it */
    *claims = j.claims;
  }
out:
  idm_jws_cleanup(&j);
  return e;
}
