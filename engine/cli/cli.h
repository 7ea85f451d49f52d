/* The idmint command line: one entry point per subcommand, and the helpers they share.
 *
 * Conventions (DESIGN.md "Command line"): every command has --help (usage on stdout,
 * exit 0); errors go to stderr as one line that names the file, field or flag at fault,
 * prefixed "idmint: "; exit 0 on success, 1 on a refusal or failure, 2 on a usage error. */
#ifndef IDM_CLI_CLI_H
#define IDM_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { IDM_EXIT_OK = 0, IDM_EXIT_FAIL = 1, IDM_EXIT_USAGE = 2 };

/* Subcommands. argv[0] is the subcommand's own name ("serve", "keys", ...). */
int idm_cmd_serve(int argc, char **argv);       /* cmd_serve.c */
int idm_cmd_keys(int argc, char **argv);        /* cmd_keys.c: keys new|list|rotate */
int idm_cmd_jwks(int argc, char **argv);        /* cmd_keys.c */
int idm_cmd_token(int argc, char **argv);       /* cmd_token.c: token mint|verify|inspect|exchange */
int idm_cmd_attest(int argc, char **argv);      /* cmd_attest.c */
int idm_cmd_join_token(int argc, char **argv);  /* cmd_attest.c: join-token new */
int idm_cmd_policy(int argc, char **argv);      /* cmd_policy.c: policy check|explain */
int idm_cmd_audit(int argc, char **argv);       /* cmd_audit.c: audit verify */

/* token exchange lives with the server (same path as POST /v1/token). */
int idm_cmd_token_exchange(int argc, char **argv); /* cmd_exchange.c */

/* Prints "idmint: " + message + "\n" to stderr. Returns IDM_EXIT_FAIL. */
int idm_cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, for usage errors; adds "(see idmint CMD --help)". Returns IDM_EXIT_USAGE. */
int idm_cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True if argv holds -h or --help. */
bool idm_cli_wants_help(int argc, char **argv);

/* Reads a DOC_OR_@FILE argument: "@path" reads the file (at most max_bytes), "-" reads
 * stdin, anything else is the document itself. Trailing ASCII whitespace is trimmed.
 * *out is malloc'd and NUL-terminated. Returns 0, or prints the reason and returns 1. */
int idm_cli_read_arg(const char *arg, size_t max_bytes, char **out, size_t *out_len);

/* Parses a duration "30s", "5m", "1h", "2d" or plain seconds into seconds; -1 if invalid. */
long long idm_cli_parse_duration(const char *s);

#ifdef __cplusplus
}
#endif
#endif
