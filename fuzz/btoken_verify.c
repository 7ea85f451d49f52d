/* Fuzz target: the batch-token (EdDSA-MTB1) verifier of include/idmint/verify.h.
 *
 * At start the harness mints one batch of NTOK tokens with a fixed Ed25519 key (the
 * format code under test builds the tree and proofs; the key is the only secret) and
 * builds a verifier for its JWKS. Each input is used twice:
 *  1. as a token: the verifier must not crash, and if it accepts, the input must be one
 *     of the minted tokens, since nobody else holds the key (any other acceptance is a
 *     forgery);
 *  2. as a patch: byte 0 picks a minted token, then pairs (position, value) overwrite
 *     bytes of it; a result that differs from the original must be refused.
 * Seeds (fuzz/corpus/btoken_verify) are minted tokens and edits of them. */
#include <openssl/curve25519.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch/btoken.h"
#include "batch/merkle.h"
#include "core/b64url.h"
#include "core/json.h"
#include "crypto/jwt.h"
#include "idmint/verify.h"

#define NTOK 5
#define NOW 1800000100

static char toks[NTOK][IDM_TOKEN_MAX];
static size_t tok_len[NTOK];
static idm_verifier_t *ver;

static void mint(void) {
  uint8_t seed[32], pub[32], priv[64];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)(i * 7 + 1);
  ED25519_keypair_from_seed(pub, priv, seed);
  char x[64], jwks[256];
  x[idm_b64url_encode(x, sizeof x, pub, 32)] = 0;
  const char *kid = "fuzz-key";
  snprintf(jwks, sizeof jwks,
           "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"%s\"}]}", x,
           kid);
  idm_verify_opts_t o = {.issuer = "https://idmint.fuzz", .now_s = NOW};
  char reason[IDM_VERIFY_REASON_LEN];
  ver = idm_verifier_new(jwks, strlen(jwks), &o, reason);
  if (!ver) {
    fprintf(stderr, "btoken_verify: %s\n", reason);
    abort();
  }
  idm_hash_t nodes[2 * NTOK + 8], path[IDM_MERKLE_PATH_MAX];
  size_t si[NTOK];
  for (int i = 0; i < NTOK; i++) {
    char sub[32], jti[32];
    snprintf(sub, sizeof sub, "workload-%d", i);
    snprintf(jti, sizeof jti, "jti-%d", i);
    idm_claims_t c = {.iss = "https://idmint.fuzz", .sub = sub, .aud = "db", .iat = NOW - 100,
                      .nbf = NOW - 100, .exp = NOW + 200, .jti = jti, .scope = "read",
                      .trust = "k8s", .policy = "p"};
    if (idm_jwt_signing_input(toks[i], IDM_TOKEN_MAX, &si[i], IDM_BTOKEN_ALG, kid, &c))
      abort();
    idm_merkle_leaf(&nodes[i], toks[i], si[i]);
  }
  idm_merkle_tree(nodes, NTOK);
  idm_batch_head_t h = {.seq = 42, .size = NTOK, .time_s = NOW - 100,
                        .root = nodes[idm_merkle_tree_nodes(NTOK) - 1]};
  uint8_t msg[IDM_BTOKEN_MSG_MAX], sig[64], proof[IDM_BTOKEN_PROOF_MAX];
  size_t ml = idm_btoken_message(msg, kid, strlen(kid), &h);
  ED25519_sign(sig, msg, ml, priv);
  for (int i = 0; i < NTOK; i++) {
    size_t k = idm_merkle_path(path, nodes, NTOK, (size_t)i);
    size_t pl = idm_btoken_proof_encode(proof, sizeof proof, &h, (uint32_t)i, path, k, sig);
    toks[i][si[i]] = '.';
    tok_len[i] = si[i] + 1 + idm_b64url_encode(toks[i] + si[i] + 1, IDM_TOKEN_MAX - si[i] - 1, proof, pl);
    if (idm_verify_token(ver, toks[i], tok_len[i], 0, NULL, NULL, 0, reason)) {
      fprintf(stderr, "btoken_verify: minted token %d refused: %s\n", i, reason);
      abort();
    }
  }
  if (getenv("IDM_FUZZ_PRINT_SEEDS"))
    for (int i = 0; i < NTOK; i++)
      printf("%.*s\n", (int)tok_len[i], toks[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ver)
    mint();
  char reason[IDM_VERIFY_REASON_LEN], claims[2048];
  idm_verified_t out;
  if (idm_verify_token(ver, (const char *)data, size, 0, &out, claims, sizeof claims, reason) == 0) {
    bool known = false;
    for (int i = 0; i < NTOK; i++)
      known |= size == tok_len[i] && !memcmp(data, toks[i], size);
    if (!known)
      abort(); /* forgery accepted */
  }
  if (size >= 3) {
    int t = data[0] % NTOK;
    char tok[IDM_TOKEN_MAX];
    memcpy(tok, toks[t], tok_len[t]);
    for (size_t i = 1; i + 1 < size; i += 2)
      tok[((size_t)data[i] * 7 + i) % tok_len[t]] = (char)data[i + 1];
    if (memcmp(tok, toks[t], tok_len[t]) &&
        idm_verify_token(ver, tok, tok_len[t], 0, NULL, NULL, 0, reason) == 0)
      abort(); /* a changed token accepted */
  }
  return 0;
}
