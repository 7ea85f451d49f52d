// Batch minting per core against its baselines, in one binary (docs/PERFORMANCE.md):
//   BM_batch_ed25519_sign      bare Ed25519 signature of a token-sized message (the
//                              per-token signing limit)
//   BM_batch_mint_jwt          jwt-profile token: claims, encode, one signature each
//   BM_batch_mint_batch/N      batch-profile tokens through the batcher, N per batch:
//                              claims, encode, leaf, tree, one signature per batch,
//                              proof per token; no audit line
//   BM_batch_mint_batch_audit/N  the same plus the audit line (one entry per credential,
//                              hashed and chained) written to a file (fsync none)
//   BM_batch_mint_jwt_audit/N  jwt profile through the batcher with the audit line
// Items are credentials; compare items_per_second rows of one run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

extern "C" {
#include "batch/audit.h"
#include "batch/batch.h"
#include "core/json.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"
}

namespace {

struct Env {
  std::string dir;
  idm_keyring_t *kr = nullptr;
  const idm_key_t *ed = nullptr;
  Env() {
    idm_json_init();
    char d[] = "/tmp/idm_bm_batch_XXXXXX";
    if (!mkdtemp(d))
      abort();
    dir = d;
    idm_why_t why = {{0}};
    std::string kd = dir + "/keys";
    if (idm_keys_new(kd.c_str(), IDM_KEY_EDDSA, nullptr, nullptr, &why))
      abort();
    kr = idm_keyring_load(kd.c_str(), nullptr, &why);
    ed = kr ? idm_keyring_signer(kr, IDM_KEY_EDDSA) : nullptr;
    if (!ed)
      abort();
  }
  ~Env() {
    idm_keyring_free(kr);
    std::string cmd = "rm -rf '" + dir + "'";
    if (system(cmd.c_str())) {
    }
  }
};

Env &env() {
  static Env e;
  return e;
}

// Typical claims: a Kubernetes service account asking for a database credential.
struct Claims {
  char jti[IDM_JTI_MAX];
  idm_jti_gen_t gen;
  idm_claims_t c;
  Claims() {
    idm_jti_gen_init(&gen, "bench", 0);
    c = idm_claims_t{};
    c.iss = "https://idmint.example";
    c.sub = "system:serviceaccount:payments:api";
    c.aud = "spiffe://corp.example/payments/db";
    c.iat = 1800000000;
    c.nbf = c.iat;
    c.exp = c.iat + 120;
    c.jti = jti;
    c.scope = "db.read db.write";
    c.trust = "k8s-prod";
    c.policy = "payments-api";
  }
  const idm_claims_t *next() {
    idm_jti_next(&gen, jti);
    return &c;
  }
};

const char *const kRules[] = {"payments-api"};

void BM_batch_ed25519_sign(benchmark::State &st) {
  uint8_t msg[300], sig[IDM_SIG_MAX];
  memset(msg, 'a', sizeof msg);
  size_t len;
  for (auto _ : st) {
    idm_key_sign(env().ed, sig, &len, msg, sizeof msg);
    benchmark::DoNotOptimize(sig);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_batch_ed25519_sign);

void BM_batch_mint_jwt(benchmark::State &st) {
  Claims cl;
  char out[IDM_TOKEN_MAX];
  size_t len;
  for (auto _ : st) {
    idm_jwt_mint(out, sizeof out, &len, env().ed, cl.next(), nullptr);
    benchmark::DoNotOptimize(out);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_batch_mint_jwt);

void run_batcher(benchmark::State &st, idm_profile_t prof, bool audit) {
  size_t n = (size_t)st.range(0);
  idm_audit_log_t *log = nullptr;
  std::string path = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/idm_bm_audit-" + std::to_string(getpid()) + "-" + std::to_string(n) + (audit ? "a" : "n") +
                     (prof == IDM_PROFILE_JWT ? "j" : "b") + ".log";
  unlink(path.c_str());
  idm_why_t why = {{0}};
  if (audit && !(log = idm_audit_open(path.c_str(), nullptr, &why)))
    abort();
  idm_batch_opts_t o = {};
  o.key = env().ed;
  o.items_max = n;
  o.log = log;
  o.iss = "https://idmint.example";
  idm_batch_t *b;
  if (idm_batch_new(&b, &o, &why))
    abort();
  std::vector<char> out(n * IDM_TOKEN_MAX);
  Claims cl;
  for (auto _ : st) {
    for (size_t i = 0; i < n; i++) {
      idm_batch_item_t it = {};
      it.allow = true;
      it.profile = prof;
      it.key = prof == IDM_PROFILE_JWT ? env().ed : nullptr;
      it.claims = cl.next();
      it.target = "payments-db";
      it.rules = kRules;
      it.rules_n = 1;
      it.out = &out[i * IDM_TOKEN_MAX];
      it.out_cap = IDM_TOKEN_MAX;
      if (idm_batch_add(b, &it, &why))
        abort();
    }
    if (idm_batch_seal_sync(b, nullptr, nullptr, nullptr, &why))
      abort();
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(st.iterations() * (int64_t)n);
  st.counters["token_bytes"] = (double)strlen(&out[0]);
  idm_batch_free(b);
  idm_audit_close(log);
  unlink(path.c_str());
}

void BM_batch_mint_batch(benchmark::State &st) { run_batcher(st, IDM_PROFILE_BATCH, false); }
void BM_batch_mint_batch_audit(benchmark::State &st) { run_batcher(st, IDM_PROFILE_BATCH, true); }
void BM_batch_mint_jwt_audit(benchmark::State &st) { run_batcher(st, IDM_PROFILE_JWT, true); }
BENCHMARK(BM_batch_mint_batch)->Arg(1)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(BM_batch_mint_batch_audit)->Arg(1)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(BM_batch_mint_jwt_audit)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
