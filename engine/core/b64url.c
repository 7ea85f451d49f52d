/* Strict base64url. Decoding uses a 256-entry table; 0xff marks a byte outside the
 * alphabet. The final group is checked for zero trailing bits so that every byte string
 * has exactly one accepted encoding (otherwise "AB" and "AC" would decode alike). */
#include "core/b64url.h"

#include <stdbool.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static const char enc_tab[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static const uint8_t dec_tab[256] = {
#define I 0xff
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0x00 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0x10 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  62, I,  I,  /* 0x20 '-' */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, I,  I,  I,  I,  I,  I,  /* 0x30 '0'-'9' */
    I,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, /* 0x40 'A'- */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, I,  I,  I,  I,  63, /* 0x50 '_' */
    I,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 0x60 'a'- */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, I,  I,  I,  I,  I,  /* 0x70 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0x80 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0x90 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0xa0 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0xb0 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0xc0 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0xd0 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0xe0 */
    I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  I,  /* 0xf0 */
#undef I
};
_Static_assert(sizeof dec_tab == 256, "decode table covers every byte");

/* Pairs of output characters for every 12-bit group, so that three input bytes cost two
 * table reads and two 2-byte copies (the encoder runs for every token minted). */
static char enc_pair[4096][2];

__attribute__((constructor)) static void enc_pair_init(void) {
  for (int i = 0; i < 4096; i++) {
    enc_pair[i][0] = enc_tab[i >> 6];
    enc_pair[i][1] = enc_tab[i & 63];
  }
}

#if defined(__x86_64__)
/* SSSE3 encoder (W. Muła and D. Lemire, "Faster Base64 Encoding and Decoding Using AVX2
 * Instructions", 2018): 12 input bytes become 16 characters per step. pshufb spreads each
 * 3-byte group over a 32-bit lane, two multiplies move the four 6-bit fields into bytes,
 * and a 16-entry pshufb table adds the offset of each field's alphabet range. Reads 16
 * bytes per step, so it runs while at least 16 input bytes remain. */
__attribute__((target("ssse3"))) static size_t enc_ssse3(char *out, const uint8_t *in,
                                                          size_t in_len, size_t *consumed) {
  const __m128i spread = _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1);
  const __m128i shift_lut = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                          '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                          '0' - 52, '-' - 62, '_' - 63, 'A', 0, 0);
  size_t i = 0, o = 0;
  for (; i + 16 <= in_len; i += 12, o += 16) {
    __m128i v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + i)), spread);
    __m128i t0 = _mm_and_si128(v, _mm_set1_epi32(0x0fc0fc00));
    __m128i t1 = _mm_mulhi_epu16(t0, _mm_set1_epi32(0x04000040));
    __m128i t2 = _mm_and_si128(v, _mm_set1_epi32(0x003f03f0));
    __m128i t3 = _mm_mullo_epi16(t2, _mm_set1_epi32(0x01000010));
    __m128i idx = _mm_or_si128(t1, t3); /* sixteen 6-bit values */
    /* range of each value: 0..25 -> 13 ('A'), 26..51 -> 0, 52..61 -> 1..10, 62 -> 11,
     * 63 -> 12; then add that range's offset */
    __m128i r = _mm_subs_epu8(idx, _mm_set1_epi8(51));
    __m128i lt26 = _mm_cmpgt_epi8(_mm_set1_epi8(26), idx);
    r = _mm_or_si128(r, _mm_and_si128(lt26, _mm_set1_epi8(13)));
    r = _mm_add_epi8(_mm_shuffle_epi8(shift_lut, r), idx);
    _mm_storeu_si128((__m128i *)(out + o), r);
  }
  *consumed = i;
  return o;
}

/* AVX-512 VBMI encoder (W. Muła and D. Lemire, "Base64 encoding and decoding at almost the
 * speed of a memory copy", 2019): 48 input bytes become 64 characters per step with three
 * byte permutations: vpermb spreads each 3-byte group over a 32-bit lane, vpmultishiftqb
 * extracts the four 6-bit fields, and vpermb looks them up in the 64-character alphabet.
 * Masked loads read exactly the 48 bytes of a step. A batch token is ~950 characters of
 * base64url, most of it the proof. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static size_t
enc_vbmi(char *out, const uint8_t *in, size_t in_len, size_t *consumed) {
  const __m512i spread = _mm512_setr_epi32(
      0x01020001, 0x04050304, 0x07080607, 0x0a0b090a, 0x0d0e0c0d, 0x10110f10, 0x13141213,
      0x16171516, 0x191a1819, 0x1c1d1b1c, 0x1f201e1f, 0x22232122, 0x25262425, 0x28292728,
      0x2b2c2a2b, 0x2e2f2d2e);
  const __m512i shifts = _mm512_set1_epi64(0x3036242a1016040aLL);
  const __m512i alphabet = _mm512_loadu_si512((const void *)enc_tab);
  size_t i = 0, o = 0;
  for (; i + 48 <= in_len; i += 48, o += 64) {
    __m512i v = _mm512_maskz_loadu_epi8(0x0000ffffffffffffULL, in + i);
    v = _mm512_permutexvar_epi8(spread, v);
    v = _mm512_multishift_epi64_epi8(shifts, v);
    _mm512_storeu_si512((void *)(out + o), _mm512_permutexvar_epi8(v, alphabet));
  }
  *consumed = i;
  return o;
}

static bool have_ssse3, have_vbmi;
__attribute__((constructor)) static void enc_cpu_init(void) {
  __builtin_cpu_init();
  have_ssse3 = __builtin_cpu_supports("ssse3");
  have_vbmi = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512vbmi");
}

void idm_b64url_simd(int level) {
  static int saved = -1;
  if (saved < 0)
    saved = (have_ssse3 ? 1 : 0) | (have_vbmi ? 2 : 0);
  have_ssse3 = (saved & 1) && level >= 1;
  have_vbmi = (saved & 2) && level >= 2;
}
#else
void idm_b64url_simd(int level) { (void)level; }
#endif

/* The portable encoder; also the reference the SIMD one is tested against. */
size_t idm_b64url_encode_scalar(char *out, size_t out_cap, const uint8_t *in, size_t in_len) {
  size_t need = idm_b64url_encoded_len(in_len);
  if (need > out_cap)
    return 0;
  size_t i = 0, o = 0;
  for (; i + 3 <= in_len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    memcpy(out + o, enc_pair[v >> 12], 2);
    memcpy(out + o + 2, enc_pair[v & 4095], 2);
    o += 4;
  }
  if (in_len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = enc_tab[v >> 18];
    out[o++] = enc_tab[(v >> 12) & 63];
  } else if (in_len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = enc_tab[v >> 18];
    out[o++] = enc_tab[(v >> 12) & 63];
    out[o++] = enc_tab[(v >> 6) & 63];
  }
  return o;
}

size_t idm_b64url_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len) {
#if defined(__x86_64__)
  if (have_ssse3 && in_len >= 16) {
    if (idm_b64url_encoded_len(in_len) > out_cap)
      return 0;
    size_t done = 0, o = 0;
    if (have_vbmi && in_len >= 48)
      o = enc_vbmi(out, in, in_len, &done);
    if (in_len - done >= 16) {
      size_t d2;
      o += enc_ssse3(out + o, in + done, in_len - done, &d2);
      done += d2;
    }
    return o + idm_b64url_encode_scalar(out + o, out_cap - o, in + done, in_len - done);
  }
#endif
  return idm_b64url_encode_scalar(out, out_cap, in, in_len);
}

idm_err_t idm_b64url_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in,
                            size_t in_len, idm_why_t *why) {
  const uint8_t *s = (const uint8_t *)in;
  size_t rem = in_len % 4;
  if (rem == 1)
    return idm_fail(why, IDM_ERR_B64, "base64url length %zu is impossible (1 mod 4)", in_len);
  size_t need = (in_len / 4) * 3 + (rem ? rem - 1 : 0);
  if (need > out_cap)
    return idm_fail(why, IDM_ERR_NOSPACE, "base64url decodes to %zu bytes, room for %zu", need,
                    out_cap);
  size_t i = 0, o = 0;
  for (; i + 4 <= in_len; i += 4) {
    uint8_t a = dec_tab[s[i]], b = dec_tab[s[i + 1]], c = dec_tab[s[i + 2]], d = dec_tab[s[i + 3]];
    if ((a | b | c | d) == 0xff)
      goto bad_char;
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
    out[o++] = (uint8_t)(v >> 16);
    out[o++] = (uint8_t)(v >> 8);
    out[o++] = (uint8_t)v;
  }
  if (rem) {
    uint8_t a = dec_tab[s[i]], b = dec_tab[s[i + 1]], c = rem == 3 ? dec_tab[s[i + 2]] : 0;
    if ((a | b | c) == 0xff)
      goto bad_char;
    if (rem == 2) {
      if (b & 0x0f)
        return idm_fail(why, IDM_ERR_B64, "base64url has non-zero trailing bits at offset %zu",
                        i + 1);
      out[o++] = (uint8_t)(a << 2 | b >> 4);
    } else {
      if (c & 0x03)
        return idm_fail(why, IDM_ERR_B64, "base64url has non-zero trailing bits at offset %zu",
                        i + 2);
      out[o++] = (uint8_t)(a << 2 | b >> 4);
      out[o++] = (uint8_t)(b << 4 | c >> 2);
    }
  }
  *out_len = o;
  return IDM_OK;

bad_char:
  for (size_t j = i; j < in_len; j++)
    if (dec_tab[s[j]] == 0xff)
      return idm_fail(why, IDM_ERR_B64, "invalid base64url character 0x%02x at offset %zu", s[j],
                      j);
  return idm_fail(why, IDM_ERR_B64, "invalid base64url");
}
