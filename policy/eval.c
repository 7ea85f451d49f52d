/* The evaluator (first increment: the reference interpreter). */
#include "internal.h"

void pol_eval(const pol_config_t *cfg, const pol_client_t *client, uint32_t target_index,
              const pol_context_t *ctx, const pol_ask_t *ask, pol_decision_t *out) {
  pol_eval_ref(cfg, client, target_index, ctx, ask, out);
}
