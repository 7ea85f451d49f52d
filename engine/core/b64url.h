/* Base64url (RFC 4648 §5) without padding, as JOSE uses it (RFC 7515 §2).
 *
 * The decoder is strict, because a token has exactly one valid encoding: it rejects
 * '=' padding, whitespace, characters outside the url-safe alphabet, a length of 1 mod 4,
 * and non-zero trailing bits (non-canonical encodings). No I/O, no allocation. */
#ifndef IDM_CORE_B64URL_H
#define IDM_CORE_B64URL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exact encoded length of n bytes (no padding). */
static inline size_t idm_b64url_encoded_len(size_t n) { return (n / 3) * 4 + ((n % 3) ? (n % 3) + 1 : 0); }
/* Upper bound on the decoded length of n characters. */
static inline size_t idm_b64url_decoded_max(size_t n) { return (n / 4) * 3 + 2; }

/* Writes the encoding of in[0..in_len) to out (no NUL). Returns the length written, or 0
 * with nothing written if out_cap is too small (and in_len > 0). */
size_t idm_b64url_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len);
/* The same, without SIMD: the reference the tests compare idm_b64url_encode with. */
size_t idm_b64url_encode_scalar(char *out, size_t out_cap, const uint8_t *in, size_t in_len);
/* Tests: the widest SIMD encoder idm_b64url_encode may use, as far as the CPU has it:
 * 0 none, 1 SSSE3, 2 also AVX-512 VBMI (the default is the widest available). */
void idm_b64url_simd(int level);

/* Decodes in[0..in_len) into out. IDM_ERR_B64 for any non-canonical input (with the
 * offending offset in *why), IDM_ERR_NOSPACE if out_cap is too small. */
idm_err_t idm_b64url_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *in,
                            size_t in_len, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
