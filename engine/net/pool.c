/* Size-class pool over one reserved region. Each block carries a 16-byte header holding
 * its class, so free and realloc need no size from the caller (nghttp2_mem gives none). */
#include "net/pool.h"

#include <string.h>
#include <sys/mman.h>

#define HDR 16

idm_err_t idm_pool_init(idm_pool_t *p, size_t cap) {
  memset(p, 0, sizeof *p);
  void *m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (m == MAP_FAILED)
    return IDM_ERR_NOMEM;
  p->base = m;
  p->cap = cap;
  return IDM_OK;
}

void idm_pool_cleanup(idm_pool_t *p) {
  if (p->base)
    munmap(p->base, p->cap);
  memset(p, 0, sizeof *p);
}

static int class_of(size_t n) {
  size_t need = n + HDR;
  if (need <= ((size_t)1 << IDM_POOL_MIN_SHIFT))
    return 0;
  int shift = 64 - __builtin_clzll((unsigned long long)(need - 1)); /* ceil(log2(need)) */
  int c = shift - IDM_POOL_MIN_SHIFT;
  return c < IDM_POOL_CLASSES ? c : -1;
}

void *idm_pool_alloc(idm_pool_t *p, size_t n) {
  int c = n ? class_of(n) : -1;
  if (c < 0) {
    p->failures++;
    return NULL;
  }
  size_t sz = (size_t)1 << (IDM_POOL_MIN_SHIFT + c);
  uint8_t *b = p->free_list[c];
  if (b) {
    memcpy(&p->free_list[c], b + HDR, sizeof(void *));
  } else {
    if (p->cap - p->bump < sz) {
      p->failures++;
      return NULL;
    }
    b = p->base + p->bump;
    p->bump += sz;
  }
  *(uint32_t *)b = (uint32_t)c;
  *(uint32_t *)(b + 4) = 0x706f6f6cu; /* "pool": catches frees of foreign pointers */
  p->in_use += sz;
  if (p->in_use > p->in_use_max)
    p->in_use_max = p->in_use;
  return b + HDR;
}

void idm_pool_free(idm_pool_t *p, void *ptr) {
  if (!ptr)
    return;
  uint8_t *b = (uint8_t *)ptr - HDR;
  uint32_t c = *(uint32_t *)b;
  if (c >= IDM_POOL_CLASSES || *(uint32_t *)(b + 4) != 0x706f6f6cu || b < p->base ||
      b >= p->base + p->bump)
    __builtin_trap(); /* memory corruption: stop rather than spread it */
  *(uint32_t *)(b + 4) = 0;
  p->in_use -= (size_t)1 << (IDM_POOL_MIN_SHIFT + c);
  memcpy(ptr, &p->free_list[c], sizeof(void *));
  p->free_list[c] = b;
}

size_t idm_pool_size_for(size_t n) {
  int c = class_of(n ? n : 1);
  return c < 0 ? 0 : ((size_t)1 << (IDM_POOL_MIN_SHIFT + c)) - HDR;
}

size_t idm_pool_block_size(const void *ptr) {
  const uint8_t *b = (const uint8_t *)ptr - HDR;
  return ((size_t)1 << (IDM_POOL_MIN_SHIFT + *(const uint32_t *)b)) - HDR;
}

void *idm_pool_realloc(idm_pool_t *p, void *ptr, size_t n) {
  if (!ptr)
    return idm_pool_alloc(p, n);
  if (n == 0) {
    idm_pool_free(p, ptr);
    return NULL;
  }
  size_t have = idm_pool_block_size(ptr);
  if (n <= have)
    return ptr;
  void *q = idm_pool_alloc(p, n);
  if (!q)
    return NULL;
  memcpy(q, ptr, have);
  idm_pool_free(p, ptr);
  return q;
}
