#include <criterion/criterion.h>
#include <string.h>

#include "core/b64url.h"
#include "core/random.h"

static size_t dec(const char *in, uint8_t *out, size_t cap, idm_err_t *err) {
  size_t n = 0;
  idm_why_t why = {{0}};
  *err = idm_b64url_decode(out, cap, &n, in, strlen(in), &why);
  return n;
}

Test(b64url, rfc4648_vectors) {
  /* RFC 4648 §10 vectors, unpadded. */
  const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char *enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    char out[16];
    size_t n = idm_b64url_encode(out, sizeof out, (const uint8_t *)plain[i], strlen(plain[i]));
    cr_assert_eq(n, strlen(enc[i]));
    cr_assert(memcmp(out, enc[i], n) == 0);
    uint8_t back[16];
    idm_err_t e;
    size_t m = dec(enc[i], back, sizeof back, &e);
    cr_assert_eq(e, IDM_OK);
    cr_assert_eq(m, strlen(plain[i]));
    cr_assert(memcmp(back, plain[i], m) == 0);
  }
}

Test(b64url, url_alphabet) {
  const uint8_t in[] = {0xfb, 0xff, 0xbf};
  char out[8];
  size_t n = idm_b64url_encode(out, sizeof out, in, 3);
  cr_assert_eq(n, 4);
  cr_assert(memcmp(out, "-_-_", 4) == 0);
}

Test(b64url, rejects_noncanonical) {
  const char *bad[] = {"Zg==", "Zm9v\n", " Zm9v", "Zm+v", "Zm/v", "Z", "Zh", "Zm9", "Zm8=",
                       "Zm9vY", "Zm\x80v"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t out[16];
    idm_err_t e;
    dec(bad[i], out, sizeof out, &e);
    cr_assert_eq(e, IDM_ERR_B64, "accepted %s", bad[i]);
  }
  /* "Zm9" decodes fine only if its trailing bits are zero: "Zm8" is canonical for "fo". */
}

Test(b64url, reason_names_offset) {
  uint8_t out[16];
  size_t n;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_b64url_decode(out, sizeof out, &n, "Zm9v*mFy", 8, &why), IDM_ERR_B64);
  cr_assert(strstr(why.text, "offset 4") != NULL, "%s", why.text);
}

Test(b64url, nospace) {
  uint8_t out[2];
  idm_err_t e;
  dec("Zm9v", out, sizeof out, &e);
  cr_assert_eq(e, IDM_ERR_NOSPACE);
  char enc[3];
  cr_assert_eq(idm_b64url_encode(enc, sizeof enc, (const uint8_t *)"foo", 3), 0);
}

Test(b64url, random_roundtrip) {
  for (int iter = 0; iter < 2000; iter++) {
    uint8_t in[64], back[64];
    char enc[100];
    size_t len = (size_t)(idm_random_u64() % sizeof in);
    idm_random_bytes(in, len);
    size_t n = idm_b64url_encode(enc, sizeof enc, in, len);
    cr_assert_eq(n, idm_b64url_encoded_len(len));
    size_t m = 0;
    cr_assert_eq(idm_b64url_decode(back, sizeof back, &m, enc, n, NULL), IDM_OK);
    cr_assert_eq(m, len);
    cr_assert(memcmp(in, back, len) == 0);
  }
}

/* The SIMD encoders (AVX-512 VBMI with SSSE3 and scalar tails, then SSSE3 alone) against
 * the scalar reference: every length up to 300 (so every alignment of the 48- and 12-byte
 * steps and of the scalar tail), random bytes, and the bytes that hit the alphabet's range
 * edges (25/26, 51/52, 61/62/63). */
Test(b64url, simd_matches_scalar) {
  uint8_t in[300];
  char a[420], b[420];
  for (int level = 2; level >= 1; level--) {
    idm_b64url_simd(level);
    unsigned seed = 99;
    for (int round = 0; round < 20; round++) {
      for (size_t i = 0; i < sizeof in; i++) {
        seed = seed * 1103515245u + 12345u;
        in[i] = round == 0 ? 0xff : round == 1 ? 0 : round == 2 ? (uint8_t)(i * 0x41) : (uint8_t)(seed >> 16);
      }
      for (size_t n = 0; n <= sizeof in; n++) {
        size_t la = idm_b64url_encode(a, sizeof a, in, n);
        size_t lb = idm_b64url_encode_scalar(b, sizeof b, in, n);
        cr_assert_eq(la, lb, "n=%zu", n);
        cr_assert_eq(memcmp(a, b, la), 0, "level %d round %d n=%zu", level, round, n);
      }
    }
    /* every 6-bit value in every position of a 16- and a 64-character step */
    for (int v = 0; v < 64; v++) {
      uint8_t x[96];
      for (int i = 0; i < 96; i += 3) {
        int s = v + i / 3;
        uint32_t w = (uint32_t)(s & 63) << 18 | (uint32_t)((s + 1) & 63) << 12 |
                     (uint32_t)((s + 2) & 63) << 6 | (uint32_t)((s + 3) & 63);
        x[i] = (uint8_t)(w >> 16), x[i + 1] = (uint8_t)(w >> 8), x[i + 2] = (uint8_t)w;
      }
      size_t la = idm_b64url_encode(a, sizeof a, x, 96), lb = idm_b64url_encode_scalar(b, sizeof b, x, 96);
      cr_assert_eq(la, lb);
      cr_assert_eq(memcmp(a, b, la), 0, "level %d v=%d", level, v);
    }
  }
  idm_b64url_simd(2);
  /* too small an output buffer: nothing written, 0 returned, for the SIMD path too */
  cr_assert_eq(idm_b64url_encode(a, 20, in, 100), 0);
}
