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

/* idm_pool_size_for tells what an allocation really takes (the HTTP/2 budget counts it:
 * counting the bytes asked let a connection hold up to twice its mem_max, found by
 * fuzz/h2_session, corpus file mem_budget_block_rounding). */
Test(pool, size_for_is_the_block_taken) {
  idm_pool_t p;
  cr_assert_eq(idm_pool_init(&p, 4 << 20), IDM_OK);
  static const size_t sizes[] = {1, 2, 47, 48, 49, 63, 64, 65, 1000, 4096, 100000, 150000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *b = idm_pool_alloc(&p, sizes[i]);
    cr_assert_not_null(b);
    cr_assert_eq(idm_pool_size_for(sizes[i]), idm_pool_block_size(b), "n=%zu", sizes[i]);
    cr_assert_geq(idm_pool_size_for(sizes[i]), sizes[i]);
    idm_pool_free(&p, b);
  }
  cr_assert_eq(idm_pool_size_for((size_t)1 << IDM_POOL_MAX_SHIFT), 0); /* over the largest */
  cr_assert_null(idm_pool_alloc(&p, (size_t)1 << IDM_POOL_MAX_SHIFT));
  idm_pool_cleanup(&p);
}
