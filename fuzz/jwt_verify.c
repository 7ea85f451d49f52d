/* Fuzz target: jwt-profile parsing and verification against a fixed JWK Set.
 *
 * The set holds an Ed25519 and a P-256 key derived from fixed secrets. The seed corpus
 * (fuzz/corpus/jwt_verify/, written by this file built with -DIDM_FUZZ_GEN) holds tokens
 * those keys really signed over a small known set of signing inputs, plus hostile
 * variants. Properties checked for every input:
 *  1. never accepts a token that was not signed by the key: an accepted token's signing
 *     input is one of the known signed ones, and for EdDSA its signature is exactly the
 *     (deterministic) signature of that input;
 *  2. parsing from an arena and from the heap agree on the outcome;
 *  3. no crash, leak or unbounded allocation (sanitizers, arena bound). */
#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64url.h"
#include "core/json.h"
#include "crypto/jose.h"
#include "crypto/jwt.h"

#define NOW_S 1800000000

static const char *const headers[] = {
    "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"ed\"}",
    "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"ec\"}",
};
static const char *const claims[] = {
    "{\"iss\":\"https://idmint.example\",\"sub\":\"workload\",\"aud\":\"db\",\"iat\":1799999000,"
    "\"nbf\":1799999000,\"exp\":4000000000,\"jti\":\"j1\",\"scope\":\"r\",\"idm\":{\"trust\":\"t\"}}",
    "{\"iss\":\"https://idmint.example\",\"sub\":\"w2\",\"aud\":[\"x\",\"db\"],\"iat\":1799999000,"
    "\"exp\":4000000000,\"jti\":\"j2\"}",
    /* signed, but refused on claims (expired) */
    "{\"iss\":\"https://idmint.example\",\"sub\":\"w3\",\"aud\":\"db\",\"iat\":1700000000,"
    "\"exp\":1700000300,\"jti\":\"j3\"}",
};
#define N_KNOWN (sizeof headers / sizeof headers[0] * (sizeof claims / sizeof claims[0]))

static uint8_t ed_priv[64], ed_pub[32];
static EC_KEY *ec;
static idm_jwks_t *set;
static char known[N_KNOWN][1024];
static size_t known_len[N_KNOWN];
static idm_arena_t arena;

static size_t b64(char *out, const void *in, size_t n) {
  return idm_b64url_encode(out, 1024, in, n);
}

static void init(void) {
  if (set)
    return;
  idm_json_init();
  uint8_t seed[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)(i + 1);
  ED25519_keypair_from_seed(ed_pub, ed_priv, seed);
  ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  BIGNUM *d = BN_new();
  BN_hex2bn(&d, "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988");
  EC_KEY_set_private_key(ec, d);
  EC_POINT *pub = EC_POINT_new(EC_KEY_get0_group(ec));
  EC_POINT_mul(EC_KEY_get0_group(ec), pub, d, NULL, NULL, NULL);
  EC_KEY_set_public_key(ec, pub);
  BIGNUM *x = BN_new(), *y = BN_new();
  EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(ec), pub, x, y, NULL);
  uint8_t bx[32], by[32];
  BN_bn2bin_padded(bx, 32, x);
  BN_bn2bin_padded(by, 32, y);
  char ex[64], ey[64], ed[64];
  ex[b64(ex, bx, 32)] = 0;
  ey[b64(ey, by, 32)] = 0;
  ed[b64(ed, ed_pub, 32)] = 0;
  char js[1024];
  snprintf(js, sizeof js,
           "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\",\"x\":\"%s\"},"
           "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\",\"x\":\"%s\",\"y\":\"%s\"}]}",
           ed, ex, ey);
  set = idm_jwks_parse(js, strlen(js), NULL);
  if (!set)
    abort();
  size_t n = 0;
  for (size_t h = 0; h < sizeof headers / sizeof headers[0]; h++)
    for (size_t c = 0; c < sizeof claims / sizeof claims[0]; c++, n++) {
      size_t o = b64(known[n], headers[h], strlen(headers[h]));
      known[n][o++] = '.';
      o += b64(known[n] + o, claims[c], strlen(claims[c]));
      known_len[n] = o;
    }
  BN_free(d);
  BN_free(x);
  BN_free(y);
  EC_POINT_free(pub);
  if (idm_arena_init(&arena, 256 * 1024) != IDM_OK)
    abort();
}

static bool is_known(const char *si, size_t len) {
  for (size_t i = 0; i < N_KNOWN; i++)
    if (known_len[i] == len && !memcmp(known[i], si, len))
      return true;
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init();
  const char *tok = (const char *)data;
  idm_clock_t clk;
  idm_clock_set_s(&clk, NOW_S);
  idm_jwt_expect_t ex = {.issuer = "https://idmint.example", .audience = "db", .leeway_s = 60};

  /* 2. arena and heap parses agree */
  idm_jws_t a, h;
  idm_arena_reset(&arena);
  idm_err_t ea = idm_jws_parse(&a, &arena, tok, size, NULL);
  idm_err_t eh = idm_jws_parse(&h, NULL, tok, size, NULL);
  if (ea != eh && ea != IDM_ERR_ARENA_FULL)
    abort();
  if (eh == IDM_OK && ea == IDM_OK &&
      (a.alg != h.alg || a.sig_len != h.sig_len || a.payload_len != h.payload_len ||
       a.signing_input_len != h.signing_input_len || memcmp(a.sig, h.sig, a.sig_len) ||
       memcmp(a.payload, h.payload, a.payload_len)))
    abort();
  /* generic JOSE verification (every alg) */
  if (eh == IDM_OK && idm_jws_verify_set(&h, set, NULL) == IDM_OK) {
    if (!is_known(h.signing_input, h.signing_input_len))
      abort(); /* 1. accepted something the key never signed */
    if (h.alg == IDM_JWS_EDDSA) {
      uint8_t sig[64];
      ED25519_sign(sig, (const uint8_t *)h.signing_input, h.signing_input_len, ed_priv);
      if (h.sig_len != 64 || memcmp(sig, h.sig, 64))
        abort();
    }
  }
  idm_jws_cleanup(&h);

  /* the jwt profile */
  idm_arena_reset(&arena);
  json_t *cl = NULL;
  if (idm_jwt_verify(set, tok, size, &ex, &clk, &arena, &cl, NULL) == IDM_OK) {
    const char *dot = memchr(tok, '.', size);
    dot = dot ? memchr(dot + 1, '.', size - (size_t)(dot + 1 - tok)) : NULL;
    if (!dot || !is_known(tok, (size_t)(dot - tok)) || !cl)
      abort();
  }
  return 0;
}

#ifdef IDM_FUZZ_GEN
/* Writes the seed corpus into the directory argv[1]. After a release build:
 *   gcc -std=gnu17 -DIDM_FUZZ_GEN -Iengine -I/usr/include/android fuzz/jwt_verify.c \
 *     build/release/engine/libidm_engine.a build/release/policy/libidm_policy.a \
 *     -L/usr/lib/x86_64-linux-gnu/android -Wl,-rpath,/usr/lib/x86_64-linux-gnu/android \
 *     -lcrypto -ljansson -luring -lnghttp2 -lxxhash -lpthread -lm -o /tmp/gen \
 *   && /tmp/gen fuzz/corpus/jwt_verify
 * Each signed seed is checked to verify (or to be refused as expired) before it is written. */
static void put(const char *dir, const char *name, const char *s) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  fwrite(s, 1, strlen(s), f);
  fclose(f);
}

int main(int argc, char **argv) {
  init();
  for (size_t i = 0; i < N_KNOWN; i++) {
    uint8_t sig[64];
    bool edd = i < sizeof claims / sizeof claims[0];
    if (edd) {
      ED25519_sign(sig, (const uint8_t *)known[i], known_len[i], ed_priv);
    } else {
      uint8_t dg[32];
      SHA256((const uint8_t *)known[i], known_len[i], dg);
      ECDSA_SIG *s = ECDSA_do_sign(dg, 32, ec);
      const BIGNUM *r, *sv;
      ECDSA_SIG_get0(s, &r, &sv);
      BN_bn2bin_padded(sig, 32, r);
      BN_bn2bin_padded(sig + 32, 32, sv);
      ECDSA_SIG_free(s);
    }
    char tok[2048];
    memcpy(tok, known[i], known_len[i]);
    size_t o = known_len[i];
    tok[o++] = '.';
    o += b64(tok + o, sig, 64);
    tok[o] = 0;
    /* the seeds must reach the acceptance path, or property 1 is never exercised */
    idm_clock_t clk;
    idm_clock_set_s(&clk, NOW_S);
    idm_jwt_expect_t ex = {.issuer = "https://idmint.example", .audience = "db"};
    idm_why_t why = {{0}};
    idm_err_t e = idm_jwt_verify(set, tok, o, &ex, &clk, NULL, NULL, &why);
    if (e != (i % 3 == 2 ? IDM_ERR_JWT_EXPIRED : IDM_OK)) {
      fprintf(stderr, "seed %zu: %s\n", i, why.text);
      return 1;
    }
    char name[32];
    snprintf(name, sizeof name, "signed_%zu", i);
    put(argv[1], name, tok);
    if (i == 0) {
      /* hostile variants of a valid token */
      char t2[2048];
      snprintf(t2, sizeof t2, "%s.AA", tok);
      put(argv[1], "four_segments", t2);
      memcpy(t2, tok, o + 1);
      t2[o - 3] = 0;
      put(argv[1], "truncated_sig", t2);
      memcpy(t2, tok, o + 1);
      t2[known_len[i] + 5] ^= 1;
      put(argv[1], "flipped_sig", t2);
    }
  }
  put(argv[1], "alg_none", "eyJhbGciOiJub25lIiwia2lkIjoiZWQifQ.eyJzdWIiOiJ4In0.");
  put(argv[1], "hs256", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImVkIn0.e30.AAAA");
  put(argv[1], "dup_keys", "eyJhbGciOiJFZERTQSIsImFsZyI6IkVkRFNBIn0.e30.AA");
  put(argv[1], "crit", "eyJhbGciOiJFZERTQSIsImNyaXQiOlsiYiJdfQ.e30.AA");
  put(argv[1], "empty", "");
  put(argv[1], "dots", "..");
  return argc > 1 ? 0 : 1;
}
#endif
