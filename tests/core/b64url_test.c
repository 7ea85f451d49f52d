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
