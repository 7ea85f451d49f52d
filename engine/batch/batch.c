/* The per-thread batcher.
 *
 * Work is split so that the per-credential part is as small as possible and everything
 * else happens once per batch:
 *   add   (per credential): signing input straight into the caller's output buffer and
 *                           the audit entry appended to the slot's line, mostly copied
 *                           from the identity's template (below).
 *   seal  (per batch):      every leaf (eight at a time, see sha256mb.h), the tree, one Ed25519 signature over the batch
 *                           message, then per credential only its path, proof encoding and
 *                           base64url (or, jwt profile, its own signature); the line's head,
 *                           one SHA-256 pass over the line and the chain step (audit.h).
 *
 * Templates. All of a credential but its jti is the same for every credential of one
 * identity and target issued within one second (iat, nbf, exp are whole seconds): the
 * header, the claims before jti (see idm_jwt_claims_fixed), and the audit entry but its
 * jti. A small two-way table per batcher (TMPL_SETS x 2, reserved at creation) keeps, per
 * such identity: base64url of the header and of the fixed claims up to their last whole
 * 3-byte group (base64 of a concatenation split at a 3-byte boundary is the concatenation
 * of the base64s), the 0-2 bytes left over, the SHA-256 state after the whole blocks of
 * 0x00 and that prefix, and the escaped constant part of the audit entry. A credential then
 * costs a copy of the prefix, base64url of ~35 bytes (the left-over bytes and the jti) and
 * one or two SHA-256 blocks for its leaf instead of eight; an identity misses once per
 * second. A hit compares every input field in full (the hash only picks the set); a miss
 * rebuilds the older way of its set (the prefix state is made only at the template's second
 * use: until then, and for inputs too large for a slot, which take the uncached path
 * idm_jwt_signing_input, the whole leaf is hashed at seal with the others). Both paths
 * yield the same bytes (tests/batch checks it).
 *
 * Slots form a ring: the gathering slot follows the sealed ones still waiting for their
 * audit write, oldest first, so completions come out in seal order.
 *
 *   slots: [ sealed (head) | sealed | ... | gathering ] [ free ... ]
 *
 * Each slot's line buffer is laid out so that the line is contiguous once sealed:
 * entries are written from a fixed offset as they arrive, and the head, known only at
 * seal, is written right-aligned just before them.
 *
 *   rec: [ unused | {"v":2,...,"entries":[ | e0,e1,... | ],"prev":"P"}\n ]
 *                 ^ line                   ^ rec + IDM_AUDIT_HEAD_MAX_BYTES */
#include "batch/batch.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/b64url.h"
#include "core/jsonw.h"
#include "core/limits.h"

#define SLOTS (IDM_BATCH_INFLIGHT_MAX + 1)
/* Line room per entry beyond which a batch seals early (typical entries are 400-700
 * bytes; a single entry may use up to IDM_AUDIT_ENTRY_MAX_BYTES). */
#define ENTRY_AVG_BYTES 1024
#define LINE_TAIL_MAX 64
/* The head holds ~400 bytes of fixed fields plus the escaped issuer. */
_Static_assert(6 * IDM_BATCH_ISS_MAX + 400 <= IDM_AUDIT_HEAD_MAX_BYTES, "line head fits the issuer");

typedef struct bitem {
  char *out;
  size_t cap;
  size_t *out_len;
  size_t si_len;            /* signing input bytes already in out */
  void *cookie;
  const idm_key_t *key;     /* jwt profile */
  uint32_t leaf;            /* leaf index (allow) */
  idm_leaf_mid_t mid;       /* allow: SHA-256 state its leaf is finished from at seal */
  bool allow;
  uint8_t profile;
} bitem_t;

typedef struct slot {
  bitem_t *items;
  size_t n, allows;
  idm_hash_t *nodes;        /* leaves, then the tree's upper levels */
  char *rec;                /* line buffer, rec_cap bytes */
  size_t ent_len;           /* entry bytes at rec + IDM_AUDIT_HEAD_MAX_BYTES */
  const char *line;
  size_t line_len;
  uint64_t seq, end;        /* end: file offset after the line */
  int64_t time_s;           /* batch issue time, taken at the slot's first add */
  idm_err_t err;            /* sealed with an error: complete reports it */
} slot_t;

/* Per-identity templates (see the top of the file): what one (profile key, claims but the
 * jti, target, rules, line time) produces the same way every time, computed once. */
#define TMPL_SETS 64      /* two ways each: 128 templates, ~330 KB per batcher */
#define TMPL_KEY_MAX 512  /* the raw fields the template was built from */
#define KEY_HASHED 128    /* leading key bytes that pick a template's set */
#define TMPL_SI_MAX 1024  /* b64url(header) "." b64url(claims_fixed up to a 3-byte group) */
#define TMPL_ENT_MAX 1024 /* the escaped constant part of the allow entry */
typedef struct tmpl {
  uint64_t hash;            /* XXH3 of key (index only: a hit compares key in full) */
  uint16_t key_len;         /* 0: empty slot */
  uint16_t si_len, ent_len;
  uint8_t rem_len;
  char rem[2];              /* claims_fixed bytes after its last whole 3-byte group */
  idm_leaf_mid_t mid;       /* SHA-256 state after the whole blocks of 0x00 ‖ si, made at
                               the template's second use (mid_ready) */
  bool mid_ready;
  char key[TMPL_KEY_MAX];
  char si[TMPL_SI_MAX];
  char ent[TMPL_ENT_MAX];
} tmpl_t;

struct idm_batch {
  idm_batch_opts_t o;
  char kid[IDM_KID_LEN + 1];
  size_t kid_len;
  size_t rec_cap;
  size_t proof_b64_max;     /* "." + base64url(longest proof for items_max) */
  slot_t slots[SLOTS];
  size_t head, count;       /* sealed slots: slots[head .. head + count) mod SLOTS */
  uint64_t local_seq;       /* batch sequence without a log */
  tmpl_t *tmpl;             /* TMPL_SETS x 2, set picked by key hash */
  uint8_t *tmpl_mru;        /* per set: the way used last */
  uint64_t tmpl_hits, tmpl_misses, tmpl_uncached;
};

static slot_t *gather(idm_batch_t *b) { return &b->slots[(b->head + b->count) % SLOTS]; }

static idm_err_t check_key(const idm_key_t *k, idm_why_t *why) {
  if (!k || idm_key_alg(k) != IDM_KEY_EDDSA)
    return idm_fail(why, IDM_ERR_BATCH_KEY, "the batch root signing key must be an Ed25519 (EdDSA) key");
  return IDM_OK;
}

idm_err_t idm_batch_set_key(idm_batch_t *b, const idm_key_t *key, idm_why_t *why) {
  idm_err_t e = check_key(key, why);
  if (e)
    return e;
  b->o.key = key;
  snprintf(b->kid, sizeof b->kid, "%s", idm_key_kid(key));
  b->kid_len = strlen(b->kid);
  return IDM_OK;
}

idm_err_t idm_batch_new(idm_batch_t **out, const idm_batch_opts_t *opts, idm_why_t *why) {
  *out = NULL;
  idm_err_t e = check_key(opts->key, why);
  if (e)
    return e;
  size_t max = opts->items_max ? opts->items_max : IDM_BATCH_ITEMS_DEFAULT;
  if (max > IDM_BATCH_ITEMS_MAX)
    return idm_fail(why, IDM_ERR_INVALID_ARG, "batch size %zu exceeds the limit %d", max,
                    IDM_BATCH_ITEMS_MAX);
  if (opts->log && !opts->iss)
    return idm_fail(why, IDM_ERR_INVALID_ARG, "a batcher with an audit log needs the issuer");
  if (opts->iss && strlen(opts->iss) > IDM_BATCH_ISS_MAX)
    return idm_fail(why, IDM_ERR_INVALID_ARG, "issuer longer than %d bytes", IDM_BATCH_ISS_MAX);
  idm_batch_t *b = calloc(1, sizeof *b);
  if (!b)
    return idm_fail(why, IDM_ERR_NOMEM, "out of memory for the batcher");
  b->o = *opts;
  b->o.items_max = max;
  idm_batch_set_key(b, opts->key, why);
  size_t path_max = idm_merkle_path_len(0, max); /* leaf 0 has the longest path */
  b->proof_b64_max = 1 + idm_b64url_encoded_len(IDM_BTOKEN_PROOF_FIXED + path_max * IDM_HASH_LEN);
  b->tmpl = calloc(2 * TMPL_SETS, sizeof *b->tmpl);
  b->tmpl_mru = calloc(TMPL_SETS, 1);
  if (!b->tmpl || !b->tmpl_mru) {
    idm_batch_free(b);
    return idm_fail(why, IDM_ERR_NOMEM, "out of memory for the batcher");
  }
  b->rec_cap = IDM_AUDIT_HEAD_MAX_BYTES + max * ENTRY_AVG_BYTES + IDM_AUDIT_ENTRY_MAX_BYTES +
               LINE_TAIL_MAX;
  for (size_t i = 0; i < SLOTS; i++) {
    slot_t *s = &b->slots[i];
    s->items = calloc(max, sizeof *s->items);
    s->nodes = calloc(idm_merkle_tree_nodes(max), sizeof *s->nodes);
    s->rec = opts->log ? malloc(b->rec_cap) : NULL;
    if (!s->items || !s->nodes || (opts->log && !s->rec)) {
      idm_batch_free(b);
      return idm_fail(why, IDM_ERR_NOMEM, "out of memory for the batcher");
    }
  }
  *out = b;
  return IDM_OK;
}

void idm_batch_free(idm_batch_t *b) {
  if (!b)
    return;
  for (size_t i = 0; i < SLOTS; i++) {
    free(b->slots[i].items);
    free(b->slots[i].nodes);
    free(b->slots[i].rec);
  }
  free(b->tmpl);
  free(b->tmpl_mru);
  free(b);
}

bool idm_batch_full(const idm_batch_t *b) {
  return b->slots[(b->head + b->count) % SLOTS].n >= b->o.items_max;
}
bool idm_batch_pending(const idm_batch_t *b) {
  return b->slots[(b->head + b->count) % SLOTS].n > 0;
}
size_t idm_batch_inflight(const idm_batch_t *b) { return b->count; }

void idm_batch_template_stats(const idm_batch_t *b, idm_batch_tmpl_stats_t *out) {
  out->hits = b->tmpl_hits;
  out->misses = b->tmpl_misses;
  out->uncached = b->tmpl_uncached;
}

/* Audit entries (docs/TOKENS.md "Audit log", line format v2). An allow entry is a
 * constant part, the same for every credential of one identity, target and rules (so a
 * template keeps it ready-escaped), then the varying part:
 *   {"d":"allow"[,"alg":A,"kid":K],"sub":S[,"trust":T],"target":NAME[,"aud":AUD],
 *    "scope":SC[,"policy":P],"rules":[..][,"iat":I][,"nbf":F],"ttl":X-I        ,"jti":J}
 * alg/kid only for jwt-profile credentials (a batch-profile one is EdDSA-MTB1 under the
 * line's kid); aud only when it differs from target; iat only when it differs from the
 * line's time, nbf only when it differs from iat; exp is iat + ttl. The leaf and its index are not written: the verifier
 * rebuilds each credential's signing input from these fields anyway. */

static void ew_rules(idm_jcat_t *w, const idm_batch_item_t *it) {
  IDM_JCAT_LIT(w, ",\"rules\":[");
  for (size_t i = 0; i < it->rules_n; i++) {
    if (i)
      IDM_JCAT_LIT(w, ",");
    idm_jcat_str(w, it->rules[i], idm_claims_strlen(it->rules[i], 0));
  }
  IDM_JCAT_LIT(w, "]");
}

static const char *item_target(const idm_batch_item_t *it) {
  return it->target ? it->target : it->claims ? it->claims->aud : NULL;
}

/* The times of an allow entry (constant within a second for one identity). */
static void entry_times(idm_jcat_t *w, const idm_claims_t *c, int64_t line_time) {
  if (c->iat != line_time) {
    IDM_JCAT_LIT(w, ",\"iat\":");
    idm_jcat_int(w, c->iat);
  }
  if (c->nbf != c->iat) {
    IDM_JCAT_LIT(w, ",\"nbf\":");
    idm_jcat_int(w, c->nbf);
  }
  IDM_JCAT_LIT(w, ",\"ttl\":");
  idm_jcat_int(w, (int64_t)((uint64_t)c->exp - (uint64_t)c->iat));
}

/* The constant part of an allow entry (no leading comma, no closing brace). */
static void entry_fixed(idm_jcat_t *w, const idm_batch_item_t *it, bool batch_profile,
                        const char *alg, const char *kid, int64_t line_time) {
  const idm_claims_t *c = it->claims;
  IDM_JCAT_LIT(w, "{\"d\":\"allow\"");
  if (!batch_profile) {
    IDM_JCAT_LIT(w, ",\"alg\":");
    idm_jcat_str(w, alg, idm_claims_strlen(alg, 0));
    IDM_JCAT_LIT(w, ",\"kid\":");
    idm_jcat_str(w, kid, idm_claims_strlen(kid, 0));
  }
  IDM_JCAT_LIT(w, ",\"sub\":");
  idm_jcat_str(w, c->sub, idm_claims_strlen(c->sub, c->sub_len));
  if (c->trust) {
    IDM_JCAT_LIT(w, ",\"trust\":");
    idm_jcat_str(w, c->trust, strlen(c->trust));
  }
  IDM_JCAT_LIT(w, ",\"target\":");
  const char *tg = item_target(it);
  size_t tl = idm_claims_strlen(tg, 0), al = idm_claims_strlen(c->aud, 0);
  idm_jcat_str(w, tg, tl);
  if (tl != al || memcmp(tg ? tg : "", c->aud ? c->aud : "", al)) {
    IDM_JCAT_LIT(w, ",\"aud\":");
    idm_jcat_str(w, c->aud, al);
  }
  IDM_JCAT_LIT(w, ",\"scope\":");
  idm_jcat_str(w, c->scope, idm_claims_strlen(c->scope, c->scope_len));
  if (c->policy) {
    IDM_JCAT_LIT(w, ",\"policy\":");
    idm_jcat_str(w, c->policy, strlen(c->policy));
  }
  ew_rules(w, it);
  entry_times(w, c, line_time);
}

/* The varying part of an allow entry, through its closing brace. */
static void entry_varying(idm_jcat_t *w, const idm_claims_t *c) {
  IDM_JCAT_LIT(w, ",\"jti\":");
  idm_jcat_str(w, c->jti, idm_claims_strlen(c->jti, 0));
  IDM_JCAT_LIT(w, "}");
}

/* Appends the item's audit entry to the slot's line (allow: from the template t when
 * there is one). IDM_ERR_BATCH_FULL when the line has no room left for it,
 * IDM_ERR_AUDIT_RECORD when it could never fit. */
static idm_err_t entry_append(idm_batch_t *b, slot_t *s, const idm_batch_item_t *it,
                              const tmpl_t *t, const char *alg, const char *kid,
                              idm_why_t *why) {
  char *base = s->rec + IDM_AUDIT_HEAD_MAX_BYTES + s->ent_len;
  size_t room = b->rec_cap - IDM_AUDIT_HEAD_MAX_BYTES - LINE_TAIL_MAX - s->ent_len;
  size_t cap = room < IDM_AUDIT_ENTRY_MAX_BYTES + 1 ? room : IDM_AUDIT_ENTRY_MAX_BYTES + 1;
  idm_jcat_t w;
  idm_jcat_init(&w, base, cap);
  if (s->n > 0)
    IDM_JCAT_LIT(&w, ",");
  const idm_claims_t *c = it->claims;
  if (it->allow) {
    if (t)
      idm_jcat_raw(&w, t->ent, t->ent_len);
    else
      entry_fixed(&w, it, it->profile == IDM_PROFILE_BATCH, alg, kid, s->time_s);
    entry_varying(&w, c);
  } else {
    IDM_JCAT_LIT(&w, "{\"d\":\"deny\",\"sub\":");
    idm_jcat_str(&w, c ? c->sub : NULL, c ? idm_claims_strlen(c->sub, c->sub_len) : 0);
    IDM_JCAT_LIT(&w, ",\"trust\":");
    idm_jcat_str(&w, c ? c->trust : NULL, c ? idm_claims_strlen(c->trust, 0) : 0);
    IDM_JCAT_LIT(&w, ",\"target\":");
    const char *tg = item_target(it);
    idm_jcat_str(&w, tg, idm_claims_strlen(tg, 0));
    IDM_JCAT_LIT(&w, ",\"scope\":");
    idm_jcat_str(&w, c ? c->scope : NULL, c ? idm_claims_strlen(c->scope, c->scope_len) : 0);
    ew_rules(&w, it);
    IDM_JCAT_LIT(&w, ",\"reason\":");
    const char *r = it->reason ? it->reason : "denied";
    idm_jcat_str(&w, r, strlen(r));
    IDM_JCAT_LIT(&w, "}");
  }
  size_t len = (size_t)(w.p - base);
  if (w.over || len > IDM_AUDIT_ENTRY_MAX_BYTES + (s->n > 0)) {
    if (room >= IDM_AUDIT_ENTRY_MAX_BYTES + 1 || s->n == 0)
      return idm_fail(why, IDM_ERR_AUDIT_RECORD, "audit entry exceeds %d bytes",
                      IDM_AUDIT_ENTRY_MAX_BYTES);
    return IDM_ERR_BATCH_FULL;
  }
  s->ent_len += len;
  return IDM_OK;
}

/* ---- templates ------------------------------------------------------------------------
 * The key is every input a template depends on, each as a 16-bit length (0xffff: NULL)
 * and its bytes. Returns its length, 0 when it exceeds TMPL_KEY_MAX (not cached). */
typedef struct kw {
  char *p, *end;
  bool over;
} kw_t;

static void key_put(kw_t *k, const char *s, size_t n) {
  if (k->over || n > 0xfffe || n + 2 > (size_t)(k->end - k->p)) {
    k->over = true;
    return;
  }
  uint16_t l = s ? (uint16_t)n : 0xffff;
  memcpy(k->p, &l, 2);
  if (n)
    memcpy(k->p + 2, s, n);
  k->p += 2 + n;
}
static void key_i64(kw_t *k, int64_t v) {
  if (k->over || 8 > (size_t)(k->end - k->p)) {
    k->over = true;
    return;
  }
  memcpy(k->p, &v, 8);
  k->p += 8;
}
static void key_cstr(kw_t *k, const char *s) { key_put(k, s, idm_claims_strlen(s, 0)); }

static size_t tmpl_key(char *buf, const idm_batch_item_t *it, const char *alg, const char *kid,
                       int64_t line_time) {
  const idm_claims_t *c = it->claims;
  kw_t k = {buf, buf + TMPL_KEY_MAX, false};
  /* what tells identities apart first: the hash covers at most KEY_HASHED bytes */
  key_put(&k, c->sub, idm_claims_strlen(c->sub, c->sub_len));
  key_cstr(&k, c->aud);
  key_cstr(&k, it->target);
  key_put(&k, c->scope, idm_claims_strlen(c->scope, c->scope_len));
  key_cstr(&k, c->trust);
  key_cstr(&k, c->policy);
  char rn = (char)(it->rules_n > 0xff ? 0xff : it->rules_n);
  key_put(&k, &rn, 1);
  for (size_t i = 0; i < it->rules_n; i++)
    key_cstr(&k, it->rules[i]);
  key_cstr(&k, alg);
  key_cstr(&k, kid);
  key_cstr(&k, c->iss);
  key_i64(&k, c->iat);
  key_i64(&k, c->nbf);
  key_i64(&k, c->exp);
  key_i64(&k, line_time);
  if (k.over || it->rules_n > 0xfe)
    return 0;
  return (size_t)(k.p - buf);
}

/* Builds template t for the item, or returns false when a part exceeds its buffer (the
 * caller then takes the uncached path, which reports any error precisely). */
static bool tmpl_build(const idm_batch_t *b, tmpl_t *t, const char *key, size_t kl,
                       uint64_t hash, const idm_batch_item_t *it, const char *alg,
                       const char *kid, int64_t line_time) {
  char hdr[IDM_JWT_HEADER_MAX], fixed[TMPL_SI_MAX];
  size_t hl, fl;
  t->key_len = 0;
  if (idm_jwt_header(hdr, sizeof hdr, &hl, alg, kid) ||
      idm_jwt_claims_fixed(fixed, sizeof fixed, &fl, it->claims))
    return false;
  size_t whole = fl / 3 * 3;
  if (idm_b64url_encoded_len(hl) + 1 + idm_b64url_encoded_len(whole) > TMPL_SI_MAX)
    return false;
  size_t o = idm_b64url_encode(t->si, TMPL_SI_MAX, (const uint8_t *)hdr, hl);
  t->si[o++] = '.';
  o += idm_b64url_encode(t->si + o, TMPL_SI_MAX - o, (const uint8_t *)fixed, whole);
  t->si_len = (uint16_t)o;
  t->rem_len = (uint8_t)(fl - whole);
  memcpy(t->rem, fixed + whole, t->rem_len);
  t->mid_ready = false; /* a template used once hashes its whole leaf at seal instead */
  t->ent_len = 0;
  if (b->o.log) {
    idm_jcat_t w;
    idm_jcat_init(&w, t->ent, TMPL_ENT_MAX);
    entry_fixed(&w, it, it->profile == IDM_PROFILE_BATCH, alg, kid, line_time);
    if (w.over)
      return false;
    t->ent_len = (uint16_t)(w.p - t->ent);
  }
  memcpy(t->key, key, kl);
  t->key_len = (uint16_t)kl;
  t->hash = hash;
  return true;
}

/* The item's template: a hit (key compared in full), else built in its slot. NULL when
 * the item's fields are too large to cache. */
static tmpl_t *tmpl_get(idm_batch_t *b, const idm_batch_item_t *it, const char *alg,
                        const char *kid, int64_t line_time, bool *fresh) {
  *fresh = false;
  char key[TMPL_KEY_MAX];
  size_t kl = tmpl_key(key, it, alg, kid, line_time);
  if (!kl) {
    b->tmpl_uncached++;
    return NULL;
  }
  /* The hash only picks a set (a hit compares the whole key), so it covers the leading
   * bytes: XXH3's short-input path, and the same identity in the next second lands in the
   * same set. */
  uint64_t h = XXH3_64bits(key, kl < KEY_HASHED ? kl : KEY_HASHED);
  size_t set = (size_t)(h % TMPL_SETS);
  tmpl_t *ways = &b->tmpl[2 * set];
  for (int w = 0; w < 2; w++) {
    tmpl_t *t = &ways[w];
    if (t->key_len == kl && t->hash == h && !memcmp(t->key, key, kl)) {
      b->tmpl_mru[set] = (uint8_t)w;
      b->tmpl_hits++;
      return t;
    }
  }
  b->tmpl_misses++;
  int w = !b->tmpl_mru[set]; /* replace the way not used last */
  b->tmpl_mru[set] = (uint8_t)w;
  if (tmpl_build(b, &ways[w], key, kl, h, it, alg, kid, line_time)) {
    *fresh = true;
    return &ways[w];
  }
  b->tmpl_uncached++;
  return NULL;
}

/* Writes the signing input from template t into out (its leaf is finished at seal). */
static idm_err_t si_from_tmpl(const tmpl_t *t, const idm_claims_t *c, char *out, size_t cap,
                              size_t tail, size_t *si_len, idm_why_t *why) {
  char var[IDM_TOKEN_MAX];
  size_t vl;
  memcpy(var, t->rem, t->rem_len);
  if (idm_jwt_claims_varying(var + t->rem_len, sizeof var - t->rem_len, &vl, c))
    return idm_fail(why, IDM_ERR_NOSPACE, "cannot encode the credential: %s",
                    idm_err_str(IDM_ERR_NOSPACE));
  vl += t->rem_len;
  size_t el = idm_b64url_encoded_len(vl);
  if (t->si_len + el + tail + 1 > cap)
    return idm_fail(why, IDM_ERR_NOSPACE, "token does not fit its %zu-byte buffer", cap);
  memcpy(out, t->si, t->si_len);
  idm_b64url_encode(out + t->si_len, cap - t->si_len, (const uint8_t *)var, vl);
  *si_len = t->si_len + el;
  return IDM_OK;
}

/* The state before any byte: a leaf from it is hashed whole at seal. */
static const idm_leaf_mid_t leaf_mid_none = {
    .h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
          0x5be0cd19},
    .done = 0};

idm_err_t idm_batch_add(idm_batch_t *b, const idm_batch_item_t *it, idm_why_t *why) {
  if (b->o.log && idm_audit_failed(b->o.log, why))
    return IDM_ERR_AUDIT_FAILED;
  slot_t *s = gather(b);
  if (s->n >= b->o.items_max)
    return b->count >= IDM_BATCH_INFLIGHT_MAX
               ? idm_fail(why, IDM_ERR_BATCH_BUSY, "every batch awaits its audit write")
               : IDM_ERR_BATCH_FULL;
  if (s->n == 0)
    s->time_s = idm_clock_now_s(b->o.clk);
  bitem_t *bi = &s->items[s->n];
  memset(bi, 0, sizeof *bi);
  bi->cookie = it->cookie;
  bi->allow = it->allow;
  const char *alg = NULL, *kid = NULL;
  tmpl_t *t = NULL;
  if (it->allow) {
    const idm_claims_t *c = it->claims;
    if (!c || !it->out)
      return idm_fail(why, IDM_ERR_INVALID_ARG, "a credential needs claims and an output buffer");
    if (b->o.iss && (!c->iss || strcmp(c->iss, b->o.iss)))
      return idm_fail(why, IDM_ERR_INVALID_ARG, "credential issuer differs from the batcher's");
    size_t tail;
    if (it->profile == IDM_PROFILE_BATCH) {
      alg = IDM_BTOKEN_ALG;
      kid = b->kid;
      tail = b->proof_b64_max;
    } else {
      if (!it->key)
        return idm_fail(why, IDM_ERR_INVALID_ARG, "a jwt-profile credential needs its key");
      alg = idm_key_alg_name(idm_key_alg(it->key));
      kid = idm_key_kid(it->key);
      bi->key = it->key;
      tail = 1 + idm_b64url_encoded_len(IDM_SIG_MAX);
    }
    size_t si;
    bool fresh;
    t = tmpl_get(b, it, alg, kid, s->time_s, &fresh);
    if (t) {
      idm_err_t e = si_from_tmpl(t, c, it->out, it->out_cap, tail, &si, why);
      if (e)
        return e;
      /* The prefix state pays off from a template's second credential on; the first
       * (and every credential of an identity seen once) hashes its whole leaf at seal,
       * interleaved with the others. */
      if (!fresh && !t->mid_ready) {
        idm_merkle_leaf_mid(&t->mid, t->si, t->si_len);
        t->mid_ready = true;
      }
      bi->mid = t->mid_ready ? t->mid : leaf_mid_none;
    } else {
      idm_err_t e = idm_jwt_signing_input(it->out, it->out_cap, &si, alg, kid, c);
      if (e)
        return idm_fail(why, e, "cannot encode the credential: %s", idm_err_str(e));
      if (si + tail + 1 > it->out_cap)
        return idm_fail(why, IDM_ERR_NOSPACE, "token does not fit its %zu-byte buffer", it->out_cap);
      bi->mid = leaf_mid_none;
    }
    bi->out = it->out;
    bi->cap = it->out_cap;
    bi->out_len = it->out_len;
    bi->si_len = si;
    bi->profile = (uint8_t)it->profile;
    bi->leaf = (uint32_t)s->allows;
  }
  if (b->o.log) {
    idm_err_t e = entry_append(b, s, it, t, alg, kid, why);
    if (e == IDM_ERR_BATCH_FULL && b->count >= IDM_BATCH_INFLIGHT_MAX)
      return idm_fail(why, IDM_ERR_BATCH_BUSY, "every batch awaits its audit write");
    if (e)
      return e;
  }
  if (it->allow)
    s->allows++;
  s->n++;
  return IDM_OK;
}

/* Appends "." + base64url(bytes) and the NUL to an item's output. */
static void out_append(bitem_t *bi, const uint8_t *bytes, size_t n) {
  char *p = bi->out + bi->si_len;
  *p++ = '.';
  size_t w = idm_b64url_encode(p, bi->cap - bi->si_len - 2, bytes, n);
  p[w] = '\0';
  if (bi->out_len)
    *bi->out_len = bi->si_len + 1 + w;
}

/* Writes the line's head right before its entries and its tail after them, hashes the
 * line and chains it. */
static void line_finish(idm_batch_t *b, slot_t *s, const idm_batch_head_t *h,
                        const uint8_t sig[IDM_BTOKEN_SIG_LEN]) {
  char head[IDM_AUDIT_HEAD_MAX_BYTES];
  char *p = head;
  char rb[44], sb[90];
  idm_b64url_encode(rb, sizeof rb, h->root.b, IDM_HASH_LEN);
  idm_b64url_encode(sb, sizeof sb, sig, IDM_BTOKEN_SIG_LEN);
  p += sprintf(p, "{\"v\":2,\"seq\":");
  p += idm_fmt_uint(p, h->seq);
  p += sprintf(p, ",\"time\":%" PRId64 ",\"kid\":\"%s\",\"iss\":\"", h->time_s, b->kid);
  size_t el = idm_json_escape(p, (size_t)(head + sizeof head - p) - 200, b->o.iss, strlen(b->o.iss));
  p += el == (size_t)-1 ? 0 : el;
  p += sprintf(p, "\",\"size\":");
  p += idm_fmt_uint(p, h->size);
  p += sprintf(p, ",\"root\":\"%.43s\",\"sig\":\"%.86s\",\"entries\":[", rb, sb);
  size_t hl = (size_t)(p - head);
  char *line = s->rec + IDM_AUDIT_HEAD_MAX_BYTES - hl;
  memcpy(line, head, hl);
  char *t = s->rec + IDM_AUDIT_HEAD_MAX_BYTES + s->ent_len;
  memcpy(t, "],\"prev\":\"", 10);
  t += 10;
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, line, (size_t)(t - line));
  size_t line_len = (size_t)(t - line) + 43 + 3;
  uint64_t off;
  idm_audit_chain(b->o.log, &c, t, line_len, &off);
  memcpy(t + 43, "\"}\n", 3);
  s->line = line;
  s->line_len = line_len;
  s->end = off + line_len;
  s->seq = h->seq;
}

/* Every credential's leaf, eight at a time (see idm_merkle_leaves). */
static void leaves_finish(slot_t *s) {
  idm_leaf_job_t jobs[64];
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++) {
    bitem_t *bi = &s->items[i];
    if (!bi->allow)
      continue;
    jobs[k++] = (idm_leaf_job_t){&s->nodes[bi->leaf], &bi->mid, bi->out, bi->si_len};
    if (k == sizeof jobs / sizeof *jobs) {
      idm_merkle_leaves(jobs, k);
      k = 0;
    }
  }
  idm_merkle_leaves(jobs, k);
}

idm_err_t idm_batch_seal(idm_batch_t *b, idm_batch_sealed_t *out, idm_why_t *why) {
  slot_t *s = gather(b);
  if (s->n == 0)
    return IDM_ERR_BATCH_EMPTY;
  if (b->count >= IDM_BATCH_INFLIGHT_MAX)
    return idm_fail(why, IDM_ERR_BATCH_BUSY, "every batch awaits its audit write");
  idm_batch_head_t h = {.size = s->allows, .time_s = s->time_s};
  h.seq = b->o.log ? idm_audit_seq_reserve(b->o.log) : b->local_seq++;
  if (s->allows) {
    leaves_finish(s);
    idm_merkle_tree(s->nodes, s->allows);
    h.root = s->nodes[idm_merkle_tree_nodes(s->allows) - 1];
  } else {
    idm_merkle_empty(&h.root);
  }
  uint8_t msg[IDM_BTOKEN_MSG_MAX], sig[IDM_SIG_MAX];
  size_t mlen = idm_btoken_message(msg, b->kid, b->kid_len, &h), slen = 0;
  s->err = idm_key_sign(b->o.key, sig, &slen, msg, mlen);
  if (!s->err && slen != IDM_BTOKEN_SIG_LEN)
    s->err = IDM_ERR_BATCH_KEY;
  for (size_t i = 0; i < s->n && !s->err; i++) {
    bitem_t *bi = &s->items[i];
    if (!bi->allow)
      continue;
    if (bi->profile == IDM_PROFILE_BATCH) {
      idm_hash_t path[IDM_MERKLE_PATH_MAX];
      uint8_t proof[IDM_BTOKEN_PROOF_MAX];
      size_t k = idm_merkle_path(path, s->nodes, s->allows, bi->leaf);
      size_t pl = idm_btoken_proof_encode(proof, sizeof proof, &h, bi->leaf, path, k, sig);
      out_append(bi, proof, pl);
    } else {
      uint8_t ts[IDM_SIG_MAX];
      size_t tl;
      s->err = idm_key_sign(bi->key, ts, &tl, (const uint8_t *)bi->out, bi->si_len);
      if (!s->err)
        out_append(bi, ts, tl);
    }
  }
  memset(out, 0, sizeof *out);
  out->seq = h.seq;
  out->size = s->allows;
  out->entries = s->n;
  s->line = NULL;
  s->line_len = 0;
  s->end = 0;
  if (s->err) {
    idm_fail(why, s->err, "signing batch %" PRIu64 " failed", h.seq);
  } else if (b->o.log) {
    line_finish(b, s, &h, sig);
    out->record = s->line;
    out->record_len = s->line_len;
    out->offset = s->end - s->line_len;
  }
  b->count++;
  slot_t *g = gather(b);
  g->n = g->allows = g->ent_len = 0;
  return s->err;
}

size_t idm_batch_complete(idm_batch_t *b, idm_batch_done_fn done, void *ctx) {
  size_t reported = 0;
  while (b->count > 0) {
    slot_t *s = &b->slots[b->head];
    idm_err_t err = s->err;
    if (!err && b->o.log && s->end > idm_audit_released_upto(b->o.log)) {
      if (!idm_audit_failed(b->o.log, NULL))
        break; /* not written yet: later slots end later, so stop here */
      err = IDM_ERR_AUDIT_FAILED;
    }
    for (size_t i = 0; i < s->n; i++) {
      if (s->items[i].cookie && done) {
        done(s->items[i].cookie, err, ctx);
        reported++;
      }
    }
    s->n = s->allows = s->ent_len = 0;
    b->head = (b->head + 1) % SLOTS;
    b->count--;
  }
  return reported;
}

idm_err_t idm_batch_seal_sync(idm_batch_t *b, idm_batch_done_fn done, void *ctx,
                              idm_batch_sealed_t *out, idm_why_t *why) {
  idm_batch_sealed_t tmp;
  if (!out)
    out = &tmp;
  idm_err_t e = idm_batch_seal(b, out, why);
  if (!e && out->record)
    e = idm_audit_write_sync(b->o.log, out->record, out->record_len, out->offset, why);
  idm_batch_complete(b, done, ctx);
  return e;
}
