/* Bump allocator. The only malloc is in idm_arena_init, at start-up. */
#include "core/arena.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

idm_err_t idm_arena_init(idm_arena_t *a, size_t cap) {
  memset(a, 0, sizeof *a);
  a->base = aligned_alloc(64, (cap + 63) & ~(size_t)63);
  if (!a->base)
    return IDM_ERR_NOMEM;
  a->cap = cap;
  return IDM_OK;
}

void idm_arena_cleanup(idm_arena_t *a) {
  free(a->base);
  memset(a, 0, sizeof *a);
}

void *idm_arena_alloc(idm_arena_t *a, size_t n, size_t align) {
  assert(align && (align & (align - 1)) == 0 && align <= 64);
  size_t start = (a->used + (align - 1)) & ~(align - 1);
  if (start < a->used || start > a->cap || n > a->cap - start) {
    a->failures++;
    return NULL;
  }
  a->used = start + n;
  if (a->used > a->high_water)
    a->high_water = a->used;
  return a->base + start;
}

void *idm_arena_zalloc(idm_arena_t *a, size_t n, size_t align) {
  void *p = idm_arena_alloc(a, n, align);
  if (p)
    memset(p, 0, n);
  return p;
}

char *idm_arena_strndup(idm_arena_t *a, const char *s, size_t n) {
  char *p = idm_arena_alloc(a, n + 1, 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}
