#include <criterion/criterion.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"

Test(error, codes_unique_negative_and_named) {
  size_t n = idm_err_count();
  cr_assert_gt(n, 1);
  for (size_t i = 1; i < n; i++) {
    idm_err_t a = idm_err_at(i);
    cr_assert_lt((int)a, 0, "%s must be negative", idm_err_name(a));
    cr_assert_str_neq(idm_err_str(a), "unknown error");
    for (size_t j = i + 1; j < n; j++)
      cr_assert_neq(a, idm_err_at(j), "%s and %s share a code", idm_err_name(a),
                    idm_err_name(idm_err_at(j)));
  }
  cr_assert_str_eq(idm_err_name(IDM_ERR_B64), "IDM_ERR_B64");
  cr_assert_str_eq(idm_err_name((idm_err_t)-999999), "IDM_ERR_UNKNOWN");
}

Test(error, fail_formats_reason) {
  idm_why_t why = {{0}};
  cr_assert_eq(idm_fail(&why, IDM_ERR_IO, "x %d", 42), IDM_ERR_IO);
  cr_assert_str_eq(why.text, "x 42");
  cr_assert_str_eq(idm_why_str(&why, IDM_ERR_IO), "x 42");
  idm_why_clear(&why);
  cr_assert_str_eq(idm_why_str(&why, IDM_ERR_IO), idm_err_str(IDM_ERR_IO));
  cr_assert_eq(idm_fail(NULL, IDM_ERR_IO, "ignored"), IDM_ERR_IO);
}

Test(arena, bump_align_full_reset) {
  idm_arena_t a;
  cr_assert_eq(idm_arena_init(&a, 128), IDM_OK);
  uint8_t *p = idm_arena_alloc(&a, 3, 1);
  uint8_t *q = idm_arena_alloc(&a, 8, 8);
  cr_assert_not_null(p);
  cr_assert_eq(((uintptr_t)q) % 8, 0);
  cr_assert_null(idm_arena_alloc(&a, 1000, 1));
  cr_assert_null(idm_arena_alloc(&a, SIZE_MAX, 1));
  size_t m = idm_arena_mark(&a);
  cr_assert_not_null(idm_arena_alloc(&a, 16, 16));
  idm_arena_rewind(&a, m);
  cr_assert_eq(a.used, m);
  char *s = idm_arena_strndup(&a, "hello", 5);
  cr_assert_str_eq(s, "hello");
  idm_arena_reset(&a);
  cr_assert_eq(a.used, 0);
  cr_assert_geq(a.high_water, 16);
  idm_arena_cleanup(&a);
  idm_arena_cleanup(&a); /* idempotent on a cleaned arena */
}

/* A FIFO where a file is expected (a key file, a JWK Set, a configuration) is refused at
 * once as not a regular file; the open used to block until a writer came. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

Test(file, fifo_refused_without_blocking) {
  char path[128];
  snprintf(path, sizeof path, "/tmp/idm_core_test_fifo_%d", (int)getpid());
  unlink(path);
  cr_assert_eq(mkfifo(path, 0600), 0);
  char *buf = NULL;
  size_t n = 0;
  idm_why_t why = {{0}};
  alarm(10); /* a regression blocks in open: SIGALRM fails the test */
  cr_assert_eq(idm_file_read(path, 1024, &buf, &n, &why), IDM_ERR_IO);
  cr_assert(strstr(why.text, "not a regular file"), "%s", why.text);
  memset(&why, 0, sizeof why);
  cr_assert_eq(idm_file_read_secret(path, 1024, &buf, &n, &why), IDM_ERR_IO);
  alarm(0);
  cr_assert_null(buf);
  unlink(path);
}
