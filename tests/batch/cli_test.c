/* The batch area's command-line surface, run as a real process: `idmint audit verify`
 * (summary, --tokens presence proof, the first wrong line named with exit 1) and
 * `idmint token verify` on batch-profile tokens (through the verifier library). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batch/batch.h"
#include "core/json.h"
#include "crypto/keys.h"

#define ISS "https://idmint.cli"
static char dir[256], out[8192];

/* Runs cmd (stdout and stderr captured into out); returns its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char full[4200];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *p = popen(full, "r");
  cr_assert_not_null(p);
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define IDMINT IDM_BUILD_DIR "/engine/idmint"

static void setup(void) {
  idm_json_init();
  snprintf(dir, sizeof dir, "/tmp/idm_batch_cli_%d_XXXXXX", getpid());
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(run(IDMINT " keys new --dir %s/keys", dir), 0, "%s", out);
  cr_assert_eq(run(IDMINT " jwks --dir %s/keys > %s/jwks.json", dir, dir), 0, "%s", out);
  /* three batches of two tokens each, through the library */
  char kd[300], lp[300], tp[300];
  snprintf(kd, sizeof kd, "%s/keys", dir);
  snprintf(lp, sizeof lp, "%s/audit.log", dir);
  snprintf(tp, sizeof tp, "%s/tokens.txt", dir);
  idm_why_t why = {{0}};
  idm_keyring_t *kr = idm_keyring_load(kd, NULL, &why);
  cr_assert_not_null(kr, "%s", why.text);
  idm_audit_log_t *log = idm_audit_open(lp, NULL, &why);
  idm_batch_opts_t o = {.key = idm_keyring_signer(kr, IDM_KEY_EDDSA), .items_max = 2,
                        .log = log, .iss = ISS};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, &why), IDM_OK, "%s", why.text);
  FILE *tf = fopen(tp, "w");
  int64_t now = idm_clock_now_s(NULL);
  for (int k = 0; k < 3; k++) {
    char tok[2][IDM_TOKEN_MAX];
    for (int i = 0; i < 2; i++) {
      char jti[16];
      snprintf(jti, sizeof jti, "cli-%d-%d", k, i);
      idm_claims_t c = {.iss = ISS, .sub = "workload", .aud = "db", .iat = now, .nbf = now,
                        .exp = now + 600, .jti = jti, .trust = "k8s", .policy = "p"};
      idm_batch_item_t it = {.allow = true, .profile = IDM_PROFILE_BATCH, .claims = &c,
                             .out = tok[i], .out_cap = IDM_TOKEN_MAX};
      cr_assert_eq(idm_batch_add(b, &it, &why), IDM_OK, "%s", why.text);
    }
    cr_assert_eq(idm_batch_seal_sync(b, NULL, NULL, NULL, &why), IDM_OK, "%s", why.text);
    fprintf(tf, "%s\n%s\n", tok[0], tok[1]);
  }
  fclose(tf);
  idm_batch_free(b);
  idm_audit_close(log);
  idm_keyring_free(kr);
}

static void teardown(void) {
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
}

TestSuite(cli, .init = setup, .fini = teardown);

Test(cli, audit_verify_ok_with_tokens) {
  cr_assert_eq(run(IDMINT " audit verify %s/audit.log --jwks %s/jwks.json --tokens %s/tokens.txt",
                   dir, dir, dir),
               0, "%s", out);
  cr_assert(strstr(out, "3 batches, 6 entries") != NULL, "%s", out);
  cr_assert(strstr(out, "all 6 listed credentials present") != NULL, "%s", out);
}

Test(cli, audit_verify_names_the_wrong_line) {
  /* drop line 2: line 3 is the first whose chain breaks */
  cr_assert_eq(run("sed -i 2d %s/audit.log", dir), 0);
  cr_assert_eq(run(IDMINT " audit verify %s/audit.log --jwks %s/jwks.json", dir, dir), 1, "%s", out);
  cr_assert(strstr(out, "audit.log:2:") != NULL, "%s", out);
  cr_assert(strstr(out, "previous line") != NULL, "%s", out);
}

Test(cli, audit_verify_missing_token_is_reported) {
  /* keep only the first line: tokens of batches 2 and 3 are absent */
  cr_assert_eq(run("sed -i '2,$d' %s/audit.log", dir), 0);
  cr_assert_eq(run(IDMINT " audit verify %s/audit.log --jwks %s/jwks.json --tokens %s/tokens.txt",
                   dir, dir, dir),
               1, "%s", out);
  cr_assert(strstr(out, "4 of 6 credentials") != NULL, "%s", out);
}

Test(cli, audit_verify_usage) {
  cr_assert_eq(run(IDMINT " audit verify %s/audit.log", dir), 2, "%s", out);
  cr_assert(strstr(out, "--jwks") != NULL, "%s", out);
  cr_assert_eq(run(IDMINT " audit --help"), 0);
}

Test(cli, token_verify_batch_profile) {
  cr_assert_eq(run("head -1 %s/tokens.txt > %s/t1", dir, dir), 0);
  cr_assert_eq(run(IDMINT " token verify --jwks %s/jwks.json --issuer " ISS " @%s/t1", dir, dir), 0,
               "%s", out);
  cr_assert(strstr(out, "\"jti\": \"cli-0-0\"") != NULL, "%s", out);
  /* one character of the proof changed */
  char tp[300], t2[300], tok[IDM_TOKEN_MAX];
  snprintf(tp, sizeof tp, "%s/tokens.txt", dir);
  snprintf(t2, sizeof t2, "%s/t2", dir);
  FILE *f = fopen(tp, "r");
  cr_assert_not_null(fgets(tok, sizeof tok, f));
  fclose(f);
  size_t n = strcspn(tok, "\n");
  tok[n - 10] = tok[n - 10] == 'Q' ? 'R' : 'Q';
  f = fopen(t2, "w");
  fwrite(tok, 1, n, f);
  fclose(f);
  cr_assert_eq(run(IDMINT " token verify --jwks %s/jwks.json @%s/t2", dir, dir), 1, "%s", out);
  cr_assert(strstr(out, "token refused") != NULL, "%s", out);
}
