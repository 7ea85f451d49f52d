/* SHA-256 compression of several independent messages at once, with the x86 SHA
 * extensions (SHA-NI), for the Merkle tree: a batch hashes thousands of short,
 * independent messages (a node is two blocks, a leaf's uncached tail one or two), and
 * one SHA-NI compression is bound by the latency of its 32 dependent sha256rnds2 steps,
 * so interleaving up to eight messages runs the unit closer to its throughput. Debian's
 * BoringSSL hashes one message at a time, which is why this exists; it is checked
 * against BoringSSL's SHA-256 by tests/batch/merkle_test.c.
 *
 * States are the eight SHA-256 words (FIPS 180-4 H0..H7, host order). No allocation. */
#ifndef IDM_BATCH_SHA256MB_H
#define IDM_BATCH_SHA256MB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern const uint32_t idm_sha256_iv[8];

/* True when the CPU has the SHA extensions and they are not disabled. */
bool idm_sha256mb_available(void);
/* Tests: false makes idm_sha256mb_available() false (the portable paths run). */
void idm_sha256mb_enable(bool on);

/* For i < n: st[i] = the SHA-256 compression of st[i] with the 64-byte block blk[i].
 * Only when idm_sha256mb_available(). */
void idm_sha256mb_compress(uint32_t *const *st, const uint8_t *const *blk, size_t n);

#ifdef __cplusplus
}
#endif
#endif
