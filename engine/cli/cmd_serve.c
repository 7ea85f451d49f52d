/* Placeholder until the owning issue lands. */
#include <stdio.h>

#include "cli/cli.h"

int idm_cmd_serve(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    printf("usage: idmint serve ...\n\nNot implemented yet.\n");
    return IDM_EXIT_OK;
  }
  return idm_cli_err("serve: not implemented yet");
}
