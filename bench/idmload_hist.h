// idmload's latency histogram: log-bucketed like HdrHistogram, fixed memory, <= 0.79 %
// relative error. Written here rather than taken from a library because Debian 12 packages
// no HdrHistogram for C, and the part idmload needs (record, merge, percentile) is ~60 lines.
//
// Layout (values are nanoseconds, any unsigned 64-bit quantity works):
//   values 0..255                    one bucket per value (exact)
//   values 2^k .. 2^(k+1)-1, k >= 8  128 equal buckets, each 2^(k-7) wide
// so a bucket is never wider than 1/128 of its lowest value. Values at or above
// IDML_HIST_LIMIT (2^48 ns, ~78 hours) are clamped into the last bucket and counted in
// `clamped`. Percentiles report the bucket's highest value (never below the true value),
// capped at the exact maximum recorded.
#ifndef IDMLOAD_HIST_H
#define IDMLOAD_HIST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define IDML_HIST_SUB_BITS 8                            /* 256 exact values, then 128 per octave */
#define IDML_HIST_SUB (1u << IDML_HIST_SUB_BITS)        /* 256 */
#define IDML_HIST_HALF (IDML_HIST_SUB / 2)              /* 128 buckets per power of two */
#define IDML_HIST_MSB_MAX 47                            /* highest bit a value may have */
#define IDML_HIST_LIMIT (UINT64_C(1) << (IDML_HIST_MSB_MAX + 1))
#define IDML_HIST_BUCKETS \
  (IDML_HIST_SUB + (IDML_HIST_MSB_MAX - IDML_HIST_SUB_BITS + 1) * IDML_HIST_HALF)

typedef struct {
  uint64_t count;                       /* values recorded */
  uint64_t clamped;                     /* of which were >= IDML_HIST_LIMIT */
  uint64_t min, max;                    /* exact extremes (max is clamped too) */
  double sum;                           /* for the mean */
  uint64_t buckets[IDML_HIST_BUCKETS];
} idml_hist_t;

static inline void idml_hist_init(idml_hist_t *h) {
  memset(h, 0, sizeof *h);
  h->min = UINT64_MAX;
}

static inline size_t idml_hist_index(uint64_t v) {
  if (v < IDML_HIST_SUB)
    return (size_t)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);   /* >= IDML_HIST_SUB_BITS */
  unsigned shift = msb - (IDML_HIST_SUB_BITS - 1);     /* >= 1 */
  uint64_t m = v >> shift;                             /* in [HALF, SUB) */
  return IDML_HIST_SUB + (size_t)(shift - 1) * IDML_HIST_HALF + (size_t)(m - IDML_HIST_HALF);
}

/* Lowest and highest value that land in bucket i. */
static inline uint64_t idml_hist_low(size_t i) {
  if (i < IDML_HIST_SUB)
    return i;
  unsigned shift = (unsigned)((i - IDML_HIST_SUB) / IDML_HIST_HALF) + 1;
  uint64_t m = IDML_HIST_HALF + (i - IDML_HIST_SUB) % IDML_HIST_HALF;
  return m << shift;
}

static inline uint64_t idml_hist_high(size_t i) {
  if (i < IDML_HIST_SUB)
    return i;
  unsigned shift = (unsigned)((i - IDML_HIST_SUB) / IDML_HIST_HALF) + 1;
  uint64_t m = IDML_HIST_HALF + (i - IDML_HIST_SUB) % IDML_HIST_HALF;
  return ((m + 1) << shift) - 1;
}

static inline void idml_hist_record(idml_hist_t *h, uint64_t v) {
  if (v >= IDML_HIST_LIMIT) {
    v = IDML_HIST_LIMIT - 1;
    h->clamped++;
  }
  h->buckets[idml_hist_index(v)]++;
  h->count++;
  h->sum += (double)v;
  if (v < h->min)
    h->min = v;
  if (v > h->max)
    h->max = v;
}

static inline void idml_hist_merge(idml_hist_t *into, const idml_hist_t *from) {
  for (size_t i = 0; i < IDML_HIST_BUCKETS; i++)
    into->buckets[i] += from->buckets[i];
  into->count += from->count;
  into->clamped += from->clamped;
  into->sum += from->sum;
  if (from->min < into->min)
    into->min = from->min;
  if (from->max > into->max)
    into->max = from->max;
}

/* The value at percentile p (0 < p <= 100): the smallest recorded value v such that at
 * least p % of the values are <= v, rounded up to its bucket's highest value (so within
 * +0.79 % of the true one) and never above the exact maximum. 0 when empty. */
static inline uint64_t idml_hist_percentile(const idml_hist_t *h, double p) {
  if (h->count == 0)
    return 0;
  double want = p / 100.0 * (double)h->count;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want)
    rank++;
  if (rank < 1)
    rank = 1;
  if (rank > h->count)
    rank = h->count;
  uint64_t seen = 0;
  for (size_t i = 0; i < IDML_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      uint64_t v = idml_hist_high(i);
      return v < h->max ? v : h->max;
    }
  }
  return h->max;
}

static inline double idml_hist_mean(const idml_hist_t *h) {
  return h->count ? h->sum / (double)h->count : 0.0;
}

#endif
