/* Signing keys: the key directory, rotation, signing and the published JWK Set.
 *
 * Design. A key directory holds one JSON file per key, named "<kid>.json" where kid is
 * the RFC 7638 thumbprint of the public key (docs/TOKENS.md "Key files"):
 *
 *   {"idmint_key":1, "alg":"EdDSA", "state":"active",
 *    "created":1700000000, "activated":1700000000, "retired":0, "publish_until":0,
 *    "jwk":{"kty":"OKP","crv":"Ed25519","x":"…","d":"…","kid":"…","alg":"EdDSA","use":"sig"}}
 *
 * The private key is a standard JWK with "d", so any JOSE library can import it. Every
 * file is validated completely at load (mode, JSON, members, that "d" matches the public
 * part, that the name is the thumbprint): a key that loads is a key that signs. One bad
 * file refuses the whole directory, with a reason naming the file, because signing with
 * a silently reduced key set is worse than not starting.
 *
 * A loaded keyring is immutable: the signing objects (Ed25519 private key bytes, EC_KEY)
 * are only read afterwards, so idm_key_sign is thread-safe without locks. The published
 * JWK Set is serialized once at load and parsed once more into an idm_jwks_t, so the
 * server's own verifier (introspection) uses exactly what it publishes.
 *
 * Rotation per algorithm: NEXT (published, never signs) -> ACTIVE (signs) -> RETIRED
 * (published until publish_until = retired + max_token_ttl + max leeway, then dropped
 * from the JWKS and deleted by the next rotate). A rotation writes the new NEXT first,
 * then promotes the old NEXT, then retires the old ACTIVE, so a crash in between leaves a
 * directory that still loads: two ACTIVE keys of one algorithm are tolerated and the one
 * activated last signs, the other stays published. */
#include "crypto/keys.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/b64url.h"
#include "core/file.h"
#include "core/json.h"
#include "core/jsonw.h"
#include "core/limits.h"
#include "crypto/internal.h"
#include "crypto/jose.h"

struct idm_key {
  idm_key_alg_t alg;
  idm_key_state_t state;
  char kid[IDM_KID_LEN + 1];
  int64_t created_s, activated_s, retired_s, publish_until_s; /* 0: not yet */
  uint8_t ed_priv[ED25519_PRIVATE_KEY_LEN];                 /* EdDSA: seed || public */
  uint8_t ed_pub[ED25519_PUBLIC_KEY_LEN];
  EC_KEY *ec;                                                /* ES256 */
};

struct idm_keyring {
  size_t n;
  idm_key_t *keys;
  const idm_key_t *signer[2]; /* per idm_key_alg_t */
  char *jwks;                 /* published JWK Set, NUL-terminated */
  size_t jwks_len;
  idm_jwks_t *set;            /* jwks parsed back */
};

static const char *const state_names[] = {"next", "active", "retired"};

const char *idm_key_alg_name(idm_key_alg_t alg) { return alg == IDM_KEY_ES256 ? "ES256" : "EdDSA"; }
int idm_key_alg_from_name(const char *name) {
  if (!name)
    return -1;
  if (!strcmp(name, "EdDSA"))
    return IDM_KEY_EDDSA;
  if (!strcmp(name, "ES256"))
    return IDM_KEY_ES256;
  return -1;
}
const char *idm_key_state_name(idm_key_state_t s) { return state_names[s]; }

const char *idm_key_kid(const idm_key_t *k) { return k->kid; }
idm_key_alg_t idm_key_alg(const idm_key_t *k) { return k->alg; }
idm_key_state_t idm_key_state(const idm_key_t *k) { return k->state; }
int64_t idm_key_created_s(const idm_key_t *k) { return k->created_s; }
int64_t idm_key_activated_s(const idm_key_t *k) { return k->activated_s; }
int64_t idm_key_retired_s(const idm_key_t *k) { return k->retired_s; }
int64_t idm_key_publish_until_s(const idm_key_t *k) { return k->publish_until_s; }

static void key_cleanup(idm_key_t *k) {
  EC_KEY_free(k->ec);
  OPENSSL_cleanse(k, sizeof *k);
}

/* ---- public JWK ------------------------------------------------------------------ */

/* Writes the public members kty, crv, x (, y) of k into w (inside an open object). */
static void write_public_members(idm_jsonw_t *w, const idm_key_t *k) {
  char x[64], y[64];
  size_t xl, yl = 0;
  if (k->alg == IDM_KEY_EDDSA) {
    xl = idm_b64url_encode(x, sizeof x, k->ed_pub, sizeof k->ed_pub);
  } else {
    uint8_t bx[32] = {0}, by[32] = {0};
    BIGNUM *X = BN_new(), *Y = BN_new();
    if (X && Y)
      EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(k->ec), EC_KEY_get0_public_key(k->ec),
                                          X, Y, NULL);
    if (X)
      BN_bn2bin_padded(bx, 32, X);
    if (Y)
      BN_bn2bin_padded(by, 32, Y);
    BN_free(X);
    BN_free(Y);
    xl = idm_b64url_encode(x, sizeof x, bx, 32);
    yl = idm_b64url_encode(y, sizeof y, by, 32);
  }
  idm_jsonw_key(w, "kty");
  idm_jsonw_str(w, k->alg == IDM_KEY_EDDSA ? "OKP" : "EC");
  idm_jsonw_key(w, "crv");
  idm_jsonw_str(w, k->alg == IDM_KEY_EDDSA ? "Ed25519" : "P-256");
  idm_jsonw_key(w, "x");
  idm_jsonw_strn(w, x, xl);
  if (k->alg == IDM_KEY_ES256) {
    idm_jsonw_key(w, "y");
    idm_jsonw_strn(w, y, yl);
  }
}

static void write_jwk(idm_jsonw_t *w, const idm_key_t *k, bool private_part) {
  idm_jsonw_obj_begin(w);
  write_public_members(w, k);
  if (private_part) {
    uint8_t d[32];
    if (k->alg == IDM_KEY_EDDSA)
      memcpy(d, k->ed_priv, 32); /* the seed */
    else
      BN_bn2bin_padded(d, 32, EC_KEY_get0_private_key(k->ec));
    char ds[64];
    size_t dl = idm_b64url_encode(ds, sizeof ds, d, 32);
    idm_jsonw_key(w, "d");
    idm_jsonw_strn(w, ds, dl);
    OPENSSL_cleanse(d, sizeof d);
    OPENSSL_cleanse(ds, sizeof ds);
  }
  idm_jsonw_key(w, "kid");
  idm_jsonw_str(w, k->kid);
  idm_jsonw_key(w, "alg");
  idm_jsonw_str(w, idm_key_alg_name(k->alg));
  idm_jsonw_key(w, "use");
  idm_jsonw_str(w, "sig");
  idm_jsonw_obj_end(w);
}

/* kid = RFC 7638 thumbprint of the public key. */
static idm_err_t key_compute_kid(idm_key_t *k, idm_why_t *why) {
  char buf[512];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_obj_begin(&w);
  write_public_members(&w, k);
  idm_jsonw_obj_end(&w);
  size_t len;
  if (idm_jsonw_finish(&w, &len) != IDM_OK)
    return idm_fail(why, IDM_ERR_SIGN, "public key does not serialize");
  json_t *o = json_loadb(buf, len, 0, NULL);
  if (!o)
    return idm_fail(why, IDM_ERR_NOMEM, "out of memory");
  idm_err_t e = idm_jose_thumbprint(o, k->kid, why);
  json_decref(o);
  return e;
}

/* ---- key files ------------------------------------------------------------------- */

static idm_err_t key_file_path(char *out, size_t cap, const char *dir, const char *kid) {
  char name[IDM_KID_LEN + 8];
  snprintf(name, sizeof name, "%s.json", kid);
  return idm_path_join(out, cap, dir, name);
}

static idm_err_t key_write(const char *dir, const idm_key_t *k, idm_why_t *why) {
  char buf[2048];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "idmint_key");
  idm_jsonw_int(&w, 1);
  idm_jsonw_key(&w, "alg");
  idm_jsonw_str(&w, idm_key_alg_name(k->alg));
  idm_jsonw_key(&w, "state");
  idm_jsonw_str(&w, state_names[k->state]);
  idm_jsonw_key(&w, "created");
  idm_jsonw_int(&w, k->created_s);
  idm_jsonw_key(&w, "activated");
  idm_jsonw_int(&w, k->activated_s);
  idm_jsonw_key(&w, "retired");
  idm_jsonw_int(&w, k->retired_s);
  idm_jsonw_key(&w, "publish_until");
  idm_jsonw_int(&w, k->publish_until_s);
  idm_jsonw_key(&w, "jwk");
  write_jwk(&w, k, true);
  idm_jsonw_obj_end(&w);
  size_t len;
  idm_err_t e = idm_jsonw_finish(&w, &len);
  if (e == IDM_OK && len < sizeof buf)
    buf[len++] = '\n';
  char path[4096];
  if (e == IDM_OK && key_file_path(path, sizeof path, dir, k->kid) != IDM_OK)
    e = idm_fail(why, IDM_ERR_INVALID_ARG, "%s: key directory path too long", dir);
  else if (e != IDM_OK)
    e = idm_fail(why, IDM_ERR_SIGN, "key file does not serialize");
  else
    e = idm_file_write_atomic(path, buf, len, 0600, why);
  OPENSSL_cleanse(buf, sizeof buf);
  return e;
}

static idm_err_t get_time(const json_t *o, const char *name, bool required, int64_t *out,
                          const char *path, idm_why_t *why) {
  json_t *v = json_object_get(o, name);
  *out = 0;
  if (!v && !required)
    return IDM_OK;
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    return idm_fail(why, IDM_ERR_KEY_FILE, "%s: \"%s\" must be a non-negative integer (seconds)",
                    path, name);
  *out = json_integer_value(v);
  return IDM_OK;
}

/* Loads and validates one key file. */
static idm_err_t key_load(const char *path, const char *stem, idm_key_t *k, idm_why_t *why) {
  memset(k, 0, sizeof *k);
  char *buf = NULL;
  size_t len = 0;
  idm_why_t inner = {{0}};
  idm_err_t e = idm_file_read_secret(path, IDM_KEYFILE_MAX_BYTES, &buf, &len, &inner);
  if (e != IDM_OK)
    return idm_fail(why, e == IDM_ERR_PERM ? IDM_ERR_PERM : IDM_ERR_KEY_FILE, "%s",
                    idm_why_str(&inner, e));
  idm_arena_t *prev = idm_json_use_arena(NULL);
  json_t *o = idm_json_parse(buf, len, &e, &inner);
  idm_json_use_arena(prev);
  OPENSSL_cleanse(buf, len);
  free(buf);
  if (!o)
    return idm_fail(why, IDM_ERR_KEY_FILE, "%s: not a key file (truncated or invalid JSON: %s)",
                    path, idm_why_str(&inner, e));
  const char *alg, *state;
  json_t *jwk = json_object_get(o, "jwk");
  json_t *ver = json_object_get(o, "idmint_key");
  if (!json_is_object(o) || !json_is_integer(ver)) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: not an idmint key file (no \"idmint_key\" version)",
                 path);
    goto out;
  }
  if (json_integer_value(ver) != 1) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: key file version %lld is not supported (1 is)", path,
                 (long long)json_integer_value(ver));
    goto out;
  }
  if (idm_json_get_str(o, "alg", &alg, NULL, NULL) != IDM_OK || idm_key_alg_from_name(alg) < 0) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: \"alg\" must be \"EdDSA\" or \"ES256\"", path);
    goto out;
  }
  k->alg = (idm_key_alg_t)idm_key_alg_from_name(alg);
  if (idm_json_get_str(o, "state", &state, NULL, NULL) != IDM_OK) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: \"state\" is missing or not a string", path);
    goto out;
  }
  if (!strcmp(state, "next"))
    k->state = IDM_KEY_NEXT;
  else if (!strcmp(state, "active"))
    k->state = IDM_KEY_ACTIVE;
  else if (!strcmp(state, "retired"))
    k->state = IDM_KEY_RETIRED;
  else {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: state \"%.32s\" is not next, active or retired", path,
                 state);
    goto out;
  }
  if ((e = get_time(o, "created", true, &k->created_s, path, why)) ||
      (e = get_time(o, "activated", false, &k->activated_s, path, why)) ||
      (e = get_time(o, "retired", false, &k->retired_s, path, why)) ||
      (e = get_time(o, "publish_until", false, &k->publish_until_s, path, why)))
    goto out;
  if (k->state == IDM_KEY_RETIRED && !k->publish_until_s) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: a retired key needs \"publish_until\"", path);
    goto out;
  }
  if (!json_is_object(jwk)) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: \"jwk\" (the private key as a JWK) is missing", path);
    goto out;
  }
  const char *kty = NULL, *crv = NULL;
  idm_json_get_str(jwk, "kty", &kty, NULL, NULL);
  idm_json_get_str(jwk, "crv", &crv, NULL, NULL);
  const char *want_kty = k->alg == IDM_KEY_EDDSA ? "OKP" : "EC";
  const char *want_crv = k->alg == IDM_KEY_EDDSA ? "Ed25519" : "P-256";
  if (!kty || !crv || strcmp(kty, want_kty) || strcmp(crv, want_crv)) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: an %s key must be a JWK with kty %s, crv %s", path,
                 alg, want_kty, want_crv);
    goto out;
  }
  uint8_t d[32], x[32], y[32];
  if (idm_jose_get_b64(jwk, "d", d, sizeof d, 32, NULL, &inner) ||
      idm_jose_get_b64(jwk, "x", x, sizeof x, 32, NULL, &inner) ||
      (k->alg == IDM_KEY_ES256 && idm_jose_get_b64(jwk, "y", y, sizeof y, 32, NULL, &inner))) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: jwk %s", path, inner.text);
    OPENSSL_cleanse(d, sizeof d);
    goto out;
  }
  if (k->alg == IDM_KEY_EDDSA) {
    ED25519_keypair_from_seed(k->ed_pub, k->ed_priv, d);
    if (CRYPTO_memcmp(k->ed_pub, x, 32)) {
      e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: jwk \"d\" does not match the public key \"x\"", path);
      OPENSSL_cleanse(d, sizeof d);
      goto out;
    }
  } else {
    k->ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *bd = BN_bin2bn(d, 32, NULL), *bx = BN_bin2bn(x, 32, NULL), *by = BN_bin2bn(y, 32, NULL);
    /* Public point first (on-curve check), then the scalar, then their agreement. */
    int ok = k->ec && bd && bx && by && EC_KEY_set_public_key_affine_coordinates(k->ec, bx, by) &&
             EC_KEY_set_private_key(k->ec, bd);
    int match = ok && EC_KEY_check_key(k->ec);
    BN_clear_free(bd);
    BN_free(bx);
    BN_free(by);
    if (!match) {
      e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: jwk %s", path,
                   ok ? "\"d\" does not match the public point (x, y)"
                      : "has an invalid private scalar or a point off the curve");
      OPENSSL_cleanse(d, sizeof d);
      goto out;
    }
  }
  OPENSSL_cleanse(d, sizeof d);
  if ((e = key_compute_kid(k, why)))
    goto out;
  if (strcmp(stem, k->kid)) {
    e = idm_fail(why, IDM_ERR_KEY_FILE,
                 "%s: file name does not match the key's thumbprint %s (files are named <kid>.json)",
                 path, k->kid);
    goto out;
  }
  const char *fkid;
  if (idm_json_get_str(jwk, "kid", &fkid, NULL, NULL) == IDM_OK && strcmp(fkid, k->kid)) {
    e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: jwk \"kid\" is not the key's thumbprint %s", path,
                 k->kid);
    goto out;
  }
out:
  json_decref(o); /* jansson does not wipe; the key file is 0600 and this is start-up */
  if (e)
    key_cleanup(k);
  return e;
}

static int key_cmp(const void *a, const void *b) {
  const idm_key_t *x = a, *y = b;
  if (x->created_s != y->created_s)
    return x->created_s < y->created_s ? -1 : 1;
  return strcmp(x->kid, y->kid);
}

/* Loads every key file of dir into a malloc'd, sorted array. */
static idm_err_t dir_load(const char *dir, idm_key_t **out, size_t *count, idm_why_t *why) {
  *out = NULL;
  *count = 0;
  struct stat st;
  if (stat(dir, &st) != 0)
    return idm_fail(why, errno == ENOENT ? IDM_ERR_NOT_FOUND : IDM_ERR_IO, "%s: %s", dir,
                    strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return idm_fail(why, IDM_ERR_KEY_FILE, "%s: not a directory", dir);
  if (st.st_mode & 022)
    return idm_fail(why, IDM_ERR_PERM,
                    "%s: mode %04o lets group or others write the key directory; run chmod 700 %s",
                    dir, (unsigned)(st.st_mode & 07777), dir);
  DIR *d = opendir(dir);
  if (!d)
    return idm_fail(why, IDM_ERR_IO, "%s: %s", dir, strerror(errno));
  idm_key_t *keys = calloc(IDM_KEYDIR_FILES_MAX, sizeof *keys);
  if (!keys) {
    closedir(d);
    return idm_fail(why, IDM_ERR_NOMEM, "%s: out of memory", dir);
  }
  size_t n = 0;
  idm_err_t e = IDM_OK;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *name = de->d_name;
    size_t nl = strlen(name);
    /* Only "*.json" files are keys; dot files and the writer's temporaries are not. */
    if (name[0] == '.' || nl < 6 || strcmp(name + nl - 5, ".json"))
      continue;
    if (n == IDM_KEYDIR_FILES_MAX) {
      e = idm_fail(why, IDM_ERR_KEY_FILE, "%s: more than %d key files", dir, IDM_KEYDIR_FILES_MAX);
      break;
    }
    char path[4096], stem[256];
    if (idm_path_join(path, sizeof path, dir, name) != IDM_OK) {
      e = idm_fail(why, IDM_ERR_INVALID_ARG, "%s: path too long", dir);
      break;
    }
    snprintf(stem, sizeof stem, "%.*s", (int)(nl - 5), name);
    if ((e = key_load(path, stem, &keys[n], why)))
      break;
    n++;
  }
  closedir(d);
  if (e) {
    for (size_t i = 0; i < n; i++)
      key_cleanup(&keys[i]);
    free(keys);
    return e;
  }
  qsort(keys, n, sizeof *keys, key_cmp);
  *out = keys;
  *count = n;
  return IDM_OK;
}

/* ---- keyring ----------------------------------------------------------------------- */

idm_keyring_t *idm_keyring_load(const char *dir, const idm_clock_t *clk, idm_why_t *why) {
  idm_key_t *all;
  size_t n;
  if (dir_load(dir, &all, &n, why))
    return NULL;
  int64_t now = idm_clock_now_s(clk);
  idm_keyring_t *kr = calloc(1, sizeof *kr);
  size_t cap = 256 + n * 400;
  char *js = malloc(cap);
  if (!kr || !js) {
    for (size_t i = 0; i < n; i++)
      key_cleanup(&all[i]);
    free(all);
    free(kr);
    free(js);
    idm_fail(why, IDM_ERR_NOMEM, "%s: out of memory", dir);
    return NULL;
  }
  kr->keys = all;
  /* Drop retired keys past their publication window (their tokens have all expired). */
  for (size_t i = 0; i < n; i++) {
    if (all[i].state == IDM_KEY_RETIRED && all[i].publish_until_s <= now)
      key_cleanup(&all[i]);
    else
      all[kr->n++] = all[i];
  }
  idm_jsonw_t w;
  idm_jsonw_init(&w, js, cap);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "keys");
  idm_jsonw_arr_begin(&w);
  for (size_t i = 0; i < kr->n; i++) {
    idm_key_t *k = &kr->keys[i];
    write_jwk(&w, k, false);
    const idm_key_t *cur = kr->signer[k->alg];
    if (k->state == IDM_KEY_ACTIVE && (!cur || k->activated_s >= cur->activated_s))
      kr->signer[k->alg] = k;
  }
  idm_jsonw_arr_end(&w);
  idm_jsonw_obj_end(&w);
  kr->jwks = js;
  if (idm_jsonw_finish(&w, &kr->jwks_len) != IDM_OK) {
    idm_fail(why, IDM_ERR_NOMEM, "%s: JWK Set does not fit", dir);
    idm_keyring_free(kr);
    return NULL;
  }
  if (kr->n) {
    idm_why_t inner = {{0}};
    kr->set = idm_jwks_parse(kr->jwks, kr->jwks_len, &inner);
    if (!kr->set) {
      idm_fail(why, IDM_ERR_JWKS, "%s: published JWK Set does not parse back: %s", dir,
               inner.text);
      idm_keyring_free(kr);
      return NULL;
    }
  }
  return kr;
}

void idm_keyring_free(idm_keyring_t *kr) {
  if (!kr)
    return;
  for (size_t i = 0; i < kr->n; i++)
    key_cleanup(&kr->keys[i]);
  free(kr->keys);
  free(kr->jwks);
  idm_jwks_free(kr->set);
  free(kr);
}

const idm_key_t *idm_keyring_signer(const idm_keyring_t *kr, idm_key_alg_t alg) {
  return kr && (alg == IDM_KEY_EDDSA || alg == IDM_KEY_ES256) ? kr->signer[alg] : NULL;
}
size_t idm_keyring_count(const idm_keyring_t *kr) { return kr ? kr->n : 0; }
const idm_key_t *idm_keyring_at(const idm_keyring_t *kr, size_t i) {
  return kr && i < kr->n ? &kr->keys[i] : NULL;
}
const char *idm_keyring_jwks_json(const idm_keyring_t *kr, size_t *len) {
  if (len)
    *len = kr->jwks_len;
  return kr->jwks;
}
const idm_jwks_t *idm_keyring_jwks(const idm_keyring_t *kr) { return kr ? kr->set : NULL; }
const idm_key_t *idm_keyring_find(const idm_keyring_t *kr, const char *kid, size_t kid_len) {
  for (size_t i = 0; kr && i < kr->n; i++)
    if (kid_len == IDM_KID_LEN && !memcmp(kr->keys[i].kid, kid, IDM_KID_LEN))
      return &kr->keys[i];
  return NULL;
}

/* ---- signing ----------------------------------------------------------------------- */

idm_err_t idm_key_sign(const idm_key_t *k, uint8_t sig[IDM_SIG_MAX], size_t *sig_len,
                       const uint8_t *msg, size_t msg_len) {
  if (k->alg == IDM_KEY_EDDSA) {
    if (!ED25519_sign(sig, msg, msg_len, k->ed_priv))
      return IDM_ERR_SIGN;
    *sig_len = ED25519_SIGNATURE_LEN;
    return IDM_OK;
  }
  uint8_t dg[SHA256_DIGEST_LENGTH];
  SHA256(msg, msg_len, dg);
  /* BoringSSL's ECDSA allocates internally (the ECDSA_SIG and its BIGNUMs). */
  ECDSA_SIG *s = ECDSA_do_sign(dg, sizeof dg, k->ec);
  if (!s)
    return IDM_ERR_SIGN;
  const BIGNUM *r, *sv;
  ECDSA_SIG_get0(s, &r, &sv);
  int ok = BN_bn2bin_padded(sig, 32, r) && BN_bn2bin_padded(sig + 32, 32, sv);
  ECDSA_SIG_free(s);
  if (!ok)
    return IDM_ERR_SIGN;
  *sig_len = 64;
  return IDM_OK;
}

/* ---- directory management (CLI) ------------------------------------------------------ */

static idm_err_t key_generate(idm_key_t *k, idm_key_alg_t alg, idm_why_t *why) {
  memset(k, 0, sizeof *k);
  k->alg = alg;
  if (alg == IDM_KEY_EDDSA) {
    ED25519_keypair(k->ed_pub, k->ed_priv);
  } else {
    k->ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    if (!k->ec || !EC_KEY_generate_key(k->ec)) {
      key_cleanup(k);
      return idm_fail(why, IDM_ERR_SIGN, "P-256 key generation failed");
    }
  }
  idm_err_t e = key_compute_kid(k, why);
  if (e)
    key_cleanup(k);
  return e;
}

static void dir_free(idm_key_t *keys, size_t n) {
  for (size_t i = 0; i < n; i++)
    key_cleanup(&keys[i]);
  free(keys);
}

static idm_err_t create_key(const char *dir, idm_key_alg_t alg, idm_key_state_t state,
                            int64_t now, char kid_out[IDM_KID_LEN + 1], idm_why_t *why) {
  idm_key_t k;
  idm_err_t e = key_generate(&k, alg, why);
  if (e)
    return e;
  k.state = state;
  k.created_s = now;
  k.activated_s = state == IDM_KEY_ACTIVE ? now : 0;
  e = key_write(dir, &k, why);
  if (!e && kid_out)
    memcpy(kid_out, k.kid, IDM_KID_LEN + 1);
  key_cleanup(&k);
  return e;
}

idm_err_t idm_keys_new(const char *dir, idm_key_alg_t alg, const idm_clock_t *clk,
                       char kid_out[IDM_KID_LEN + 1], idm_why_t *why) {
  idm_err_t e = idm_dir_ensure(dir, 0700, why);
  if (e)
    return e;
  idm_key_t *keys;
  size_t n;
  if ((e = dir_load(dir, &keys, &n, why)))
    return e;
  bool has_active = false, has_next = false;
  for (size_t i = 0; i < n; i++)
    if (keys[i].alg == alg) {
      has_active |= keys[i].state == IDM_KEY_ACTIVE;
      has_next |= keys[i].state == IDM_KEY_NEXT;
    }
  dir_free(keys, n);
  if (has_active && has_next)
    return idm_fail(why, IDM_ERR_KEY_STATE,
                    "%s: already has an active and a next %s key; run 'idmint keys rotate'", dir,
                    idm_key_alg_name(alg));
  return create_key(dir, alg, has_active ? IDM_KEY_NEXT : IDM_KEY_ACTIVE, idm_clock_now_s(clk),
                    kid_out, why);
}

idm_err_t idm_keys_rotate(const char *dir, const idm_clock_t *clk, int64_t max_token_ttl_s,
                          idm_why_t *why) {
  return idm_keys_rotate_alg(dir, clk, max_token_ttl_s, -1, why);
}

idm_err_t idm_keys_rotate_alg(const char *dir, const idm_clock_t *clk, int64_t max_token_ttl_s,
                              int only_alg, idm_why_t *why) {
  if (max_token_ttl_s <= 0)
    max_token_ttl_s = IDM_KEYS_MAX_TOKEN_TTL_S;
  idm_key_t *keys;
  size_t n;
  idm_err_t e = dir_load(dir, &keys, &n, why);
  if (e)
    return e;
  int64_t now = idm_clock_now_s(clk);
  bool any = false;
  for (int alg = IDM_KEY_EDDSA; alg <= IDM_KEY_ES256 && !e; alg++) {
    if (only_alg >= 0 && alg != only_alg)
      continue;
    idm_key_t *next = NULL;
    bool present = false;
    for (size_t i = 0; i < n; i++)
      if (keys[i].alg == (idm_key_alg_t)alg && keys[i].state != IDM_KEY_RETIRED) {
        present = true;
        if (keys[i].state == IDM_KEY_NEXT && (!next || keys[i].created_s < next->created_s))
          next = &keys[i];
      }
    if (!present)
      continue;
    any = true;
    /* 1. a new NEXT, published before it can ever sign */
    if ((e = create_key(dir, (idm_key_alg_t)alg, IDM_KEY_NEXT, now, NULL, why)))
      break;
    if (!next)
      continue; /* first rotation only pre-publishes: the current ACTIVE keeps signing */
    /* 2. promote the old NEXT */
    next->state = IDM_KEY_ACTIVE;
    next->activated_s = now;
    if ((e = key_write(dir, next, why)))
      break;
    /* 3. retire every other ACTIVE key of this alg */
    for (size_t i = 0; i < n && !e; i++)
      if (&keys[i] != next && keys[i].alg == (idm_key_alg_t)alg &&
          keys[i].state == IDM_KEY_ACTIVE) {
        keys[i].state = IDM_KEY_RETIRED;
        keys[i].retired_s = now;
        keys[i].publish_until_s = now + max_token_ttl_s + IDM_JWT_LEEWAY_MAX_S;
        e = key_write(dir, &keys[i], why);
      }
  }
  /* 4. delete retired keys whose tokens have all expired */
  for (size_t i = 0; i < n && !e; i++)
    if (keys[i].state == IDM_KEY_RETIRED && keys[i].publish_until_s <= now) {
      char path[4096];
      if (key_file_path(path, sizeof path, dir, keys[i].kid) == IDM_OK && unlink(path) != 0 &&
          errno != ENOENT)
        e = idm_fail(why, IDM_ERR_IO, "%s: %s", path, strerror(errno));
    }
  dir_free(keys, n);
  if (!e && !any)
    e = idm_fail(why, IDM_ERR_KEY_NONE, "%s: no%s%s keys to rotate; run 'idmint keys new' first",
                 dir, only_alg < 0 ? "" : " ", only_alg < 0 ? "" : idm_key_alg_name((idm_key_alg_t)only_alg));
  return e;
}
