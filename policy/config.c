/* The compiled configuration object: storage helpers (growable pools, string interning),
 * the accessors the engine uses, loading from a file, and freeing.
 *
 * Strings are interned in one table hashed with XXH3 under a per-object random seed (a
 * hostile file cannot aim collisions at it) and every hit is confirmed by a full compare.
 * Trust and target names (and target audiences) share one small lookup table so that the
 * request path finds a target in O(1). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#define XXH_INLINE_ALL /* the hash of short keys is on the request path: no call */
#include <xxhash.h>

#include "internal.h"

_Thread_local pol_testing_t pol_testing;

bool pol_grow(void **p, uint32_t *cap, uint64_t need, size_t elem) {
  if (need <= *cap)
    return true;
  if (need > UINT32_MAX / 2)
    return false;
  uint64_t n = *cap ? *cap : 16;
  while (n < need)
    n *= 2;
  if (n > UINT32_MAX)
    n = UINT32_MAX;
  void *q = pol_realloc(*p, (size_t)n * elem);
  if (!q)
    return false;
  *p = q;
  *cap = (uint32_t)n;
  return true;
}

bool pol_own(pol_config_t *c, void *p) {
  if (!p)
    return false;
  if (!pol_grow((void **)&c->owned, &c->owned_cap, (uint64_t)c->owned_n + 1, sizeof(void *))) {
    free(p);
    return false;
  }
  c->owned[c->owned_n++] = p;
  return true;
}

static uint64_t str_hash(const pol_config_t *c, const char *s, size_t n) {
  return XXH3_64bits_withSeed(s, n, c->seed);
}

static bool stab_rehash(pol_config_t *c, uint32_t cap) {
  uint32_t *t = pol_calloc(cap, sizeof *t);
  if (!t)
    return false;
  for (uint32_t id = 0; id < c->strs_n; id++) {
    pol_str_t s = pol_sid(c, id);
    uint64_t i = str_hash(c, s.ptr, s.len) & (cap - 1);
    while (t[i])
      i = (i + 1) & (cap - 1);
    t[i] = id + 1;
  }
  free(c->stab);
  c->stab = t;
  c->stab_mask = cap - 1;
  return true;
}

uint32_t pol_intern_find(const pol_config_t *c, const char *s, size_t n) {
  if (!c->stab)
    return POL_NONE;
  uint64_t i = str_hash(c, s, n) & c->stab_mask;
  for (;;) {
    uint32_t v = c->stab[i];
    if (!v)
      return POL_NONE;
    pol_span_t sp = c->strs[v - 1];
    if (sp.len == n && memcmp(c->chars + sp.off, s, n) == 0)
      return v - 1;
    i = (i + 1) & c->stab_mask;
  }
}

uint32_t pol_intern(pol_config_t *c, const char *s, size_t n) {
  if (n > UINT32_MAX / 4)
    return POL_NONE;
  uint32_t id = pol_intern_find(c, s, n);
  if (id != POL_NONE)
    return id;
  if (!c->stab || (uint64_t)(c->strs_n + 1) * 2 > (uint64_t)c->stab_mask + 1) {
    uint32_t cap = c->stab ? (c->stab_mask + 1) * 2 : 1024;
    if (cap == 0 || !stab_rehash(c, cap))
      return POL_NONE;
  }
  if (!pol_grow((void **)&c->strs, &c->strs_cap, (uint64_t)c->strs_n + 1, sizeof *c->strs) ||
      !pol_grow((void **)&c->chars, &c->chars_cap, (uint64_t)c->chars_n + n + 1, 1))
    return POL_NONE;
  memcpy(c->chars + c->chars_n, s, n);
  c->chars[c->chars_n + n] = 0; /* every interned string is also NUL-terminated */
  id = c->strs_n++;
  c->strs[id].off = c->chars_n;
  c->strs[id].len = (uint32_t)n;
  c->chars_n += (uint32_t)n + 1;
  uint64_t i = str_hash(c, s, n) & c->stab_mask;
  while (c->stab[i])
    i = (i + 1) & c->stab_mask;
  c->stab[i] = id + 1;
  return id;
}

uint64_t pol_random_seed(void);
uint64_t pol_random_seed(void) {
  uint64_t s = 0;
  if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
    s = (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull; /* still varies with ASLR */
  return s;
}

void pol_config_free(pol_config_t *cfg) {
  if (!cfg)
    return;
  pol_index_free(&cfg->idx);
  for (uint32_t i = 0; i < cfg->owned_n; i++)
    free(cfg->owned[i]);
  free(cfg->owned);
  free(cfg->chars);
  free(cfg->strs);
  free(cfg->stab);
  free(cfg->nodes);
  free(cfg->u32);
  free(cfg->nums);
  free(cfg->cidrs);
  free(cfg->rules);
  free(cfg->trusts);
  free(cfg->targets);
  free(cfg->name_tab);
  free(cfg);
}

size_t pol_config_bytes(const pol_config_t *c) {
  size_t n = sizeof *c;
  n += c->chars_cap + (size_t)c->strs_cap * sizeof *c->strs;
  n += c->stab ? ((size_t)c->stab_mask + 1) * sizeof *c->stab : 0;
  n += (size_t)c->nodes_cap * sizeof *c->nodes + (size_t)c->u32_cap * sizeof *c->u32;
  n += (size_t)c->nums_cap * sizeof *c->nums + (size_t)c->cidrs_cap * sizeof *c->cidrs;
  n += (size_t)c->rules_cap * sizeof *c->rules;
  n += (size_t)c->trusts_cap * sizeof *c->trusts + (size_t)c->targets_cap * sizeof *c->targets;
  n += c->name_tab ? ((size_t)c->name_tab_mask + 1) * sizeof *c->name_tab : 0;
  n += c->idx.keys_cap;
  if (c->idx.buckets)
    n += ((size_t)c->idx.bucket_mask + 1) * sizeof *c->idx.buckets;
  n += (size_t)c->idx.sigs_n * sizeof *c->idx.sigs;
  n += (size_t)(c->idx.glob_n + c->idx.cidr_n) * sizeof(pol_trie_node_t);
  return n;
}

/* ---- accessors ------------------------------------------------------------------- */
const pol_server_t *pol_config_server(const pol_config_t *cfg) { return &cfg->server; }
uint32_t pol_config_trust_count(const pol_config_t *cfg) { return cfg->trusts_n; }
const pol_trust_t *pol_config_trust(const pol_config_t *cfg, uint32_t i) {
  return i < cfg->trusts_n ? &cfg->trusts[i] : NULL;
}
uint32_t pol_config_target_count(const pol_config_t *cfg) { return cfg->targets_n; }
const pol_target_t *pol_config_target(const pol_config_t *cfg, uint32_t i) {
  return i < cfg->targets_n ? &cfg->targets[i] : NULL;
}
uint32_t pol_config_rule_count(const pol_config_t *cfg) { return cfg->rules_n; }
const char *pol_config_rule_name(const pol_config_t *cfg, uint32_t rule) {
  return rule < cfg->rules_n ? pol_sid(cfg, cfg->rules[rule].name).ptr : NULL;
}
const char *pol_config_policy_id(const pol_config_t *cfg) { return cfg->policy_id; }

/* name_tab entries: bit 31 set = target, clear = trust; low bits = index. A target is
 * entered under its name and, if different, under its audience. */
#define NT_TARGET 0x80000000u

static const char *nt_key(const pol_config_t *c, uint32_t v, int which) {
  uint32_t i = v & ~NT_TARGET;
  if (!(v & NT_TARGET))
    return c->trusts[i].name;
  return which == 0 ? c->targets[i].name : c->targets[i].audience;
}

static uint32_t nt_find(const pol_config_t *c, bool target, const char *s, size_t n) {
  if (!c->name_tab || !s)
    return POL_NONE;
  uint64_t i = XXH3_64bits_withSeed(s, n, c->seed ^ (target ? 1 : 0)) & c->name_tab_mask;
  for (;;) {
    uint32_t v = c->name_tab[i];
    if (!v)
      return POL_NONE;
    v -= 1;
    if (!!(v & NT_TARGET) == target) {
      for (int w = 0; w < (target ? 2 : 1); w++) {
        const char *k = nt_key(c, v, w);
        if (k && strlen(k) == n && memcmp(k, s, n) == 0)
          return v & ~NT_TARGET;
      }
    }
    i = (i + 1) & c->name_tab_mask;
  }
}

static void nt_put(pol_config_t *c, bool target, const char *s, uint32_t v) {
  size_t n = strlen(s);
  uint64_t i = XXH3_64bits_withSeed(s, n, c->seed ^ (target ? 1 : 0)) & c->name_tab_mask;
  while (c->name_tab[i])
    i = (i + 1) & c->name_tab_mask;
  c->name_tab[i] = v + 1;
}

bool pol_config_build_names(pol_config_t *c);
bool pol_config_build_names(pol_config_t *c) {
  uint64_t need = ((uint64_t)c->trusts_n + 2ull * c->targets_n) * 2 + 16;
  uint64_t cap = 16;
  while (cap < need)
    cap *= 2;
  c->name_tab = pol_calloc(cap, sizeof *c->name_tab);
  if (!c->name_tab)
    return false;
  c->name_tab_mask = (uint32_t)(cap - 1);
  for (uint32_t i = 0; i < c->trusts_n; i++)
    nt_put(c, false, c->trusts[i].name, i);
  for (uint32_t i = 0; i < c->targets_n; i++) {
    nt_put(c, true, c->targets[i].name, i | NT_TARGET);
    if (strcmp(c->targets[i].audience, c->targets[i].name) != 0)
      nt_put(c, true, c->targets[i].audience, i | NT_TARGET);
  }
  return true;
}

const pol_trust_t *pol_config_trust_find(const pol_config_t *cfg, const char *name, size_t len) {
  uint32_t i = nt_find(cfg, false, name, len);
  return i == POL_NONE ? NULL : &cfg->trusts[i];
}

const pol_target_t *pol_config_target_find(const pol_config_t *cfg, const char *s, size_t len) {
  uint32_t i = nt_find(cfg, true, s, len);
  return i == POL_NONE ? NULL : &cfg->targets[i];
}

/* ---- loading --------------------------------------------------------------------- */
pol_config_t *pol_config_load(const char *path, pol_diag_t *diag) {
  if (diag)
    diag->count = 0;
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0;
  const char *why = NULL;
  if (!f) {
    why = strerror(errno);
  } else {
    size_t cap = 0;
    for (;;) {
      if (len == cap) {
        if (cap >= POL_FILE_MAX_BYTES) {
          why = "file larger than the configuration limit (512 MiB)";
          break;
        }
        size_t ncap = cap ? cap * 2 : 65536;
        char *nb = pol_realloc(buf, ncap);
        if (!nb) {
          why = "out of memory";
          break;
        }
        buf = nb;
        cap = ncap;
      }
      size_t got = fread(buf + len, 1, cap - len, f);
      len += got;
      if (got == 0) {
        if (ferror(f))
          why = strerror(errno ? errno : EIO);
        break;
      }
    }
    fclose(f);
  }
  if (why) {
    free(buf);
    if (diag) {
      diag->count = 1;
      snprintf(diag->text[0], sizeof diag->text[0], "%s: %s", path, why);
    }
    return NULL;
  }
  pol_config_t *cfg = pol_config_parse(buf ? buf : "", len, path, diag);
  free(buf);
  return cfg;
}
