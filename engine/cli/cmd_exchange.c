/* Placeholder until the owning issue lands. */
#include <stdio.h>

#include "cli/cli.h"

int idm_cmd_token_exchange(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    printf("usage: idmint token exchange ...\n\nNot implemented yet.\n");
    return IDM_EXIT_OK;
  }
  return idm_cli_err("token exchange: not implemented yet");
}
