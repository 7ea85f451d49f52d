/* The verified-identity cache: one per thread, no locks, allocated once.
 *
 * Two arrays, both sized at creation, plus a small table of shared document prefixes:
 *
 *   index: nb buckets of one cache line          ring: ring_size bytes, written circularly
 *   +-------------------------------------+      +--------+------------+-------+-------+--
 *   | slot x 8: tag:16 | lap:11 | off:37  | ---> | header | doc (tail) | attrs | claims| ..
 *   +-------------------------------------+      +--------+------------+-------+-------+--
 *                                                  16 B      the bytes after the shared prefix
 *
 * A lookup hashes the document's length and signature tail with XXH3 under a random
 * per-cache seed (idm_attest_cache_hash). The hash picks two buckets (multiply-shift onto
 * nb, so the index need not be a power of two) and a 16-bit tag; the document's window is
 * the 16 slots of its two buckets, two lines loaded in parallel. A slot whose
 * tag matches names a record: the record is confirmed by comparing the WHOLE presented
 * document with the stored one (shared prefix + stored tail, memcmp over every byte): the
 * hash and the tag only find, they never decide. Then the entry's provider must still have
 * the generation it was verified under (a rebuilt idm_attest_t has new generations, so
 * every old entry of that provider misses), the provider must verify this document type
 * and be the requested trust, and now < exp (an entry never outlives its document).
 *
 * Why a full compare and not a digest: a 64- or 128-bit non-cryptographic hash can be
 * collided on purpose (someone else's verified identity for a crafted document), so a hit
 * must be proven either by the bytes or by a collision-resistant digest. SHA-256 of the
 * presented document on every lookup costs more than the whole hit (bench/bm_attest.cc
 * BM_attest_proof_*: with SHA-NI 219 ns for a 353-byte JWT-SVID and 609 ns for a
 * 1,037-byte RS256 token on the benchmark VM, against 4 and 9 ns for the memcmp of the
 * stored bytes once in cache, which the record's prefetch brings in parallel with its
 * header). The memory the bytes cost is kept down instead:
 *  - a JWS's header segment ("eyJhbGciOi...": algorithm, kid) is the same for every token
 *    of an issuer key, so it is stored once per cache in the prefix table and each record
 *    holds only the rest of the document; the presented document is compared against the
 *    prefix entry and then the record, so every byte is still checked. Prefix entries are
 *    never changed or reused while any index slot can name them (only clear() empties the
 *    table, and it empties the index with it): a record's prefix always means the bytes it
 *    was verified with;
 *  - an attribute whose value occurs inside an attribute stored before it (Kubernetes
 *    namespace and service account inside the subject, a SPIFFE trust domain inside the
 *    SPIFFE ID, a subject equal to the SPIFFE ID) is stored as a reference;
 *  - the header is 16 bytes (exp in u32 seconds, clamped down: an entry may expire early,
 *    never late; the document type follows from the provider);
 *  - the index is 8-byte slots at a load of at most 2/3, and the ring has exactly the
 *    configured size (no power-of-two rounding: the budget is what is reserved).
 *
 * Eviction is oldest-first and free at write time: records are appended to the ring and a
 * slot names its record by (lap, offset). A record is intact while the writer has not come
 * round to it again: written this lap and before the writer, or written last lap at or
 * after the writer (slot_alive). The lap is kept in 11 bits; so that a slot can never be
 * mistaken for a live one 2,048 laps later, a sweep clears the dead slots of one bucket
 * for every ring_size / nb bytes written, i.e. the whole index at least once per lap.
 * When a window is full, the slot holding the oldest record is displaced. A document has at
 * most one slot (a regression test pins why).
 *
 * A lookup touches one or two index lines and the record's lines, which it prefetches all
 * at once when it reads the slot; idm_attest_cache_prefetch lets a caller with several
 * documents queued start those loads early so that their DRAM latencies overlap.
 *
 * Hit results are views into the ring: they stay valid until the next put on this cache. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "attest/internal.h"
#include "core/limits.h"
#include "core/random.h"

enum {
  BUCKET_SLOTS = 8, /* one 64-byte line */
  TAG_SHIFT = 48,
  LAP_SHIFT = 37,
  LAP_BITS = 11,
};
#define OFF_MASK ((UINT64_C(1) << LAP_SHIFT) - 1)        /* offset in 8-byte units */
#define LAP_MASK ((UINT64_C(1) << LAP_BITS) - 1)
#define RING_MAX_BYTES (OFF_MASK << 3)                   /* 2^40 - 8 */
_Static_assert(IDM_ATTEST_CACHE_PROBE_MAX == 2 * BUCKET_SLOTS, "the window is two buckets");
_Static_assert(TAG_SHIFT == LAP_SHIFT + LAP_BITS, "slot layout");
_Static_assert(IDM_ATTEST_TRUSTS_MAX <= 256, "a record names its provider in one byte");
_Static_assert(IDM_ATTEST_CACHE_PREFIXES < 256, "a record names its prefix in one byte");
_Static_assert(IDM_ATTEST_CACHE_DOC_MAX_BYTES <= UINT16_MAX, "tail_len is 16 bits");

/* Record header; followed by the document's bytes after its prefix, then the attribute
 * area: nattr (u8), nclaims (u8), then per attribute id (u8), u16 length (bit 15: the value
 * is a reference, followed by u16 offset from the area's start; else the bytes follow);
 * then padding to 8, nclaims pol_kv_t and the claim strings. Length multiple of 8. */
typedef struct rec {
  uint64_t gen;      /* provider generation it was verified under */
  uint32_t exp_s;    /* min(exp, UINT32_MAX): never later than the document's */
  uint16_t tail_len; /* document bytes stored here */
  uint8_t prefix;    /* prefix table index + 1; 0: the whole document is stored here */
  uint8_t provider;  /* idm_provider_t.index */
} rec_t;
_Static_assert(sizeof(rec_t) == 16, "record header layout");

#define ATTR_REF 0x8000u

typedef struct prefix {
  uint16_t len;
  char bytes[IDM_ATTEST_CACHE_PREFIX_MAX_BYTES];
} prefix_t;

struct idm_attest_cache {
  uint64_t *index;         /* nb * BUCKET_SLOTS slots; 0 = empty */
  size_t nb;               /* buckets */
  size_t index_map_bytes;
  uint8_t *ring;
  uint64_t ring_size;      /* bytes, multiple of 64, <= RING_MAX_BYTES */
  size_t ring_map_bytes;
  uint64_t w_off;          /* next record's offset */
  uint64_t w_lap;          /* laps begun (only the low LAP_BITS are stored in slots) */
  uint64_t written;        /* bytes the writer advanced, padding included */
  uint64_t sweep_step;     /* bytes written per bucket swept (>= 1) */
  uint64_t sweep_acc;
  size_t sweep_next;       /* next bucket to sweep, < nb */
  uint64_t seed;
  uint32_t nprefix;        /* prefix entries in use; only clear() lowers it */
  idm_attest_cache_stats_t st;
  prefix_t prefix[IDM_ATTEST_CACHE_PREFIXES];
};

static void *map_aligned(size_t n, size_t *mapped) {
  /* 2 MiB aligned and rounded so that the kernel can back all of it with huge pages (a
   * million identities span hundreds of MiB; with 4 KiB pages every hit is a TLB walk as
   * well as a DRAM miss). Pages are touched only as the cache fills. */
  const size_t huge = (size_t)2 << 20;
  size_t len = n >= huge ? (n + huge - 1) & ~(huge - 1) : (n + 4095) & ~(size_t)4095;
  size_t extra = n >= huge ? huge : 0;
  uint8_t *p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (extra) {
    uint8_t *a = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
    if (a > p)
      munmap(p, (size_t)(a - p));
    if (a + len < p + len + extra)
      munmap(a + len, (size_t)(p + len + extra - (a + len)));
    p = a;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE);
#endif
  }
  *mapped = len;
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
  size_t slots = entries_max + (entries_max + 1) / 2; /* load <= 2/3 */
  c->nb = (slots + BUCKET_SLOTS - 1) / BUCKET_SLOTS;
  c->ring_size = ((uint64_t)bytes_max + 63) & ~(uint64_t)63;
  if (c->ring_size > RING_MAX_BYTES)
    c->ring_size = RING_MAX_BYTES & ~(uint64_t)63;
  c->index = map_aligned(c->nb * BUCKET_SLOTS * sizeof(uint64_t), &c->index_map_bytes);
  c->ring = map_aligned(c->ring_size, &c->ring_map_bytes);
  if (!c->index || !c->ring) {
    idm_attest_cache_free(c);
    return NULL;
  }
  c->sweep_step = c->ring_size / c->nb;
  if (c->sweep_step == 0)
    c->sweep_step = 1;
  c->seed = idm_random_u64();
  c->st.index_bytes = c->nb * BUCKET_SLOTS * sizeof(uint64_t);
  c->st.bytes_reserved = c->st.index_bytes + c->ring_size;
  return c;
}

void idm_attest_cache_free(idm_attest_cache_t *c) {
  if (!c)
    return;
  if (c->index)
    munmap(c->index, c->index_map_bytes);
  if (c->ring)
    munmap(c->ring, c->ring_map_bytes);
  free(c);
}

void idm_attest_cache_clear(idm_attest_cache_t *c) {
  memset(c->index, 0, c->nb * BUCKET_SLOTS * sizeof(uint64_t));
  c->st.entries = 0;
  c->nprefix = 0; /* no slot names a record any more, so no record's prefix is in use */
}

void idm_attest_cache_stats(const idm_attest_cache_t *c, idm_attest_cache_stats_t *out) {
  *out = c->st;
  out->bytes_used = c->written < c->ring_size ? (size_t)c->written : (size_t)c->ring_size;
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

/* The document's two buckets: multiply-shift of the hash and of a remix of it onto nb. */
void idm_attest_cache_buckets(const idm_attest_cache_t *c, uint64_t h, size_t out[2]) {
  uint64_t h2 = (h >> 32 | h << 32) * 0x9e3779b97f4a7c15ULL;
  out[0] = (size_t)(((unsigned __int128)h * c->nb) >> 64);
  out[1] = (size_t)(((unsigned __int128)h2 * c->nb) >> 64);
}

static inline uint64_t tag_of(uint64_t h) {
  uint64_t t = h & 0xffff;
  return (t ? t : 1) << TAG_SHIFT; /* never 0, so an empty slot (0) never matches */
}

/* Whether the ring still holds the record the slot names (see the file comment). */
static inline bool slot_alive(const idm_attest_cache_t *c, uint64_t s) {
  uint64_t off = (s & OFF_MASK) << 3;
  uint64_t d = (c->w_lap - (s >> LAP_SHIFT)) & LAP_MASK;
  return d == 0 ? off < c->w_off : d == 1 && off >= c->w_off;
}

/* Bytes written since the slot's record (for oldest-first displacement). */
static inline uint64_t slot_age(const idm_attest_cache_t *c, uint64_t s) {
  uint64_t off = (s & OFF_MASK) << 3;
  uint64_t d = (c->w_lap - (s >> LAP_SHIFT)) & LAP_MASK;
  return d * c->ring_size + c->w_off - off;
}

static inline const rec_t *slot_rec(const idm_attest_cache_t *c, uint64_t s) {
  return (const rec_t *)(c->ring + ((s & OFF_MASK) << 3));
}

/* Whether r holds exactly doc[0..len): the prefix entry's bytes, then the record's. */
static inline bool rec_matches(const idm_attest_cache_t *c, const rec_t *r, const char *doc,
                               size_t len) {
  size_t plen = 0;
  if (r->prefix) {
    if (r->prefix > c->nprefix)
      return false;
    const prefix_t *p = &c->prefix[r->prefix - 1];
    plen = p->len;
    if (plen + r->tail_len != len || memcmp(doc, p->bytes, plen) != 0)
      return false;
  } else if (r->tail_len != len) {
    return false;
  }
  return memcmp(doc + plen, r + 1, r->tail_len) == 0;
}

/* Starts loading every line of the record a slot names: its header, the stored document
 * (at most len bytes) and the first attribute line, in parallel instead of one after the
 * other as the compare reaches them. */
static inline void prefetch_rec(const rec_t *r, size_t len) {
  const char *p = (const char *)r;
  const char *end = p + sizeof(rec_t) + len + 64;
  for (; p < end; p += 64)
    __builtin_prefetch(p);
}

static void decode(const rec_t *r, idm_identity_t *out) {
  const uint8_t *area = (const uint8_t *)(r + 1) + r->tail_len;
  unsigned nattr = area[0], nclaims = area[1];
  const uint8_t *p = area + 2;
  for (unsigned i = 0; i < nattr; i++) {
    uint8_t id = p[0];
    uint16_t n = (uint16_t)(p[1] | (p[2] << 8));
    if (n & ATTR_REF) {
      uint16_t off = (uint16_t)(p[3] | (p[4] << 8));
      out->client.attr[id].ptr = (const char *)area + off;
      out->client.attr[id].len = n & ~ATTR_REF;
      p += 5;
    } else {
      out->client.attr[id].ptr = (const char *)p + 3;
      out->client.attr[id].len = n;
      p += 3 + n;
    }
  }
  if (nclaims) {
    uintptr_t kv = ((uintptr_t)p + 7) & ~(uintptr_t)7;
    out->client.claims = (const pol_kv_t *)kv;
    out->client.claims_count = nclaims;
  }
}

/* A function that only prefetches has no effect the compiler can see, so GCC's
 * interprocedural analysis marks it pure and deletes every call to it (it did: the entry
 * stage of idm_attest_cache_prefetch compiled to a bare return, and the benchmark's
 * pipelined lookups ran at the speed of no prefetch). An empty volatile asm is an effect it
 * must keep. */
#define KEEP_HINT() __asm__ volatile("")

/* The window: the 16 slots of the document's two buckets. */
typedef struct window {
  uint64_t *b[2];
} window_t;

static inline window_t window_of(const idm_attest_cache_t *c, uint64_t h) {
  size_t b[2];
  idm_attest_cache_buckets(c, h, b);
  return (window_t){{c->index + b[0] * BUCKET_SLOTS, c->index + b[1] * BUCKET_SLOTS}};
}

static inline uint64_t *window_slot(window_t w, size_t k) {
  return &w.b[k / BUCKET_SLOTS][k % BUCKET_SLOTS];
}

void idm_attest_cache_prefetch_index(const idm_attest_cache_t *c, uint64_t h) {
  window_t w = window_of(c, h);
  __builtin_prefetch(w.b[0]);
  __builtin_prefetch(w.b[1]);
  KEEP_HINT();
}

void idm_attest_cache_prefetch_entry(const idm_attest_cache_t *c, uint64_t h, size_t len) {
  window_t w = window_of(c, h);
  uint64_t tag = tag_of(h);
  for (size_t half = 0; half < 2; half++) {
    const uint64_t *b = w.b[half];
    for (size_t k = 0; k < BUCKET_SLOTS; k++)
      if ((b[k] & ~(UINT64_MAX >> 16)) == tag && slot_alive(c, b[k]))
        prefetch_rec(slot_rec(c, b[k]), len);
  }
  KEEP_HINT();
}

void idm_attest_cache_prefetch(const idm_attest_cache_t *c, const char *doc, size_t len,
                               bool entry) {
  if (!c || !doc || len == 0)
    return;
  uint64_t h = idm_attest_cache_hash(c, doc, len);
  if (entry)
    idm_attest_cache_prefetch_entry(c, h, len);
  else
    idm_attest_cache_prefetch_index(c, h);
  KEEP_HINT();
}

bool idm_attest_cache_get(idm_attest_cache_t *c, const idm_attest_t *a, idm_doc_type_t type,
                          const idm_provider_t *want, uint64_t h, const char *doc,
                          size_t len, int64_t now_s, idm_identity_t *out) {
  window_t w = window_of(c, h);
  __builtin_prefetch(w.b[1]); /* both lines in flight at once */
  uint64_t tag = tag_of(h);
  for (size_t half = 0; half < 2; half++) {
    uint64_t *b = w.b[half];
    for (size_t k = 0; k < BUCKET_SLOTS; k++) {
      uint64_t s = b[k];
      if ((s & ~(UINT64_MAX >> 16)) != tag)
        continue;
      if (!slot_alive(c, s)) {
        b[k] = 0;
        c->st.entries--;
        continue;
      }
      const rec_t *r = slot_rec(c, s);
      prefetch_rec(r, len);
      if (!rec_matches(c, r, doc, len))
        continue; /* a tag collision: not this document */
      if (r->provider >= a->n || a->prov[r->provider].gen != r->gen ||
          a->prov[r->provider].doc_type != type || (int64_t)r->exp_s <= now_s) {
        b[k] = 0; /* expired, or verified under keys since reloaded */
        c->st.entries--;
        c->st.stale++;
        goto miss;
      }
      const idm_provider_t *p = &a->prov[r->provider];
      if (want && want != p)
        goto miss; /* verified, but under another trust block than the one asked for */
      memset(out, 0, sizeof *out);
      idm_attest_set_common(p, out);
      out->exp_s = r->exp_s;
      out->cached = true;
      decode(r, out);
      c->st.hits++;
      return true;
    }
  }
miss:
  c->st.misses++;
  return false;
}

/* The prefix entry (index + 1) holding doc's JWS header segment, added if new and there is
 * room; 0 when the document is stored whole. */
static unsigned prefix_for(idm_attest_cache_t *c, idm_doc_type_t type, const char *doc,
                           size_t len) {
  if (type != IDM_DOC_JWT)
    return 0;
  size_t lim = len - 1 < IDM_ATTEST_CACHE_PREFIX_MAX_BYTES ? len - 1
                                                           : IDM_ATTEST_CACHE_PREFIX_MAX_BYTES;
  const char *dot = memchr(doc, '.', lim);
  if (!dot)
    return 0;
  size_t n = (size_t)(dot - doc) + 1;
  for (uint32_t i = 0; i < c->nprefix; i++)
    if (c->prefix[i].len == n && memcmp(c->prefix[i].bytes, doc, n) == 0)
      return i + 1;
  if (c->nprefix == IDM_ATTEST_CACHE_PREFIXES)
    return 0;
  prefix_t *p = &c->prefix[c->nprefix];
  p->len = (uint16_t)n;
  memcpy(p->bytes, doc, n);
  return ++c->nprefix;
}

/* Clears the dead slots of one bucket. */
static void sweep_bucket(idm_attest_cache_t *c, size_t b) {
  uint64_t *w = c->index + b * BUCKET_SLOTS;
  for (size_t k = 0; k < BUCKET_SLOTS; k++)
    if (w[k] && !slot_alive(c, w[k])) {
      w[k] = 0;
      c->st.entries--;
    }
}

typedef struct attr_plan {
  uint8_t id;
  uint16_t len;
  int32_t ref; /* offset from the attribute area's start, or -1: stored inline */
  const char *ptr;
} attr_plan_t;

void idm_attest_cache_put(idm_attest_cache_t *c, const idm_provider_t *p, idm_doc_type_t type,
                          uint64_t h, const char *doc, size_t len, const idm_identity_t *id) {
  if (len == 0 || len > IDM_ATTEST_CACHE_DOC_MAX_BYTES || id->exp_s <= 0 || p->index > UINT8_MAX)
    return;
  const pol_client_t *cl = &id->client;
  uint32_t nclaims = cl->claims ? cl->claims_count : 0;
  if (nclaims > UINT8_MAX)
    return;

  /* Attributes, longest first, each either a reference into one stored before it or inline.
   * Trust and kind come from the provider on a hit. */
  attr_plan_t plan[POL_A__COUNT];
  unsigned nattr = 0;
  for (unsigned i = 0; i < POL_A__COUNT; i++) {
    if (i == POL_A_TRUST || i == POL_A_KIND || !cl->attr[i].ptr)
      continue;
    if (cl->attr[i].len >= ATTR_REF)
      return;
    unsigned j = nattr++;
    while (j > 0 && plan[j - 1].len < cl->attr[i].len) {
      plan[j] = plan[j - 1];
      j--;
    }
    plan[j] = (attr_plan_t){(uint8_t)i, (uint16_t)cl->attr[i].len, -1, cl->attr[i].ptr};
  }
  size_t area = 2;
  size_t inline_off[POL_A__COUNT] = {0}; /* where plan[i]'s bytes start, if inline */
  for (unsigned i = 0; i < nattr; i++) {
    for (unsigned j = 0; j < i && plan[i].len > 0; j++) {
      if (plan[j].ref >= 0 || plan[j].len < plan[i].len)
        continue;
      const char *hit = memmem(plan[j].ptr, plan[j].len, plan[i].ptr, plan[i].len);
      if (hit && inline_off[j] + (size_t)(hit - plan[j].ptr) <= UINT16_MAX) {
        plan[i].ref = (int32_t)(inline_off[j] + (size_t)(hit - plan[j].ptr));
        break;
      }
    }
    if (plan[i].ref >= 0) {
      area += 5;
    } else {
      inline_off[i] = area + 3;
      area += 3 + plan[i].len;
    }
  }

  unsigned pfx = prefix_for(c, type, doc, len);
  size_t plen = pfx ? c->prefix[pfx - 1].len : 0;
  size_t tail = len - plen;
  size_t need = sizeof(rec_t) + tail + area;
  if (nclaims) {
    need = (need + 7) & ~(size_t)7;
    need += (size_t)nclaims * sizeof(pol_kv_t);
    for (uint32_t i = 0; i < nclaims; i++)
      need += (size_t)cl->claims[i].name.len + cl->claims[i].value.len;
  }
  need = (need + 7) & ~(size_t)7;
  if (need > c->ring_size / 4)
    return;

  uint64_t adv = need;
  if (c->w_off + need > c->ring_size) {
    adv += c->ring_size - c->w_off; /* never wrap a record: the next lap starts at 0 */
    c->w_off = 0;
    c->w_lap++;
  }
  uint64_t off = c->w_off;
  c->w_off += need;
  c->written += adv;

  rec_t *r = (rec_t *)(c->ring + off);
  r->gen = p->gen;
  r->exp_s = id->exp_s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)id->exp_s;
  r->tail_len = (uint16_t)tail;
  r->prefix = (uint8_t)pfx;
  r->provider = (uint8_t)p->index;
  uint8_t *q0 = (uint8_t *)(r + 1);
  memcpy(q0, doc + plen, tail);
  uint8_t *a = q0 + tail;
  a[0] = (uint8_t)nattr;
  a[1] = (uint8_t)nclaims;
  uint8_t *q = a + 2;
  for (unsigned i = 0; i < nattr; i++) {
    uint32_t n = plan[i].len;
    q[0] = plan[i].id;
    if (plan[i].ref >= 0) {
      n |= ATTR_REF;
      q[3] = (uint8_t)(plan[i].ref & 0xff);
      q[4] = (uint8_t)(plan[i].ref >> 8);
    }
    q[1] = (uint8_t)(n & 0xff);
    q[2] = (uint8_t)(n >> 8);
    if (plan[i].ref >= 0) {
      q += 5;
    } else {
      memcpy(q + 3, plan[i].ptr, plan[i].len);
      q += 3 + plan[i].len;
    }
  }
  if (nclaims) {
    pol_kv_t *kv = (pol_kv_t *)(((uintptr_t)q + 7) & ~(uintptr_t)7);
    q = (uint8_t *)(kv + nclaims);
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
  }

  /* Sweep so that every bucket is visited at least once per ring_size bytes written. */
  c->sweep_acc += adv;
  while (c->sweep_acc >= c->sweep_step) {
    c->sweep_acc -= c->sweep_step;
    sweep_bucket(c, c->sweep_next);
    if (++c->sweep_next == c->nb)
      c->sweep_next = 0;
  }

  /* Index: at most one slot per document (two copies in one window could outlive each
   * other in the wrong order, because other documents' windows overlap this one only
   * partly). So first the slot of an older copy of this very document, then an empty or
   * dead slot of the less loaded bucket (two choices keep every bucket near the mean load:
   * at 1,000,000 identities none is displaced before the cache is full), else the slot
   * holding the oldest record is displaced. */
  window_t w = window_of(c, h);
  uint64_t tag = tag_of(h);
  uint64_t *victim = NULL, *free_slot[2] = {NULL, NULL};
  unsigned used[2] = {0, 0};
  uint64_t oldest = 0;
  for (size_t k = 0; k < IDM_ATTEST_CACHE_PROBE_MAX; k++) {
    uint64_t *sp = window_slot(w, k), s = *sp;
    unsigned half = (unsigned)(k / BUCKET_SLOTS);
    if (s == 0 || !slot_alive(c, s)) {
      if (!free_slot[half])
        free_slot[half] = sp;
      continue;
    }
    used[half]++;
    if ((s & ~(UINT64_MAX >> 16)) == tag && rec_matches(c, slot_rec(c, s), doc, len)) {
      victim = sp; /* the older copy of this document: replaced in place */
      goto place;
    }
    uint64_t age = slot_age(c, s);
    if (!victim || age > oldest) {
      oldest = age;
      victim = sp;
    }
  }
  {
    uint64_t *f = used[1] < used[0] ? (free_slot[1] ? free_slot[1] : free_slot[0])
                                    : (free_slot[0] ? free_slot[0] : free_slot[1]);
    if (f) {
      if (*f == 0)
        c->st.entries++;
      victim = f;
    } else {
      c->st.evictions++;
    }
  }
place:
  *victim = tag | ((c->w_lap & LAP_MASK) << LAP_SHIFT) | (off >> 3);
  c->st.inserts++;
}
