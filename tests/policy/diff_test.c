/* Differential property test: the compiled evaluator (pol_eval) must agree exactly with
 * the reference interpreter (pol_eval_ref), decision, scope, ttl and deciding rules, on
 * random policies and random requests. make fuzz runs the same property unbounded
 * (fuzz/policy_diff.c). */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "internal.h"
#include "polgen.h"

static void run(uint64_t seed, uint32_t policies, uint32_t requests, uint32_t rules_max,
                uint64_t *cases_out) {
  polgen_t g = {.s = seed};
  pg_buf_t b = {0};
  uint32_t compiled = 0;
  uint64_t cases = 0, allows = 0;
  for (uint32_t p = 0; p < policies; p++) {
    pg_policy(&g, &b, rules_max);
    pol_diag_t d;
    pol_config_t *c = pol_config_parse(b.p, b.n, "gen.conf", &d);
    if (!c)
      continue;
    compiled++;
    for (uint32_t q = 0; q < requests; q++) {
      pg_req_t r;
      pg_request(&g, pol_config_target_count(c), &r);
      pol_decision_t x, y;
      memset(&x, 0x11, sizeof x);
      memset(&y, 0x22, sizeof y);
      pol_eval(c, &r.client, r.target, &r.ctx, &r.ask, &x);
      pol_eval_ref(c, &r.client, r.target, &r.ctx, &r.ask, &y);
      char why[200];
      if (pg_same(&x, &y, why, sizeof why))
        cr_assert(false, "policy %u request %u: %s\n%s\nrequest: trust=%s ns=%.*s sa=%.*s target=%u "
                 "scope=\"%s\"", p, q, why, b.p, r.client.attr[POL_A_TRUST].ptr,
                 (int)r.client.attr[POL_A_NAMESPACE].len,
                 r.client.attr[POL_A_NAMESPACE].ptr ? r.client.attr[POL_A_NAMESPACE].ptr : "",
                 (int)r.client.attr[POL_A_SERVICE_ACCOUNT].len,
                 r.client.attr[POL_A_SERVICE_ACCOUNT].ptr ? r.client.attr[POL_A_SERVICE_ACCOUNT].ptr : "",
                 r.target, r.scope);
      cases++;
      allows += x.allow;
    }
    pol_config_free(c);
  }
  free(b.p);
  /* the generator must produce mostly valid policies and both outcomes, or the
   * comparison proves little */
  cr_assert_gt(compiled, policies * 8 / 10, "only %u of %u policies compiled", compiled, policies);
  cr_assert_gt(allows, cases / 50, "only %llu allows in %llu cases", (unsigned long long)allows,
               (unsigned long long)cases);
  cr_assert_lt(allows, cases - cases / 50);
  *cases_out = cases;
}

#ifdef IDM_SANITIZED
#define SCALE 1
#else
#define SCALE 4
#endif

Test(diff, small_policies_many_requests) {
  uint64_t n;
  run(1, 1000 * SCALE, 100, 12, &n);
  cr_assert_geq(n, 80000u * SCALE);
}

Test(diff, larger_policies) {
  uint64_t n;
  run(2, 100 * SCALE, 200, 80, &n);
}

Test(diff, seeds_from_environment) {
  /* IDM_POLICY_SEED=N reruns one seed; the default is fixed so failures reproduce */
  const char *s = getenv("IDM_POLICY_SEED");
  uint64_t n;
  run(s ? strtoull(s, NULL, 10) : 3, 200, 50, 30, &n);
}
