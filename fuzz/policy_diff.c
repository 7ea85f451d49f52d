/* Fuzz target: differential evaluation. The input drives the random policy and request
 * generator of tests/policy/polgen.h; the compiled evaluator must agree exactly with the
 * reference interpreter (decision, deciding rules, scope, ttl) on every request. */
#include <stdint.h>
#include <stdlib.h>

#include "../tests/policy/polgen.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192)
    return 0;
  polgen_t g = {.data = data, .n = size};
  pg_buf_t b = {0};
  pg_policy(&g, &b, 60);
  pol_diag_t d;
  pol_config_t *c = pol_config_parse(b.p, b.n, "gen.conf", &d);
  if (c) {
    for (int q = 0; q < 64; q++) {
      pg_req_t r;
      pg_request(&g, pol_config_target_count(c), &r);
      pol_decision_t x, y;
      pol_eval(c, &r.client, r.target, &r.ctx, &r.ask, &x);
      pol_eval_ref(c, &r.client, r.target, &r.ctx, &r.ask, &y);
      char why[200];
      if (pg_same(&x, &y, why, sizeof why)) {
        fprintf(stderr, "disagreement: %s\n%s\n", why, b.p);
        abort();
      }
      if (g.pos >= g.n && q > 4)
        break;
    }
    pol_config_free(c);
  }
  free(b.p);
  return 0;
}
