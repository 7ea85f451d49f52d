/* RFC 9162 §2.1 Merkle trees over a batch of credentials: leaf and node hashes, the tree
 * head, inclusion paths and their verification.
 *
 *   leaf = SHA-256(0x00 ‖ data)          node = SHA-256(0x01 ‖ left ‖ right)
 *
 * For n leaves that are not a power of two the tree splits at the largest power of two
 * below n (RFC 9162 MTH), which is the same tree as pairing each level left to right and
 * carrying a lone last node up unchanged; idm_merkle_tree builds it that way, level by
 * level, in caller-owned memory. No I/O, no allocation. */
#ifndef IDM_BATCH_MERKLE_H
#define IDM_BATCH_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IDM_HASH_LEN 32
typedef struct idm_hash { uint8_t b[IDM_HASH_LEN]; } idm_hash_t;

void idm_merkle_leaf(idm_hash_t *out, const void *data, size_t len);
void idm_merkle_node(idm_hash_t *out, const idm_hash_t *left, const idm_hash_t *right);
/* The hash of an empty tree, SHA-256(""). */
void idm_merkle_empty(idm_hash_t *out);

/* Leaf hashes in two steps, for many leaves whose data share a prefix (the batcher's
 * per-identity templates): the SHA-256 state after the whole 64-byte blocks of
 * 0x00 ‖ prefix, then each leaf from such a state and its whole data. */
typedef struct idm_leaf_mid {
  uint32_t h[8];      /* SHA-256 state */
  uint32_t done;      /* bytes of 0x00 ‖ prefix absorbed: a multiple of 64 */
} idm_leaf_mid_t;
void idm_merkle_leaf_mid(idm_leaf_mid_t *m, const void *prefix, size_t len);

/* One leaf to finish: *out = SHA-256(0x00 ‖ data[0..len)), where *mid was made from a
 * prefix of data (so len + 1 >= mid->done). */
typedef struct idm_leaf_job {
  idm_hash_t *out;
  const idm_leaf_mid_t *mid;
  const void *data;
  size_t len;
} idm_leaf_job_t;
/* Finishes n leaves, eight at a time with the SHA extensions when the CPU has them
 * (batch/sha256mb.h). A state made from an empty prefix (done 0) hashes the whole leaf. */
void idm_merkle_leaves(const idm_leaf_job_t *jobs, size_t n);

/* Number of hashes idm_merkle_tree needs for n leaves (all levels, leaves included). */
size_t idm_merkle_tree_nodes(size_t n);

/* Builds every level of the tree of n >= 1 leaf hashes. nodes has room for
 * idm_merkle_tree_nodes(n) hashes; the first n must already hold the leaves. The root is
 * nodes[idm_merkle_tree_nodes(n) - 1]. Nodes of a level are hashed up to eight at a time
 * with the SHA extensions when the CPU has them. */
void idm_merkle_tree(idm_hash_t *nodes, size_t n);

/* Length of the inclusion path of leaf m in a tree of n leaves (0 when n == 1). */
size_t idm_merkle_path_len(size_t m, size_t n);

/* Copies the inclusion path of leaf m (m < n) from a tree built by idm_merkle_tree into
 * path (bottom-up, room for idm_merkle_path_len(m, n) hashes). Returns its length. */
size_t idm_merkle_path(idm_hash_t *path, const idm_hash_t *nodes, size_t n, size_t m);

/* RFC 9162 §2.1.3.2: the root that leaf hash `leaf` at index m of a tree of n leaves
 * leads to through path[0..k). IDM_ERR_MERKLE_PROOF (with the reason) when m >= n or the
 * path has the wrong length for (m, n). */
idm_err_t idm_merkle_root_from_path(idm_hash_t *root, const idm_hash_t *leaf, uint64_t m,
                                    uint64_t n, const idm_hash_t *path, size_t k,
                                    idm_why_t *why);

/* Reference implementation (recursive MTH of RFC 9162 §2.1.1) for tests: root of n
 * leaf hashes. */
void idm_merkle_root_ref(idm_hash_t *root, const idm_hash_t *leaves, size_t n);

#ifdef __cplusplus
}
#endif
#endif
