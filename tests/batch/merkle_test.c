/* Merkle trees and the batch proof format: the level-by-level tree against the recursive
 * RFC 9162 reference for every size up to 300, every inclusion path verified by the RFC
 * algorithm, and tampered paths and proofs refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "batch/btoken.h"
#include "batch/merkle.h"
#include "batch/sha256mb.h"

static void leaves_fill(idm_hash_t *l, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "leaf-%zu", i);
    idm_merkle_leaf(&l[i], buf, (size_t)len);
  }
}

Test(merkle, rfc9162_known_vector) {
  /* RFC 6962/9162 test vectors (certificate-transparency-go merkle tests): the empty
   * tree and the tree of the single empty leaf. */
  idm_hash_t h;
  idm_merkle_empty(&h);
  static const uint8_t empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                    0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                    0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
  cr_assert_eq(memcmp(h.b, empty, 32), 0);
  idm_merkle_leaf(&h, "", 0);
  static const uint8_t leaf_empty[32] = {0x6e, 0x34, 0x0b, 0x9c, 0xff, 0xb3, 0x7a, 0x98,
                                         0x9c, 0xa5, 0x44, 0xe6, 0xbb, 0x78, 0x0a, 0x2c,
                                         0x78, 0x90, 0x1d, 0x3f, 0xb3, 0x37, 0x38, 0x76,
                                         0x85, 0x11, 0xa3, 0x06, 0x17, 0xaf, 0xa0, 0x1d};
  cr_assert_eq(memcmp(h.b, leaf_empty, 32), 0);
}

Test(merkle, tree_matches_reference_and_every_path_verifies) {
  enum { N = 300 };
  static idm_hash_t leaves[N], nodes[2 * N + 16], path[IDM_MERKLE_PATH_MAX];
  leaves_fill(leaves, N);
  for (size_t n = 1; n <= N; n++) {
    cr_assert_leq(idm_merkle_tree_nodes(n), 2 * n + 16);
    memcpy(nodes, leaves, n * sizeof *nodes);
    idm_merkle_tree(nodes, n);
    idm_hash_t ref, root = nodes[idm_merkle_tree_nodes(n) - 1];
    idm_merkle_root_ref(&ref, leaves, n);
    cr_assert_eq(memcmp(ref.b, root.b, 32), 0, "root differs for n=%zu", n);
    for (size_t m = 0; m < n; m++) {
      size_t k = idm_merkle_path(path, nodes, n, m);
      cr_assert_eq(k, idm_merkle_path_len(m, n));
      idm_hash_t got;
      idm_why_t why = {{0}};
      cr_assert_eq(idm_merkle_root_from_path(&got, &leaves[m], m, n, path, k, &why), IDM_OK,
                   "n=%zu m=%zu: %s", n, m, why.text);
      cr_assert_eq(memcmp(got.b, root.b, 32), 0, "n=%zu m=%zu", n, m);
      /* The same path for another index, a shorter path, a flipped sibling: refused or a
       * different root. */
      if (n > 1) {
        size_t m2 = (m + 1) % n;
        idm_err_t e = idm_merkle_root_from_path(&got, &leaves[m], m2, n, path, k, NULL);
        cr_assert(e != IDM_OK || memcmp(got.b, root.b, 32) != 0, "n=%zu m=%zu moved", n, m);
        cr_assert_neq(idm_merkle_root_from_path(&got, &leaves[m], m, n, path, k - 1, NULL),
                      IDM_OK);
        path[k / 2].b[7] ^= 0x20;
        e = idm_merkle_root_from_path(&got, &leaves[m], m, n, path, k, NULL);
        cr_assert(e != IDM_OK || memcmp(got.b, root.b, 32) != 0);
      }
    }
  }
}

/* The tree with the SHA extensions (when the CPU has them) and without, against the
 * recursive reference, which hashes one node at a time with BoringSSL. */
Test(merkle, tree_with_and_without_sha_extensions_matches_reference) {
  enum { N = 70 };
  static idm_hash_t leaves[N], nodes[2 * N + 16];
  leaves_fill(leaves, N);
  for (int accel = 0; accel < 2; accel++) {
    idm_sha256mb_enable(accel);
    for (size_t n = 1; n <= N; n++) {
      memcpy(nodes, leaves, n * sizeof *nodes);
      idm_merkle_tree(nodes, n);
      idm_hash_t ref;
      idm_merkle_root_ref(&ref, leaves, n);
      cr_assert_eq(memcmp(ref.b, nodes[idm_merkle_tree_nodes(n) - 1].b, 32), 0, "n=%zu accel=%d",
                   n, accel);
    }
  }
  idm_sha256mb_enable(true);
}

/* Leaves finished from a prefix state, in groups of every size, with data lengths around
 * every block boundary and longer than the interleaved path takes, equal
 * idm_merkle_leaf of the whole data. */
Test(merkle, leaves_from_a_prefix_state_match_whole_leaves) {
  enum { J = 37 };
  static char data[J][2100];
  static idm_leaf_mid_t mid[J];
  static idm_hash_t got[J], want[J];
  idm_leaf_job_t jobs[J];
  unsigned x = 12345;
  for (int accel = 0; accel < 2; accel++) {
    idm_sha256mb_enable(accel);
    for (int round = 0; round < 40; round++) {
      for (size_t i = 0; i < J; i++) {
        x = x * 1103515245u + 12345u;
        size_t plen = (x >> 8) % 520;           /* the shared prefix */
        size_t len = plen + (x >> 20) % 270;    /* the whole data */
        if (i % 11 == 3)
          len = plen; /* nothing after the prefix */
        if (i % 13 == 5) { /* a long leaf, from no prefix or a long one */
          len = 2000 + i % 64;
          plen = i % 2 ? 0 : 1000 + round;
        }
        for (size_t b = 0; b < len; b++)
          data[i][b] = (char)(b * 7 + i + round);
        idm_merkle_leaf_mid(&mid[i], data[i], plen);
        cr_assert_eq(mid[i].done % 64, 0);
        cr_assert_leq(mid[i].done, plen + 1);
        idm_merkle_leaf(&want[i], data[i], len);
        jobs[i] = (idm_leaf_job_t){&got[i], &mid[i], data[i], len};
      }
      for (size_t n = 0; n <= J; n += 1 + round % 5) {
        memset(got, 0, sizeof got);
        idm_merkle_leaves(jobs, n);
        for (size_t i = 0; i < n; i++)
          cr_assert_eq(memcmp(got[i].b, want[i].b, 32), 0, "accel=%d round=%d n=%zu i=%zu",
                       accel, round, n, i);
      }
    }
  }
  idm_sha256mb_enable(true);
}

Test(merkle, index_out_of_range_refused) {
  idm_hash_t leaf = {{0}}, root;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_merkle_root_from_path(&root, &leaf, 3, 3, NULL, 0, &why), IDM_ERR_MERKLE_PROOF);
  cr_assert(strstr(why.text, "not below") != NULL);
}

Test(btoken, proof_round_trip_and_strict_decode) {
  idm_batch_head_t h = {.seq = 0x0102030405060708ull, .size = 5, .time_s = 1700000000};
  idm_hash_t path[3];
  memset(path, 0xab, sizeof path);
  uint8_t sig[64];
  memset(sig, 0x5a, sizeof sig);
  uint8_t buf[IDM_BTOKEN_PROOF_MAX];
  /* leaf 1 of 5 has a path of 3 */
  cr_assert_eq(idm_merkle_path_len(1, 5), 3);
  size_t len = idm_btoken_proof_encode(buf, sizeof buf, &h, 1, path, 3, sig);
  cr_assert_eq(len, IDM_BTOKEN_PROOF_FIXED + 3 * 32);
  idm_btoken_proof_t p;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_btoken_proof_decode(&p, buf, len, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(p.head.seq, h.seq);
  cr_assert_eq(p.head.size, 5);
  cr_assert_eq(p.head.time_s, h.time_s);
  cr_assert_eq(p.index, 1);
  cr_assert_eq(p.path_len, 3);
  cr_assert_eq(memcmp(p.sig, sig, 64), 0);
  cr_assert_eq(memcmp(p.path, path, 96), 0);
  /* every truncation and one extra byte are refused */
  for (size_t l = 0; l < len; l++)
    cr_assert_eq(idm_btoken_proof_decode(&p, buf, l, NULL), IDM_ERR_BTOKEN_PROOF, "len %zu", l);
  cr_assert_eq(idm_btoken_proof_decode(&p, buf, len + 1, NULL), IDM_ERR_BTOKEN_PROOF);
  /* wrong version, index out of range, path length that does not fit (m, n) */
  buf[0] = 2;
  cr_assert_eq(idm_btoken_proof_decode(&p, buf, len, &why), IDM_ERR_BTOKEN_PROOF);
  buf[0] = 1;
  buf[24] = 5; /* index 5 of 5 */
  cr_assert_eq(idm_btoken_proof_decode(&p, buf, len, &why), IDM_ERR_BTOKEN_PROOF);
  buf[24] = 4; /* leaf 4 of 5 needs a path of 1 */
  cr_assert_eq(idm_btoken_proof_decode(&p, buf, len, &why), IDM_ERR_BTOKEN_PROOF);
  cr_assert(strstr(why.text, "needs 1") != NULL, "%s", why.text);
}

Test(btoken, message_layout) {
  idm_batch_head_t h = {.seq = 7, .size = 2, .time_s = 9};
  memset(h.root.b, 0xcd, 32);
  uint8_t msg[IDM_BTOKEN_MSG_MAX];
  size_t n = idm_btoken_message(msg, "kid1", 4, &h);
  cr_assert_eq(n, 32 + 1 + 4 + 24 + 32);
  cr_assert_eq(memcmp(msg, "idmint/EdDSA-MTB1/batch-root/v1\0", 32), 0);
  cr_assert_eq(msg[32], 4);
  cr_assert_eq(memcmp(msg + 33, "kid1", 4), 0);
  cr_assert_eq(msg[37 + 7], 7);
  cr_assert_eq(msg[45 + 7], 2);
  cr_assert_eq(msg[53 + 7], 9);
  cr_assert_eq(msg[61], 0xcd);
  char big[300];
  memset(big, 'a', sizeof big);
  cr_assert_eq(idm_btoken_message(msg, big, 256, &h), 0);
}
