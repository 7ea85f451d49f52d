/* Fuzz target: strict base64url decoding. Property: whatever decodes re-encodes to
 * exactly the input (one canonical encoding per byte string). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096)
    return 0;
  uint8_t out[4096];
  size_t n = 0;
  if (idm_b64url_decode(out, sizeof out, &n, (const char *)data, size, NULL) != IDM_OK)
    return 0;
  char back[6000];
  size_t m = idm_b64url_encode(back, sizeof back, out, n);
  if (m != size || memcmp(back, data, size) != 0)
    abort();
  return 0;
}
