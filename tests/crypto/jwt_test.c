/* jwt profile: mint -> verify round trips for both algs, the jti format, and a table of
 * hostile tokens each refused with its own error code and reason. */
#include <criterion/criterion.h>

#include "core/json.h"
#include "core/limits.h"
#include "crypto/crypto_testutil.h"
#include "crypto/jwt.h"

static const int64_t NOW = 1800000000;
static char *g_dir;
static idm_keyring_t *g_kr;

static void setup(void) {
  idm_json_init();
  g_dir = tu_tmpdir();
  idm_why_t why = {{0}};
  if (idm_keys_new(g_dir, IDM_KEY_EDDSA, NULL, NULL, &why) ||
      idm_keys_new(g_dir, IDM_KEY_ES256, NULL, NULL, &why) ||
      idm_keys_new(g_dir, IDM_KEY_EDDSA, NULL, NULL, &why)) /* a NEXT key */
    cr_assert_fail("%s", why.text);
  g_kr = idm_keyring_load(g_dir, NULL, &why);
  cr_assert_not_null(g_kr, "%s", why.text);
}
static void teardown(void) {
  idm_keyring_free(g_kr);
  tu_rmrf(g_dir);
  free(g_dir);
}
TestSuite(jwt, .init = setup, .fini = teardown);

static idm_claims_t base_claims(void) {
  idm_claims_t c = {.iss = "https://idmint.example",
                    .sub = "system:serviceaccount:payments:api",
                    .aud = "spiffe://corp.example/payments/db",
                    .iat = NOW,
                    .nbf = NOW,
                    .exp = NOW + 300,
                    .jti = "n.0.AAAAAAAAAAA.1",
                    .scope = "db.read db.write",
                    .trust = "k8s-prod",
                    .policy = "payments-api"};
  return c;
}

static const idm_jwt_expect_t EXPECT = {.issuer = "https://idmint.example",
                                        .audience = "spiffe://corp.example/payments/db",
                                        .leeway_s = 30};

Test(jwt, mint_verify_round_trip_both_algs) {
  idm_clock_t clk;
  idm_clock_set_s(&clk, NOW + 10);
  for (int alg = IDM_KEY_EDDSA; alg <= IDM_KEY_ES256; alg++) {
    const idm_key_t *k = idm_keyring_signer(g_kr, (idm_key_alg_t)alg);
    idm_claims_t c = base_claims();
    char tok[IDM_TOKEN_MAX];
    size_t len;
    idm_why_t why = {{0}};
    cr_assert_eq(idm_jwt_mint(tok, sizeof tok, &len, k, &c, &why), IDM_OK, "%s", why.text);
    cr_assert_eq(strlen(tok), len);
    /* header is exactly the profile's */
    idm_jws_t j;
    cr_assert_eq(idm_jws_parse(&j, NULL, tok, len, &why), IDM_OK);
    cr_assert_eq(json_object_size(j.header), 3);
    cr_assert_str_eq(j.alg_name, idm_key_alg_name(alg));
    cr_assert_str_eq(j.typ, "JWT");
    cr_assert_str_eq(j.kid, idm_key_kid(k));
    cr_assert_eq(j.sig_len, 64);
    idm_jws_cleanup(&j);
    /* verify with and without arena */
    json_t *claims = NULL;
    cr_assert_eq(idm_jwt_verify(idm_keyring_jwks(g_kr), tok, len, &EXPECT, &clk, NULL, &claims,
                                &why),
                 IDM_OK, "%s: %s", idm_key_alg_name(alg), why.text);
    cr_assert_str_eq(json_string_value(json_object_get(claims, "sub")), c.sub);
    cr_assert_str_eq(json_string_value(json_object_get(claims, "scope")), c.scope);
    cr_assert_eq(json_integer_value(json_object_get(claims, "exp")), c.exp);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(claims, "idm"), "trust")),
                     "k8s-prod");
    json_decref(claims);
    idm_arena_t a;
    idm_arena_init(&a, 32 * 1024);
    claims = NULL;
    cr_assert_eq(idm_jwt_verify(idm_keyring_jwks(g_kr), tok, len, &EXPECT, &clk, &a, &claims,
                                &why),
                 IDM_OK, "%s", why.text);
    cr_assert_str_eq(json_string_value(json_object_get(claims, "iss")), c.iss);
    idm_arena_cleanup(&a);
  }
}

Test(jwt, mint_is_deterministic_for_eddsa_and_omits_empty) {
  const idm_key_t *k = idm_keyring_signer(g_kr, IDM_KEY_EDDSA);
  idm_claims_t c = base_claims();
  c.scope = "";
  c.trust = c.policy = NULL;
  char t1[IDM_TOKEN_MAX], t2[IDM_TOKEN_MAX];
  size_t l1, l2;
  cr_assert_eq(idm_jwt_mint(t1, sizeof t1, &l1, k, &c, NULL), IDM_OK);
  cr_assert_eq(idm_jwt_mint(t2, sizeof t2, &l2, k, &c, NULL), IDM_OK);
  cr_assert_str_eq(t1, t2);
  idm_jws_t j;
  cr_assert_eq(idm_jws_parse(&j, NULL, t1, l1, NULL), IDM_OK);
  cr_assert_null(json_object_get(j.claims, "scope"));
  cr_assert_null(json_object_get(j.claims, "idm"));
  char want[] = "{\"iss\":\"https://idmint.example\",\"sub\":\"system:serviceaccount:payments:api\","
                "\"aud\":\"spiffe://corp.example/payments/db\",\"iat\":1800000000,\"nbf\":1800000000,"
                "\"exp\":1800000300,\"jti\":\"n.0.AAAAAAAAAAA.1\"}";
  cr_assert_eq(j.payload_len, strlen(want));
  cr_assert_eq(memcmp(j.payload, want, j.payload_len), 0, "%.*s", (int)j.payload_len, j.payload);
  idm_jws_cleanup(&j);
}

/* The claims in the order docs/TOKENS.md documents (the example there, with this jti), and
 * idm_jwt_claims_fixed ‖ idm_jwt_claims_varying is exactly the claims JSON: the batcher's
 * templates rely on it. */
Test(jwt, claims_order_and_split_match_the_docs) {
  const idm_key_t *k = idm_keyring_signer(g_kr, IDM_KEY_EDDSA);
  idm_claims_t c = base_claims();
  c.jti = "node-a.3.q83vEjRWeJA.1f";
  char tok[IDM_TOKEN_MAX];
  size_t len;
  cr_assert_eq(idm_jwt_mint(tok, sizeof tok, &len, k, &c, NULL), IDM_OK);
  cr_assert_eq(len, 565, "TOKENS.md says 565 bytes, got %zu", len);
  idm_jws_t j;
  cr_assert_eq(idm_jws_parse(&j, NULL, tok, len, NULL), IDM_OK);
  const char want[] = "{\"iss\":\"https://idmint.example\",\"sub\":\"system:serviceaccount:payments:api\","
                      "\"aud\":\"spiffe://corp.example/payments/db\",\"scope\":\"db.read db.write\","
                      "\"idm\":{\"trust\":\"k8s-prod\",\"policy\":\"payments-api\"},\"iat\":1800000000,"
                      "\"nbf\":1800000000,\"exp\":1800000300,\"jti\":\"node-a.3.q83vEjRWeJA.1f\"}";
  cr_assert_eq(j.payload_len, strlen(want));
  cr_assert_eq(memcmp(j.payload, want, j.payload_len), 0, "%.*s", (int)j.payload_len, j.payload);
  idm_jws_cleanup(&j);
  char fx[IDM_TOKEN_MAX], vr[IDM_TOKEN_MAX];
  size_t fl, vl;
  cr_assert_eq(idm_jwt_claims_fixed(fx, sizeof fx, &fl, &c), IDM_OK);
  cr_assert_eq(idm_jwt_claims_varying(vr, sizeof vr, &vl, &c), IDM_OK);
  cr_assert_eq(fl + vl, strlen(want));
  cr_assert_eq(memcmp(fx, want, fl), 0);
  cr_assert_eq(memcmp(vr, want + fl, vl), 0);
  cr_assert_eq(memcmp(vr, "\"jti\":", 6), 0, "only jti varies");
  /* too small a buffer: refused, for each part */
  cr_assert_eq(idm_jwt_claims_fixed(fx, fl - 1, &fl, &c), IDM_ERR_NOSPACE);
  cr_assert_eq(idm_jwt_claims_varying(vr, vl - 1, &vl, &c), IDM_ERR_NOSPACE);
}

Test(jwt, mint_refusals) {
  idm_claims_t c = base_claims();
  char tok[IDM_TOKEN_MAX];
  size_t len;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_jwt_mint(tok, sizeof tok, &len, NULL, &c, &why), IDM_ERR_KEY_NONE);
  const idm_key_t *next = NULL;
  for (size_t i = 0; i < idm_keyring_count(g_kr); i++)
    if (idm_key_state(idm_keyring_at(g_kr, i)) == IDM_KEY_NEXT)
      next = idm_keyring_at(g_kr, i);
  cr_assert_not_null(next);
  cr_assert_eq(idm_jwt_mint(tok, sizeof tok, &len, next, &c, &why), IDM_ERR_KEY_STATE);
  cr_assert(strstr(why.text, "next"), "%s", why.text);
  const idm_key_t *k = idm_keyring_signer(g_kr, IDM_KEY_EDDSA);
  for (size_t cap = 0; cap < 420; cap += 7)
    cr_assert_eq(idm_jwt_mint(tok, cap, &len, k, &c, &why), IDM_ERR_NOSPACE, "cap %zu", cap);
  char big[IDM_TOKEN_MAX + 10];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  c.sub = big;
  cr_assert_eq(idm_jwt_mint(tok, sizeof tok, &len, k, &c, &why), IDM_ERR_NOSPACE);
}

Test(jwt, jti_unique_and_shaped) {
  idm_jti_gen_t g1, g2;
  idm_jti_gen_init(&g1, "node a/with:odd chars", 3);
  idm_jti_gen_init(&g2, "node a/with:odd chars", 3);
  char a[IDM_JTI_MAX], b[IDM_JTI_MAX], prev[IDM_JTI_MAX] = "";
  for (int i = 0; i < 1000; i++) {
    idm_jti_next(&g1, a);
    idm_jti_next(&g2, b);
    cr_assert_str_neq(a, b, "two generators (a restart) never collide");
    cr_assert_str_neq(a, prev);
    strcpy(prev, a);
    for (const char *p = a; *p; p++)
      cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", *p),
                "%s", a);
  }
  cr_assert_eq(strncmp(a, "node_a_with_.3.", 15), 0, "%s", a);
  g1.counter = UINT64_MAX;
  idm_jti_next(&g1, a);
  cr_assert_lt(strlen(a), IDM_JTI_MAX);
  idm_jti_gen_init(&g1, NULL, 0xfffff);
  idm_jti_next(&g1, a);
  cr_assert_eq(strncmp(a, "n.ffff.", 7), 0, "%s", a);
}

/* ---- hostile tokens --------------------------------------------------------------- */

/* Signs header.payload with key k (any header, any payload). */
static char *sign_raw(const idm_key_t *k, const char *header, const char *payload) {
  char *t = tu_token(header, payload, "", 0);
  uint8_t sig[IDM_SIG_MAX];
  size_t sl;
  cr_assert_eq(idm_key_sign(k, sig, &sl, (const uint8_t *)t, strlen(t) - 1), IDM_OK);
  char *full = tu_token(header, payload, sig, sl);
  free(t);
  return full;
}

static idm_err_t verify_at(const char *tok, int64_t now, const idm_jwt_expect_t *ex,
                           idm_why_t *why) {
  idm_clock_t clk;
  idm_clock_set_s(&clk, now);
  json_t *claims = NULL;
  idm_err_t e = idm_jwt_verify(idm_keyring_jwks(g_kr), tok, strlen(tok), ex, &clk, NULL, &claims,
                               why);
  json_decref(claims);
  return e;
}

#define GOOD_CLAIMS                                                                          \
  "\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"spiffe://corp.example/payments/db\"," \
  "\"iat\":1800000000,\"nbf\":1800000000,\"exp\":1800000300,\"jti\":\"j\""

Test(jwt, hostile_token_table) {
  const idm_key_t *ed = idm_keyring_signer(g_kr, IDM_KEY_EDDSA);
  const idm_key_t *es = idm_keyring_signer(g_kr, IDM_KEY_ES256);
  char edh[200], esh[200];
  snprintf(edh, sizeof edh, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}", idm_key_kid(ed));
  snprintf(esh, sizeof esh, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", idm_key_kid(es));
  char hdr_es_on_ed[200], hdr_rs[200], hdr_none[200], hdr_notyp[200], hdr_badtyp[200],
      hdr_nokid[200];
  snprintf(hdr_es_on_ed, 200, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", idm_key_kid(ed));
  snprintf(hdr_rs, 200, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", idm_key_kid(ed));
  snprintf(hdr_none, 200, "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"%s\"}", idm_key_kid(ed));
  snprintf(hdr_notyp, 200, "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", idm_key_kid(ed));
  snprintf(hdr_badtyp, 200, "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", idm_key_kid(ed));
  snprintf(hdr_nokid, 200, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}");

  struct {
    const char *name;
    const idm_key_t *key; /* NULL: unsigned (64 zero bytes) */
    const char *hdr;
    const char *claims;
    int64_t now;
    idm_err_t want;
    const char *reason;
  } cases[] = {
      {"valid eddsa", ed, edh, "{" GOOD_CLAIMS "}", NOW + 1, IDM_OK, ""},
      {"valid es256", es, esh, "{" GOOD_CLAIMS "}", NOW + 1, IDM_OK, ""},
      {"expired", ed, edh, "{" GOOD_CLAIMS "}", NOW + 300 + 30 + 42, IDM_ERR_JWT_EXPIRED,
       "token expired 72s ago"},
      {"expired at leeway edge", ed, edh, "{" GOOD_CLAIMS "}", NOW + 300 + 30, IDM_ERR_JWT_EXPIRED,
       "expired 30s ago"},
      {"inside leeway", ed, edh, "{" GOOD_CLAIMS "}", NOW + 300 + 29, IDM_OK, ""},
      {"not yet valid", ed, edh, "{" GOOD_CLAIMS "}", NOW - 100, IDM_ERR_JWT_NOT_YET_VALID,
       "not valid for another 100s"},
      {"iat in the future", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"spiffe://corp.example/payments/db\","
       "\"iat\":1800000200,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_NOT_YET_VALID, "issued 200s in the future"},
      {"wrong issuer", ed, edh,
       "{\"iss\":\"https://evil\",\"sub\":\"s\",\"aud\":\"spiffe://corp.example/payments/db\","
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_ISSUER, "https://evil"},
      {"wrong audience", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"other\","
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_AUDIENCE, "\"other\""},
      {"audience array match", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":[\"x\",\"spiffe://corp.example/payments/db\"],"
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_OK, ""},
      {"audience array miss", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":[\"x\",\"y\"],"
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_AUDIENCE, "[\"x\", ...]"},
      {"audience empty array", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":[],"
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_TYPE, "aud"},
      {"audience array of numbers", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":[1],"
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_TYPE, "aud"},
      {"exp as string", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\","
       "\"iat\":1800000000,\"exp\":\"1800000300\",\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_TYPE, "\"exp\" must be an integer"},
      {"exp as float", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\","
       "\"iat\":1800000000,\"exp\":1800000300.5,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_TYPE, "\"exp\""},
      {"sub as number", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":5,\"aud\":\"a\","
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_TYPE, "\"sub\" must be a string"},
      {"sub empty", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"\",\"aud\":\"a\","
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_TYPE, "empty"},
      {"idm not object", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\","
       "\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\",\"idm\":[]}",
       NOW, IDM_ERR_JWT_CLAIM_TYPE, "idm"},
      {"missing exp", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1800000000,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_MISSING, "\"exp\" is missing"},
      {"missing jti", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1800000000,\"exp\":1800000300}",
       NOW, IDM_ERR_JWT_CLAIM_MISSING, "\"jti\" is missing"},
      {"missing aud", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"iat\":1800000000,\"exp\":1800000300,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_CLAIM_MISSING, "\"aud\" is missing"},
      {"exp before iat", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":1800000000,"
       "\"exp\":1799999999,\"jti\":\"j\"}",
       NOW - 10, IDM_ERR_JWT_CLAIMS, "not after iat"},
      {"huge exp values do not overflow", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":-9223372036854775807,"
       "\"nbf\":9223372036854775807,\"exp\":9223372036854775807,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_NOT_YET_VALID, "not valid for another"},
      {"hugely expired", ed, edh,
       "{\"iss\":\"https://idmint.example\",\"sub\":\"s\",\"aud\":\"a\",\"iat\":-9223372036854775807,"
       "\"exp\":-9223372036854775806,\"jti\":\"j\"}",
       NOW, IDM_ERR_JWT_EXPIRED, "expired"},
      {"claims are an array", ed, edh, "[1]", NOW, IDM_ERR_JWS_FORMAT, "payload is not"},
      {"duplicate claim", ed, edh, "{" GOOD_CLAIMS ",\"sub\":\"admin\"}", NOW, IDM_ERR_JWS_FORMAT,
       "duplicate"},
      {"alg none", NULL, hdr_none, "{" GOOD_CLAIMS "}", NOW, IDM_ERR_JWS_ALG_REFUSED, "none"},
      {"alg RS256 (not our profile)", ed, hdr_rs, "{" GOOD_CLAIMS "}", NOW, IDM_ERR_JWT_PROFILE_ALG,
       "RS256"},
      {"ES256 header on the Ed25519 key", ed, hdr_es_on_ed, "{" GOOD_CLAIMS "}", NOW,
       IDM_ERR_JWS_ALG_MISMATCH, "does not fit"},
      {"no typ", ed, hdr_notyp, "{" GOOD_CLAIMS "}", NOW, IDM_ERR_JWT_TYPE, "typ"},
      {"wrong typ", ed, hdr_badtyp, "{" GOOD_CLAIMS "}", NOW, IDM_ERR_JWT_TYPE, "at+jwt"},
      {"no kid", ed, hdr_nokid, "{" GOOD_CLAIMS "}", NOW, IDM_ERR_JWS_HEADER, "kid"},
      {"unknown kid", ed, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"zzz\"}", "{" GOOD_CLAIMS "}",
       NOW, IDM_ERR_JWS_KID_UNKNOWN, "zzz"},
      {"signed by another key (ES256 key, EdDSA kid)", es, edh, "{" GOOD_CLAIMS "}", NOW,
       IDM_ERR_JWS_SIGNATURE, "does not verify"},
      {"unsigned", NULL, edh, "{" GOOD_CLAIMS "}", NOW, IDM_ERR_JWS_SIGNATURE, "does not verify"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *tok;
    if (cases[i].key)
      tok = sign_raw(cases[i].key, cases[i].hdr, cases[i].claims);
    else {
      uint8_t zero[64] = {0};
      tok = tu_token(cases[i].hdr, cases[i].claims, zero, 64);
    }
    idm_why_t why = {{0}};
    idm_jwt_expect_t ex = EXPECT;
    if (strstr(cases[i].claims, "\"aud\":\"a\""))
      ex.audience = NULL;
    idm_err_t e = verify_at(tok, cases[i].now, &ex, &why);
    cr_assert_eq(e, cases[i].want, "%s: got %s (%s)", cases[i].name, idm_err_name(e), why.text);
    cr_assert(strstr(why.text, cases[i].reason), "%s: reason \"%s\" lacks \"%s\"", cases[i].name,
              why.text, cases[i].reason);
    free(tok);
  }
}

Test(jwt, leeway_bounded_and_lifetime) {
  const idm_key_t *ed = idm_keyring_signer(g_kr, IDM_KEY_EDDSA);
  idm_claims_t c = base_claims();
  char tok[IDM_TOKEN_MAX];
  size_t len;
  cr_assert_eq(idm_jwt_mint(tok, sizeof tok, &len, ed, &c, NULL), IDM_OK);
  idm_jwt_expect_t ex = EXPECT;
  idm_why_t why = {{0}};
  ex.leeway_s = 1000000; /* clamped to IDM_JWT_LEEWAY_MAX_S */
  cr_assert_eq(verify_at(tok, c.exp + IDM_JWT_LEEWAY_MAX_S - 1, &ex, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(verify_at(tok, c.exp + IDM_JWT_LEEWAY_MAX_S, &ex, &why), IDM_ERR_JWT_EXPIRED);
  ex.leeway_s = -5; /* treated as 0 */
  cr_assert_eq(verify_at(tok, c.exp, &ex, &why), IDM_ERR_JWT_EXPIRED);
  cr_assert_eq(verify_at(tok, c.exp - 1, &ex, &why), IDM_OK);
  ex.max_lifetime_s = 299;
  cr_assert_eq(verify_at(tok, NOW, &ex, &why), IDM_ERR_JWT_LIFETIME);
  cr_assert(strstr(why.text, "300s"), "%s", why.text);
  /* no expectations: any issuer and audience */
  cr_assert_eq(verify_at(tok, NOW, NULL, &why), IDM_OK, "%s", why.text);
  /* oversized token */
  char *big = malloc(IDM_JWT_MAX_BYTES + 2);
  memset(big, 'a', IDM_JWT_MAX_BYTES + 1);
  big[IDM_JWT_MAX_BYTES + 1] = '\0';
  cr_assert_eq(verify_at(big, NOW, &ex, &why), IDM_ERR_JWT_TOO_LARGE);
  free(big);
}

Test(jwt, verify_with_arena_keeps_claims_in_the_arena) {
  const idm_key_t *ed = idm_keyring_signer(g_kr, IDM_KEY_EDDSA);
  idm_claims_t c = base_claims();
  char tok[IDM_TOKEN_MAX];
  size_t len;
  cr_assert_eq(idm_jwt_mint(tok, sizeof tok, &len, ed, &c, NULL), IDM_OK);
  idm_arena_t a;
  cr_assert_eq(idm_arena_init(&a, 16 * 1024), IDM_OK);
  idm_clock_t clk;
  idm_clock_set_s(&clk, NOW);
  for (int round = 0; round < 3; round++) {
    idm_arena_reset(&a);
    json_t *claims = NULL;
    cr_assert_eq(idm_jwt_verify(idm_keyring_jwks(g_kr), tok, len, &EXPECT, &clk, &a, &claims,
                                NULL),
                 IDM_OK);
    json_t *sub = json_object_get(claims, "sub");
    cr_assert((uint8_t *)claims >= a.base && (uint8_t *)claims < a.base + a.cap);
    cr_assert((uint8_t *)sub >= a.base && (uint8_t *)sub < a.base + a.cap);
    cr_assert_leq(a.used, 8 * 1024, "one verification needs %zu arena bytes", a.used);
  }
  /* the thread's previous arena setting is restored */
  cr_assert_null(idm_json_use_arena(NULL));
  idm_arena_cleanup(&a);
}

#include <pthread.h>

typedef struct sign_job {
  const idm_key_t *k;
  const idm_jwks_t *set;
  int failures;
} sign_job_t;

static void *sign_many(void *arg) {
  sign_job_t *j = arg;
  idm_jti_gen_t g;
  idm_jti_gen_init(&g, "t", (unsigned)(uintptr_t)arg);
  idm_clock_t clk;
  idm_clock_set_s(&clk, NOW);
  for (int i = 0; i < 200; i++) {
    char jti[IDM_JTI_MAX], tok[IDM_TOKEN_MAX];
    idm_jti_next(&g, jti);
    idm_claims_t c = base_claims();
    c.jti = jti;
    size_t len;
    if (idm_jwt_mint(tok, sizeof tok, &len, j->k, &c, NULL) != IDM_OK ||
        idm_jwt_verify(j->set, tok, len, &EXPECT, &clk, NULL, NULL, NULL) != IDM_OK)
      j->failures++;
  }
  return NULL;
}

/* One keyring shared by threads that mint and verify concurrently (both algs). */
Test(jwt, concurrent_mint_and_verify_share_one_keyring) {
  pthread_t th[4];
  sign_job_t jobs[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (sign_job_t){idm_keyring_signer(g_kr, i % 2 ? IDM_KEY_ES256 : IDM_KEY_EDDSA),
                           idm_keyring_jwks(g_kr), 0};
    cr_assert_eq(pthread_create(&th[i], NULL, sign_many, &jobs[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(jobs[i].failures, 0, "thread %d", i);
  }
}
