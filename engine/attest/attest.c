/* Attestation: building the providers and choosing one per document.
 *
 * idm_attest_new turns each trust block into an idm_provider_t: it loads the block's key
 * material (JWK Set, AWS certificate) once and draws a process-unique generation from a
 * counter, which is what the per-thread caches key their entries on. SIGHUP therefore
 * costs nothing here: the server builds a new idm_attest_t (reading the files again) and
 * every entry verified under the old keys misses from then on.
 *
 * idm_attest_verify is the request path: bound the input, try the cache, else choose the
 * provider (by name, by the JWT's `iss`, or by document type), run that kind's checks,
 * and store the verified identity. Join tokens are never cached: they are one-time. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "attest/internal.h"
#include "core/jsonw.h"
#include "core/limits.h"

static const char *const doc_uris[IDM_DOC__COUNT] = {
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:idmint:token-type:aws-iid",
    "urn:idmint:token-type:join-token",
};

int idm_doc_type_from_uri(const char *uri, size_t len) {
  for (int i = 0; i < IDM_DOC__COUNT; i++)
    if (strlen(doc_uris[i]) == len && memcmp(doc_uris[i], uri, len) == 0)
      return i;
  return -1;
}

const char *idm_doc_type_uri(idm_doc_type_t t) {
  return (unsigned)t < IDM_DOC__COUNT ? doc_uris[t] : NULL;
}

static bool kind_is_jwt(pol_kind_t k) {
  return k == POL_KIND_KUBERNETES || k == POL_KIND_GITHUB || k == POL_KIND_GITLAB ||
         k == POL_KIND_SPIFFE || k == POL_KIND_OIDC;
}

static idm_doc_type_t kind_doc_type(pol_kind_t k) {
  if (k == POL_KIND_AWS_IID)
    return IDM_DOC_AWS_IID;
  if (k == POL_KIND_JOIN_TOKEN)
    return IDM_DOC_JOIN_TOKEN;
  return IDM_DOC_JWT; /* unix never matches: it has no document */
}

void idm_attest_set_common(const idm_provider_t *p, idm_identity_t *out) {
  const char *kind = pol_kind_name(p->trust->kind);
  out->trust = p->trust;
  idm_attr_set(&out->client, POL_A_TRUST, p->trust->name, strlen(p->trust->name));
  idm_attr_set(&out->client, POL_A_KIND, kind, strlen(kind));
}

/* Generations are process-unique so that no entry of an older build ever matches. */
/* A provider's generation: the first 8 bytes of SHA-256 over every setting of its trust
 * block that decides what it accepts and what identity it gives (each field length-
 * prefixed), then the digest of its key material. A reload that leaves a trust block and
 * its key file as they were keeps the generation, so the identities cached under it stay
 * valid (idm_attest_cache_get checks the generation); any change, to a setting or to one
 * byte of the key file, gives a new one and those entries miss. SHA-256, not a fast hash:
 * whoever can write a key file must not be able to keep old entries alive by a collision,
 * and it runs only at start and reload. */
typedef struct gen_hash {
  SHA256_CTX ctx;
} gen_hash_t;

static void gh_bytes(gen_hash_t *g, const void *p, size_t n) {
  uint64_t len = n;
  SHA256_Update(&g->ctx, &len, sizeof len);
  if (n)
    SHA256_Update(&g->ctx, p, n);
}
static void gh_str(gen_hash_t *g, const char *s) {
  if (!s) {
    uint64_t none = UINT64_MAX; /* NULL differs from "" */
    SHA256_Update(&g->ctx, &none, sizeof none);
    return;
  }
  gh_bytes(g, s, strlen(s));
}
static void gh_i64(gen_hash_t *g, int64_t v) { gh_bytes(g, &v, sizeof v); }

static void gen_begin(gen_hash_t *g, const idm_provider_t *p, const pol_trust_t *t) {
  SHA256_Init(&g->ctx);
  gh_str(g, "idmint provider generation v1");
  gh_i64(g, p->index);
  gh_str(g, t->name);
  gh_i64(g, t->kind);
  gh_str(g, p->issuer);
  gh_str(g, t->jwks);
  gh_i64(g, t->audience_count);
  for (uint32_t i = 0; i < t->audience_count; i++)
    gh_str(g, t->audience[i]);
  gh_i64(g, p->alg_mask);
  gh_i64(g, p->leeway_s);
  gh_i64(g, t->max_lifetime_s);
  gh_str(g, t->trust_domain);
  gh_str(g, t->certificate);
  gh_i64(g, t->max_age_s);
  gh_str(g, t->store);
  gh_i64(g, p->doc_type);
}

static uint64_t gen_end(gen_hash_t *g, const uint8_t *keys, size_t keys_len) {
  gh_bytes(g, keys, keys_len);
  uint8_t d[SHA256_DIGEST_LENGTH];
  SHA256_Final(d, &g->ctx);
  uint64_t gen;
  memcpy(&gen, d, sizeof gen);
  return gen ? gen : 1;
}

static void provider_cleanup(idm_provider_t *p) {
  idm_jwks_free(p->jwks);
  EVP_PKEY_free(p->iid_key);
  if (p->trust && p->trust->kind == POL_KIND_JOIN_TOKEN)
    pthread_mutex_destroy(&p->join_mu);
}

void idm_attest_free(idm_attest_t *a) {
  if (!a)
    return;
  for (size_t i = 0; i < a->n; i++)
    provider_cleanup(&a->prov[i]);
  free(a->prov);
  free(a);
}

static idm_err_t provider_init(idm_provider_t *p, const pol_trust_t *t, uint32_t index,
                               idm_why_t *why) {
  memset(p, 0, sizeof *p);
  p->trust = t;
  p->index = index;
  p->doc_type = (uint8_t)IDM_DOC__COUNT;
  if (!t->name || !*t->name)
    return idm_fail(why, IDM_ERR_CONFIG, "trust block %u has no name", index);
  if ((unsigned)t->kind >= POL_KIND__COUNT)
    return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\": unknown kind", t->name);
  p->leeway_s = t->leeway_s < 0 ? 0 : t->leeway_s;
  if (p->leeway_s > IDM_ATTEST_LEEWAY_MAX_S)
    p->leeway_s = IDM_ATTEST_LEEWAY_MAX_S;

  if (t->kind != POL_KIND_UNIX)
    p->doc_type = (uint8_t)kind_doc_type(t->kind);
  if (kind_is_jwt(t->kind)) {
    p->issuer = t->issuer;
    if (!p->issuer && t->kind == POL_KIND_GITHUB)
      p->issuer = "https://token.actions.githubusercontent.com";
    if (!p->issuer && t->kind == POL_KIND_GITLAB)
      p->issuer = "https://gitlab.com";
    if (!p->issuer || !*p->issuer)
      return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\": issuer is required for kind %s",
                      t->name, pol_kind_name(t->kind));
    if (t->audience_count == 0)
      return idm_fail(why, IDM_ERR_CONFIG,
                      "trust \"%s\": audience is required (a token for any audience could "
                      "be replayed from another service)",
                      t->name);
    if (t->kind == POL_KIND_SPIFFE && (!t->trust_domain || !*t->trust_domain))
      return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\": trust_domain is required", t->name);
    if (!t->jwks)
      return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\": jwks is required", t->name);
    if (t->algorithm_count == 0) {
      for (int alg = IDM_JWS_RS256; alg <= IDM_JWS_EDDSA; alg++)
        p->alg_mask |= 1u << alg;
    }
    for (uint32_t i = 0; i < t->algorithm_count; i++) {
      const char *n = t->algorithms[i];
      idm_jws_alg_t alg = idm_jws_alg_from_name(n, strlen(n));
      if (alg < IDM_JWS_RS256 || alg > IDM_JWS_EDDSA)
        return idm_fail(why, IDM_ERR_CONFIG,
                        "trust \"%s\": algorithm \"%s\" cannot be allowed (none, HMAC and "
                        "unknown algorithms are always refused)",
                        t->name, n);
      p->alg_mask |= 1u << alg;
    }
    idm_why_t w;
    idm_why_clear(&w);
    uint8_t keys[SHA256_DIGEST_LENGTH];
    p->jwks = idm_jwks_load_digest(t->jwks, keys, &w);
    if (!p->jwks)
      return idm_fail(why, IDM_ERR_ATTEST_KEYS, "trust \"%s\": %s", t->name,
                      idm_why_str(&w, IDM_ERR_JWKS));
    gen_hash_t g;
    gen_begin(&g, p, t);
    p->gen = gen_end(&g, keys, sizeof keys);
  } else if (t->kind == POL_KIND_AWS_IID) {
    if (!t->certificate)
      return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\": certificate is required", t->name);
    if (t->max_age_s <= 0)
      return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\": max_age must be positive", t->name);
    idm_why_t w;
    idm_why_clear(&w);
    idm_err_t e = idm_iid_load_cert(t->certificate, &p->iid_key, &w);
    if (e)
      return idm_fail(why, IDM_ERR_ATTEST_KEYS, "trust \"%s\": %s", t->name,
                      idm_why_str(&w, e));
    uint8_t *der = NULL; /* the key itself decides, not the certificate's other bytes */
    int n = i2d_PUBKEY(p->iid_key, &der);
    if (n <= 0)
      return idm_fail(why, IDM_ERR_ATTEST_KEYS, "trust \"%s\": cannot encode its key", t->name);
    gen_hash_t g;
    gen_begin(&g, p, t);
    p->gen = gen_end(&g, der, (size_t)n);
    OPENSSL_free(der);
  } else if (t->kind == POL_KIND_JOIN_TOKEN) {
    if (!t->store)
      return idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\": store is required", t->name);
    pthread_mutex_init(&p->join_mu, NULL);
  }
  if (!p->gen) { /* no key material (join-token, unix): the settings alone */
    gen_hash_t g;
    gen_begin(&g, p, t);
    p->gen = gen_end(&g, NULL, 0);
  }
  return IDM_OK;
}

idm_attest_t *idm_attest_new_from_trusts(const pol_trust_t *const *trusts, size_t n,
                                         idm_why_t *why) {
  if (n > IDM_ATTEST_TRUSTS_MAX) {
    idm_fail(why, IDM_ERR_CONFIG, "%zu trust blocks exceed the limit of %d", n,
             IDM_ATTEST_TRUSTS_MAX);
    return NULL;
  }
  idm_attest_t *a = calloc(1, sizeof *a);
  if (!a || !(a->prov = calloc(n ? n : 1, sizeof *a->prov))) {
    free(a);
    idm_fail(why, IDM_ERR_NOMEM, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < i; j++)
      if (!strcmp(trusts[i]->name, trusts[j]->name)) {
        idm_fail(why, IDM_ERR_CONFIG, "trust \"%s\" is defined twice", trusts[i]->name);
        idm_attest_free(a);
        return NULL;
      }
    a->n = i + 1;
    if (provider_init(&a->prov[i], trusts[i], (uint32_t)i, why) != IDM_OK) {
      idm_attest_free(a);
      return NULL;
    }
  }
  return a;
}

idm_attest_t *idm_attest_new(const pol_config_t *cfg, idm_why_t *why) {
  uint32_t n = pol_config_trust_count(cfg);
  if (n > IDM_ATTEST_TRUSTS_MAX) {
    idm_fail(why, IDM_ERR_CONFIG, "%u trust blocks exceed the limit of %d", n,
             IDM_ATTEST_TRUSTS_MAX);
    return NULL;
  }
  const pol_trust_t *list[IDM_ATTEST_TRUSTS_MAX];
  for (uint32_t i = 0; i < n; i++)
    list[i] = pol_config_trust(cfg, i);
  return idm_attest_new_from_trusts(list, n, why);
}

static idm_provider_t *find_by_name(idm_attest_t *a, const char *name) {
  for (size_t i = 0; i < a->n; i++)
    if (!strcmp(a->prov[i].trust->name, name))
      return &a->prov[i];
  return NULL;
}

static idm_err_t find_by_kind(idm_attest_t *a, pol_kind_t kind, idm_provider_t **out,
                              idm_why_t *why) {
  idm_provider_t *found = NULL;
  for (size_t i = 0; i < a->n; i++) {
    if (a->prov[i].trust->kind != kind)
      continue;
    if (found)
      return idm_fail(why, IDM_ERR_ATTEST_TRUST_AMBIGUOUS,
                      "trust blocks \"%s\" and \"%s\" are both of kind %s; name one",
                      found->trust->name, a->prov[i].trust->name, pol_kind_name(kind));
    found = &a->prov[i];
  }
  if (!found)
    return idm_fail(why, IDM_ERR_ATTEST_TRUST_UNKNOWN, "no trust block of kind %s",
                    pol_kind_name(kind));
  *out = found;
  return IDM_OK;
}

/* The JWT provider whose issuer equals the token's iss (read before any signature check
 * only to choose; the chosen provider verifies everything). */
static idm_err_t find_by_iss(idm_attest_t *a, const idm_jws_t *jws, idm_provider_t **out,
                             idm_why_t *why) {
  json_t *iss = json_object_get(jws->claims, "iss");
  if (!iss)
    return idm_fail(why, IDM_ERR_JWT_CLAIM_MISSING,
                    "token has no \"iss\" claim to choose a trust block by");
  if (!json_is_string(iss))
    return idm_fail(why, IDM_ERR_JWT_CLAIM_TYPE, "claim \"iss\" must be a string");
  const char *s = json_string_value(iss);
  idm_provider_t *found = NULL;
  for (size_t i = 0; i < a->n; i++) {
    idm_provider_t *p = &a->prov[i];
    if (!kind_is_jwt(p->trust->kind) || strcmp(p->issuer, s) != 0)
      continue;
    if (found)
      return idm_fail(why, IDM_ERR_ATTEST_TRUST_AMBIGUOUS,
                      "trust blocks \"%s\" and \"%s\" both have issuer \"%.80s\"; name one",
                      found->trust->name, p->trust->name, s);
    found = p;
  }
  if (!found)
    return idm_fail(why, IDM_ERR_ATTEST_TRUST_UNKNOWN, "no trust block has issuer \"%.120s\"",
                    s);
  *out = found;
  return IDM_OK;
}

idm_err_t idm_attest_verify(idm_attest_t *a, idm_attest_cache_t *cache, idm_arena_t *arena,
                            idm_doc_type_t type, const char *trust_name, const char *doc,
                            size_t len, const idm_clock_t *clk, idm_identity_t *out,
                            idm_why_t *why) {
  if (!a || !arena || !out || (!doc && len) || (unsigned)type >= IDM_DOC__COUNT)
    return idm_fail(why, IDM_ERR_INVALID_ARG, "idm_attest_verify: missing argument");
  idm_why_clear(why);
  memset(out, 0, sizeof *out);
  if (len == 0)
    return idm_fail(why, type == IDM_DOC_JWT ? IDM_ERR_JWS_FORMAT
                         : type == IDM_DOC_AWS_IID ? IDM_ERR_IID_FORMAT
                                                   : IDM_ERR_JOIN_FORMAT,
                    "the identity document is empty");
  if (type == IDM_DOC_JWT && len > IDM_JWT_MAX_BYTES)
    return idm_fail(why, IDM_ERR_JWT_TOO_LARGE, "token of %zu bytes exceeds the %d-byte limit",
                    len, IDM_JWT_MAX_BYTES);
  if (type == IDM_DOC_AWS_IID && len > IDM_ATTEST_IID_MAX_BYTES)
    return idm_fail(why, IDM_ERR_TOO_LARGE,
                    "instance identity of %zu bytes exceeds the %d-byte limit", len,
                    IDM_ATTEST_IID_MAX_BYTES);
  if (type == IDM_DOC_JOIN_TOKEN && len >= IDM_JOIN_TOKEN_MAX)
    return idm_fail(why, IDM_ERR_JOIN_FORMAT, "join token of %zu bytes is too long", len);

  idm_provider_t *p = NULL;
  if (trust_name) {
    p = find_by_name(a, trust_name);
    if (!p)
      return idm_fail(why, IDM_ERR_ATTEST_TRUST_UNKNOWN, "no trust block named \"%.80s\"",
                      trust_name);
    if (p->trust->kind == POL_KIND_UNIX || kind_doc_type(p->trust->kind) != type)
      return idm_fail(why, IDM_ERR_ATTEST_KIND_MISMATCH,
                      "trust \"%s\" is of kind %s, which does not verify %s documents",
                      p->trust->name, pol_kind_name(p->trust->kind), idm_doc_type_uri(type));
  }

  int64_t now_s = idm_clock_now_s(clk);
  uint64_t h = 0;
  if (cache && type != IDM_DOC_JOIN_TOKEN) {
    h = idm_attest_cache_hash(cache, doc, len);
    if (idm_attest_cache_get(cache, a, type, p, h, doc, len, now_s, out))
      return IDM_OK;
  }

  idm_err_t e;
  switch (type) {
  case IDM_DOC_JWT: {
    idm_jws_t jws;
    memset(&jws, 0, sizeof jws);
    e = idm_jws_parse(&jws, arena, doc, len, why);
    if (e)
      return e;
    if (!p && (e = find_by_iss(a, &jws, &p, why)) != IDM_OK)
      return e;
    e = idm_attest_jwt(p, arena, &jws, clk, out, why);
    break;
  }
  case IDM_DOC_AWS_IID:
    if (!p && (e = find_by_kind(a, POL_KIND_AWS_IID, &p, why)) != IDM_OK)
      return e;
    e = idm_attest_iid(p, arena, doc, len, clk, out, why);
    break;
  case IDM_DOC_JOIN_TOKEN:
  default:
    if (!p && (e = find_by_kind(a, POL_KIND_JOIN_TOKEN, &p, why)) != IDM_OK)
      return e;
    return idm_attest_join(p, arena, doc, len, clk, out, why);
  }
  if (e) {
    memset(out, 0, sizeof *out);
    return e;
  }
  if (cache && out->exp_s > now_s) /* accepted within the leeway after exp: not cached */
    idm_attest_cache_put(cache, p, type, h, doc, len, out);
  return IDM_OK;
}

idm_err_t idm_identity_to_json(const idm_identity_t *id, char *out, size_t cap, size_t *len) {
  idm_jsonw_t w;
  idm_jsonw_init(&w, out, cap);
  idm_jsonw_obj_begin(&w);
  for (unsigned i = 0; i < POL_A__COUNT; i++) {
    const pol_str_t *v = &id->client.attr[i];
    if (!v->ptr)
      continue;
    idm_jsonw_key(&w, pol_attr_name((pol_attr_id_t)i));
    idm_jsonw_strn(&w, v->ptr, v->len);
  }
  if (id->client.claims_count) {
    idm_jsonw_key(&w, "claims");
    idm_jsonw_obj_begin(&w);
    for (uint32_t i = 0; i < id->client.claims_count; i++) {
      const pol_kv_t *kv = &id->client.claims[i];
      idm_jsonw_keyn(&w, kv->name.ptr, kv->name.len);
      idm_jsonw_strn(&w, kv->value.ptr, kv->value.len);
    }
    idm_jsonw_obj_end(&w);
  }
  if (id->exp_s) {
    idm_jsonw_key(&w, "exp");
    idm_jsonw_int(&w, id->exp_s);
  }
  idm_jsonw_obj_end(&w);
  return idm_jsonw_finish(&w, len);
}
