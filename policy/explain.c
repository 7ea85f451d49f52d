/* Explaining decisions (slow path: the CLI's `policy explain`, logs, tests).
 *
 * Conditions are printed back in the language's own syntax from the compiled nodes (the
 * source text is not kept). For a default deny, the closest permit is the one for the
 * requested target with the fewest failing top-level conditions (target, then each
 * conjunct of client, then each of when), then the most that held, then the rule written
 * first; its
 * first failing condition is what explain reports. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct sbuf {
  char *p;
  size_t cap, n;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void put(sbuf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (b->n < b->cap) {
    int w = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    b->n += w > 0 ? (size_t)w : 0;
    if (b->n >= b->cap)
      b->n = b->cap - 1;
  }
  va_end(ap);
}

static void put_str(sbuf_t *b, pol_str_t s) {
  put(b, "\"");
  for (uint32_t i = 0; i < s.len; i++) {
    char ch = s.ptr[i];
    if (ch == '"' || ch == '\\')
      put(b, "\\%c", ch);
    else if (ch == '\n')
      put(b, "\\n");
    else if (ch == '\t')
      put(b, "\\t");
    else
      put(b, "%c", ch);
  }
  put(b, "\"");
}

static void put_num(sbuf_t *b, double v) { put(b, "%.15g", v); }

static void put_cidr(sbuf_t *b, const pol_cidr_t *c) {
  char a[INET6_ADDRSTRLEN];
  inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof a);
  put(b, "%s/%u", a, c->prefix);
}

static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static void print_node(const pol_config_t *c, uint32_t n, sbuf_t *b, bool nested) {
  const pol_node_t *nd = &c->nodes[n];
  if (nd->op == POL_OP_AND || nd->op == POL_OP_OR) {
    if (nested)
      put(b, "(");
    for (uint32_t i = 0; i < nd->b; i++) {
      if (i)
        put(b, nd->op == POL_OP_AND ? " and " : " or ");
      print_node(c, c->u32[nd->a + i], b, true);
    }
    if (nested)
      put(b, ")");
    return;
  }
  if (nd->op == POL_OP_NOT) {
    put(b, "not ");
    print_node(c, nd->a, b, true);
    return;
  }
  if (nd->op == POL_OP_TRUE)
    return;
  switch (nd->src) {
  case POL_SRC_CLIENT: put(b, "%s", pol_attr_name((pol_attr_id_t)nd->attr)); break;
  case POL_SRC_CLAIM: put(b, "claims.%s", pol_sid(c, nd->name).ptr); break;
  case POL_SRC_POSTURE: put(b, "posture.%s", pol_sid(c, nd->name).ptr); break;
  case POL_SRC_IP: put(b, "source_ip"); break;
  case POL_SRC_TIME: put(b, "time"); break;
  case POL_SRC_DAY: put(b, "day"); break;
  default: break;
  }
  switch (nd->op) {
  case POL_OP_EQ:
  case POL_OP_NE:
    put(b, nd->op == POL_OP_EQ ? " == " : " != ");
    put_str(b, pol_sid(c, nd->a));
    break;
  case POL_OP_IN:
    put(b, " in [");
    for (uint32_t i = 0; i < nd->b; i++) {
      if (i)
        put(b, ", ");
      put_str(b, pol_sid(c, c->u32[nd->a + i]));
    }
    put(b, "]");
    break;
  case POL_OP_LIKE:
    put(b, " like ");
    put_str(b, pol_sid(c, nd->a));
    break;
  case POL_OP_NUM_EQ: put(b, " == "); put_num(b, c->nums[nd->a]); break;
  case POL_OP_NUM_NE: put(b, " != "); put_num(b, c->nums[nd->a]); break;
  case POL_OP_LT: put(b, " < "); put_num(b, c->nums[nd->a]); break;
  case POL_OP_LE: put(b, " <= "); put_num(b, c->nums[nd->a]); break;
  case POL_OP_GT: put(b, " > "); put_num(b, c->nums[nd->a]); break;
  case POL_OP_GE: put(b, " >= "); put_num(b, c->nums[nd->a]); break;
  case POL_OP_NUM_IN:
    put(b, " in [");
    for (uint32_t i = 0; i < nd->b; i++) {
      if (i)
        put(b, ", ");
      put_num(b, c->nums[nd->a + i]);
    }
    put(b, "]");
    break;
  case POL_OP_CIDR:
    put(b, " in ");
    if (nd->b > 1)
      put(b, "[");
    for (uint32_t i = 0; i < nd->b; i++) {
      if (i)
        put(b, ", ");
      put_cidr(b, &c->cidrs[nd->a + i]);
    }
    if (nd->b > 1)
      put(b, "]");
    break;
  case POL_OP_TIME:
    put(b, " in %02u:%02u..%02u:%02u", nd->a / 60, nd->a % 60, nd->b / 60, nd->b % 60);
    break;
  case POL_OP_DAY: {
    put(b, " in [");
    bool first = true;
    for (int d = 0; d < 7; d++)
      if (nd->a & (1u << d)) {
        put(b, "%s%s", first ? "" : ", ", days[d]);
        first = false;
      }
    put(b, "]");
    break;
  }
  default: break;
  }
}

size_t pol_rule_format(const pol_config_t *cfg, uint32_t rule, char *buf, size_t cap) {
  if (!cap)
    return 0;
  sbuf_t b = {buf, cap, 0};
  buf[0] = 0;
  if (rule >= cfg->rules_n)
    return 0;
  const pol_rule_t *r = &cfg->rules[rule];
  put(&b, "%s ", r->forbid ? "forbid" : "permit");
  put_str(&b, pol_sid(cfg, r->name));
  put(&b, " {");
  if (r->client != POL_NONE) {
    put(&b, " client ");
    print_node(cfg, r->client, &b, false);
    put(&b, ";");
  }
  if (r->targets_n == POL_TARGET_ANY) {
    put(&b, " target any;");
  } else {
    put(&b, " target ");
    for (uint32_t i = 0; i < r->targets_n; i++) {
      put(&b, "%s", i ? ", " : "");
      put_str(&b, (pol_str_t){cfg->targets[cfg->u32[r->targets_off + i]].name,
                              (uint32_t)strlen(cfg->targets[cfg->u32[r->targets_off + i]].name)});
    }
    put(&b, ";");
  }
  if (r->when != POL_NONE) {
    put(&b, " when ");
    print_node(cfg, r->when, &b, false);
    put(&b, ";");
  }
  if (r->scope_n) {
    put(&b, " scope \"");
    for (uint32_t i = 0; i < r->scope_n; i++)
      put(&b, "%s%s", i ? " " : "", pol_sid(cfg, cfg->u32[r->scope_off + i]).ptr);
    put(&b, "\";");
  }
  if (r->ttl_s)
    put(&b, " ttl %llds;", (long long)r->ttl_s);
  put(&b, " }");
  return b.n;
}

/* Conjuncts of a condition (flattening nested ands), at most max. */
static uint32_t conjuncts(const pol_config_t *c, uint32_t n, uint32_t *out, uint32_t k,
                          uint32_t max) {
  if (n == POL_NONE)
    return k;
  const pol_node_t *nd = &c->nodes[n];
  if (nd->op != POL_OP_AND) {
    if (k < max)
      out[k++] = n;
    return k;
  }
  for (uint32_t i = 0; i < nd->b; i++)
    k = conjuncts(c, c->u32[nd->a + i], out, k, max);
  return k;
}

void pol_explain_closest(const pol_config_t *cfg, const pol_client_t *client, uint32_t target,
                         const pol_context_t *ctx, pol_explain_t *out) {
  memset(out, 0, sizeof *out);
  out->rule = UINT32_MAX;
  uint32_t best_fail = UINT32_MAX;
  for (uint32_t i = 0; i < cfg->rules_n; i++) {
    const pol_rule_t *r = &cfg->rules[i];
    if (r->forbid)
      continue;
    uint32_t parts[256], n = conjuncts(cfg, r->client, parts, 0, 128);
    n = conjuncts(cfg, r->when, parts, n, 256);
    bool target_ok = pol_rule_has_target(r, cfg, target);
    uint32_t fail = target_ok ? 0 : 1, first = target_ok ? POL_NONE : UINT32_MAX - 1;
    for (uint32_t j = 0; j < n; j++)
      if (!pol_node_eval(cfg, parts[j], client, ctx)) {
        if (first == POL_NONE)
          first = parts[j];
        fail++;
      }
    uint32_t held = n + 1 - fail;
    if (fail == 0 || fail > best_fail || (fail == best_fail && held <= out->held))
      continue; /* a matching permit is not "closest": it matched */
    best_fail = fail;
    out->rule = i;
    out->total = n + 1;
    out->held = n + 1 - fail;
    sbuf_t b = {out->failed, sizeof out->failed, 0};
    out->failed[0] = 0;
    if (first == UINT32_MAX - 1) {
      put(&b, "target ");
      if (target < cfg->targets_n)
        put_str(&b, (pol_str_t){cfg->targets[target].name, (uint32_t)strlen(cfg->targets[target].name)});
      put(&b, " is not one of the rule's targets");
    } else {
      print_node(cfg, first, &b, false);
    }
  }
}
