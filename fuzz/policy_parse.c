/* Fuzz target: the configuration parser and compiler. Properties: never crash, leak or
 * hang; a rejected file has at least one diagnostic, each of the form
 * "file:line:col: message\n<line>\n<caret>"; an accepted file's compiled evaluator agrees
 * with the reference interpreter on a few requests built from the file's own names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536)
    return 0;
  pol_diag_t d;
  pol_config_t *c = pol_config_parse((const char *)data, size, "f.conf", &d);
  if (!c) {
    if (d.count == 0)
      abort();
    for (uint32_t i = 0; i < d.count && i < POL_DIAG_MAX; i++) {
      if (strncmp(d.text[i], "f.conf:", 7) != 0 && strncmp(d.text[i], "f.conf: out of memory", 21) != 0)
        abort();
      if (!strchr(d.text[i], '^') && !strstr(d.text[i], "out of memory"))
        abort();
    }
    return 0;
  }
  /* every rule prints back, terminated, within its buffer */
  for (uint32_t r = 0; r < pol_config_rule_count(c); r++) {
    char buf[300];
    size_t n = pol_rule_format(c, r, buf, sizeof buf);
    if (n >= sizeof buf || strlen(buf) != n)
      abort();
  }
  /* requests: every string of the file as every attribute value, for every target */
  uint32_t nt = pol_config_target_count(c);
  for (uint32_t s = 0; s < c->strs_n && s < 64; s++) {
    pol_str_t v = pol_sid(c, s);
    pol_client_t cl = {0};
    for (int a = 0; a < POL_A__COUNT; a++)
      cl.attr[a] = (s + (uint32_t)a) % 3 ? v : (pol_str_t){NULL, 0};
    pol_kv_t kv[2] = {{pol_sid(c, s), v}, {v, pol_sid(c, (s + 1) % c->strs_n)}};
    cl.claims = kv;
    cl.claims_count = 2;
    pol_context_t ctx = {.now_s = (int64_t)s * 7919 * 60, .source_family = (uint8_t)(s % 2 ? 4 : 6),
                         .posture = kv, .posture_count = 2};
    memset(ctx.source_ip, (int)(s * 37), sizeof ctx.source_ip);
    pol_ask_t ask = {s % 4 == 0 ? v : (pol_str_t){NULL, 0}, (int64_t)(s % 5) * 60};
    for (uint32_t t = 0; t < nt + 1 && t < 8; t++) {
      pol_decision_t a, b;
      pol_eval(c, &cl, t, &ctx, &ask, &a);
      pol_eval_ref(c, &cl, t, &ctx, &ask, &b);
      if (a.outcome != b.outcome || a.rule_count != b.rule_count || a.ttl_s != b.ttl_s ||
          memcmp(a.rules, b.rules, a.rule_count * sizeof a.rules[0]) != 0 ||
          strcmp(a.scope, b.scope) != 0)
        abort();
      if (a.outcome == POL_DENY_DEFAULT && t < nt) {
        pol_explain_t ex;
        pol_explain_closest(c, &cl, t, &ctx, &ex);
        if (ex.rule != UINT32_MAX && (ex.held >= ex.total || strlen(ex.failed) >= sizeof ex.failed))
          abort();
      }
    }
  }
  pol_config_free(c);
  return 0;
}
