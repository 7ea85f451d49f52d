#include "core/random.h"

#include <openssl/rand.h>
#include <stdlib.h>

idm_err_t idm_random_bytes(void *out, size_t n) {
  return RAND_bytes(out, n) == 1 ? IDM_OK : IDM_ERR_RANDOM;
}

uint64_t idm_random_u64(void) {
  uint64_t v;
  if (RAND_bytes((uint8_t *)&v, sizeof v) != 1)
    abort(); /* no safe fallback for a seed */
  return v;
}
