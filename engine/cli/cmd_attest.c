/* Placeholder until the owning issue lands. */
#include <stdio.h>

#include "cli/cli.h"

int idm_cmd_attest(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    printf("usage: idmint attest ...\n\nNot implemented yet.\n");
    return IDM_EXIT_OK;
  }
  return idm_cli_err("attest: not implemented yet");
}

int idm_cmd_join_token(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    printf("usage: idmint join-token ...\n\nNot implemented yet.\n");
    return IDM_EXIT_OK;
  }
  return idm_cli_err("join-token: not implemented yet");
}
