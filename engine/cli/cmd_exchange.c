/* idmint token exchange: the POST /v1/token path (engine/net/exchange.c), offline.
 *
 * It loads the same snapshot the server would (config, policy, keys, trust providers),
 * runs the same pipeline with the same checks, and prints the same JSON the endpoint
 * returns, so a policy and an identity document can be tried without a running server.
 * The credential goes through a batcher like the server's (so batch-profile targets work
 * too), sealed synchronously; it has no audit log, so an offline exchange is not recorded
 * in the server's transparency log (it must never write into a log a server appends to). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "batch/batch.h"
#include "core/limits.h"
#include "net/exchange.h"
#include "net/snapshot.h"

static void on_done(void *cookie, idm_err_t err, void *ctx) {
  (void)ctx;
  *(idm_err_t *)cookie = err;
}

static void usage(FILE *f) {
  fputs("usage: idmint token exchange --config FILE --subject-token DOC_OR_@FILE\n"
        "                             --audience TARGET [--scope S] [--source-ip IP]\n"
        "                             [--subject-token-type URI]\n\n"
        "Runs the token exchange of POST /v1/token offline: verifies the identity document,\n"
        "evaluates the policy for TARGET and mints the credential. Prints the RFC 8693\n"
        "response JSON (or the endpoint's error JSON) on stdout.\n\n"
        "  --config FILE             the server configuration (trust, targets, rules, keys)\n"
        "  --subject-token DOC       the identity document, @FILE to read it, - for stdin\n"
        "  --subject-token-type URI  default urn:ietf:params:oauth:token-type:jwt\n"
        "  --audience TARGET         a target's name or its audience URI\n"
        "  --scope S                 requested scopes, space-separated\n"
        "  --source-ip IP            the source address the policy sees (default: none)\n\n"
        "Exit status: 0 when a credential was minted, 1 when refused (reason on stderr),\n"
        "2 on a usage error.\n",
        f);
}

int idm_cmd_token_exchange(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    usage(stdout);
    return IDM_EXIT_OK;
  }
  const char *config = NULL, *doc_arg = NULL, *aud = NULL, *scope = NULL, *ip = NULL;
  const char *type = "urn:ietf:params:oauth:token-type:jwt";
  for (int i = 1; i < argc; i += 2) { /* every argument is a --flag VALUE pair */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **slot = !strcmp(a, "--config") ? &config
                        : !strcmp(a, "--subject-token") ? &doc_arg
                        : !strcmp(a, "--audience") ? &aud
                        : !strcmp(a, "--scope") ? &scope
                        : !strcmp(a, "--source-ip") ? &ip
                        : !strcmp(a, "--subject-token-type") ? &type : NULL;
    if (!slot)
      return idm_cli_usage("token exchange", "unknown argument '%s'", a);
    if (!v)
      return idm_cli_usage("token exchange", "%s needs a value", a);
    *slot = v;
  }
  if (!config)
    return idm_cli_usage("token exchange", "--config FILE is required");
  if (!doc_arg)
    return idm_cli_usage("token exchange", "--subject-token is required");
  if (!aud)
    return idm_cli_usage("token exchange", "--audience is required");
  uint8_t ipb[16] = {0};
  uint8_t fam = 0;
  if (ip && !(fam = idm_ip_parse(ip, strlen(ip), ipb)))
    return idm_cli_usage("token exchange", "--source-ip '%s' is not an IPv4 or IPv6 address", ip);

  char *doc = NULL;
  size_t doc_len = 0;
  if (idm_cli_read_arg(doc_arg, IDM_NET_BODY_MAX_BYTES, &doc, &doc_len) != 0)
    return IDM_EXIT_FAIL;
  idm_why_t why = {{0}};
  idm_err_t err = IDM_OK;
  idm_snapshot_t *snap = idm_snapshot_load(config, NULL, &err, &why);
  if (!snap) {
    free(doc);
    return idm_cli_err("%s", idm_why_str(&why, err));
  }
  snap->gen = 1;
  static idm_exchange_ctx_t x; /* large: keep it off the stack */
  err = idm_exchange_ctx_init(&x, 0, snap->server->node_id, 16, NULL, NULL, &why);
  if (err) {
    idm_snapshot_free(snap);
    free(doc);
    return idm_cli_err("%s", idm_why_str(&why, err));
  }
  idm_exchange_ctx_set_snapshot(&x, snap);
  idm_batch_t *batch = NULL;
  const idm_key_t *root = idm_keyring_signer(snap->keys, IDM_KEY_EDDSA);
  idm_batch_opts_t bo = {.key = root, .items_max = 4};
  if (!root || idm_batch_new(&batch, &bo, &why) != IDM_OK) {
    idm_exchange_ctx_cleanup(&x);
    idm_snapshot_free(snap);
    free(doc);
    return idm_cli_err("%s: %s", snap->server->keys_dir,
                       root ? why.text : "no active EdDSA key (batches are signed with Ed25519)");
  }
  x.batch = batch;
  idm_exchange_req_t req;
  memset(&req, 0, sizeof req);
  static const char gt[] = "urn:ietf:params:oauth:grant-type:token-exchange";
  req.grant_type = (idm_view_t){gt, sizeof gt - 1};
  req.subject_token = (idm_view_t){doc, (uint32_t)doc_len};
  req.subject_token_type = (idm_view_t){type, (uint32_t)strlen(type)};
  req.audience = (idm_view_t){aud, (uint32_t)strlen(aud)};
  if (scope)
    req.scope = (idm_view_t){scope, (uint32_t)strlen(scope)};
  memcpy(req.ctx.source_ip, ipb, 16);
  req.ctx.source_family = fam;
  idm_err_t done = IDM_ERR_BATCH_EMPTY;
  idm_exchange_run(&x, &req, &x.res, &done);
  if (idm_batch_pending(batch)) {
    idm_batch_seal_sync(batch, on_done, NULL, NULL, &why);
    if (x.res.pending && done != IDM_OK) {
      x.res.status = 500;
      x.res.error = "server_error";
      snprintf(x.res.description, sizeof x.res.description, "minting failed: %s",
               idm_why_str(&why, done));
    }
  }
  static char out[IDM_NET_RESP_BODY_MAX_BYTES];
  size_t len = 0;
  int rc = IDM_EXIT_OK;
  if (idm_exchange_response_json(&x.res, out, sizeof out, &len) == IDM_OK)
    printf("%.*s\n", (int)len, out);
  if (x.res.status != 200) {
    idm_cli_err("token exchange refused (%d %s): %s", x.res.status,
                x.res.error ? x.res.error : "error", x.res.description);
    rc = IDM_EXIT_FAIL;
  }
  idm_batch_free(batch);
  idm_exchange_ctx_cleanup(&x);
  idm_snapshot_free(snap);
  free(doc);
  return rc;
}
