/* The per-thread batcher.
 *
 * Work is split so that the per-credential part is as small as possible and everything
 * else happens once per batch:
 *   add   (per credential): signing input straight into the caller's output buffer,
 *                           leaf hash, the audit entry appended to the slot's line.
 *   seal  (per batch):      tree, one Ed25519 signature over the batch message, then per
 *                           credential only its path, proof encoding and base64url (or,
 *                           jwt profile, its own signature); the line's head, one SHA-256
 *                           pass over the line and the chain step (audit.h).
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
 *   rec: [ unused | {"v":1,...,"entries":[ | e0,e1,... | ],"prev":"P"}\n ]
 *                 ^ line                   ^ rec + IDM_AUDIT_HEAD_MAX_BYTES */
#include "batch/batch.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64url.h"
#include "core/jsonw.h" /* idm_json_escape */
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
  idm_err_t err;            /* sealed with an error: complete reports it */
} slot_t;

struct idm_batch {
  idm_batch_opts_t o;
  char kid[IDM_KID_LEN + 1];
  size_t kid_len;
  size_t rec_cap;
  size_t proof_b64_max;     /* "." + base64url(longest proof for items_max) */
  slot_t slots[SLOTS];
  size_t head, count;       /* sealed slots: slots[head .. head + count) mod SLOTS */
  uint64_t local_seq;       /* batch sequence without a log */
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
  free(b);
}

bool idm_batch_full(const idm_batch_t *b) {
  return b->slots[(b->head + b->count) % SLOTS].n >= b->o.items_max;
}
bool idm_batch_pending(const idm_batch_t *b) {
  return b->slots[(b->head + b->count) % SLOTS].n > 0;
}
size_t idm_batch_inflight(const idm_batch_t *b) { return b->count; }

/* The audit entry writer: constant key fragments are copied, strings escaped with
 * idm_json_escape (which also replaces invalid UTF-8), so an entry costs little more
 * than its bytes. Overflow is sticky and reported once at the end. */
typedef struct ew {
  char *p, *end;
  bool over;
} ew_t;

static void ew_raw(ew_t *w, const char *s, size_t n) {
  if (w->over || n > (size_t)(w->end - w->p)) {
    w->over = true;
    return;
  }
  memcpy(w->p, s, n);
  w->p += n;
}
#define EW_LIT(w, lit) ew_raw((w), (lit), sizeof(lit) - 1)

static void ew_str(ew_t *w, const char *s, size_t n) {
  if (!s)
    s = "", n = 0;
  EW_LIT(w, "\"");
  if (w->over)
    return;
  size_t e = idm_json_escape(w->p, (size_t)(w->end - w->p), s, n);
  if (e == (size_t)-1) {
    w->over = true;
    return;
  }
  w->p += e;
  EW_LIT(w, "\"");
}
static void ew_cstr(ew_t *w, const char *s) { ew_str(w, s, s ? strlen(s) : 0); }

static size_t put_uint(char *p, uint64_t v);
static void ew_int(ew_t *w, int64_t v) {
  char t[24];
  size_t n = 0;
  if (v < 0) {
    t[n++] = '-';
    n += put_uint(t + n, (uint64_t)0 - (uint64_t)v);
  } else {
    n = put_uint(t, (uint64_t)v);
  }
  ew_raw(w, t, n);
}

static void ew_rules(ew_t *w, const idm_batch_item_t *it) {
  EW_LIT(w, ",\"rules\":[");
  for (size_t i = 0; i < it->rules_n; i++) {
    if (i)
      EW_LIT(w, ",");
    ew_cstr(w, it->rules[i]);
  }
  EW_LIT(w, "]");
}

/* Appends the item's audit entry to the slot's line. IDM_ERR_BATCH_FULL when the line
 * has no room left for it, IDM_ERR_AUDIT_RECORD when it could never fit. */
static idm_err_t entry_append(idm_batch_t *b, slot_t *s, const idm_batch_item_t *it,
                              const idm_hash_t *leaf, const char *alg, const char *kid,
                              idm_why_t *why) {
  char *base = s->rec + IDM_AUDIT_HEAD_MAX_BYTES + s->ent_len;
  size_t room = b->rec_cap - IDM_AUDIT_HEAD_MAX_BYTES - LINE_TAIL_MAX - s->ent_len;
  size_t cap = room < IDM_AUDIT_ENTRY_MAX_BYTES + 1 ? room : IDM_AUDIT_ENTRY_MAX_BYTES + 1;
  ew_t w = {base, base + cap, false};
  if (s->n > 0)
    EW_LIT(&w, ",");
  const idm_claims_t *c = it->claims;
  if (it->allow) {
    char lb[44];
    idm_b64url_encode(lb, sizeof lb, leaf->b, IDM_HASH_LEN);
    EW_LIT(&w, "{\"d\":\"allow\",\"i\":");
    ew_int(&w, (int64_t)s->allows);
    EW_LIT(&w, ",\"leaf\":\"");
    ew_raw(&w, lb, 43);
    EW_LIT(&w, "\",\"alg\":");
    ew_cstr(&w, alg);
    EW_LIT(&w, ",\"kid\":");
    ew_cstr(&w, kid);
    EW_LIT(&w, ",\"sub\":");
    ew_str(&w, c->sub, c->sub ? (c->sub_len ? c->sub_len : strlen(c->sub)) : 0);
    EW_LIT(&w, ",\"trust\":");
    ew_cstr(&w, c->trust);
    EW_LIT(&w, ",\"target\":");
    ew_cstr(&w, it->target ? it->target : c->aud);
    EW_LIT(&w, ",\"aud\":");
    ew_cstr(&w, c->aud);
    EW_LIT(&w, ",\"scope\":");
    ew_str(&w, c->scope, c->scope ? (c->scope_len ? c->scope_len : strlen(c->scope)) : 0);
    EW_LIT(&w, ",\"iat\":");
    ew_int(&w, c->iat);
    EW_LIT(&w, ",\"nbf\":");
    ew_int(&w, c->nbf);
    EW_LIT(&w, ",\"exp\":");
    ew_int(&w, c->exp);
    EW_LIT(&w, ",\"ttl\":");
    ew_int(&w, c->exp - c->iat);
    EW_LIT(&w, ",\"jti\":");
    ew_cstr(&w, c->jti);
    EW_LIT(&w, ",\"policy\":");
    ew_cstr(&w, c->policy);
    ew_rules(&w, it);
  } else {
    EW_LIT(&w, "{\"d\":\"deny\",\"sub\":");
    ew_str(&w, c ? c->sub : NULL, c && c->sub ? (c->sub_len ? c->sub_len : strlen(c->sub)) : 0);
    EW_LIT(&w, ",\"trust\":");
    ew_cstr(&w, c ? c->trust : NULL);
    EW_LIT(&w, ",\"target\":");
    ew_cstr(&w, it->target ? it->target : (c ? c->aud : NULL));
    EW_LIT(&w, ",\"scope\":");
    ew_str(&w, c ? c->scope : NULL,
           c && c->scope ? (c->scope_len ? c->scope_len : strlen(c->scope)) : 0);
    ew_rules(&w, it);
    EW_LIT(&w, ",\"reason\":");
    ew_cstr(&w, it->reason ? it->reason : "denied");
  }
  EW_LIT(&w, "}");
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

idm_err_t idm_batch_add(idm_batch_t *b, const idm_batch_item_t *it, idm_why_t *why) {
  if (b->o.log && idm_audit_failed(b->o.log, why))
    return IDM_ERR_AUDIT_FAILED;
  slot_t *s = gather(b);
  if (s->n >= b->o.items_max)
    return b->count >= IDM_BATCH_INFLIGHT_MAX
               ? idm_fail(why, IDM_ERR_BATCH_BUSY, "every batch awaits its audit write")
               : IDM_ERR_BATCH_FULL;
  bitem_t *bi = &s->items[s->n];
  memset(bi, 0, sizeof *bi);
  bi->cookie = it->cookie;
  bi->allow = it->allow;
  idm_hash_t *leaf = &s->nodes[s->allows];
  const char *alg = NULL, *kid = NULL;
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
    idm_err_t e = idm_jwt_signing_input(it->out, it->out_cap, &si, alg, kid, c);
    if (e)
      return idm_fail(why, e, "cannot encode the credential: %s", idm_err_str(e));
    if (si + tail + 1 > it->out_cap)
      return idm_fail(why, IDM_ERR_NOSPACE, "token does not fit its %zu-byte buffer", it->out_cap);
    idm_merkle_leaf(leaf, it->out, si);
    bi->out = it->out;
    bi->cap = it->out_cap;
    bi->out_len = it->out_len;
    bi->si_len = si;
    bi->profile = (uint8_t)it->profile;
    bi->leaf = (uint32_t)s->allows;
  }
  if (b->o.log) {
    idm_err_t e = entry_append(b, s, it, leaf, alg, kid, why);
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

static size_t put_uint(char *p, uint64_t v) {
  char t[24];
  size_t n = 0;
  do {
    t[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    p[i] = t[n - 1 - i];
  return n;
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
  p += sprintf(p, "{\"v\":1,\"seq\":");
  p += put_uint(p, h->seq);
  p += sprintf(p, ",\"time\":%" PRId64 ",\"kid\":\"%s\",\"iss\":\"", h->time_s, b->kid);
  size_t el = idm_json_escape(p, (size_t)(head + sizeof head - p) - 200, b->o.iss, strlen(b->o.iss));
  p += el == (size_t)-1 ? 0 : el;
  p += sprintf(p, "\",\"size\":");
  p += put_uint(p, h->size);
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

idm_err_t idm_batch_seal(idm_batch_t *b, idm_batch_sealed_t *out, idm_why_t *why) {
  slot_t *s = gather(b);
  if (s->n == 0)
    return IDM_ERR_BATCH_EMPTY;
  if (b->count >= IDM_BATCH_INFLIGHT_MAX)
    return idm_fail(why, IDM_ERR_BATCH_BUSY, "every batch awaits its audit write");
  idm_batch_head_t h = {.size = s->allows, .time_s = idm_clock_now_s(b->o.clk)};
  h.seq = b->o.log ? idm_audit_seq_reserve(b->o.log) : b->local_seq++;
  if (s->allows) {
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
