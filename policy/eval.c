/* The fast evaluator: walks the decision structure of compile.c to the few rules a
 * request can match, evaluates those in full, and assembles the decision.
 *
 * Per request: one XXH3 per client attribute that some key uses (computed at most once),
 * one or two hash probes per distinct attribute set, one trie walk per glob-indexed
 * attribute and one along the source address when such rules exist. Candidates are
 * evaluated completely (pol_rule_matches), so the index only has to be sound, never
 * precise. Matches are kept in a small stack array; a request matching more than
 * POL_EVAL_MATCH_MAX rules is handed to the reference interpreter, which gives the same
 * decision without the array. Nothing here allocates or writes shared memory. */
#include <string.h>
#define XXH_INLINE_ALL /* the hash of short keys is on the request path: no call */
#include <xxhash.h>

#include "internal.h"

uint64_t pol_key_start(uint64_t sig, uint32_t target);

typedef struct matches {
  uint32_t v[POL_EVAL_MATCH_MAX];
  uint32_t n;
  bool overflow;
} matches_t;

static inline void consider(const pol_config_t *c, uint32_t rule, uint32_t t,
                            const pol_client_t *cl, const pol_context_t *ctx, matches_t *m) {
  const pol_rule_t *r = &c->rules[rule];
  if (!pol_rule_has_target(r, c, t) || !pol_rule_matches(c, r, cl, ctx))
    return;
  if (m->n == POL_EVAL_MATCH_MAX) {
    m->overflow = true;
    return;
  }
  m->v[m->n++] = rule;
}

static void consider_run(const pol_config_t *c, uint32_t off, uint32_t n, uint32_t t,
                         const pol_client_t *cl, const pol_context_t *ctx, matches_t *m) {
  for (uint32_t i = 0; i < n && !m->overflow; i++)
    consider(c, c->u32[off + i], t, cl, ctx, m);
}

/* A bucket's entries: exact ones match without looking at the rule. */
static void consider_entry(const pol_config_t *c, uint32_t e, uint32_t t,
                           const pol_client_t *cl, const pol_context_t *ctx, matches_t *m) {
  if (!(e & POL_ENTRY_EXACT)) {
    consider(c, e, t, cl, ctx, m);
  } else if (m->n == POL_EVAL_MATCH_MAX) {
    m->overflow = true;
  } else {
    m->v[m->n++] = e & ~POL_ENTRY_EXACT;
  }
}

static uint32_t trie_child(const pol_trie_node_t *tr, uint32_t node, uint8_t byte) {
  const pol_trie_node_t *nd = &tr[node];
  uint32_t lo = nd->child, hi = nd->child + nd->child_n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (tr[mid].byte < byte)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < nd->child + nd->child_n && tr[lo].byte == byte ? lo : POL_NONE;
}

/* Walks head (target, tag) then the bits or bytes of the value, considering every rule
 * filed at a node on the way. */
static void walk(const pol_config_t *c, const pol_trie_node_t *tr, uint32_t trie,
                 uint32_t key_target, uint8_t tag, const uint8_t *v, uint32_t vn, bool bits,
                 uint32_t t, const pol_client_t *cl, const pol_context_t *ctx, matches_t *m) {
  const pol_index_t *ix = &c->idx;
  uint32_t node = 0;
  for (uint64_t slot = pol_head_hash(trie, key_target, tag) & ix->heads_mask;;
       slot = (slot + 1) & ix->heads_mask) {
    const pol_trie_head_t *hd = &ix->heads[slot];
    if (!hd->node)
      return; /* nothing filed under this target and tag */
    if (hd->target == key_target && hd->tag == tag && hd->trie == trie) {
      node = hd->node;
      break;
    }
  }
  if (tr[node].rules_n) /* a /0 prefix: keyed by target and family alone */
    consider_run(c, tr[node].rules, tr[node].rules_n, t, cl, ctx, m);
  uint32_t steps = bits ? vn * 8 : vn;
  for (uint32_t i = 0; i < steps && !m->overflow; i++) {
    uint8_t b = bits ? (uint8_t)((v[i / 8] >> (7 - i % 8)) & 1) : v[i];
    if ((node = trie_child(tr, node, b)) == POL_NONE)
      return;
    if (tr[node].rules_n)
      consider_run(c, tr[node].rules, tr[node].rules_n, t, cl, ctx, m);
  }
}

static bool emitted(const uint32_t *seen, uint32_t n, uint32_t sid) {
  for (uint32_t i = 0; i < n; i++)
    if (seen[i] == sid)
      return true;
  return false;
}

static bool emit(pol_decision_t *out, pol_str_t s) {
  uint32_t need = out->scope_len + (out->scope_len ? 1 : 0) + s.len;
  if (need >= POL_SCOPE_MAX)
    return false;
  if (out->scope_len)
    out->scope[out->scope_len++] = ' ';
  memcpy(out->scope + out->scope_len, s.ptr, s.len);
  out->scope_len += s.len;
  out->scope[out->scope_len] = 0;
  return true;
}

static void deny(pol_decision_t *out, pol_outcome_t why) {
  out->outcome = why;
  out->allow = false;
  out->scope[0] = 0;
  out->scope_len = 0;
  out->ttl_s = 0;
}

static bool grants(const pol_config_t *c, const matches_t *m, uint32_t sid) {
  for (uint32_t i = 0; i < m->n; i++) {
    const pol_rule_t *r = &c->rules[m->v[i]];
    for (uint32_t j = 0; j < r->scope_n; j++)
      if (c->u32[r->scope_off + j] == sid)
        return true;
  }
  return false;
}

/* Assembles the decision from the matching rules (ascending, permits only after the
 * forbid check has split them out). */
static void finish(const pol_config_t *c, uint32_t t, const pol_ask_t *ask, matches_t *m,
                   pol_decision_t *out) {
  /* forbids first: any one denies, and they are the deciding rules */
  uint32_t np, nf = 0;
  for (uint32_t i = 0; i < m->n; i++) {
    if (c->rules[m->v[i]].forbid) {
      if (nf < POL_DECISION_RULES_MAX)
        out->rules[nf] = m->v[i];
      nf++;
    }
  }
  if (nf) {
    out->rule_count = nf < POL_DECISION_RULES_MAX ? nf : POL_DECISION_RULES_MAX;
    deny(out, POL_DENY_FORBID);
    return;
  }
  np = m->n;
  if (!np)
    return; /* default deny, already set */
  int64_t ttl = c->targets[t].ttl_s;
  for (uint32_t i = 0; i < np; i++) {
    const pol_rule_t *r = &c->rules[m->v[i]];
    if (i < POL_DECISION_RULES_MAX)
      out->rules[out->rule_count++] = m->v[i];
    if (r->ttl_s && r->ttl_s < ttl)
      ttl = r->ttl_s;
  }
  if (ask && ask->ttl_s > 0 && ask->ttl_s < ttl)
    ttl = ask->ttl_s;
  uint32_t seen[POL_SCOPE_MAX / 2], ns = 0;
  const char *rq = ask && ask->scope.ptr ? ask->scope.ptr : "";
  uint32_t rn = ask && ask->scope.ptr ? ask->scope.len : 0;
  bool requested = false;
  for (uint32_t i = 0; i < rn;) {
    while (i < rn && rq[i] == ' ')
      i++;
    uint32_t s = i;
    while (i < rn && rq[i] != ' ')
      i++;
    if (i == s)
      break;
    requested = true;
    uint32_t sid = pol_intern_find(c, rq + s, i - s);
    if (sid == POL_NONE || !grants(c, m, sid)) {
      deny(out, POL_DENY_SCOPE);
      return;
    }
    if (emitted(seen, ns, sid))
      continue;
    if (!emit(out, pol_sid(c, sid))) {
      deny(out, POL_DENY_SCOPE);
      return;
    }
    seen[ns++] = sid;
  }
  if (!requested && np == 1) { /* one permit: its own scope, already deduplicated */
    const pol_rule_t *r = &c->rules[m->v[0]];
    if (r->scope_text_n)
      emit(out, (pol_str_t){c->chars + r->scope_text, r->scope_text_n});
  } else if (!requested) {
    for (uint32_t i = 0; i < np; i++) {
      const pol_rule_t *r = &c->rules[m->v[i]];
      for (uint32_t j = 0; j < r->scope_n; j++) {
        uint32_t sid = c->u32[r->scope_off + j];
        if (emitted(seen, ns, sid))
          continue;
        if (!emit(out, pol_sid(c, sid))) {
          deny(out, POL_DENY_SCOPE);
          return;
        }
        seen[ns++] = sid;
      }
    }
  }
  out->outcome = POL_ALLOW;
  out->allow = true;
  out->ttl_s = ttl;
}

void pol_eval(const pol_config_t *c, const pol_client_t *cl, uint32_t t,
              const pol_context_t *ctx, const pol_ask_t *ask, pol_decision_t *out) {
  out->rule_count = 0;
  deny(out, POL_DENY_DEFAULT);
  if (t >= c->targets_n)
    return;
  const pol_index_t *ix = &c->idx;
  matches_t m;
  m.n = 0;
  m.overflow = false;
  uint64_t vh[POL_A__COUNT];
  uint32_t have = 0; /* bit per attribute whose hash is in vh */
  /* Hash every key first and prefetch its slot, so that the probes' cache misses overlap
   * instead of following one another. */
  enum { BATCH = 16 };
  struct {
    uint64_t h;
    const pol_sig_t *sg;
    uint32_t kt;
  } pr[BATCH];
  for (uint32_t s = 0; s < ix->sigs_n && !m.overflow;) {
    uint32_t np = 0;
    for (; s < ix->sigs_n && np + 2 <= BATCH; s++) {
      const pol_sig_t *sg = &ix->sigs[s];
      bool absent = false;
      for (uint32_t j = 0; j < sg->attrs_n; j++) {
        uint32_t a = sg->attrs[j];
        if (!cl->attr[a].ptr) {
          absent = true;
          break;
        }
        if (!(have & (1u << a))) {
          vh[a] = XXH3_64bits_withSeed(cl->attr[a].ptr, cl->attr[a].len, c->seed) | 1;
          have |= 1u << a;
        }
      }
      if (absent)
        continue;
      for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 ? !sg->has_target : !sg->has_any)
          continue;
        uint32_t kt = pass == 0 ? t : POL_TARGET_ANY;
        uint64_t h = pol_key_start(sg->mask, kt);
        for (uint32_t j = 0; j < sg->attrs_n; j++) {
          h = (h ^ vh[sg->attrs[j]]) * 0x9e3779b97f4a7c15ull;
          h ^= h >> 29;
        }
        h |= 1;
        __builtin_prefetch(&ix->buckets[h & ix->bucket_mask]);
        pr[np].h = h;
        pr[np].sg = sg;
        pr[np].kt = kt;
        np++;
      }
    }
    for (uint32_t k = 0; k < np && !m.overflow; k++) {
      const pol_sig_t *sg = pr[k].sg;
      uint64_t h = pr[k].h;
      for (uint64_t slot = h & ix->bucket_mask;; slot = (slot + 1) & ix->bucket_mask) {
        const pol_bucket_t *bk = &ix->buckets[slot];
        if (!bk->h)
          break;
        if (bk->h != h || bk->sig != sg->mask || bk->target != pr[k].kt)
          continue;
        if (bk->rules_n == 1) /* fetch the rule while the values are compared */
          __builtin_prefetch(&c->rules[bk->rules & ~POL_ENTRY_EXACT]);
        bool same = true; /* confirm the hit: full compare of every value */
        const uint8_t *kp = bk->tuple == POL_NONE ? bk->inl : ix->keys + bk->tuple;
        for (uint32_t j = 0; j < sg->attrs_n && same; j++) {
          pol_str_t got = cl->attr[sg->attrs[j]];
          uint32_t len;
          memcpy(&len, kp, 4);
          same = len == got.len && memcmp(kp + 4, got.ptr, got.len) == 0;
          kp += 4 + len;
        }
        if (!same)
          continue;
        if (bk->rules_n == 1)
          consider_entry(c, bk->rules, t, cl, ctx, &m);
        else
          for (uint32_t j = 0; j < bk->rules_n && !m.overflow; j++)
            consider_entry(c, c->u32[bk->rules + j], t, cl, ctx, &m);
        break;
      }
    }
  }
  if (ix->glob) {
    for (uint32_t k = 0; k < ix->glob_attrs_n && !m.overflow; k++) {
      uint8_t a = ix->glob_attrs[k];
      pol_str_t v = cl->attr[a];
      if (!v.ptr)
        continue;
      uint32_t n = v.len < POL_GLOB_PREFIX_MAX ? v.len : POL_GLOB_PREFIX_MAX;
      walk(c, ix->glob, 0, t, a, (const uint8_t *)v.ptr, n, false, t, cl, ctx, &m);
      walk(c, ix->glob, 0, POL_TARGET_ANY, a, (const uint8_t *)v.ptr, n, false, t, cl, ctx, &m);
    }
  }
  if (ix->cidr && (ctx->source_family == 4 || ctx->source_family == 6) && !m.overflow) {
    uint32_t n = ctx->source_family == 4 ? 4 : 16;
    walk(c, ix->cidr, 1, t, ctx->source_family, ctx->source_ip, n, true, t, cl, ctx, &m);
    walk(c, ix->cidr, 1, POL_TARGET_ANY, ctx->source_family, ctx->source_ip, n, true, t, cl, ctx, &m);
  }
  if (m.overflow) {
    pol_eval_ref(c, cl, t, ctx, ask, out);
    return;
  }
  /* candidates came from several places: put them in rule order (few, insertion sort) */
  for (uint32_t i = 1; i < m.n; i++) {
    uint32_t x = m.v[i], j = i;
    while (j > 0 && m.v[j - 1] > x) {
      m.v[j] = m.v[j - 1];
      j--;
    }
    m.v[j] = x;
  }
  finish(c, t, ask, &m, out);
}
