/* Interleaved SHA-NI compression (see sha256mb.h). The round structure is the usual
 * SHA-NI one (Intel, "New Instructions Supporting the Secure Hash Algorithm on Intel
 * Architecture Processors", 2013): the state is kept as ABEF/CDGH, sha256rnds2 does two
 * rounds, sha256msg1/msg2 extend the message schedule four words at a time. Each group of
 * four rounds is written once and applied to N messages in turn, so the N dependency
 * chains overlap. */
#include "batch/sha256mb.h"

#include <string.h>

const uint32_t idm_sha256_iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define TARGET __attribute__((target("sha,ssse3,sse4.1")))

TARGET static inline void load_state(__m128i *s0, __m128i *s1, const uint32_t st[8]) {
  __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[0]), 0xb1); /* CDAB */
  __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&st[4]), 0x1b); /* EFGH */
  *s0 = _mm_alignr_epi8(t, u, 8);    /* ABEF */
  *s1 = _mm_blend_epi16(u, t, 0xf0); /* CDGH */
}

TARGET static inline void store_state(uint32_t st[8], __m128i s0, __m128i s1) {
  __m128i t = _mm_shuffle_epi32(s0, 0x1b); /* FEBA */
  __m128i u = _mm_shuffle_epi32(s1, 0xb1); /* DCHG */
  _mm_storeu_si128((__m128i *)&st[0], _mm_blend_epi16(t, u, 0xf0)); /* DCBA */
  _mm_storeu_si128((__m128i *)&st[4], _mm_alignr_epi8(u, t, 8));    /* HGFE */
}

/* Four rounds (group g) of each of the N messages; A holds the schedule words of group
 * g, B, C, D those of groups g+1, g+2, g+3. For g < 12, A then becomes group g+4:
 * W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], four words at a time. */
#define GROUP(N, g, A, B, C, D)                                                                \
  do {                                                                                         \
    const __m128i k = _mm_loadu_si128((const __m128i *)&K256[4 * (g)]);                       \
    _Pragma("GCC unroll 8") for (int i = 0; i < (N); i++) {                                    \
      __m128i t = _mm_add_epi32(A[i], k);                                                      \
      s1[i] = _mm_sha256rnds2_epu32(s1[i], s0[i], t);                                          \
      s0[i] = _mm_sha256rnds2_epu32(s0[i], s1[i], _mm_shuffle_epi32(t, 0x0e));                 \
      if ((g) < 12)                                                                            \
        A[i] = _mm_sha256msg2_epu32(                                                           \
            _mm_add_epi32(_mm_sha256msg1_epu32(A[i], B[i]), _mm_alignr_epi8(D[i], C[i], 4)),  \
            D[i]);                                                                             \
    }                                                                                          \
  } while (0)

#define MB_BODY(N)                                                                             \
  const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);         \
  __m128i s0[N], s1[N], a0[N], a1[N], m0[N], m1[N], m2[N], m3[N];                             \
  for (int i = 0; i < N; i++) {                                                                \
    load_state(&s0[i], &s1[i], st[i]);                                                         \
    a0[i] = s0[i];                                                                             \
    a1[i] = s1[i];                                                                             \
    m0[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[i] + 0)), mask);           \
    m1[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[i] + 16)), mask);          \
    m2[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[i] + 32)), mask);          \
    m3[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(blk[i] + 48)), mask);          \
  }                                                                                            \
  GROUP(N, 0, m0, m1, m2, m3);                                                                 \
  GROUP(N, 1, m1, m2, m3, m0);                                                                 \
  GROUP(N, 2, m2, m3, m0, m1);                                                                 \
  GROUP(N, 3, m3, m0, m1, m2);                                                                 \
  GROUP(N, 4, m0, m1, m2, m3);                                                                 \
  GROUP(N, 5, m1, m2, m3, m0);                                                                 \
  GROUP(N, 6, m2, m3, m0, m1);                                                                 \
  GROUP(N, 7, m3, m0, m1, m2);                                                                 \
  GROUP(N, 8, m0, m1, m2, m3);                                                                 \
  GROUP(N, 9, m1, m2, m3, m0);                                                                 \
  GROUP(N, 10, m2, m3, m0, m1);                                                                \
  GROUP(N, 11, m3, m0, m1, m2);                                                                \
  GROUP(N, 12, m0, m1, m2, m3);                                                                \
  GROUP(N, 13, m1, m2, m3, m0);                                                                \
  GROUP(N, 14, m2, m3, m0, m1);                                                                \
  GROUP(N, 15, m3, m0, m1, m2);                                                                \
  for (int i = 0; i < N; i++)                                                                  \
    store_state(st[i], _mm_add_epi32(s0[i], a0[i]), _mm_add_epi32(s1[i], a1[i]));

#define MB_FN(N)                                                                               \
  TARGET static void mb##N(                                                                    \
      uint32_t *const *st, const uint8_t *const *blk) {                                          \
    MB_BODY(N)                                                                                 \
  }
MB_FN(8)
MB_FN(4)
MB_FN(2)
MB_FN(1)

/* CPUID directly: clang 14's __builtin_cpu_supports does not know "sha". */
static bool have_sha, enabled = true;
__attribute__((constructor)) static void sha256mb_cpu_init(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d))
    return;
  bool ssse3 = c & bit_SSSE3, sse41 = c & bit_SSE4_1;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
    return;
  have_sha = ssse3 && sse41 && (b & bit_SHA);
}

bool idm_sha256mb_available(void) { return have_sha && enabled; }

void idm_sha256mb_compress(uint32_t *const *st, const uint8_t *const *blk, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    mb8(st + i, blk + i);
  if (n - i >= 4) {
    mb4(st + i, blk + i);
    i += 4;
  }
  if (n - i >= 2) {
    mb2(st + i, blk + i);
    i += 2;
  }
  if (n - i == 1)
    mb1(st + i, blk + i);
}
#else
bool idm_sha256mb_available(void) { return false; }
void idm_sha256mb_compress(uint32_t *const *st, const uint8_t *const *blk, size_t n) {
  (void)st, (void)blk, (void)n;
}
static bool enabled = true;
#endif

void idm_sha256mb_enable(bool on) { enabled = on; }
