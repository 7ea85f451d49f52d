/* idmint serve --config FILE: run the server in the foreground (engine/net/server.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/server.h"

static void usage(FILE *f) {
  fputs("usage: idmint serve --config FILE [--threads N] [--header-timeout MS]\n"
        "                    [--idle-timeout MS] [--single-shot]\n\n"
        "Runs the token-exchange server in the foreground: HTTP/1.1 and HTTP/2 cleartext\n"
        "(prior knowledge) on every listen address of the config's server block.\n"
        "Logs are JSON lines on stderr. SIGTERM drains in-flight requests and exits 0;\n"
        "SIGHUP reloads config, policy and keys (a broken file is refused and logged).\n\n"
        "  --config FILE        the configuration (server, trust, target, permit, forbid)\n"
        "  --threads N          worker threads (default: server.threads, 0 = one per core)\n"
        "  --header-timeout MS  a request must arrive within MS of its first byte (10000)\n"
        "  --idle-timeout MS    idle connections are closed after MS (60000)\n"
        "  --single-shot        do not use multishot accept/receive (fallback path)\n",
        f);
}

int idm_cmd_serve(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    usage(stdout);
    return IDM_EXIT_OK;
  }
  idm_server_opts_t o;
  memset(&o, 0, sizeof o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--config") && v) {
      o.config_path = v;
      i++;
    } else if (!strcmp(a, "--threads") && v) {
      char *end;
      long n = strtol(v, &end, 10);
      if (*end || n < 0 || n > 256)
        return idm_cli_usage("serve", "--threads must be 0..256");
      o.threads = (unsigned)n;
      i++;
    } else if ((!strcmp(a, "--header-timeout") || !strcmp(a, "--idle-timeout")) && v) {
      char *end;
      long long n = strtoll(v, &end, 10);
      if (*end || n < 1 || n > 86400000)
        return idm_cli_usage("serve", "%s takes milliseconds (1..86400000)", a);
      if (a[2] == 'h')
        o.header_timeout_ms = n;
      else
        o.idle_timeout_ms = n;
      i++;
    } else if (!strcmp(a, "--single-shot")) {
      o.single_shot = true;
    } else {
      return idm_cli_usage("serve", "unknown or incomplete argument '%s'", a);
    }
  }
  if (!o.config_path)
    return idm_cli_usage("serve", "--config FILE is required");
  return idm_server_run(&o);
}
