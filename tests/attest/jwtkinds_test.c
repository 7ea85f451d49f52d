/* The JWT trust kinds against test issuers: realistic tokens of each platform are accepted
 * with the right attributes; hostile ones are refused with their specific reason. */
#include <criterion/criterion.h>
#include <pthread.h>

#include "attest/internal.h"
#include "env.h"

static idm_arena_t g_arena;
static char g_tok[64 * 1024];

static const char *const k8s_aud[] = {"idmint"};
static const char *const gh_aud[] = {"https://github.com/octo-org", "idmint"};
static const char *const spiffe_aud[] = {"spiffe://corp.example/idmint"};

static pol_trust_t t_k8s, t_gh, t_gl, t_spiffe, t_oidc;

/* JWKS files: k8s (RSA + EC P-256: the cluster rotated), github (EC), gitlab (RSA),
 * spiffe (Ed25519 + P-384, as a SPIFFE bundle), oidc (every key). */
static void setup(void) {
  idm_arena_init(&g_arena, 256 * 1024);
  const fx_key_t *k8s[] = {&g_rsa, &g_ec256};
  fx_jwks_write(env_path("k8s.jwks"), k8s, 2, NULL);
  const fx_key_t *gh[] = {&g_ec256};
  fx_jwks_write(env_path("gh.jwks"), gh, 1, NULL);
  const fx_key_t *gl[] = {&g_rsa};
  fx_jwks_write(env_path("gl.jwks"), gl, 1, NULL);
  const fx_key_t *sp[] = {&g_ed, &g_ec384};
  fx_jwks_write(env_path("spiffe.jwks"), sp, 2,
                "\"spiffe_sequence\":12,\"spiffe_refresh_hint\":300");
  const fx_key_t *all[] = {&g_rsa, &g_ec256, &g_ec384, &g_ed};
  fx_jwks_write(env_path("oidc.jwks"), all, 4, NULL);

  memset(&t_k8s, 0, sizeof t_k8s);
  t_k8s.name = "k8s-prod";
  t_k8s.kind = POL_KIND_KUBERNETES;
  t_k8s.issuer = "https://kubernetes.default.svc.cluster.local";
  t_k8s.jwks = strdup(env_path("k8s.jwks"));
  t_k8s.audience = k8s_aud;
  t_k8s.audience_count = 1;
  t_k8s.leeway_s = 30;
  t_k8s.max_lifetime_s = 86400;

  t_gh = t_k8s;
  t_gh.name = "gh";
  t_gh.kind = POL_KIND_GITHUB;
  t_gh.issuer = NULL; /* default: https://token.actions.githubusercontent.com */
  t_gh.jwks = strdup(env_path("gh.jwks"));
  t_gh.audience = gh_aud;
  t_gh.audience_count = 2;

  t_gl = t_k8s;
  t_gl.name = "gl";
  t_gl.kind = POL_KIND_GITLAB;
  t_gl.issuer = "https://gitlab.example.com";
  t_gl.jwks = strdup(env_path("gl.jwks"));

  t_spiffe = t_k8s;
  t_spiffe.name = "spire";
  t_spiffe.kind = POL_KIND_SPIFFE;
  t_spiffe.issuer = "https://spire.corp.example";
  t_spiffe.jwks = strdup(env_path("spiffe.jwks"));
  t_spiffe.audience = spiffe_aud;
  t_spiffe.trust_domain = "corp.example";

  t_oidc = t_k8s;
  t_oidc.name = "okta";
  t_oidc.kind = POL_KIND_OIDC;
  t_oidc.issuer = "https://idp.example.com/oauth2/default";
  t_oidc.jwks = strdup(env_path("oidc.jwks"));
}

static void teardown(void) { idm_arena_cleanup(&g_arena); }

static idm_attest_t *mk(void) {
  const pol_trust_t *ts[] = {&t_k8s, &t_gh, &t_gl, &t_spiffe, &t_oidc};
  idm_why_t why = {{0}};
  idm_attest_t *a = idm_attest_new_from_trusts(ts, 5, &why);
  cr_assert_not_null(a, "attest_new: %s", why.text);
  return a;
}

/* A projected service-account token as kube-apiserver 1.29 issues it. */
static const char *k8s_claims(long long iat, long long exp, const char *iss, const char *aud) {
  static char b[2048];
  snprintf(b, sizeof b,
           "{\"aud\":[\"%s\"],\"exp\":%lld,\"iat\":%lld,\"iss\":\"%s\","
           "\"kubernetes.io\":{\"namespace\":\"payments\",\"node\":{\"name\":\"ip-10-0-3-17.ec2.internal\","
           "\"uid\":\"0f6c5cc1-7e1b-4b8b-9d76-8a4a4b9e1e11\"},\"pod\":{\"name\":\"api-7d9f8b6c5d-x2x9z\","
           "\"uid\":\"f2b7c8a4-1b0e-4bb1-8e3c-6f4e8d1f9a22\"},\"serviceaccount\":{\"name\":\"api\","
           "\"uid\":\"7a1d3c4b-5e6f-4a7b-8c9d-0e1f2a3b4c5d\"},\"warnafter\":%lld},"
           "\"nbf\":%lld,\"sub\":\"system:serviceaccount:payments:api\"}",
           aud, exp, iat, iss, iat + 3607, iat);
  return b;
}
#define K8S_ISS "https://kubernetes.default.svc.cluster.local"

static idm_err_t verify(idm_attest_t *a, const char *trust, const char *tok, long long now,
                        idm_identity_t *id, idm_why_t *why) {
  idm_clock_t c = env_clock(now);
  idm_arena_reset(&g_arena);
  return idm_attest_verify(a, NULL, &g_arena, IDM_DOC_JWT, trust, tok, strlen(tok), &c, id, why);
}

static void attr_eq(const idm_identity_t *id, pol_attr_id_t a, const char *want) {
  const pol_str_t *v = &id->client.attr[a];
  if (!want) {
    cr_assert_null(v->ptr, "%s should be absent", pol_attr_name(a));
    return;
  }
  cr_assert_not_null(v->ptr, "%s missing", pol_attr_name(a));
  cr_assert_eq(v->len, strlen(want), "%s: %.*s", pol_attr_name(a), (int)v->len, v->ptr);
  cr_assert_eq(memcmp(v->ptr, want, v->len), 0, "%s: %.*s", pol_attr_name(a), (int)v->len, v->ptr);
}

#define REFUSED(call, code, fragment)                                                       \
  do {                                                                                      \
    idm_why_t why_ = {{0}};                                                                 \
    idm_identity_t id_;                                                                     \
    idm_err_t e_ = (call(&id_, &why_));                                                     \
    cr_assert_eq(e_, code, "want %s, got %s: %s", idm_err_name(code), idm_err_name(e_),     \
                 why_.text);                                                                \
    cr_assert(strstr(why_.text, fragment), "reason \"%s\" lacks \"%s\"", why_.text, fragment); \
  } while (0)

TestSuite(jwtkinds, .init = setup, .fini = teardown);

Test(jwtkinds, kubernetes_projected_token_rs256) {
  idm_attest_t *a = mk();
  fx_sign(&g_rsa, "RS256", k8s_claims(NOW - 60, NOW + 3540, K8S_ISS, "idmint"), g_tok, sizeof g_tok);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(verify(a, "k8s-prod", g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  attr_eq(&id, POL_A_TRUST, "k8s-prod");
  attr_eq(&id, POL_A_KIND, "kubernetes");
  attr_eq(&id, POL_A_SUBJECT, "system:serviceaccount:payments:api");
  attr_eq(&id, POL_A_NAMESPACE, "payments");
  attr_eq(&id, POL_A_SERVICE_ACCOUNT, "api");
  attr_eq(&id, POL_A_POD, "api-7d9f8b6c5d-x2x9z");
  attr_eq(&id, POL_A_NODE, "ip-10-0-3-17.ec2.internal");
  attr_eq(&id, POL_A_REPOSITORY, NULL);
  cr_assert_eq(id.exp_s, NOW + 3540);
  cr_assert_eq(id.trust, &t_k8s);
  cr_assert(!id.cached);
  /* Chosen by iss when no trust is named. */
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  attr_eq(&id, POL_A_TRUST, "k8s-prod");
  idm_attest_free(a);
}

Test(jwtkinds, kubernetes_sub_must_match_kubernetes_io) {
  idm_attest_t *a = mk();
  char c[2048];
  snprintf(c, sizeof c, "%s", k8s_claims(NOW, NOW + 600, K8S_ISS, "idmint"));
  char *s = strstr(c, "payments:api");
  memcpy(s, "paymentz", 8);
  fx_sign(&g_rsa, "RS256", c, g_tok, sizeof g_tok);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(verify(a, "k8s-prod", g_tok, NOW, &id, &why), IDM_ERR_ATTEST_CLAIMS, "%s", why.text);
  /* A legacy secret-based token (no kubernetes.io object). */
  fx_sign(&g_rsa, "RS256",
          "{\"iss\":\"" K8S_ISS "\",\"aud\":\"idmint\",\"exp\":1790000600,"
          "\"sub\":\"system:serviceaccount:payments:api\","
          "\"kubernetes.io/serviceaccount/namespace\":\"payments\"}",
          g_tok, sizeof g_tok);
  cr_assert_eq(verify(a, "k8s-prod", g_tok, NOW, &id, &why), IDM_ERR_JWT_CLAIM_MISSING);
  cr_assert(strstr(why.text, "legacy"), "%s", why.text);
  idm_attest_free(a);
}

Test(jwtkinds, github_actions_es256) {
  idm_attest_t *a = mk();
  char c[2048];
  snprintf(c, sizeof c,
           "{\"jti\":\"example-id\",\"sub\":\"repo:octo-org/octo-repo:environment:prod\","
           "\"environment\":\"prod\",\"aud\":\"https://github.com/octo-org\","
           "\"ref\":\"refs/heads/main\",\"sha\":\"example-sha\",\"repository\":\"octo-org/octo-repo\","
           "\"repository_owner\":\"octo-org\",\"actor_id\":\"12\",\"repository_visibility\":\"private\","
           "\"repository_id\":\"74\",\"repository_owner_id\":\"65\",\"run_id\":\"example-run-id\","
           "\"run_number\":\"10\",\"run_attempt\":\"2\",\"runner_environment\":\"github-hosted\","
           "\"actor\":\"octocat\",\"workflow\":\"example-workflow\",\"head_ref\":\"\",\"base_ref\":\"\","
           "\"event_name\":\"workflow_dispatch\",\"ref_type\":\"branch\","
           "\"job_workflow_ref\":\"octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main\","
           "\"iss\":\"https://token.actions.githubusercontent.com\",\"nbf\":%lld,\"exp\":%lld,\"iat\":%lld}",
           NOW - 5, NOW + 295, NOW);
  fx_sign(&g_ec256, "ES256", c, g_tok, sizeof g_tok);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(verify(a, "gh", g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  attr_eq(&id, POL_A_KIND, "github");
  attr_eq(&id, POL_A_SUBJECT, "repo:octo-org/octo-repo:environment:prod");
  attr_eq(&id, POL_A_REPOSITORY, "octo-org/octo-repo");
  attr_eq(&id, POL_A_REPOSITORY_OWNER, "octo-org");
  attr_eq(&id, POL_A_REF, "refs/heads/main");
  attr_eq(&id, POL_A_REF_TYPE, "branch");
  attr_eq(&id, POL_A_WORKFLOW, "example-workflow");
  attr_eq(&id, POL_A_ENVIRONMENT, "prod");
  attr_eq(&id, POL_A_ACTOR, "octocat");
  attr_eq(&id, POL_A_EVENT_NAME, "workflow_dispatch");
  /* A token without the repository claim is not a GitHub Actions token. */
  char *r = strstr(c, "\"repository\":");
  memcpy(r, "\"repositorx\":", 13);
  fx_sign(&g_ec256, "ES256", c, g_tok, sizeof g_tok);
  cr_assert_eq(verify(a, "gh", g_tok, NOW, &id, &why), IDM_ERR_JWT_CLAIM_MISSING, "%s", why.text);
  cr_assert(strstr(why.text, "repository"), "%s", why.text);
  idm_attest_free(a);
}

Test(jwtkinds, gitlab_ci_ps256) {
  idm_attest_t *a = mk();
  char c[2048];
  snprintf(c, sizeof c,
           "{\"namespace_id\":\"72\",\"namespace_path\":\"my-group\",\"project_id\":\"20\","
           "\"project_path\":\"my-group/my-project\",\"user_id\":\"1\",\"user_login\":\"sample-user\","
           "\"user_email\":\"sample-user@example.com\",\"pipeline_id\":\"574\",\"pipeline_source\":\"push\","
           "\"job_id\":\"302\",\"ref\":\"feature-branch-1\",\"ref_type\":\"branch\",\"ref_path\":"
           "\"refs/heads/feature-branch-1\",\"ref_protected\":\"false\",\"environment\":\"test-environment2\","
           "\"environment_protected\":\"false\",\"deployment_tier\":\"testing\",\"runner_id\":1,"
           "\"runner_environment\":\"self-hosted\",\"sha\":\"714a629c0b401fdce83e847fc9589983fc6f46bc\","
           "\"jti\":\"235b3a54-b797-45c7-ae9a-f72d7bc6ef5b\",\"iss\":\"https://gitlab.example.com\","
           "\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,"
           "\"sub\":\"project_path:my-group/my-project:ref_type:branch:ref:feature-branch-1\","
           "\"aud\":\"idmint\"}",
           NOW, NOW - 5, NOW + 3600);
  fx_sign(&g_rsa, "PS256", c, g_tok, sizeof g_tok);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(verify(a, "gl", g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  attr_eq(&id, POL_A_KIND, "gitlab");
  attr_eq(&id, POL_A_PROJECT_PATH, "my-group/my-project");
  attr_eq(&id, POL_A_NAMESPACE_PATH, "my-group");
  attr_eq(&id, POL_A_REF, "feature-branch-1");
  attr_eq(&id, POL_A_ENVIRONMENT, "test-environment2");
  idm_attest_free(a);
}

static const char *svid(const char *sub) {
  static char b[512];
  snprintf(b, sizeof b,
           "{\"aud\":[\"spiffe://corp.example/idmint\"],\"exp\":%lld,\"iat\":%lld,"
           "\"iss\":\"https://spire.corp.example\",\"sub\":\"%s\"}",
           NOW + 300, NOW, sub);
  return b;
}

Test(jwtkinds, spiffe_jwt_svid_eddsa_and_es384_bundle) {
  idm_attest_t *a = mk();
  idm_identity_t id;
  idm_why_t why = {{0}};
  fx_sign(&g_ed, "EdDSA", svid("spiffe://corp.example/ns/payments/sa/api"), g_tok, sizeof g_tok);
  cr_assert_eq(verify(a, "spire", g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  attr_eq(&id, POL_A_KIND, "spiffe");
  attr_eq(&id, POL_A_SPIFFE_ID, "spiffe://corp.example/ns/payments/sa/api");
  attr_eq(&id, POL_A_TRUST_DOMAIN, "corp.example");
  attr_eq(&id, POL_A_SUBJECT, "spiffe://corp.example/ns/payments/sa/api");
  fx_sign(&g_ec384, "ES384", svid("spiffe://corp.example/web"), g_tok, sizeof g_tok);
  cr_assert_eq(verify(a, "spire", g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  attr_eq(&id, POL_A_SPIFFE_ID, "spiffe://corp.example/web");

  static const char *const bad[] = {
      "spiffe://other.example/web",        /* foreign trust domain */
      "spiffe://corp.example",             /* no path */
      "spiffe://corp.example/",            /* trailing slash */
      "spiffe://corp.example/a//b",        /* empty segment */
      "spiffe://corp.example/a/../b",      /* dot segment */
      "spiffe://Corp.example/web",         /* upper-case trust domain */
      "spiffe://corp.example:8443/web",    /* port */
      "spiffe://corp.example/web?x=1",     /* query */
      "https://corp.example/web",          /* not spiffe */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    fx_sign(&g_ed, "EdDSA", svid(bad[i]), g_tok, sizeof g_tok);
    cr_assert_eq(verify(a, "spire", g_tok, NOW, &id, &why), IDM_ERR_ATTEST_SPIFFE_ID, "%s: %s",
                 bad[i], why.text);
  }
  idm_attest_free(a);
}

Test(jwtkinds, oidc_generic_every_algorithm) {
  idm_attest_t *a = mk();
  static const struct {
    const fx_key_t *k;
    const char *alg;
  } cases[] = {{&g_rsa, "RS256"}, {&g_rsa, "RS384"}, {&g_rsa, "RS512"}, {&g_rsa, "PS256"},
               {&g_ec256, "ES256"}, {&g_ec384, "ES384"}, {&g_ed, "EdDSA"}};
  char c[512];
  snprintf(c, sizeof c,
           "{\"iss\":\"https://idp.example.com/oauth2/default\",\"sub\":\"00u1abcd\","
           "\"aud\":\"idmint\",\"exp\":%lld,\"iat\":%lld,\"email\":\"dev@example.com\","
           "\"groups\":[\"a\"],\"ver\":1,\"cid\":\"0oa9\"}",
           NOW + 600, NOW);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fx_sign(cases[i].k, cases[i].alg, c, g_tok, sizeof g_tok);
    idm_identity_t id;
    idm_why_t why = {{0}};
    cr_assert_eq(verify(a, "okta", g_tok, NOW, &id, &why), IDM_OK, "%s: %s", cases[i].alg,
                 why.text);
    attr_eq(&id, POL_A_SUBJECT, "00u1abcd");
    bool email = false;
    for (uint32_t j = 0; j < id.client.claims_count; j++) {
      const pol_kv_t *kv = &id.client.claims[j];
      cr_assert_neq(kv->name.len == 6 && !memcmp(kv->name.ptr, "groups", 6), 1,
                    "non-string claims are not attributes");
      if (kv->name.len == 5 && !memcmp(kv->name.ptr, "email", 5))
        email = kv->value.len == 15 && !memcmp(kv->value.ptr, "dev@example.com", 15);
    }
    cr_assert(email, "claims.email");
  }
  idm_attest_free(a);
}

/* ---- hostile tokens, each with its specific reason ------------------------------- */

static idm_attest_t *g_a;
static idm_err_t v_k8s(idm_identity_t *id, idm_why_t *why) {
  return verify(g_a, "k8s-prod", g_tok, NOW, id, why);
}
static void k8s_tok(const fx_key_t *k, const char *alg, long long iat, long long exp,
                    const char *iss, const char *aud) {
  fx_sign(k, alg, k8s_claims(iat, exp, iss, aud), g_tok, sizeof g_tok);
}

Test(jwtkinds, refuses_expired_and_not_yet_valid) {
  g_a = mk();
  k8s_tok(&g_rsa, "RS256", NOW - 3700, NOW - 100, K8S_ISS, "idmint");
  REFUSED(v_k8s, IDM_ERR_JWT_EXPIRED, "expired 100s ago");
  k8s_tok(&g_rsa, "RS256", NOW - 3600, NOW - 10, K8S_ISS, "idmint"); /* within leeway */
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(v_k8s(&id, &why), IDM_OK, "%s", why.text);
  k8s_tok(&g_rsa, "RS256", NOW + 120, NOW + 3600, K8S_ISS, "idmint");
  REFUSED(v_k8s, IDM_ERR_JWT_NOT_YET_VALID, "120s");
  k8s_tok(&g_rsa, "RS256", NOW - 10, NOW + 90000, K8S_ISS, "idmint");
  REFUSED(v_k8s, IDM_ERR_JWT_LIFETIME, "exceeds");
  idm_attest_free(g_a);
}

Test(jwtkinds, refuses_wrong_issuer_and_audience) {
  g_a = mk();
  k8s_tok(&g_rsa, "RS256", NOW, NOW + 600, "https://evil.example", "idmint");
  REFUSED(v_k8s, IDM_ERR_JWT_ISSUER, "evil.example");
  k8s_tok(&g_rsa, "RS256", NOW, NOW + 600, K8S_ISS, "vault");
  REFUSED(v_k8s, IDM_ERR_JWT_AUDIENCE, "accepted by trust \"k8s-prod\"");
  idm_attest_free(g_a);
}

Test(jwtkinds, refuses_unknown_kid_and_foreign_key) {
  g_a = mk();
  fx_key_t stranger = g_rsa_other;
  snprintf(stranger.kid, sizeof stranger.kid, "no-such-kid");
  k8s_tok(&stranger, "RS256", NOW, NOW + 600, K8S_ISS, "idmint");
  REFUSED(v_k8s, IDM_ERR_JWS_KID_UNKNOWN, "no-such-kid");
  /* Same kid as the real key, signed by another key. */
  k8s_tok(&g_rsa_other, "RS256", NOW, NOW + 600, K8S_ISS, "idmint");
  REFUSED(v_k8s, IDM_ERR_JWS_SIGNATURE, "");
  idm_attest_free(g_a);
}

Test(jwtkinds, refuses_alg_none_and_hmac_confusion) {
  g_a = mk();
  /* alg none, empty signature. */
  char h[64], p[2048];
  const char *none_hdr = "{\"alg\":\"none\",\"kid\":\"rsa-1\"}";
  size_t hl = fx_b64(h, sizeof h, (const uint8_t *)none_hdr, strlen(none_hdr));
  const char *c = k8s_claims(NOW, NOW + 600, K8S_ISS, "idmint");
  fx_b64(p, sizeof p, (const uint8_t *)c, strlen(c));
  snprintf(g_tok, sizeof g_tok, "%.*s.%s.", (int)hl, h, p);
  REFUSED(v_k8s, IDM_ERR_JWS_ALG_REFUSED, "never accepted");
  /* HS256 keyed with the issuer's public key (its JWK JSON and its PEM). */
  char jwk[2048];
  fx_jwk_json(&g_rsa, NULL, jwk, sizeof jwk);
  fx_sign_hs256((const uint8_t *)jwk, strlen(jwk), "{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", c,
                g_tok, sizeof g_tok);
  REFUSED(v_k8s, IDM_ERR_JWS_ALG_REFUSED, "HS256");
  /* ... and with the public key's PEM (SubjectPublicKeyInfo), the classic form. */
  BIO *bio = BIO_new(BIO_s_mem());
  cr_assert(PEM_write_bio_PUBKEY(bio, g_rsa.pkey));
  const uint8_t *pem;
  size_t pem_len;
  cr_assert(BIO_mem_contents(bio, &pem, &pem_len));
  fx_sign_hs256(pem, pem_len, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c, g_tok, sizeof g_tok);
  BIO_free(bio);
  REFUSED(v_k8s, IDM_ERR_JWS_ALG_REFUSED, "HS256");
  /* Lower-case or padded alg names are not HS256 in disguise, they are unknown. */
  fx_sign_hs256((const uint8_t *)"k", 1, "{\"alg\":\"hs256\",\"kid\":\"rsa-1\"}", c, g_tok, sizeof g_tok);
  REFUSED(v_k8s, IDM_ERR_JWS_ALG_UNKNOWN, "");
  idm_attest_free(g_a);
}

Test(jwtkinds, refuses_rs256_against_ec_key) {
  g_a = mk();
  /* The header names the cluster's EC key but the token is RS256 (signed with RSA). */
  fx_sign_raw(&g_rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"ec-256\"}",
              k8s_claims(NOW, NOW + 600, K8S_ISS, "idmint"), g_tok, sizeof g_tok);
  REFUSED(v_k8s, IDM_ERR_JWS_ALG_MISMATCH, "");
  idm_attest_free(g_a);
}

Test(jwtkinds, refuses_duplicate_claims_and_oversize) {
  g_a = mk();
  char c[4096];
  snprintf(c, sizeof c, "{\"sub\":\"system:serviceaccount:kube-system:admin\",%s",
           k8s_claims(NOW, NOW + 600, K8S_ISS, "idmint") + 1);
  fx_sign(&g_rsa, "RS256", c, g_tok, sizeof g_tok);
  REFUSED(v_k8s, IDM_ERR_JWS_FORMAT, "duplicate");
  /* Over the 16 KiB limit: refused before any parsing. */
  memset(g_tok, 'A', 20000);
  g_tok[20000] = '\0';
  REFUSED(v_k8s, IDM_ERR_JWT_TOO_LARGE, "exceeds");
  idm_attest_free(g_a);
}

Test(jwtkinds, refuses_wrong_claim_types_and_alg_not_allowed) {
  g_a = mk();
  fx_sign(&g_rsa, "RS256",
          "{\"iss\":\"" K8S_ISS "\",\"aud\":\"idmint\",\"exp\":\"tomorrow\","
          "\"sub\":\"system:serviceaccount:payments:api\"}",
          g_tok, sizeof g_tok);
  REFUSED(v_k8s, IDM_ERR_JWT_CLAIM_TYPE, "exp");
  fx_sign(&g_rsa, "RS256",
          "{\"iss\":\"" K8S_ISS "\",\"aud\":\"idmint\",\"exp\":1790000600,\"sub\":42,"
          "\"kubernetes.io\":{}}",
          g_tok, sizeof g_tok);
  REFUSED(v_k8s, IDM_ERR_JWT_CLAIM_TYPE, "sub");
  /* The trust block narrows the algorithms to ES256: RS256 is refused even though the
   * key would allow it. */
  static const char *const es_only[] = {"ES256"};
  pol_trust_t narrowed = t_k8s;
  narrowed.algorithms = es_only;
  narrowed.algorithm_count = 1;
  const pol_trust_t *ts[] = {&narrowed};
  idm_why_t why = {{0}};
  idm_attest_t *a = idm_attest_new_from_trusts(ts, 1, &why);
  cr_assert_not_null(a, "%s", why.text);
  k8s_tok(&g_rsa, "RS256", NOW, NOW + 600, K8S_ISS, "idmint");
  idm_identity_t id;
  cr_assert_eq(verify(a, "k8s-prod", g_tok, NOW, &id, &why), IDM_ERR_ATTEST_ALG_NOT_ALLOWED);
  k8s_tok(&g_ec256, "ES256", NOW, NOW + 600, K8S_ISS, "idmint");
  cr_assert_eq(verify(a, "k8s-prod", g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  idm_attest_free(a);
  idm_attest_free(g_a);
}

Test(jwtkinds, chooses_trust_by_iss_or_says_why_not) {
  idm_attest_t *a = mk();
  idm_identity_t id;
  idm_why_t why = {{0}};
  fx_sign(&g_ed, "EdDSA", svid("spiffe://corp.example/web"), g_tok, sizeof g_tok);
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  attr_eq(&id, POL_A_TRUST, "spire");
  k8s_tok(&g_rsa, "RS256", NOW, NOW + 600, "https://unknown.example", "idmint");
  cr_assert_eq(verify(a, NULL, g_tok, NOW, &id, &why), IDM_ERR_ATTEST_TRUST_UNKNOWN);
  cr_assert(strstr(why.text, "unknown.example"), "%s", why.text);
  cr_assert_eq(verify(a, "nope", g_tok, NOW, &id, &why), IDM_ERR_ATTEST_TRUST_UNKNOWN);
  idm_clock_t c = env_clock(NOW);
  cr_assert_eq(idm_attest_verify(a, NULL, &g_arena, IDM_DOC_AWS_IID, "k8s-prod", "{}", 2, &c,
                                 &id, &why),
               IDM_ERR_ATTEST_KIND_MISMATCH);
  idm_attest_free(a);
}

Test(jwtkinds, config_errors_name_the_block) {
  pol_trust_t t = t_k8s;
  t.jwks = env_path("missing.jwks");
  const pol_trust_t *ts[] = {&t};
  idm_why_t why = {{0}};
  cr_assert_null(idm_attest_new_from_trusts(ts, 1, &why));
  cr_assert(strstr(why.text, "k8s-prod") && strstr(why.text, "missing.jwks"), "%s", why.text);
  static const char *const hs[] = {"HS256"};
  t = t_k8s;
  t.algorithms = hs;
  t.algorithm_count = 1;
  cr_assert_null(idm_attest_new_from_trusts(ts, 1, &why));
  cr_assert(strstr(why.text, "HS256"), "%s", why.text);
  t = t_k8s;
  t.audience_count = 0;
  cr_assert_null(idm_attest_new_from_trusts(ts, 1, &why));
  cr_assert(strstr(why.text, "audience"), "%s", why.text);
}

Test(jwtkinds, cached_until_exp_then_checked_again) {
  idm_attest_t *a = mk();
  idm_attest_cache_t *c = idm_attest_cache_new(64, 0);
  fx_sign(&g_rsa, "RS256", k8s_claims(NOW - 60, NOW + 600, K8S_ISS, "idmint"), g_tok,
          sizeof g_tok);
  idm_identity_t id;
  idm_why_t why = {{0}};
  for (int i = 0; i < 3; i++) {
    idm_clock_t ck = env_clock(NOW + i);
    idm_arena_reset(&g_arena);
    cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_JWT, "k8s-prod", g_tok, strlen(g_tok),
                                   &ck, &id, &why),
                 IDM_OK, "%s", why.text);
    cr_assert_eq(id.cached, i > 0);
    attr_eq(&id, POL_A_NAMESPACE, "payments");
    attr_eq(&id, POL_A_POD, "api-7d9f8b6c5d-x2x9z");
    attr_eq(&id, POL_A_TRUST, "k8s-prod");
    cr_assert_eq(id.trust, &t_k8s);
  }
  /* At exp the cache stops serving it; within the leeway the full check still accepts
   * (and does not cache it again); past the leeway it is refused. */
  idm_clock_t ck = env_clock(NOW + 600);
  cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_JWT, "k8s-prod", g_tok, strlen(g_tok),
                                 &ck, &id, &why),
               IDM_OK, "%s", why.text);
  cr_assert(!id.cached);
  ck = env_clock(NOW + 631);
  cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_JWT, "k8s-prod", g_tok, strlen(g_tok),
                                 &ck, &id, &why),
               IDM_ERR_JWT_EXPIRED);
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_eq(st.hits, 2);
  cr_assert_eq(st.inserts, 1);
  idm_attest_cache_free(c);
  idm_attest_free(a);
}

/* A reload (a rebuilt idm_attest_t) that leaves a trust block and its key file as they
 * were keeps the identities cached under it; a changed setting or key file re-verifies
 * that block's documents and leaves the other blocks' entries alone. */
static bool verify_k8s(idm_attest_t *a, idm_attest_cache_t *c) {
  idm_identity_t id;
  idm_why_t why = {{0}};
  idm_clock_t ck = env_clock(NOW);
  idm_arena_reset(&g_arena);
  cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_JWT, "k8s-prod", g_tok, strlen(g_tok),
                                 &ck, &id, &why),
               IDM_OK, "%s", why.text);
  cr_assert_eq(id.trust, &t_k8s);
  attr_eq(&id, POL_A_NAMESPACE, "payments");
  return id.cached;
}

Test(jwtkinds, reload_keeps_the_cache_of_unchanged_trust_blocks) {
  idm_attest_cache_t *c = idm_attest_cache_new(64, 0);
  fx_sign(&g_rsa, "RS256", k8s_claims(NOW - 60, NOW + 600, K8S_ISS, "idmint"), g_tok,
          sizeof g_tok);
  idm_attest_t *a = mk();
  cr_assert(!verify_k8s(a, c));
  cr_assert(verify_k8s(a, c));

  idm_attest_t *b = mk(); /* reload, nothing changed */
  for (size_t i = 0; i < b->n; i++)
    cr_assert_eq(a->prov[i].gen, b->prov[i].gen, "trust block %zu", i);
  idm_attest_free(a);
  cr_assert(verify_k8s(b, c), "an unchanged trust block lost its cached identities");

  static const char *const aud2[] = {"idmint", "idmint-canary"}; /* a setting changes */
  t_k8s.audience = aud2;
  t_k8s.audience_count = 2;
  idm_attest_t *d = mk();
  t_k8s.audience = k8s_aud;
  t_k8s.audience_count = 1;
  cr_assert_neq(d->prov[0].gen, b->prov[0].gen);
  for (size_t i = 1; i < d->n; i++)
    cr_assert_eq(d->prov[i].gen, b->prov[i].gen, "trust block %zu", i);
  cr_assert(!verify_k8s(d, c), "served from the cache after its trust block changed");
  cr_assert(verify_k8s(d, c));

  const fx_key_t *rsa_only[] = {&g_rsa}; /* the key file changes, the signing key stays */
  fx_jwks_write(env_path("k8s.jwks"), rsa_only, 1, NULL);
  idm_attest_t *e = mk();
  const fx_key_t *k8s[] = {&g_rsa, &g_ec256};
  fx_jwks_write(env_path("k8s.jwks"), k8s, 2, NULL);
  cr_assert_neq(e->prov[0].gen, d->prov[0].gen);
  cr_assert_eq(e->prov[1].gen, d->prov[1].gen);
  cr_assert(!verify_k8s(e, c), "served from the cache after its key file changed");
  idm_attest_free(b);
  idm_attest_free(d);
  idm_attest_free(e);
  idm_attest_cache_free(c);
}

/* A SPIFFE trust bundle as SPIRE serves it: a jwt-svid key and an x509-svid entry (which
 * a JWT verifier must skip, not reject). */
Test(jwtkinds, spiffe_bundle_with_use_members) {
  char ed[2048], rsa[2048];
  fx_jwk_json(&g_ed, NULL, ed, sizeof ed);
  fx_jwk_json(&g_rsa, NULL, rsa, sizeof rsa);
  /* Turn "kid":... into "use":"jwt-svid" for Ed25519 and "use":"x509-svid" for RSA. */
  char *u = strstr(rsa, "\"use\":\"sig\"");
  cr_assert_not_null(u);
  char bundle[4096];
  snprintf(bundle, sizeof bundle,
           "{\"spiffe_sequence\":7,\"spiffe_refresh_hint\":60,\"keys\":[%.*s,\"use\":\"jwt-svid\"},"
           "%.*s\"use\":\"x509-svid\",\"x5c\":[\"MIIB\"]%s]}",
           (int)strlen(ed) - 1, ed, (int)(u - rsa), rsa, u + strlen("\"use\":\"sig\""));
  FILE *f = fopen(env_path("bundle.json"), "w");
  fputs(bundle, f);
  fclose(f);
  pol_trust_t t = t_spiffe;
  t.jwks = env_path("bundle.json");
  const pol_trust_t *ts[] = {&t};
  idm_why_t why = {{0}};
  idm_attest_t *a = idm_attest_new_from_trusts(ts, 1, &why);
  cr_assert_not_null(a, "%s: %s", why.text, bundle);
  idm_identity_t id;
  fx_sign(&g_ed, "EdDSA", svid("spiffe://corp.example/web"), g_tok, sizeof g_tok);
  cr_assert_eq(verify(a, "spire", g_tok, NOW, &id, &why), IDM_OK, "%s", why.text);
  /* The x509-svid key does not verify JWT-SVIDs. */
  fx_sign(&g_rsa, "RS256", svid("spiffe://corp.example/web"), g_tok, sizeof g_tok);
  cr_assert_neq(verify(a, "spire", g_tok, NOW, &id, &why), IDM_OK);
  idm_attest_free(a);
}

/* The server's shape: one idm_attest_t shared by threads, one cache and arena each. */
typedef struct worker {
  idm_attest_t *a;
  const char *tok[3];
  int ok;
} worker_t;

static void *work(void *arg) {
  worker_t *w = arg;
  idm_arena_t ar;
  idm_arena_init(&ar, 256 * 1024);
  idm_attest_cache_t *c = idm_attest_cache_new(16, 0);
  idm_clock_t ck = env_clock(NOW);
  for (int i = 0; i < 60; i++) {
    const char *t = w->tok[i % 3];
    idm_identity_t id;
    idm_arena_reset(&ar);
    if (idm_attest_verify(w->a, i % 2 ? c : NULL, &ar, IDM_DOC_JWT, NULL, t, strlen(t), &ck, &id,
                          NULL) == IDM_OK &&
        id.client.attr[POL_A_SUBJECT].ptr)
      w->ok++;
  }
  idm_attest_cache_free(c);
  idm_arena_cleanup(&ar);
  return NULL;
}

Test(jwtkinds, shared_across_threads) {
  idm_attest_t *a = mk();
  static char t0[8192], t1[8192], t2[8192];
  fx_sign(&g_rsa, "RS256", k8s_claims(NOW, NOW + 600, K8S_ISS, "idmint"), t0, sizeof t0);
  fx_sign(&g_ed, "EdDSA", svid("spiffe://corp.example/web"), t1, sizeof t1);
  fx_sign(&g_ec256, "ES256", k8s_claims(NOW, NOW + 600, K8S_ISS, "idmint"), t2, sizeof t2);
  pthread_t th[4];
  worker_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_t){a, {t0, t1, t2}, 0};
    pthread_create(&th[i], NULL, work, &w[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(w[i].ok, 60, "thread %d: %d of 60", i, w[i].ok);
  }
  idm_attest_free(a);
}

/* The cache stores identities compactly (shared JWS header segment, attributes found inside
 * longer ones as references, claims re-laid): for every JWT kind, the identity served from
 * the cache is exactly the one the full verification produced (attributes, claims, exp). */
Test(jwtkinds, cached_identity_equals_verified_identity_for_every_kind) {
  idm_attest_t *a = mk();
  idm_attest_cache_t *c = idm_attest_cache_new(64, 0);
  static char claims[5][2048];
  snprintf(claims[0], sizeof claims[0], "%s", k8s_claims(NOW - 60, NOW + 600, K8S_ISS, "idmint"));
  snprintf(claims[1], sizeof claims[1],
           "{\"sub\":\"repo:octo-org/octo-repo:environment:prod\",\"environment\":\"prod\","
           "\"aud\":\"https://github.com/octo-org\",\"ref\":\"refs/heads/main\","
           "\"repository\":\"octo-org/octo-repo\",\"repository_owner\":\"octo-org\","
           "\"actor\":\"octocat\",\"workflow\":\"example-workflow\",\"event_name\":\"push\","
           "\"ref_type\":\"branch\",\"iss\":\"https://token.actions.githubusercontent.com\","
           "\"nbf\":%lld,\"exp\":%lld,\"iat\":%lld}",
           NOW - 5, NOW + 295, NOW);
  snprintf(claims[2], sizeof claims[2],
           "{\"namespace_path\":\"my-group\",\"project_path\":\"my-group/my-project\","
           "\"ref\":\"main\",\"ref_type\":\"branch\",\"environment\":\"prod\","
           "\"iss\":\"https://gitlab.example.com\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld,"
           "\"sub\":\"project_path:my-group/my-project:ref_type:branch:ref:main\",\"aud\":\"idmint\"}",
           NOW, NOW - 5, NOW + 3600);
  snprintf(claims[3], sizeof claims[3], "%s", svid("spiffe://corp.example/ns/payments/sa/api"));
  snprintf(claims[4], sizeof claims[4],
           "{\"iss\":\"https://idp.example.com/oauth2/default\",\"sub\":\"00u1abcd\","
           "\"aud\":\"idmint\",\"exp\":%lld,\"iat\":%lld,\"email\":\"dev@example.com\","
           "\"cid\":\"0oa9\",\"name\":\"00u1abcd\"}",
           NOW + 600, NOW);
  static const struct {
    const char *trust, *alg;
    const fx_key_t *k;
  } kinds[5] = {{"k8s-prod", "RS256", &g_rsa}, {"gh", "ES256", &g_ec256}, {"gl", "PS256", &g_rsa},
                {"spire", "EdDSA", &g_ed}, {"okta", "EdDSA", &g_ed}};
  for (int i = 0; i < 5; i++) {
    static char tok[5][8192];
    fx_sign(kinds[i].k, kinds[i].alg, claims[i], tok[i], sizeof tok[i]);
    idm_clock_t ck = env_clock(NOW);
    idm_identity_t id;
    idm_why_t why = {{0}};
    char full[4096], cached[4096];
    size_t n1 = 0, n2 = 0;
    idm_arena_reset(&g_arena);
    cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_JWT, kinds[i].trust, tok[i],
                                   strlen(tok[i]), &ck, &id, &why),
                 IDM_OK, "%s: %s", kinds[i].trust, why.text);
    cr_assert(!id.cached);
    cr_assert_eq(idm_identity_to_json(&id, full, sizeof full, &n1), IDM_OK);
    int64_t exp = id.exp_s;
    idm_arena_reset(&g_arena);
    cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_JWT, kinds[i].trust, tok[i],
                                   strlen(tok[i]), &ck, &id, &why),
                 IDM_OK, "%s", why.text);
    cr_assert(id.cached, "%s: not served from the cache", kinds[i].trust);
    cr_assert_eq(idm_identity_to_json(&id, cached, sizeof cached, &n2), IDM_OK);
    cr_assert_eq(id.exp_s, exp);
    cr_assert_str_eq(cached, full, "%s", kinds[i].trust);
  }
  /* Each second verification was served from the one cache the five kinds share. */
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_eq(st.hits, 5);
  idm_attest_cache_free(c);
  idm_attest_free(a);
}
