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

#include "batch/sha256mb.h"

#define MB 8 /* messages hashed together */

static void put_be(idm_hash_t *out, const uint32_t st[8]) {
  for (int i = 0; i < 8; i++) {
    out->b[4 * i] = (uint8_t)(st[i] >> 24);
    out->b[4 * i + 1] = (uint8_t)(st[i] >> 16);
    out->b[4 * i + 2] = (uint8_t)(st[i] >> 8);
    out->b[4 * i + 3] = (uint8_t)st[i];
  }
}

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

void idm_merkle_leaf_mid(idm_leaf_mid_t *m, const void *prefix, size_t len) {
  static const uint8_t zero = 0x00;
  size_t whole = (1 + len) / 64 * 64; /* bytes of 0x00 ‖ prefix in whole blocks */
  SHA256_CTX c;
  SHA256_Init(&c);
  if (whole) {
    SHA256_Update(&c, &zero, 1);
    SHA256_Update(&c, prefix, whole - 1);
  }
  memcpy(m->h, c.h, sizeof m->h); /* no bytes pending: c.h is the state */
  m->done = (uint32_t)whole;
}

/* The portable finish: BoringSSL's SHA-256 resumed from the state (its context fields are
 * public in openssl/sha.h). */
static void leaf_finish_one(const idm_leaf_job_t *j) {
  SHA256_CTX c;
  memset(&c, 0, sizeof c);
  memcpy(c.h, j->mid->h, sizeof c.h);
  c.Nl = (uint32_t)((uint64_t)j->mid->done << 3);
  c.Nh = (uint32_t)((uint64_t)j->mid->done >> 29);
  c.md_len = SHA256_DIGEST_LENGTH;
  if (j->mid->done == 0) {
    static const uint8_t zero = 0x00;
    SHA256_Update(&c, &zero, 1);
    SHA256_Update(&c, j->data, j->len);
  } else {
    SHA256_Update(&c, (const uint8_t *)j->data + j->mid->done - 1, j->len + 1 - j->mid->done);
  }
  SHA256_Final(j->out->b, &c);
}

/* One leaf in flight in the interleaved path. The message is 0x00 ‖ data: its block j >= 1
 * lies in data at 64j - 1 and is read in place; block 0 and the last one or two blocks
 * (the bytes after the last whole block, 0x80, zeros, the bit length) are built here. */
typedef struct lane {
  const idm_leaf_job_t *j;
  uint32_t st[8];
  size_t b, nb;       /* blocks done, blocks in all */
  size_t start, full; /* first block to hash; whole blocks of the message */
  uint8_t first[64];
  uint8_t tail[128];
} lane_t;

static void lane_init(lane_t *l, const idm_leaf_job_t *j) {
  const uint8_t *d = j->data;
  uint64_t total = (uint64_t)j->len + 1;
  l->j = j;
  memcpy(l->st, j->mid->h, sizeof l->st);
  l->full = (size_t)(total / 64);
  l->start = j->mid->done / 64;
  l->b = 0;
  if (l->start == 0 && l->full > 0) {
    l->first[0] = 0x00;
    memcpy(l->first + 1, d, 63);
  }
  size_t rest = (size_t)(total - 64 * (uint64_t)l->full);
  if (l->full == 0) {
    l->tail[0] = 0x00;
    memcpy(l->tail + 1, d, j->len);
  } else {
    memcpy(l->tail, d + 64 * l->full - 1, rest);
  }
  size_t tb = rest + 9 <= 64 ? 1 : 2;
  memset(l->tail + rest, 0, 64 * tb - rest);
  l->tail[rest] = 0x80;
  uint64_t bits = total << 3;
  for (int i = 0; i < 8; i++)
    l->tail[64 * tb - 1 - i] = (uint8_t)(bits >> (8 * i));
  l->nb = l->full - l->start + tb;
}

static const uint8_t *lane_block(const lane_t *l) {
  size_t k = l->start + l->b;
  if (k < l->full)
    return k == 0 ? l->first : (const uint8_t *)l->j->data + 64 * k - 1;
  return l->tail + 64 * (k - l->full);
}

void idm_merkle_leaves(const idm_leaf_job_t *jobs, size_t n) {
  if (!idm_sha256mb_available()) {
    for (size_t i = 0; i < n; i++)
      leaf_finish_one(&jobs[i]);
    return;
  }
  /* Eight lanes kept busy: a lane whose leaf is done takes the next job. */
  lane_t lanes[MB];
  size_t active = 0, next = 0;
  while (active < MB && next < n)
    lane_init(&lanes[active++], &jobs[next++]);
  while (active > 0) {
    uint32_t *sp[MB];
    const uint8_t *bp[MB];
    for (size_t i = 0; i < active; i++) {
      sp[i] = lanes[i].st;
      bp[i] = lane_block(&lanes[i]);
    }
    idm_sha256mb_compress(sp, bp, active);
    for (size_t i = active; i-- > 0;) {
      lane_t *l = &lanes[i];
      if (++l->b < l->nb)
        continue;
      put_be(l->j->out, l->st);
      if (next < n)
        lane_init(l, &jobs[next++]);
      else if (i != --active)
        lanes[i] = lanes[active];
    }
  }
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

/* up[i] = node(lvl[2i], lvl[2i+1]) for i < k <= MB: two blocks each,
 * 0x01 ‖ l ‖ r[0..31) and r[31] 0x80 0... (length 65 * 8 = 0x208 bits). */
static void nodes_mb(idm_hash_t *up, const idm_hash_t *lvl, size_t k) {
  uint8_t b1[MB][64], b2[MB][64];
  uint32_t st[MB][8], *sp[MB];
  const uint8_t *bp[MB];
  for (size_t i = 0; i < k; i++) {
    const idm_hash_t *l = &lvl[2 * i], *r = &lvl[2 * i + 1];
    b1[i][0] = 0x01;
    memcpy(&b1[i][1], l->b, 32);
    memcpy(&b1[i][33], r->b, 31);
    memset(b2[i], 0, 64);
    b2[i][0] = r->b[31];
    b2[i][1] = 0x80;
    b2[i][62] = 0x02;
    b2[i][63] = 0x08;
    memcpy(st[i], idm_sha256_iv, sizeof st[i]);
    sp[i] = st[i];
    bp[i] = b1[i];
  }
  idm_sha256mb_compress(sp, bp, k);
  for (size_t i = 0; i < k; i++)
    bp[i] = b2[i];
  idm_sha256mb_compress(sp, bp, k);
  for (size_t i = 0; i < k; i++)
    put_be(&up[i], st[i]);
}

void idm_merkle_tree(idm_hash_t *nodes, size_t n) {
  idm_hash_t *lvl = nodes;
  bool mb = idm_sha256mb_available();
  while (n > 1) {
    idm_hash_t *up = lvl + n;
    size_t pairs = n / 2;
    if (mb) {
      for (size_t i = 0; i < pairs; i += MB)
        nodes_mb(&up[i], &lvl[2 * i], pairs - i < MB ? pairs - i : MB);
    } else {
      for (size_t i = 0; i < pairs; i++)
        idm_merkle_node(&up[i], &lvl[2 * i], &lvl[2 * i + 1]);
    }
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
