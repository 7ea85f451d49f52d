/* The compiler from rules to the decision structure (layout in internal.h, pol_index_t).
 *
 * A rule can only match when every top-level conjunct of its conditions holds, so any
 * one of those conjuncts is a sound index key: a request that does not satisfy it cannot
 * match the rule, and a request that does finds the rule under that key and evaluates it
 * in full. `or`, `not` and everything else stay at the leaf, which keeps them exact.
 *
 * Per rule, in order of preference:
 *  1. the conjunctive == / in tests on client attributes (one per attribute), plus the
 *     target list: hashed together as one key per combination of values, so a fleet of
 *     namespaces x service accounts x targets costs one probe per distinct attribute set;
 *  2. else the longest literal prefix of a `like` on a client attribute, in a byte trie;
 *  3. else a `source_ip in` with pairwise disjoint CIDRs, in a bit trie;
 *  4. else the empty attribute set, keyed by target only.
 * A rule is filed under exactly one of these (its `in` values and targets are distinct),
 * so a request reaches it at most once. Expansion is bounded (POL_EXPAND_MAX): a rule
 * whose lists would multiply beyond it keeps fewer attributes in its key, or is filed
 * under "any target" with the target checked at the leaf.
 *
 * Everything here runs once per load and may allocate; the result is never written
 * again, so threads share it without locks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#define XXH_INLINE_ALL /* the hash of short keys is on the request path: no call */
#include <xxhash.h>

#include "internal.h"

#define TARGET_EXPAND_MAX 4096u /* keys one rule may add for its target list */
#define WEAK_KEY_MAX 16u        /* value combinations below which a key is a poor spread */

/* ---- hashing shared with eval.c ---------------------------------------------------- */
uint64_t pol_key_start(uint64_t sig, uint32_t target);
uint64_t pol_key_start(uint64_t sig, uint32_t target) {
  uint64_t h = (sig + 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
  h ^= ((uint64_t)target + 1) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

/* ---- conjunct extraction ------------------------------------------------------------ */
typedef struct anchors {
  uint32_t eq[POL_A__COUNT]; /* node of the first ==/in conjunct per attribute, or NONE */
  uint32_t like;             /* node of the like with the longest literal prefix, or NONE */
  uint32_t like_prefix;
  uint32_t cidr;             /* node of a usable source_ip in, or NONE */
  uint32_t conjuncts;        /* top-level conjuncts seen */
} anchors_t;

static uint32_t literal_prefix(pol_str_t g) {
  uint32_t n = 0;
  while (n < g.len && g.ptr[n] != '*' && g.ptr[n] != '?')
    n++;
  return n < POL_GLOB_PREFIX_MAX ? n : POL_GLOB_PREFIX_MAX;
}

static bool cidr_contains(const pol_cidr_t *a, const pol_cidr_t *b) {
  if (a->family != b->family || a->prefix > b->prefix)
    return false;
  uint32_t full = a->prefix / 8, rest = a->prefix % 8;
  if (memcmp(a->addr, b->addr, full))
    return false;
  if (!rest)
    return true;
  uint8_t m = (uint8_t)(0xff << (8 - rest));
  return (a->addr[full] & m) == (b->addr[full] & m);
}

static void collect(const pol_config_t *c, uint32_t n, anchors_t *an) {
  const pol_node_t *nd = &c->nodes[n];
  if (nd->op == POL_OP_AND) {
    for (uint32_t i = 0; i < nd->b; i++)
      collect(c, c->u32[nd->a + i], an);
    return;
  }
  an->conjuncts++;
  if (nd->src == POL_SRC_CLIENT && (nd->op == POL_OP_EQ || nd->op == POL_OP_IN)) {
    if (an->eq[nd->attr] == POL_NONE)
      an->eq[nd->attr] = n;
  } else if (nd->src == POL_SRC_CLIENT && nd->op == POL_OP_LIKE) {
    uint32_t p = literal_prefix(pol_sid(c, nd->a));
    if (p > 0 && (an->like == POL_NONE || p > an->like_prefix)) {
      an->like = n;
      an->like_prefix = p;
    }
  } else if (nd->op == POL_OP_CIDR && an->cidr == POL_NONE && nd->b <= POL_EXPAND_MAX) {
    for (uint32_t i = 0; i < nd->b; i++)
      for (uint32_t j = 0; j < nd->b; j++)
        if (i != j && cidr_contains(&c->cidrs[nd->a + i], &c->cidrs[nd->a + j]))
          return; /* overlapping: an address could reach the rule twice */
    an->cidr = n;
  }
}

/* ---- builder state ------------------------------------------------------------------ */
typedef struct link {
  uint32_t rule, next;
} link_t;

typedef struct builder {
  pol_config_t *c;
  pol_index_t *ix;
  uint32_t *head, *tail; /* per bucket slot: rule list (links) */
  link_t *links;
  uint32_t links_n, links_cap;
  uint64_t keys_n;
  uint64_t *vh; /* value hash per string id, computed once */
  uint8_t *blob; /* scratch for one key's tuple */
  uint32_t distinct[POL_A__COUNT]; /* distinct == / in values per attribute, all rules */
  bool counting;
  /* trie entries */
  uint8_t *tbytes;
  uint32_t tbytes_n, tbytes_cap;
  struct tentry {
    uint32_t off, len, rule;
  } *gent, *cent;
  uint32_t gent_n, gent_cap, cent_n, cent_cap;
  const uint8_t *sort_base;
} builder_t;

static uint64_t vhash(builder_t *b, uint32_t sid) {
  if (!b->vh[sid]) {
    pol_str_t s = pol_sid(b->c, sid);
    b->vh[sid] = XXH3_64bits_withSeed(s.ptr, s.len, b->c->seed) | 1;
  }
  return b->vh[sid];
}

static uint32_t sig_find(pol_index_t *ix, uint64_t mask) {
  for (uint32_t i = 0; i < ix->sigs_n; i++)
    if (ix->sigs[i].mask == mask)
      return i;
  return POL_NONE;
}

static bool sig_add(builder_t *b, uint64_t mask, bool any) {
  pol_index_t *ix = b->ix;
  uint32_t i = sig_find(ix, mask);
  if (i == POL_NONE) {
    pol_sig_t *ns = pol_realloc(ix->sigs, ((size_t)ix->sigs_n + 1) * sizeof *ns);
    if (!ns)
      return false;
    ix->sigs = ns;
    i = ix->sigs_n++;
    memset(&ns[i], 0, sizeof ns[i]);
    ns[i].mask = mask;
    for (int a = 0; a < POL_A__COUNT; a++)
      if (mask & (1ull << a))
        ns[i].attrs[ns[i].attrs_n++] = (uint8_t)a;
  }
  if (any)
    ix->sigs[i].has_any = 1;
  else
    ix->sigs[i].has_target = 1;
  return true;
}

/* Files one key: (mask, target, tuple of sids) -> rule. */
static bool put_key(builder_t *b, uint64_t mask, uint32_t target, const uint32_t *tuple,
                    uint32_t tn, uint32_t entry) {
  if (b->counting) {
    b->keys_n++;
    return true;
  }
  pol_config_t *c = b->c;
  pol_index_t *ix = b->ix;
  uint64_t h = pol_key_start(mask, target);
  for (uint32_t i = 0; i < tn; i++) {
    h = (h ^ vhash(b, tuple[i])) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  h |= 1;
  /* the stored tuple is each value's length and bytes, back to back */
  uint8_t *blob = b->blob; /* POL_A__COUNT * (4 + POL_STRING_MAX_BYTES) */
  uint32_t bn = 0;
  for (uint32_t i = 0; i < tn; i++) {
    pol_str_t v = pol_sid(c, tuple[i]);
    memcpy(blob + bn, &v.len, 4);
    memcpy(blob + bn + 4, v.ptr, v.len);
    bn += 4 + v.len;
  }
  uint64_t slot = h & ix->bucket_mask;
  for (;;) {
    pol_bucket_t *bk = &ix->buckets[slot];
    if (!bk->h)
      break;
    if (bk->h == h && bk->sig == mask && bk->target == target &&
        (bn == 0 || !memcmp(bk->tuple == POL_NONE ? bk->inl : ix->keys + bk->tuple, blob, bn)))
      break;
    slot = (slot + 1) & ix->bucket_mask;
  }
  pol_bucket_t *bk = &ix->buckets[slot];
  if (!bk->h) {
    bk->h = h;
    bk->sig = mask;
    bk->target = target;
    if (bn <= sizeof bk->inl) {
      bk->tuple = POL_NONE;
      memcpy(bk->inl, blob, bn);
    } else {
      if (!pol_grow((void **)&ix->keys, &ix->keys_cap, (uint64_t)ix->keys_n + bn, 1))
        return false;
      bk->tuple = ix->keys_n;
      memcpy(ix->keys + ix->keys_n, blob, bn);
      ix->keys_n += bn;
    }
    b->head[slot] = b->tail[slot] = POL_NONE;
    if (!sig_add(b, mask, target == POL_TARGET_ANY))
      return false;
  }
  if (!pol_grow((void **)&b->links, &b->links_cap, (uint64_t)b->links_n + 1, sizeof *b->links))
    return false;
  uint32_t l = b->links_n++;
  b->links[l] = (link_t){entry, POL_NONE};
  if (b->tail[slot] == POL_NONE)
    b->head[slot] = l;
  else
    b->links[b->tail[slot]].next = l;
  b->tail[slot] = l;
  bk->rules_n++;
  return true;
}

/* The targets a rule is filed under: its list, or "any" (also when the list is long).
 * The list is read by offset at every use: c->u32 moves as keys are added. */
static uint32_t rule_targets(const pol_rule_t *r, uint64_t per_key, bool *any) {
  *any = r->targets_n == POL_TARGET_ANY || (uint64_t)r->targets_n * per_key > TARGET_EXPAND_MAX;
  return *any ? 1 : r->targets_n;
}
#define TARGET_AT(c, r, any, t) ((any) ? POL_TARGET_ANY : (c)->u32[(r)->targets_off + (t)])

static bool put_tentry(builder_t *b, bool glob, uint32_t target, uint8_t tag, const uint8_t *key,
                       uint32_t kn, uint32_t rule) {
  if (b->counting)
    return true;
  if (!pol_grow((void **)&b->tbytes, &b->tbytes_cap, (uint64_t)b->tbytes_n + 5 + kn, 1))
    return false;
  uint32_t off = b->tbytes_n;
  uint8_t *p = b->tbytes + off;
  p[0] = (uint8_t)(target >> 24);
  p[1] = (uint8_t)(target >> 16);
  p[2] = (uint8_t)(target >> 8);
  p[3] = (uint8_t)target;
  p[4] = tag;
  memcpy(p + 5, key, kn);
  b->tbytes_n += 5 + kn;
  struct tentry **v = glob ? &b->gent : &b->cent;
  uint32_t *n = glob ? &b->gent_n : &b->cent_n, *cap = glob ? &b->gent_cap : &b->cent_cap;
  if (!pol_grow((void **)v, cap, (uint64_t)*n + 1, sizeof **v))
    return false;
  (*v)[(*n)++] = (struct tentry){off, 5 + kn, rule};
  return true;
}

/* Files rule i (first pass counts keys, second inserts). */
static bool file_rule(builder_t *b, uint32_t i) {
  pol_config_t *c = b->c;
  const pol_rule_t *r = &c->rules[i];
  anchors_t an;
  for (int a = 0; a < POL_A__COUNT; a++)
    an.eq[a] = POL_NONE;
  an.like = an.cidr = POL_NONE;
  an.like_prefix = 0;
  an.conjuncts = 0;
  if (r->client != POL_NONE)
    collect(c, r->client, &an);
  if (r->when != POL_NONE)
    collect(c, r->when, &an);
  /* 1. equality attributes, cheapest lists first, within the expansion bound */
  uint64_t mask = 0, product = 1;
  for (uint32_t pass = 0; pass < 2; pass++)
    for (int a = 0; a < POL_A__COUNT; a++) {
      if (an.eq[a] == POL_NONE)
        continue;
      const pol_node_t *nd = &c->nodes[an.eq[a]];
      uint32_t cnt = nd->op == POL_OP_EQ ? 1 : nd->b;
      if ((pass == 0) != (cnt == 1))
        continue;
      if (product * cnt > POL_EXPAND_MAX)
        continue;
      product *= cnt;
      mask |= 1ull << a;
    }
  /* A key on attributes with only a handful of values in the whole policy (trust, kind)
   * puts many rules in one bucket; when the rule also has a glob prefix or CIDRs, those
   * spread it better. */
  uint64_t spread = 1;
  for (int a = 0; a < POL_A__COUNT; a++)
    if (mask & (1ull << a))
      spread *= b->distinct[a] ? b->distinct[a] : 1;
  if (mask && spread <= WEAK_KEY_MAX && (an.like != POL_NONE || an.cidr != POL_NONE)) {
    mask = 0;
    product = 1;
  }
  if (mask || (an.like == POL_NONE && an.cidr == POL_NONE)) {
    bool any;
    uint32_t tn = rule_targets(r, product, &any);
    uint32_t attrs[POL_A__COUNT], na = 0;
    for (int a = 0; a < POL_A__COUNT; a++)
      if (mask & (1ull << a))
        attrs[na++] = (uint32_t)a;
    /* exact: every conjunct is one of the key's tests and the key's target is the rule's */
    bool exact = r->when == POL_NONE && an.conjuncts == na &&
                 (!any || r->targets_n == POL_TARGET_ANY);
    uint32_t entry = i | (exact ? POL_ENTRY_EXACT : 0);
    for (uint64_t k = 0; k < product; k++) {
      uint32_t tuple[POL_A__COUNT];
      uint64_t rest = k;
      for (uint32_t j = 0; j < na; j++) {
        const pol_node_t *nd = &c->nodes[an.eq[attrs[j]]];
        if (nd->op == POL_OP_EQ) {
          tuple[j] = nd->a;
        } else {
          tuple[j] = c->u32[nd->a + rest % nd->b];
          rest /= nd->b;
        }
      }
      for (uint32_t t = 0; t < tn; t++)
        if (!put_key(b, mask, TARGET_AT(c, r, any, t), tuple, na, entry))
          return false;
    }
    return true;
  }
  if (an.like != POL_NONE) {
    /* 2. glob prefix */
    const pol_node_t *nd = &c->nodes[an.like];
    bool any;
    uint32_t tn = rule_targets(r, 1, &any);
    pol_str_t g = pol_sid(c, nd->a);
    for (uint32_t t = 0; t < tn; t++)
      if (!put_tentry(b, true, TARGET_AT(c, r, any, t), (uint8_t)nd->attr,
                      (const uint8_t *)g.ptr, an.like_prefix, i))
        return false;
    if (!b->counting) {
      bool seen = false;
      for (uint32_t k = 0; k < b->ix->glob_attrs_n; k++)
        seen |= b->ix->glob_attrs[k] == nd->attr;
      if (!seen)
        b->ix->glob_attrs[b->ix->glob_attrs_n++] = (uint8_t)nd->attr;
    }
    return true;
  }
  /* 3. CIDR bits */
  const pol_node_t *nd = &c->nodes[an.cidr];
  bool any;
  uint32_t tn = rule_targets(r, nd->b, &any);
  for (uint32_t k = 0; k < nd->b; k++) {
    const pol_cidr_t *cd = &c->cidrs[nd->a + k];
    uint8_t bits[128];
    for (uint32_t j = 0; j < cd->prefix; j++)
      bits[j] = (cd->addr[j / 8] >> (7 - j % 8)) & 1;
    for (uint32_t t = 0; t < tn; t++)
      if (!put_tentry(b, false, TARGET_AT(c, r, any, t), cd->family, bits, cd->prefix, i))
        return false;
  }
  return true;
}

_Static_assert(POL_A__COUNT <= 32, "attribute bits per string fit a uint32_t");

/* Counts, per attribute, the distinct values the rules' == / in conjuncts use. */
static bool count_distinct(builder_t *b) {
  pol_config_t *c = b->c;
  uint32_t *bits = pol_calloc(c->strs_n + 1, sizeof *bits); /* attribute bits per string */
  if (!bits)
    return false;
  for (uint32_t i = 0; i < c->rules_n; i++) {
    anchors_t an;
    for (int a = 0; a < POL_A__COUNT; a++)
      an.eq[a] = POL_NONE;
    an.like = an.cidr = POL_NONE;
    an.like_prefix = an.conjuncts = 0;
    if (c->rules[i].client != POL_NONE)
      collect(c, c->rules[i].client, &an);
    for (int a = 0; a < POL_A__COUNT; a++) {
      if (an.eq[a] == POL_NONE)
        continue;
      const pol_node_t *nd = &c->nodes[an.eq[a]];
      uint32_t cnt = nd->op == POL_OP_EQ ? 1 : nd->b;
      for (uint32_t k = 0; k < cnt; k++) {
        uint32_t sid = nd->op == POL_OP_EQ ? nd->a : c->u32[nd->a + k];
        if (!(bits[sid] & (1u << a))) {
          bits[sid] |= 1u << a;
          b->distinct[a]++;
        }
      }
    }
  }
  free(bits);
  return true;
}

/* ---- tries ------------------------------------------------------------------------- */
static _Thread_local builder_t *sort_ctx;

static int tentry_cmp(const void *x, const void *y) {
  const struct tentry *a = x, *b = y;
  const uint8_t *base = sort_ctx->tbytes;
  uint32_t n = a->len < b->len ? a->len : b->len;
  int d = memcmp(base + a->off, base + b->off, n);
  if (d)
    return d;
  if (a->len != b->len)
    return a->len < b->len ? -1 : 1;
  return a->rule < b->rule ? -1 : a->rule > b->rule;
}

typedef struct trie_build {
  pol_trie_node_t *n;
  uint32_t n_len, n_cap;
} trie_build_t;

static bool trie_node(builder_t *b, trie_build_t *tb, const struct tentry *e, uint32_t lo,
                      uint32_t hi, uint32_t depth, uint32_t at) {
  pol_config_t *c = b->c;
  const uint8_t *base = b->tbytes;
  uint32_t i = lo;
  uint32_t rules = c->u32_n, rn = 0;
  while (i < hi && e[i].len == depth) {
    if (!pol_grow((void **)&c->u32, &c->u32_cap, (uint64_t)c->u32_n + 1, sizeof *c->u32))
      return false;
    c->u32[c->u32_n++] = e[i].rule;
    rn++;
    i++;
  }
  uint32_t groups = 0;
  for (uint32_t j = i; j < hi; j++)
    if (j == i || base[e[j].off + depth] != base[e[j - 1].off + depth])
      groups++;
  if (!pol_grow((void **)&tb->n, &tb->n_cap, (uint64_t)tb->n_len + groups, sizeof *tb->n))
    return false;
  uint32_t first = tb->n_len;
  tb->n_len += groups;
  tb->n[at].rules = rules;
  tb->n[at].rules_n = rn;
  tb->n[at].child = first;
  tb->n[at].child_n = (uint16_t)groups;
  uint32_t k = 0;
  for (uint32_t j = i; j < hi;) {
    uint8_t byte = base[e[j].off + depth];
    uint32_t end = j;
    while (end < hi && base[e[end].off + depth] == byte)
      end++;
    memset(&tb->n[first + k], 0, sizeof tb->n[0]);
    tb->n[first + k].byte = byte;
    if (!trie_node(b, tb, e, j, end, depth + 1, first + k))
      return false;
    k++;
    j = end;
  }
  return true;
}

static bool trie_build(builder_t *b, struct tentry *e, uint32_t n, pol_trie_node_t **out,
                       uint32_t *out_n) {
  if (!n)
    return true;
  sort_ctx = b; /* qsort has no context argument; thread-local keeps compiles independent */
  qsort(e, n, sizeof *e, tentry_cmp);
  trie_build_t tb = {0};
  if (!pol_grow((void **)&tb.n, &tb.n_cap, 1, sizeof *tb.n))
    return false;
  memset(&tb.n[0], 0, sizeof tb.n[0]);
  tb.n_len = 1;
  if (!trie_node(b, &tb, e, 0, n, 0, 0)) {
    free(tb.n);
    return false;
  }
  *out = tb.n;
  *out_n = tb.n_len;
  return true;
}

/* Enters every depth-5 node of trie tr (its path: 4 target bytes, 1 tag) in the heads. */
static void heads_fill(pol_index_t *ix, const pol_trie_node_t *tr, uint32_t trie, uint32_t node,
                       uint32_t depth, uint32_t path) {
  const pol_trie_node_t *nd = &tr[node];
  for (uint32_t i = 0; i < nd->child_n; i++) {
    uint32_t ch = nd->child + i;
    if (depth < 4) {
      heads_fill(ix, tr, trie, ch, depth + 1, path << 8 | tr[ch].byte);
      continue;
    }
    uint64_t slot = pol_head_hash(trie, path, tr[ch].byte) & ix->heads_mask;
    while (ix->heads[slot].node)
      slot = (slot + 1) & ix->heads_mask;
    ix->heads[slot] = (pol_trie_head_t){path, ch, (uint8_t)trie, tr[ch].byte};
  }
}

static uint32_t heads_count(const pol_trie_node_t *tr, uint32_t node, uint32_t depth) {
  if (!tr)
    return 0;
  if (depth == 5)
    return 1;
  uint32_t n = 0;
  for (uint32_t i = 0; i < tr[node].child_n; i++)
    n += heads_count(tr, tr[node].child + i, depth + 1);
  return n;
}

void pol_index_free(pol_index_t *ix) {
  free(ix->heads);
  free(ix->keys);
  free(ix->buckets);
  free(ix->sigs);
  free(ix->glob);
  free(ix->cidr);
  memset(ix, 0, sizeof *ix);
}

/* Large tables are read at random, one line per request: ask for huge pages (where
 * transparent huge pages are enabled for madvise) so that the misses are not also TLB
 * misses. Only whole 2 MiB pages inside the block are advised; failure is harmless. */
static void huge_hint(void *p, size_t n) {
  const uintptr_t huge = 2u << 20;
  uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + n) & ~(huge - 1);
  if (p && e > a)
    (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
}

bool pol_compile_index(pol_config_t *c) {
  pol_index_t *ix = &c->idx;
  builder_t b = {.c = c, .ix = ix, .counting = true};
  bool ok = false;
  if (!count_distinct(&b))
    return false;
  for (uint32_t i = 0; i < c->rules_n; i++)
    file_rule(&b, i);
  uint64_t cap = 16;
  while (cap < b.keys_n * 2)
    cap *= 2;
  ix->buckets = pol_aligned_alloc(64, cap * sizeof *ix->buckets);
  if (ix->buckets)
    memset(ix->buckets, 0, cap * sizeof *ix->buckets);
  b.head = pol_malloc(cap * sizeof *b.head);
  b.tail = pol_malloc(cap * sizeof *b.tail);
  b.vh = pol_calloc(c->strs_n + 1, sizeof *b.vh);
  b.blob = pol_malloc((size_t)POL_A__COUNT * (4 + POL_STRING_MAX_BYTES));
  if (!ix->buckets || !b.head || !b.tail || !b.vh || !b.blob)
    goto out;
  ix->bucket_mask = cap - 1;
  b.counting = false;
  for (uint32_t i = 0; i < c->rules_n; i++)
    if (!file_rule(&b, i))
      goto out;
  /* flatten each bucket's rule list (ascending: rules were filed in order) */
  for (uint64_t s = 0; s < cap; s++) {
    pol_bucket_t *bk = &ix->buckets[s];
    if (!bk->h)
      continue;
    if (bk->rules_n == 1) { /* the common case: no second memory access */
      bk->rules = b.links[b.head[s]].rule;
      continue;
    }
    if (!pol_grow((void **)&c->u32, &c->u32_cap, (uint64_t)c->u32_n + bk->rules_n, sizeof *c->u32))
      goto out;
    bk->rules = c->u32_n;
    for (uint32_t l = b.head[s]; l != POL_NONE; l = b.links[l].next)
      c->u32[c->u32_n++] = b.links[l].rule;
  }
  if (!trie_build(&b, b.gent, b.gent_n, &ix->glob, &ix->glob_n) ||
      !trie_build(&b, b.cent, b.cent_n, &ix->cidr, &ix->cidr_n))
    goto out;
  uint64_t nh = (uint64_t)heads_count(ix->glob, 0, 0) + heads_count(ix->cidr, 0, 0), hc = 16;
  while (hc < nh * 2)
    hc *= 2;
  ix->heads = pol_calloc(hc, sizeof *ix->heads);
  if (!ix->heads)
    goto out;
  ix->heads_mask = (uint32_t)(hc - 1);
  if (ix->glob)
    heads_fill(ix, ix->glob, 0, 0, 0, 0);
  if (ix->cidr)
    heads_fill(ix, ix->cidr, 1, 0, 0, 0);
  huge_hint(ix->buckets, ((size_t)ix->bucket_mask + 1) * sizeof *ix->buckets);
  huge_hint(ix->keys, ix->keys_cap);
  huge_hint(c->rules, (size_t)c->rules_cap * sizeof *c->rules);
  huge_hint(c->chars, c->chars_cap);
  huge_hint(c->u32, (size_t)c->u32_cap * sizeof *c->u32);
  huge_hint(c->nodes, (size_t)c->nodes_cap * sizeof *c->nodes);
  ok = true;
out:
  free(b.head);
  free(b.tail);
  free(b.vh);
  free(b.blob);
  free(b.links);
  free(b.tbytes);
  free(b.gent);
  free(b.cent);
  return ok;
}
