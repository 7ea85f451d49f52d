/* JOSE: JWK Set parsing, thumbprints, compact JWS parsing and verification, checked
 * against tokens and thumbprints produced by the npm `jose` package (data/). */
#include <criterion/criterion.h>
#include <openssl/hmac.h>
#include <openssl/digest.h>

#include "core/json.h"
#include "core/limits.h"
#include "crypto/crypto_testutil.h"
#include "crypto/jose.h"

static void setup(void) { idm_json_init(); }
TestSuite(jose, .init = setup);

static idm_jwks_t *vec_set(json_t *v) {
  char *s = json_dumps(json_object_get(v, "jwks"), JSON_COMPACT);
  idm_why_t why = {{0}};
  idm_jwks_t *set = idm_jwks_parse(s, strlen(s), &why);
  cr_assert_not_null(set, "%s", why.text);
  tu_jfree(s);
  return set;
}

static idm_err_t verify_tok(const idm_jwks_t *set, const char *tok, idm_why_t *why) {
  idm_jws_t j;
  idm_err_t e = idm_jws_parse(&j, NULL, tok, strlen(tok), why);
  if (e)
    return e;
  e = idm_jws_verify_set(&j, set, why);
  idm_jws_cleanup(&j);
  return e;
}

Test(jose, alg_names_round_trip) {
  for (int a = IDM_JWS_NONE; a < IDM_JWS__COUNT; a++) {
    const char *n = idm_jws_alg_name((idm_jws_alg_t)a);
    cr_assert_eq(idm_jws_alg_from_name(n, strlen(n)), a, "%s", n);
  }
  cr_assert_eq(idm_jws_alg_from_name("eddsa", 5), IDM_JWS_UNKNOWN, "alg is case-sensitive");
  cr_assert_eq(idm_jws_alg_from_name("RS2560", 6), IDM_JWS_UNKNOWN);
  cr_assert_eq(idm_jws_alg_from_name("RS25", 4), IDM_JWS_UNKNOWN);
}

Test(jose, every_alg_verifies_jose_signed_tokens) {
  json_t *v = tu_vectors();
  idm_jwks_t *set = vec_set(v);
  cr_assert_eq(idm_jwks_count(set), 4);
  const char *alg;
  json_t *tok;
  int n = 0;
  json_object_foreach(json_object_get(v, "tokens"), alg, tok) {
    idm_why_t why = {{0}};
    idm_err_t e = verify_tok(set, json_string_value(tok), &why);
    cr_assert_eq(e, IDM_OK, "%s: %s", alg, why.text);
    n++;
  }
  cr_assert_eq(n, 9);
  idm_jwks_free(set);
  json_decref(v);
}

Test(jose, thumbprints_match_jose) {
  json_t *v = tu_vectors();
  idm_jwks_t *set = vec_set(v);
  for (size_t i = 0; i < idm_jwks_count(set); i++) {
    const idm_jwk_t *k = idm_jwks_at(set, i);
    const char *want = json_string_value(json_object_get(json_object_get(v, "thumbprints"),
                                                         idm_jwk_kid(k)));
    cr_assert_str_eq(idm_jwk_thumbprint(k), want, "%s", idm_jwk_kid(k));
  }
  idm_jwks_free(set);
  json_decref(v);
}

Test(jose, rfc7638_example_thumbprint) {
  /* RFC 7638 §3.1. */
  const char *set =
      "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cb"
      "bfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl9"
      "3lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1"
      "n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-k"
      "EgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}]}";
  idm_why_t why = {{0}};
  idm_jwks_t *s = idm_jwks_parse(set, strlen(set), &why);
  cr_assert_not_null(s, "%s", why.text);
  cr_assert_str_eq(idm_jwk_thumbprint(idm_jwks_at(s, 0)),
                   "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  cr_assert(idm_jwk_allows(idm_jwks_at(s, 0), IDM_JWS_RS256));
  cr_assert(!idm_jwk_allows(idm_jwks_at(s, 0), IDM_JWS_PS256), "JWK alg narrows the key");
  idm_jwks_free(s);
}

Test(jose, key_kind_decides_algs) {
  json_t *v = tu_vectors();
  idm_jwks_t *set = vec_set(v);
  const idm_jwk_t *rsa = idm_jwks_find(set, "k-rsa", 5), *p256 = idm_jwks_find(set, "k-p-256", 7),
                  *p384 = idm_jwks_find(set, "k-p-384", 7), *ed = idm_jwks_find(set, "k-ed25519", 9);
  cr_assert(rsa && p256 && p384 && ed);
  cr_assert(idm_jwk_allows(rsa, IDM_JWS_PS512) && !idm_jwk_allows(rsa, IDM_JWS_ES256));
  cr_assert(!idm_jwk_allows(rsa, IDM_JWS_HS256) && !idm_jwk_allows(rsa, IDM_JWS_NONE));
  cr_assert(idm_jwk_allows(p256, IDM_JWS_ES256) && !idm_jwk_allows(p256, IDM_JWS_ES384));
  cr_assert(idm_jwk_allows(p384, IDM_JWS_ES384) && !idm_jwk_allows(p384, IDM_JWS_ES256));
  cr_assert(idm_jwk_allows(ed, IDM_JWS_EDDSA) && idm_jwk_allows(ed, IDM_JWS_EDDSA_MTB1));
  cr_assert(!idm_jwk_allows(ed, IDM_JWS_RS256));
  cr_assert_not_null(idm_jwk_ed25519_public(ed));
  cr_assert_null(idm_jwk_ed25519_public(p256));
  cr_assert_str_eq(idm_jwk_kty(ed), "OKP");
  idm_jwks_free(set);
  json_decref(v);
}

/* Algorithm confusion: every way of presenting a token under the wrong algorithm. */
Test(jose, algorithm_confusion_refused) {
  json_t *v = tu_vectors();
  idm_jwks_t *set = vec_set(v);
  idm_why_t why = {{0}};

  /* HS256 keyed with the RSA public key's modulus (the classic attack). */
  json_t *rk = json_array_get(json_object_get(json_object_get(v, "jwks"), "keys"), 0);
  const char *secret = json_string_value(json_object_get(rk, "n"));
  char *unsigned_tok = tu_token("{\"alg\":\"HS256\",\"kid\":\"k-rsa\",\"typ\":\"JWT\"}",
                                "{\"sub\":\"admin\"}", "", 0);
  size_t si = strlen(unsigned_tok) - 1; /* strip the trailing '.' */
  uint8_t mac[32];
  unsigned ml = 0;
  HMAC(EVP_sha256(), secret, strlen(secret), (const uint8_t *)unsigned_tok, si, mac, &ml);
  char *hs = tu_token("{\"alg\":\"HS256\",\"kid\":\"k-rsa\",\"typ\":\"JWT\"}", "{\"sub\":\"admin\"}",
                      mac, ml);
  cr_assert_eq(verify_tok(set, hs, &why), IDM_ERR_JWS_ALG_REFUSED, "%s", why.text);
  free(hs);
  free(unsigned_tok);

  /* alg none, with and without a signature segment. */
  char *none = tu_token("{\"alg\":\"none\",\"kid\":\"k-rsa\"}", "{\"sub\":\"admin\"}", "", 0);
  cr_assert_eq(verify_tok(set, none, &why), IDM_ERR_JWS_ALG_REFUSED, "%s", why.text);
  free(none);
  none = tu_token("{\"alg\":\"none\"}", "{\"sub\":\"admin\"}", "", 0);
  cr_assert_eq(verify_tok(set, none, &why), IDM_ERR_JWS_ALG_REFUSED, "%s", why.text);
  free(none);

  /* RS256 header against the Ed25519 key, ES256 against the RSA key, ES384 on P-256. */
  struct {
    const char *hdr;
  } cases[] = {{"{\"alg\":\"RS256\",\"kid\":\"k-ed25519\"}"},
               {"{\"alg\":\"ES256\",\"kid\":\"k-rsa\"}"},
               {"{\"alg\":\"ES384\",\"kid\":\"k-p-256\"}"},
               {"{\"alg\":\"EdDSA\",\"kid\":\"k-p-256\"}"},
               {"{\"alg\":\"PS256\",\"kid\":\"k-p-384\"}"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t sig[256] = {1};
    char *t = tu_token(cases[i].hdr, "{\"sub\":\"x\"}", sig, sizeof sig);
    cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_ALG_MISMATCH, "%s: %s", cases[i].hdr,
                 why.text);
    free(t);
  }
  idm_jwks_free(set);
  json_decref(v);
}

Test(jose, signature_tampering_detected) {
  json_t *v = tu_vectors();
  idm_jwks_t *set = vec_set(v);
  const char *alg;
  json_t *tokv;
  json_object_foreach(json_object_get(v, "tokens"), alg, tokv) {
    const char *tok = json_string_value(tokv);
    size_t n = strlen(tok);
    char *t = strdup(tok);
    idm_why_t why = {{0}};
    /* a payload character changed (still canonical base64url: swap two letters) */
    char *p = strchr(t, '.') + 3;
    *p = *p == 'A' ? 'B' : 'A';
    idm_err_t e = verify_tok(set, t, &why);
    cr_assert(e == IDM_ERR_JWS_SIGNATURE || e == IDM_ERR_JWS_FORMAT, "%s: %s", alg,
              idm_err_name(e));
    /* truncated signature: one byte dropped, re-encoded canonically */
    memcpy(t, tok, n + 1);
    char *sp = strrchr(t, '.') + 1;
    uint8_t sig[1024];
    size_t sl;
    cr_assert_eq(idm_b64url_decode(sig, sizeof sig, &sl, sp, strlen(sp), NULL), IDM_OK);
    sp[idm_b64url_encode(sp, strlen(sp), sig, sl - 1)] = '\0';
    cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_SIGNATURE, "%s: %s", alg, why.text);
    cr_assert(strstr(why.text, "bytes") || strstr(why.text, "verify"), "%s", why.text);
    /* the last signature byte flipped */
    memcpy(t, tok, n + 1);
    char *ls = strrchr(t, '.') + 1;
    ls[0] = ls[0] == 'A' ? 'Q' : 'A';
    cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_SIGNATURE, "%s: %s", alg, why.text);
    free(t);
  }
  idm_jwks_free(set);
  json_decref(v);
}

Test(jose, unknown_kid_and_no_kid) {
  json_t *v = tu_vectors();
  idm_jwks_t *set = vec_set(v);
  idm_why_t why = {{0}};
  uint8_t sig[64] = {0};
  char *t = tu_token("{\"alg\":\"EdDSA\",\"kid\":\"nope\"}", "{}", sig, 64);
  cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_KID_UNKNOWN);
  cr_assert(strstr(why.text, "nope"), "%s", why.text);
  free(t);
  /* no kid: the single Ed25519 key is chosen, and the bad signature is then refused */
  t = tu_token("{\"alg\":\"EdDSA\"}", "{}", sig, 64);
  cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_SIGNATURE, "%s", why.text);
  free(t);
  /* an unknown alg is refused by name, whatever the key */
  t = tu_token("{\"alg\":\"MAGIC\"}", "{}", sig, 64);
  cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_ALG_UNKNOWN, "%s", why.text);
  free(t);
  t = tu_token("{\"alg\":\"EdDSA-MTB1\",\"kid\":\"k-ed25519\"}", "{}", sig, 64);
  cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_ALG_UNKNOWN, "%s", why.text);
  cr_assert(strstr(why.text, "batch"), "%s", why.text);
  free(t);
  idm_jwks_free(set);
  json_decref(v);
}

Test(jose, es256_der_signature_refused) {
  /* A DER-encoded ECDSA signature (what OpenSSL produces) is not the JOSE raw form. */
  json_t *v = tu_vectors();
  idm_jwks_t *set = vec_set(v);
  uint8_t der[72] = {0x30, 70, 0x02, 33, 0x00};
  char *t = tu_token("{\"alg\":\"ES256\",\"kid\":\"k-p-256\"}", "{}", der, sizeof der);
  idm_why_t why = {{0}};
  cr_assert_eq(verify_tok(set, t, &why), IDM_ERR_JWS_SIGNATURE);
  cr_assert(strstr(why.text, "64 bytes"), "%s", why.text);
  free(t);
  idm_jwks_free(set);
  json_decref(v);
}

/* ---- parsing ---------------------------------------------------------------------- */

static idm_err_t parse(const char *tok, idm_why_t *why) {
  idm_jws_t j;
  idm_err_t e = idm_jws_parse(&j, NULL, tok, strlen(tok), why);
  idm_jws_cleanup(&j);
  return e;
}

Test(jose, parse_rejects_malformed) {
  idm_why_t why = {{0}};
  struct {
    const char *tok;
    idm_err_t want;
    const char *reason; /* substring of why */
  } cases[] = {
      {"", IDM_ERR_JWS_FORMAT, "3 dot-separated"},
      {"abc", IDM_ERR_JWS_FORMAT, "found 1"},
      {"eyJhbGciOiJFZERTQSJ9.e30", IDM_ERR_JWS_FORMAT, "found 2"},
      {"eyJhbGciOiJFZERTQSJ9.e30.AA.AA", IDM_ERR_JWS_FORMAT, "JWE"},
      {"eyJhbGciOiJFZERTQSJ9.e30.AA.AA.AA", IDM_ERR_JWS_FORMAT, "JWE"},
      {".e30.AA", IDM_ERR_JWS_FORMAT, "header segment is empty"},
      {"eyJhbGciOiJFZERTQSJ9..AA", IDM_ERR_JWS_FORMAT, "payload segment is empty"},
      {"eyJhbGciOiJFZERTQSJ9=.e30.AA", IDM_ERR_JWS_FORMAT, "header segment"},
      {"eyJhbGciOiJFZERTQSJ9.e30=.AA", IDM_ERR_JWS_FORMAT, "payload segment"},
      {"eyJhbGciOiJFZERTQSJ9.e30.A", IDM_ERR_JWS_FORMAT, "signature segment"},
      {"eyJhbGciOiJFZERTQSJ9.e31.AA", IDM_ERR_JWS_FORMAT, "payload segment"}, /* non-canonical */
      {"eyJhbGciOiJFZERTQSJ9.e+0.AA", IDM_ERR_JWS_FORMAT, "payload segment"}, /* std alphabet */
      {"eyJhbGciOiJFZERTQSJ9 .e30.AA", IDM_ERR_JWS_FORMAT, "header segment"},
      {"W10.e30.AA", IDM_ERR_JWS_FORMAT, "header is not a JSON object"},             /* [] */
      {"eyJhbGciOiJFZERTQSJ9.W10.AA", IDM_ERR_JWS_FORMAT, "payload is not a JSON object"},
      {"eyJhbGciOiJFZERTQSJ9.bnVsbA.AA", IDM_ERR_JWS_FORMAT, "payload"},    /* null */
      {"eyJhbGciOiJFZERTQSJ9.eyJhIjoxLCJhIjoyfQ.AA", IDM_ERR_JWS_FORMAT, "duplicate"},
      {"eyJhbGciOiJFZERTQSIsImFsZyI6Im5vbmUifQ.e30.AA", IDM_ERR_JWS_FORMAT, "duplicate"},
      {"e30.e30.AA", IDM_ERR_JWS_HEADER, "no \"alg\""},
      {"eyJhbGciOjF9.e30.AA", IDM_ERR_JWS_HEADER, "\"alg\" must be a string"},
      {"eyJhbGciOiJFZERTQSIsImtpZCI6MX0.e30.AA", IDM_ERR_JWS_HEADER, "\"kid\" must be"},
      {"eyJhbGciOiJFZERTQSIsInR5cCI6W119.e30.AA", IDM_ERR_JWS_HEADER, "\"typ\" must be"},
      {"eyJhbGciOiJFZERTQSIsImNyaXQiOlsiZXhwIl19.e30.AA", IDM_ERR_JWS_HEADER, "crit"},
      {"eyJhbGciOiJFZERTQSIsImI2NCI6ZmFsc2V9.e30.AA", IDM_ERR_JWS_HEADER, "b64"},
      {"eyJhbGciOiJFZERTQSJ9.eyJhIjoi.AA", IDM_ERR_JWS_FORMAT, "payload"}, /* truncated JSON */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    idm_why_clear(&why);
    idm_err_t e = parse(cases[i].tok, &why);
    cr_assert_eq(e, cases[i].want, "case %zu (%s): got %s (%s)", i, cases[i].tok, idm_err_name(e),
                 why.text);
    cr_assert(strstr(why.text, cases[i].reason), "case %zu: reason \"%s\" lacks \"%s\"", i,
              why.text, cases[i].reason);
  }
}

Test(jose, parse_size_limits) {
  idm_why_t why = {{0}};
  size_t n = IDM_JWT_MAX_BYTES + 1;
  char *big = malloc(n + 1);
  memset(big, 'A', n);
  big[10] = '.';
  big[20] = '.';
  big[n] = '\0';
  cr_assert_eq(parse(big, &why), IDM_ERR_JWT_TOO_LARGE);
  free(big);
  /* a header over IDM_JWS_HEADER_MAX_BYTES inside a token under the token limit */
  size_t hl = IDM_JWS_HEADER_MAX_BYTES + 100;
  char *hdr = malloc(hl + 1);
  memcpy(hdr, "{\"alg\":\"EdDSA\",\"x\":\"", 20);
  memset(hdr + 20, 'x', hl - 22);
  memcpy(hdr + hl - 2, "\"}", 3);
  char *t = tu_token(hdr, "{}", "", 0);
  cr_assert_eq(parse(t, &why), IDM_ERR_JWS_HEADER, "%s", why.text);
  cr_assert(strstr(why.text, "limit"), "%s", why.text);
  free(t);
  free(hdr);
}

Test(jose, parse_fields_and_arena) {
  idm_arena_t a;
  cr_assert_eq(idm_arena_init(&a, 64 * 1024), IDM_OK);
  uint8_t sig[3] = {1, 2, 3};
  char *t = tu_token("{\"alg\":\"ES256\",\"kid\":\"abc\",\"typ\":\"JWT\"}", "{\"sub\":\"s\"}", sig, 3);
  idm_jws_t j;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_jws_parse(&j, &a, t, strlen(t), &why), IDM_OK, "%s", why.text);
  cr_assert_eq(j.alg, IDM_JWS_ES256);
  cr_assert_str_eq(j.alg_name, "ES256");
  cr_assert_eq(j.kid_len, 3);
  cr_assert_eq(memcmp(j.kid, "abc", 3), 0);
  cr_assert_str_eq(j.typ, "JWT");
  cr_assert_eq(j.sig_len, 3);
  cr_assert_eq(memcmp(j.sig, sig, 3), 0);
  cr_assert_eq(j.signing_input, t);
  cr_assert_eq(j.signing_input_len, (size_t)(strrchr(t, '.') - t));
  cr_assert_str_eq(json_string_value(json_object_get(j.claims, "sub")), "s");
  cr_assert_eq(j.payload_len, strlen("{\"sub\":\"s\"}"));
  cr_assert_gt(a.used, 0, "the JSON trees came from the arena");
  idm_jws_cleanup(&j); /* no-op for arena parses */
  /* a full arena is an ordinary error */
  idm_arena_t tiny;
  cr_assert_eq(idm_arena_init(&tiny, 16), IDM_OK);
  cr_assert_eq(idm_jws_parse(&j, &tiny, t, strlen(t), &why), IDM_ERR_ARENA_FULL);
  idm_arena_cleanup(&tiny);
  /* room for the decoded bytes but not for the JSON trees: still ARENA_FULL, never a
   * "malformed token" (every size from 0 up to what the parse needs) */
  size_t need = a.used;
  for (size_t cap = 0; cap < need; cap += 8) {
    cr_assert_eq(idm_arena_init(&tiny, cap), IDM_OK);
    idm_err_t e = idm_jws_parse(&j, &tiny, t, strlen(t), &why);
    cr_assert_eq(e, IDM_ERR_ARENA_FULL, "arena of %zu bytes: %s (%s)", cap, idm_err_name(e),
                 why.text);
    idm_arena_cleanup(&tiny);
  }
  idm_arena_cleanup(&a);
  free(t);
}

/* ---- JWK Sets --------------------------------------------------------------------- */

static idm_jwks_t *parse_set(const char *s, idm_why_t *why) {
  return idm_jwks_parse(s, strlen(s), why);
}

#define ED_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
#define P256_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define P256_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"

Test(jose, jwks_edge_cases) {
  idm_why_t why = {{0}};
  struct {
    const char *set;
    bool ok;
    size_t count;
    const char *reason;
  } cases[] = {
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\"}]}", true, 1, ""},
      {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_X "\",\"y\":\"" P256_Y "\"}]}",
       true, 1, ""},
      /* SPIFFE bundle: x509-svid skipped, jwt-svid kept, sequence/hint accepted */
      {"{\"spiffe_sequence\":3,\"spiffe_refresh_hint\":300,\"keys\":["
       "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"x509-svid\",\"x\":\"" P256_X "\",\"y\":\"" P256_Y
       "\",\"x5c\":[\"MIIB\"]},"
       "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"jwt-svid\",\"kid\":\"a\",\"x\":\"" ED_X "\"}]}",
       true, 1, ""},
      {"{\"spiffe_sequence\":\"3\",\"keys\":[]}", false, 0, "spiffe_sequence"},
      /* unsupported kinds are skipped; with nothing left the set is refused */
      {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", false, 0, "private key material"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" ED_X "\"}]}", false, 0,
       "X25519"},
      {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}]}", false, 0,
       "P-521"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"use\":\"enc\",\"x\":\"" ED_X "\"}]}",
       false, 0, "use \"enc\""},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"RSA-OAEP\",\"x\":\"" ED_X "\"}]}",
       false, 0, "RSA-OAEP"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"key_ops\":[\"sign\"],\"x\":\"" ED_X "\"}]}",
       false, 0, "key_ops"},
      {"{\"keys\":[{\"kty\":\"XYZ\"}]}", false, 0, "kty \"XYZ\""},
      {"{\"keys\":[]}", false, 0, "no keys"},
      /* malformed keys of supported kinds refuse the set */
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}", false, 0,
       "expected 32"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "=\"}]}", false, 0, "\"x\""},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\"}]}", false, 0, "\"x\" is missing"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\",\"d\":\"" ED_X "\"}]}",
       false, 0, "private key material"},
      {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_X "\",\"y\":\"" P256_X "\"}]}",
       false, 0, "not on the curve"},
      {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" P256_X "\"}]}", false, 0,
       "\"y\" is missing"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"ES256\",\"x\":\"" ED_X "\"}]}",
       false, 0, "does not fit"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":7,\"x\":\"" ED_X "\"}]}", false, 0,
       "kid"},
      {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"a\",\"x\":\"" ED_X "\"},"
       "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\",\"x\":\"" P256_X "\",\"y\":\"" P256_Y "\"}]}",
       false, 0, "share kid"},
      {"{\"keys\":[7]}", false, 0, "not a JSON object"},
      {"{\"keys\":{}}", false, 0, "\"keys\" array"},
      {"[]", false, 0, "\"keys\" array"},
      {"{\"keys\":[],\"keys\":[]}", false, 0, "duplicate"},
      {"{\"keys\":[", false, 0, "invalid JSON"},
      {"{\"keys\":[{\"kty\":1}]}", false, 0, "kty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    idm_why_clear(&why);
    idm_jwks_t *s = parse_set(cases[i].set, &why);
    if (cases[i].ok) {
      cr_assert_not_null(s, "case %zu: %s", i, why.text);
      cr_assert_eq(idm_jwks_count(s), cases[i].count, "case %zu", i);
    } else {
      cr_assert_null(s, "case %zu should be refused", i);
      cr_assert(strstr(why.text, cases[i].reason), "case %zu: reason \"%s\" lacks \"%s\"", i,
                why.text, cases[i].reason);
    }
    idm_jwks_free(s);
  }
}

Test(jose, jwks_weak_rsa_skipped) {
  json_t *v = tu_vectors();
  json_t *set = json_pack("{s:[O]}", "keys", json_object_get(v, "weak_rsa"));
  char *s = json_dumps(set, JSON_COMPACT);
  idm_why_t why = {{0}};
  cr_assert_null(idm_jwks_parse(s, strlen(s), &why));
  cr_assert(strstr(why.text, "1024 bits"), "%s", why.text);
  tu_jfree(s);
  /* beside a good key, the weak one is skipped and the set loads */
  json_array_append(json_object_get(set, "keys"),
                    json_array_get(json_object_get(json_object_get(v, "jwks"), "keys"), 3));
  s = json_dumps(set, JSON_COMPACT);
  idm_jwks_t *ks = idm_jwks_parse(s, strlen(s), &why);
  cr_assert_not_null(ks, "%s", why.text);
  cr_assert_eq(idm_jwks_count(ks), 1);
  cr_assert_null(idm_jwks_find(ks, "weak", 4));
  idm_jwks_free(ks);
  tu_jfree(s);
  json_decref(set);
  json_decref(v);
}

Test(jose, jwks_too_many_keys) {
  size_t cap = 200 + (IDM_JWKS_KEYS_MAX + 1) * 100;
  char *s = malloc(cap);
  size_t o = (size_t)snprintf(s, cap, "{\"keys\":[");
  for (int i = 0; i <= IDM_JWKS_KEYS_MAX; i++)
    o += (size_t)snprintf(s + o, cap - o, "%s{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\"}",
                          i ? "," : "");
  snprintf(s + o, cap - o, "]}");
  idm_why_t why = {{0}};
  cr_assert_null(idm_jwks_parse(s, strlen(s), &why));
  cr_assert(strstr(why.text, "exceeds the limit"), "%s", why.text);
  free(s);
}

Test(jose, jwks_load_names_file) {
  idm_why_t why = {{0}};
  cr_assert_null(idm_jwks_load("/nonexistent/jwks.json", &why));
  cr_assert(strstr(why.text, "/nonexistent/jwks.json"), "%s", why.text);
}
