/* Fault injection: every allocation of a load, failed in turn, must give NULL with an
 * "out of memory" diagnostic, and leak nothing (ASan's leak check runs at exit in the
 * sanitizer build). A reload that fails this way keeps the old policy. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

Test(failalloc, every_allocation_of_the_example) {
  char path[1024];
  snprintf(path, sizeof path, "%s/examples/policy.conf", IDM_SRC_DIR);
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f);
  static char src[1 << 16];
  size_t n = fread(src, 1, sizeof src, f);
  fclose(f);
  long failures = 0;
  for (long i = 1;; i++) {
    pol_diag_t d;
    pol_testing.fail_alloc_at = i;
    pol_config_t *c = pol_config_parse(src, n, path, &d);
    bool injected = pol_testing.fail_alloc_at == 0;
    pol_testing.fail_alloc_at = 0;
    if (!injected) { /* fewer than i allocations: the load went through untouched */
      cr_assert_not_null(c, "%s", d.count ? d.text[0] : "");
      pol_config_free(c);
      break;
    }
    cr_assert_null(c, "allocation %ld failed but the load succeeded", i);
    cr_assert_eq(d.count, 1, "allocation %ld: %u diagnostics", i, d.count);
    cr_assert(strstr(d.text[0], "out of memory"), "allocation %ld: %s", i, d.text[0]);
    failures++;
  }
  cr_assert_gt(failures, 100, "only %ld allocations: is the hook wired?", failures);
}
