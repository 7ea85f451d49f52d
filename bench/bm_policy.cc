// Policy benchmarks: evaluation and compilation on generated fleets of 10, 1,000,
// 100,000 and 1,000,000 rules, with the reference interpreter (every rule in order) in
// the same binary as the baseline.
//
// A fleet is what a platform team writes: per namespace x service account x target a
// permit on trust, namespace and service account (some with a source CIDR or a time
// window), GitHub repository permits, namespace globs, a few CIDR-only rules and
// forbids (exact and glob). The glob permits also test `trust ==`, which has few values,
// so the compiler files them under their prefix. Requests are drawn from the fleet's own
// tuples, so most are allowed, plus strangers that hit nothing.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "internal.h"
#include "policy.h"
}

namespace {

struct Fleet {
  std::string text;
  uint32_t namespaces = 0, sas = 0, targets = 0, repos = 0;
};

Fleet make_fleet(uint32_t rules) {
  Fleet f;
  f.targets = rules < 100 ? 2 : rules < 10000 ? 10 : 100;
  f.sas = rules < 100 ? 2 : 10;
  // 80% exact k8s permits: namespaces x sas x (one target each)
  uint32_t k8s = rules * 8 / 10;
  f.namespaces = k8s / f.sas ? k8s / f.sas : 1;
  f.repos = rules / 10 ? rules / 10 : 1;
  std::string &s = f.text;
  s.reserve((size_t)rules * 170 + 4096);
  s += "trust \"k8s\" { kind kubernetes\n issuer \"https://k8s\"\n jwks \"k.json\"\n audience \"idmint\" }\n"
       "trust \"gh\" { kind github\n jwks \"gh.json\"\n audience \"idmint\" }\n";
  char buf[512];
  for (uint32_t t = 0; t < f.targets; t++) {
    snprintf(buf, sizeof buf, "target \"svc%u\" { audience \"spiffe://corp/svc%u\"\n ttl 5m }\n", t, t);
    s += buf;
  }
  uint32_t n = 0;
  for (uint32_t ns = 0; ns < f.namespaces && n < k8s; ns++)
    for (uint32_t sa = 0; sa < f.sas && n < k8s; sa++, n++) {
      uint32_t t = (ns * 7 + sa) % f.targets;
      int w = snprintf(buf, sizeof buf,
                       "permit \"k%u\" {\n client trust == \"k8s\" and namespace == \"ns%u\" and "
                       "service_account == \"sa%u\"\n target \"svc%u\"\n",
                       n, ns, sa, t);
      s.append(buf, (size_t)w);
      if (n % 10 == 3) {
        w = snprintf(buf, sizeof buf, " when source_ip in 10.%u.0.0/16\n", ns % 256);
        s.append(buf, (size_t)w);
      } else if (n % 10 == 7) {
        s += " when time in 06:00..22:00 and day in [mon, tue, wed, thu, fri]\n";
      }
      w = snprintf(buf, sizeof buf, " scope \"svc%u.read svc%u.write\"\n ttl 2m\n}\n", t, t);
      s.append(buf, (size_t)w);
    }
  uint32_t gh = rules / 10;
  for (uint32_t i = 0; i < gh; i++, n++) {
    int w = snprintf(buf, sizeof buf,
                     "permit \"g%u\" {\n client trust == \"gh\" and repository == \"org%u/repo%u\" and "
                     "ref == \"refs/heads/main\"\n target \"svc%u\"\n scope \"deploy\"\n}\n",
                     i, i % 100, i, i % f.targets);
    s.append(buf, (size_t)w);
  }
  uint32_t globs = rules * 5 / 100;
  for (uint32_t i = 0; i < globs; i++, n++) {
    int w = snprintf(buf, sizeof buf,
                     "permit \"glob%u\" {\n client trust == \"k8s\" and namespace like \"team%u-*\" and not pod like \"debug-*\"\n"
                     " target \"svc%u\"\n scope \"read\"\n}\n",
                     i, i, i % f.targets);
    s.append(buf, (size_t)w);
  }
  uint32_t cidrs = rules >= 1000 ? 10 : 1;
  for (uint32_t i = 0; i < cidrs; i++, n++) {
    int w = snprintf(buf, sizeof buf,
                     "permit \"net%u\" {\n target \"svc%u\"\n when source_ip in 192.168.%u.0/24\n}\n",
                     i, i % f.targets, i);
    s.append(buf, (size_t)w);
  }
  // forbids: the rest, exact (a debug account per namespace) and a few globs
  for (uint32_t i = 0; n < rules; i++, n++) {
    int w;
    if (i % 50 == 0)
      w = snprintf(buf, sizeof buf, "forbid \"fg%u\" {\n client namespace like \"sandbox%u-*\"\n}\n", i, i);
    else
      w = snprintf(buf, sizeof buf,
                   "forbid \"f%u\" {\n client namespace == \"ns%u\" and service_account == \"debug\"\n}\n",
                   i, i % (f.namespaces ? f.namespaces : 1));
    s.append(buf, (size_t)w);
  }
  return f;
}

struct Request {
  pol_client_t client;
  pol_context_t ctx;
  uint32_t target;
  std::string ns, sa, repo;
};

struct Loaded {
  Fleet fleet;
  pol_config_t *cfg = nullptr;
  std::vector<std::unique_ptr<Request>> reqs;
};

Loaded &load(uint32_t rules) {
  static std::map<uint32_t, std::unique_ptr<Loaded>> cache;
  auto &slot = cache[rules];
  if (slot)
    return *slot;
  slot = std::make_unique<Loaded>();
  Loaded &l = *slot;
  l.fleet = make_fleet(rules);
  pol_diag_t d;
  l.cfg = pol_config_parse(l.fleet.text.data(), l.fleet.text.size(), "fleet.conf", &d);
  if (!l.cfg) {
    fprintf(stderr, "fleet does not compile: %s\n", d.text[0]);
    abort();
  }
  uint64_t x = 42;
  auto rnd = [&x](uint32_t n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((x >> 33) % n);
  };
  for (int i = 0; i < 4096; i++) {
    auto r = std::make_unique<Request>();
    memset(&r->client, 0, sizeof r->client);
    memset(&r->ctx, 0, sizeof r->ctx);
    uint32_t kind = rnd(10);
    if (kind < 8) {  // a fleet workload (or, 1 in 8, a stranger namespace)
      uint32_t ns = rnd(l.fleet.namespaces), sa = rnd(l.fleet.sas);
      r->ns = kind == 7 ? "stranger" + std::to_string(ns) : "ns" + std::to_string(ns);
      r->sa = "sa" + std::to_string(sa);
      r->client.attr[POL_A_TRUST] = {"k8s", 3};
      r->client.attr[POL_A_KIND] = {"kubernetes", 10};
      r->client.attr[POL_A_NAMESPACE] = {r->ns.c_str(), (uint32_t)r->ns.size()};
      r->client.attr[POL_A_SERVICE_ACCOUNT] = {r->sa.c_str(), (uint32_t)r->sa.size()};
      r->target = (ns * 7 + sa) % l.fleet.targets;
    } else {
      uint32_t i = rnd(l.fleet.repos);
      r->repo = "org" + std::to_string(i % 100) + "/repo" + std::to_string(i);
      r->client.attr[POL_A_TRUST] = {"gh", 2};
      r->client.attr[POL_A_KIND] = {"github", 6};
      r->client.attr[POL_A_REPOSITORY] = {r->repo.c_str(), (uint32_t)r->repo.size()};
      r->client.attr[POL_A_REF] = {"refs/heads/main", 15};
      r->target = i % l.fleet.targets;
    }
    r->ctx.now_s = 1795392000 + (int64_t)rnd(7 * 86400);
    r->ctx.source_family = 4;
    uint32_t ip = 10u << 24 | rnd(256) << 16 | rnd(65536);
    ip = htonl(ip);
    memcpy(r->ctx.source_ip, &ip, 4);
    l.reqs.push_back(std::move(r));
  }
  return l;
}

template <bool Ref>
void BM_policy_eval(benchmark::State &state) {
  Loaded &l = load((uint32_t)state.range(0));
  pol_ask_t ask = {{nullptr, 0}, 0};
  pol_decision_t dec;
  size_t i = 0, allowed = 0;
  for (auto _ : state) {
    const Request &r = *l.reqs[i++ & 4095];
    if (Ref)
      pol_eval_ref(l.cfg, &r.client, r.target, &r.ctx, &ask, &dec);
    else
      pol_eval(l.cfg, &r.client, r.target, &r.ctx, &ask, &dec);
    allowed += dec.allow;
    benchmark::DoNotOptimize(dec);
  }
  state.SetItemsProcessed((int64_t)state.iterations());
  state.counters["allow_pct"] = state.iterations() ? 100.0 * (double)allowed / (double)state.iterations() : 0;
}

void BM_policy_eval_compiled(benchmark::State &state) { BM_policy_eval<false>(state); }
void BM_policy_eval_reference(benchmark::State &state) { BM_policy_eval<true>(state); }

void BM_policy_compile(benchmark::State &state) {
  Fleet f = make_fleet((uint32_t)state.range(0));
  size_t bytes = 0;
  for (auto _ : state) {
    pol_diag_t d;
    pol_config_t *c = pol_config_parse(f.text.data(), f.text.size(), "fleet.conf", &d);
    if (!c) {
      state.SkipWithError("fleet does not compile");
      return;
    }
    bytes = pol_config_bytes(c);
    pol_config_free(c);
  }
  state.SetItemsProcessed((int64_t)state.iterations() * state.range(0));
  state.counters["compiled_MiB"] = (double)bytes / (1024.0 * 1024.0);
  state.counters["source_MiB"] = (double)f.text.size() / (1024.0 * 1024.0);
}

}  // namespace

BENCHMARK(BM_policy_eval_compiled)->Arg(10)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_policy_eval_reference)->Arg(10)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_policy_compile)->Arg(10)->Arg(1000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
