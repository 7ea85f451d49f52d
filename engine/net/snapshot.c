/* Loading a snapshot: config (policy compiler), keys, own JWKS, attestation providers,
 * discovery document. Start-up and reload path: allocation is fine here. */
#include "net/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "batch/verify_engine.h"
#include "core/jsonw.h"

char *idm_discovery_json(const char *issuer, size_t *len) {
  size_t cap = 2048 + 8 * strlen(issuer);
  char *buf = malloc(cap);
  if (!buf)
    return NULL;
  size_t il = strlen(issuer);
  while (il && issuer[il - 1] == '/')
    il--;
  char url[1024];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, cap);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "issuer");
  idm_jsonw_str(&w, issuer);
#define URL(key, suffix)                                                                    \
  snprintf(url, sizeof url, "%.*s%s", (int)il, issuer, suffix);                             \
  idm_jsonw_key(&w, key);                                                                   \
  idm_jsonw_str(&w, url);
  URL("jwks_uri", "/.well-known/jwks.json")
  URL("token_endpoint", "/v1/token")
  URL("introspection_endpoint", "/v1/introspect")
#undef URL
  idm_jsonw_key(&w, "grant_types_supported");
  idm_jsonw_arr_begin(&w);
  idm_jsonw_str(&w, "urn:ietf:params:oauth:grant-type:token-exchange");
  idm_jsonw_arr_end(&w);
  idm_jsonw_key(&w, "token_endpoint_auth_methods_supported");
  idm_jsonw_arr_begin(&w);
  idm_jsonw_str(&w, "none");
  idm_jsonw_arr_end(&w);
  idm_jsonw_key(&w, "introspection_endpoint_auth_methods_supported");
  idm_jsonw_arr_begin(&w);
  idm_jsonw_str(&w, "none");
  idm_jsonw_arr_end(&w);
  idm_jsonw_key(&w, "response_types_supported");
  idm_jsonw_arr_begin(&w);
  idm_jsonw_str(&w, "token");
  idm_jsonw_arr_end(&w);
  idm_jsonw_key(&w, "subject_types_supported");
  idm_jsonw_arr_begin(&w);
  idm_jsonw_str(&w, "public");
  idm_jsonw_arr_end(&w);
  idm_jsonw_key(&w, "id_token_signing_alg_values_supported");
  idm_jsonw_arr_begin(&w);
  idm_jsonw_str(&w, "EdDSA");
  idm_jsonw_str(&w, "ES256");
  idm_jsonw_arr_end(&w);
  idm_jsonw_key(&w, "subject_token_types_supported");
  idm_jsonw_arr_begin(&w);
  for (int t = 0; t < IDM_DOC__COUNT; t++) /* attest owns the list of document types */
    idm_jsonw_str(&w, idm_doc_type_uri((idm_doc_type_t)t));
  idm_jsonw_arr_end(&w);
  idm_jsonw_obj_end(&w);
  if (idm_jsonw_finish(&w, len) != IDM_OK) {
    free(buf);
    return NULL;
  }
  return buf;
}

void idm_snapshot_free(idm_snapshot_t *s) {
  if (!s)
    return;
  idm_attest_free(s->attest);
  idm_verifier_free(s->own_verifier); /* before the set it borrows */
  idm_jwks_free(s->own_jwks);
  idm_keyring_free(s->keys);
  pol_config_free(s->cfg);
  free(s->discovery);
  free(s);
}

idm_snapshot_t *idm_snapshot_load(const char *config_path, const idm_clock_t *clk,
                                  idm_err_t *err, idm_why_t *why) {
  idm_snapshot_t *s = calloc(1, sizeof *s);
  if (!s) {
    *err = idm_fail(why, IDM_ERR_NOMEM, "out of memory loading %s", config_path);
    return NULL;
  }
  static pol_diag_t diag; /* large; load runs on one thread at a time (start, SIGHUP) */
  memset(&diag, 0, sizeof diag);
  s->cfg = pol_config_load(config_path, &diag);
  if (!s->cfg) {
    char msg[IDM_WHY_LEN];
    size_t n = 0;
    msg[0] = '\0';
    for (uint32_t i = 0; i < diag.count && i < POL_DIAG_MAX && n + 4 < sizeof msg; i++) {
      const char *d = diag.text[i];
      size_t dl = strcspn(d, "\n"); /* first line: file:line:col: message */
      int k = snprintf(msg + n, sizeof msg - n, "%s%.*s", i ? "; " : "", (int)dl, d);
      if (k < 0)
        break;
      n += (size_t)k;
      if (n >= sizeof msg)
        break;
    }
    *err = idm_fail(why, IDM_ERR_CONFIG, "%s", diag.count ? msg : config_path);
    idm_snapshot_free(s);
    return NULL;
  }
  s->server = pol_config_server(s->cfg);
  s->keys = idm_keyring_load(s->server->keys_dir, clk, why);
  if (!s->keys) {
    *err = IDM_ERR_CONFIG;
    idm_snapshot_free(s);
    return NULL;
  }
  if (!idm_keyring_signer(s->keys, IDM_KEY_EDDSA) && !idm_keyring_signer(s->keys, IDM_KEY_ES256)) {
    *err = idm_fail(why, IDM_ERR_CONFIG, "%s: no active signing key (run idmint keys new --dir %s)",
                    s->server->keys_dir, s->server->keys_dir);
    idm_snapshot_free(s);
    return NULL;
  }
  s->jwks_json = idm_keyring_jwks_json(s->keys, &s->jwks_len);
  s->own_jwks = idm_jwks_parse(s->jwks_json, s->jwks_len, why);
  if (!s->own_jwks) {
    *err = IDM_ERR_CONFIG;
    idm_snapshot_free(s);
    return NULL;
  }
  idm_verify_opts_t vo = {.issuer = s->server->issuer};
  s->own_verifier = idm_verifier_new_set(s->own_jwks, &vo, why);
  if (!s->own_verifier) {
    *err = IDM_ERR_NOMEM;
    idm_snapshot_free(s);
    return NULL;
  }
  s->attest = idm_attest_new(s->cfg, why);
  if (!s->attest) {
    *err = IDM_ERR_CONFIG;
    idm_snapshot_free(s);
    return NULL;
  }
  s->discovery = idm_discovery_json(s->server->issuer, &s->discovery_len);
  if (!s->discovery) {
    *err = idm_fail(why, IDM_ERR_CONFIG, "issuer URL too long");
    idm_snapshot_free(s);
    return NULL;
  }
  s->target_count = pol_config_target_count(s->cfg);
  for (size_t i = 0; i < s->target_count && i < IDM_NET_METRIC_TARGETS_MAX; i++)
    s->target_names[i] = pol_config_target(s->cfg, (uint32_t)i)->name;
  *err = IDM_OK;
  return s;
}
