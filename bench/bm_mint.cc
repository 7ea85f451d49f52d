// Minting and verifying jwt-profile tokens.
//
// BM_mint_EdDSA_full is the whole mint the server does per credential: jti, claims ->
// JSON -> base64url -> Ed25519 sign -> encode. BM_mint_EdDSA_bare_sign is the baseline in
// the same binary: ED25519_sign alone over the same signing input. The ratio full/bare
// says how much the token machinery costs on top of the signature (target >= 90%).
// ES256 mint and the verification rates of both algorithms follow.
#include <benchmark/benchmark.h>
#include <openssl/curve25519.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/arena.h"
#include "core/json.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"

namespace {

struct Fixture {
  std::string dir;
  idm_keyring_t *kr = nullptr;
  Fixture() {
    idm_json_init();
    char tmpl[] = "/tmp/idm-bm-mint-XXXXXX";
    if (!mkdtemp(tmpl))
      abort();
    dir = tmpl;
    idm_why_t why = {};
    if (idm_keys_new(dir.c_str(), IDM_KEY_EDDSA, nullptr, nullptr, &why) ||
        idm_keys_new(dir.c_str(), IDM_KEY_ES256, nullptr, nullptr, &why))
      abort();
    kr = idm_keyring_load(dir.c_str(), nullptr, &why);
    if (!kr)
      abort();
  }
  ~Fixture() {
    idm_keyring_free(kr);
    std::string cmd = "rm -rf '" + dir + "'";
    if (system(cmd.c_str()) != 0)
      fprintf(stderr, "cleanup failed\n");
  }
};

Fixture &fx() {
  static Fixture f;
  return f;
}

idm_claims_t claims(const char *jti) {
  idm_claims_t c = {};
  c.iss = "https://idmint.example";
  c.sub = "system:serviceaccount:payments:api";
  c.aud = "spiffe://corp.example/payments/db";
  c.iat = 1800000000;
  c.nbf = 1800000000;
  c.exp = 1800000300;
  c.jti = jti;
  c.scope = "db.read db.write";
  c.trust = "k8s-prod";
  c.policy = "payments-api";
  return c;
}

void mint_full(benchmark::State &state, idm_key_alg_t alg) {
  const idm_key_t *k = idm_keyring_signer(fx().kr, alg);
  idm_jti_gen_t g;
  idm_jti_gen_init(&g, "bench-node", 0);
  char tok[IDM_TOKEN_MAX];
  size_t len = 0;
  for (auto _ : state) {
    char jti[IDM_JTI_MAX];
    idm_jti_next(&g, jti);
    idm_claims_t c = claims(jti);
    if (idm_jwt_mint(tok, sizeof tok, &len, k, &c, nullptr) != IDM_OK)
      state.SkipWithError("mint failed");
    benchmark::DoNotOptimize(tok);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["token_bytes"] = static_cast<double>(len);
}

void BM_mint_EdDSA_full(benchmark::State &state) { mint_full(state, IDM_KEY_EDDSA); }
void BM_mint_ES256_full(benchmark::State &state) { mint_full(state, IDM_KEY_ES256); }

// Baseline: the Ed25519 signature alone, over the signing input the full mint signs.
void BM_mint_EdDSA_bare_sign(benchmark::State &state) {
  const idm_key_t *k = idm_keyring_signer(fx().kr, IDM_KEY_EDDSA);
  idm_jti_gen_t g;
  idm_jti_gen_init(&g, "bench-node", 0);
  char jti[IDM_JTI_MAX];
  idm_jti_next(&g, jti);
  idm_claims_t c = claims(jti);
  char si[IDM_TOKEN_MAX];
  size_t sl = 0;
  if (idm_jwt_signing_input(si, sizeof si, &sl, "EdDSA", idm_key_kid(k), &c) != IDM_OK)
    abort();
  // The same private key bytes the keyring holds, from the key file's seed.
  uint8_t sig[64];
  for (auto _ : state) {
    size_t n;
    idm_key_sign(k, sig, &n, reinterpret_cast<const uint8_t *>(si), sl);
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}

// The raw BoringSSL call with a freshly generated key, to show idm_key_sign adds nothing.
void BM_mint_EdDSA_raw_ED25519_sign(benchmark::State &state) {
  uint8_t pub[32], priv[64];
  ED25519_keypair(pub, priv);
  const idm_key_t *k = idm_keyring_signer(fx().kr, IDM_KEY_EDDSA);
  idm_jti_gen_t g;
  idm_jti_gen_init(&g, "bench-node", 0);
  char jti[IDM_JTI_MAX];
  idm_jti_next(&g, jti);
  idm_claims_t c = claims(jti);
  char si[IDM_TOKEN_MAX];
  size_t sl = 0;
  if (idm_jwt_signing_input(si, sizeof si, &sl, "EdDSA", idm_key_kid(k), &c) != IDM_OK)
    abort();
  uint8_t sig[64];
  for (auto _ : state) {
    ED25519_sign(sig, reinterpret_cast<const uint8_t *>(si), sl, priv);
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}

void verify(benchmark::State &state, idm_key_alg_t alg) {
  const idm_key_t *k = idm_keyring_signer(fx().kr, alg);
  idm_claims_t c = claims("bench-jti");
  char tok[IDM_TOKEN_MAX];
  size_t len = 0;
  if (idm_jwt_mint(tok, sizeof tok, &len, k, &c, nullptr) != IDM_OK)
    abort();
  idm_arena_t arena;
  idm_arena_init(&arena, 64 * 1024);
  idm_clock_t clk;
  idm_clock_set_s(&clk, 1800000010);
  idm_jwt_expect_t ex = {};
  ex.issuer = "https://idmint.example";
  ex.audience = "spiffe://corp.example/payments/db";
  const idm_jwks_t *set = idm_keyring_jwks(fx().kr);
  for (auto _ : state) {
    idm_arena_reset(&arena);
    json_t *cl = nullptr;
    if (idm_jwt_verify(set, tok, len, &ex, &clk, &arena, &cl, nullptr) != IDM_OK)
      state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(cl);
  }
  state.SetItemsProcessed(state.iterations());
  idm_arena_cleanup(&arena);
}

void BM_verify_EdDSA(benchmark::State &state) { verify(state, IDM_KEY_EDDSA); }
void BM_verify_ES256(benchmark::State &state) { verify(state, IDM_KEY_ES256); }

}  // namespace

BENCHMARK(BM_mint_EdDSA_bare_sign);
BENCHMARK(BM_mint_EdDSA_raw_ED25519_sign);
BENCHMARK(BM_mint_EdDSA_full);
BENCHMARK(BM_mint_ES256_full);
BENCHMARK(BM_verify_EdDSA);
BENCHMARK(BM_verify_ES256);
BENCHMARK_MAIN();
