// The exchange pipeline against its ceiling, in one binary (docs/PERFORMANCE.md):
//   BM_net_jwt_mint        bare jwt-profile mint (claims, encode, one Ed25519 signature):
//                          the signing rate a thread can reach at best
//   BM_net_exchange_cached the whole POST /v1/token pipeline minus the network: form
//                          parse, target lookup, attestation served from the cache,
//                          pol_eval, jti, batcher add + seal (one token per batch, the
//                          light-load case; no audit log), response JSON
//   BM_net_http1_parse     the HTTP/1.1 parser on a token-exchange request
// Items are requests; compare items_per_second rows of one run.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
#include "batch/batch.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"
#include "net/exchange.h"
#include "net/http1.h"
#include "net/snapshot.h"
}

namespace {

struct Env {
  std::string dir, subject, form;
  idm_keyring_t *issuer = nullptr;
  idm_snapshot_t *snap = nullptr;
  Env() {
    idm_json_init();
    char d[] = "/tmp/idm_bm_net_XXXXXX";
    if (!mkdtemp(d))
      abort();
    dir = d;
    idm_why_t why = {{0}};
    if (idm_keys_new((dir + "/keys").c_str(), IDM_KEY_EDDSA, nullptr, nullptr, &why) ||
        idm_keys_new((dir + "/issuer").c_str(), IDM_KEY_EDDSA, nullptr, nullptr, &why))
      abort();
    issuer = idm_keyring_load((dir + "/issuer").c_str(), nullptr, &why);
    size_t jl = 0;
    const char *jwks = idm_keyring_jwks_json(issuer, &jl);
    if (idm_file_write_atomic((dir + "/issuer.jwks.json").c_str(), jwks, jl, 0600, &why))
      abort();
    std::string conf =
        "server {\n listen \"127.0.0.1:1\"\n issuer \"http://idmint.bench\"\n keys \"keys\"\n}\n"
        "trust \"bench\" {\n kind oidc\n issuer \"https://issuer.bench\"\n"
        " jwks \"issuer.jwks.json\"\n audience \"idmint\"\n}\n"
        "target \"db\" {\n audience \"spiffe://bench/db\"\n ttl 5m\n}\n"
        "permit \"all\" {\n client trust == \"bench\"\n target any\n scope \"db.read\"\n}\n";
    if (idm_file_write_atomic((dir + "/bench.conf").c_str(), conf.data(), conf.size(), 0600, &why))
      abort();
    char tok[IDM_TOKEN_MAX];
    size_t tl = 0;
    int64_t now = idm_clock_now_s(nullptr);
    idm_claims_t c = {};
    c.iss = "https://issuer.bench";
    c.sub = "spiffe://bench/ns/payments/sa/api";
    c.aud = "idmint";
    c.iat = now;
    c.nbf = now;
    c.exp = now + 3600;
    c.jti = "bench-1";
    c.trust = "";
    c.policy = "";
    if (idm_jwt_mint(tok, sizeof tok, &tl, idm_keyring_signer(issuer, IDM_KEY_EDDSA), &c, &why))
      abort();
    subject.assign(tok, tl);
    form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
           "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
           "&audience=db&subject_token=" + subject;
    idm_err_t err;
    snap = idm_snapshot_load((dir + "/bench.conf").c_str(), nullptr, &err, &why);
    if (!snap) {
      fprintf(stderr, "bm_net: %s\n", why.text);
      abort();
    }
    snap->gen = 1;
  }
  ~Env() {
    idm_snapshot_free(snap);
    idm_keyring_free(issuer);
    std::string cmd = "rm -rf '" + dir + "'";
    if (system(cmd.c_str())) {
    }
  }
};

Env &env() {
  static Env e;
  return e;
}

void BM_net_jwt_mint(benchmark::State &st) {
  Env &e = env();
  const idm_key_t *k = idm_keyring_signer(e.snap->keys, IDM_KEY_EDDSA);
  idm_jti_gen_t g;
  idm_jti_gen_init(&g, "bench", 0);
  char tok[IDM_TOKEN_MAX], jti[IDM_JTI_MAX];
  size_t len = 0;
  idm_why_t why = {{0}};
  for (auto _ : st) {
    idm_jti_next(&g, jti);
    int64_t now = 1795400000;
    idm_claims_t c = {};
    c.iss = "http://idmint.bench";
    c.sub = "spiffe://bench/ns/payments/sa/api";
    c.aud = "spiffe://bench/db";
    c.iat = now;
    c.nbf = now;
    c.exp = now + 300;
    c.jti = jti;
    c.scope = "db.read";
    c.trust = "bench";
    c.policy = "0123456789abcdef";
    if (idm_jwt_mint(tok, sizeof tok, &len, k, &c, &why))
      abort();
    benchmark::DoNotOptimize(tok);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_net_jwt_mint);

void BM_net_exchange_cached(benchmark::State &st) {
  Env &e = env();
  static idm_exchange_ctx_t x;
  idm_why_t why = {{0}};
  if (idm_exchange_ctx_init(&x, 0, "bench", 1024, nullptr, nullptr, &why))
    abort();
  idm_exchange_ctx_set_snapshot(&x, e.snap);
  idm_batch_t *b = nullptr;
  idm_batch_opts_t bo = {};
  bo.key = idm_keyring_signer(e.snap->keys, IDM_KEY_EDDSA);
  bo.items_max = 1;
  if (idm_batch_new(&b, &bo, &why))
    abort();
  x.batch = b;
  char out[8192];
  size_t len = 0;
  for (auto _ : st) {
    idm_arena_reset(&x.arena);
    idm_exchange_req_t req = {};
    idm_view_t ct = {"application/x-www-form-urlencoded", 33};
    if (idm_exchange_parse(&x, &req, ct, (const uint8_t *)e.form.data(), e.form.size(), &why))
      abort();
    idm_exchange_run(&x, &req, &x.res, &x);
    idm_batch_seal_sync(b, nullptr, nullptr, nullptr, &why);
    if (x.res.status != 200) {
      fprintf(stderr, "bm_net: %d %s\n", x.res.status, x.res.description);
      abort();
    }
    idm_exchange_response_json(&x.res, out, sizeof out, &len);
    benchmark::DoNotOptimize(out);
  }
  st.SetItemsProcessed(st.iterations());
  idm_batch_free(b);
  idm_exchange_ctx_cleanup(&x);
}
BENCHMARK(BM_net_exchange_cached);

void BM_net_http1_parse(benchmark::State &st) {
  Env &e = env();
  std::string req = "POST /v1/token HTTP/1.1\r\nHost: idmint\r\nUser-Agent: bench\r\n"
                    "Accept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                    "Content-Length: " + std::to_string(e.form.size()) + "\r\n\r\n" + e.form;
  static idm_h1_req_t r;
  static uint8_t body[IDM_NET_BODY_MAX_BYTES];
  idm_h1_limits_t lim = {IDM_NET_HEADER_MAX_BYTES, IDM_NET_BODY_MAX_BYTES, IDM_NET_HEADERS_MAX};
  for (auto _ : st) {
    idm_why_t why;
    if (idm_h1_parse(&r, body, sizeof body, (const uint8_t *)req.data(), req.size(), &lim, &why))
      abort();
    benchmark::DoNotOptimize(r.consumed);
  }
  st.SetItemsProcessed(st.iterations());
  st.SetBytesProcessed(st.iterations() * (int64_t)req.size());
}
BENCHMARK(BM_net_http1_parse);

}  // namespace

BENCHMARK_MAIN();
