/* idmint: one binary, one table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/json.h"

typedef struct cmd {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} cmd_t;

static const cmd_t cmds[] = {
    {"serve", idm_cmd_serve, "run the server (serve --config FILE)"},
    {"keys", idm_cmd_keys, "manage signing keys (keys new|list|rotate --dir DIR)"},
    {"jwks", idm_cmd_jwks, "print the public JWK Set (jwks --dir DIR)"},
    {"token", idm_cmd_token, "mint, verify, inspect or exchange tokens"},
    {"attest", idm_cmd_attest, "verify one identity document and print its attributes"},
    {"join-token", idm_cmd_join_token, "create a one-time bootstrap token"},
    {"policy", idm_cmd_policy, "check a policy file or explain a decision"},
    {"audit", idm_cmd_audit, "verify the audit transparency log"},
};

static void usage(FILE *f) {
  fputs("usage: idmint COMMAND [ARGS]\n\n"
        "idmint verifies a workload's platform identity document, decides by policy whether\n"
        "it may reach a target, and mints a short-lived credential for that target.\n\n"
        "commands:\n",
        f);
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
  fputs("\nRun 'idmint COMMAND --help' for a command's options.\n", f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return IDM_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return IDM_EXIT_OK;
  }
  idm_json_init();
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(argv[1], cmds[i].name))
      return cmds[i].run(argc - 1, argv + 1);
  fprintf(stderr, "idmint: unknown command '%s' (see idmint --help)\n", argv[1]);
  return IDM_EXIT_USAGE;
}
