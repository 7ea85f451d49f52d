/* Fuzz target: the HTTP/1.1 request parser. Properties: it never reads past the input,
 * consumes no more than it was given, and agrees with itself — a request it accepts
 * parses identically from exactly its own bytes, and every shorter prefix of it is
 * "incomplete", never accepted and never an error; and no accepted header value holds a
 * control byte other than HTAB (the guarantee of net/http.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http1.h"

static uint8_t body_a[4096], body_b[4096];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16384)
    return 0;
  static const idm_h1_limits_t lim = {2048, 2048, 16};
  static idm_h1_req_t a, b;
  idm_why_t why = {{0}};
  idm_err_t e = idm_h1_parse(&a, body_a, sizeof body_a, data, size, &lim, &why);
  if (e == IDM_ERR_HTTP_INCOMPLETE) {
    if (a.need <= size)
      abort();
    return 0;
  }
  if (e != IDM_OK) {
    if (!why.text[0])
      abort(); /* every refusal names its reason */
    return 0;
  }
  if (a.consumed == 0 || a.consumed > size || a.body_len > lim.body_max ||
      a.header_count > lim.headers_max)
    abort();
  for (uint32_t i = 0; i < a.header_count; i++)
    for (uint32_t k = 0; k < a.headers[i].value_len; k++) {
      uint8_t c = (uint8_t)a.headers[i].value[k];
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        abort(); /* net/http.h: no control byte but HTAB in a value */
    }
  /* Exactly its own bytes: same framing. */
  uint8_t *copy = malloc(a.consumed);
  memcpy(copy, data, a.consumed);
  if (idm_h1_parse(&b, body_b, sizeof body_b, copy, a.consumed, &lim, &why) != IDM_OK ||
      b.consumed != a.consumed || b.body_len != a.body_len ||
      (a.body_len && memcmp(a.body, b.body, a.body_len)) || b.header_count != a.header_count ||
      b.keep_alive != a.keep_alive)
    abort();
  /* Shorter prefixes (a sample of them) are incomplete. */
  for (size_t cut = a.consumed - 1;; cut = cut / 2) {
    idm_err_t p = idm_h1_parse(&b, body_b, sizeof body_b, copy, cut, &lim, &why);
    if (p != IDM_ERR_HTTP_INCOMPLETE)
      abort();
    if (cut == 0)
      break;
  }
  free(copy);
  return 0;
}
