/* The verified-identity cache: hits confirmed by the whole document (shared header prefix
 * included), expiry, generations (key reload), eviction within a fixed budget, the sweep,
 * compact attributes and claims, and a differential test against a simple reference
 * model. */
#include <criterion/criterion.h>

#include "attest/internal.h"
#include "core/file.h"
#include "core/limits.h"
#include "env.h"

static idm_arena_t g_arena;
static pol_trust_t t_a, t_b;
static idm_provider_t g_prov[2];
static idm_attest_t g_att;

static void setup(void) {
  idm_arena_init(&g_arena, 256 * 1024);
  memset(&t_a, 0, sizeof t_a);
  t_a.name = "a";
  t_a.kind = POL_KIND_OIDC;
  t_b = t_a;
  t_b.name = "b";
  memset(g_prov, 0, sizeof g_prov);
  g_prov[0].trust = &t_a;
  g_prov[0].index = 0;
  g_prov[0].gen = 1000;
  g_prov[1].trust = &t_b;
  g_prov[1].index = 1;
  g_prov[1].gen = 2000;
  g_att.prov = g_prov;
  g_att.n = 2;
}
static void teardown(void) { idm_arena_cleanup(&g_arena); }
TestSuite(cache, .init = setup, .fini = teardown);

/* A synthetic identity for document number i. */
static void ident(unsigned i, idm_identity_t *id, char *sub, char *ns) {
  memset(id, 0, sizeof *id);
  sprintf(sub, "system:serviceaccount:ns%u:sa%u", i % 7, i);
  sprintf(ns, "ns%u", i % 7);
  id->client.attr[POL_A_SUBJECT].ptr = sub;
  id->client.attr[POL_A_SUBJECT].len = (uint32_t)strlen(sub);
  id->client.attr[POL_A_NAMESPACE].ptr = ns;
  id->client.attr[POL_A_NAMESPACE].len = (uint32_t)strlen(ns);
  id->exp_s = NOW + 100 + i % 50;
}

static void doc(unsigned i, char *out) { sprintf(out, "eyJhbGciOiJSUzI1NiJ9.doc-%u.sig-%u", i, i * 7919u); }

static bool get(idm_attest_cache_t *c, const idm_provider_t *want, const char *d, long long now,
                idm_identity_t *out) {
  uint64_t h = idm_attest_cache_hash(c, d, strlen(d));
  return idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, want, h, d, strlen(d), now, out);
}
static void put(idm_attest_cache_t *c, const idm_provider_t *p, const char *d,
                const idm_identity_t *id) {
  uint64_t h = idm_attest_cache_hash(c, d, strlen(d));
  idm_attest_cache_put(c, p, IDM_DOC_JWT, h, d, strlen(d), id);
}

Test(cache, hit_returns_copied_attributes_until_exp) {
  idm_attest_cache_t *c = idm_attest_cache_new(16, 0);
  char d[128], sub[96], ns[16];
  idm_identity_t id, got;
  doc(1, d);
  ident(1, &id, sub, ns);
  cr_assert(!get(c, NULL, d, NOW, &got));
  put(c, &g_prov[0], d, &id);
  memset(sub, 'x', strlen(sub)); /* the cache holds its own copy */
  cr_assert(get(c, NULL, d, NOW, &got));
  cr_assert(got.cached);
  cr_assert_eq(got.trust, &t_a);
  cr_assert_eq(got.client.attr[POL_A_SUBJECT].len, strlen("system:serviceaccount:ns1:sa1"));
  cr_assert(!memcmp(got.client.attr[POL_A_SUBJECT].ptr, "system:serviceaccount:ns1:sa1", 29));
  cr_assert(!memcmp(got.client.attr[POL_A_TRUST].ptr, "a", 1));
  cr_assert(!memcmp(got.client.attr[POL_A_KIND].ptr, "oidc", 4));
  cr_assert_null(got.client.attr[POL_A_POD].ptr);
  /* Another trust asked for: not served. Same doc, one byte different: not served. */
  cr_assert(!get(c, &g_prov[1], d, NOW, &got));
  cr_assert(get(c, &g_prov[0], d, NOW, &got));
  d[5] ^= 1;
  cr_assert(!get(c, NULL, d, NOW, &got));
  d[5] ^= 1;
  /* Never beyond exp. */
  cr_assert(get(c, NULL, d, id.exp_s - 1, &got));
  cr_assert(!get(c, NULL, d, id.exp_s, &got));
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_eq(st.hits, 3);
  cr_assert_eq(st.misses, 4);
  cr_assert_eq(st.stale, 1);
  idm_attest_cache_free(c);
}

Test(cache, generation_change_clears_only_that_provider) {
  idm_attest_cache_t *c = idm_attest_cache_new(64, 0);
  char d0[128], d1[128], sub[96], ns[16];
  idm_identity_t id, got;
  doc(10, d0);
  doc(11, d1);
  ident(10, &id, sub, ns);
  put(c, &g_prov[0], d0, &id);
  put(c, &g_prov[1], d1, &id);
  g_prov[0].gen++; /* provider a's keys were reloaded */
  cr_assert(!get(c, NULL, d0, NOW, &got));
  cr_assert(get(c, NULL, d1, NOW, &got));
  idm_attest_cache_free(c);
}

Test(cache, hash_collisions_are_confirmed_by_document) {
  /* Force every document into one probe window by giving all the same hash. */
  idm_attest_cache_t *c = idm_attest_cache_new(64, 0);
  char d[8][128], sub[96], ns[16];
  idm_identity_t id, got;
  for (unsigned i = 0; i < 4; i++) {
    doc(100 + i, d[i]);
    ident(100 + i, &id, sub, ns);
    idm_attest_cache_put(c, &g_prov[0], IDM_DOC_JWT, 42, d[i], strlen(d[i]), &id);
  }
  for (unsigned i = 0; i < 4; i++) {
    cr_assert(idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, 42, d[i], strlen(d[i]), NOW, &got));
    char want[96];
    sprintf(want, "system:serviceaccount:ns%u:sa%u", (100 + i) % 7, 100 + i);
    cr_assert(!memcmp(got.client.attr[POL_A_SUBJECT].ptr, want, strlen(want)));
  }
  doc(999, d[5]);
  cr_assert(!idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, 42, d[5], strlen(d[5]), NOW, &got));
  idm_attest_cache_free(c);
}

static void put_h(idm_attest_cache_t *c, int prov, uint64_t h, const char *d, long long exp) {
  char sub[96], ns[16];
  idm_identity_t id;
  ident(7, &id, sub, ns);
  id.exp_s = exp;
  idm_attest_cache_put(c, &g_prov[prov], IDM_DOC_JWT, h, d, strlen(d), &id);
}

/* A hash whose two buckets are b0 and b1 (salt picks among them). */
static uint64_t hash_for(idm_attest_cache_t *c, size_t b0, size_t b1, uint64_t salt) {
  for (uint64_t i = 1;; i++) {
    uint64_t h = (i * 0x9e3779b97f4a7c15ULL) ^ (salt << 1);
    size_t b[2];
    idm_attest_cache_buckets(c, h, b);
    if (b[0] == b0 && b[1] == b1)
      return h;
  }
}

/* Regression (found by the differential test): re-verifying a document under another
 * trust while an earlier slot of its window was free left two copies; another document
 * whose window overlapped only the newer copy's slot then evicted it, and the older copy
 * (the other trust) was served. A document now has at most one slot.
 * Here X's window is buckets {2, 3}. Bucket 2 holds eight documents F (their window is
 * {2, 2}), bucket 3 seven documents G, so X (trust a) takes bucket 3's last slot. F1
 * expires and is dropped, so bucket 2 has the only free slot when X is re-verified under
 * trust b. Then documents E (window {2, 2}) churn all of bucket 2. X must be served under
 * trust b. */
Test(cache, reput_document_keeps_one_copy) {
  idm_attest_cache_t *c = idm_attest_cache_new(32, 0); /* 48 slots: 6 buckets */
  idm_identity_t got;
  char f[8][8], g[8][8], e[16][8];
  uint64_t hf1 = 0;
  for (int i = 0; i < 8; i++) {
    sprintf(f[i], "F%d", i);
    uint64_t h = hash_for(c, 2, 2, (uint64_t)i);
    if (i == 1)
      hf1 = h;
    put_h(c, 0, h, f[i], i == 1 ? NOW + 1 : NOW + 100);
  }
  for (int i = 0; i < 7; i++) {
    sprintf(g[i], "G%d", i);
    put_h(c, 0, hash_for(c, 3, 3, 100 + (uint64_t)i), g[i], NOW + 100);
  }
  uint64_t hx = hash_for(c, 2, 3, 7);
  put_h(c, 0, hx, "X", NOW + 100); /* trust a, bucket 3 */
  cr_assert(idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, hx, "X", 1, NOW + 5, &got));
  cr_assert_eq(got.trust, &t_a);
  cr_assert(!idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, hf1, f[1], 2, NOW + 5, &got));
  put_h(c, 1, hx, "X", NOW + 100); /* trust b: must replace X's slot, not take F1's */
  for (int i = 0; i < 16; i++) {
    sprintf(e[i], "E%d", i);
    put_h(c, 0, hash_for(c, 2, 2, 200 + (uint64_t)i), e[i], NOW + 100);
  }
  cr_assert(idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, hx, "X", 1, NOW + 5, &got));
  cr_assert_eq(got.trust, &t_b, "a stale copy under the other trust was served");
  idm_attest_cache_free(c);
}

/* JWS header segments are stored once and shared; a hit still compares every byte: a
 * document with another header but the same rest, or the same header and another rest,
 * never matches, and clearing the cache (which empties the prefix table) never lets an
 * old record be read with a new prefix. */
Test(cache, shared_header_prefix_still_compares_every_byte) {
  idm_attest_cache_t *c = idm_attest_cache_new(64, 0);
  char sub[96], ns[16];
  idm_identity_t id, got;
  ident(1, &id, sub, ns);
  const char *d1 = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0.c2lnLWE";
  const char *d2 = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJiIn0.c2lnLWI";
  put(c, &g_prov[0], d1, &id);
  put(c, &g_prov[0], d2, &id);
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_lt(st.bytes_used, 2 * (16 + strlen(d1) + 2 + 3 + strlen(sub) + 3 + strlen(ns)),
               "the shared header is stored once");
  cr_assert(get(c, NULL, d1, NOW, &got));
  cr_assert(get(c, NULL, d2, NOW, &got));
  /* Same hash (the hash covers the tail), another header: must not hit. */
  const char *h1 = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnLWE";
  uint64_t h = idm_attest_cache_hash(c, d1, strlen(d1));
  cr_assert_eq(strlen(h1), strlen(d1)); /* same length and tail: same hash */
  cr_assert(!idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, h, h1, strlen(h1), NOW, &got));
  char x[128];
  strcpy(x, d1);
  x[3] ^= 1; /* a header byte */
  cr_assert(!idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, h, x, strlen(x), NOW, &got));
  strcpy(x, d1);
  x[25] ^= 1; /* a payload byte */
  cr_assert(!idm_attest_cache_get(c, &g_att, IDM_DOC_JWT, NULL, h, x, strlen(x), NOW, &got));
  /* After clear, another header takes prefix entry 1 first; d1's old record (which named
   * entry 1) must not be reachable as "new header + old rest". */
  idm_attest_cache_clear(c);
  const char *o = "eyJhbGciOiJQUzI1NiJ9.eyJzdWIiOiJjIn0.c2lnLWM";
  put(c, &g_prov[0], o, &id);
  char forged[128];
  snprintf(forged, sizeof forged, "eyJhbGciOiJQUzI1NiJ9.%s", strchr(d1, '.') + 1);
  cr_assert(!get(c, NULL, forged, NOW, &got));
  cr_assert(!get(c, NULL, d1, NOW, &got));
  cr_assert(get(c, NULL, o, NOW, &got));
  idm_attest_cache_free(c);
}

/* Attribute values found inside a longer one are stored as references and read back
 * exactly (SPIFFE: the subject equals the SPIFFE ID, the trust domain is inside it). */
Test(cache, attributes_stored_as_references_read_back) {
  idm_attest_cache_t *c = idm_attest_cache_new(16, 0);
  idm_identity_t id, got;
  memset(&id, 0, sizeof id);
  char spid[] = "spiffe://corp.example/ns/payments/sa/api", sub[64], td[] = "corp.example";
  strcpy(sub, spid);
  id.client.attr[POL_A_SPIFFE_ID] = (pol_str_t){spid, (uint32_t)strlen(spid)};
  id.client.attr[POL_A_SUBJECT] = (pol_str_t){sub, (uint32_t)strlen(sub)};
  id.client.attr[POL_A_TRUST_DOMAIN] = (pol_str_t){td, (uint32_t)strlen(td)};
  id.client.attr[POL_A_ENVIRONMENT] = (pol_str_t){"", 0};
  id.exp_s = NOW + 60;
  const char *d = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJzcGlmZmUifQ.c2ln";
  put(c, &g_prov[0], d, &id);
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_lt(st.bytes_used, 16 + strlen(d) + 2 + 3 + strlen(spid) + 3 * 5 + 8);
  memset(spid, 'x', strlen(spid)); /* the cache holds its own copy */
  memset(sub, 'y', strlen(sub));
  cr_assert(get(c, NULL, d, NOW, &got));
  const char *want = "spiffe://corp.example/ns/payments/sa/api";
  cr_assert_eq(got.client.attr[POL_A_SPIFFE_ID].len, strlen(want));
  cr_assert(!memcmp(got.client.attr[POL_A_SPIFFE_ID].ptr, want, strlen(want)));
  cr_assert_eq(got.client.attr[POL_A_SUBJECT].len, strlen(want));
  cr_assert(!memcmp(got.client.attr[POL_A_SUBJECT].ptr, want, strlen(want)));
  cr_assert_eq(got.client.attr[POL_A_TRUST_DOMAIN].len, strlen("corp.example"));
  cr_assert(!memcmp(got.client.attr[POL_A_TRUST_DOMAIN].ptr, "corp.example", 12));
  cr_assert_not_null(got.client.attr[POL_A_ENVIRONMENT].ptr, "an empty value stays present");
  cr_assert_eq(got.client.attr[POL_A_ENVIRONMENT].len, 0);
  cr_assert_null(got.client.attr[POL_A_POD].ptr);
  idm_attest_cache_free(c);
}

/* Claims (oidc) survive the compact record: the pol_kv_t array is aligned and its views
 * point into the cache. */
Test(cache, claims_read_back) {
  idm_attest_cache_t *c = idm_attest_cache_new(16, 0);
  char sub[96], ns[16];
  idm_identity_t id, got;
  ident(3, &id, sub, ns);
  pol_kv_t kv[2] = {{{"email", 5}, {"a@example.com", 13}}, {{"team", 4}, {"payments", 8}}};
  id.client.claims = kv;
  id.client.claims_count = 2;
  for (int odd = 0; odd < 8; odd++) { /* every alignment of the attribute area's end */
    char d[64];
    snprintf(d, sizeof d, "eyJhbGciOiJFZERTQSJ9.%.*s.sig%d", odd, "abcdefgh", odd);
    put(c, &g_prov[0], d, &id);
    cr_assert(get(c, NULL, d, NOW, &got));
    cr_assert_eq(got.client.claims_count, 2);
    cr_assert_eq((uintptr_t)got.client.claims % _Alignof(pol_kv_t), 0);
    cr_assert(!memcmp(got.client.claims[0].name.ptr, "email", 5));
    cr_assert(!memcmp(got.client.claims[0].value.ptr, "a@example.com", 13));
    cr_assert(!memcmp(got.client.claims[1].value.ptr, "payments", 8));
    cr_assert(!memcmp(got.client.attr[POL_A_SUBJECT].ptr, sub, strlen(sub)));
  }
  idm_attest_cache_free(c);
}

/* The index never keeps slots of overwritten records for long: the sweep clears them at
 * least once per lap of the ring (without it, a slot could outlive 2,048 laps and its
 * 11-bit lap alias a live one). Many laps of a small ring with a large index: the slots in
 * use stay within two laps' worth of records, and every served identity is right. */
Test(cache, sweep_keeps_index_to_live_records) {
  idm_attest_cache_t *c = idm_attest_cache_new(4096, 64 * 1024);
  char sub[96], ns[16], d[128];
  idm_identity_t id, got;
  size_t per_lap = 0;
  for (unsigned i = 0; i < 40000; i++) {
    doc(i, d);
    ident(i, &id, sub, ns);
    id.exp_s = NOW + 1000;
    put(c, &g_prov[0], d, &id);
    if (i == 100) {
      idm_attest_cache_stats_t st;
      idm_attest_cache_stats(c, &st);
      per_lap = (size_t)(64 * 1024 / (st.bytes_used / 101));
    }
  }
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_leq(st.entries, 2 * per_lap, "%zu slots in use, %zu records per lap", st.entries,
                per_lap);
  size_t hits = 0;
  for (unsigned i = 0; i < 40000; i++) {
    doc(i, d);
    if (get(c, NULL, d, NOW, &got)) {
      hits++;
      cr_assert_geq(i, 40000 - per_lap - 1, "doc %u outlived its record", i);
      ident(i, &id, sub, ns);
      cr_assert(!memcmp(got.client.attr[POL_A_SUBJECT].ptr, sub, strlen(sub)));
    }
  }
  cr_assert_gt(hits, per_lap / 2);
  idm_attest_cache_free(c);
}

/* The index is sized for entries_max at load <= 2/3 with two choices per document: every
 * identity of a full cache stays (the benchmark checks 1,000,000 of them). */
Test(cache, full_cache_keeps_every_identity) {
  enum { N = 20000 };
  idm_attest_cache_t *c = idm_attest_cache_new(N, (size_t)N * 128);
  char sub[96], ns[16], d[128];
  idm_identity_t id, got;
  for (unsigned i = 0; i < N; i++) {
    doc(i, d);
    ident(i, &id, sub, ns);
    put(c, &g_prov[0], d, &id);
  }
  size_t hits = 0;
  for (unsigned i = 0; i < N; i++) {
    doc(i, d);
    hits += get(c, NULL, d, NOW, &got);
  }
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_eq(st.evictions, 0);
  cr_assert_eq(hits, N);
  cr_assert_eq(st.bytes_reserved, st.index_bytes + (size_t)N * 128, "the ring is the budget");
  idm_attest_cache_free(c);
}

/* idm_attest_cache_prefetch is a hint: it changes nothing and accepts anything. */
Test(cache, prefetch_is_only_a_hint) {
  idm_attest_cache_t *c = idm_attest_cache_new(16, 0);
  char d[128], sub[96], ns[16];
  idm_identity_t id, got;
  doc(5, d);
  ident(5, &id, sub, ns);
  idm_attest_cache_prefetch(c, d, strlen(d), false);
  idm_attest_cache_prefetch(c, d, strlen(d), true);
  put(c, &g_prov[0], d, &id);
  idm_attest_cache_stats_t a, b;
  idm_attest_cache_stats(c, &a);
  idm_attest_cache_prefetch(c, d, strlen(d), false);
  idm_attest_cache_prefetch(c, d, strlen(d), true);
  idm_attest_cache_prefetch(NULL, d, strlen(d), true);
  idm_attest_cache_prefetch(c, NULL, 0, true);
  idm_attest_cache_stats(c, &b);
  cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
  cr_assert(get(c, NULL, d, NOW, &got));
  idm_attest_cache_free(c);
}

/* Differential: random puts and gets against a reference model (a plain array that
 * remembers everything). The cache may forget (eviction), but whatever it returns must be
 * exactly what the model says, and it must never return an expired or stale entry. */
Test(cache, differential_against_reference_model) {
  enum { DOCS = 3000, OPS = 60000 };
  idm_attest_cache_t *c = idm_attest_cache_new(256, 64 * 1024); /* far smaller than DOCS */
  static long long model_exp[DOCS];
  static int model_prov[DOCS];
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  long long now = NOW;
  size_t hits = 0;
  idm_attest_cache_stats_t st0;
  idm_attest_cache_stats(c, &st0);
  for (int op = 0; op < OPS; op++) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    unsigned i = (unsigned)(rng % DOCS);
    char d[128], sub[96], ns[16];
    doc(i, d);
    idm_identity_t id, got;
    if ((rng >> 40) % 3 == 0) {
      ident(i, &id, sub, ns);
      int p = (int)((rng >> 20) & 1);
      put(c, &g_prov[p], d, &id);
      model_exp[i] = id.exp_s;
      model_prov[i] = p;
    } else if (get(c, NULL, d, now, &got)) {
      hits++;
      cr_assert(model_exp[i] > now, "served doc %u after exp", i);
      cr_assert_eq(got.exp_s, model_exp[i]);
      cr_assert_eq(got.trust, g_prov[model_prov[i]].trust);
      ident(i, &id, sub, ns);
      cr_assert_eq(got.client.attr[POL_A_SUBJECT].len, strlen(sub));
      cr_assert(!memcmp(got.client.attr[POL_A_SUBJECT].ptr, sub, strlen(sub)));
      cr_assert(!memcmp(got.client.attr[POL_A_NAMESPACE].ptr, ns, strlen(ns)));
    }
    if (op % 1000 == 0)
      now += 3;
  }
  cr_assert_gt(hits, 100);
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_eq(st.bytes_reserved, st0.bytes_reserved, "memory is fixed at creation");
  cr_assert_gt(st.evictions + st.stale, 0);
  idm_attest_cache_free(c);
}

Test(cache, oversize_documents_are_not_stored) {
  idm_attest_cache_t *c = idm_attest_cache_new(4, 0);
  static char big[IDM_ATTEST_CACHE_DOC_MAX_BYTES + 2];
  memset(big, 'a', sizeof big - 1);
  char sub[96], ns[16];
  idm_identity_t id, got;
  ident(1, &id, sub, ns);
  put(c, &g_prov[0], big, &id);
  cr_assert(!get(c, NULL, big, NOW, &got));
  idm_attest_cache_free(c);
}

/* End to end with a real provider: rebuilding the idm_attest_t (SIGHUP reloads the keys)
 * makes every entry of the old build miss. */
Test(cache, rebuilt_attest_misses_old_entries) {
  fx_cert_write(&g_rsa, env_path("aws-c.pem"));
  pol_trust_t t;
  memset(&t, 0, sizeof t);
  t.name = "aws";
  t.kind = POL_KIND_AWS_IID;
  t.certificate = env_path("aws-c.pem");
  t.max_age_s = 600;
  const pol_trust_t *ts[] = {&t};
  idm_why_t why = {{0}};
  idm_attest_t *a = idm_attest_new_from_trusts(ts, 1, &why);
  cr_assert_not_null(a, "%s", why.text);
  char pt[32], d[4096], tok[8192];
  fx_time(pt, sizeof pt, NOW - 5);
  fx_iid_doc(d, sizeof d, "123456789012", "i-0123456789abcdef0", pt);
  fx_iid_wrap(&g_rsa, d, tok, sizeof tok);
  idm_attest_cache_t *c = idm_attest_cache_new(16, 0);
  idm_clock_t ck = env_clock(NOW);
  idm_identity_t id;
  cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_AWS_IID, "aws", tok, strlen(tok), &ck, &id, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(idm_attest_verify(a, c, &g_arena, IDM_DOC_AWS_IID, "aws", tok, strlen(tok), &ck, &id, &why), IDM_OK);
  cr_assert(id.cached);
  /* The certificate is replaced by another key's and the server reloads. */
  fx_cert_write(&g_rsa_other, env_path("aws-c.pem"));
  idm_attest_t *b = idm_attest_new_from_trusts(ts, 1, &why);
  cr_assert_not_null(b, "%s", why.text);
  idm_attest_free(a);
  cr_assert_eq(idm_attest_verify(b, c, &g_arena, IDM_DOC_AWS_IID, "aws", tok, strlen(tok), &ck, &id, &why), IDM_ERR_IID_SIGNATURE, "%s", why.text);
  idm_attest_cache_stats_t st;
  idm_attest_cache_stats(c, &st);
  cr_assert_eq(st.hits, 1);
  cr_assert_eq(st.stale, 1);
  idm_attest_cache_free(c);
  idm_attest_free(b);
}
