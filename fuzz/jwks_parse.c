/* Fuzz target: JWK Set parsing (k8s/OIDC/SPIFFE key sets are outside input).
 * Properties: parsing is deterministic (a second parse yields the same keys, kids and
 * thumbprints); every key has a 43-character thumbprint; every non-empty kid finds its
 * own key; each key allows at least one algorithm and never none/HS*; no crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/limits.h"
#include "crypto/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int inited;
  if (!inited) {
    idm_json_init();
    inited = 1;
  }
  if (size > IDM_KEYFILE_MAX_BYTES)
    return 0;
  idm_why_t why;
  idm_jwks_t *a = idm_jwks_parse((const char *)data, size, &why);
  idm_jwks_t *b = idm_jwks_parse((const char *)data, size, NULL);
  if (!a != !b)
    abort();
  if (!a) {
    if (!why.text[0])
      abort(); /* every refusal has a reason */
    return 0;
  }
  size_t n = idm_jwks_count(a);
  if (n == 0 || n > IDM_JWKS_KEYS_MAX || n != idm_jwks_count(b))
    abort();
  for (size_t i = 0; i < n; i++) {
    const idm_jwk_t *k = idm_jwks_at(a, i), *k2 = idm_jwks_at(b, i);
    if (strlen(idm_jwk_thumbprint(k)) != 43 || strcmp(idm_jwk_thumbprint(k), idm_jwk_thumbprint(k2)) ||
        strcmp(idm_jwk_kid(k), idm_jwk_kid(k2)))
      abort();
    const char *kid = idm_jwk_kid(k);
    if (kid[0] && idm_jwks_find(a, kid, strlen(kid)) != k)
      abort();
    int allowed = 0;
    for (int alg = IDM_JWS_NONE; alg < IDM_JWS__COUNT; alg++)
      if (idm_jwk_allows(k, (idm_jws_alg_t)alg)) {
        allowed++;
        if (alg <= IDM_JWS_HS512)
          abort();
      }
    if (!allowed)
      abort();
  }
  idm_jwks_free(a);
  idm_jwks_free(b);
  return 0;
}
