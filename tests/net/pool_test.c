/* The per-thread pool: classes, reuse, realloc, exhaustion. */
#include <criterion/criterion.h>
#include <string.h>

#include "net/pool.h"

Test(pool, alloc_free_reuse) {
  idm_pool_t p;
  cr_assert_eq(idm_pool_init(&p, 1 << 20), IDM_OK);
  void *a = idm_pool_alloc(&p, 10);
  cr_assert_not_null(a);
  cr_assert_geq(idm_pool_block_size(a), 10);
  cr_assert_eq((uintptr_t)a % 16, 0);
  idm_pool_free(&p, a);
  void *b = idm_pool_alloc(&p, 20);
  cr_assert_eq(a, b, "same class is reused");
  idm_pool_free(&p, b);
  cr_assert_eq(p.in_use, 0);
  idm_pool_cleanup(&p);
}

Test(pool, realloc_keeps_bytes) {
  idm_pool_t p;
  idm_pool_init(&p, 1 << 20);
  char *a = idm_pool_alloc(&p, 30);
  memcpy(a, "0123456789", 10);
  char *b = idm_pool_realloc(&p, a, 5000);
  cr_assert_not_null(b);
  cr_assert(!memcmp(b, "0123456789", 10));
  idm_pool_free(&p, b);
  cr_assert_eq(p.in_use, 0);
  idm_pool_cleanup(&p);
}

Test(pool, exhaustion_is_null) {
  idm_pool_t p;
  idm_pool_init(&p, 64 * 1024);
  int n = 0;
  while (idm_pool_alloc(&p, 1000))
    n++;
  cr_assert_eq(n, 64, "1 KiB class blocks in 64 KiB: %d", n);
  cr_assert_null(idm_pool_alloc(&p, (size_t)1 << 20), "over the largest class");
  cr_assert_gt(p.failures, 0);
  idm_pool_cleanup(&p);
}
