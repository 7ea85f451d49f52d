/* `idmint attest` and `idmint join-token new`: the attestation providers from the command
 * line, with exactly the checks the server runs (same idm_attest_verify, no cache). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "cli/cli.h"
#include "core/limits.h"

static const char attest_usage[] =
    "usage: idmint attest --config FILE [--trust NAME] [--type jwt|aws-iid|join-token]\n"
    "                     DOC_OR_@FILE\n\n"
    "Verifies one identity document against a trust block of FILE and prints the client\n"
    "attributes it establishes as JSON (exit 0), or the reason it was refused (exit 1).\n"
    "DOC_OR_@FILE is the document itself, @path to read it from a file, or - for stdin.\n"
    "Without --trust, a JWT chooses the trust block by its iss; an AWS instance identity\n"
    "({\"document\":...,\"signature\":...}) or a join token uses the only block of its kind.\n"
    "--type defaults to the kind of the named trust block, else to the document's shape.\n"
    "Note: verifying a join token here uses it up, exactly as the server would.\n";

static const char join_usage[] =
    "usage: idmint join-token new --config FILE [--trust NAME] --name NAME --ttl DURATION\n\n"
    "Creates a one-time bootstrap token for a device with no platform identity and prints\n"
    "it. The store of the join-token trust block keeps only its SHA-256; the token is\n"
    "accepted once, before its ttl (e.g. 1h, at most 7d) runs out.\n";

static int load_config(const char *cmd, const char *path, pol_config_t **out) {
  pol_diag_t *diag = calloc(1, sizeof *diag);
  if (!diag)
    return idm_cli_err("%s: out of memory", cmd);
  *out = pol_config_load(path, diag);
  if (!*out) {
    for (uint32_t i = 0; i < diag->count && i < POL_DIAG_MAX; i++)
      fprintf(stderr, "%s\n", diag->text[i]);
    free(diag);
    return idm_cli_err("%s: %s: configuration has errors", cmd, path);
  }
  free(diag);
  return IDM_EXIT_OK;
}

int idm_cmd_attest(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    fputs(attest_usage, stdout);
    return IDM_EXIT_OK;
  }
  const char *config = NULL, *trust = NULL, *type_s = NULL, *doc_arg = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (!strcmp(argv[i], "--trust") && i + 1 < argc)
      trust = argv[++i];
    else if (!strcmp(argv[i], "--type") && i + 1 < argc)
      type_s = argv[++i];
    else if (argv[i][0] == '-' && argv[i][1] == '-')
      return idm_cli_usage("attest", "unknown or incomplete flag %s", argv[i]);
    else if (!doc_arg)
      doc_arg = argv[i];
    else
      return idm_cli_usage("attest", "one document only (extra argument %s)", argv[i]);
  }
  if (!config)
    return idm_cli_usage("attest", "--config FILE is required");
  if (!doc_arg)
    return idm_cli_usage("attest", "the document (DOC_OR_@FILE) is missing");
  int type = -1;
  if (type_s) {
    static const char *const names[] = {"jwt", "aws-iid", "join-token"};
    for (int i = 0; i < 3; i++)
      if (!strcmp(type_s, names[i]))
        type = i;
    if (type < 0)
      return idm_cli_usage("attest", "--type must be jwt, aws-iid or join-token, not %s", type_s);
  }

  pol_config_t *cfg = NULL;
  int rc = load_config("attest", config, &cfg);
  if (rc)
    return rc;
  char *doc = NULL;
  size_t len = 0;
  if (idm_cli_read_arg(doc_arg, IDM_JWT_MAX_BYTES + 1, &doc, &len) != 0) {
    pol_config_free(cfg);
    return IDM_EXIT_FAIL;
  }
  if (type < 0 && trust) {
    const pol_trust_t *t = pol_config_trust_find(cfg, trust, strlen(trust));
    if (!t) {
      free(doc);
      pol_config_free(cfg);
      return idm_cli_err("attest: --trust %s: %s has no such trust block", trust, config);
    }
    type = t->kind == POL_KIND_AWS_IID      ? IDM_DOC_AWS_IID
           : t->kind == POL_KIND_JOIN_TOKEN ? IDM_DOC_JOIN_TOKEN
                                            : IDM_DOC_JWT;
  }
  if (type < 0)
    type = len && doc[0] == '{'                  ? IDM_DOC_AWS_IID
           : len > 7 && !strncmp(doc, "idmjt1.", 7) ? IDM_DOC_JOIN_TOKEN
                                                    : IDM_DOC_JWT;

  idm_why_t why = {{0}};
  idm_attest_t *a = idm_attest_new(cfg, &why);
  if (!a) {
    free(doc);
    pol_config_free(cfg);
    return idm_cli_err("attest: %s: %s", config, why.text);
  }
  idm_arena_t arena;
  if (idm_arena_init(&arena, 1 << 20) != IDM_OK) {
    idm_attest_free(a);
    free(doc);
    pol_config_free(cfg);
    return idm_cli_err("attest: out of memory");
  }
  idm_identity_t id;
  idm_err_t e = idm_attest_verify(a, NULL, &arena, (idm_doc_type_t)type, trust, doc, len, NULL,
                                  &id, &why);
  if (e) {
    rc = idm_cli_err("attest: refused (%s): %s", idm_err_name(e), idm_why_str(&why, e));
  } else {
    static char out[64 * 1024];
    size_t ol = 0;
    if (idm_identity_to_json(&id, out, sizeof out, &ol) != IDM_OK)
      rc = idm_cli_err("attest: attributes do not fit the output buffer");
    else
      printf("%s\n", out);
  }
  idm_arena_cleanup(&arena);
  idm_attest_free(a);
  free(doc);
  pol_config_free(cfg);
  return rc;
}

int idm_cmd_join_token(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    fputs(join_usage, stdout);
    return IDM_EXIT_OK;
  }
  if (argc < 2 || strcmp(argv[1], "new") != 0)
    return idm_cli_usage("join-token", "expected the subcommand 'new'");
  const char *config = NULL, *trust = NULL, *name = NULL, *ttl_s = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--config") && i + 1 < argc)
      config = argv[++i];
    else if (!strcmp(argv[i], "--trust") && i + 1 < argc)
      trust = argv[++i];
    else if (!strcmp(argv[i], "--name") && i + 1 < argc)
      name = argv[++i];
    else if (!strcmp(argv[i], "--ttl") && i + 1 < argc)
      ttl_s = argv[++i];
    else
      return idm_cli_usage("join-token", "unknown or incomplete argument %s", argv[i]);
  }
  if (!config || !name || !ttl_s)
    return idm_cli_usage("join-token", "--config, --name and --ttl are required");
  long long ttl = idm_cli_parse_duration(ttl_s);
  if (ttl <= 0)
    return idm_cli_usage("join-token", "--ttl %s is not a duration like 1h", ttl_s);
  pol_config_t *cfg = NULL;
  int rc = load_config("join-token", config, &cfg);
  if (rc)
    return rc;
  const pol_trust_t *t = NULL;
  for (uint32_t i = 0; i < pol_config_trust_count(cfg); i++) {
    const pol_trust_t *c = pol_config_trust(cfg, i);
    if (trust ? !strcmp(c->name, trust) : c->kind == POL_KIND_JOIN_TOKEN) {
      if (t && !trust) {
        pol_config_free(cfg);
        return idm_cli_err("join-token: %s has several join-token trust blocks; name one with "
                           "--trust",
                           config);
      }
      t = c;
    }
  }
  if (!t || t->kind != POL_KIND_JOIN_TOKEN) {
    pol_config_free(cfg);
    return idm_cli_err("join-token: %s: no join-token trust block%s%s", config,
                       trust ? " named " : "", trust ? trust : "");
  }
  char tok[IDM_JOIN_TOKEN_MAX];
  idm_why_t why = {{0}};
  idm_err_t e = idm_join_token_new(t, name, ttl, NULL, tok, sizeof tok, &why);
  if (e)
    rc = idm_cli_err("join-token: %s", idm_why_str(&why, e));
  else
    printf("%s\n", tok);
  pol_config_free(cfg);
  return rc;
}
