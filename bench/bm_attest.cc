// Attestation: uncached verification per algorithm, and the verified-identity cache.
//
// BM_attest_verify_uncached/<alg> is idm_attest_verify with no cache on a Kubernetes-shaped
// token signed with that algorithm (parse, kid, signature, claims, attributes): the cost a
// workload's first request pays. BM_attest_verify_cached_hit is the same call with the cache
// already holding the identity: the cost of every later request, measured in the same
// binary so the ratio to the uncached rows is the cache's speed-up.
//
// BM_attest_cache_hit_1M/<shape> fills one cache with 1,000,000 distinct identities of a
// realistic size (k8s RS256 token ~1.0 KiB; SPIFFE EdDSA JWT-SVID ~0.3 KiB) and then
// looks up documents from it: /same repeats one identity (one workload's repeated
// requests, with a million others cached), /hot4096 cycles through a 4,096-identity working
// set, /random picks uniformly among the million (every lookup misses the CPU caches: the
// DRAM- and TLB-bound worst case; the document is read from a 0.35-1 GiB array, so it is
// a cold miss too). /random_hotdoc is /random with the presented document written into a
// small hot buffer first (as a server's request buffer is), so only the cache's own misses
// remain; /random_prefetch<D> is that with the documents D and 2D lookups ahead announced
// by idm_attest_cache_prefetch (entry and index stage): what a server that handles a batch
// of requests per loop turn can get, the lookups' DRAM latencies overlapping.
// Counters: bytes_per_identity = (index + ring bytes written) / identities, i.e. the memory
// a cache needs per identity when its byte budget is just large enough (the ring has
// exactly the budget's size); reserved_per_identity = all the memory the benchmark's cache
// reserved (index + ring, budget sized from one identity's record + 1 %) / identities;
// resident = share of the million still cached after the fill; thp = share of the
// process's resident memory on transparent huge pages.
// The filled documents are signed once and then made distinct by rewriting characters of
// the signature; hits never check signatures, so this measures exactly the hit path.
//
// Baselines in the same binary: BM_attest_dram_chase/<MiB>/<thp> is a dependent pointer
// chase over an array of that size (one random cache line per step, huge pages or 4 KiB
// pages): the price of one DRAM miss (+ TLB walk) on this machine, which the /random rows
// are quoted against. BM_attest_proof_{sha256,memcmp}/<bytes> is what proving "same
// document" costs per lookup either way: SHA-256 of the presented document (BoringSSL,
// SHA-NI where the CPU has it) versus comparing it with a stored copy.
#include <benchmark/benchmark.h>
#include <openssl/sha.h>
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
static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Document i: the base with the 5 characters before its last one encoding i.
void make_doc(char *d, size_t doc_len, size_t i) {
  size_t v = i;
  for (size_t j = 0; j < 5; j++, v /= 64)
    d[doc_len - 2 - j] = kB64[v % 64];
}

void *huge_map(size_t n) {
  void *mem = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    abort();
  madvise(mem, n, MADV_HUGEPAGE);
  return mem;
}

struct Million {
  idm_attest_cache_t *c = nullptr;
  // Every document, back to back (all have the base's length), huge-page backed like the
  // cache's arrays: the server's request buffer is in cache, so the benchmark's copy of
  // the document should not add TLB walks the server never pays.
  char *blob = nullptr;
  size_t doc_len = 0;
  const char *doc(size_t i) const { return blob + i * doc_len; }
  double bytes_per_identity = 0;
  double reserved_per_identity = 0;
  double resident_fraction = 0;
  double thp_fraction = 0;
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
    const idm_provider_t *p = &e.a->prov[spiffe ? 1 : 0];
    // One record's size, from a scratch cache; the big one gets n of them + 1 %.
    idm_attest_cache_t *one = idm_attest_cache_new(16, 0);
    idm_attest_cache_put(one, p, IDM_DOC_JWT, idm_attest_cache_hash(one, base.data(), base.size()),
                         base.data(), base.size(), &id);
    idm_attest_cache_stats_t s1;
    idm_attest_cache_stats(one, &s1);
    idm_attest_cache_free(one);
    c = idm_attest_cache_new(n, n * s1.bytes_used + n * s1.bytes_used / 100);
    doc_len = base.size();
    blob = static_cast<char *>(huge_map(n * doc_len));
    for (size_t i = 0; i < n; i++) {
      char *d = &blob[i * doc_len];
      memcpy(d, base.data(), doc_len);
      make_doc(d, doc_len, i);
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
    // Share of the process's resident memory on transparent huge pages (the cache's
    // arrays ask for them with MADV_HUGEPAGE; whether the kernel obliges is its choice).
    if (FILE *f = fopen("/proc/self/smaps_rollup", "r")) {
      char l[256];
      double rss = 0, huge = 0;
      while (fgets(l, sizeof l, f)) {
        if (!strncmp(l, "Rss:", 4))
          rss = atof(l + 4);
        else if (!strncmp(l, "AnonHugePages:", 14))
          huge = atof(l + 14);
      }
      fclose(f);
      thp_fraction = rss > 0 ? huge / rss : 0;
    }
    bytes_per_identity = (double)(s.index_bytes + s.bytes_used) / (double)n;
    reserved_per_identity = (double)s.bytes_reserved / (double)n;
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

void set_counters(benchmark::State &st, const Million &m) {
  st.SetItemsProcessed(st.iterations());
  st.counters["bytes_per_identity"] = m.bytes_per_identity;
  st.counters["reserved_per_identity"] = m.reserved_per_identity;
  st.counters["doc_bytes"] = (double)m.doc_bytes;
  st.counters["resident"] = m.resident_fraction;
  st.counters["thp"] = m.thp_fraction;
}

// Lookup targets, pre-drawn so the RNG is not in the measured loop's dependency chain.
std::vector<uint32_t> draw(const Million &m, size_t working_set) {
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  size_t span = working_set ? working_set : m.resident.size();
  std::vector<uint32_t> idx(1 << 16);
  for (auto &x : idx) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    x = m.resident[rng % span];
  }
  return idx;
}

// One lookup that must be served from the cache; false (and the benchmark skipped) if not.
static bool cached_hit(benchmark::State &st, Env &e, Million &m, const char *trust, const char *d,
                       idm_clock_t *clk, idm_identity_t *id, idm_why_t *why) {
  idm_err_t err = idm_attest_verify(e.a, m.c, &e.arena, IDM_DOC_JWT, trust, d, m.doc_len, clk, id,
                                    why);
  if (err || !id->cached) {
    st.SkipWithError(err ? why->text : "served by a full verification, not the cache");
    return false;
  }
  benchmark::DoNotOptimize(*id);
  return true;
}

void BM_attest_cache_hit_1M(benchmark::State &st, bool spiffe, size_t working_set) {
  Env &e = env();
  Million &m = million(spiffe);
  idm_clock_t clk;
  idm_clock_set_s(&clk, kNow);
  idm_identity_t id;
  idm_why_t why = {};
  const char *trust = spiffe ? "spire" : "k8s";
  std::vector<uint32_t> idx = draw(m, working_set);
  size_t k = 0;
  for (auto _ : st) {
    if (!cached_hit(st, e, m, trust, m.doc(idx[k++ & 0xffff]), &clk, &id, &why))
      break;
  }
  set_counters(st, m);
}
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, k8s_rs256_same, false, 1);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, k8s_rs256_hot4096, false, 4096);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, k8s_rs256_random, false, 0);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, spiffe_eddsa_same, true, 1);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, spiffe_eddsa_hot4096, true, 4096);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M, spiffe_eddsa_random, true, 0);

// Uniform random over the million, the presented document written into one of 64 hot
// buffers first (5 byte stores), so its bytes are in L1 as a just-received request's are.
// With ahead > 0, the document `ahead` lookups later gets the entry prefetch and the one
// 2 * ahead later the index prefetch (idm_attest_cache_prefetch), as a server holding a
// turn's worth of requests would do.
void BM_attest_cache_hit_1M_hotdoc(benchmark::State &st, bool spiffe, size_t ahead) {
  Env &e = env();
  Million &m = million(spiffe);
  idm_clock_t clk;
  idm_clock_set_s(&clk, kNow);
  idm_identity_t id;
  idm_why_t why = {};
  const char *trust = spiffe ? "spire" : "k8s";
  std::vector<uint32_t> idx = draw(m, 0);
  const size_t nbuf = 64;
  if (2 * ahead >= nbuf)
    abort();
  std::vector<char> buf(nbuf * m.doc_len);
  for (size_t b = 0; b < nbuf; b++)
    memcpy(&buf[b * m.doc_len], m.doc(0), m.doc_len);
  auto at = [&](size_t k) { return &buf[(k % nbuf) * m.doc_len]; };
  for (size_t k = 0; k <= 2 * ahead; k++) {
    make_doc(at(k), m.doc_len, idx[k & 0xffff]);
    if (ahead && k >= ahead)
      idm_attest_cache_prefetch(m.c, at(k), m.doc_len, false);
  }
  size_t k = 0;
  for (auto _ : st) {
    if (ahead) {
      char *far = at(k + 2 * ahead);
      make_doc(far, m.doc_len, idx[(k + 2 * ahead) & 0xffff]);
      idm_attest_cache_prefetch(m.c, far, m.doc_len, false);
      idm_attest_cache_prefetch(m.c, at(k + ahead), m.doc_len, true);
    } else {
      make_doc(at(k), m.doc_len, idx[k & 0xffff]);
    }
    if (!cached_hit(st, e, m, trust, at(k++), &clk, &id, &why))
      break;
  }
  set_counters(st, m);
}
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M_hotdoc, k8s_rs256_random_hotdoc, false, 0);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M_hotdoc, k8s_rs256_random_prefetch8, false, 8);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M_hotdoc, spiffe_eddsa_random_hotdoc, true, 0);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M_hotdoc, spiffe_eddsa_random_prefetch4, true, 4);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M_hotdoc, spiffe_eddsa_random_prefetch8, true, 8);
BENCHMARK_CAPTURE(BM_attest_cache_hit_1M_hotdoc, spiffe_eddsa_random_prefetch16, true, 16);

// One DRAM access per step: a random cyclic permutation of the array's cache lines,
// followed pointer by pointer (each load's address depends on the previous load).
void BM_attest_dram_chase(benchmark::State &st) {
  const size_t bytes = (size_t)st.range(0) << 20;
  const bool thp = st.range(1) != 0;
  const size_t lines = bytes / 64;
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    abort();
  madvise(mem, bytes, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  char *a = static_cast<char *>(mem);
  std::vector<uint32_t> perm(lines);
  for (size_t i = 0; i < lines; i++)
    perm[i] = (uint32_t)i;
  uint64_t rng = 88172645463325252ULL;
  for (size_t i = lines - 1; i > 0; i--) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    std::swap(perm[i], perm[rng % (i + 1)]);
  }
  for (size_t i = 0; i < lines; i++)
    *reinterpret_cast<uint64_t *>(a + (size_t)perm[i] * 64) = (uint64_t)perm[(i + 1) % lines] * 64;
  uint64_t x = 0;
  for (auto _ : st) {
    x = *reinterpret_cast<volatile uint64_t *>(a + x);
  }
  benchmark::DoNotOptimize(x);
  st.SetItemsProcessed(st.iterations());
  munmap(mem, bytes);
}
BENCHMARK(BM_attest_dram_chase)->Args({512, 1})->Args({512, 0})->ArgNames({"MiB", "thp"});

// Proving a hit is the verified document, per lookup: a digest of the presented bytes
// (what a cache keyed on SHA-256 would pay) versus comparing them with a stored copy
// (both hot; the 1M rows pay the stored copy's misses on top).
void BM_attest_proof_sha256(benchmark::State &st) {
  std::vector<uint8_t> doc((size_t)st.range(0), 'a');
  uint8_t md[SHA256_DIGEST_LENGTH];
  for (auto _ : st) {
    benchmark::DoNotOptimize(doc.data());
    SHA256(doc.data(), doc.size(), md);
    benchmark::DoNotOptimize(md);
  }
  st.SetItemsProcessed(st.iterations());
  st.SetBytesProcessed(st.iterations() * st.range(0));
}
// 1 MiB: the bulk rate, which is what hashing a unix peer's executable costs per MiB
// (docs/ATTESTATION.md, "unix").
BENCHMARK(BM_attest_proof_sha256)->Arg(353)->Arg(1037)->Arg(1 << 20);

void BM_attest_proof_memcmp(benchmark::State &st) {
  std::vector<uint8_t> doc((size_t)st.range(0), 'a'), stored = doc;
  for (auto _ : st) {
    benchmark::DoNotOptimize(doc.data());
    benchmark::DoNotOptimize(stored.data());
    int r = memcmp(doc.data(), stored.data(), doc.size());
    benchmark::DoNotOptimize(r);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_attest_proof_memcmp)->Arg(353)->Arg(1037);

}  // namespace

BENCHMARK_MAIN();
