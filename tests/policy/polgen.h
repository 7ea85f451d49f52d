/* Random policies and requests for differential testing (tests/policy/diff_test.c,
 * fuzz/policy_diff.c). Header-only so that the fuzz targets can share it.
 *
 * Values come from small pools so that rules and requests collide often: the same
 * strings appear as equality values, list members, glob prefixes and request
 * attributes, CIDRs nest, time windows wrap midnight. Choices are drawn from a byte
 * stream when one is given (libFuzzer input), else from splitmix64. */
#ifndef IDM_TESTS_POLGEN_H
#define IDM_TESTS_POLGEN_H

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

typedef struct polgen {
  uint64_t s;
  const uint8_t *data; /* when set, choices come from here (0 once exhausted) */
  size_t n, pos;
} polgen_t;

static inline uint32_t pg_u(polgen_t *g, uint32_t n) {
  if (n <= 1)
    return 0;
  if (g->data) {
    uint32_t v = 0;
    if (g->pos < g->n)
      v = g->data[g->pos++];
    if (n > 256 && g->pos < g->n)
      v = v << 8 | g->data[g->pos++];
    return v % n;
  }
  uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)((z ^ (z >> 31)) % n);
}

typedef struct pg_buf {
  char *p;
  size_t n, cap;
} pg_buf_t;

__attribute__((format(printf, 2, 3))) static inline void pg_put(pg_buf_t *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (b->p && (size_t)w < b->cap - b->n) {
      b->n += (size_t)w;
      return;
    }
    b->cap = (b->cap + (size_t)w + 1) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p)
      abort();
  }
}

#define PG_N(a) (sizeof(a) / sizeof((a)[0]))
static const char *const pg_ns[] = {"a", "b", "ab", "abc", "pay", "pay-sandbox", "ba"};
static const char *const pg_sa[] = {"x", "y", "xy", "api", "a"};
static const char *const pg_repo[] = {"corp/app", "corp/lib", "other/app", "corp"};
static const char *const pg_sub[] = {"s1", "s2", "a", "corp/app"};
static const char *const pg_mail[] = {"ann@corp.example", "bob@x.org", "a", "corp"};
static const char *const pg_uid[] = {"0", "999", "1000", "65534", "abc", "-1", "7.5"};
static const char *const pg_glob[] = {"a*", "ab*", "*b", "a?", "pay*", "*", "corp/*", "?*x",
                                       "p*-sandbox", "abc"};
static const char *const pg_cidr[] = {"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24",
                                       "192.168.0.0/16", "fd00::/8", "0.0.0.0/0", "10.1.2.3",
                                       "::/0", "11.0.0.0/8"};
static const char *const pg_ip[] = {"10.1.2.3", "10.2.0.1", "192.168.5.5", "11.0.0.1",
                                     "fd00::1", "::1", "10.1.3.9"};
static const char *const pg_time[] = {"06:00..22:00", "22:00..06:00", "00:00..00:01",
                                       "12:30..24:00", "23:59..00:00"};
static const char *const pg_scope[] = {"a", "b", "c", "d", "e.f"};
static const char *const pg_trust[] = {"k8s", "k8s2", "gh", "u", "o"};
static const char *const pg_kind_of_trust[] = {"kubernetes", "kubernetes", "github", "unix",
                                                "oidc"};

static inline void pg_strlist(polgen_t *g, pg_buf_t *b, const char *const *pool, size_t n) {
  /* now and then a long list, so that a rule's key combinations exceed the expansion
   * bound and some attributes stay at the leaf */
  uint32_t k = pg_u(g, 8) ? 1 + pg_u(g, 3) : 1 + pg_u(g, 9);
  pg_put(b, "[");
  for (uint32_t i = 0; i < k; i++)
    pg_put(b, "%s\"%s\"", i ? ", " : "", pool[pg_u(g, (uint32_t)n)]);
  pg_put(b, "]");
}

/* One client atom for family f (0 k8s, 1 github, 2 unix, 3 oidc, 4 any). */
static inline void pg_atom(polgen_t *g, pg_buf_t *b, uint32_t f) {
  static const char *const ops[] = {"==", "!=", "in", "like"};
  const char *attr = "subject";
  const char *const *pool = pg_sub;
  size_t pn = PG_N(pg_sub);
  uint32_t pick = pg_u(g, 3);
  if (f == 0) {
    attr = pick == 0 ? "namespace" : pick == 1 ? "service_account" : "subject";
    pool = pick == 0 ? pg_ns : pick == 1 ? pg_sa : pg_sub;
    pn = pick == 0 ? PG_N(pg_ns) : pick == 1 ? PG_N(pg_sa) : PG_N(pg_sub);
  } else if (f == 1) {
    attr = pick ? "repository" : "ref";
    pool = pg_repo;
    pn = PG_N(pg_repo);
  } else if (f == 2) {
    if (pick < 2) {
      static const char *const nops[] = {"<", "<=", ">", ">=", "==", "!="};
      pg_put(b, "%s %s %s", pick ? "gid" : "uid", nops[pg_u(g, 6)], pg_uid[pg_u(g, 4)]);
      return;
    }
    attr = "exe";
  } else if (f == 3) {
    attr = pick ? "claims.email" : "claims.group";
    pool = pg_mail;
    pn = PG_N(pg_mail);
  }
  const char *op = ops[pg_u(g, 4)];
  pg_put(b, "%s %s ", attr, op);
  if (!strcmp(op, "in"))
    pg_strlist(g, b, pool, pn);
  else if (!strcmp(op, "like"))
    pg_put(b, "\"%s\"", pg_glob[pg_u(g, PG_N(pg_glob))]);
  else
    pg_put(b, "\"%s\"", pool[pg_u(g, (uint32_t)pn)]);
}

static inline void pg_client(polgen_t *g, pg_buf_t *b, uint32_t f, uint32_t depth) {
  uint32_t n = 1 + pg_u(g, 3);
  for (uint32_t i = 0; i < n; i++) {
    if (i)
      pg_put(b, " and ");
    uint32_t form = depth < 2 ? pg_u(g, 6) : 0;
    if (form == 4) {
      pg_put(b, "not ");
      pg_atom(g, b, f);
    } else if (form == 5) {
      pg_put(b, "(");
      pg_client(g, b, f, depth + 1);
      pg_put(b, " or ");
      pg_client(g, b, f, depth + 1);
      pg_put(b, ")");
    } else {
      pg_atom(g, b, f);
    }
  }
}

static inline void pg_when(polgen_t *g, pg_buf_t *b) {
  uint32_t n = 1 + pg_u(g, 3);
  for (uint32_t i = 0; i < n; i++) {
    if (i)
      pg_put(b, pg_u(g, 5) ? " and " : " or ");
    switch (pg_u(g, 6)) {
    case 0: pg_put(b, "source_ip in %s", pg_cidr[pg_u(g, PG_N(pg_cidr))]); break;
    case 1:
      pg_put(b, "source_ip in [%s, %s]", pg_cidr[pg_u(g, PG_N(pg_cidr))],
             pg_cidr[pg_u(g, PG_N(pg_cidr))]);
      break;
    case 2: pg_put(b, "time in %s", pg_time[pg_u(g, 4)]); break;
    case 3: pg_put(b, "day in [%s, %s]", pg_u(g, 2) ? "mon" : "sat", pg_u(g, 2) ? "sun" : "wed"); break;
    case 4: pg_put(b, "posture.score >= %u", pg_u(g, 10)); break;
    default: pg_put(b, "%sposture.tier == \"%s\"", pg_u(g, 3) ? "" : "not ", pg_u(g, 2) ? "gold" : "a"); break;
    }
  }
}

/* A whole policy: the five trusts, 1-5 targets, 1-nrules_max rules. */
static inline void pg_policy(polgen_t *g, pg_buf_t *b, uint32_t nrules_max) {
  b->n = 0;
  pg_put(b, "trust \"k8s\" { kind kubernetes\n issuer \"https://k\"\n jwks \"k\"\n audience \"a\" }\n"
            "trust \"k8s2\" { kind kubernetes\n issuer \"https://k2\"\n jwks \"k\"\n audience \"a\" }\n"
            "trust \"gh\" { kind github\n jwks \"g\"\n audience \"a\" }\n"
            "trust \"u\" { kind unix }\n"
            "trust \"o\" { kind oidc\n issuer \"https://o\"\n jwks \"o\"\n audience \"a\" }\n");
  uint32_t nt = 1 + pg_u(g, 5);
  for (uint32_t t = 0; t < nt; t++)
    pg_put(b, "target \"t%u\" { ttl %um }\n", t, 1 + pg_u(g, 10));
  uint32_t nr = 1 + pg_u(g, nrules_max);
  for (uint32_t r = 0; r < nr; r++) {
    bool forbid = pg_u(g, 4) == 0;
    pg_put(b, "%s \"r%u\" {\n", forbid ? "forbid" : "permit", r);
    if (pg_u(g, 6)) {
      uint32_t f = pg_u(g, 5);
      pg_put(b, " client ");
      uint32_t anchor = pg_u(g, 4);
      if (f < 4 && anchor == 0) {
        static const char *const tr[] = {"\"k8s\"", "\"gh\"", "\"u\"", "\"o\""};
        pg_put(b, "trust == %s and ", tr[f]);
      } else if (f == 0 && anchor == 1) {
        pg_put(b, "trust in [\"k8s\", \"k8s2\"] and ");
      } else if (f < 4 && anchor == 2) {
        static const char *const kd[] = {"kubernetes", "github", "unix", "oidc"};
        pg_put(b, "kind == %s and ", kd[f]);
      }
      pg_client(g, b, f, 0);
      pg_put(b, "\n");
    }
    if (!forbid || pg_u(g, 2)) {
      if (pg_u(g, 3) == 0) {
        pg_put(b, " target any\n");
      } else {
        uint32_t k = 1 + pg_u(g, 3);
        pg_put(b, " target ");
        for (uint32_t i = 0; i < k; i++)
          pg_put(b, "%s\"t%u\"", i ? ", " : "", pg_u(g, nt));
        pg_put(b, "\n");
      }
    }
    if (pg_u(g, 3) == 0) {
      pg_put(b, " when ");
      pg_when(g, b);
      pg_put(b, "\n");
    }
    if (!forbid && pg_u(g, 2)) {
      uint32_t k = 1 + pg_u(g, 3);
      pg_put(b, " scope \"");
      for (uint32_t i = 0; i < k; i++)
        pg_put(b, "%s%s", i ? " " : "", pg_scope[pg_u(g, PG_N(pg_scope))]);
      pg_put(b, "\"\n");
    }
    if (!forbid && pg_u(g, 3) == 0)
      pg_put(b, " ttl %us\n", 30 + 30 * pg_u(g, 12));
    pg_put(b, "}\n");
  }
}

typedef struct pg_req {
  pol_client_t client;
  pol_kv_t claims[2];
  pol_kv_t posture[2];
  pol_context_t ctx;
  pol_ask_t ask;
  char scope[64];
  uint32_t target;
} pg_req_t;

static inline pol_str_t pg_s(const char *x) { return (pol_str_t){x, (uint32_t)strlen(x)}; }
#define PG_S(x) pg_s(x)
static inline pol_str_t pg_pick(polgen_t *g, const char *const *pool, size_t n) {
  if (!pg_u(g, 4))
    return (pol_str_t){NULL, 0};
  return pg_s(pool[pg_u(g, (uint32_t)n)]);
}
#define PG_PICK(pool) pg_pick(g, (pool), PG_N(pool))

static inline void pg_request(polgen_t *g, uint32_t targets, pg_req_t *r) {
  memset(r, 0, sizeof *r);
  uint32_t ti = pg_u(g, PG_N(pg_trust));
  r->client.attr[POL_A_TRUST] = PG_S(pg_trust[ti]);
  r->client.attr[POL_A_KIND] = PG_S(pg_kind_of_trust[pg_u(g, 8) ? ti : pg_u(g, PG_N(pg_trust))]);
  r->client.attr[POL_A_SUBJECT] = PG_PICK(pg_sub);
  r->client.attr[POL_A_NAMESPACE] = PG_PICK(pg_ns);
  r->client.attr[POL_A_SERVICE_ACCOUNT] = PG_PICK(pg_sa);
  r->client.attr[POL_A_REPOSITORY] = PG_PICK(pg_repo);
  r->client.attr[POL_A_REF] = PG_PICK(pg_repo);
  r->client.attr[POL_A_UID] = PG_PICK(pg_uid);
  r->client.attr[POL_A_GID] = PG_PICK(pg_uid);
  r->client.attr[POL_A_EXE] = PG_PICK(pg_ns);
  r->claims[0] = (pol_kv_t){PG_S("email"), PG_S(pg_mail[pg_u(g, PG_N(pg_mail))])};
  r->claims[1] = (pol_kv_t){PG_S("group"), PG_S(pg_mail[pg_u(g, PG_N(pg_mail))])};
  r->client.claims = r->claims;
  r->client.claims_count = pg_u(g, 3);
  r->posture[0] = (pol_kv_t){PG_S("score"), PG_S(pg_uid[pg_u(g, PG_N(pg_uid))])};
  r->posture[1] = (pol_kv_t){PG_S("tier"), PG_S(pg_u(g, 2) ? "gold" : "a")};
  r->ctx.posture = r->posture;
  r->ctx.posture_count = pg_u(g, 3);
  r->ctx.now_s = 1795392000 + (int64_t)pg_u(g, 7 * 24) * 3600 + (int64_t)pg_u(g, 60) * 60;
  uint32_t ip = pg_u(g, PG_N(pg_ip) + 1);
  if (ip < PG_N(pg_ip)) {
    bool v6 = strchr(pg_ip[ip], ':') != NULL;
    r->ctx.source_family = v6 ? 6 : 4;
    inet_pton(v6 ? AF_INET6 : AF_INET, pg_ip[ip], r->ctx.source_ip);
  }
  uint32_t k = pg_u(g, 4);
  r->scope[0] = 0;
  for (uint32_t i = 0; i < k; i++) {
    strcat(r->scope, i ? " " : "");
    strcat(r->scope, pg_u(g, 6) ? pg_scope[pg_u(g, PG_N(pg_scope))] : "zz");
  }
  r->ask.scope = (pol_str_t){r->scope, (uint32_t)strlen(r->scope)};
  r->ask.ttl_s = pg_u(g, 3) ? 0 : (int64_t)(15 * pg_u(g, 40));
  r->target = pg_u(g, targets + 1); /* sometimes out of range */
}

/* 0 if both decisions are identical, else a description in why. */
static inline int pg_same(const pol_decision_t *a, const pol_decision_t *b, char *why, size_t cap) {
  if (a->outcome != b->outcome || a->allow != b->allow)
    return snprintf(why, cap, "outcome %d vs %d", a->outcome, b->outcome), 1;
  if (a->rule_count != b->rule_count ||
      memcmp(a->rules, b->rules, a->rule_count * sizeof a->rules[0]))
    return snprintf(why, cap, "rules differ (%u vs %u)", a->rule_count, b->rule_count), 1;
  if (a->scope_len != b->scope_len || strcmp(a->scope, b->scope))
    return snprintf(why, cap, "scope \"%.60s\" vs \"%.60s\"", a->scope, b->scope), 1;
  if (a->ttl_s != b->ttl_s)
    return snprintf(why, cap, "ttl %lld vs %lld", (long long)a->ttl_s, (long long)b->ttl_s), 1;
  return 0;
}

#endif
