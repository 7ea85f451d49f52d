/* Leaf evaluation of conditions, and the reference interpreter.
 *
 * pol_node_eval is the one definition of what a condition means; both evaluators use it
 * at their leaves. pol_eval_ref is the obviously-correct baseline the differential tests
 * and benchmarks compare the compiled evaluator against: it visits every rule in file
 * order and assembles the decision with plain string comparisons, sharing nothing with
 * the fast path's index or its decision assembly (eval.c). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define K(k) (1u << POL_KIND_##k)
uint32_t pol_attr_kinds(pol_attr_id_t a) {
  switch (a) {
  case POL_A_TRUST:
  case POL_A_KIND:
  case POL_A_SUBJECT: return POL_KINDS_ALL;
  case POL_A_NAMESPACE:
  case POL_A_SERVICE_ACCOUNT:
  case POL_A_POD:
  case POL_A_NODE: return K(KUBERNETES);
  case POL_A_REPOSITORY:
  case POL_A_REPOSITORY_OWNER:
  case POL_A_REF_TYPE:
  case POL_A_WORKFLOW:
  case POL_A_ACTOR:
  case POL_A_EVENT_NAME: return K(GITHUB);
  case POL_A_REF:
  case POL_A_ENVIRONMENT: return K(GITHUB) | K(GITLAB);
  case POL_A_PROJECT_PATH:
  case POL_A_NAMESPACE_PATH: return K(GITLAB);
  case POL_A_SPIFFE_ID:
  case POL_A_TRUST_DOMAIN: return K(SPIFFE);
  case POL_A_ACCOUNT:
  case POL_A_REGION:
  case POL_A_INSTANCE_ID:
  case POL_A_IMAGE_ID:
  case POL_A_INSTANCE_TYPE: return K(AWS_IID);
  case POL_A_TOKEN_NAME: return K(JOIN_TOKEN);
  case POL_A_UID:
  case POL_A_GID:
  case POL_A_EXE:
  case POL_A_EXE_SHA256: return K(UNIX);
  default: return 0;
  }
}
#undef K

bool pol_parse_number(const char *s, size_t n, double *out) {
  if (!s || n == 0 || n > 32)
    return false;
  size_t i = 0;
  if (s[0] == '-')
    i++;
  size_t d0 = i;
  while (i < n && s[i] >= '0' && s[i] <= '9')
    i++;
  if (i == d0)
    return false;
  if (i < n && s[i] == '.') {
    size_t f0 = ++i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == f0)
      return false;
  }
  if (i != n)
    return false;
  /* by hand, not strtod: no locale (a ',' decimal point) and nothing that might allocate;
   * literals and request values go through the same code, so they compare consistently */
  double v = 0, scale = 1;
  size_t j = d0;
  for (; j < n && s[j] != '.'; j++)
    v = v * 10 + (s[j] - '0');
  for (j++; j < n; j++) {
    scale /= 10;
    v += (s[j] - '0') * scale;
  }
  *out = s[0] == '-' ? -v : v;
  return true;
}

/* Greedy glob with one backtrack point: '*' any run, '?' one byte. */
bool pol_glob_match(const char *pat, size_t pn, const char *s, size_t sn) {
  size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
  while (i < sn) {
    if (p < pn && (pat[p] == '?' || pat[p] == s[i])) {
      p++;
      i++;
    } else if (p < pn && pat[p] == '*') {
      star = p++;
      mark = i;
    } else if (star != SIZE_MAX) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pn && pat[p] == '*')
    p++;
  return p == pn;
}

static pol_str_t lookup_kv(const pol_config_t *c, uint32_t name, const pol_kv_t *kv, uint32_t n) {
  pol_str_t k = pol_sid(c, name);
  for (uint32_t i = 0; i < n; i++)
    if (kv[i].name.ptr && kv[i].name.len == k.len && memcmp(kv[i].name.ptr, k.ptr, k.len) == 0)
      return kv[i].value;
  return (pol_str_t){NULL, 0};
}

static bool str_eq(pol_str_t v, pol_str_t s) {
  return v.len == s.len && memcmp(v.ptr, s.ptr, s.len) == 0;
}

static bool cidr_has(const pol_cidr_t *cd, const pol_context_t *ctx) {
  if (cd->family != ctx->source_family)
    return false;
  uint32_t full = cd->prefix / 8, rest = cd->prefix % 8;
  if (memcmp(cd->addr, ctx->source_ip, full) != 0)
    return false;
  if (!rest)
    return true;
  uint8_t m = (uint8_t)(0xff << (8 - rest));
  return (cd->addr[full] & m) == (ctx->source_ip[full] & m);
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

bool pol_node_eval(const pol_config_t *c, uint32_t n, const pol_client_t *cl,
                   const pol_context_t *ctx) {
  const pol_node_t *nd = &c->nodes[n];
  switch (nd->op) {
  case POL_OP_TRUE: return true;
  case POL_OP_AND:
    for (uint32_t i = 0; i < nd->b; i++)
      if (!pol_node_eval(c, c->u32[nd->a + i], cl, ctx))
        return false;
    return true;
  case POL_OP_OR:
    for (uint32_t i = 0; i < nd->b; i++)
      if (pol_node_eval(c, c->u32[nd->a + i], cl, ctx))
        return true;
    return false;
  case POL_OP_NOT: return !pol_node_eval(c, nd->a, cl, ctx);
  case POL_OP_CIDR:
    for (uint32_t i = 0; i < nd->b; i++)
      if (cidr_has(&c->cidrs[nd->a + i], ctx))
        return true;
    return false;
  case POL_OP_TIME: {
    int64_t day = floor_div(ctx->now_s, 86400);
    uint32_t m = (uint32_t)((ctx->now_s - day * 86400) / 60);
    return nd->a < nd->b ? (m >= nd->a && m < nd->b) : (m >= nd->a || m < nd->b);
  }
  case POL_OP_DAY: {
    int64_t day = floor_div(ctx->now_s, 86400);
    uint32_t dow = (uint32_t)(((day % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
    return (nd->a >> dow) & 1;
  }
  default: break;
  }
  pol_str_t v;
  if (nd->src == POL_SRC_CLIENT)
    v = cl->attr[nd->attr];
  else if (nd->src == POL_SRC_CLAIM)
    v = lookup_kv(c, nd->name, cl->claims, cl->claims_count);
  else
    v = lookup_kv(c, nd->name, ctx->posture, ctx->posture_count);
  if (!v.ptr)
    return false; /* an absent attribute makes its comparison false */
  switch (nd->op) {
  case POL_OP_EQ: return str_eq(v, pol_sid(c, nd->a));
  case POL_OP_NE: return !str_eq(v, pol_sid(c, nd->a));
  case POL_OP_IN:
    for (uint32_t i = 0; i < nd->b; i++)
      if (str_eq(v, pol_sid(c, c->u32[nd->a + i])))
        return true;
    return false;
  case POL_OP_LIKE: {
    pol_str_t g = pol_sid(c, nd->a);
    return pol_glob_match(g.ptr, g.len, v.ptr, v.len);
  }
  default: break;
  }
  double x;
  if (!pol_parse_number(v.ptr, v.len, &x))
    return false;
  switch (nd->op) {
  case POL_OP_NUM_EQ: return x == c->nums[nd->a];
  case POL_OP_NUM_NE: return x != c->nums[nd->a];
  case POL_OP_NUM_IN:
    for (uint32_t i = 0; i < nd->b; i++)
      if (x == c->nums[nd->a + i])
        return true;
    return false;
  case POL_OP_LT: return x < c->nums[nd->a];
  case POL_OP_LE: return x <= c->nums[nd->a];
  case POL_OP_GT: return x > c->nums[nd->a];
  case POL_OP_GE: return x >= c->nums[nd->a];
  default: return false;
  }
}

bool pol_rule_has_target(const pol_rule_t *r, const pol_config_t *c, uint32_t target) {
  if (r->targets_n == POL_TARGET_ANY)
    return true;
  const uint32_t *v = c->u32 + r->targets_off;
  uint32_t lo = 0, hi = r->targets_n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (v[mid] < target)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < r->targets_n && v[lo] == target;
}

bool pol_rule_matches(const pol_config_t *c, const pol_rule_t *r, const pol_client_t *cl,
                      const pol_context_t *ctx) {
  return (r->client == POL_NONE || pol_node_eval(c, r->client, cl, ctx)) &&
         (r->when == POL_NONE || pol_node_eval(c, r->when, cl, ctx));
}

/* ---- the reference interpreter ---------------------------------------------------- */
static bool ref_match(const pol_config_t *c, uint32_t i, uint32_t t, const pol_client_t *cl,
                      const pol_context_t *ctx) {
  const pol_rule_t *r = &c->rules[i];
  return pol_rule_has_target(r, c, t) && pol_rule_matches(c, r, cl, ctx);
}

static bool permit_grants(const pol_config_t *c, const pol_rule_t *r, const char *tok, size_t n) {
  for (uint32_t j = 0; j < r->scope_n; j++) {
    pol_str_t s = pol_sid(c, c->u32[r->scope_off + j]);
    if (s.len == n && memcmp(s.ptr, tok, n) == 0)
      return true;
  }
  return false;
}

/* Is tok already one of the space-separated words of out? */
static bool has_word(const char *out, size_t len, const char *tok, size_t n) {
  size_t i = 0;
  while (i < len) {
    size_t e = i;
    while (e < len && out[e] != ' ')
      e++;
    if (e - i == n && memcmp(out + i, tok, n) == 0)
      return true;
    i = e + 1;
  }
  return false;
}

static bool append_word(pol_decision_t *out, const char *tok, size_t n) {
  size_t need = out->scope_len + (out->scope_len ? 1 : 0) + n;
  if (need >= POL_SCOPE_MAX)
    return false;
  if (out->scope_len)
    out->scope[out->scope_len++] = ' ';
  memcpy(out->scope + out->scope_len, tok, n);
  out->scope_len += (uint32_t)n;
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

void pol_eval_ref(const pol_config_t *c, const pol_client_t *cl, uint32_t t,
                  const pol_context_t *ctx, const pol_ask_t *ask, pol_decision_t *out) {
  out->rule_count = 0;
  deny(out, POL_DENY_DEFAULT);
  if (t >= c->targets_n)
    return;
  uint32_t forbids = 0, permits = 0;
  for (uint32_t i = 0; i < c->rules_n; i++) {
    if (!c->rules[i].forbid || !ref_match(c, i, t, cl, ctx))
      continue;
    if (forbids++ < POL_DECISION_RULES_MAX)
      out->rules[out->rule_count++] = i;
  }
  if (forbids) {
    deny(out, POL_DENY_FORBID);
    return;
  }
  int64_t ttl = c->targets[t].ttl_s;
  for (uint32_t i = 0; i < c->rules_n; i++) {
    if (c->rules[i].forbid || !ref_match(c, i, t, cl, ctx))
      continue;
    if (permits++ < POL_DECISION_RULES_MAX)
      out->rules[out->rule_count++] = i;
    if (c->rules[i].ttl_s && c->rules[i].ttl_s < ttl)
      ttl = c->rules[i].ttl_s;
  }
  if (!permits)
    return;
  if (ask && ask->ttl_s > 0 && ask->ttl_s < ttl)
    ttl = ask->ttl_s;
  const char *rq = ask && ask->scope.ptr ? ask->scope.ptr : "";
  size_t rn = ask && ask->scope.ptr ? ask->scope.len : 0;
  bool requested = false;
  for (size_t i = 0; i < rn;) {
    while (i < rn && rq[i] == ' ')
      i++;
    size_t s = i;
    while (i < rn && rq[i] != ' ')
      i++;
    if (i == s)
      break;
    requested = true;
    bool granted = false;
    for (uint32_t r = 0; r < c->rules_n && !granted; r++)
      granted = !c->rules[r].forbid && ref_match(c, r, t, cl, ctx) &&
                permit_grants(c, &c->rules[r], rq + s, i - s);
    if (!granted) {
      deny(out, POL_DENY_SCOPE);
      return;
    }
    if (!has_word(out->scope, out->scope_len, rq + s, i - s) &&
        !append_word(out, rq + s, i - s)) {
      deny(out, POL_DENY_SCOPE);
      return;
    }
  }
  if (!requested) {
    for (uint32_t r = 0; r < c->rules_n; r++) {
      if (c->rules[r].forbid || !ref_match(c, r, t, cl, ctx))
        continue;
      for (uint32_t j = 0; j < c->rules[r].scope_n; j++) {
        pol_str_t s = pol_sid(c, c->u32[c->rules[r].scope_off + j]);
        if (!has_word(out->scope, out->scope_len, s.ptr, s.len) &&
            !append_word(out, s.ptr, s.len)) {
          deny(out, POL_DENY_SCOPE);
          return;
        }
      }
    }
  }
  out->outcome = POL_ALLOW;
  out->allow = true;
  out->ttl_s = ttl;
}
