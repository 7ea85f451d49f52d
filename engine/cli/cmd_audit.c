/* idmint audit verify LOG --jwks FILE [--tokens FILE]: checks the audit transparency log
 * line by line (chain, sequence, signature, every entry; batch/audit.h) and names the
 * first line that is wrong. With --tokens, also proves that each credential listed (one
 * token per line, either profile) is recorded in a verified line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch/audit.h"
#include "batch/merkle.h"
#include "cli/cli.h"
#include "core/limits.h"
#include "crypto/jose.h"

static const char usage_text[] =
    "usage: idmint audit verify LOG --jwks FILE [--tokens FILE]\n\n"
    "Checks the audit transparency log: every line's chain hash, batch sequence and\n"
    "Ed25519 signature over its Merkle root, and every entry (each credential's fields\n"
    "must rebuild its recorded leaf, and the leaves the signed root). Prints a summary\n"
    "and exits 0, or names the first wrong line and exits 1.\n\n"
    "  --jwks FILE    the issuer's JWK Set (idmint jwks --dir DIR)\n"
    "  --tokens FILE  credentials a client received, one per line: each must be in the log\n";

/* Reads the tokens file and fills leaf hashes (SHA-256(0x00 || header.claims)). */
static int load_tokens(const char *path, idm_hash_t **out, size_t *n_out) {
  FILE *f = fopen(path, "re");
  if (!f)
    return idm_cli_err("--tokens %s: cannot open", path);
  size_t cap = 0, n = 0;
  idm_hash_t *v = NULL;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  int rc = 0;
  while ((len = getline(&line, &lcap, f)) > 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
      len--;
    if (len == 0)
      continue;
    char *d1 = memchr(line, '.', (size_t)len);
    char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(line + len - d1 - 1)) : NULL;
    if (!d2) {
      rc = idm_cli_err("--tokens %s:%zu: not a compact token", path, n + 1);
      break;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      idm_hash_t *nv = realloc(v, cap * sizeof *v);
      if (!nv) {
        rc = idm_cli_err("out of memory");
        break;
      }
      v = nv;
    }
    idm_merkle_leaf(&v[n++], line, (size_t)(d2 - line));
  }
  free(line);
  fclose(f);
  if (rc) {
    free(v);
    return rc;
  }
  *out = v;
  *n_out = n;
  return 0;
}

int idm_cmd_audit(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv)) {
    fputs(usage_text, stdout);
    return IDM_EXIT_OK;
  }
  if (argc < 2 || strcmp(argv[1], "verify"))
    return idm_cli_usage("audit", "expected 'audit verify LOG --jwks FILE'");
  const char *log = NULL, *jwks_path = NULL, *tokens = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--jwks") && i + 1 < argc)
      jwks_path = argv[++i];
    else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
      tokens = argv[++i];
    else if (argv[i][0] == '-' && argv[i][1])
      return idm_cli_usage("audit", "unknown or incomplete option '%s'", argv[i]);
    else if (!log)
      log = argv[i];
    else
      return idm_cli_usage("audit", "unexpected argument '%s'", argv[i]);
  }
  if (!log)
    return idm_cli_usage("audit", "missing LOG");
  if (!jwks_path)
    return idm_cli_usage("audit", "missing --jwks FILE");
  idm_why_t why = {{0}};
  idm_jwks_t *jwks = idm_jwks_load(jwks_path, &why);
  if (!jwks)
    return idm_cli_err("--jwks %s: %s", jwks_path, why.text);
  idm_audit_verifier_t v;
  if (idm_audit_verifier_init(&v, jwks)) {
    idm_jwks_free(jwks);
    return idm_cli_err("out of memory");
  }
  idm_hash_t *want = NULL;
  bool *found = NULL;
  size_t want_n = 0;
  int rc = IDM_EXIT_OK;
  if (tokens) {
    if (load_tokens(tokens, &want, &want_n)) {
      rc = IDM_EXIT_FAIL;
      goto out;
    }
    found = calloc(want_n ? want_n : 1, sizeof *found);
    if (!found) {
      rc = idm_cli_err("out of memory");
      goto out;
    }
    idm_audit_verifier_want(&v, want, found, want_n);
  }
  uint64_t bad = 0;
  idm_err_t e = idm_audit_verify_file(&v, log, &bad, &why);
  if (e) {
    if (bad)
      rc = idm_cli_err("%s:%llu: %s", log, (unsigned long long)bad, idm_why_str(&why, e));
    else
      rc = idm_cli_err("%s", idm_why_str(&why, e));
    goto out;
  }
  size_t missing = 0;
  for (size_t i = 0; i < want_n; i++)
    missing += !found[i];
  if (missing) {
    rc = idm_cli_err("%s: %zu of %zu credentials from %s are not in the log", log, missing,
                     want_n, tokens);
    goto out;
  }
  printf("%s: OK: %llu batches, %llu entries (%llu credentials, %llu denials)", log,
         (unsigned long long)v.lines, (unsigned long long)v.entries,
         (unsigned long long)v.allows, (unsigned long long)v.denies);
  if (tokens)
    printf("; all %zu listed credentials present", want_n);
  printf("\n");
out:
  free(want);
  free(found);
  idm_audit_verifier_cleanup(&v);
  idm_jwks_free(jwks);
  return rc;
}
