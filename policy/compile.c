/* The decision structure (first increment: none yet; pol_eval uses the reference). */
#include <stdlib.h>

#include "internal.h"

bool pol_compile_index(pol_config_t *cfg) {
  (void)cfg;
  return true;
}

void pol_index_free(pol_index_t *idx) { (void)idx; }
