/* idm_pool_t: a per-thread, fixed-region allocator with power-of-two size classes.
 *
 * It serves every allocation of a thread's HTTP/2 sessions (through nghttp2_mem) and the
 * response bodies that wait in them, so the request path never calls malloc and the
 * thread's memory is bounded by the region reserved at start-up. Blocks are carved from
 * the region by a bump pointer and recycled through one free list per class; nothing is
 * ever returned to the region. Exhaustion is an ordinary NULL that sheds the connection
 * that asked.
 *
 * Not thread-safe: one pool per thread. Blocks are 16-byte aligned.
 */
#ifndef IDM_NET_POOL_H
#define IDM_NET_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IDM_POOL_MIN_SHIFT 6   /* 64 bytes */
#define IDM_POOL_MAX_SHIFT 18  /* 256 KiB: larger requests fail */
#define IDM_POOL_CLASSES (IDM_POOL_MAX_SHIFT - IDM_POOL_MIN_SHIFT + 1)

typedef struct idm_pool {
  uint8_t *base;            /* mmap'd, cap bytes, MAP_NORESERVE: pages cost when touched */
  size_t cap;               /* bytes */
  size_t bump;              /* bytes carved so far; <= cap */
  void *free_list[IDM_POOL_CLASSES];
  size_t in_use;            /* bytes of live blocks (class sizes, headers included) */
  size_t in_use_max;        /* high water of in_use */
  uint64_t failures;        /* allocations refused */
} idm_pool_t;

/* Reserves cap bytes of address space. IDM_ERR_NOMEM on failure. */
idm_err_t idm_pool_init(idm_pool_t *p, size_t cap);
void idm_pool_cleanup(idm_pool_t *p);

/* n bytes (n > 0), or NULL when n is over the largest class or the region is spent. */
void *idm_pool_alloc(idm_pool_t *p, size_t n);
/* NULL is a no-op. */
void idm_pool_free(idm_pool_t *p, void *ptr);
/* realloc semantics (ptr NULL: alloc; n 0: free and NULL). On failure ptr is untouched. */
void *idm_pool_realloc(idm_pool_t *p, void *ptr, size_t n);
/* Usable bytes of a live block (>= what was asked). */
size_t idm_pool_block_size(const void *ptr);
/* Usable bytes of the block idm_pool_alloc(n) would return; 0 when n is over the largest
 * class. For budgets that must hold what is really taken, not what is asked. */
size_t idm_pool_size_for(size_t n);

#ifdef __cplusplus
}
#endif
#endif
