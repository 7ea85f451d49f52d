/* Fuzz target: the AWS instance identity wrapper and document parser (idm_iid_parse).
 * Properties: a parse is deterministic; an accepted document has every identifier in its
 * AWS shape and a pendingTime that formats back to the very string it came from. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/internal.h"
#include "core/json.h"

static idm_arena_t arena;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!arena.base) {
    idm_json_init();
    if (idm_arena_init(&arena, 1 << 20) != IDM_OK)
      abort();
  }
  idm_arena_reset(&arena);
  idm_iid_t a, b;
  idm_why_t why;
  idm_err_t e1 = idm_iid_parse(&a, &arena, (const char *)data, size, &why);
  idm_err_t e2 = idm_iid_parse(&b, &arena, (const char *)data, size, &why);
  if (e1 != e2)
    abort();
  if (e1 != IDM_OK)
    return 0;
  if (a.account_len != 12 || a.region_len == 0 || a.instance_id_len < 10 ||
      memcmp(a.instance_id, "i-", 2) != 0 || memcmp(a.image_id, "ami-", 4) != 0 ||
      a.signature_len == 0 || a.pending_s < 0 || a.pending_s != b.pending_s ||
      a.document_len != b.document_len || memcmp(a.document, b.document, a.document_len) != 0)
    abort();
  time_t t = (time_t)a.pending_s;
  struct tm tm;
  char s[32];
  if (!gmtime_r(&t, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20 ||
      idm_iid_parse_time(s, 20) != a.pending_s)
    abort();
  return 0;
}
