/* idm_arena_t: a fixed-capacity bump allocator.
 *
 * Memory is reserved once, at start-up (idm_arena_init); allocation after that is a
 * pointer bump and never calls malloc, so an arena can back a request, a loop turn or a
 * parse. Running out is an ordinary error (NULL), which callers turn into
 * IDM_ERR_ARENA_FULL and shed the request. idm_arena_reset frees everything at once. */
#ifndef IDM_CORE_ARENA_H
#define IDM_CORE_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct idm_arena {
  uint8_t *base;        /* owned; cap bytes */
  size_t cap;           /* bytes */
  size_t used;          /* bytes; invariant used <= cap */
  size_t high_water;    /* most bytes ever used between resets, for sizing */
  size_t failures;      /* allocations refused since init (not reset): lets a caller tell
                         * "arena full" from the error a library reports for it (jansson
                         * reports a failed allocation as a syntax error) */
} idm_arena_t;

/* Reserves cap bytes (caller allocates the struct). IDM_ERR_NOMEM on failure. */
idm_err_t idm_arena_init(idm_arena_t *a, size_t cap);
/* Releases the memory; the arena may be re-initialised. Safe on a zeroed arena. */
void idm_arena_cleanup(idm_arena_t *a);

/* n bytes aligned to align (a power of two, <= 64), or NULL when the arena is full.
 * The memory is valid until the next reset; it is not zeroed. */
void *idm_arena_alloc(idm_arena_t *a, size_t n, size_t align);
/* Like idm_arena_alloc, zeroed. */
void *idm_arena_zalloc(idm_arena_t *a, size_t n, size_t align);
/* A NUL-terminated copy of s[0..n), or NULL when full. */
char *idm_arena_strndup(idm_arena_t *a, const char *s, size_t n);

/* Frees every allocation at once. */
static inline void idm_arena_reset(idm_arena_t *a) { a->used = 0; }

/* Saves and restores a position, for scratch allocations inside a longer-lived use. */
static inline size_t idm_arena_mark(const idm_arena_t *a) { return a->used; }
static inline void idm_arena_rewind(idm_arena_t *a, size_t mark) {
  if (mark <= a->used)
    a->used = mark;
}

#ifdef __cplusplus
}
#endif
#endif
