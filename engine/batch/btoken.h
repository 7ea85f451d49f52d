/* The batch token profile EdDSA-MTB1 (docs/TOKENS.md "Batch profile"): the proof segment
 * and the signed batch message. Pure format code: byte spans in, byte spans out, no I/O,
 * no allocation.
 *
 *   token = b64url(header) "." b64url(claims) "." b64url(proof)
 *   header = {"alg":"EdDSA-MTB1","typ":"JWT","kid":KID}
 *   leaf   = SHA-256(0x00 ‖ ASCII "b64url(header).b64url(claims)")
 *
 * proof (all integers big-endian):
 *   u8  version = 1
 *   u64 batch sequence
 *   i64 issue time (seconds since the epoch)
 *   u32 tree size n (1 <= n)
 *   u32 leaf index m (m < n)
 *   u8  path length k (must equal the RFC 9162 path length for (m, n))
 *   k × 32 bytes sibling hashes, bottom-up
 *   64 bytes Ed25519 signature over the batch message
 *
 * batch message (what the signature covers):
 *   "idmint/EdDSA-MTB1/batch-root/v1" 0x00   (32-byte domain separation label)
 *   u8 kid length, kid bytes (ASCII, the JWK kid)
 *   u64 batch sequence, u64 tree size, i64 issue time, 32-byte root
 *
 * The audit log signs the same message for every batch, whatever profile its tokens use. */
#ifndef IDM_BATCH_BTOKEN_H
#define IDM_BATCH_BTOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "batch/merkle.h"
#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IDM_BTOKEN_ALG "EdDSA-MTB1"
#define IDM_BTOKEN_VERSION 1
#define IDM_BTOKEN_LABEL "idmint/EdDSA-MTB1/batch-root/v1" /* + its NUL: 32 bytes */
#define IDM_BTOKEN_LABEL_LEN 32
#define IDM_BTOKEN_KID_MAX 255
#define IDM_BTOKEN_SIG_LEN 64
/* Fixed part of a proof: version, seq, time, size, index, path length, signature. */
#define IDM_BTOKEN_PROOF_FIXED (1 + 8 + 8 + 4 + 4 + 1 + IDM_BTOKEN_SIG_LEN)
#define IDM_BTOKEN_PROOF_MAX (IDM_BTOKEN_PROOF_FIXED + IDM_MERKLE_PATH_MAX * IDM_HASH_LEN)
/* Bytes of a batch message for the longest kid. */
#define IDM_BTOKEN_MSG_MAX (IDM_BTOKEN_LABEL_LEN + 1 + IDM_BTOKEN_KID_MAX + 8 + 8 + 8 + IDM_HASH_LEN)

/* What a batch's signature binds. */
typedef struct idm_batch_head {
  uint64_t seq;                      /* batch sequence, unique per issuer log */
  uint64_t size;                     /* leaves in the tree */
  int64_t time_s;                    /* issue time of the batch */
  idm_hash_t root;                   /* RFC 9162 tree head */
} idm_batch_head_t;

/* A decoded proof. path points into the decoded proof bytes given to the parser. */
typedef struct idm_btoken_proof {
  idm_batch_head_t head;             /* root is not carried: it is computed */
  uint32_t index;                    /* leaf index m */
  uint8_t path_len;
  const uint8_t *path;               /* path_len × 32 bytes, borrowed */
  uint8_t sig[IDM_BTOKEN_SIG_LEN];
} idm_btoken_proof_t;

/* Writes the batch message into out (room for IDM_BTOKEN_MSG_MAX). Returns its length,
 * 0 if kid is longer than IDM_BTOKEN_KID_MAX. */
size_t idm_btoken_message(uint8_t *out, const char *kid, size_t kid_len,
                          const idm_batch_head_t *h);

/* Encodes a proof (binary, not base64url) into out. Returns its length, 0 if out_cap is
 * too small or path_len > IDM_MERKLE_PATH_MAX. */
size_t idm_btoken_proof_encode(uint8_t *out, size_t out_cap, const idm_batch_head_t *h,
                               uint32_t index, const idm_hash_t *path, size_t path_len,
                               const uint8_t sig[IDM_BTOKEN_SIG_LEN]);

/* Decodes and checks the structure of a proof: version, exact length, m < n, n within
 * 32 bits, path length equal to the RFC 9162 path length for (m, n).
 * IDM_ERR_BTOKEN_PROOF with the specific reason otherwise. */
idm_err_t idm_btoken_proof_decode(idm_btoken_proof_t *out, const uint8_t *in, size_t len,
                                  idm_why_t *why);

/* Computes the root a token's signing input leads to through the proof (leaf hash, then
 * the path). IDM_ERR_MERKLE_PROOF if the path is inconsistent. */
idm_err_t idm_btoken_proof_root(idm_hash_t *root, const idm_btoken_proof_t *p,
                                const char *signing_input, size_t len, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
