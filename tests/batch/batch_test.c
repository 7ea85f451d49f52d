/* The batcher, the batch token profile and the audit log, end to end: tokens of every
 * batch size from 1 to beyond the maximum verify; any single changed byte, or a proof
 * moved to another token, is refused; the audit log verifies, and truncation, deletion,
 * reordering or edits are caught at the right line; a torn tail is recovered; a failing
 * log stops issuance (fail closed); asynchronous completions release batches only once
 * every earlier byte is written. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch/audit.h"
#include "batch/batch.h"
#include "batch/verify_engine.h"
#include "core/json.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"
#include "idmint/verify.h"

#define ISS "https://idmint.test"
#define T0 1800000000

static char dir[256], logpath[300];
static idm_keyring_t *kr;
static const idm_key_t *ed, *es;
static idm_clock_t clk;
static idm_verifier_t *ver;

static void setup(void) {
  idm_json_init();
  snprintf(dir, sizeof dir, "/tmp/idm_batch_test_%d_XXXXXX", getpid());
  cr_assert_not_null(mkdtemp(dir));
  char kd[300];
  snprintf(kd, sizeof kd, "%s/keys", dir);
  snprintf(logpath, sizeof logpath, "%s/audit.log", dir);
  idm_clock_set_s(&clk, T0);
  idm_why_t why = {{0}};
  cr_assert_eq(idm_keys_new(kd, IDM_KEY_EDDSA, &clk, NULL, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(idm_keys_new(kd, IDM_KEY_ES256, &clk, NULL, &why), IDM_OK, "%s", why.text);
  kr = idm_keyring_load(kd, &clk, &why);
  cr_assert_not_null(kr, "%s", why.text);
  ed = idm_keyring_signer(kr, IDM_KEY_EDDSA);
  es = idm_keyring_signer(kr, IDM_KEY_ES256);
  cr_assert(ed && es);
  size_t jl;
  const char *jwks = idm_keyring_jwks_json(kr, &jl);
  idm_verify_opts_t vo = {.issuer = ISS, .now_s = T0 + 10};
  char reason[IDM_VERIFY_REASON_LEN];
  ver = idm_verifier_new(jwks, jl, &vo, reason);
  cr_assert_not_null(ver, "%s", reason);
}

static void teardown(void) {
  idm_verifier_free(ver);
  idm_keyring_free(kr);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) {
  }
}

TestSuite(batch, .init = setup, .fini = teardown);

static idm_jwks_t *jwks_of(idm_why_t *why) {
  size_t jl;
  const char *j = idm_keyring_jwks_json(kr, &jl);
  return idm_jwks_parse(j, jl, why);
}

typedef struct tok {
  char buf[IDM_TOKEN_MAX];
  size_t len;
  char jti[IDM_JTI_MAX];
  char sub[32];
  int done;
  idm_err_t err;
} tok_t;

static void on_done(void *cookie, idm_err_t err, void *ctx) {
  tok_t *t = cookie;
  t->done++;
  t->err = err;
  (void)ctx;
}

static idm_err_t add_tok(idm_batch_t *b, tok_t *t, int i, idm_profile_t prof, const idm_key_t *k) {
  snprintf(t->jti, sizeof t->jti, "jti-%d", i);
  snprintf(t->sub, sizeof t->sub, "system:serviceaccount:ns:sa-%d", i);
  idm_claims_t c = {.iss = ISS, .sub = t->sub, .aud = "spiffe://corp/db", .iat = T0,
                    .nbf = T0, .exp = T0 + 300, .jti = t->jti, .scope = i % 2 ? "db.read" : "",
                    .trust = "k8s", .policy = "payments-api"};
  static const char *const rules[] = {"payments-api"};
  idm_batch_item_t it = {.allow = true, .profile = prof, .key = k, .claims = &c,
                         .target = "payments-db", .rules = rules, .rules_n = 1,
                         .out = t->buf, .out_cap = sizeof t->buf, .out_len = &t->len,
                         .cookie = t};
  idm_why_t why = {{0}};
  return idm_batch_add(b, &it, &why);
}

static int verify(const char *tok, size_t len, idm_verified_t *out, char *reason) {
  return idm_verify_token(ver, tok, len, 0, out, NULL, 0, reason);
}

/* Mints n batch-profile tokens through a batcher of capacity max, sealing when full. */
static tok_t *mint_n(idm_batch_t *b, size_t n) {
  tok_t *t = calloc(n, sizeof *t);
  idm_why_t why = {{0}};
  for (size_t i = 0; i < n; i++) {
    idm_err_t e = add_tok(b, &t[i], (int)i, IDM_PROFILE_BATCH, NULL);
    if (e == IDM_ERR_BATCH_FULL) {
      cr_assert_eq(idm_batch_seal_sync(b, on_done, NULL, NULL, &why), IDM_OK, "%s", why.text);
      e = add_tok(b, &t[i], (int)i, IDM_PROFILE_BATCH, NULL);
    }
    cr_assert_eq(e, IDM_OK);
  }
  if (idm_batch_pending(b))
    cr_assert_eq(idm_batch_seal_sync(b, on_done, NULL, NULL, &why), IDM_OK, "%s", why.text);
  return t;
}

Test(batch, every_size_up_to_beyond_max_verifies) {
  enum { MAX = 16 };
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, NULL);
  cr_assert_not_null(log);
  idm_batch_opts_t o = {.key = ed, .items_max = MAX, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_batch_new(&b, &o, &why), IDM_OK, "%s", why.text);
  for (size_t n = 1; n <= 2 * MAX + 3; n++) {
    tok_t *t = mint_n(b, n);
    for (size_t i = 0; i < n; i++) {
      cr_assert_eq(t[i].done, 1, "n=%zu i=%zu not completed", n, i);
      cr_assert_eq(t[i].err, IDM_OK);
      cr_assert_eq(strlen(t[i].buf), t[i].len);
      idm_verified_t vd;
      char reason[IDM_VERIFY_REASON_LEN];
      cr_assert_eq(verify(t[i].buf, t[i].len, &vd, reason), 0, "n=%zu i=%zu: %s", n, i, reason);
      cr_assert_eq(vd.profile, 1);
      size_t in_batch = (i / MAX == (n - 1) / MAX) ? (n - 1) % MAX + 1 : MAX;
      cr_assert_eq(vd.batch_size, in_batch, "n=%zu i=%zu size %llu", n, i,
                   (unsigned long long)vd.batch_size);
      /* the second token of a batch finds the batch signature cached */
      if (i % MAX > 0)
        cr_assert_eq(vd.batch_cached, 1);
    }
    free(t);
  }
  idm_batch_free(b);
  idm_audit_close(log);
  idm_jwks_t *set = jwks_of(&why);
  idm_audit_verifier_t av;
  cr_assert_eq(idm_audit_verifier_init(&av, set), IDM_OK);
  uint64_t bad;
  cr_assert_eq(idm_audit_verify_file(&av, logpath, &bad, &why), IDM_OK, "line %llu: %s",
               (unsigned long long)bad, why.text);
  cr_assert_eq(av.allows, (2 * MAX + 3) * (2 * MAX + 4) / 2);
  idm_audit_verifier_cleanup(&av);
  idm_jwks_free(set);
}

Test(batch, any_changed_byte_or_moved_proof_is_refused) {
  idm_batch_opts_t o = {.key = ed, .items_max = 8, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t *t = mint_n(b, 13); /* batches of 8 and 5 */
  char reason[IDM_VERIFY_REASON_LEN];
  /* Verify every token first, so the batch signatures are cached: a change must be
   * refused even then (regression: the cache was keyed on the batch message only, so a
   * changed signature field passed once its batch was cached). */
  for (size_t k = 0; k < 13; k++)
    cr_assert_eq(verify(t[k].buf, t[k].len, NULL, reason), 0, "%s", reason);
  static const char alphabet[] = "AQgw_-.x=";
  for (size_t k = 0; k < 13; k += 4) {
    char tok[IDM_TOKEN_MAX];
    for (size_t i = 0; i < t[k].len; i++) {
      for (size_t a = 0; a < sizeof alphabet - 1; a++) {
        memcpy(tok, t[k].buf, t[k].len);
        if (tok[i] == alphabet[a])
          continue;
        tok[i] = alphabet[a];
        cr_assert_neq(verify(tok, t[k].len, NULL, reason), 0, "token %zu byte %zu -> %c accepted",
                      k, i, alphabet[a]);
      }
    }
    /* truncated and extended */
    cr_assert_neq(verify(t[k].buf, t[k].len - 1, NULL, reason), 0);
    memcpy(tok, t[k].buf, t[k].len);
    tok[t[k].len] = 'A';
    cr_assert_neq(verify(tok, t[k].len + 1, NULL, reason), 0);
  }
  /* a proof moved to every other token (same batch and other batch) */
  for (size_t i = 0; i < 13; i++) {
    const char *pi = strrchr(t[i].buf, '.');
    for (size_t j = 0; j < 13; j++) {
      if (i == j)
        continue;
      char tok[IDM_TOKEN_MAX];
      size_t head = (size_t)(strrchr(t[j].buf, '.') - t[j].buf);
      memcpy(tok, t[j].buf, head);
      strcpy(tok + head, pi);
      cr_assert_neq(verify(tok, strlen(tok), NULL, reason), 0, "proof %zu on token %zu accepted", i, j);
    }
  }
  free(t);
  idm_batch_free(b);
}

Test(batch, jwt_profile_through_the_batcher) {
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, NULL);
  idm_batch_opts_t o = {.key = ed, .items_max = 4, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t t[3] = {0};
  cr_assert_eq(add_tok(b, &t[0], 0, IDM_PROFILE_JWT, ed), IDM_OK);
  cr_assert_eq(add_tok(b, &t[1], 1, IDM_PROFILE_JWT, es), IDM_OK);
  cr_assert_eq(add_tok(b, &t[2], 2, IDM_PROFILE_BATCH, NULL), IDM_OK);
  idm_why_t why = {{0}};
  cr_assert_eq(idm_batch_seal_sync(b, on_done, NULL, NULL, &why), IDM_OK, "%s", why.text);
  char reason[IDM_VERIFY_REASON_LEN], claims[2048];
  for (int i = 0; i < 3; i++) {
    idm_verified_t vd;
    cr_assert_eq(t[i].done, 1);
    cr_assert_eq(idm_verify_token(ver, t[i].buf, t[i].len, 0, &vd, claims, sizeof claims, reason),
                 0, "%d: %s", i, reason);
    cr_assert_eq(vd.profile, i == 2 ? 1 : 0);
    cr_assert(strstr(claims, t[i].jti) != NULL, "%s", claims);
  }
  /* jwt tokens are plain JWS: the crypto area's verifier accepts them too */
  idm_jwks_t *set = jwks_of(&why);
  idm_clock_t now = {0};
  idm_clock_set_s(&now, T0 + 1);
  cr_assert_eq(idm_jwt_verify(set, t[1].buf, t[1].len, NULL, &now, NULL, NULL, &why), IDM_OK,
               "%s", why.text);
  idm_batch_free(b);
  idm_audit_close(log);
  idm_audit_verifier_t av;
  idm_audit_verifier_init(&av, set);
  uint64_t bad;
  cr_assert_eq(idm_audit_verify_file(&av, logpath, &bad, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(av.allows, 3);
  idm_audit_verifier_cleanup(&av);
  idm_jwks_free(set);
}

/* ---- audit log --------------------------------------------------------------------- */

/* Writes a log of `batches` batches of 3 credentials and one denial each. */
static void write_log(int batches) {
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, NULL);
  cr_assert_not_null(log);
  idm_batch_opts_t o = {.key = ed, .items_max = 4, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  idm_why_t why = {{0}};
  for (int k = 0; k < batches; k++) {
    tok_t t[3];
    for (int i = 0; i < 3; i++)
      cr_assert_eq(add_tok(b, &t[i], k * 10 + i, IDM_PROFILE_BATCH, NULL), IDM_OK);
    idm_claims_t dc = {.sub = "intruder\n\"quoted\"", .trust = "k8s", .aud = "spiffe://corp/db"};
    static const char *const rules[] = {"no-sandbox"};
    idm_batch_item_t deny = {.allow = false, .claims = &dc, .rules = rules, .rules_n = 1,
                             .reason = "forbid no-sandbox matched"};
    cr_assert_eq(idm_batch_add(b, &deny, &why), IDM_OK, "%s", why.text);
    cr_assert_eq(idm_batch_seal_sync(b, NULL, NULL, NULL, &why), IDM_OK, "%s", why.text);
  }
  idm_batch_free(b);
  idm_audit_close(log);
}

static char *slurp(size_t *len) {
  FILE *f = fopen(logpath, "rb");
  cr_assert_not_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *p = malloc((size_t)n + 1);
  cr_assert_eq(fread(p, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  p[n] = 0;
  *len = (size_t)n;
  return p;
}

static void spit(const char *p, size_t len) {
  FILE *f = fopen(logpath, "wb");
  cr_assert_eq(fwrite(p, 1, len, f), len);
  fclose(f);
}

/* Offset of the start of line no (1-based). */
static size_t line_off(const char *p, int no) {
  size_t off = 0;
  for (int i = 1; i < no; i++)
    off = (size_t)(strchr(p + off, '\n') - p) + 1;
  return off;
}

static uint64_t verify_log(idm_err_t *err, char *reason) {
  idm_why_t why = {{0}};
  idm_jwks_t *set = jwks_of(&why);
  idm_audit_verifier_t av;
  idm_audit_verifier_init(&av, set);
  uint64_t bad = 0;
  *err = idm_audit_verify_file(&av, logpath, &bad, &why);
  snprintf(reason, 256, "%s", why.text);
  idm_audit_verifier_cleanup(&av);
  idm_jwks_free(set);
  return bad;
}

Test(batch, audit_log_tampering_is_caught_at_its_line) {
  write_log(5);
  size_t len;
  char *orig = slurp(&len), *p = malloc(len + 64);
  char reason[256];
  idm_err_t err;
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
  cr_assert_eq(err, IDM_OK);
  /* truncated inside line 4 */
  spit(orig, line_off(orig, 4) + 20);
  cr_assert_eq(verify_log(&err, reason), 4);
  cr_assert_eq(err, IDM_ERR_AUDIT_TORN, "%s", reason);
  /* line 3 deleted: line 4 (now 3) no longer chains */
  memcpy(p, orig, line_off(orig, 3));
  memcpy(p + line_off(orig, 3), orig + line_off(orig, 4), len - line_off(orig, 4));
  spit(p, len - (line_off(orig, 4) - line_off(orig, 3)));
  cr_assert_eq(verify_log(&err, reason), 3);
  cr_assert_eq(err, IDM_ERR_AUDIT_CHAIN, "%s", reason);
  /* an edit of one byte anywhere in line 2 is caught at line 2 (or, for the few bytes
   * the JSON parser ignores, nowhere else: each edit must be caught somewhere) */
  size_t l2 = line_off(orig, 2), l3 = line_off(orig, 3);
  for (size_t i = l2; i < l3 - 1; i += 7) {
    memcpy(p, orig, len);
    p[i] = p[i] == 'A' ? 'B' : 'A';
    spit(p, len);
    uint64_t bad = verify_log(&err, reason);
    cr_assert(bad == 2 || bad == 3, "edit at %zu caught at line %llu (%s)", i - l2,
              (unsigned long long)bad, reason);
    /* an edit of line 2 that re-serializes to valid JSON still changes its hash */
  }
  /* edited line with its chain hash fixed up is caught by the signature or the tree */
  memcpy(p, orig, len);
  char *jti = strstr(p + l2, "\"jti\":\"jti-1");
  cr_assert_not_null(jti);
  jti[11] = '9';
  spit(p, len);
  cr_assert_eq(verify_log(&err, reason), 2);
  cr_assert_eq(err, IDM_ERR_AUDIT_ENTRY, "%s", reason);
  /* swapped lines 2 and 3 */
  size_t a = l3 - l2, c = line_off(orig, 4) - l3;
  memcpy(p, orig, len);
  memcpy(p + l2, orig + l3, c);
  memcpy(p + l2 + c, orig + l2, a);
  spit(p, len);
  cr_assert_eq(verify_log(&err, reason), 2);
  free(p);
  free(orig);
}

Test(batch, torn_tail_is_recovered_and_the_chain_continues) {
  write_log(3);
  size_t len;
  char *orig = slurp(&len);
  spit(orig, len - 30);
  idm_why_t why = {{0}};
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, &why);
  cr_assert_not_null(log, "%s", why.text);
  cr_assert_eq(idm_audit_recovered_bytes(log), len - 30 - line_off(orig, 3));
  idm_audit_close(log);
  write_log(2);
  char reason[256];
  idm_err_t err;
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
  /* a complete but tampered line in the middle makes open refuse */
  char *p = slurp(&len);
  p[line_off(p, 2) + 100] ^= 1; /* inside line 2: line 3 no longer chains */
  spit(p, len);
  cr_assert_null(idm_audit_open(logpath, NULL, &why));
  cr_assert(strstr(why.text, ":3:") != NULL, "%s", why.text);
  free(p);
  free(orig);
}

Test(batch, failed_log_stops_issuance) {
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, NULL);
  int full = open("/dev/full", O_WRONLY);
  if (full < 0)
    cr_skip_test("/dev/full is not available");
  dup2(full, idm_audit_fd(log));
  close(full);
  idm_batch_opts_t o = {.key = ed, .items_max = 4, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t t = {0};
  cr_assert_eq(add_tok(b, &t, 1, IDM_PROFILE_BATCH, NULL), IDM_OK);
  idm_why_t why = {{0}};
  cr_assert_eq(idm_batch_seal_sync(b, on_done, NULL, NULL, &why), IDM_ERR_AUDIT_FAILED);
  cr_assert_eq(t.done, 1);
  cr_assert_eq(t.err, IDM_ERR_AUDIT_FAILED);
  cr_assert(idm_audit_failed(log, &why));
  cr_assert(strstr(why.text, "No space") != NULL, "%s", why.text);
  cr_assert_eq(add_tok(b, &t, 2, IDM_PROFILE_BATCH, NULL), IDM_ERR_AUDIT_FAILED);
  idm_batch_free(b);
  idm_audit_close(log);
}

Test(batch, async_completion_waits_for_every_earlier_byte) {
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, NULL);
  idm_batch_opts_t o = {.key = ed, .items_max = 2, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t t[3] = {0};
  idm_batch_sealed_t s[3];
  idm_why_t why = {{0}};
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(add_tok(b, &t[i], i, IDM_PROFILE_BATCH, NULL), IDM_OK);
    cr_assert_eq(idm_batch_seal(b, &s[i], &why), IDM_OK, "%s", why.text);
    cr_assert_eq(s[i].seq, (uint64_t)i);
  }
  cr_assert_eq(idm_batch_inflight(b), 3);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 0);
  /* batch 1's write finishes first: nothing may be released */
  cr_assert_eq(pwrite(idm_audit_fd(log), s[1].record, s[1].record_len, (off_t)s[1].offset),
               (ssize_t)s[1].record_len);
  idm_audit_written(log, s[1].offset, (int64_t)s[1].record_len);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 0);
  /* batch 0 written: 0 and 1 are released, 2 is not */
  cr_assert_eq(pwrite(idm_audit_fd(log), s[0].record, s[0].record_len, (off_t)s[0].offset),
               (ssize_t)s[0].record_len);
  idm_audit_written(log, s[0].offset, (int64_t)s[0].record_len);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 2);
  cr_assert_eq(t[0].done + t[1].done + t[2].done, 2);
  cr_assert_eq(t[2].done, 0);
  /* a short write of batch 2, then the rest */
  cr_assert_eq(pwrite(idm_audit_fd(log), s[2].record, s[2].record_len, (off_t)s[2].offset),
               (ssize_t)s[2].record_len);
  idm_audit_written(log, s[2].offset, 10);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 0);
  idm_audit_written(log, s[2].offset + 10, (int64_t)s[2].record_len - 10);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 1);
  idm_batch_free(b);
  idm_audit_close(log);
  char reason[256];
  idm_err_t err;
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
}

/* The server's write queue (group commit across threads): lines are taken in file order
 * only — a line queued behind one not yet queued waits for it (no hole) — by one writer
 * at a time, as one group, and each group under fsync batch ends synced. */
Test(batch, write_queue_takes_lines_in_file_order_one_writer_at_a_time) {
  idm_audit_opts_t ao = {.fsync = IDM_AUDIT_FSYNC_BATCH};
  idm_audit_log_t *log = idm_audit_open(logpath, &ao, NULL);
  cr_assert_not_null(log);
  idm_batch_opts_t o = {.key = ed, .items_max = 2, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t t[4] = {0};
  idm_batch_sealed_t s[4];
  idm_why_t why = {{0}};
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(add_tok(b, &t[i], i, IDM_PROFILE_BATCH, NULL), IDM_OK);
    cr_assert_eq(idm_batch_seal(b, &s[i], &why), IDM_OK, "%s", why.text);
  }
  static idm_audit_group_t grp;
  bool held;
  cr_assert_not(idm_audit_write_busy(log));
  /* lines 1 and 2 are queued (by other threads), line 0 is not yet: nothing is taken */
  idm_audit_enqueue(log, s[2].record, s[2].record_len, s[2].offset, 2);
  idm_audit_enqueue(log, s[1].record, s[1].record_len, s[1].offset, 1);
  cr_assert(idm_audit_write_busy(log));
  cr_assert_not(idm_audit_take(log, &grp, &held));
  cr_assert_not(held);
  /* line 0 comes: one group of 0, 1, 2 in file order */
  idm_audit_enqueue(log, s[0].record, s[0].record_len, s[0].offset, 7);
  cr_assert(idm_audit_take(log, &grp, &held));
  cr_assert_eq(grp.n, 3);
  cr_assert_eq(grp.off, s[0].offset);
  cr_assert_eq(grp.end, s[2].offset + s[2].record_len);
  cr_assert_eq(grp.owner[0], 7);
  cr_assert_eq(grp.owner[1], 1);
  cr_assert_eq(grp.owner[2], 2);
  cr_assert_eq(grp.iov[1].iov_base, (void *)s[1].record);
  /* line 3 is queued while the group is written: a second writer is refused */
  idm_audit_enqueue(log, s[3].record, s[3].record_len, s[3].offset, 3);
  cr_assert_not(idm_audit_take(log, &grp, &held));
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 0);
  ssize_t n = pwritev(idm_audit_fd(log), grp.iov, (int)grp.n, (off_t)grp.off);
  cr_assert_eq(n, (ssize_t)(grp.end - grp.off));
  idm_audit_written(log, grp.off, n);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 0); /* written, not yet synced */
  idm_audit_synced(log, grp.end, 0);
  idm_audit_put(log);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 3);
  /* the next writer takes line 3 */
  cr_assert(idm_audit_take(log, &grp, &held));
  cr_assert_eq(grp.n, 1);
  cr_assert_eq(grp.off, s[3].offset);
  n = pwritev(idm_audit_fd(log), grp.iov, (int)grp.n, (off_t)grp.off);
  cr_assert_eq(n, (ssize_t)s[3].record_len);
  idm_audit_written(log, grp.off, n);
  idm_audit_synced(log, grp.end, 0);
  idm_audit_put(log);
  cr_assert_not(idm_audit_write_busy(log));
  cr_assert_not(idm_audit_take(log, &grp, &held));
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 1);
  idm_batch_free(b);
  idm_audit_close(log);
  char reason[256];
  idm_err_t err;
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
}

Test(batch, busy_when_every_slot_awaits_its_write) {
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, NULL);
  idm_batch_opts_t o = {.key = ed, .items_max = 1, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t t[IDM_BATCH_INFLIGHT_MAX + 2];
  idm_batch_sealed_t s;
  for (int i = 0; i < IDM_BATCH_INFLIGHT_MAX; i++) {
    cr_assert_eq(add_tok(b, &t[i], i, IDM_PROFILE_BATCH, NULL), IDM_OK);
    cr_assert_eq(idm_batch_seal(b, &s, NULL), IDM_OK);
  }
  cr_assert_eq(add_tok(b, &t[IDM_BATCH_INFLIGHT_MAX], 99, IDM_PROFILE_BATCH, NULL), IDM_OK);
  cr_assert_eq(idm_batch_seal(b, &s, NULL), IDM_ERR_BATCH_BUSY);
  cr_assert_eq(add_tok(b, &t[IDM_BATCH_INFLIGHT_MAX + 1], 98, IDM_PROFILE_BATCH, NULL),
               IDM_ERR_BATCH_BUSY);
  idm_batch_free(b);
  idm_audit_close(log);
}

Test(batch, key_must_be_ed25519) {
  idm_batch_opts_t o = {.key = es};
  idm_batch_t *b;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_batch_new(&b, &o, &why), IDM_ERR_BATCH_KEY);
  o.key = NULL;
  cr_assert_eq(idm_batch_new(&b, &o, &why), IDM_ERR_BATCH_KEY);
}

Test(batch, engine_verifier_borrows_the_set_and_uses_the_arena) {
  idm_why_t why = {{0}};
  idm_jwks_t *set = jwks_of(&why);
  idm_verify_opts_t vo = {.issuer = ISS, .audience = "spiffe://corp/db"};
  idm_verifier_t *v = idm_verifier_new_set(set, &vo, &why);
  cr_assert_not_null(v, "%s", why.text);
  idm_batch_opts_t o = {.key = ed, .items_max = 4, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t t[2] = {0};
  cr_assert_eq(add_tok(b, &t[0], 0, IDM_PROFILE_BATCH, NULL), IDM_OK);
  cr_assert_eq(add_tok(b, &t[1], 1, IDM_PROFILE_JWT, es), IDM_OK);
  cr_assert_eq(idm_batch_seal_sync(b, NULL, NULL, NULL, &why), IDM_OK);
  idm_arena_t a;
  cr_assert_eq(idm_arena_init(&a, 256 * 1024), IDM_OK);
  for (int i = 0; i < 2; i++) {
    idm_arena_reset(&a);
    json_t *claims = NULL;
    idm_verified_t vd;
    cr_assert_eq(idm_verifier_check(v, &a, t[i].buf, t[i].len, T0 + 5, &vd, &claims, &why), IDM_OK,
                 "%d: %s", i, why.text);
    cr_assert_eq(vd.profile, i == 0 ? 1 : 0);
    cr_assert_str_eq(json_string_value(json_object_get(claims, "jti")), t[i].jti);
    cr_assert_gt(a.used, 0, "scratch came from the arena");
  }
  /* wrong audience: refused with the jwt profile's claim error */
  idm_verifier_t *v2 = idm_verifier_new_set(set, &(idm_verify_opts_t){.audience = "other"}, &why);
  idm_arena_reset(&a);
  cr_assert_eq(idm_verifier_check(v2, &a, t[0].buf, t[0].len, T0 + 5, NULL, NULL, &why),
               IDM_ERR_JWT_AUDIENCE, "%s", why.text);
  /* expired */
  idm_arena_reset(&a);
  cr_assert_eq(idm_verifier_check(v, &a, t[0].buf, t[0].len, T0 + 3600, NULL, NULL, &why),
               IDM_ERR_JWT_EXPIRED, "%s", why.text);
  idm_verifier_free(v2);
  idm_verifier_free(v);
  idm_jwks_free(set); /* the verifiers borrowed it */
  idm_arena_cleanup(&a);
  idm_batch_free(b);
}

Test(batch, fsync_policies_decide_when_a_batch_is_released) {
  /* batch: released only once fdatasync'ed */
  idm_audit_opts_t ob = {.fsync = IDM_AUDIT_FSYNC_BATCH};
  idm_audit_log_t *log = idm_audit_open(logpath, &ob, NULL);
  cr_assert_not_null(log);
  idm_batch_opts_t o = {.key = ed, .items_max = 2, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t t[2] = {0};
  idm_batch_sealed_t s;
  cr_assert_eq(add_tok(b, &t[0], 0, IDM_PROFILE_BATCH, NULL), IDM_OK);
  cr_assert_eq(idm_batch_seal(b, &s, NULL), IDM_OK);
  cr_assert_eq(pwrite(idm_audit_fd(log), s.record, s.record_len, (off_t)s.offset),
               (ssize_t)s.record_len);
  idm_audit_written(log, s.offset, (int64_t)s.record_len);
  cr_assert_eq(idm_audit_written_upto(log), s.offset + s.record_len);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 0, "written but not synced");
  idm_audit_synced(log, idm_audit_written_upto(log), 0);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 1);
  /* a failed fdatasync fails the log closed, with its reason */
  cr_assert_eq(add_tok(b, &t[1], 1, IDM_PROFILE_BATCH, NULL), IDM_OK);
  cr_assert_eq(idm_batch_seal(b, &s, NULL), IDM_OK);
  idm_audit_written(log, s.offset, (int64_t)s.record_len);
  idm_audit_synced(log, idm_audit_written_upto(log), -EIO);
  idm_why_t why = {{0}};
  cr_assert(idm_audit_failed(log, &why));
  cr_assert(strstr(why.text, "fdatasync") != NULL, "%s", why.text);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 1);
  cr_assert_eq(t[1].err, IDM_ERR_AUDIT_FAILED);
  idm_batch_free(b);
  idm_audit_close(log);
  unlink(logpath);

  /* interval: released once written; an fdatasync falls due after the interval, once */
  idm_audit_opts_t oi = {.fsync = IDM_AUDIT_FSYNC_INTERVAL, .fsync_interval_ms = 50};
  log = idm_audit_open(logpath, &oi, NULL);
  o.log = log;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  tok_t u = {0};
  cr_assert_eq(add_tok(b, &u, 2, IDM_PROFILE_BATCH, NULL), IDM_OK);
  cr_assert_eq(idm_batch_seal(b, &s, NULL), IDM_OK);
  idm_audit_written(log, s.offset, (int64_t)s.record_len);
  cr_assert_eq(idm_batch_complete(b, on_done, NULL), 1, "interval releases once written");
  uint64_t upto;
  int64_t now = idm_clock_mono_ns();
  cr_assert_not(idm_audit_fsync_due(log, now, &upto), "not before the interval");
  cr_assert(idm_audit_fsync_due(log, now + 60 * 1000000ll, &upto));
  cr_assert_eq(upto, s.offset + s.record_len);
  cr_assert_not(idm_audit_fsync_due(log, now + 120 * 1000000ll, &upto), "one in flight");
  idm_audit_synced(log, upto, 0);
  cr_assert_not(idm_audit_fsync_due(log, now + 10000 * 1000000ll, &upto), "nothing new written");
  cr_assert_null(idm_audit_open(logpath, &(idm_audit_opts_t){.fsync = IDM_AUDIT_FSYNC_INTERVAL}, &why));
  idm_batch_free(b);
  idm_audit_close(log);
}

/* ---- per-identity templates ------------------------------------------------------------ */

/* Identity variant v: fields of several lengths (so the fixed claims end at every offset
 * mod 3), escapes, empty scope, NULL trust or policy, target equal to aud, and one
 * identity too large for a template (the uncached path). */
typedef struct ident {
  char sub[1400], scope[40], aud[64];
  const char *trust, *policy, *target;
} ident_t;

static void ident_make(ident_t *d, int v) {
  memset(d, 0, sizeof *d);
  if (v == 7) {
    memset(d->sub, 'L', 1300); /* longer than a template's key: the uncached path */
  } else {
    snprintf(d->sub, sizeof d->sub, "system:serviceaccount:ns-%d:%s%.*s", v,
             v % 5 == 1 ? "q\"uote\\d\n" : "sa", v % 3, "xyz");
  }
  snprintf(d->scope, sizeof d->scope, "%s", v % 4 == 2 ? "" : v % 4 == 3 ? "db.read db.write" : "r");
  snprintf(d->aud, sizeof d->aud, "spiffe://corp/db-%d", v % 6);
  d->trust = v % 6 == 4 ? NULL : "k8s";
  d->policy = v % 6 == 5 ? NULL : "payments-api";
  d->target = v % 4 == 0 ? NULL : v % 4 == 1 ? d->aud : "payments-db";
}

/* Mints `rounds` credentials per identity, round-robin over `idents` identities (more
 * than the template table holds, so slots are evicted and rebuilt), and checks that each
 * token's signing input equals idm_jwt_signing_input's for the same claims (template hit,
 * miss and uncached path alike), that every token verifies, and that the log verifies. */
static void template_round(int idents, int rounds, bool with_log, int64_t iat_skew) {
  idm_audit_log_t *log = with_log ? idm_audit_open(logpath, NULL, NULL) : NULL;
  cr_assert(!with_log || log);
  idm_batch_opts_t o = {.key = ed, .items_max = 64, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_batch_new(&b, &o, &why), IDM_OK, "%s", why.text);
  static const char *const rules[] = {"payments-api", "r\"2"};
  const char *kid = idm_key_kid(ed);
  size_t n = (size_t)idents * (size_t)rounds;
  tok_t *t = calloc(n, sizeof *t);
  char (*want)[IDM_TOKEN_MAX] = calloc(n, IDM_TOKEN_MAX);
  size_t *want_len = calloc(n, sizeof *want_len);
  ident_t d;
  for (size_t i = 0; i < n; i++) {
    int v = (int)(i % (size_t)idents);
    ident_make(&d, v);
    snprintf(t[i].jti, sizeof t[i].jti, "node.%x.salt.%zx", v, i);
    /* identities v % 5 == 0 get a new iat each round (a new second: a template miss) */
    int64_t round = v % 5 == 0 ? (int64_t)(i / (size_t)idents) : 0;
    idm_claims_t c = {.iss = ISS, .sub = d.sub, .aud = d.aud,
                      .iat = T0 + iat_skew * (v % 2) + round,
                      .nbf = T0 + iat_skew * (v % 3 == 0) + round, .exp = T0 + 300 + round,
                      .jti = t[i].jti,
                      .scope = d.scope, .trust = d.trust, .policy = d.policy};
    bool jwt = v % 9 == 8;
    idm_batch_item_t it = {.allow = true, .profile = jwt ? IDM_PROFILE_JWT : IDM_PROFILE_BATCH,
                           .key = jwt ? es : NULL, .claims = &c, .target = d.target,
                           .rules = rules, .rules_n = (size_t)(v % 3), .out = t[i].buf,
                           .out_cap = sizeof t[i].buf, .out_len = &t[i].len, .cookie = &t[i]};
    cr_assert_eq(idm_jwt_signing_input(want[i], IDM_TOKEN_MAX, &want_len[i],
                                       jwt ? "ES256" : "EdDSA-MTB1", jwt ? idm_key_kid(es) : kid,
                                       &c),
                 IDM_OK);
    idm_err_t e = idm_batch_add(b, &it, &why);
    if (e == IDM_ERR_BATCH_FULL) {
      cr_assert_eq(idm_batch_seal_sync(b, on_done, NULL, NULL, &why), IDM_OK, "%s", why.text);
      e = idm_batch_add(b, &it, &why);
    }
    cr_assert_eq(e, IDM_OK, "%zu: %s", i, why.text);
  }
  cr_assert_eq(idm_batch_seal_sync(b, on_done, NULL, NULL, &why), IDM_OK, "%s", why.text);
  idm_batch_tmpl_stats_t st;
  idm_batch_template_stats(b, &st);
  /* every credential is a hit, a miss, or uncached without a try (identity 7's key is
   * too large for a template) */
  cr_assert_leq(st.hits + st.misses, n);
  cr_assert_geq(st.hits + st.misses + st.uncached, n);
  cr_assert_gt(st.misses, 0);
  cr_assert_gt(st.uncached, 0);
  cr_assert_gt(st.hits, 0);
  char reason[IDM_VERIFY_REASON_LEN];
  for (size_t i = 0; i < n; i++) {
    cr_assert_eq(t[i].done, 1);
    size_t si = (size_t)(strrchr(t[i].buf, '.') - t[i].buf);
    cr_assert_eq(si, want_len[i], "token %zu: signing input of %zu bytes, uncached %zu", i, si,
                 want_len[i]);
    cr_assert_eq(memcmp(t[i].buf, want[i], si), 0, "token %zu differs from the uncached path", i);
    idm_verified_t vd;
    cr_assert_eq(idm_verify_token(ver, t[i].buf, t[i].len, 0, &vd, NULL, 0, reason), 0,
                 "token %zu: %s", i, reason);
  }
  idm_batch_free(b);
  if (log) {
    idm_audit_close(log);
    idm_err_t err;
    cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
    cr_assert_eq(err, IDM_OK, "%s", reason);
  }
  free(t);
  free(want);
  free(want_len);
}

Test(batch, template_hits_misses_and_uncached_give_the_same_tokens) {
  template_round(10, 6, false, 0); /* hits after the first round */
  template_round(150, 3, false, 0); /* more identities than template slots: evictions */
}

Test(batch, template_audit_entries_verify) {
  template_round(12, 5, true, 0);
  unlink(logpath);
  template_round(150, 2, true, 7); /* iat and nbf differing from the line's time */
}

Test(batch, audit_v1_lines_are_refused_by_name) {
  write_log(1);
  size_t len;
  char *p = slurp(&len);
  cr_assert_eq(memcmp(p, "{\"v\":2,", 7), 0);
  p[5] = '1';
  spit(p, len);
  char reason[256];
  idm_err_t err;
  cr_assert_eq(verify_log(&err, reason), 1);
  cr_assert_eq(err, IDM_ERR_AUDIT_LINE);
  cr_assert(strstr(reason, "format v1") != NULL, "%s", reason);
  idm_why_t why = {{0}};
  cr_assert_null(idm_audit_open(logpath, NULL, &why));
  cr_assert(strstr(why.text, "format v1") != NULL, "%s", why.text);
  free(p);
}

/* ---- preallocation (server.audit_preallocate) ------------------------------------ */

/* Writes `batches` batches through a log opened with opts; returns the logical end. */
static uint64_t write_log_opts(int batches, const idm_audit_opts_t *opts, bool wait_zeroed) {
  idm_why_t why = {{0}};
  idm_audit_log_t *log = idm_audit_open(logpath, opts, &why);
  cr_assert_not_null(log, "%s", why.text);
  idm_batch_opts_t o = {.key = ed, .items_max = 4, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &o, NULL), IDM_OK);
  for (int k = 0; k < batches; k++) {
    tok_t t[2];
    for (int i = 0; i < 2; i++)
      cr_assert_eq(add_tok(b, &t[i], k * 10 + i, IDM_PROFILE_BATCH, NULL), IDM_OK);
    cr_assert_eq(idm_batch_seal_sync(b, NULL, NULL, NULL, &why), IDM_OK, "%s", why.text);
  }
  uint64_t end = idm_audit_written_upto(log);
  if (wait_zeroed) { /* the zeroer catches up with end + preallocate */
    for (int i = 0; i < 5000 && idm_audit_zeroed_upto(log) < end + opts->preallocate; i++)
      usleep(1000);
    cr_assert_geq(idm_audit_zeroed_upto(log), end + opts->preallocate);
    struct stat st;
    cr_assert_eq(fstat(idm_audit_fd(log), &st), 0);
    cr_assert_geq((uint64_t)st.st_size, end + opts->preallocate);
    /* the size runs ahead; beyond the logical end only zeros; verify accepts it */
    size_t len;
    char *p = slurp(&len);
    for (size_t i = end; i < len; i++)
      cr_assert_eq(p[i], 0, "byte %zu of the preallocated tail is not zero", i);
    free(p);
    char reason[256];
    idm_err_t err;
    cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
  }
  idm_batch_free(b);
  idm_audit_close(log);
  return end;
}

Test(batch, preallocated_log_runs_ahead_with_zeros_and_close_truncates) {
  idm_audit_opts_t o = {.fsync = IDM_AUDIT_FSYNC_BATCH, .preallocate = 64 * 1024,
                        .zero_chunk = 4096};
  uint64_t end = write_log_opts(5, &o, true);
  struct stat st;
  cr_assert_eq(stat(logpath, &st), 0);
  cr_assert_eq((uint64_t)st.st_size, end, "clean close leaves %lld bytes, logical end %llu",
               (long long)st.st_size, (unsigned long long)end);
  char reason[256];
  idm_err_t err;
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
  /* reopened with preallocation: the chain continues, and again after a clean close */
  uint64_t end2 = write_log_opts(3, &o, true);
  cr_assert_gt(end2, end);
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
}

/* What kill -9 leaves: the lines, then zeros (and maybe a torn line before them). */
Test(batch, zero_tail_is_recovered_and_verified) {
  write_log(3);
  size_t len;
  char *orig = slurp(&len);
  char *p = calloc(1, len + 100000);
  memcpy(p, orig, len);
  char reason[256];
  idm_err_t err;
  /* lines + zeros: verify accepts, open cuts the zeros and continues the chain */
  spit(p, len + 100000);
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
  idm_why_t why = {{0}};
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, &why);
  cr_assert_not_null(log, "%s", why.text);
  cr_assert_eq(idm_audit_recovered_bytes(log), 100000);
  idm_audit_close(log);
  /* a torn line followed by zeros: verify names line 4 as torn; open cuts both */
  memcpy(p + len, orig, 700);
  spit(p, len + 100000);
  cr_assert_eq(verify_log(&err, reason), 4);
  cr_assert_eq(err, IDM_ERR_AUDIT_TORN, "%s", reason);
  cr_assert(strstr(reason, "zero bytes") != NULL, "%s", reason);
  log = idm_audit_open(logpath, NULL, &why);
  cr_assert_not_null(log, "%s", why.text);
  idm_audit_close(log);
  write_log(1);
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason);
  free(p);
  free(orig);
}

Test(batch, non_zero_bytes_after_zeros_are_refused_at_their_offset) {
  write_log(3);
  size_t len;
  char *orig = slurp(&len);
  char *p = calloc(1, len + 8192 + 4096);
  memcpy(p, orig, len);
  char reason[256];
  idm_err_t err;
  idm_why_t why = {{0}};
  /* garbage after zeros, not at a line or page start: both refuse, naming the offset */
  size_t at = len + 5000;
  memcpy(p + at, "garbage", 7);
  spit(p, len + 8192);
  cr_assert_eq(verify_log(&err, reason), 4);
  cr_assert_eq(err, IDM_ERR_AUDIT_LINE);
  char want[64];
  snprintf(want, sizeof want, "offset %zu", at);
  cr_assert(strstr(reason, want) != NULL, "%s", reason);
  cr_assert_null(idm_audit_open(logpath, NULL, &why));
  cr_assert(strstr(why.text, want) != NULL, "%s", why.text);
  cr_assert(strstr(why.text, "(line 4)") != NULL, "%s", why.text);
  /* a line's start after zeros (another thread's line around an unwritten one) is what a
   * crash leaves: open cuts it; verify still refuses anything but zeros after the last
   * line */
  memset(p + len, 0, 8192);
  memcpy(p + at, orig, line_off(orig, 2));
  spit(p, len + 8192);
  idm_audit_log_t *log = idm_audit_open(logpath, NULL, &why);
  cr_assert_not_null(log, "%s", why.text);
  idm_audit_close(log);
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason); /* cut to the 3 lines */
  spit(p, len + 8192);
  cr_assert_eq(verify_log(&err, reason), 4);
  /* a damaged middle: zeros over line 2 and lines 3.. after them. A crash leaves at most
   * IDM_AUDIT_TORN_LINES_MAX lines after a hole; more is refused. */
  size_t l2 = line_off(orig, 2), l3 = line_off(orig, 3);
  size_t n = IDM_AUDIT_TORN_LINES_MAX + 1, ll = len - l3;
  char *big = calloc(1, l3 + n * ll);
  memcpy(big, orig, l3);
  memset(big + l2, 0, l3 - l2);
  for (size_t i = 0; i < n; i++)
    memcpy(big + l3 + i * ll, orig + l3, ll);
  spit(big, l3 + n * ll);
  cr_assert_null(idm_audit_open(logpath, NULL, &why));
  cr_assert(strstr(why.text, "more complete lines") != NULL, "%s", why.text);
  cr_assert(strstr(why.text, "(line ") != NULL, "%s", why.text);
  cr_assert_eq(verify_log(&err, reason), 2, "%s", reason); /* torn at line 2 */
  free(big);
  free(p);
  free(orig);
}

/* The zeroer never overwrites a reserved line: many threads reserve and write lines
 * while the zeroer, with a tiny lead, claims ranges right at the log's end.
 * Every line must read back intact. (Without idm_audit_may_write's hold, zeros land on
 * lines reserved during a claim.) */
#define ZT_THREADS 8
#define ZT_LINES 1500
typedef struct zt {
  idm_audit_log_t *log;
  int id;
  uint64_t off[ZT_LINES];
  size_t len[ZT_LINES];
} zt_t;

static void *zt_main(void *arg) {
  zt_t *z = arg;
  char buf[600];
  SHA256_CTX c;
  SHA256_Init(&c);
  for (int i = 0; i < ZT_LINES; i++) {
    /* like a server thread (IDM_BATCH_INFLIGHT_MAX): a few lines unreleased at a time */
    while (i >= 4 && idm_audit_written_upto(z->log) < z->off[i - 4] + z->len[i - 4])
      sched_yield();
    size_t n = 40 + (size_t)((i * 7919 + z->id * 104729) % 500);
    memset(buf, 'a' + z->id, n);
    buf[n - 1] = '\n';
    char prev[43];
    idm_audit_chain(z->log, &c, prev, n, &z->off[i]);
    z->len[i] = n;
    idm_why_t why = {{0}};
    if (idm_audit_write_sync(z->log, buf, n, z->off[i], &why) != IDM_OK) {
      fprintf(stderr, "thread %d line %d: %s\n", z->id, i, why.text);
      return (void *)1;
    }
  }
  return NULL;
}

Test(batch, zeroing_never_overwrites_a_reserved_line) {
  /* the lead is less than a line or two, and a claim's zeros take a while to write */
  idm_audit_opts_t o = {.fsync = IDM_AUDIT_FSYNC_NONE, .preallocate = 1024,
                        .zero_chunk = 64 * 1024};
  idm_why_t why = {{0}};
  idm_audit_log_t *log = idm_audit_open(logpath, &o, &why);
  cr_assert_not_null(log, "%s", why.text);
  static zt_t z[ZT_THREADS];
  pthread_t th[ZT_THREADS];
  for (int i = 0; i < ZT_THREADS; i++) {
    z[i] = (zt_t){.log = log, .id = i};
    cr_assert_eq(pthread_create(&th[i], NULL, zt_main, &z[i]), 0);
  }
  for (int i = 0; i < ZT_THREADS; i++) {
    void *r;
    pthread_join(th[i], &r);
    cr_assert_null(r, "thread %d failed to write", i);
  }
  cr_assert_not(idm_audit_failed(log, &why), "%s", why.text);
  uint64_t end = idm_audit_written_upto(log);
  /* read back while the zeroer may still run, and again after close */
  for (int pass = 0; pass < 2; pass++) {
    size_t len;
    char *p = slurp(&len);
    cr_assert_geq(len, end);
    uint64_t total = 0;
    for (int t = 0; t < ZT_THREADS; t++)
      for (int i = 0; i < ZT_LINES; i++) {
        total += z[t].len[i];
        for (size_t k = 0; k + 1 < z[t].len[i]; k++)
          cr_assert_eq(p[z[t].off[i] + k], 'a' + t,
                       "pass %d: line %d of thread %d at offset %llu overwritten at +%zu",
                       pass, i, t, (unsigned long long)z[t].off[i], k);
      }
    cr_assert_eq(total, end);
    free(p);
    if (pass == 0)
      idm_audit_close(log);
  }
}

Test(batch, failed_preallocation_stops_issuance) {
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit rl = {.rlim_cur = 8192, .rlim_max = RLIM_INFINITY};
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
  idm_audit_opts_t o = {.fsync = IDM_AUDIT_FSYNC_BATCH, .preallocate = 64 * 1024,
                        .zero_chunk = 4096};
  idm_why_t why = {{0}};
  idm_audit_log_t *log = idm_audit_open(logpath, &o, &why);
  cr_assert_not_null(log, "%s", why.text);
  for (int i = 0; i < 5000 && !idm_audit_failed(log, NULL); i++)
    usleep(1000);
  cr_assert(idm_audit_failed(log, &why));
  cr_assert(strstr(why.text, "preallocation") != NULL, "%s", why.text);
  idm_batch_opts_t bo = {.key = ed, .items_max = 4, .log = log, .iss = ISS, .clk = &clk};
  idm_batch_t *b;
  cr_assert_eq(idm_batch_new(&b, &bo, NULL), IDM_OK);
  tok_t t = {0};
  cr_assert_eq(add_tok(b, &t, 1, IDM_PROFILE_BATCH, NULL), IDM_ERR_AUDIT_FAILED);
  idm_batch_free(b);
  idm_audit_close(log);
  rl.rlim_cur = RLIM_INFINITY;
  setrlimit(RLIMIT_FSIZE, &rl);
  char reason[256];
  idm_err_t err;
  cr_assert_eq(verify_log(&err, reason), 0, "%s", reason); /* empty after close */
}
