// Batch minting per core against its baselines, in one binary (docs/PERFORMANCE.md):
//   BM_batch_ed25519_sign      bare Ed25519 signature of a token-sized message (the
//                              per-token signing limit)
//   BM_batch_mint_jwt          jwt-profile token: claims, encode, one signature each
//   BM_batch_mint_batch/N      batch-profile tokens through the batcher, N per batch:
//                              claims, encode, leaf, tree, one signature per batch,
//                              proof per token; no audit line
//   BM_batch_mint_batch_audit/N  the same plus the audit line (one entry per credential,
//                              hashed and chained) written to a file (fsync none)
//   BM_batch_mint_batch_miss/N, BM_batch_mint_batch_audit_miss/N  the same two with every
//                              credential for a different identity (subject), so none
//                              finds its per-identity template: the cost of a miss
//   BM_batch_mint_jwt_audit/N  jwt profile through the batcher with the audit line
//   BM_batch_verify_batch      verifying batch tokens (verify.h) from batches of 256: leaf,
//                              path, and the batch signature from the verifier's cache
//   BM_batch_verify_jwt        verifying jwt-profile tokens: one signature check each
//   BM_batch_pipeline/N        the whole in-process issuance path per request: cached
//                              attestation of a Kubernetes service-account token, policy
//                              decision, claims, batch-profile mint and encode, audit line
//                              (N per batch); BM_batch_pipeline_jwt/N the same, jwt profile
//   BM_batch_merkle_tree/N/sha_ni  the RFC 9162 tree over N leaves (N-1 two-block nodes),
//                              sha_ni 1: eight nodes at a time with the SHA extensions
//                              (batch/sha256mb.c), 0: one at a time through BoringSSL;
//                              items are nodes
// Items are credentials (nodes for the tree rows); compare items_per_second rows of one run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <array>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include <openssl/curve25519.h>

extern "C" {
#include "attest/attest.h"
#include "batch/audit.h"
#include "core/b64url.h"
#include "policy.h"
#include "batch/batch.h"
#include "batch/merkle.h"
#include "batch/sha256mb.h"
#include "core/json.h"
#include "crypto/jwt.h"
#include "idmint/verify.h"
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

void BM_batch_merkle_tree(benchmark::State &st) {
  size_t n = (size_t)st.range(0);
  bool ni = st.range(1) != 0;
  if (ni && !idm_sha256mb_available()) {
    st.SkipWithError("this CPU has no SHA extensions");
    return;
  }
  std::vector<idm_hash_t> nodes(idm_merkle_tree_nodes(n));
  for (size_t i = 0; i < n; i++)
    idm_merkle_leaf(&nodes[i], &i, sizeof i);
  idm_sha256mb_enable(ni);
  for (auto _ : st) {
    idm_merkle_tree(nodes.data(), n);
    benchmark::DoNotOptimize(nodes.back());
  }
  idm_sha256mb_enable(true);
  st.SetItemsProcessed(st.iterations() * (int64_t)(n - 1));
}
BENCHMARK(BM_batch_merkle_tree)->ArgNames({"", "sha_ni"})->Args({256, 1})->Args({256, 0})
    ->Args({1024, 1})->Args({1024, 0});

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

void run_batcher(benchmark::State &st, idm_profile_t prof, bool audit, bool distinct = false) {
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
  char sub[64];
  uint64_t who = 0;
  for (auto _ : st) {
    for (size_t i = 0; i < n; i++) {
      if (distinct) {  // a new subject for every credential: a template miss each time
        snprintf(sub, sizeof sub, "system:serviceaccount:payments:api-%llu",
                 (unsigned long long)who++);
        cl.c.sub = sub;
      }
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
  idm_batch_tmpl_stats_t ts;
  idm_batch_template_stats(b, &ts);
  st.counters["tmpl_hit"] = (double)ts.hits / (double)(ts.hits + ts.misses + 1e-9);
  idm_batch_free(b);
  idm_audit_close(log);
  unlink(path.c_str());
}

void BM_batch_mint_batch(benchmark::State &st) { run_batcher(st, IDM_PROFILE_BATCH, false); }
void BM_batch_mint_batch_audit(benchmark::State &st) { run_batcher(st, IDM_PROFILE_BATCH, true); }
void BM_batch_mint_jwt_audit(benchmark::State &st) { run_batcher(st, IDM_PROFILE_JWT, true); }
void BM_batch_mint_batch_miss(benchmark::State &st) { run_batcher(st, IDM_PROFILE_BATCH, false, true); }
void BM_batch_mint_batch_audit_miss(benchmark::State &st) {
  run_batcher(st, IDM_PROFILE_BATCH, true, true);
}
BENCHMARK(BM_batch_mint_batch)->Arg(1)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(BM_batch_mint_batch_audit)->Arg(1)->Arg(16)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096);
BENCHMARK(BM_batch_mint_jwt_audit)->Arg(64);
BENCHMARK(BM_batch_mint_batch_miss)->Arg(256);
BENCHMARK(BM_batch_mint_batch_audit_miss)->Arg(256);

// ---- verification -------------------------------------------------------------------

void run_verify(benchmark::State &st, idm_profile_t prof) {
  const size_t n = 256;
  idm_batch_opts_t o = {};
  o.key = env().ed;
  o.items_max = n;
  idm_batch_t *b;
  idm_why_t why = {{0}};
  if (idm_batch_new(&b, &o, &why))
    abort();
  std::vector<char> out(n * IDM_TOKEN_MAX);
  std::vector<size_t> len(n);
  Claims cl;
  cl.c.iat = cl.c.nbf = 1800000000;
  cl.c.exp = cl.c.iat + 600;
  for (size_t i = 0; i < n; i++) {
    idm_batch_item_t it = {};
    it.allow = true;
    it.profile = prof;
    it.key = prof == IDM_PROFILE_JWT ? env().ed : nullptr;
    it.claims = cl.next();
    it.out = &out[i * IDM_TOKEN_MAX];
    it.out_cap = IDM_TOKEN_MAX;
    it.out_len = &len[i];
    if (idm_batch_add(b, &it, &why))
      abort();
  }
  if (idm_batch_seal_sync(b, nullptr, nullptr, nullptr, &why))
    abort();
  size_t jl;
  const char *jwks = idm_keyring_jwks_json(env().kr, &jl);
  idm_verify_opts_t vo = {};
  vo.now_s = 1800000010;
  char reason[IDM_VERIFY_REASON_LEN];
  idm_verifier_t *v = idm_verifier_new(jwks, jl, &vo, reason);
  if (!v)
    abort();
  size_t i = 0;
  for (auto _ : st) {
    if (idm_verify_token(v, &out[i * IDM_TOKEN_MAX], len[i], 0, nullptr, nullptr, 0, reason)) {
      st.SkipWithError(reason);
      break;
    }
    i = (i + 1) % n;
  }
  st.SetItemsProcessed(st.iterations());
  idm_verifier_free(v);
  idm_batch_free(b);
}
void BM_batch_verify_batch(benchmark::State &st) { run_verify(st, IDM_PROFILE_BATCH); }
void BM_batch_verify_jwt(benchmark::State &st) { run_verify(st, IDM_PROFILE_JWT); }
BENCHMARK(BM_batch_verify_batch);
BENCHMARK(BM_batch_verify_jwt);

// ---- the whole issuance path ------------------------------------------------------------

constexpr int64_t kNow = 1800000000;

std::string b64(const void *p, size_t n) {
  std::string s(idm_b64url_encoded_len(n), '\0');
  idm_b64url_encode(&s[0], s.size(), (const uint8_t *)p, n);
  return s;
}

struct Pipeline {
  pol_config_t *cfg = nullptr;
  idm_attest_t *att = nullptr;
  idm_attest_cache_t *cache = nullptr;
  idm_arena_t arena = {};
  std::string doc;  // the workload's Kubernetes service-account token
  const pol_target_t *target = nullptr;
  Pipeline(bool batch_format) {
    Env &e = env();
    // The Kubernetes issuer (Ed25519) and its JWKS.
    uint8_t pub[32], priv[64], seed[32];
    memset(seed, 9, sizeof seed);
    ED25519_keypair_from_seed(pub, priv, seed);
    std::string jwks = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k8s-1\",\"x\":\"" +
                       b64(pub, 32) + "\"}]}";
    std::string jp = e.dir + "/k8s.jwks.json";
    FILE *f = fopen(jp.c_str(), "w");
    fputs(jwks.c_str(), f);
    fclose(f);
    std::string conf = std::string("server {\n listen \"127.0.0.1:8080\"\n issuer \"https://idmint.example\"\n"
                       " keys \"keys\"\n audit \"audit.log\"\n}\n"
                       "trust \"k8s-prod\" {\n kind kubernetes\n"
                       " issuer \"https://kubernetes.default.svc.cluster.local\"\n"
                       " jwks \"k8s.jwks.json\"\n audience \"idmint\"\n}\n"
                       "target \"payments-db\" {\n audience \"spiffe://corp.example/payments/db\"\n"
                       " format ") + (batch_format ? "batch" : "jwt") + "\n alg EdDSA\n ttl 5m\n}\n"
                       "permit \"payments-api\" {\n client trust == \"k8s-prod\" and namespace == \"payments\""
                       " and service_account in [\"api\", \"worker\"]\n target \"payments-db\"\n"
                       " scope \"db.read db.write\"\n ttl 2m\n}\n"
                       "forbid \"no-sandbox\" {\n client namespace like \"sandbox-*\"\n}\n";
    std::string cp = e.dir + "/idmint.conf";
    static pol_diag_t diag;
    cfg = pol_config_parse(conf.data(), conf.size(), cp.c_str(), &diag);
    if (!cfg) {
      fprintf(stderr, "bm_batch: config: %s\n", diag.text[0]);
      abort();
    }
    idm_why_t why = {{0}};
    att = idm_attest_new(cfg, &why);
    if (!att) {
      fprintf(stderr, "bm_batch: attest: %s\n", why.text);
      abort();
    }
    cache = idm_attest_cache_new(1024, 1 << 20);
    idm_arena_init(&arena, 256 * 1024);
    target = pol_config_target_find(cfg, "payments-db", 11);
    char payload[1024];
    snprintf(payload, sizeof payload,
             "{\"aud\":[\"idmint\"],\"exp\":%lld,\"iat\":%lld,\"iss\":"
             "\"https://kubernetes.default.svc.cluster.local\",\"kubernetes.io\":{\"namespace\":"
             "\"payments\",\"pod\":{\"name\":\"api-7d9f8b6c5d-x2x9z\",\"uid\":\"f2b7c8a4\"},"
             "\"serviceaccount\":{\"name\":\"api\",\"uid\":\"7a1d3c4b\"}},\"nbf\":%lld,"
             "\"sub\":\"system:serviceaccount:payments:api\"}",
             (long long)kNow + 3600, (long long)kNow - 60, (long long)kNow - 60);
    const char *hdr = "{\"alg\":\"EdDSA\",\"kid\":\"k8s-1\",\"typ\":\"JWT\"}";
    std::string si = b64(hdr, strlen(hdr)) + "." +
                     b64(payload, strlen(payload));
    uint8_t sig[64];
    ED25519_sign(sig, (const uint8_t *)si.data(), si.size(), priv);
    doc = si + "." + b64(sig, 64);
  }
  ~Pipeline() {
    idm_attest_cache_free(cache);
    idm_attest_free(att);
    pol_config_free(cfg);
    idm_arena_cleanup(&arena);
  }
};

void run_pipeline(benchmark::State &st, bool batch_format) {
  size_t n = (size_t)st.range(0);
  Pipeline p(batch_format);
  idm_clock_t clk = {};
  idm_clock_set_s(&clk, kNow);
  std::string path = std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") +
                     "/idm_bm_pipe-" + std::to_string(getpid()) + ".log";
  unlink(path.c_str());
  idm_why_t why = {{0}};
  idm_audit_log_t *log = idm_audit_open(path.c_str(), nullptr, &why);
  idm_batch_opts_t o = {};
  o.key = env().ed;
  o.items_max = n;
  o.log = log;
  o.iss = "https://idmint.example";
  o.clk = &clk;
  idm_batch_t *b;
  if (!log || idm_batch_new(&b, &o, &why))
    abort();
  std::vector<char> out(n * IDM_TOKEN_MAX);
  idm_jti_gen_t gen;
  idm_jti_gen_init(&gen, "bench", 0);
  std::vector<std::array<char, IDM_JTI_MAX>> jtis(n);
  const char *policy_id = pol_config_policy_id(p.cfg);
  pol_context_t ctx = {};
  ctx.now_s = kNow;
  pol_ask_t ask = {};
  pol_decision_t dec;
  const char *rules[POL_DECISION_RULES_MAX];
  size_t allowed = 0;
  for (auto _ : st) {
    for (size_t i = 0; i < n; i++) {
      idm_arena_reset(&p.arena);
      idm_identity_t id;
      if (idm_attest_verify(p.att, p.cache, &p.arena, IDM_DOC_JWT, nullptr, p.doc.data(),
                            p.doc.size(), &clk, &id, &why)) {
        fprintf(stderr, "bm_batch: attest: %s\n", why.text);
        abort();
      }
      pol_eval(p.cfg, &id.client, p.target->index, &ctx, &ask, &dec);
      for (uint32_t r = 0; r < dec.rule_count; r++)
        rules[r] = pol_config_rule_name(p.cfg, dec.rules[r]);
      idm_jti_next(&gen, jtis[i].data());
      const pol_str_t &sub = id.client.attr[POL_A_SUBJECT];
      idm_claims_t c = {};
      c.iss = "https://idmint.example";
      c.sub = sub.ptr;
      c.sub_len = sub.len;
      c.aud = p.target->audience;
      c.iat = kNow;
      c.nbf = kNow;
      c.exp = kNow + dec.ttl_s;
      c.jti = jtis[i].data();
      c.scope = dec.scope;
      c.scope_len = dec.scope_len;
      c.trust = id.trust->name;
      c.policy = policy_id;
      idm_batch_item_t it = {};
      it.allow = dec.allow;
      it.profile = p.target->format == POL_FORMAT_BATCH ? IDM_PROFILE_BATCH : IDM_PROFILE_JWT;
      it.key = it.profile == IDM_PROFILE_JWT ? env().ed : nullptr;
      it.claims = &c;
      it.target = p.target->name;
      it.rules = rules;
      it.rules_n = dec.rule_count;
      it.reason = dec.allow ? nullptr : "denied by policy";
      it.out = &out[i * IDM_TOKEN_MAX];
      it.out_cap = IDM_TOKEN_MAX;
      if (idm_batch_add(b, &it, &why))
        abort();
      allowed += dec.allow;
    }
    if (idm_batch_seal_sync(b, nullptr, nullptr, nullptr, &why))
      abort();
  }
  if (allowed != (size_t)st.iterations() * n)
    st.SkipWithError("policy denied the benchmark's requests");
  st.SetItemsProcessed(st.iterations() * (int64_t)n);
  idm_batch_free(b);
  idm_audit_close(log);
  unlink(path.c_str());
}

void BM_batch_pipeline(benchmark::State &st) { run_pipeline(st, true); }
void BM_batch_pipeline_jwt(benchmark::State &st) { run_pipeline(st, false); }
BENCHMARK(BM_batch_pipeline)->Arg(1)->Arg(64)->Arg(256)->Arg(1024);
BENCHMARK(BM_batch_pipeline_jwt)->Arg(64);

}  // namespace

BENCHMARK_MAIN();
