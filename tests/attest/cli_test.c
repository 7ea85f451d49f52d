/* `idmint attest` and `idmint join-token new` run as processes against a configuration
 * file, JWK Set, certificate and store written by the test. */
#include <criterion/criterion.h>
#include <sys/wait.h>

#include "core/file.h"
#include "env.h"

static char g_out[65536], g_err[65536];

static int run(const char *args) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s/engine/idmint %s >%s 2>%s", IDM_BUILD_DIR, args,
           env_path("out.txt"), env_path("err.txt"));
  int st = system(cmd);
  char *s;
  size_t n;
  g_out[0] = g_err[0] = '\0';
  if (idm_file_read(env_path("out.txt"), sizeof g_out - 1, &s, &n, NULL) == IDM_OK) {
    memcpy(g_out, s, n + 1);
    free(s);
  }
  if (idm_file_read(env_path("err.txt"), sizeof g_err - 1, &s, &n, NULL) == IDM_OK) {
    memcpy(g_err, s, n + 1);
    free(s);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

static void setup(void) {
  const fx_key_t *k8s[] = {&g_rsa, &g_ed};
  fx_jwks_write(env_path("k8s.jwks.json"), k8s, 2, NULL);
  fx_cert_write(&g_rsa, env_path("aws.pem"));
  write_file(env_path("idmint.conf"),

             "trust \"k8s-prod\" {\n"
             "  kind     kubernetes\n"
             "  issuer   \"https://kubernetes.default.svc.cluster.local\"\n"
             "  jwks     \"k8s.jwks.json\"   # relative to this file\n"
             "  audience \"idmint\"\n"
             "}\n"
             "trust \"aws\" {\n"
             "  kind        aws-iid\n"
             "  certificate \"aws.pem\"\n"
             "  max_age     10m\n"
             "}\n"
             "trust \"edge\" {\n"
             "  kind  join-token\n"
             "  store \"join-tokens.json\"\n"
             "}\n");
}
TestSuite(cli, .init = setup);

static char *conf_arg(void) {
  static char b[600];
  snprintf(b, sizeof b, "--config %s", env_path("idmint.conf"));
  return b;
}

Test(cli, attest_kubernetes_token_prints_attributes) {
  long long now = time(NULL);
  char claims[2048], tok[8192];
  snprintf(claims, sizeof claims,
           "{\"aud\":[\"idmint\"],\"exp\":%lld,\"iat\":%lld,\"iss\":"
           "\"https://kubernetes.default.svc.cluster.local\",\"kubernetes.io\":{\"namespace\":"
           "\"payments\",\"pod\":{\"name\":\"api-0\",\"uid\":\"p\"},\"serviceaccount\":{\"name\":"
           "\"api\",\"uid\":\"s\"}},\"nbf\":%lld,\"sub\":\"system:serviceaccount:payments:api\"}",
           now + 600, now, now);
  fx_sign(&g_ed, "EdDSA", claims, tok, sizeof tok);
  write_file(env_path("tok.jwt"), tok);
  char args[16384];
  snprintf(args, sizeof args, "attest %s --trust k8s-prod @%s", conf_arg(), env_path("tok.jwt"));
  cr_assert_eq(run(args), 0, "%s", g_err);
  cr_assert(strstr(g_out, "\"namespace\":\"payments\""), "%s", g_out);
  cr_assert(strstr(g_out, "\"service_account\":\"api\""), "%s", g_out);
  cr_assert(strstr(g_out, "\"trust\":\"k8s-prod\""), "%s", g_out);
  /* Chosen by iss, document on the command line. */
  snprintf(args, sizeof args, "attest %s %s", conf_arg(), tok);
  cr_assert_eq(run(args), 0, "%s", g_err);
  /* Refused: one line on stderr with the reason, exit 1. */
  snprintf(claims, sizeof claims,
           "{\"aud\":\"idmint\",\"exp\":%lld,\"iss\":\"https://kubernetes.default.svc.cluster.local\","
           "\"sub\":\"system:serviceaccount:payments:api\"}",
           now - 3600);
  fx_sign(&g_ed, "EdDSA", claims, tok, sizeof tok);
  snprintf(args, sizeof args, "attest %s --trust k8s-prod %s", conf_arg(), tok);
  cr_assert_eq(run(args), 1);
  cr_assert(strstr(g_err, "IDM_ERR_JWT_EXPIRED") && strstr(g_err, "expired 360") /* 3600s or 3601s: real time */, "%s", g_err);
  cr_assert_eq(run("attest --trust x"), 2);
}

Test(cli, attest_aws_iid) {
  char pt[32], doc[4096], tok[8192];
  fx_time(pt, sizeof pt, time(NULL) - 60);
  fx_iid_doc(doc, sizeof doc, "123456789012", "i-0123456789abcdef0", pt);
  fx_iid_wrap(&g_rsa, doc, tok, sizeof tok);
  write_file(env_path("iid.json"), tok);
  char args[16384];
  snprintf(args, sizeof args, "attest %s @%s", conf_arg(), env_path("iid.json"));
  cr_assert_eq(run(args), 0, "%s", g_err);
  cr_assert(strstr(g_out, "\"instance_id\":\"i-0123456789abcdef0\""), "%s", g_out);
  cr_assert(strstr(g_out, "\"kind\":\"aws-iid\""), "%s", g_out);
}

Test(cli, join_token_new_then_used_once) {
  char args[16384];
  snprintf(args, sizeof args, "join-token new %s --name edge-7 --ttl 1h", conf_arg());
  cr_assert_eq(run(args), 0, "%s", g_err);
  char tok[256];
  cr_assert_lt(strlen(g_out), sizeof tok);
  memcpy(tok, g_out, strlen(g_out) + 1);
  tok[strcspn(tok, "\n")] = '\0';
  cr_assert(!strncmp(tok, "idmjt1.edge-7.", 14), "%s", tok);
  snprintf(args, sizeof args, "attest %s --trust edge %s", conf_arg(), tok);
  cr_assert_eq(run(args), 0, "%s", g_err);
  cr_assert(strstr(g_out, "\"token_name\":\"edge-7\""), "%s", g_out);
  cr_assert_eq(run(args), 1);
  cr_assert(strstr(g_err, "already used"), "%s", g_err);
  snprintf(args, sizeof args, "join-token new %s --name edge-8 --ttl soon", conf_arg());
  cr_assert_eq(run(args), 2);
}
