/* idm_snapshot_t: everything the server reads but never writes while serving — the
 * compiled configuration, the signing keys, the attestation providers and the documents
 * derived from them (discovery, JWKS) — built in one piece at start and on SIGHUP.
 *
 * CONTRACT:
 *  - idm_snapshot_load builds a complete snapshot or nothing: a broken config, policy or
 *    key directory leaves the caller with NULL and the reason in *why (the policy
 *    compiler's diagnostics joined on one line), so a reload never half-applies.
 *  - A snapshot is immutable and shared by every thread; the server swaps the current
 *    pointer atomically and frees the old one only after every worker has moved on.
 */
#ifndef IDM_NET_SNAPSHOT_H
#define IDM_NET_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/limits.h"
#include "crypto/jose.h"
#include "crypto/keys.h"
#include "policy.h"

#ifdef __cplusplus
extern "C" {
#endif

struct idm_attest;

typedef struct idm_snapshot {
  pol_config_t *cfg;             /* owned */
  const pol_server_t *server;    /* inside cfg */
  idm_keyring_t *keys;           /* owned */
  idm_jwks_t *own_jwks;          /* owned: our published keys, for introspection */
  struct idm_verifier *own_verifier; /* owned: verifies both profiles over own_jwks */
  struct idm_attest *attest;     /* owned; NULL when built without attestation */
  const char *jwks_json;         /* inside keys */
  size_t jwks_len;
  char *discovery;               /* owned: the openid-configuration document */
  size_t discovery_len;
  const char *target_names[IDM_NET_METRIC_TARGETS_MAX]; /* inside cfg, for metrics */
  size_t target_count;
  uint64_t gen;                  /* 1 for the first load, +1 per reload */
} idm_snapshot_t;

idm_snapshot_t *idm_snapshot_load(const char *config_path, const idm_clock_t *clk,
                                  idm_err_t *err, idm_why_t *why);
void idm_snapshot_free(idm_snapshot_t *s); /* NULL is a no-op */

/* The discovery document for an issuer URL (also used by tests). Allocates. */
char *idm_discovery_json(const char *issuer, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
