/* Placeholder until the owning issue lands. */
#include <stdio.h>

#include "cli/cli.h"

int idm_cmd_keys(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    printf("usage: idmint keys ...\n\nNot implemented yet.\n");
    return IDM_EXIT_OK;
  }
  return idm_cli_err("keys: not implemented yet");
}

int idm_cmd_jwks(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    printf("usage: idmint jwks ...\n\nNot implemented yet.\n");
    return IDM_EXIT_OK;
  }
  return idm_cli_err("jwks: not implemented yet");
}
