/* Private declarations of the policy component: the compiled representation shared by
 * the parser (parse.c), the reference interpreter (ref.c), the index compiler
 * (compile.c), the fast evaluator (eval.c) and explain (explain.c).
 *
 * Memory layout of a compiled policy. Everything lives in a handful of flat arrays
 * owned by pol_config_t, referenced by 32-bit indices (never pointers), so the object is
 * position independent, compact and freed in a few calls:
 *
 *   strs/chars  interned strings (each distinct string once; id = index)
 *   nodes       expression nodes; AND/OR children are a run in u32[]
 *   u32         runs of ids: string lists, children, rule targets, scope tokens, rule lists
 *   nums        numeric literals (double)
 *   cidrs       CIDR literals
 *   rules       permit and forbid blocks in file order (rule index = position)
 *   idx         the decision structure built by compile.c (see there)
 *
 * Limits of the language live here, not in engine/core/limits.h: this component includes
 * no engine header. */
#ifndef IDM_POLICY_INTERNAL_H
#define IDM_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits ---------------------------------------------------------------------- */
/* Largest configuration file read by pol_config_load: bounds memory for a hostile file
 * (a million-rule fleet is ~150 MiB of text). */
#define POL_FILE_MAX_BYTES (512u << 20)
/* Longest string literal: bounds the decode buffer on the stack. */
#define POL_STRING_MAX_BYTES 4096u
/* Deepest nesting of parentheses/not: bounds parser and evaluator recursion. */
#define POL_EXPR_DEPTH_MAX 64u
/* Most elements in one [list]. */
#define POL_LIST_MAX 65536u
/* Most rules (permits + forbids), trust and target blocks. */
#define POL_RULES_MAX (1u << 23)
#define POL_BLOCKS_MAX (1u << 20)
/* After this many errors the parser stops (the count is still exact up to here). */
#define POL_ERRORS_MAX 1000u
/* Matching rules the fast evaluator tracks on its stack; a request matching more rules
 * is decided by the reference interpreter (same answer, slower, still no allocation). */
#define POL_EVAL_MATCH_MAX 256u
/* Longest literal glob prefix used as an index key (a shorter prefix is still exact:
 * the full glob is evaluated at the leaf). */
#define POL_GLOB_PREFIX_MAX 64u
/* An `in` list expands to at most this many index keys per rule (the cartesian product
 * over a rule's conjuncts); attributes beyond it stay at the leaf. */
#define POL_EXPAND_MAX 64u

#define POL_NONE UINT32_MAX
#define POL_TARGET_ANY UINT32_MAX /* rule.targets_n value: target any */

/* ---- expressions ----------------------------------------------------------------- */
typedef enum pol_op {
  POL_OP_TRUE,   /* no condition */
  POL_OP_AND,    /* a: u32 offset of children, b: count */
  POL_OP_OR,     /* same */
  POL_OP_NOT,    /* a: child */
  POL_OP_EQ,     /* string ==: a: string id */
  POL_OP_NE,     /* string !=: a: string id */
  POL_OP_IN,     /* string in [...]: a: u32 offset of string ids, b: count */
  POL_OP_LIKE,   /* a: string id of the glob */
  POL_OP_NUM_EQ, /* numeric ==: a: nums index */
  POL_OP_NUM_NE,
  POL_OP_NUM_IN, /* a: nums offset, b: count */
  POL_OP_LT,
  POL_OP_LE,
  POL_OP_GT,
  POL_OP_GE,
  POL_OP_CIDR, /* source_ip in: a: cidrs offset, b: count */
  POL_OP_TIME, /* a: start minute, b: end minute (exclusive; wraps when a > b) */
  POL_OP_DAY,  /* a: bit mask, bit 0 = monday */
} pol_op_t;

typedef enum pol_src {
  POL_SRC_NONE,
  POL_SRC_CLIENT,  /* attr: pol_attr_id_t */
  POL_SRC_CLAIM,   /* name: string id of NAME in claims.NAME */
  POL_SRC_POSTURE, /* name: string id of NAME in posture.NAME */
  POL_SRC_IP,
  POL_SRC_TIME,
  POL_SRC_DAY,
} pol_src_t;

typedef struct pol_node {
  uint8_t op;    /* pol_op_t */
  uint8_t src;   /* pol_src_t */
  uint16_t attr; /* pol_attr_id_t when src == CLIENT */
  uint32_t name; /* string id when src is CLAIM or POSTURE */
  uint32_t a, b; /* operands, see pol_op_t */
} pol_node_t;

typedef struct pol_rule {
  uint32_t name;         /* string id */
  uint32_t client;       /* node index, POL_NONE: every client */
  uint32_t when;         /* node index, POL_NONE: always */
  uint32_t targets_off;  /* u32 run of target indices, sorted and unique */
  uint32_t targets_n;    /* POL_TARGET_ANY: every target */
  uint32_t scope_off;    /* u32 run of scope token string ids, in written order, unique */
  uint32_t scope_n;
  uint32_t scope_text;   /* chars offset of the tokens joined by single spaces */
  uint32_t scope_text_n; /* its length (0 when scope_n == 0) */
  uint32_t line;         /* of the block keyword */
  uint8_t forbid;
  int64_t ttl_s;         /* 0: none */
} pol_rule_t;

typedef struct pol_span {
  uint32_t off, len;
} pol_span_t;

/* ---- the decision structure (compile.c) -------------------------------------------
 * Index keys come from a rule's top-level conjuncts (the AND chain at the root of its
 * client and when conditions, plus its target list), each of which must hold for the
 * rule to match. Every rule is filed under exactly one kind of key, so a request reaches
 * each rule at most once, and every candidate is then evaluated in full at the leaf:
 *  - sig: the set of client attributes a rule tests with == or in (a bit mask). The key
 *    is (sig, target or any, the tuple of values); `in` lists expand to one key per
 *    combination. One hash table holds every key; a request probes it once per distinct
 *    signature for its target and once for "any".
 *  - glob: rules with no equality but a `like "pre*"` on a client attribute are filed in
 *    a byte trie under target ‖ attribute ‖ literal prefix.
 *  - cidr: rules with neither but `source_ip in CIDR` go in a bit trie under target ‖
 *    family ‖ prefix bits, walked along the request's address (longest-prefix style,
 *    collecting every prefix on the way).
 *  - the empty signature holds what is left (keyed by target or any). */
typedef struct pol_bucket {
  uint64_t h;        /* 0: empty slot */
  uint64_t sig;      /* attribute mask */
  uint32_t target;   /* target index or POL_TARGET_ANY */
  uint32_t tuple;    /* POL_NONE: the values are in inl; else their offset in idx.keys.
                        The values, per bit of sig in attr order, are each a 4-byte length
                        then the bytes. Short tuples live in the bucket's own cache line. */
  uint32_t rules;    /* rules_n == 1: the rule entry itself; else u32 offset of the entries */
  uint32_t rules_n;
  uint8_t inl[32];
} pol_bucket_t;
#ifdef __cplusplus
static_assert(sizeof(pol_bucket_t) == 64, "one bucket, one cache line");
#else
_Static_assert(sizeof(pol_bucket_t) == 64, "one bucket, one cache line");
#endif
/* A rule entry in a bucket: the rule index, with this bit set when the key implies the
 * whole rule (its only conditions are the key's == / in tests and its target), so the
 * leaf has nothing left to evaluate. */
#define POL_ENTRY_EXACT 0x80000000u

typedef struct pol_sig {
  uint64_t mask;
  uint8_t has_target, has_any; /* keys exist with a specific target / with any */
  uint8_t attrs[POL_A__COUNT]; /* attribute ids of mask, ascending */
  uint8_t attrs_n;
} pol_sig_t;

typedef struct pol_trie_node {
  uint32_t child; /* index of the first child; children are contiguous, sorted by byte */
  uint32_t rules; /* u32 offset of rule indices */
  uint32_t rules_n;
  uint16_t child_n;
  uint8_t byte;
} pol_trie_node_t;

typedef struct pol_trie_head {
  uint32_t target; /* POL_NONE marks an empty slot only when node == 0 */
  uint32_t node;   /* 0: empty slot (the root is never a head) */
  uint8_t trie;    /* 0 glob, 1 cidr */
  uint8_t tag;     /* attribute (glob) or family (cidr) */
} pol_trie_head_t;

static inline uint64_t pol_head_hash(uint32_t trie, uint32_t target, uint32_t tag) {
  uint64_t h = ((uint64_t)target << 16 | tag << 1 | trie) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 32);
}

typedef struct pol_index {
  uint8_t *keys;        /* the buckets' value tuples */
  uint32_t keys_n, keys_cap;
  pol_bucket_t *buckets;
  uint64_t bucket_mask; /* table size - 1 (power of two) */
  pol_sig_t *sigs;
  uint32_t sigs_n;
  pol_trie_node_t *glob; /* root at 0, NULL if no glob-filed rule */
  uint32_t glob_n;
  uint8_t glob_attrs[POL_A__COUNT];
  uint32_t glob_attrs_n;
  pol_trie_node_t *cidr; /* root at 0, NULL if no cidr-filed rule */
  uint32_t cidr_n;
  /* The first five levels of both tries (target, then attribute or family) in one hash
   * table: a request jumps straight to the node of its (trie, target, tag). */
  pol_trie_head_t *heads;
  uint32_t heads_mask;
} pol_index_t;

/* ---- the configuration ----------------------------------------------------------- */
struct pol_config {
  uint64_t seed; /* XXH3 seed of every hash table, random per compiled object */
  /* interned strings */
  char *chars;
  uint32_t chars_n, chars_cap;
  pol_span_t *strs;
  uint32_t strs_n, strs_cap;
  uint32_t *stab; /* intern table: string id + 1, 0 empty */
  uint32_t stab_mask;
  /* expressions and pools */
  pol_node_t *nodes;
  uint32_t nodes_n, nodes_cap;
  uint32_t *u32;
  uint32_t u32_n, u32_cap;
  double *nums;
  uint32_t nums_n, nums_cap;
  pol_cidr_t *cidrs;
  uint32_t cidrs_n, cidrs_cap;
  pol_rule_t *rules;
  uint32_t rules_n, rules_cap;
  /* blocks */
  pol_server_t server;
  pol_trust_t *trusts;
  uint32_t trusts_n, trusts_cap;
  pol_target_t *targets;
  uint32_t targets_n, targets_cap;
  uint32_t *name_tab; /* trust/target lookup: (kind << 31 | index) + 1, 0 empty */
  uint32_t name_tab_mask;
  /* every malloc'd block the public structs point into */
  void **owned;
  uint32_t owned_n, owned_cap;
  char policy_id[20];
  pol_index_t idx;
};

/* ---- allocation -------------------------------------------------------------------
 * Every allocation of the component goes through these, so that a test can make the Nth
 * one fail and check that loading reports "out of memory", returns NULL and leaks
 * nothing (tests/policy/failalloc_test.c). This is the component's only global state. */
typedef struct pol_testing {
  long fail_alloc_at; /* > 0: the allocation that many from now fails (once); 0: none */
} pol_testing_t;
#ifdef __cplusplus
extern thread_local pol_testing_t pol_testing;
#else
extern _Thread_local pol_testing_t pol_testing;
#endif

static inline bool pol_alloc_fails(void) {
  return pol_testing.fail_alloc_at > 0 && --pol_testing.fail_alloc_at == 0;
}
static inline void *pol_malloc(size_t n) { return pol_alloc_fails() ? NULL : malloc(n); }
static inline void *pol_calloc(size_t n, size_t m) { return pol_alloc_fails() ? NULL : calloc(n, m); }
static inline void *pol_realloc(void *p, size_t n) { return pol_alloc_fails() ? NULL : realloc(p, n); }
static inline void *pol_aligned_alloc(size_t a, size_t n) {
  return pol_alloc_fails() ? NULL : aligned_alloc(a, n);
}
static inline char *pol_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = (char *)pol_malloc(len + 1);
  if (d) {
    memcpy(d, s, len);
    d[len] = 0;
  }
  return d;
}
static inline char *pol_strdup(const char *s) { return pol_strndup(s, strlen(s)); }

/* ---- helpers shared by the modules ----------------------------------------------- */
/* Grows *p (elements of size elem) to hold need elements. false on overflow/OOM. */
bool pol_grow(void **p, uint32_t *cap, uint64_t need, size_t elem);
/* Interns s[0..n). POL_NONE on OOM. */
uint32_t pol_intern(pol_config_t *c, const char *s, size_t n);
/* The id of s if interned, else POL_NONE. */
uint32_t pol_intern_find(const pol_config_t *c, const char *s, size_t n);
static inline pol_str_t pol_sid(const pol_config_t *c, uint32_t id) {
  pol_str_t s = {c->chars + c->strs[id].off, c->strs[id].len};
  return s;
}
/* Takes ownership of a malloc'd block (freed with the config). false (and frees it) on OOM. */
bool pol_own(pol_config_t *c, void *p);

/* Kinds (bit per pol_kind_t) in which a client attribute exists. */
uint32_t pol_attr_kinds(pol_attr_id_t a);
#define POL_KINDS_ALL ((1u << POL_KIND__COUNT) - 1)

/* Expression evaluation (ref.c): true iff node n holds. No allocation. */
bool pol_node_eval(const pol_config_t *c, uint32_t n, const pol_client_t *cl,
                   const pol_context_t *ctx);
/* The rule matches the client and context (target not checked). */
bool pol_rule_matches(const pol_config_t *c, const pol_rule_t *r, const pol_client_t *cl,
                      const pol_context_t *ctx);
bool pol_rule_has_target(const pol_rule_t *r, const pol_config_t *c, uint32_t target);
/* glob with '*' and '?', whole-string match, linear time. */
bool pol_glob_match(const char *pat, size_t pn, const char *s, size_t sn);
/* Strict decimal number ("-12", "3.5"); false if s is not one. */
bool pol_parse_number(const char *s, size_t n, double *out);

/* The reference interpreter: evaluates every rule in order. Same contract as pol_eval. */
void pol_eval_ref(const pol_config_t *cfg, const pol_client_t *client, uint32_t target_index,
                  const pol_context_t *ctx, const pol_ask_t *ask, pol_decision_t *out);

/* Builds cfg->idx. false on OOM. */
bool pol_compile_index(pol_config_t *cfg);
void pol_index_free(pol_index_t *idx);

/* Bytes held by the compiled object (strings, nodes, pools, rules, index). */
size_t pol_config_bytes(const pol_config_t *cfg);

#ifdef __cplusplus
}
#endif
#endif
