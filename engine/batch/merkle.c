/* RFC 9162 Merkle trees, built level by level.
 *
 * Level 0 holds the n leaf hashes; each next level pairs the previous one left to right
 * and carries a lone last node up unchanged. That is exactly RFC 9162's MTH (split at the
 * largest power of two below n): the left subtree of every split is a perfect tree, so
 * pairing never crosses a split, and a right subtree's lone node is the one the RFC
 * would hash at a higher level. Levels are stored one after the other in one array:
 *
 *   nodes: [ level 0: n | level 1: ceil(n/2) | ... | root: 1 ]
 *
 * A leaf's inclusion path is, bottom-up, its sibling at each level where it has one
 * (index ^ 1 < level size). Verification is the RFC 9162 §2.1.3.2 algorithm verbatim,
 * which the tests check against the recursive reference on every (m, n) up to 300. */
#include "batch/merkle.h"

#include <openssl/sha.h>
#include <string.h>

void idm_merkle_leaf(idm_hash_t *out, const void *data, size_t len) {
  SHA256_CTX c;
  static const uint8_t zero = 0x00;
  SHA256_Init(&c);
  SHA256_Update(&c, &zero, 1);
  SHA256_Update(&c, data, len);
  SHA256_Final(out->b, &c);
}

void idm_merkle_node(idm_hash_t *out, const idm_hash_t *left, const idm_hash_t *right) {
  uint8_t buf[1 + 2 * IDM_HASH_LEN];
  buf[0] = 0x01;
  memcpy(buf + 1, left->b, IDM_HASH_LEN);
  memcpy(buf + 1 + IDM_HASH_LEN, right->b, IDM_HASH_LEN);
  SHA256(buf, sizeof buf, out->b);
}

void idm_merkle_empty(idm_hash_t *out) { SHA256((const uint8_t *)"", 0, out->b); }

size_t idm_merkle_tree_nodes(size_t n) {
  size_t total = 0;
  if (n == 0)
    return 0;
  for (;;) {
    total += n;
    if (n == 1)
      return total;
    n = (n + 1) / 2;
  }
}

void idm_merkle_tree(idm_hash_t *nodes, size_t n) {
  idm_hash_t *lvl = nodes;
  while (n > 1) {
    idm_hash_t *up = lvl + n;
    size_t pairs = n / 2;
    for (size_t i = 0; i < pairs; i++)
      idm_merkle_node(&up[i], &lvl[2 * i], &lvl[2 * i + 1]);
    if (n & 1)
      up[pairs] = lvl[n - 1];
    lvl = up;
    n = (n + 1) / 2;
  }
}

size_t idm_merkle_path_len(size_t m, size_t n) {
  size_t k = 0;
  while (n > 1) {
    if ((m ^ 1) < n)
      k++;
    m >>= 1;
    n = (n + 1) / 2;
  }
  return k;
}

size_t idm_merkle_path(idm_hash_t *path, const idm_hash_t *nodes, size_t n, size_t m) {
  size_t k = 0;
  const idm_hash_t *lvl = nodes;
  while (n > 1) {
    if ((m ^ 1) < n)
      path[k++] = lvl[m ^ 1];
    lvl += n;
    m >>= 1;
    n = (n + 1) / 2;
  }
  return k;
}

idm_err_t idm_merkle_root_from_path(idm_hash_t *root, const idm_hash_t *leaf, uint64_t m,
                                    uint64_t n, const idm_hash_t *path, size_t k,
                                    idm_why_t *why) {
  if (m >= n)
    return idm_fail(why, IDM_ERR_MERKLE_PROOF, "leaf index %llu not below tree size %llu",
                    (unsigned long long)m, (unsigned long long)n);
  uint64_t fn = m, sn = n - 1;
  idm_hash_t r = *leaf;
  for (size_t i = 0; i < k; i++) {
    if (sn == 0)
      return idm_fail(why, IDM_ERR_MERKLE_PROOF, "inclusion path longer than the tree (%zu)",
                      k);
    if ((fn & 1) || fn == sn) {
      idm_merkle_node(&r, &path[i], &r);
      if (!(fn & 1))
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      idm_merkle_node(&r, &r, &path[i]);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0)
    return idm_fail(why, IDM_ERR_MERKLE_PROOF, "inclusion path too short (%zu) for leaf %llu of %llu",
                    k, (unsigned long long)m, (unsigned long long)n);
  *root = r;
  return IDM_OK;
}

void idm_merkle_root_ref(idm_hash_t *root, const idm_hash_t *leaves, size_t n) {
  if (n == 0) {
    idm_merkle_empty(root);
    return;
  }
  if (n == 1) {
    *root = leaves[0];
    return;
  }
  size_t k = 1;
  while (k * 2 < n)
    k *= 2;
  idm_hash_t l, r;
  idm_merkle_root_ref(&l, leaves, k);
  idm_merkle_root_ref(&r, leaves + k, n - k);
  idm_merkle_node(root, &l, &r);
}
