// idmload's latency histogram (bench/idmload_hist.h) against an exact reference: sorted
// arrays of random values, percentiles compared within the stated 1/128 relative error.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "../../bench/idmload_hist.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The exact value at percentile p, by the same rank rule as idml_hist_percentile. */
static uint64_t exact(const uint64_t *sorted, size_t n, double p) {
  double want = p / 100.0 * (double)n;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want)
    rank++;
  if (rank < 1)
    rank = 1;
  return sorted[rank - 1];
}

Test(hist, every_value_lies_in_its_bucket) {
  for (int i = 0; i < 200000; i++) {
    uint64_t v = rnd() >> (16 + rnd() % 48);     /* all magnitudes below 2^48 */
    size_t b = idml_hist_index(v);
    cr_assert_lt(b, IDML_HIST_BUCKETS);
    cr_assert(idml_hist_low(b) <= v && v <= idml_hist_high(b), "%llu in bucket %zu",
              (unsigned long long)v, b);
    /* never wider than 1/128 of its lowest value (exact below 256) */
    uint64_t w = idml_hist_high(b) - idml_hist_low(b);
    cr_assert(w == 0 || (w + 1) * 128 <= idml_hist_low(b), "bucket %zu too wide", b);
  }
  /* buckets tile the range without gaps or overlap */
  for (size_t b = 1; b < IDML_HIST_BUCKETS; b++)
    cr_assert_eq(idml_hist_low(b), idml_hist_high(b - 1) + 1, "gap at %zu", b);
  cr_assert_eq(idml_hist_high(IDML_HIST_BUCKETS - 1), IDML_HIST_LIMIT - 1);
}

Test(hist, percentiles_match_sorted_reference) {
  enum { N = 100000 };
  uint64_t *v = malloc(N * sizeof *v);
  cr_assert_not_null(v);
  static const double ps[] = {0.1, 1, 25, 50, 90, 99, 99.9, 99.99, 100};
  for (int round = 0; round < 8; round++) {
    idml_hist_t *h = malloc(sizeof *h);
    cr_assert_not_null(h);
    idml_hist_init(h);
    size_t n = round == 0 ? 1 : round == 1 ? 7 : N;
    for (size_t i = 0; i < n; i++) {
      /* latency-like: log-uniform from 1 us to 10 s, with round-dependent spikes */
      double e = 3 + (double)(rnd() % 1000000) / 1000000.0 * 7;
      v[i] = (uint64_t)pow(10, e) + (round % 2 ? rnd() % 200 : 0);
      idml_hist_record(h, v[i]);
    }
    qsort(v, n, sizeof *v, cmp_u64);
    cr_assert_eq(h->count, n);
    cr_assert_eq(h->min, v[0]);
    cr_assert_eq(h->max, v[n - 1]);
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
      uint64_t want = exact(v, n, ps[k]), got = idml_hist_percentile(h, ps[k]);
      cr_assert(got >= want, "p%g: %llu below exact %llu", ps[k], (unsigned long long)got,
                (unsigned long long)want);
      cr_assert((double)got <= (double)want * (1.0 + 1.0 / 128) + 1, "p%g: %llu vs exact %llu",
                ps[k], (unsigned long long)got, (unsigned long long)want);
    }
    free(h);
  }
  free(v);
}

Test(hist, merge_equals_recording_into_one) {
  idml_hist_t *a = malloc(sizeof *a), *b = malloc(sizeof *b), *all = malloc(sizeof *all);
  cr_assert(a && b && all);
  idml_hist_init(a);
  idml_hist_init(b);
  idml_hist_init(all);
  for (int i = 0; i < 50000; i++) {
    uint64_t x = rnd() % 50000000;
    idml_hist_record(i % 3 ? a : b, x);
    idml_hist_record(all, x);
  }
  idml_hist_merge(a, b);
  cr_assert_eq(a->count, all->count);
  cr_assert_eq(a->min, all->min);
  cr_assert_eq(a->max, all->max);
  for (double p = 1; p <= 100; p += 0.5)
    cr_assert_eq(idml_hist_percentile(a, p), idml_hist_percentile(all, p));
  free(a);
  free(b);
  free(all);
}

Test(hist, empty_and_clamped) {
  idml_hist_t *h = malloc(sizeof *h);
  cr_assert_not_null(h);
  idml_hist_init(h);
  cr_assert_eq(idml_hist_percentile(h, 99), 0);
  cr_assert_eq(idml_hist_mean(h), 0.0);
  idml_hist_record(h, UINT64_MAX);
  idml_hist_record(h, 5);
  cr_assert_eq(h->clamped, 1);
  cr_assert_eq(h->max, IDML_HIST_LIMIT - 1);
  cr_assert_eq(idml_hist_percentile(h, 50), 5);
  cr_assert_eq(idml_hist_percentile(h, 100), IDML_HIST_LIMIT - 1);
  free(h);
}
