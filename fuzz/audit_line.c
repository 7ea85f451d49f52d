/* Fuzz target: the audit log line verifier (batch/audit.h).
 *
 * At start the harness makes a key in a temporary directory and writes two audit lines
 * with the batcher (credentials of both profiles and a denial). Each input is used twice:
 *  1. as a line, given to a fresh verifier: must not crash, and must be refused unless
 *     it is the first real line (its signature is by a key nobody else has);
 *  2. as a patch of line 1 (pairs position, value): the patched line followed by the
 *     real line 2 must not both be accepted, unless the patch changed nothing. That is
 *     the log's promise: an edit is caught at its line or, for the bytes no signature
 *     covers (denial entries), by the next line's chain hash;
 *  3. as the tail of a log file after the two real lines (what a crash or a preallocated
 *     log leaves there, or damage): idm_audit_verify_file must accept an all-zero tail
 *     and refuse any other at line 3; idm_audit_open must not crash, and when it accepts
 *     the file it keeps exactly the two lines and cuts the tail.
 * Seeds (fuzz/corpus/audit_line) are real lines from a run and edits of them, and tails:
 * zeros, a torn line before zeros, garbage or a line's start after zeros. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch/audit.h"
#include "batch/batch.h"
#include "core/json.h"
#include "crypto/keys.h"

static char line[2][65536];
static size_t line_len[2];
static idm_jwks_t *jwks;
static char tail_path[64];

static void setup(void) {
  idm_json_init();
  char dir[] = "/tmp/idm_fuzz_audit_XXXXXX";
  if (!mkdtemp(dir))
    abort();
  char kd[64], lp[64];
  snprintf(kd, sizeof kd, "%s/keys", dir);
  snprintf(lp, sizeof lp, "%s/audit.log", dir);
  idm_why_t why = {{0}};
  idm_clock_t clk = {0};
  idm_clock_set_s(&clk, 1800000000);
  if (idm_keys_new(kd, IDM_KEY_EDDSA, &clk, NULL, &why))
    abort();
  idm_keyring_t *kr = idm_keyring_load(kd, &clk, &why);
  size_t jl;
  const char *j = idm_keyring_jwks_json(kr, &jl);
  jwks = idm_jwks_parse(j, jl, &why);
  idm_audit_log_t *log = idm_audit_open(lp, NULL, &why);
  const idm_key_t *k = idm_keyring_signer(kr, IDM_KEY_EDDSA);
  idm_batch_opts_t o = {.key = k, .items_max = 4, .log = log, .iss = "https://i", .clk = &clk};
  idm_batch_t *b;
  if (!kr || !jwks || !log || idm_batch_new(&b, &o, &why))
    abort();
  static const char *const rules[] = {"r1", "r2"};
  for (int n = 0; n < 2; n++) {
    char out[3][IDM_TOKEN_MAX];
    for (int i = 0; i < 3; i++) {
      char jti[16];
      snprintf(jti, sizeof jti, "j%d%d", n, i);
      idm_claims_t c = {.iss = "https://i", .sub = "s\"\\x", .aud = "a", .iat = 1800000000,
                        .nbf = 1800000000, .exp = 1800000060, .jti = jti, .scope = "x y",
                        .trust = "t", .policy = "p"};
      idm_batch_item_t it = {.allow = true, .profile = i == 1 ? IDM_PROFILE_JWT : IDM_PROFILE_BATCH,
                             .key = i == 1 ? k : NULL, .claims = &c, .rules = rules,
                             .rules_n = 2, .out = out[i], .out_cap = IDM_TOKEN_MAX};
      if (idm_batch_add(b, &it, &why))
        abort();
    }
    idm_claims_t dc = {.sub = "denied-one", .trust = "t", .aud = "a"};
    idm_batch_item_t d = {.allow = false, .claims = &dc, .rules = rules, .rules_n = 1,
                          .reason = "forbid r1"};
    idm_batch_sealed_t s;
    if (idm_batch_add(b, &d, &why) || idm_batch_seal_sync(b, NULL, NULL, &s, &why) ||
        s.record_len - 1 > sizeof line[n])
      abort();
    memcpy(line[n], s.record, s.record_len - 1);
    line_len[n] = s.record_len - 1;
  }
  idm_batch_free(b);
  idm_audit_close(log);
  idm_keyring_free(kr);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
  snprintf(tail_path, sizeof tail_path, "/tmp/idm_fuzz_audit_tail_%d.log", (int)getpid());
  if (getenv("IDM_FUZZ_PRINT_SEEDS"))
    printf("%.*s\n%.*s\n", (int)line_len[0], line[0], (int)line_len[1], line[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!jwks)
    setup();
  idm_audit_verifier_t v;
  if (idm_audit_verifier_init(&v, jwks))
    abort();
  if (idm_audit_verify_line(&v, (const char *)data, size, NULL) == IDM_OK &&
      !(size == line_len[0] && !memcmp(data, line[0], size)))
    abort(); /* a line nobody signed was accepted */
  idm_audit_verifier_cleanup(&v);
  if (size >= 2) {
    static char l1[sizeof line[0]];
    memcpy(l1, line[0], line_len[0]);
    for (size_t i = 0; i + 1 < size; i += 2)
      l1[((size_t)data[i] * 131 + i * 31) % line_len[0]] = (char)data[i + 1];
    if (memcmp(l1, line[0], line_len[0])) {
      if (idm_audit_verifier_init(&v, jwks))
        abort();
      if (idm_audit_verify_line(&v, l1, line_len[0], NULL) == IDM_OK &&
          idm_audit_verify_line(&v, line[1], line_len[1], NULL) == IDM_OK)
        abort(); /* an edit went unnoticed */
      idm_audit_verifier_cleanup(&v);
    }
  }
  /* 3: the input as the tail of a two-line log */
  FILE *f = fopen(tail_path, "wb");
  if (!f)
    abort();
  size_t good = line_len[0] + line_len[1] + 2;
  if (fwrite(line[0], 1, line_len[0], f) != line_len[0] || fputc('\n', f) == EOF ||
      fwrite(line[1], 1, line_len[1], f) != line_len[1] || fputc('\n', f) == EOF ||
      fwrite(data, 1, size, f) != size || fclose(f))
    abort();
  bool zeros = true;
  for (size_t i = 0; i < size && zeros; i++)
    zeros = data[i] == 0;
  if (idm_audit_verifier_init(&v, jwks))
    abort();
  uint64_t bad;
  idm_err_t e = idm_audit_verify_file(&v, tail_path, &bad, NULL);
  if (zeros ? (e != IDM_OK || v.lines != 2) : (e == IDM_OK || bad != 3))
    abort(); /* a zero tail refused, or another tail accepted or blamed on a wrong line */
  idm_audit_verifier_cleanup(&v);
  idm_audit_log_t *log = idm_audit_open(tail_path, NULL, NULL);
  if (log) {
    struct stat st;
    if (fstat(idm_audit_fd(log), &st) || (size_t)st.st_size != good)
      abort(); /* recovery kept a tail byte or cut a good line */
    idm_audit_close(log);
  }
  unlink(tail_path);
  return 0;
}
