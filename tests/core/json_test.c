/* core/json: idm_json_dumps_free releases json_dumps strings through jansson's allocator,
 * whichever hooks are installed (the bug it exists for: free() on a hooked block). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"

static int counted_frees;
static void *counting_malloc(size_t n) { return malloc(n); }
static void counting_free(void *p) {
  if (p)
    counted_frees++;
  free(p);
}

static json_t *sample(void) {
  json_t *o = json_object();
  json_object_set_new(o, "sub", json_string("spiffe://example.org/a"));
  json_object_set_new(o, "n", json_integer(7));
  return o;
}

Test(json, dumps_free_uses_the_installed_hooks) {
  idm_json_init();
  json_t *o = sample();
  char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_str_eq(s, "{\"n\":7,\"sub\":\"spiffe://example.org/a\"}");
  /* With idm_json_init's hooks the block has a header: free(s) would be a bad free. */
  idm_json_dumps_free(s);
  json_decref(o);
  idm_json_dumps_free(NULL);
}

Test(json, dumps_free_goes_through_jansson_free_not_libc) {
  json_set_alloc_funcs(counting_malloc, counting_free);
  counted_frees = 0;
  json_t *v = json_integer(0);
  char *s = json_dumps(v, JSON_ENCODE_ANY);
  cr_assert_str_eq(s, "0");
  int before = counted_frees;
  idm_json_dumps_free(s);
  cr_assert_eq(counted_frees, before + 1, "idm_json_dumps_free must call jansson's free hook");
  idm_json_dumps_free(NULL);
  cr_assert_eq(counted_frees, before + 1, "NULL must be ignored");
  json_decref(v);
  json_set_alloc_funcs(malloc, free);
}

Test(json, dumps_free_of_arena_string_is_a_no_op) {
  idm_json_init();
  idm_arena_t a;
  cr_assert_eq(idm_arena_init(&a, 4096), IDM_OK);
  idm_arena_t *old = idm_json_use_arena(&a);
  json_t *o = sample();
  char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  cr_assert_not_null(s);
  cr_assert_str_eq(s, "{\"n\":7,\"sub\":\"spiffe://example.org/a\"}");
  idm_json_dumps_free(s); /* arena block: released by the reset below */
  json_decref(o);
  idm_json_use_arena(old);
  idm_arena_cleanup(&a);
}
