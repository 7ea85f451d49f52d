/* Helpers shared by the subcommands. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/file.h"

int idm_cli_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("idmint: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return IDM_EXIT_FAIL;
}

int idm_cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("idmint: ", stderr);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see idmint %s --help)\n", cmd);
  va_end(ap);
  return IDM_EXIT_USAGE;
}

bool idm_cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
      return true;
  return false;
}

int idm_cli_read_arg(const char *arg, size_t max_bytes, char **out, size_t *out_len) {
  char *buf = NULL;
  size_t len = 0;
  if (arg[0] == '@') {
    idm_why_t why = {{0}};
    idm_err_t e = idm_file_read(arg + 1, max_bytes, &buf, &len, &why);
    if (e != IDM_OK)
      return idm_cli_err("%s", idm_why_str(&why, e));
  } else if (!strcmp(arg, "-")) {
    buf = malloc(max_bytes + 1);
    if (!buf)
      return idm_cli_err("out of memory");
    len = fread(buf, 1, max_bytes + 1, stdin);
    if (len > max_bytes) {
      free(buf);
      return idm_cli_err("stdin: input exceeds the %zu-byte limit", max_bytes);
    }
    buf[len] = '\0';
  } else {
    len = strlen(arg);
    if (len > max_bytes)
      return idm_cli_err("argument of %zu bytes exceeds the %zu-byte limit", len, max_bytes);
    buf = strdup(arg);
    if (!buf)
      return idm_cli_err("out of memory");
  }
  while (len && isspace((unsigned char)buf[len - 1]))
    buf[--len] = '\0';
  *out = buf;
  *out_len = len;
  return 0;
}

long long idm_cli_parse_duration(const char *s) {
  if (!s || !*s)
    return -1;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (end == s || v < 0)
    return -1;
  long long mul = 1;
  if (*end == 's')
    end++;
  else if (*end == 'm')
    mul = 60, end++;
  else if (*end == 'h')
    mul = 3600, end++;
  else if (*end == 'd')
    mul = 86400, end++;
  if (*end || v > (1LL << 40) / mul)
    return -1;
  return v * mul;
}
