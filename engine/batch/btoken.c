/* EdDSA-MTB1 proof and batch-message encoding (layouts in btoken.h and docs/TOKENS.md).
 *
 * Fixed-width big-endian integers and an explicit path length keep the decoder a
 * straight sequence of bounds checks: one valid encoding per proof, so a verifier never
 * accepts two different byte strings for the same token. The path length is implied by
 * (index, size) and is still written, so that a proof moved to another position, or
 * padded, fails at decoding with a precise reason instead of at the hash. */
#include "batch/btoken.h"

#include <string.h>

static uint8_t *put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--)
    *p++ = (uint8_t)(v >> (8 * i));
  return p;
}
static uint8_t *put_u32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--)
    *p++ = (uint8_t)(v >> (8 * i));
  return p;
}
static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = (v << 8) | p[i];
  return v;
}
static uint32_t get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

_Static_assert(sizeof IDM_BTOKEN_LABEL == IDM_BTOKEN_LABEL_LEN, "label is 31 chars + NUL");

size_t idm_btoken_message(uint8_t *out, const char *kid, size_t kid_len,
                          const idm_batch_head_t *h) {
  if (kid_len > IDM_BTOKEN_KID_MAX)
    return 0;
  uint8_t *p = out;
  memcpy(p, IDM_BTOKEN_LABEL, IDM_BTOKEN_LABEL_LEN); /* NUL included */
  p += IDM_BTOKEN_LABEL_LEN;
  *p++ = (uint8_t)kid_len;
  memcpy(p, kid, kid_len);
  p += kid_len;
  p = put_u64(p, h->seq);
  p = put_u64(p, h->size);
  p = put_u64(p, (uint64_t)h->time_s);
  memcpy(p, h->root.b, IDM_HASH_LEN);
  p += IDM_HASH_LEN;
  return (size_t)(p - out);
}

size_t idm_btoken_proof_encode(uint8_t *out, size_t out_cap, const idm_batch_head_t *h,
                               uint32_t index, const idm_hash_t *path, size_t path_len,
                               const uint8_t sig[IDM_BTOKEN_SIG_LEN]) {
  size_t need = IDM_BTOKEN_PROOF_FIXED + path_len * IDM_HASH_LEN;
  if (path_len > IDM_MERKLE_PATH_MAX || need > out_cap || h->size > UINT32_MAX)
    return 0;
  uint8_t *p = out;
  *p++ = IDM_BTOKEN_VERSION;
  p = put_u64(p, h->seq);
  p = put_u64(p, (uint64_t)h->time_s);
  p = put_u32(p, (uint32_t)h->size);
  p = put_u32(p, index);
  *p++ = (uint8_t)path_len;
  for (size_t i = 0; i < path_len; i++, p += IDM_HASH_LEN)
    memcpy(p, path[i].b, IDM_HASH_LEN);
  memcpy(p, sig, IDM_BTOKEN_SIG_LEN);
  p += IDM_BTOKEN_SIG_LEN;
  return (size_t)(p - out);
}

idm_err_t idm_btoken_proof_decode(idm_btoken_proof_t *out, const uint8_t *in, size_t len,
                                  idm_why_t *why) {
  if (len < IDM_BTOKEN_PROOF_FIXED)
    return idm_fail(why, IDM_ERR_BTOKEN_PROOF, "proof is %zu bytes, shorter than the %d-byte minimum",
                    len, IDM_BTOKEN_PROOF_FIXED);
  if (in[0] != IDM_BTOKEN_VERSION)
    return idm_fail(why, IDM_ERR_BTOKEN_PROOF, "proof version %u, expected %d", in[0],
                    IDM_BTOKEN_VERSION);
  memset(out, 0, sizeof *out);
  out->head.seq = get_u64(in + 1);
  out->head.time_s = (int64_t)get_u64(in + 9);
  out->head.size = get_u32(in + 17);
  out->index = get_u32(in + 21);
  out->path_len = in[25];
  if (out->head.size == 0)
    return idm_fail(why, IDM_ERR_BTOKEN_PROOF, "proof tree size is 0");
  if (out->index >= out->head.size)
    return idm_fail(why, IDM_ERR_BTOKEN_PROOF, "proof leaf index %u not below tree size %llu",
                    out->index, (unsigned long long)out->head.size);
  if (out->path_len > IDM_MERKLE_PATH_MAX)
    return idm_fail(why, IDM_ERR_BTOKEN_PROOF, "proof path of %u hashes exceeds %d",
                    out->path_len, IDM_MERKLE_PATH_MAX);
  size_t want = idm_merkle_path_len(out->index, (size_t)out->head.size);
  if (out->path_len != want)
    return idm_fail(why, IDM_ERR_BTOKEN_PROOF,
                    "proof path has %u hashes, leaf %u of %llu needs %zu", out->path_len,
                    out->index, (unsigned long long)out->head.size, want);
  size_t need = IDM_BTOKEN_PROOF_FIXED + (size_t)out->path_len * IDM_HASH_LEN;
  if (len != need)
    return idm_fail(why, IDM_ERR_BTOKEN_PROOF, "proof is %zu bytes, its path needs exactly %zu",
                    len, need);
  out->path = in + 26;
  memcpy(out->sig, in + 26 + (size_t)out->path_len * IDM_HASH_LEN, IDM_BTOKEN_SIG_LEN);
  return IDM_OK;
}

idm_err_t idm_btoken_proof_root(idm_hash_t *root, const idm_btoken_proof_t *p,
                                const char *signing_input, size_t len, idm_why_t *why) {
  idm_hash_t leaf, path[IDM_MERKLE_PATH_MAX];
  idm_merkle_leaf(&leaf, signing_input, len);
  memcpy(path, p->path, (size_t)p->path_len * IDM_HASH_LEN);
  return idm_merkle_root_from_path(root, &leaf, p->index, p->head.size, path, p->path_len, why);
}
