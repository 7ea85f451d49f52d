/* The verified-identity cache: one per thread, no locks, allocated once.
 *
 * Two arrays, both sized at creation:
 *
 *   index (2^k slots of 16 bytes)        ring (2^m bytes, written circularly)
 *   +-----------+--------------+          +--------+-----+---------+--------------+---
 *   | xxh3(doc) | abs pos + 1  | -------> | header | kvs | doc ... | attrs ...    | ...
 *   +-----------+--------------+          +--------+-----+---------+--------------+---
 *
 * A lookup hashes the document's length and signature tail with XXH3 under a random
 * per-cache seed (see idm_attest_cache_hash), probes at
 * most IDM_ATTEST_CACHE_PROBE_MAX slots, and confirms a candidate by comparing the whole
 * stored document with memcmp (the hash only finds; it never decides). It then checks
 * that the entry's provider still has the generation it was verified under (a rebuilt
 * idm_attest_t, e.g. after SIGHUP reloaded the keys, has new generations, so every old
 * entry of that provider misses), that the document type and the requested trust match,
 * and that now < exp (an entry never outlives its document).
 *
 * Records are appended to the ring; an index slot holds the record's absolute position, so
 * a record that the ring has since overwritten is recognised (write position - pos > ring
 * size) without touching it: eviction is oldest-first and costs nothing at write time.
 * When the index probe window is full, the slot holding the oldest record is displaced.
 *
 * Storing the document itself (not a digest) is what lets a hit cost a hash and a memcmp
 * (tens of ns for a 1 KiB token) instead of a SHA-256 of the token (~0.6 us); the price is
 * memory: about the document's length plus its attributes per identity
 * (docs/ATTESTATION.md).
 *
 * Hit results are views into the ring: they stay valid until the next put on this cache. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "attest/internal.h"
#include "core/limits.h"
#include "core/random.h"

typedef struct slot {
  uint64_t hash;
  uint64_t pos1;   /* absolute ring position + 1; 0 = empty */
} slot_t;

/* Record header; followed by nclaims pol_kv_t, the document, then the attributes
 * (u8 id, u16 length little-endian, bytes) and the claim strings. Length is a multiple
 * of 8 so the next header stays aligned. */
typedef struct rec {
  uint64_t gen;
  int64_t exp_s;
  uint32_t len;
  uint32_t doc_len;
  uint16_t provider;
  uint8_t doc_type;
  uint8_t nattr;
  uint16_t nclaims;
  uint16_t pad_;
} rec_t;
_Static_assert(sizeof(rec_t) == 32, "record header layout");

struct idm_attest_cache {
  slot_t *index;
  size_t index_mask;
  uint8_t *ring;
  uint64_t ring_size;     /* power of two */
  uint64_t wabs;          /* absolute write position (bytes ever written, with padding) */
  uint64_t seed;
  idm_attest_cache_stats_t st;
};

static size_t pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

/* Large, zeroed, huge-page backed where the kernel allows (a million identities span
 * gigabytes; 4 KiB pages would make every hit a TLB miss). Pages are touched only as the
 * ring fills. */
static void *big_alloc(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED)
    return NULL;
#ifdef MADV_HUGEPAGE
  if (n >= (2u << 20))
    (void)madvise(p, n, MADV_HUGEPAGE);
#endif
  return p;
}

idm_attest_cache_t *idm_attest_cache_new(size_t entries_max, size_t bytes_max) {
  if (entries_max == 0 || entries_max > ((size_t)1 << 30))
    return NULL;
  if (bytes_max == 0)
    bytes_max = entries_max * IDM_ATTEST_CACHE_BYTES_PER_ENTRY;
  if (bytes_max < 64 * 1024)
    bytes_max = 64 * 1024;
  if (bytes_max > ((size_t)1 << 40))
    return NULL;
  idm_attest_cache_t *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  size_t slots = pow2_at_least(entries_max * 2); /* load factor <= 1/2 */
  c->index_mask = slots - 1;
  c->ring_size = pow2_at_least(bytes_max);
  c->index = big_alloc(slots * sizeof(slot_t));
  c->ring = big_alloc(c->ring_size);
  if (!c->index || !c->ring) {
    idm_attest_cache_free(c);
    return NULL;
  }
  c->seed = idm_random_u64();
  c->st.bytes_reserved = slots * sizeof(slot_t) + c->ring_size;
  return c;
}

void idm_attest_cache_free(idm_attest_cache_t *c) {
  if (!c)
    return;
  if (c->index)
    munmap(c->index, (c->index_mask + 1) * sizeof(slot_t));
  if (c->ring)
    munmap(c->ring, c->ring_size);
  free(c);
}

void idm_attest_cache_clear(idm_attest_cache_t *c) {
  memset(c->index, 0, (c->index_mask + 1) * sizeof(slot_t));
  c->st.entries = 0;
}

void idm_attest_cache_stats(const idm_attest_cache_t *c, idm_attest_cache_stats_t *out) {
  *out = c->st;
  out->bytes_used = c->wabs < c->ring_size ? (size_t)c->wabs : (size_t)c->ring_size;
}

/* The hash locates; it never decides (a hit is the whole document compared). So it covers
 * the length and the last IDM_ATTEST_CACHE_HASH_TAIL_BYTES only: every document format
 * cached here ends with its signature (JWS: the third segment; IID: the "signature"
 * member), which is unique per document and unknown to anyone who cannot sign, so the
 * tail spreads documents as well as the whole would, at a fixed cost instead of one
 * proportional to the token's length. A crafted set of unsigned documents sharing a tail
 * lands in one probe window but is never inserted (it does not verify). */
uint64_t idm_attest_cache_hash(const idm_attest_cache_t *c, const char *doc, size_t len) {
  size_t n = len < IDM_ATTEST_CACHE_HASH_TAIL_BYTES ? len : IDM_ATTEST_CACHE_HASH_TAIL_BYTES;
  return XXH3_64bits_withSeed(doc + (len - n), n, c->seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ULL));
}

/* The record of a slot if the ring still holds it, else NULL. */
static inline const rec_t *slot_rec(const idm_attest_cache_t *c, const slot_t *s) {
  uint64_t pos = s->pos1 - 1;
  if (c->wabs - pos > c->ring_size)
    return NULL; /* overwritten since */
  return (const rec_t *)(c->ring + (pos & (c->ring_size - 1)));
}

static void decode(const rec_t *r, const uint8_t *doc_end, idm_identity_t *out) {
  const uint8_t *p = doc_end;
  for (unsigned i = 0; i < r->nattr; i++) {
    uint8_t id = p[0];
    uint16_t n = (uint16_t)(p[1] | (p[2] << 8));
    out->client.attr[id].ptr = (const char *)p + 3;
    out->client.attr[id].len = n;
    p += 3 + n;
  }
  if (r->nclaims) {
    out->client.claims = (const pol_kv_t *)(r + 1);
    out->client.claims_count = r->nclaims;
  }
}

bool idm_attest_cache_get(idm_attest_cache_t *c, const idm_attest_t *a, idm_doc_type_t type,
                          const idm_provider_t *want, uint64_t h, const char *doc,
                          size_t len, int64_t now_s, idm_identity_t *out) {
  for (size_t k = 0; k < IDM_ATTEST_CACHE_PROBE_MAX; k++) {
    slot_t *s = &c->index[(h + k) & c->index_mask];
    if (s->pos1 == 0 || s->hash != h)
      continue;
    const rec_t *r = slot_rec(c, s);
    if (!r) {
      s->pos1 = 0;
      c->st.entries--;
      continue;
    }
    const uint8_t *rdoc = (const uint8_t *)(r + 1) + (size_t)r->nclaims * sizeof(pol_kv_t);
    if (r->doc_len != len || memcmp(rdoc, doc, len) != 0)
      continue; /* a hash collision: not this document */
    if (r->provider >= a->n || a->prov[r->provider].gen != r->gen || r->exp_s <= now_s ||
        r->doc_type != (uint8_t)type) {
      s->pos1 = 0; /* expired, or verified under keys that have since been reloaded */
      c->st.entries--;
      c->st.stale++;
      break;
    }
    const idm_provider_t *p = &a->prov[r->provider];
    if (want && want != p)
      break; /* verified, but under another trust block than the one asked for */
    memset(out, 0, sizeof *out);
    idm_attest_set_common(p, out);
    out->exp_s = r->exp_s;
    out->cached = true;
    decode(r, rdoc + len, out);
    c->st.hits++;
    return true;
  }
  c->st.misses++;
  return false;
}

void idm_attest_cache_put(idm_attest_cache_t *c, const idm_provider_t *p, idm_doc_type_t type,
                          uint64_t h, const char *doc, size_t len, const idm_identity_t *id) {
  if (len > IDM_ATTEST_CACHE_DOC_MAX_BYTES || id->exp_s <= 0 || p->index > UINT16_MAX)
    return;
  const pol_client_t *cl = &id->client;
  size_t need = sizeof(rec_t) + len;
  unsigned nattr = 0;
  for (unsigned i = 0; i < POL_A__COUNT; i++) {
    if (i == POL_A_TRUST || i == POL_A_KIND || !cl->attr[i].ptr)
      continue; /* trust and kind come from the provider on a hit */
    if (cl->attr[i].len > UINT16_MAX)
      return;
    need += 3 + cl->attr[i].len;
    nattr++;
  }
  uint32_t nclaims = cl->claims ? cl->claims_count : 0;
  if (nclaims > UINT16_MAX)
    return;
  need += (size_t)nclaims * sizeof(pol_kv_t);
  for (uint32_t i = 0; i < nclaims; i++)
    need += (size_t)cl->claims[i].name.len + cl->claims[i].value.len;
  need = (need + 7) & ~(size_t)7;
  if (need > c->ring_size / 4)
    return;

  uint64_t w = c->wabs;
  uint64_t off = w & (c->ring_size - 1);
  if (off + need > c->ring_size) {
    w += c->ring_size - off; /* never wrap a record: skip to the ring's start */
    off = 0;
  }
  c->wabs = w + need;

  rec_t *r = (rec_t *)(c->ring + off);
  r->gen = p->gen;
  r->exp_s = id->exp_s;
  r->len = (uint32_t)need;
  r->doc_len = (uint32_t)len;
  r->provider = (uint16_t)p->index;
  r->doc_type = (uint8_t)type;
  r->nattr = (uint8_t)nattr;
  r->nclaims = (uint16_t)nclaims;
  r->pad_ = 0;
  pol_kv_t *kv = (pol_kv_t *)(r + 1);
  uint8_t *q = (uint8_t *)(kv + nclaims);
  memcpy(q, doc, len);
  q += len;
  for (unsigned i = 0; i < POL_A__COUNT; i++) {
    if (i == POL_A_TRUST || i == POL_A_KIND || !cl->attr[i].ptr)
      continue;
    uint32_t n = cl->attr[i].len;
    q[0] = (uint8_t)i;
    q[1] = (uint8_t)(n & 0xff);
    q[2] = (uint8_t)(n >> 8);
    memcpy(q + 3, cl->attr[i].ptr, n);
    q += 3 + n;
  }
  for (uint32_t i = 0; i < nclaims; i++) {
    const pol_kv_t *src = &cl->claims[i];
    memcpy(q, src->name.ptr, src->name.len);
    kv[i].name.ptr = (const char *)q;
    kv[i].name.len = src->name.len;
    q += src->name.len;
    memcpy(q, src->value.ptr, src->value.len);
    kv[i].value.ptr = (const char *)q;
    kv[i].value.len = src->value.len;
    q += src->value.len;
  }

  /* Index: at most one slot per document (two copies in one window could outlive each
   * other in the wrong order, because other documents' windows overlap this one only
   * partly). So first the slot of an older copy of this very document, then an empty or
   * dead slot, else the slot holding the oldest record is displaced. */
  slot_t *victim = NULL, *free_slot = NULL;
  uint64_t oldest = UINT64_MAX;
  for (size_t k = 0; k < IDM_ATTEST_CACHE_PROBE_MAX; k++) {
    slot_t *s = &c->index[(h + k) & c->index_mask];
    if (s->pos1 == 0) {
      if (!free_slot)
        free_slot = s;
      continue;
    }
    const rec_t *old = slot_rec(c, s);
    if (!old) {
      if (!free_slot)
        free_slot = s;
      continue;
    }
    if (s->hash == h && old->doc_len == len &&
        memcmp((const uint8_t *)(old + 1) + (size_t)old->nclaims * sizeof(pol_kv_t), doc, len) ==
            0) {
      victim = s; /* the older copy of this document: replaced in place */
      goto place;
    }
    if (s->pos1 < oldest) {
      oldest = s->pos1;
      victim = s;
    }
  }
  if (free_slot) {
    if (free_slot->pos1 == 0)
      c->st.entries++;
    victim = free_slot;
  } else {
    c->st.evictions++;
  }
place:
  victim->hash = h;
  victim->pos1 = w + 1;
  c->st.inserts++;
}
