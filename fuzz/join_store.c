/* Fuzz target: join tokens (engine/attest/join.c) — the token document a device sends
 * (POST /v1/token with urn:idmint:token-type:join-token) and the token store file the
 * server and `idmint join-token new` read and rewrite.
 *
 * Input: byte 0 is a control byte (bit 0: also mint a new token into the store with
 * idm_join_token_new); the rest is the store file, optionally followed by the line "--\n"
 * and a join-token document. Without a document the harness presents its fixed token
 * FIXED (whose SHA-256 seeds can put in the store). The clock is fixed.
 *
 * Properties: no crash, leak or undefined behaviour on any store or document; every
 * refusal has a reason; a token is accepted at most once (a second presentation is
 * refused), and after an acceptance the rewritten store parses again; a token minted into
 * a store the harness could read is accepted once, with the name it was minted for. */
#define _GNU_SOURCE
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "core/file.h"
#include "core/limits.h"
#include "fuzz_files.h"

#define NOW 1800000000LL
#define FIXED "idmjt1.edge-7.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

static char dir[128], store[192];
static idm_attest_t *att;
static pol_trust_t trust;
static idm_arena_t arena;
static idm_clock_t clk;

static void setup(void) {
  idm_json_init();
  idm_clock_set_s(&clk, NOW);
  fz_tmpdir(dir, sizeof dir, "join");
  snprintf(store, sizeof store, "%s/join.json", dir);
  trust.name = "edge";
  trust.kind = POL_KIND_JOIN_TOKEN;
  trust.store = store;
  const pol_trust_t *t = &trust;
  idm_why_t why = {{0}};
  att = idm_attest_new_from_trusts(&t, 1, &why);
  if (!att || idm_arena_init(&arena, 1 << 20)) {
    fprintf(stderr, "join_store: %s\n", why.text);
    abort();
  }
}

static idm_err_t verify(const char *doc, size_t len, idm_identity_t *id, idm_why_t *why) {
  idm_arena_reset(&arena);
  memset(id, 0, sizeof *id);
  memset(why, 0, sizeof *why);
  idm_err_t e = idm_attest_verify(att, NULL, &arena, IDM_DOC_JOIN_TOKEN, NULL, doc, len, &clk,
                                  id, why);
  if (e && !why->text[0])
    abort(); /* a refusal without a reason */
  return e;
}

/* The store must parse again after we changed it. */
static void check_store(void) {
  char *buf = NULL;
  size_t n = 0;
  if (idm_file_read(store, IDM_JOIN_STORE_MAX_BYTES, &buf, &n, NULL))
    abort();
  json_error_t je;
  json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
  free(buf);
  if (!json_is_array(json_object_get(o, "tokens")))
    abort();
  json_decref(o);
}

static void write_seeds(const char *out) {
  uint8_t d[32];
  SHA256((const uint8_t *)FIXED, strlen(FIXED), d);
  char h[65];
  for (int i = 0; i < 32; i++)
    snprintf(h + 2 * i, 3, "%02x", d[i]);
  static const struct {
    const char *name;
    int ctl;
    long long expires, used;
    const char *tail;
  } s[] = {{"valid", 0, NOW + 60, 0, ""},
           {"valid-mint", 1, NOW + 60, 0, ""},
           {"used", 0, NOW + 60, NOW - 5, ""},
           {"expired", 0, NOW - 5, 0, ""},
           {"expired-long-ago", 1, NOW - 30 * 86400, 0, ""},
           {"expires-max", 1, 9223372036854775807LL, 0, ""},
           {"expires-min", 0, -9223372036854775807LL - 1, 0, ""},
           {"used-min", 0, NOW + 60, -9223372036854775807LL - 1, ""},
           {"used-max", 0, NOW + 60, 9223372036854775807LL, ""},
           {"other-doc", 0, NOW + 60, 0, "\n--\nidmjt1.edge-7.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9"},
           {"bad-name-doc", 0, NOW + 60, 0, "\n--\nidmjt1.ed/e-7.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    char buf[1024], path[512];
    int n = snprintf(buf, sizeof buf,
                     "%c{\"version\":1,\"tokens\":[{\"name\":\"edge-7\",\"sha256\":\"%s\","
                     "\"created\":%lld,\"expires\":%lld,\"used\":%lld}]}%s",
                     s[i].ctl, h, NOW - 100, s[i].expires, s[i].used, s[i].tail);
    snprintf(path, sizeof path, "%s/%s", out, s[i].name);
    fz_write(path, buf, (size_t)n, 0644);
  }
  static const char *const raw[] = {"\x01", "\x00{}", "\x01{\"tokens\":[1]}",
                                    "\x00{\"tokens\":[{\"name\":\"a\",\"sha256\":\"x\",\"expires\":1,\"used\":0}]}",
                                    "\x01{\"version\":1,\"tokens\":[]}\n--\nidmjt1.x.y"};
  for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/raw-%zu", out, i);
    fz_write(path, raw[i], 1 + strlen(raw[i] + 1), 0644);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!att) {
    setup();
    const char *out = getenv("IDM_FUZZ_WRITE_SEEDS");
    if (out)
      write_seeds(out);
  }
  if (size < 1 || size > 256 * 1024)
    return 0;
  uint8_t ctl = data[0];
  data++, size--;
  const uint8_t *sep = memmem(data, size, "\n--\n", 4);
  size_t slen = sep ? (size_t)(sep - data) : size;
  /* An empty store part means "no store file yet". */
  unlink(store);
  if (slen)
    fz_write(store, data, slen, 0600);
  const char *doc = FIXED;
  size_t dlen = strlen(FIXED);
  char *docbuf = NULL;
  if (sep) {
    dlen = size - slen - 4;
    docbuf = malloc(dlen ? dlen : 1);
    memcpy(docbuf, sep + 4, dlen);
    doc = docbuf;
  }
  idm_identity_t id;
  idm_why_t why;
  if (verify(doc, dlen, &id, &why) == IDM_OK) {
    check_store();
    if (verify(doc, dlen, &id, &why) != IDM_ERR_JOIN_USED)
      abort(); /* a join token accepted twice */
  }
  if (ctl & 1) {
    char tok[IDM_JOIN_TOKEN_MAX];
    memset(&why, 0, sizeof why);
    idm_err_t e = idm_join_token_new(&trust, "dev-1", 3600, &clk, tok, sizeof tok, &why);
    if (e && !why.text[0])
      abort();
    if (e == IDM_OK) {
      check_store();
      const pol_client_t *c = &id.client;
      if (verify(tok, strlen(tok), &id, &why) != IDM_OK || c->attr[POL_A_TOKEN_NAME].len != 5 ||
          memcmp(c->attr[POL_A_TOKEN_NAME].ptr, "dev-1", 5) || id.exp_s != NOW + 3600) {
        fprintf(stderr, "join_store: minted token refused: %s\n", why.text);
        abort();
      }
      if (verify(tok, strlen(tok), &id, &why) != IDM_ERR_JOIN_USED)
        abort();
    }
  }
  free(docbuf);
  return 0;
}
