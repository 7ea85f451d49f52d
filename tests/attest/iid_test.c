/* aws-iid: an AWS-style signed instance identity document with a test certificate. */
#include <criterion/criterion.h>

#include "attest/internal.h"
#include "env.h"

static idm_arena_t g_arena;
static pol_trust_t t_iid;
static char g_doc[8192], g_tok[16384];

static void setup(void) {
  idm_arena_init(&g_arena, 256 * 1024);
  fx_cert_write(&g_rsa, env_path("aws.pem"));
  memset(&t_iid, 0, sizeof t_iid);
  t_iid.name = "aws";
  t_iid.kind = POL_KIND_AWS_IID;
  t_iid.certificate = strdup(env_path("aws.pem"));
  t_iid.max_age_s = 600;
  t_iid.leeway_s = 30;
}
static void teardown(void) { idm_arena_cleanup(&g_arena); }
TestSuite(iid, .init = setup, .fini = teardown);

static idm_attest_t *mk(void) {
  const pol_trust_t *ts[] = {&t_iid};
  idm_why_t why = {{0}};
  idm_attest_t *a = idm_attest_new_from_trusts(ts, 1, &why);
  cr_assert_not_null(a, "%s", why.text);
  return a;
}

static void make(const fx_key_t *k, long long pending) {
  char pt[32];
  fx_time(pt, sizeof pt, pending);
  fx_iid_doc(g_doc, sizeof g_doc, "123456789012", "i-0123456789abcdef0", pt);
  fx_iid_wrap(k, g_doc, g_tok, sizeof g_tok);
}

static idm_err_t verify(idm_attest_t *a, idm_attest_cache_t *c, const char *tok, long long now,
                        idm_identity_t *id, idm_why_t *why) {
  idm_clock_t ck = env_clock(now);
  idm_arena_reset(&g_arena);
  return idm_attest_verify(a, c, &g_arena, IDM_DOC_AWS_IID, NULL, tok, strlen(tok), &ck, id,
                           why);
}

static bool attr_is(const idm_identity_t *id, pol_attr_id_t a, const char *s) {
  const pol_str_t *v = &id->client.attr[a];
  return v->ptr && v->len == strlen(s) && !memcmp(v->ptr, s, v->len);
}

Test(iid, accepts_signed_document_with_attributes) {
  idm_attest_t *a = mk();
  make(&g_rsa, NOW - 120);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  cr_assert(attr_is(&id, POL_A_TRUST, "aws"));
  cr_assert(attr_is(&id, POL_A_KIND, "aws-iid"));
  cr_assert(attr_is(&id, POL_A_ACCOUNT, "123456789012"));
  cr_assert(attr_is(&id, POL_A_REGION, "eu-west-1"));
  cr_assert(attr_is(&id, POL_A_INSTANCE_ID, "i-0123456789abcdef0"));
  cr_assert(attr_is(&id, POL_A_SUBJECT, "i-0123456789abcdef0"));
  cr_assert(attr_is(&id, POL_A_IMAGE_ID, "ami-0a1b2c3d4e5f60718"));
  cr_assert(attr_is(&id, POL_A_INSTANCE_TYPE, "m5.large"));
  cr_assert_eq(id.exp_s, NOW - 120 + 600);
  char js[1024];
  size_t jl;
  cr_assert_eq(idm_identity_to_json(&id, js, sizeof js, &jl), IDM_OK);
  cr_assert(strstr(js, "\"account\":\"123456789012\""), "%s", js);
  idm_attest_free(a);
}

Test(iid, refuses_tampered_foreign_and_stale) {
  idm_attest_t *a = mk();
  idm_identity_t id;
  idm_why_t why = {{0}};
  make(&g_rsa_other, NOW - 10); /* signed by a key that is not the certificate's */
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_ERR_IID_SIGNATURE, "%s", why.text);
  make(&g_rsa, NOW - 10);
  char *acct = strstr(g_tok, "123456789012");
  acct[11] = '3'; /* another account, same signature */
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_ERR_IID_SIGNATURE, "%s", why.text);
  make(&g_rsa, NOW - 601);
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_ERR_IID_TOO_OLD, "%s", why.text);
  cr_assert(strstr(why.text, "601s old"), "%s", why.text);
  make(&g_rsa, NOW + 300);
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_ERR_IID_FUTURE, "%s", why.text);
  idm_attest_free(a);
}

Test(iid, parser_is_strict) {
  idm_why_t why = {{0}};
  idm_iid_t iid;
  static const char *const bad[] = {
      "",
      "[]",
      "{\"document\":\"{}\"}",
      "{\"document\":\"{}\",\"signature\":\"AAAA\",\"extra\":1}",
      "{\"document\":\"{}\",\"document\":\"{}\",\"signature\":\"AAAA\"}",
      "{\"document\":\"{}\",\"signature\":\"A*AA\"}",
      "{\"document\":\"{}\",\"signature\":\"AAAA\"}",
      "{\"document\":\"{\\\"accountId\\\":\\\"12\\\"}\",\"signature\":\"AAAA\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    idm_arena_reset(&g_arena);
    idm_err_t e = idm_iid_parse(&iid, &g_arena, bad[i], strlen(bad[i]), &why);
    cr_assert_eq(e, IDM_ERR_IID_FORMAT, "case %zu: %s (%s)", i, idm_err_name(e), why.text);
  }
  /* A good document, then each identifier or the time broken in turn. */
  make(&g_rsa, NOW);
  idm_arena_reset(&g_arena);
  cr_assert_eq(idm_iid_parse(&iid, &g_arena, g_tok, strlen(g_tok), &why), IDM_OK, "%s", why.text);
  cr_assert_eq(iid.pending_s, NOW);
  static const struct {
    const char *from, *to;
  } muts[] = {{"i-0123456789abcdef0", "x-0123456789abcdef0"},
              {"ami-0a1b2c3d4e5f60718", "ami-0A1B2C3D4E5F60718"},
              {"\\\"eu-west-1\\\"", "\\\"EU-WEST-1\\\""},
              {"T", "t"},
              {"\\\"pendingTime\\\"", "\\\"pendingTimx\\\""}};
  for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
    char t[16384];
    snprintf(t, sizeof t, "%s", g_tok);
    char *p = strstr(t, muts[i].from);
    if (!strcmp(muts[i].from, "T"))
      p = strstr(t, "Z\\\"") - 9; /* the T of pendingTime */
    cr_assert_not_null(p, "mutation %zu", i);
    memcpy(p, muts[i].to, strlen(muts[i].to));
    idm_arena_reset(&g_arena);
    cr_assert_eq(idm_iid_parse(&iid, &g_arena, t, strlen(t), &why), IDM_ERR_IID_FORMAT,
                 "mutation %zu accepted", i);
  }
}

Test(iid, pending_time_parser) {
  cr_assert_eq(idm_iid_parse_time("1970-01-01T00:00:00Z", 20), 0);
  cr_assert_eq(idm_iid_parse_time("2016-11-19T16:32:11Z", 20), 1479573131);
  cr_assert_eq(idm_iid_parse_time("2024-02-29T00:00:00Z", 20), 1709164800);
  cr_assert_eq(idm_iid_parse_time("2023-02-29T00:00:00Z", 20), -1);
  cr_assert_eq(idm_iid_parse_time("2023-13-01T00:00:00Z", 20), -1);
  cr_assert_eq(idm_iid_parse_time("2023-01-01T24:00:00Z", 20), -1);
  cr_assert_eq(idm_iid_parse_time("2023-01-01T00:00:00+", 20), -1);
  cr_assert_eq(idm_iid_parse_time("2023-01-01 00:00:00Z", 20), -1);
  /* Differential: every day of 1970..2100 against timegm. */
  for (long long t = 0; t < 4102444800LL; t += 86400 + 3661) {
    char s[32];
    fx_time(s, sizeof s, t);
    cr_assert_eq(idm_iid_parse_time(s, strlen(s)), t, "%s", s);
  }
}

Test(iid, served_from_cache_until_max_age) {
  idm_attest_t *a = mk();
  idm_attest_cache_t *c = idm_attest_cache_new(64, 0);
  make(&g_rsa, NOW - 100);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(verify(a, c, g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  cr_assert(!id.cached);
  cr_assert_eq(verify(a, c, g_tok, NOW + 1, &id, &why), IDM_OK);
  cr_assert(id.cached);
  cr_assert(attr_is(&id, POL_A_INSTANCE_TYPE, "m5.large"));
  cr_assert(attr_is(&id, POL_A_TRUST, "aws"));
  /* pendingTime + max_age passed: the cache does not serve it, the check refuses it. */
  cr_assert_eq(verify(a, c, g_tok, NOW + 501, &id, &why), IDM_ERR_IID_TOO_OLD, "%s", why.text);
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_eq(st.hits, 1);
  cr_assert_eq(st.misses, 2);
  idm_attest_cache_free(c);
  idm_attest_free(a);
}

Test(iid, certificate_must_be_rsa_pem) {
  pol_trust_t t = t_iid;
  t.certificate = env_path("nope.pem");
  const pol_trust_t *ts[] = {&t};
  idm_why_t why = {{0}};
  cr_assert_null(idm_attest_new_from_trusts(ts, 1, &why));
  cr_assert(strstr(why.text, "nope.pem"), "%s", why.text);
  fx_cert_write(&g_ec256, env_path("ec.pem"));
  t.certificate = env_path("ec.pem");
  cr_assert_null(idm_attest_new_from_trusts(ts, 1, &why));
  cr_assert(strstr(why.text, "not RSA"), "%s", why.text);
}
