/* idmint keys new|list|rotate and idmint jwks: the key directory from the command line.
 * Thin wrappers over crypto/keys.h; every refusal names the file or flag at fault. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/limits.h"
#include "crypto/keys.h"

static const char keys_usage[] =
    "usage: idmint keys new    --dir DIR [--alg EdDSA|ES256]\n"
    "       idmint keys list   --dir DIR\n"
    "       idmint keys rotate --dir DIR [--alg EdDSA|ES256] [--max-token-ttl 24h]\n"
    "\n"
    "Manage the signing keys in DIR (created 0700 if missing; key files are 0600, one\n"
    "<kid>.json per key, kid = RFC 7638 thumbprint; see docs/TOKENS.md).\n"
    "\n"
    "  new     create a key: ACTIVE if DIR has no active key of that alg, else NEXT\n"
    "          (published in the JWKS, not yet signing). Default alg: EdDSA.\n"
    "  list    print the published keys: kid, alg, state and lifecycle times (UTC).\n"
    "  rotate  per alg (or only --alg): write a new NEXT key; if there was a NEXT, it\n"
    "          becomes ACTIVE and the old ACTIVE becomes RETIRED, published for\n"
    "          --max-token-ttl (default 24h, must cover the longest token ttl) plus 5m\n"
    "          leeway; retired keys past that window are deleted. Servers pick the\n"
    "          change up on SIGHUP. The first rotate only pre-publishes the NEXT key.\n";

static const char jwks_usage[] =
    "usage: idmint jwks --dir DIR\n"
    "\n"
    "Print the public JWK Set of the key directory DIR (NEXT, ACTIVE and still-published\n"
    "RETIRED keys), exactly as the server publishes it at /.well-known/jwks.json.\n";

static void fmt_time(char *out, size_t cap, int64_t s) {
  if (!s) {
    snprintf(out, cap, "-");
    return;
  }
  time_t t = (time_t)s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int list_keys(const char *dir) {
  idm_why_t why = {{0}};
  idm_keyring_t *kr = idm_keyring_load(dir, NULL, &why);
  if (!kr)
    return idm_cli_err("%s", why.text);
  printf("%-43s  %-5s  %-7s  %-20s  %-20s  %-20s\n", "KID", "ALG", "STATE", "CREATED", "ACTIVATED",
         "PUBLISHED UNTIL");
  for (size_t i = 0; i < idm_keyring_count(kr); i++) {
    const idm_key_t *k = idm_keyring_at(kr, i);
    char c[32], a[32], u[32];
    fmt_time(c, sizeof c, idm_key_created_s(k));
    fmt_time(a, sizeof a, idm_key_activated_s(k));
    fmt_time(u, sizeof u, idm_key_publish_until_s(k));
    const char *st = idm_key_state_name(idm_key_state(k));
    if (idm_key_state(k) == IDM_KEY_ACTIVE && idm_keyring_signer(kr, idm_key_alg(k)) != k)
      st = "active*"; /* an interrupted rotation: published, not signing */
    printf("%-43s  %-5s  %-7s  %-20s  %-20s  %-20s\n", idm_key_kid(k),
           idm_key_alg_name(idm_key_alg(k)), st, c, a, u);
  }
  idm_keyring_free(kr);
  return IDM_EXIT_OK;
}

int idm_cmd_keys(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    fputs(keys_usage, stdout);
    return IDM_EXIT_OK;
  }
  if (argc < 2)
    return idm_cli_usage("keys", "keys: missing subcommand (new, list or rotate)");
  const char *sub = argv[1], *dir = NULL, *alg_name = NULL, *ttl_s = NULL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = !strcmp(a, "--dir") ? &dir
                        : !strcmp(a, "--alg") ? &alg_name
                        : !strcmp(a, "--max-token-ttl") ? &ttl_s
                                                          : NULL;
    if (!slot)
      return idm_cli_usage("keys", "keys %s: unknown argument '%s'", sub, a);
    if (i + 1 >= argc)
      return idm_cli_usage("keys", "keys %s: %s needs a value", sub, a);
    *slot = argv[++i];
  }
  if (!dir)
    return idm_cli_usage("keys", "keys %s: --dir DIR is required", sub);
  int alg = -1;
  if (alg_name && (alg = idm_key_alg_from_name(alg_name)) < 0)
    return idm_cli_usage("keys", "keys %s: --alg must be EdDSA or ES256, not '%s'", sub, alg_name);
  idm_why_t why = {{0}};
  if (!strcmp(sub, "new")) {
    if (ttl_s)
      return idm_cli_usage("keys", "keys new: --max-token-ttl applies to rotate only");
    char kid[IDM_KID_LEN + 1];
    idm_err_t e = idm_keys_new(dir, alg < 0 ? IDM_KEY_EDDSA : (idm_key_alg_t)alg, NULL, kid, &why);
    if (e)
      return idm_cli_err("%s", idm_why_str(&why, e));
    printf("%s\n", kid);
    return IDM_EXIT_OK;
  }
  if (!strcmp(sub, "list")) {
    if (alg_name || ttl_s)
      return idm_cli_usage("keys", "keys list: only --dir is accepted");
    return list_keys(dir);
  }
  if (!strcmp(sub, "rotate")) {
    long long ttl = IDM_KEYS_MAX_TOKEN_TTL_S;
    if (ttl_s && (ttl = idm_cli_parse_duration(ttl_s)) <= 0)
      return idm_cli_usage("keys", "keys rotate: --max-token-ttl '%s' is not a duration like 24h",
                           ttl_s);
    idm_err_t e = idm_keys_rotate_alg(dir, NULL, ttl, alg, &why);
    if (e)
      return idm_cli_err("%s", idm_why_str(&why, e));
    return list_keys(dir);
  }
  return idm_cli_usage("keys", "keys: unknown subcommand '%s' (new, list or rotate)", sub);
}

int idm_cmd_jwks(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    fputs(jwks_usage, stdout);
    return IDM_EXIT_OK;
  }
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else
      return idm_cli_usage("jwks", "jwks: unexpected argument '%s'", argv[i]);
  }
  if (!dir)
    return idm_cli_usage("jwks", "jwks: --dir DIR is required");
  idm_why_t why = {{0}};
  idm_keyring_t *kr = idm_keyring_load(dir, NULL, &why);
  if (!kr)
    return idm_cli_err("%s", why.text);
  size_t len;
  const char *js = idm_keyring_jwks_json(kr, &len);
  fwrite(js, 1, len, stdout);
  fputc('\n', stdout);
  idm_keyring_free(kr);
  return IDM_EXIT_OK;
}
