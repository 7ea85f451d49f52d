/* Fuzz target: what attest does with a token's claims after the signature (claim checks
 * and the per-kind attribute mapping), plus the JWS and JWK Set parsers on the same bytes.
 * The first byte picks the kind; the rest is the claims JSON. Properties: an accepted
 * identity always has trust, kind and subject; a kubernetes subject is exactly
 * system:serviceaccount:<namespace>:<service_account>; a SPIFFE ID is in the configured
 * trust domain; the attributes serialize to JSON; parsing a JWK Set is deterministic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/internal.h"
#include "core/json.h"

static idm_arena_t arena;
static const char *const aud[] = {"idmint"};

static bool eq(pol_str_t v, const char *s, size_t n) {
  return v.ptr && v.len == n && memcmp(v.ptr, s, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!arena.base) {
    idm_json_init();
    if (idm_arena_init(&arena, 4 << 20) != IDM_OK)
      abort();
  }
  if (size < 1 || size > 32 * 1024)
    return 0;
  static const pol_kind_t kinds[] = {POL_KIND_KUBERNETES, POL_KIND_GITHUB, POL_KIND_GITLAB,
                                     POL_KIND_SPIFFE, POL_KIND_OIDC};
  pol_trust_t t;
  memset(&t, 0, sizeof t);
  t.name = "fz";
  t.kind = kinds[data[0] % 5];
  t.audience = aud;
  t.audience_count = 1;
  t.trust_domain = "corp.example";
  t.max_lifetime_s = data[0] & 0x80 ? 86400 : 0;
  idm_provider_t p;
  memset(&p, 0, sizeof p);
  p.trust = &t;
  p.issuer = "https://issuer.example";
  p.leeway_s = 30;
  idm_clock_t clk;
  idm_clock_set_s(&clk, 1790000000);

  idm_arena_reset(&arena);
  idm_arena_t *prev = idm_json_use_arena(&arena);
  idm_err_t e;
  json_t *claims = idm_json_parse((const char *)data + 1, size - 1, &e, NULL);
  idm_json_use_arena(prev);
  if (claims) {
    idm_identity_t id;
    memset(&id, 0, sizeof id);
    if (idm_attest_jwt_claims(&p, &arena, claims, &clk, &id, NULL) == IDM_OK) {
      const pol_client_t *c = &id.client;
      if (!c->attr[POL_A_TRUST].ptr || !c->attr[POL_A_KIND].ptr || !c->attr[POL_A_SUBJECT].ptr ||
          id.exp_s <= 0)
        abort();
      if (t.kind == POL_KIND_KUBERNETES) {
        char want[4096];
        int n = snprintf(want, sizeof want, "system:serviceaccount:%.*s:%.*s",
                         (int)c->attr[POL_A_NAMESPACE].len, c->attr[POL_A_NAMESPACE].ptr,
                         (int)c->attr[POL_A_SERVICE_ACCOUNT].len,
                         c->attr[POL_A_SERVICE_ACCOUNT].ptr);
        if (n < 0 || (size_t)n >= sizeof want || !eq(c->attr[POL_A_SUBJECT], want, (size_t)n))
          abort();
      }
      if (t.kind == POL_KIND_SPIFFE &&
          (!eq(c->attr[POL_A_TRUST_DOMAIN], "corp.example", 12) ||
           c->attr[POL_A_SPIFFE_ID].len < 22 ||
           memcmp(c->attr[POL_A_SPIFFE_ID].ptr, "spiffe://corp.example/", 22) != 0))
        abort();
      static char js[1 << 20];
      size_t jl;
      if (idm_identity_to_json(&id, js, sizeof js, &jl) != IDM_OK)
        abort();
    }
  }

  /* The same bytes as a compact JWS and as a JWK Set. */
  idm_arena_reset(&arena);
  idm_jws_t jws;
  memset(&jws, 0, sizeof jws);
  (void)idm_jws_parse(&jws, &arena, (const char *)data + 1, size - 1, NULL);
  idm_jwks_t *s1 = idm_jwks_parse((const char *)data + 1, size - 1, NULL);
  idm_jwks_t *s2 = idm_jwks_parse((const char *)data + 1, size - 1, NULL);
  if (!s1 != !s2 || (s1 && idm_jwks_count(s1) != idm_jwks_count(s2)))
    abort();
  idm_jwks_free(s1);
  idm_jwks_free(s2);
  return 0;
}
