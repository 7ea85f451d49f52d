// Attestation: uncached verification per algorithm, and the verified-identity cache.
//
// BM_attest_verify_uncached/<alg> is idm_attest_verify with no cache on a Kubernetes-shaped
// token signed with that algorithm (parse, kid, signature, claims, attributes): the cost a
// workload's first request pays. BM_attest_verify_cached_hit is the same call with the cache
// already holding the identity: the cost of every later request, measured in the same
// binary so the ratio to the uncached rows is the cache's speed-up.
//
// BM_attest_cache_hit_1M/<shape> fills one cache with 1,000,000 distinct identities of a
// realistic size (k8s RS256 token ~1.3 KiB; SPIFFE EdDSA JWT-SVID ~0.3 KiB) and then
// looks up documents from it: /same repeats one identity (one workload's repeated
// requests, with a million others cached), /hot4096 cycles through a 4,096-identity working
// set, /random picks uniformly among the million (every lookup misses the CPU caches: the
// DRAM- and TLB-bound worst case). Counters: bytes_per_identity = (index + ring bytes written) / identities.
// The filled documents are signed once and then made distinct by rewriting characters of
// the signature; hits never check signatures, so this measures exactly the hit path.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "attest/internal.h"
#include "core/json.h"
#include "../tests/attest/fixtures.h"

namespace {

const long long kNow = 1790000000LL;
const char *const kAud[] = {"idmint"};
const char *const kSpiffeAud[] = {"spiffe://corp.example/idmint"};

struct Env {
  std::string dir;
  fx_key_t rsa, ec256, ec384, ed;
  pol_trust_t k8s, spiffe;
  idm_attest_t *a = nullptr;
  idm_arena_t arena;
  Env() {
    idm_json_init();
    char tmpl[] = "/tmp/idm-bm-attest-XXXXXX";
    if (!mkdtemp(tmpl))
      abort();
    dir = tmpl;
    fx_key_new(&rsa, FX_RSA, "rsa-1");
    fx_key_new(&ec256, FX_EC256, "ec-256");
    fx_key_new(&ec384, FX_EC384, "ec-384");
    fx_key_new(&ed, FX_ED25519, "ed-1");
    const fx_key_t *keys[] = {&rsa, &ec256, &ec384, &ed};
    std::string jwks = dir + "/k8s.jwks";
    fx_jwks_write(jwks.c_str(), keys, 4, nullptr);
    memset(&k8s, 0, sizeof k8s);
    k8s.name = "k8s";
    k8s.kind = POL_KIND_KUBERNETES;
    k8s.issuer = "https://kubernetes.default.svc.cluster.local";
    k8s.jwks = strdup(jwks.c_str());
    k8s.audience = kAud;
    k8s.audience_count = 1;
    k8s.leeway_s = 30;
    k8s.max_lifetime_s = 86400;
    spiffe = k8s;
    spiffe.name = "spire";
    spiffe.kind = POL_KIND_SPIFFE;
    spiffe.issuer = "https://spire.corp.example";
    spiffe.audience = kSpiffeAud;
    spiffe.trust_domain = "corp.example";
    const pol_trust_t *ts[] = {&k8s, &spiffe};
    idm_why_t why = {};
    a = idm_attest_new_from_trusts(ts, 2, &why);
    if (!a) {
      fprintf(stderr, "%s\n", why.text);
      abort();
    }
    idm_arena_init(&arena, 1 << 20);
  }
  ~Env() {
    std::string cmd = "rm -rf '" + dir + "'";
    if (system(cmd.c_str()) != 0)
      fprintf(stderr, "cleanup failed\n");
  }
  const fx_key_t *key_for(const char *alg) {
    if (alg[0] == 'R' || alg[0] == 'P')
      return &rsa;
    if (!strcmp(alg, "ES256"))
      return &ec256;
    if (!strcmp(alg, "ES384"))
      return &ec384;
    return &ed;
  }
};

Env &env() {
  static Env e;
  return e;
}

std::string k8s_token(const fx_key_t *k, const char *alg) {
  char c[2048];
  snprintf(c, sizeof c,
           "{\"aud\":[\"idmint\"],\"exp\":%lld,\"iat\":%lld,\"iss\":\"https://kubernetes.default.svc."
           "cluster.local\",\"kubernetes.io\":{\"namespace\":\"payments\",\"node\":{\"name\":"
           "\"ip-10-0-3-17.ec2.internal\",\"uid\":\"0f6c5cc1-7e1b-4b8b-9d76-8a4a4b9e1e11\"},\"pod\":"
           "{\"name\":\"api-7d9f8b6c5d-x2x9z\",\"uid\":\"f2b7c8a4-1b0e-4bb1-8e3c-6f4e8d1f9a22\"},"
           "\"serviceaccount\":{\"name\":\"api\",\"uid\":\"7a1d3c4b-5e6f-4a7b-8c9d-0e1f2a3b4c5d\"},"
           "\"warnafter\":%lld},\"nbf\":%lld,\"sub\":\"system:serviceaccount:payments:api\"}",
           kNow + 3600, kNow, kNow + 3607, kNow);
  char tok[8192];
  fx_sign(k, alg, c, tok, sizeof tok);
  return tok;
}

std::string svid_token(const fx_key_t *k) {
  char c[512];
  snprintf(c, sizeof c,
           "{\"aud\":[\"spiffe://corp.example/idmint\"],\"exp\":%lld,\"iat\":%lld,"
           "\"iss\":\"https://spire.corp.example\",\"sub\":\"spiffe://corp.example/ns/payments/sa/api\"}",
           kNow + 3600, kNow);
  char tok[4096];
  fx_sign(k, "EdDSA", c, tok, sizeof tok);
  return tok;
}

void BM_attest_verify_uncached(benchmark::State &st, const char *alg) {
  Env &e = env();
  std::string tok = k8s_token(e.key_for(alg), alg);
  idm_clock_t clk;
  idm_clock_set_s(&clk, kNow);
  idm_identity_t id;
  idm_why_t why = {};
  for (auto _ : st) {
    idm_arena_reset(&e.arena);
    idm_err_t err = idm_attest_verify(e.a, nullptr, &e.arena, IDM_DOC_JWT, "k8s", tok.data(),
                                      tok.size(), &clk, &id, &why);
    if (err) {
      st.SkipWithError(why.text);
      break;
    }
    benchmark::DoNotOptimize(id);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["token_bytes"] = (double)tok.size();
}
BENCHMARK_CAPTURE(BM_attest_verify_uncached, RS256, "RS256");
BENCHMARK_CAPTURE(BM_attest_verify_uncached, RS384, "RS384");
BENCHMARK_CAPTURE(BM_attest_verify_uncached, RS512, "RS512");
BENCHMARK_CAPTURE(BM_attest_verify_uncached, PS256, "PS256");
BENCHMARK_CAPTURE(BM_attest_verify_uncached, ES256, "ES256");
BENCHMARK_CAPTURE(BM_attest_verify_uncached, ES384, "ES384");
BENCHMARK_CAPTURE(BM_attest_verify_uncached, EdDSA, "EdDSA");

void BM_attest_verify_cached_hit(benchmark::State &st) {
  Env &e = env();
  std::string tok = k8s_token(&e.rsa, "RS256");
  idm_attest_cache_t *c = idm_attest_cache_new(1024, 0);
  idm_clock_t clk;
  idm_clock_set_s(&clk, kNow);
  idm_identity_t id;
  idm_why_t why = {};
  idm_arena_reset(&e.arena);
  if (idm_attest_verify(e.a, c, &e.arena, IDM_DOC_JWT, "k8s", tok.data(), tok.size(), &clk, &id,
                        &why)) {
    st.SkipWithError(why.text);
    return;
  }
  for (auto _ : st) {
    idm_err_t err = idm_attest_verify(e.a, c, &e.arena, IDM_DOC_JWT, "k8s", tok.data(),
                                      tok.size(), &clk, &id, &why);
    if (err || !id.cached) {
      st.SkipWithError("not a hit");
      break;
    }
    benchmark::DoNotOptimize(id);
  }
  st.SetItemsProcessed(st.iterations());
  idm_attest_cache_free(c);
}
BENCHMARK(BM_attest_verify_cached_hit);

// 1,000,000 identities in one cache.
struct Million {
  idm_attest_cache_t *c = nullptr;
  // Every document, back to back (all have the base's length), huge-page backed like the
  // cache's arrays: the server's request buffer is in cache, so the benchmark's copy of
  // the document should not add TLB walks the server never pays.
  char *blob = nullptr;
  size_t doc_len = 0;
  const char *doc(size_t i) const { return blob + i * doc_len; }
  double bytes_per_identity = 0;
  double resident_fraction = 0;
  std::vector<uint32_t> resident;
  size_t doc_bytes = 0;
  explicit Million(bool spiffe) {
    Env &e = env();
    const size_t n = 1000000;
    std::string base = spiffe ? svid_token(&e.ed) : k8s_token(&e.rsa, "RS256");
    doc_bytes = base.size();
    // Verify once for the real attributes, then store n distinct documents with them.
    idm_clock_t clk;
    idm_clock_set_s(&clk, kNow);
    idm_identity_t id;
    idm_why_t why = {};
    idm_arena_reset(&e.arena);
    const char *trust = spiffe ? "spire" : "k8s";
    if (idm_attest_verify(e.a, nullptr, &e.arena, IDM_DOC_JWT, trust, base.data(), base.size(),
                          &clk, &id, &why))
      abort();
    size_t per = base.size() + 200;
    c = idm_attest_cache_new(n, n * per);
    const idm_provider_t *p = &e.a->prov[spiffe ? 1 : 0];
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    doc_len = base.size();
    void *mem = mmap(nullptr, n * doc_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
      abort();
    madvise(mem, n * doc_len, MADV_HUGEPAGE);
    blob = static_cast<char *>(mem);
    for (size_t i = 0; i < n; i++) {
      char *d = &blob[i * doc_len];
      memcpy(d, base.data(), doc_len);
      size_t v = i;
      for (size_t j = 0; j < 5; j++, v /= 64)
        d[doc_len - 2 - j] = b64[v % 64];
      uint64_t h = idm_attest_cache_hash(c, d, doc_len);
      idm_attest_cache_put(c, p, IDM_DOC_JWT, h, d, doc_len, &id);
    }
    idm_attest_cache_stats_t s;
    idm_attest_cache_stats(c, &s);
    // Which documents are still resident (a full probe window displaces its oldest).
    for (size_t t = 0; t < n; t++) {
      uint64_t h = idm_attest_cache_hash(c, doc(t), doc_len);
      idm_identity_t got;
      if (idm_attest_cache_get(c, e.a, IDM_DOC_JWT, p, h, doc(t), doc_len, kNow, &got))
        resident.push_back((uint32_t)t);
    }
    resident_fraction = (double)resident.size() / (double)n;
    // index = 2^k slots x 16 bytes; ring bytes written = s.bytes_used.
    size_t slots = 1;
    while (slots < 2 * n)
      slots <<= 1;
    bytes_per_identity = (double)(slots * 16 + s.bytes_used) / (double)n;
    if (resident.size() < n * 99 / 100) {
      fprintf(stderr, "only %zu of %zu identities stayed in the cache\n", resident.size(), n);
      abort();
    }
  }
};

Million &million(bool spiffe) {
  static Million k8s(false);
  static Million sp(true);
  return spiffe ? sp : k8s;
}

void BM_attest_cache_hit_1M(benchmark::State &st, bool spiffe, size_t working_set) {
  Env &e = env();
  Million &m = million(spiffe);
  idm_clock_t clk;
  idm_clock_set_s(&clk, kNow);
  idm_identity_t id;
  idm_why_t why = {};
  const char *trust = spiffe ? "spire" : "k8s";
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  size_t span = working_set ? working_set : m.resident.size();
  // Pre-draw indices so the RNG is not in the measured loop's dependency chain.
  std::vector<uint32_t> idx(1 << 16);
  for (auto &x : idx) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    x = m.resident[rng % span];
  }
  size_t k = 0;
  for (auto _ : st) {
    const char *d = m.doc(idx[k++ & 0xffff]);
    idm_err_t err = idm_attest_verify(e.a, m.c, &e.arena, IDM_DOC_JWT, trust, d, m.doc_len, &clk,
                                      &id, &why);
    if (err || !id.cached) {
      st.SkipWithError(err ? why.text : "served by a full verification, not the cache");
      break;
    }
    benchmark::DoNotOptimize(id);
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["bytes_per_identity"] = m.bytes_per_identity;
  st.counters["doc_bytes"] = (double)m.doc_bytes;
  st.counters["resident"] = m.resident_fraction;
}
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, k8s_rs256_same, false, 1);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, k8s_rs256_hot4096, false, 4096);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, k8s_rs256_random, false, 0);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, spiffe_eddsa_same, true, 1);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, spiffe_eddsa_hot4096, true, 4096);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, spiffe_eddsa_random, true, 0);

}  // namespace

BENCHMARK_MAIN();
