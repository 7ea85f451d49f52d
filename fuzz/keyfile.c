/* Fuzz target: key files on disk (engine/crypto/keys.c, idm_keyring_load), as the server
 * reads them at start and on SIGHUP and the CLI reads them for `keys list`, `jwks` and
 * `token mint`.
 *
 * Input: byte 0 says which names the files get (bits 0-1 and 2-3: the kid of a fixed
 * Ed25519 key, the kid of a fixed P-256 key, or a name that is no kid) and whether the
 * first file is readable by group (bit 4: must be refused); the rest is one key file, or
 * two separated by the line "--\n". The files are written 0600 into an empty 0700
 * directory.
 *
 * Properties: loading is deterministic; a refusal names the directory or file at fault;
 * an accepted keyring holds at most the files given, every key has the kid its file is
 * named after (so a valid file under another name is refused), the published JWK Set parses
 * back with one key per keyring key, each key is found by its kid, and an active signer
 * produces a signature that verifies under the published key. */
#define _GNU_SOURCE
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/keys.h"
#include "fuzz_files.h"

#define NOW 1800000000LL

static char dir[128], kd[192];
static fz_edkey_t ed;
static char ec_kid[44], ec_x[48], ec_y[48], ec_d[48];
static idm_clock_t clk;

static void setup(void) {
  idm_json_init();
  idm_clock_set_s(&clk, NOW);
  fz_tmpdir(dir, sizeof dir, "keyfile");
  snprintf(kd, sizeof kd, "%s/keys", dir);
  fz_edkey(&ed, 11);
  /* The P-256 key of scalar 0x0101...01 + i. */
  uint8_t d[32], x[32], y[32];
  for (int i = 0; i < 32; i++)
    d[i] = (uint8_t)(1 + i);
  EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  BIGNUM *bd = BN_bin2bn(d, 32, NULL), *bx = BN_new(), *by = BN_new();
  EC_POINT *pt = EC_POINT_new(EC_KEY_get0_group(ec));
  if (!ec || !bd || !bx || !by || !pt ||
      !EC_POINT_mul(EC_KEY_get0_group(ec), pt, bd, NULL, NULL, NULL) ||
      !EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(ec), pt, bx, by, NULL) ||
      !BN_bn2bin_padded(x, 32, bx) || !BN_bn2bin_padded(y, 32, by))
    abort();
  ec_x[idm_b64url_encode(ec_x, sizeof ec_x, x, 32)] = 0;
  ec_y[idm_b64url_encode(ec_y, sizeof ec_y, y, 32)] = 0;
  ec_d[idm_b64url_encode(ec_d, sizeof ec_d, d, 32)] = 0;
  json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", ec_x, "y", ec_y);
  if (!o || idm_jose_thumbprint(o, ec_kid, NULL) != IDM_OK)
    abort();
  json_decref(o);
  EC_POINT_free(pt);
  BN_free(bd);
  BN_free(bx);
  BN_free(by);
  EC_KEY_free(ec);
}

static const char *name_of(int sel) {
  switch (sel & 3) {
  case 0: return ed.kid;
  case 1: return ec_kid;
  case 2: return "not-a-kid";
  default: return "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  }
}

static void write_seeds(const char *out) {
  char buf[4096], path[512];
  static const struct {
    const char *name;
    int ctl;
    const char *state;
    const char *extra;
  } s[] = {{"ed-active", 0, "active", ""},
           {"ed-next", 0, "next", ""},
           {"ed-retired", 0, "retired", ",\"retired\":1799990000,\"publish_until\":1800003600"},
           {"ed-retired-gone", 0, "retired", ",\"retired\":1700000000,\"publish_until\":1700003600"},
           {"ed-retired-nopublish", 0, "retired", ""},
           {"ed-wrong-name", 2, "active", ""},
           {"ed-group-readable", 16, "active", ""}};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    int n = snprintf(buf, sizeof buf,
                     "%c{\"idmint_key\":1,\"alg\":\"EdDSA\",\"state\":\"%s\",\"created\":1799000000%s,"
                     "\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"d\":\"%s\","
                     "\"kid\":\"%s\"}}\n",
                     s[i].ctl, s[i].state, s[i].extra, ed.x, ed.d, ed.kid);
    snprintf(path, sizeof path, "%s/%s", out, s[i].name);
    fz_write(path, buf, (size_t)n, 0644);
  }
  int n = snprintf(buf, sizeof buf,
                   "%c{\"idmint_key\":1,\"alg\":\"ES256\",\"state\":\"active\",\"created\":1799000000,"
                   "\"activated\":1799000001,\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
                   "\"y\":\"%s\",\"d\":\"%s\",\"kid\":\"%s\",\"alg\":\"ES256\",\"use\":\"sig\"}}\n",
                   1, ec_x, ec_y, ec_d, ec_kid);
  snprintf(path, sizeof path, "%s/es256-active", out);
  fz_write(path, buf, (size_t)n, 0644);
  n = snprintf(buf, sizeof buf,
               "%c{\"idmint_key\":1,\"alg\":\"EdDSA\",\"state\":\"active\",\"created\":1799000000,"
               "\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"d\":\"%s\"}}\n--\n"
               "{\"idmint_key\":1,\"alg\":\"ES256\",\"state\":\"next\",\"created\":1799500000,"
               "\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"d\":\"%s\"}}",
               0 | 1 << 2, ed.x, ed.d, ec_x, ec_y, ec_d);
  snprintf(path, sizeof path, "%s/two-keys", out);
  fz_write(path, buf, (size_t)n, 0644);
  n = snprintf(buf, sizeof buf,
               "%c{\"idmint_key\":1,\"alg\":\"ES256\",\"state\":\"active\",\"created\":1799000000,"
               "\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"d\":\"%s\"}}",
               1, ec_y, ec_x, ec_d);
  snprintf(path, sizeof path, "%s/es256-off-curve", out);
  fz_write(path, buf, (size_t)n, 0644);
  static const char *const bad[] = {
      "\x00{\"idmint_key\":2}", "\x00{\"idmint_key\":1,\"alg\":\"RS256\"}",
      "\x00{\"idmint_key\":1,\"alg\":\"EdDSA\",\"state\":\"active\",\"created\":-1}",
      "\x00{\"idmint_key\":1,\"alg\":\"EdDSA\",\"state\":\"active\",\"created\":1,\"jwk\":{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\",\"d\":\"AA\"}}",
      "\x00{\"idmint_key\":1,", "\x00[]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(path, sizeof path, "%s/bad-%zu", out, i);
    fz_write(path, bad[i], 1 + strlen(bad[i] + 1), 0644);
  }
}

static idm_keyring_t *load(idm_why_t *why) {
  memset(why, 0, sizeof *why);
  return idm_keyring_load(kd, &clk, why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!kd[0]) {
    setup();
    const char *out = getenv("IDM_FUZZ_WRITE_SEEDS");
    if (out)
      write_seeds(out);
  }
  if (size < 1 || size > 64 * 1024)
    return 0;
  uint8_t ctl = data[0];
  data++, size--;
  if (mkdir(kd, 0700) || chmod(kd, 0700))
    abort();
  const uint8_t *sep = size >= 3 ? memmem(data, size, "\n--\n", 4) : NULL;
  const uint8_t *part[2] = {data, sep ? sep + 4 : NULL};
  size_t len[2] = {sep ? (size_t)(sep - data) : size, sep ? size - (size_t)(sep + 4 - data) : 0};
  const char *names[2] = {name_of(ctl), name_of(ctl >> 2)};
  int files = 0;
  char path[2][320];
  for (int i = 0; i < 2 && part[i]; i++) {
    snprintf(path[i], sizeof path[i], "%s/%s.json", kd, names[i]);
    if (i == 1 && !strcmp(path[0], path[1]))
      break;
    fz_write(path[i], part[i], len[i], i == 0 && (ctl & 16) ? 0640 : 0600);
    files++;
  }
  idm_why_t w1, w2;
  idm_keyring_t *a = load(&w1), *b = load(&w2);
  if (getenv("IDM_FUZZ_VERBOSE"))
    fprintf(stderr, "keyfile: %s\n", a ? "accepted" : w1.text);
  if (!a != !b || (!a && strcmp(w1.text, w2.text)))
    abort(); /* not deterministic */
  if (!a) {
    if (!strstr(w1.text, kd))
      abort(); /* a refusal that names neither the directory nor the file */
  } else {
    if ((ctl & 16) || idm_keyring_count(a) > (size_t)files ||
        idm_keyring_count(a) != idm_keyring_count(b))
      abort();
    size_t jl;
    const char *js = idm_keyring_jwks_json(a, &jl);
    idm_jwks_t *set = idm_keyring_count(a) ? idm_jwks_parse(js, jl, NULL) : NULL;
    if (idm_keyring_count(a) && (!set || idm_jwks_count(set) != idm_keyring_count(a)))
      abort();
    for (size_t i = 0; i < idm_keyring_count(a); i++) {
      const idm_key_t *k = idm_keyring_at(a, i);
      const char *kid = idm_key_kid(k);
      bool named = false;
      for (int f = 0; f < files; f++)
        named |= !strcmp(kid, names[f]);
      if (!named || idm_keyring_find(a, kid, strlen(kid)) != k || !idm_jwks_find(set, kid, strlen(kid)))
        abort();
      if (idm_key_state(k) == IDM_KEY_RETIRED && idm_key_publish_until_s(k) <= NOW)
        abort(); /* an expired retired key is still published */
    }
    for (int alg = IDM_KEY_EDDSA; alg <= IDM_KEY_ES256; alg++) {
      const idm_key_t *k = idm_keyring_signer(a, (idm_key_alg_t)alg);
      if (!k)
        continue;
      if (idm_key_state(k) != IDM_KEY_ACTIVE || (int)idm_key_alg(k) != alg)
        abort();
      static const uint8_t msg[] = "fuzz";
      uint8_t sig[IDM_SIG_MAX];
      size_t sl = 0;
      if (idm_key_sign(k, sig, &sl, msg, sizeof msg) != IDM_OK)
        abort();
      const idm_jwk_t *pub = idm_jwks_find(set, idm_key_kid(k), IDM_KID_LEN);
      idm_jws_t jws;
      memset(&jws, 0, sizeof jws);
      jws.alg = alg == IDM_KEY_EDDSA ? IDM_JWS_EDDSA : IDM_JWS_ES256;
      jws.signing_input = (const char *)msg;
      jws.signing_input_len = sizeof msg;
      jws.sig = sig;
      jws.sig_len = sl;
      if (!pub || idm_jws_verify(&jws, pub, NULL) != IDM_OK)
        abort(); /* the signer and the published key disagree */
    }
    idm_jwks_free(set);
  }
  idm_keyring_free(a);
  idm_keyring_free(b);
  for (int i = 0; i < files; i++)
    unlink(path[i]);
  if (rmdir(kd))
    abort();
  return 0;
}
