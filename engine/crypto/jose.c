/* JOSE: JWK Sets, RFC 7638 thumbprints, compact JWS parsing and verification.
 *
 * Design. A JWK Set is parsed once (start-up or reload) into an array of fully built
 * BoringSSL key objects, so verification does no parsing and no key setup: the request
 * path only hashes and verifies. Each key remembers which algorithms it may verify,
 * derived from kty/crv and narrowed by its own "alg"; verification refuses any other
 * algorithm before touching the signature, which is what closes algorithm confusion
 * (HS256 keyed with a public key, RS256 against an EC key, "none").
 *
 * Parsing a token is strict and allocation-free when given an arena: the three segments
 * are decoded with the canonical base64url decoder into arena memory and the header and
 * payload are parsed by jansson from the same arena (core/json.h hooks), with duplicate
 * keys rejected. Without an arena one malloc'd block holds the decoded bytes, and
 * idm_jws_cleanup releases it.
 *
 * Key-set policy: keys of an unsupported kind (kty oct, X25519, Ed448, P-521, use "enc"
 * or "x509-svid", an unknown "alg") and RSA keys outside 2048..8192 bits are skipped;
 * a key of a supported kind that is malformed (bad base64url, wrong coordinate length,
 * point off the curve, private members present) makes the whole set invalid, because it
 * means the file is corrupt or was written by mistake. A set with no usable key is an
 * error that says why the last key was skipped. */
#include "crypto/jose.h"

#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/digest.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64url.h"
#include "core/file.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "core/limits.h"
#include "crypto/internal.h"

/* ---- algorithm names ------------------------------------------------------------- */

static const char *const alg_names[IDM_JWS__COUNT] = {
    [IDM_JWS_UNKNOWN] = "unknown", [IDM_JWS_NONE] = "none",   [IDM_JWS_HS256] = "HS256",
    [IDM_JWS_HS384] = "HS384",     [IDM_JWS_HS512] = "HS512", [IDM_JWS_RS256] = "RS256",
    [IDM_JWS_RS384] = "RS384",     [IDM_JWS_RS512] = "RS512", [IDM_JWS_PS256] = "PS256",
    [IDM_JWS_PS384] = "PS384",     [IDM_JWS_PS512] = "PS512", [IDM_JWS_ES256] = "ES256",
    [IDM_JWS_ES384] = "ES384",     [IDM_JWS_EDDSA] = "EdDSA", [IDM_JWS_EDDSA_MTB1] = "EdDSA-MTB1",
};

idm_jws_alg_t idm_jws_alg_from_name(const char *name, size_t len) {
  if (!name)
    return IDM_JWS_UNKNOWN;
  /* Exact, case-sensitive match (RFC 7515 §4.1.1: alg values are case-sensitive). */
  for (int a = IDM_JWS_NONE; a < IDM_JWS__COUNT; a++)
    if (strlen(alg_names[a]) == len && memcmp(alg_names[a], name, len) == 0)
      return (idm_jws_alg_t)a;
  return IDM_JWS_UNKNOWN;
}

const char *idm_jws_alg_name(idm_jws_alg_t alg) {
  return alg >= 0 && alg < IDM_JWS__COUNT ? alg_names[alg] : "unknown";
}

static bool alg_refused(idm_jws_alg_t a) {
  return a == IDM_JWS_NONE || a == IDM_JWS_HS256 || a == IDM_JWS_HS384 || a == IDM_JWS_HS512;
}

/* ---- keys -------------------------------------------------------------------------- */

typedef enum key_kind { KIND_RSA, KIND_P256, KIND_P384, KIND_ED25519 } key_kind_t;

struct idm_jwk {
  key_kind_t kind;
  idm_jws_alg_t alg;       /* the JWK's own "alg", or IDM_JWS_UNKNOWN when absent */
  RSA *rsa;                /* KIND_RSA */
  EC_KEY *ec;              /* KIND_P256 / KIND_P384 */
  uint8_t ed[32];          /* KIND_ED25519 */
  char *kid;               /* owned, "" when absent */
  size_t kid_len;
  char thumb[44];          /* RFC 7638, NUL-terminated */
};

struct idm_jwks {
  size_t n;
  idm_jwk_t *keys;          /* n entries */
};

static bool kind_allows(key_kind_t k, idm_jws_alg_t a) {
  switch (k) {
  case KIND_RSA:
    return a >= IDM_JWS_RS256 && a <= IDM_JWS_PS512;
  case KIND_P256:
    return a == IDM_JWS_ES256;
  case KIND_P384:
    return a == IDM_JWS_ES384;
  case KIND_ED25519:
    return a == IDM_JWS_EDDSA || a == IDM_JWS_EDDSA_MTB1;
  }
  return false;
}

bool idm_jwk_allows(const idm_jwk_t *key, idm_jws_alg_t alg) {
  if (!key || alg_refused(alg) || !kind_allows(key->kind, alg))
    return false;
  if (key->alg == IDM_JWS_UNKNOWN || key->alg == alg)
    return true;
  /* The batch profile signs with the same Ed25519 key as EdDSA (docs/TOKENS.md). */
  return key->alg == IDM_JWS_EDDSA && alg == IDM_JWS_EDDSA_MTB1;
}

const char *idm_jwk_kid(const idm_jwk_t *key) { return key->kid; }
const char *idm_jwk_thumbprint(const idm_jwk_t *key) { return key->thumb; }
const char *idm_jwk_kty(const idm_jwk_t *key) {
  return key->kind == KIND_RSA ? "RSA" : key->kind == KIND_ED25519 ? "OKP" : "EC";
}
const uint8_t *idm_jwk_ed25519_public(const idm_jwk_t *key) {
  return key && key->kind == KIND_ED25519 ? key->ed : NULL;
}

static void jwk_cleanup(idm_jwk_t *k) {
  RSA_free(k->rsa);
  EC_KEY_free(k->ec);
  free(k->kid);
  memset(k, 0, sizeof *k);
}

idm_err_t idm_jose_get_b64(const json_t *obj, const char *name, uint8_t *out, size_t cap,
                           size_t want, size_t *got, idm_why_t *why) {
  json_t *v = json_object_get(obj, name);
  if (!v)
    return idm_fail(why, IDM_ERR_JWKS, "member \"%s\" is missing", name);
  if (!json_is_string(v))
    return idm_fail(why, IDM_ERR_JWKS, "member \"%s\" must be a base64url string", name);
  idm_why_t inner = {{0}};
  size_t n = 0;
  idm_err_t e = idm_b64url_decode(out, cap, &n, json_string_value(v), json_string_length(v),
                                  &inner);
  if (e == IDM_ERR_NOSPACE)
    return idm_fail(why, IDM_ERR_JWKS, "member \"%s\" is too long", name);
  if (e != IDM_OK)
    return idm_fail(why, IDM_ERR_JWKS, "member \"%s\": %s", name, idm_why_str(&inner, e));
  if (want && n != want)
    return idm_fail(why, IDM_ERR_JWKS, "member \"%s\" decodes to %zu bytes, expected %zu", name,
                    n, want);
  if (got)
    *got = n;
  return IDM_OK;
}

idm_err_t idm_jose_thumbprint(const json_t *jwk, char out[44], idm_why_t *why) {
  /* RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace. */
  static const char *const rsa[] = {"e", "kty", "n", NULL};
  static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
  static const char *const okp[] = {"crv", "kty", "x", NULL};
  const char *kty = NULL;
  if (idm_json_get_str(jwk, "kty", &kty, NULL, NULL) != IDM_OK)
    return idm_fail(why, IDM_ERR_JWKS, "member \"kty\" is missing or not a string");
  const char *const *members = !strcmp(kty, "RSA") ? rsa
                               : !strcmp(kty, "EC") ? ec
                               : !strcmp(kty, "OKP") ? okp
                                                    : NULL;
  if (!members)
    return idm_fail(why, IDM_ERR_JWKS, "no thumbprint for kty \"%s\"", kty);
  char buf[4096];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_obj_begin(&w);
  for (size_t i = 0; members[i]; i++) {
    const char *v;
    size_t vlen;
    if (idm_json_get_str(jwk, members[i], &v, &vlen, NULL) != IDM_OK)
      return idm_fail(why, IDM_ERR_JWKS, "member \"%s\" is missing or not a string", members[i]);
    idm_jsonw_key(&w, members[i]);
    idm_jsonw_strn(&w, v, vlen);
  }
  idm_jsonw_obj_end(&w);
  size_t len;
  if (idm_jsonw_finish(&w, &len) != IDM_OK)
    return idm_fail(why, IDM_ERR_JWKS, "key members too long for a thumbprint");
  uint8_t h[SHA256_DIGEST_LENGTH];
  SHA256((const uint8_t *)buf, len, h);
  size_t n = idm_b64url_encode(out, 44, h, sizeof h);
  out[n] = '\0';
  return IDM_OK;
}

/* Parses keys[idx]. Returns 1 (usable, *k filled), 0 (skipped, reason in skip) or a
 * negative error. */
static int jwk_parse(const json_t *o, size_t idx, idm_jwk_t *k, idm_why_t *skip,
                     idm_why_t *why) {
  memset(k, 0, sizeof *k);
  if (!json_is_object(o))
    return idm_fail(why, IDM_ERR_JWKS, "key %zu is not a JSON object", idx);
  const char *kty, *s;
  size_t slen;
  idm_why_t inner = {{0}};
  if (idm_json_get_str(o, "kty", &kty, NULL, &inner) != IDM_OK)
    return idm_fail(why, IDM_ERR_JWKS, "key %zu: \"kty\" is missing or not a string", idx);
  /* "use": SPIFFE bundles mark JWT keys "jwt-svid" and certificates "x509-svid". */
  json_t *use = json_object_get(o, "use");
  if (use) {
    if (!json_is_string(use))
      return idm_fail(why, IDM_ERR_JWKS, "key %zu: \"use\" must be a string", idx);
    const char *u = json_string_value(use);
    if (strcmp(u, "sig") && strcmp(u, "jwt-svid")) {
      idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: use \"%s\" is not for signatures", idx, u);
      return 0;
    }
  }
  json_t *ops = json_object_get(o, "key_ops");
  if (ops) {
    bool verify = false;
    if (!json_is_array(ops))
      return idm_fail(why, IDM_ERR_JWKS, "key %zu: \"key_ops\" must be an array", idx);
    for (size_t i = 0; i < json_array_size(ops); i++) {
      json_t *op = json_array_get(ops, i);
      if (json_is_string(op) && !strcmp(json_string_value(op), "verify"))
        verify = true;
    }
    if (!verify) {
      idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: key_ops does not include \"verify\"", idx);
      return 0;
    }
  }
  k->alg = IDM_JWS_UNKNOWN;
  json_t *alg = json_object_get(o, "alg");
  if (alg) {
    if (!json_is_string(alg))
      return idm_fail(why, IDM_ERR_JWKS, "key %zu: \"alg\" must be a string", idx);
    k->alg = idm_jws_alg_from_name(json_string_value(alg), json_string_length(alg));
    if (k->alg == IDM_JWS_UNKNOWN || alg_refused(k->alg)) {
      idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: alg \"%s\" is not supported", idx,
               json_string_value(alg));
      return 0;
    }
  }
  if (json_object_get(o, "d") || json_object_get(o, "p") || json_object_get(o, "k"))
    return idm_fail(why, IDM_ERR_JWKS,
                    "key %zu holds private key material; a JWK Set must hold public keys only",
                    idx);

  if (!strcmp(kty, "RSA")) {
    uint8_t n[IDM_RSA_MODULUS_MAX_BITS / 8 + 1], e[8];
    size_t nlen, elen;
    json_t *nv = json_object_get(o, "n");
    if (json_is_string(nv) && json_string_length(nv) > idm_b64url_encoded_len(sizeof n)) {
      idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: RSA modulus over %d bits", idx,
               IDM_RSA_MODULUS_MAX_BITS);
      return 0;
    }
    if (idm_jose_get_b64(o, "n", n, sizeof n, 0, &nlen, &inner) != IDM_OK ||
        idm_jose_get_b64(o, "e", e, sizeof e, 0, &elen, &inner) != IDM_OK)
      return idm_fail(why, IDM_ERR_JWKS, "key %zu (RSA): %s", idx, inner.text);
    BIGNUM *bn = BN_bin2bn(n, nlen, NULL), *be = BN_bin2bn(e, elen, NULL);
    if (!bn || !be) {
      BN_free(bn);
      BN_free(be);
      return idm_fail(why, IDM_ERR_NOMEM, "key %zu: out of memory", idx);
    }
    unsigned bits = BN_num_bits(bn);
    if (bits < IDM_RSA_MODULUS_MIN_BITS || bits > IDM_RSA_MODULUS_MAX_BITS) {
      BN_free(bn);
      BN_free(be);
      idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: RSA modulus of %u bits is outside %d..%d",
               idx, bits, IDM_RSA_MODULUS_MIN_BITS, IDM_RSA_MODULUS_MAX_BITS);
      return 0;
    }
    k->rsa = RSA_new();
    if (!k->rsa || !RSA_set0_key(k->rsa, bn, be, NULL)) {
      BN_free(bn);
      BN_free(be);
      jwk_cleanup(k);
      return idm_fail(why, IDM_ERR_NOMEM, "key %zu: out of memory", idx);
    }
    if (!RSA_check_key(k->rsa)) {
      jwk_cleanup(k);
      return idm_fail(why, IDM_ERR_JWKS, "key %zu (RSA): invalid modulus or exponent", idx);
    }
    k->kind = KIND_RSA;
  } else if (!strcmp(kty, "EC")) {
    if (idm_json_get_str(o, "crv", &s, &slen, NULL) != IDM_OK)
      return idm_fail(why, IDM_ERR_JWKS, "key %zu (EC): \"crv\" is missing or not a string", idx);
    size_t clen;
    int nid;
    if (!strcmp(s, "P-256"))
      k->kind = KIND_P256, clen = 32, nid = NID_X9_62_prime256v1;
    else if (!strcmp(s, "P-384"))
      k->kind = KIND_P384, clen = 48, nid = NID_secp384r1;
    else {
      idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: EC curve \"%s\" is not supported", idx, s);
      return 0;
    }
    uint8_t x[48], y[48];
    if (idm_jose_get_b64(o, "x", x, sizeof x, clen, NULL, &inner) != IDM_OK ||
        idm_jose_get_b64(o, "y", y, sizeof y, clen, NULL, &inner) != IDM_OK)
      return idm_fail(why, IDM_ERR_JWKS, "key %zu (EC %s): %s", idx, s, inner.text);
    k->ec = EC_KEY_new_by_curve_name(nid);
    BIGNUM *bx = BN_bin2bn(x, clen, NULL), *by = BN_bin2bn(y, clen, NULL);
    int ok = k->ec && bx && by && EC_KEY_set_public_key_affine_coordinates(k->ec, bx, by);
    BN_free(bx);
    BN_free(by);
    if (!ok) {
      jwk_cleanup(k);
      return idm_fail(why, IDM_ERR_JWKS, "key %zu (EC %s): the point is not on the curve", idx, s);
    }
  } else if (!strcmp(kty, "OKP")) {
    if (idm_json_get_str(o, "crv", &s, &slen, NULL) != IDM_OK)
      return idm_fail(why, IDM_ERR_JWKS, "key %zu (OKP): \"crv\" is missing or not a string", idx);
    if (strcmp(s, "Ed25519")) {
      idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: OKP curve \"%s\" is not supported", idx, s);
      return 0;
    }
    if (idm_jose_get_b64(o, "x", k->ed, sizeof k->ed, 32, NULL, &inner) != IDM_OK)
      return idm_fail(why, IDM_ERR_JWKS, "key %zu (OKP Ed25519): %s", idx, inner.text);
    k->kind = KIND_ED25519;
  } else {
    idm_fail(skip, IDM_ERR_JWKS, "key %zu skipped: kty \"%s\" is not supported", idx, kty);
    return 0;
  }

  if (k->alg != IDM_JWS_UNKNOWN && !kind_allows(k->kind, k->alg)) {
    idm_err_t e = idm_fail(why, IDM_ERR_JWKS, "key %zu: alg \"%s\" does not fit kty \"%s\"", idx,
                           idm_jws_alg_name(k->alg), kty);
    jwk_cleanup(k);
    return e;
  }
  json_t *kid = json_object_get(o, "kid");
  const char *kids = "";
  size_t kidlen = 0;
  if (kid) {
    if (!json_is_string(kid) || json_string_length(kid) > IDM_JWK_KID_MAX_BYTES) {
      jwk_cleanup(k);
      return idm_fail(why, IDM_ERR_JWKS, "key %zu: \"kid\" must be a string of at most %d bytes",
                      idx, IDM_JWK_KID_MAX_BYTES);
    }
    kids = json_string_value(kid);
    kidlen = json_string_length(kid);
  }
  k->kid = malloc(kidlen + 1);
  if (!k->kid) {
    jwk_cleanup(k);
    return idm_fail(why, IDM_ERR_NOMEM, "key %zu: out of memory", idx);
  }
  memcpy(k->kid, kids, kidlen);
  k->kid[kidlen] = '\0';
  k->kid_len = kidlen;
  idm_err_t e = idm_jose_thumbprint(o, k->thumb, &inner);
  if (e != IDM_OK) {
    jwk_cleanup(k);
    return idm_fail(why, IDM_ERR_JWKS, "key %zu: %s", idx, inner.text);
  }
  return 1;
}

idm_jwks_t *idm_jwks_parse(const char *json, size_t len, idm_why_t *why) {
  idm_err_t e;
  idm_why_t inner = {{0}};
  /* Sets are parsed with malloc even on a thread that has an arena installed: they
   * outlive any request. */
  idm_arena_t *prev = idm_json_use_arena(NULL);
  json_t *root = idm_json_parse(json, len, &e, &inner);
  idm_json_use_arena(prev);
  if (!root) {
    idm_fail(why, IDM_ERR_JWKS, "JWK Set: %s", idm_why_str(&inner, e));
    return NULL;
  }
  idm_jwks_t *set = NULL;
  json_t *keys = json_object_get(root, "keys");
  if (!json_is_object(root) || !json_is_array(keys)) {
    idm_fail(why, IDM_ERR_JWKS, "JWK Set: expected an object with a \"keys\" array");
    goto out;
  }
  json_t *seq = json_object_get(root, "spiffe_sequence");
  json_t *hint = json_object_get(root, "spiffe_refresh_hint");
  if ((seq && !json_is_integer(seq)) || (hint && !json_is_integer(hint))) {
    idm_fail(why, IDM_ERR_JWKS, "JWK Set: spiffe_sequence and spiffe_refresh_hint must be integers");
    goto out;
  }
  size_t n = json_array_size(keys);
  if (n > IDM_JWKS_KEYS_MAX) {
    idm_fail(why, IDM_ERR_JWKS, "JWK Set: %zu keys exceeds the limit of %d", n, IDM_JWKS_KEYS_MAX);
    goto out;
  }
  set = calloc(1, sizeof *set);
  if (set)
    set->keys = calloc(n ? n : 1, sizeof *set->keys);
  if (!set || !set->keys) {
    idm_jwks_free(set);
    set = NULL;
    idm_fail(why, IDM_ERR_NOMEM, "JWK Set: out of memory");
    goto out;
  }
  idm_why_t skip = {{0}};
  for (size_t i = 0; i < n; i++) {
    int r = jwk_parse(json_array_get(keys, i), i, &set->keys[set->n], &skip, &inner);
    if (r < 0) {
      idm_fail(why, IDM_ERR_JWKS, "JWK Set: %s", inner.text);
      goto fail;
    }
    if (r == 0)
      continue;
    idm_jwk_t *k = &set->keys[set->n];
    for (size_t j = 0; k->kid_len && j < set->n; j++)
      if (set->keys[j].kid_len == k->kid_len && !memcmp(set->keys[j].kid, k->kid, k->kid_len)) {
        idm_fail(why, IDM_ERR_JWKS, "JWK Set: keys %zu and an earlier key share kid \"%s\"", i,
                 k->kid);
        jwk_cleanup(k);
        goto fail;
      }
    set->n++;
  }
  if (set->n == 0) {
    if (skip.text[0])
      idm_fail(why, IDM_ERR_JWKS, "JWK Set has no usable key (%s)", skip.text);
    else
      idm_fail(why, IDM_ERR_JWKS, "JWK Set has no keys");
    goto fail;
  }
  goto out;
fail:
  idm_jwks_free(set);
  set = NULL;
out:
  json_decref(root);
  return set;
}

idm_jwks_t *idm_jwks_load(const char *path, idm_why_t *why) {
  return idm_jwks_load_digest(path, NULL, why);
}

idm_jwks_t *idm_jwks_load_digest(const char *path, uint8_t sha256[32], idm_why_t *why) {
  char *buf = NULL;
  size_t len = 0;
  idm_why_t inner = {{0}};
  idm_err_t e = idm_file_read(path, IDM_KEYFILE_MAX_BYTES, &buf, &len, &inner);
  if (e != IDM_OK) {
    idm_fail(why, IDM_ERR_JWKS, "%s", idm_why_str(&inner, e));
    return NULL;
  }
  idm_jwks_t *set = idm_jwks_parse(buf, len, &inner);
  if (sha256)
    SHA256((const uint8_t *)buf, len, sha256);
  free(buf);
  if (!set)
    idm_fail(why, IDM_ERR_JWKS, "%s: %s", path, inner.text);
  return set;
}

void idm_jwks_free(idm_jwks_t *set) {
  if (!set)
    return;
  for (size_t i = 0; i < set->n; i++)
    jwk_cleanup(&set->keys[i]);
  free(set->keys);
  free(set);
}

size_t idm_jwks_count(const idm_jwks_t *set) { return set ? set->n : 0; }
const idm_jwk_t *idm_jwks_at(const idm_jwks_t *set, size_t i) {
  return set && i < set->n ? &set->keys[i] : NULL;
}
const idm_jwk_t *idm_jwks_find(const idm_jwks_t *set, const char *kid, size_t kid_len) {
  if (!set || !kid || !kid_len)
    return NULL;
  for (size_t i = 0; i < set->n; i++)
    if (set->keys[i].kid_len == kid_len && !memcmp(set->keys[i].kid, kid, kid_len))
      return &set->keys[i];
  return NULL;
}

/* ---- compact JWS parsing ------------------------------------------------------------ */

void idm_jws_cleanup(idm_jws_t *jws) {
  if (!jws || !jws->heap_)
    return;
  json_decref(jws->header);
  json_decref(jws->claims);
  free(jws->heap_);
  jws->heap_ = NULL;
  jws->header = jws->claims = NULL;
}

static idm_err_t parse_json_obj(json_t **out, const uint8_t *p, size_t n, const char *what,
                                idm_arena_t *arena, idm_why_t *why) {
  idm_err_t e;
  idm_why_t inner = {{0}};
  size_t failures = arena ? arena->failures : 0;
  json_t *v = idm_json_parse((const char *)p, n, &e, &inner);
  /* jansson reports a failed allocation as a syntax error; an arena that refused an
   * allocation during the parse means load to shed, not a malformed token. */
  if (!v && arena && arena->failures != failures)
    return idm_fail(why, IDM_ERR_ARENA_FULL, "request arena too small to parse the JWS %s", what);
  if (!v)
    return idm_fail(why, IDM_ERR_JWS_FORMAT, "JWS %s: %s", what, idm_why_str(&inner, e));
  if (!json_is_object(v)) {
    json_decref(v);
    return idm_fail(why, IDM_ERR_JWS_FORMAT, "JWS %s is not a JSON object", what);
  }
  *out = v;
  return IDM_OK;
}

idm_err_t idm_jws_parse(idm_jws_t *out, idm_arena_t *arena, const char *tok, size_t len,
                        idm_why_t *why) {
  memset(out, 0, sizeof *out);
  if (len > IDM_JWT_MAX_BYTES)
    return idm_fail(why, IDM_ERR_JWT_TOO_LARGE, "token of %zu bytes exceeds the %d-byte limit",
                    len, IDM_JWT_MAX_BYTES);
  const char *d1 = memchr(tok, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
  if (!d1 || !d2)
    return idm_fail(why, IDM_ERR_JWS_FORMAT, "a compact JWS has 3 dot-separated segments, found %d",
                    d1 ? 2 : 1);
  if (memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
    return idm_fail(why, IDM_ERR_JWS_FORMAT,
                    "a compact JWS has 3 dot-separated segments, found more (a JWE has 5)");
  const char *seg[3] = {tok, d1 + 1, d2 + 1};
  size_t seglen[3] = {(size_t)(d1 - tok), (size_t)(d2 - d1 - 1), len - (size_t)(d2 + 1 - tok)};
  static const char *const segname[3] = {"header", "payload", "signature"};
  if (!seglen[0] || !seglen[1])
    return idm_fail(why, IDM_ERR_JWS_FORMAT, "JWS %s segment is empty", seglen[0] ? "payload" : "header");
  size_t dmax[3], total = 0;
  for (int i = 0; i < 3; i++)
    total += dmax[i] = idm_b64url_decoded_max(seglen[i]);
  uint8_t *buf = arena ? idm_arena_alloc(arena, total, 8) : malloc(total);
  if (!buf)
    return idm_fail(why, arena ? IDM_ERR_ARENA_FULL : IDM_ERR_NOMEM,
                    "no memory to decode a %zu-byte token", len);
  if (!arena)
    out->heap_ = buf;
  uint8_t *dec[3] = {buf, buf + dmax[0], buf + dmax[0] + dmax[1]};
  size_t dlen[3];
  idm_err_t e = IDM_OK;
  for (int i = 0; i < 3; i++) {
    idm_why_t inner = {{0}};
    if (idm_b64url_decode(dec[i], dmax[i], &dlen[i], seg[i], seglen[i], &inner) != IDM_OK) {
      e = idm_fail(why, IDM_ERR_JWS_FORMAT, "JWS %s segment: %s", segname[i], inner.text);
      goto fail;
    }
  }
  if (dlen[0] > IDM_JWS_HEADER_MAX_BYTES) {
    e = idm_fail(why, IDM_ERR_JWS_HEADER, "JWS header of %zu bytes exceeds the %d-byte limit",
                 dlen[0], IDM_JWS_HEADER_MAX_BYTES);
    goto fail;
  }
  idm_arena_t *prev = idm_json_use_arena(arena);
  e = parse_json_obj(&out->header, dec[0], dlen[0], "header", arena, why);
  if (e == IDM_OK)
    e = parse_json_obj(&out->claims, dec[1], dlen[1], "payload", arena, why);
  idm_json_use_arena(prev);
  if (e != IDM_OK)
    goto fail;

  json_t *alg = json_object_get(out->header, "alg");
  if (!alg) {
    e = idm_fail(why, IDM_ERR_JWS_HEADER, "JWS header has no \"alg\"");
    goto fail;
  }
  if (!json_is_string(alg)) {
    e = idm_fail(why, IDM_ERR_JWS_HEADER, "JWS header \"alg\" must be a string");
    goto fail;
  }
  out->alg_name = json_string_value(alg);
  out->alg = idm_jws_alg_from_name(out->alg_name, json_string_length(alg));
  json_t *kid = json_object_get(out->header, "kid");
  if (kid) {
    if (!json_is_string(kid)) {
      e = idm_fail(why, IDM_ERR_JWS_HEADER, "JWS header \"kid\" must be a string");
      goto fail;
    }
    out->kid = json_string_value(kid);
    out->kid_len = json_string_length(kid);
  }
  json_t *typ = json_object_get(out->header, "typ");
  if (typ) {
    if (!json_is_string(typ)) {
      e = idm_fail(why, IDM_ERR_JWS_HEADER, "JWS header \"typ\" must be a string");
      goto fail;
    }
    out->typ = json_string_value(typ);
  }
  /* RFC 7515 §4.1.11: a recipient that does not understand a critical extension must
   * reject the JWS. We implement none (this also refuses RFC 7797 "b64": false). */
  if (json_object_get(out->header, "crit")) {
    e = idm_fail(why, IDM_ERR_JWS_HEADER, "JWS header has \"crit\" extensions, none are supported");
    goto fail;
  }
  if (json_object_get(out->header, "b64")) {
    e = idm_fail(why, IDM_ERR_JWS_HEADER, "JWS header \"b64\" (unencoded payload) is not supported");
    goto fail;
  }
  out->signing_input = tok;
  out->signing_input_len = seglen[0] + 1 + seglen[1];
  out->payload = dec[1];
  out->payload_len = dlen[1];
  out->sig = dec[2];
  out->sig_len = dlen[2];
  return IDM_OK;
fail:
  if (!arena)
    idm_jws_cleanup(out);
  memset(out, 0, sizeof *out);
  return e;
}

/* ---- verification ------------------------------------------------------------------ */

static const EVP_MD *alg_md(idm_jws_alg_t a) {
  switch (a) {
  case IDM_JWS_RS256: case IDM_JWS_PS256: case IDM_JWS_ES256:
    return EVP_sha256();
  case IDM_JWS_RS384: case IDM_JWS_PS384: case IDM_JWS_ES384:
    return EVP_sha384();
  case IDM_JWS_RS512: case IDM_JWS_PS512:
    return EVP_sha512();
  default:
    return NULL;
  }
}

static idm_err_t verify_ecdsa(const idm_jws_t *jws, const idm_jwk_t *key, const EVP_MD *md,
                              idm_why_t *why) {
  size_t clen = key->kind == KIND_P256 ? 32 : 48;
  if (jws->sig_len != 2 * clen)
    return idm_fail(why, IDM_ERR_JWS_SIGNATURE,
                    "%s signature must be %zu bytes (raw r||s), got %zu", jws->alg_name, 2 * clen,
                    jws->sig_len);
  uint8_t dg[EVP_MAX_MD_SIZE];
  unsigned dlen = 0;
  if (!EVP_Digest(jws->signing_input, jws->signing_input_len, dg, &dlen, md, NULL))
    return idm_fail(why, IDM_ERR_NOMEM, "digest failed");
  ECDSA_SIG *sig = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(jws->sig, clen, NULL), *s = BN_bin2bn(jws->sig + clen, clen, NULL);
  if (!sig || !r || !s || !ECDSA_SIG_set0(sig, r, s)) {
    ECDSA_SIG_free(sig);
    BN_free(r);
    BN_free(s);
    return idm_fail(why, IDM_ERR_NOMEM, "out of memory");
  }
  int ok = ECDSA_do_verify(dg, dlen, sig, key->ec);
  ECDSA_SIG_free(sig);
  return ok ? IDM_OK
            : idm_fail(why, IDM_ERR_JWS_SIGNATURE, "%s signature does not verify with key %s",
                       jws->alg_name, key->kid_len ? key->kid : key->thumb);
}

static idm_err_t verify_rsa(const idm_jws_t *jws, const idm_jwk_t *key, const EVP_MD *md,
                            idm_why_t *why) {
  if (jws->sig_len != RSA_size(key->rsa))
    return idm_fail(why, IDM_ERR_JWS_SIGNATURE, "%s signature must be %u bytes, got %zu",
                    jws->alg_name, RSA_size(key->rsa), jws->sig_len);
  uint8_t dg[EVP_MAX_MD_SIZE];
  unsigned dlen = 0;
  if (!EVP_Digest(jws->signing_input, jws->signing_input_len, dg, &dlen, md, NULL))
    return idm_fail(why, IDM_ERR_NOMEM, "digest failed");
  int ok;
  if (jws->alg >= IDM_JWS_PS256)
    /* RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash. */
    ok = RSA_verify_pss_mgf1(key->rsa, dg, dlen, md, md, -1, jws->sig, jws->sig_len);
  else
    ok = RSA_verify(EVP_MD_type(md), dg, dlen, jws->sig, jws->sig_len, key->rsa);
  return ok ? IDM_OK
            : idm_fail(why, IDM_ERR_JWS_SIGNATURE, "%s signature does not verify with key %s",
                       jws->alg_name, key->kid_len ? key->kid : key->thumb);
}

idm_err_t idm_jws_verify(const idm_jws_t *jws, const idm_jwk_t *key, idm_why_t *why) {
  if (alg_refused(jws->alg))
    return idm_fail(why, IDM_ERR_JWS_ALG_REFUSED, "alg \"%s\" is never accepted", jws->alg_name);
  if (jws->alg == IDM_JWS_UNKNOWN)
    return idm_fail(why, IDM_ERR_JWS_ALG_UNKNOWN, "alg \"%.64s\" is not supported",
                    jws->alg_name ? jws->alg_name : "");
  if (jws->alg == IDM_JWS_EDDSA_MTB1)
    return idm_fail(why, IDM_ERR_JWS_ALG_UNKNOWN,
                    "alg \"EdDSA-MTB1\" is a batch-profile token; verify it with the batch verifier");
  if (!key)
    return idm_fail(why, IDM_ERR_JWS_KID_UNKNOWN, "no key to verify with");
  if (!idm_jwk_allows(key, jws->alg))
    return idm_fail(why, IDM_ERR_JWS_ALG_MISMATCH, "alg \"%s\" does not fit key %s (%s%s%s)",
                    jws->alg_name, key->kid_len ? key->kid : key->thumb, idm_jwk_kty(key),
                    key->alg != IDM_JWS_UNKNOWN ? ", alg " : "",
                    key->alg != IDM_JWS_UNKNOWN ? idm_jws_alg_name(key->alg) : "");
  switch (jws->alg) {
  case IDM_JWS_EDDSA:
    if (jws->sig_len != ED25519_SIGNATURE_LEN)
      return idm_fail(why, IDM_ERR_JWS_SIGNATURE, "EdDSA signature must be 64 bytes, got %zu",
                      jws->sig_len);
    if (!ED25519_verify((const uint8_t *)jws->signing_input, jws->signing_input_len, jws->sig,
                        key->ed))
      return idm_fail(why, IDM_ERR_JWS_SIGNATURE, "EdDSA signature does not verify with key %s",
                      key->kid_len ? key->kid : key->thumb);
    return IDM_OK;
  case IDM_JWS_ES256:
  case IDM_JWS_ES384:
    return verify_ecdsa(jws, key, alg_md(jws->alg), why);
  default:
    return verify_rsa(jws, key, alg_md(jws->alg), why);
  }
}

idm_err_t idm_jws_verify_set(const idm_jws_t *jws, const idm_jwks_t *set, idm_why_t *why) {
  const idm_jwk_t *key = NULL;
  if (jws->kid) {
    key = idm_jwks_find(set, jws->kid, jws->kid_len);
    if (!key)
      return idm_fail(why, IDM_ERR_JWS_KID_UNKNOWN, "no key with kid \"%.64s\" in the key set",
                      jws->kid);
  } else {
    size_t fits = 0;
    for (size_t i = 0; i < idm_jwks_count(set); i++)
      if (idm_jwk_allows(&set->keys[i], jws->alg))
        key = &set->keys[i], fits++;
    if (fits != 1 && !alg_refused(jws->alg) && jws->alg != IDM_JWS_UNKNOWN)
      return idm_fail(why, IDM_ERR_JWS_KID_UNKNOWN,
                      "token has no kid and %zu keys of the set fit alg %s", fits, jws->alg_name);
  }
  return idm_jws_verify(jws, key, why);
}
