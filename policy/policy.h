/* policy: the idmint configuration language (server, trust, target, permit, forbid
 * blocks), its compiler to a decision structure, and the evaluator.
 *
 * CONTRACT (consumed by the engine; extend freely, change with care):
 *  - pol_config_load/parse read a whole configuration file, report every error found in
 *    one pass as "file:line:col: message" plus the source line and a caret, and on success
 *    return an immutable compiled object shared read-only by all threads.
 *  - Relative paths in the file (jwks, keys, audit, certificate, store, ...) are resolved
 *    against the file's directory before they reach the engine.
 *  - pol_eval never allocates, never locks and never fails: it always yields a decision.
 *  - This component includes no engine header: the engine depends on policy, not the
 *    reverse. Its only dependency is xxHash.
 */
#ifndef IDM_POLICY_H
#define IDM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- values -------------------------------------------------------------------- */

/* A borrowed string view. ptr == NULL means "absent" (an absent attribute makes every
 * comparison on it false). */
typedef struct pol_str {
  const char *ptr;
  uint32_t len;
} pol_str_t;

typedef struct pol_kv {
  pol_str_t name;
  pol_str_t value; /* strings; numeric comparisons parse the value as a decimal number */
} pol_kv_t;

/* ---- client attributes (DESIGN.md "Client attributes") --------------------------- */
#define POL_ATTRS(X)                                                                       \
  X(TRUST, "trust") X(KIND, "kind") X(SUBJECT, "subject")                                  \
  X(NAMESPACE, "namespace") X(SERVICE_ACCOUNT, "service_account") X(POD, "pod")            \
  X(NODE, "node")                                                                          \
  X(REPOSITORY, "repository") X(REPOSITORY_OWNER, "repository_owner") X(REF, "ref")        \
  X(REF_TYPE, "ref_type") X(WORKFLOW, "workflow") X(ENVIRONMENT, "environment")            \
  X(ACTOR, "actor") X(EVENT_NAME, "event_name")                                            \
  X(PROJECT_PATH, "project_path") X(NAMESPACE_PATH, "namespace_path")                      \
  X(SPIFFE_ID, "spiffe_id") X(TRUST_DOMAIN, "trust_domain")                                \
  X(ACCOUNT, "account") X(REGION, "region") X(INSTANCE_ID, "instance_id")                  \
  X(IMAGE_ID, "image_id") X(INSTANCE_TYPE, "instance_type")                                \
  X(TOKEN_NAME, "token_name")                                                              \
  X(UID, "uid") X(GID, "gid") X(EXE, "exe") X(EXE_SHA256, "exe_sha256")

typedef enum pol_attr_id {
#define X(id, name) POL_A_##id,
  POL_ATTRS(X)
#undef X
  POL_A__COUNT
} pol_attr_id_t;

/* The attribute's policy-language name ("service_account"), or NULL if out of range. */
const char *pol_attr_name(pol_attr_id_t id);

/* What attestation produced for one client. Views are borrowed from the caller (the
 * attestation cache entry or a request arena) for the duration of the evaluation. */
typedef struct pol_client {
  pol_str_t attr[POL_A__COUNT];
  const pol_kv_t *claims;  /* oidc: top-level string claims, matched by claims.NAME */
  uint32_t claims_count;
} pol_client_t;

/* ---- configuration ------------------------------------------------------------- */

typedef enum pol_kind {
  POL_KIND_KUBERNETES, POL_KIND_GITHUB, POL_KIND_GITLAB, POL_KIND_SPIFFE, POL_KIND_OIDC,
  POL_KIND_AWS_IID, POL_KIND_JOIN_TOKEN, POL_KIND_UNIX, POL_KIND__COUNT
} pol_kind_t;
const char *pol_kind_name(pol_kind_t k); /* "kubernetes", ..., "aws-iid", "join-token" */

typedef enum pol_format { POL_FORMAT_JWT, POL_FORMAT_BATCH } pol_format_t;
typedef enum pol_alg { POL_ALG_EDDSA, POL_ALG_ES256 } pol_alg_t;

typedef struct pol_cidr {
  uint8_t addr[16];  /* IPv4 in the first 4 bytes */
  uint8_t family;    /* 4 or 6 */
  uint8_t prefix;    /* bits */
} pol_cidr_t;

/* The server block. Every field has a default when the key is absent. */
typedef struct pol_server {
  const char *const *listen;   /* "host:port" strings; default {"127.0.0.1:8080"} */
  uint32_t listen_count;
  const char *issuer;          /* default "http://" + first listen */
  const char *keys_dir;        /* resolved path; default "<config dir>/keys" */
  const char *audit_path;      /* resolved path; default "<config dir>/audit.log" */
  uint32_t threads;            /* 0: one per core */
  const pol_cidr_t *trusted_proxies;
  uint32_t trusted_proxy_count;
  const char *fsync;           /* "none" | "batch" | a duration like "100ms"/"1s"; default "batch" */
  uint32_t batch_max;          /* credentials per batch; default 1024 */
  uint32_t max_connections;    /* per thread; default 4096 */
  const char *unix_socket;     /* resolved path of the unix-attestation socket, or NULL */
  const char *node_id;         /* cluster-unique node name for jti; default: hostname */
  uint32_t audit_preallocate;  /* MiB of the audit log kept zeroed ahead; default 0 (off) */
} pol_server_t;

/* A trust block. Keys a kind does not use are compile errors. */
typedef struct pol_trust {
  const char *name;
  pol_kind_t kind;
  uint32_t index;              /* position among trust blocks */
  const char *issuer;          /* required for JWT kinds (github/gitlab have defaults) */
  const char *jwks;            /* resolved path of a JWK Set file (JWT kinds; spiffe bundle) */
  const char *const *audience; /* accepted aud values (JWT kinds) */
  uint32_t audience_count;
  const char *const *algorithms; /* allowed JWS algs; NULL: every alg the keys allow */
  uint32_t algorithm_count;
  int64_t leeway_s;            /* clock skew allowed on exp/nbf/iat; default 30 */
  int64_t max_lifetime_s;      /* longest exp - iat accepted; default 86400 (0: unlimited) */
  const char *trust_domain;    /* spiffe: required; SPIFFE IDs must be in it */
  const char *certificate;     /* aws-iid: resolved path of the AWS public certificate (PEM) */
  int64_t max_age_s;           /* aws-iid: oldest pendingTime accepted; default 600 */
  const char *store;           /* join-token: resolved path of the token store file */
} pol_trust_t;

typedef struct pol_target {
  const char *name;
  uint32_t index;              /* position among target blocks */
  const char *audience;        /* the credential's aud */
  pol_format_t format;         /* default jwt */
  pol_alg_t alg;               /* default EdDSA */
  int64_t ttl_s;               /* default 300 */
} pol_target_t;

typedef struct pol_config pol_config_t;

/* Diagnostics: every error of a failed load, formatted for people. */
#define POL_DIAG_MAX 32
typedef struct pol_diag {
  uint32_t count;                   /* errors found (may exceed POL_DIAG_MAX) */
  char text[POL_DIAG_MAX][512];     /* "file:line:col: message\n<source line>\n<caret>" */
} pol_diag_t;

/* Reads and compiles path. NULL on failure with every error in *diag (or, for an I/O
 * error, one entry "path: reason"). The result is freed with pol_config_free. */
pol_config_t *pol_config_load(const char *path, pol_diag_t *diag);
/* Same from memory; filename is used in messages and as the base for relative paths. */
pol_config_t *pol_config_parse(const char *src, size_t len, const char *filename,
                               pol_diag_t *diag);
void pol_config_free(pol_config_t *cfg); /* NULL is a no-op */

const pol_server_t *pol_config_server(const pol_config_t *cfg);
uint32_t pol_config_trust_count(const pol_config_t *cfg);
const pol_trust_t *pol_config_trust(const pol_config_t *cfg, uint32_t i);
const pol_trust_t *pol_config_trust_find(const pol_config_t *cfg, const char *name, size_t len);
uint32_t pol_config_target_count(const pol_config_t *cfg);
const pol_target_t *pol_config_target(const pol_config_t *cfg, uint32_t i);
/* By target name or by its audience URI (DESIGN.md: "a target's name or its audience"). */
const pol_target_t *pol_config_target_find(const pol_config_t *cfg, const char *s, size_t len);
uint32_t pol_config_rule_count(const pol_config_t *cfg);
const char *pol_config_rule_name(const pol_config_t *cfg, uint32_t rule);
/* A short, stable identifier of the compiled policy (hash of the source), for the idm.policy
 * claim and the audit log. */
const char *pol_config_policy_id(const pol_config_t *cfg);

/* ---- evaluation ---------------------------------------------------------------- */

typedef struct pol_context {
  int64_t now_s;               /* UTC seconds; time and day derive from it */
  uint8_t source_ip[16];       /* IPv4 in the first 4 bytes */
  uint8_t source_family;       /* 0: unknown, 4 or 6 */
  const pol_kv_t *posture;     /* from a trusted proxy's X-Idmint-Posture */
  uint32_t posture_count;
} pol_context_t;

typedef struct pol_ask {
  pol_str_t scope;             /* requested scopes, space-separated; ptr NULL or len 0: none */
  int64_t ttl_s;               /* requested ttl; 0: none */
} pol_ask_t;

#define POL_DECISION_RULES_MAX 16  /* deciding rules named in a decision */
#define POL_SCOPE_MAX 1024         /* bytes of granted scope */

typedef enum pol_outcome {
  POL_DENY_DEFAULT,            /* no permit matched */
  POL_DENY_FORBID,             /* a forbid matched; rules[] names the forbids */
  POL_DENY_SCOPE,              /* a requested scope is granted by no matching permit */
  POL_ALLOW,
} pol_outcome_t;

typedef struct pol_decision {
  pol_outcome_t outcome;
  bool allow;                  /* outcome == POL_ALLOW */
  uint32_t rules[POL_DECISION_RULES_MAX]; /* indices (pol_config_rule_name) */
  uint32_t rule_count;
  char scope[POL_SCOPE_MAX];   /* granted scope, space-separated, NUL-terminated */
  uint32_t scope_len;
  int64_t ttl_s;               /* min(target ttl, matching permits' ttl, requested ttl) */
} pol_decision_t;

/* Decides per DESIGN.md's semantics. No allocation, no locks, thread-safe on a shared cfg. */
void pol_eval(const pol_config_t *cfg, const pol_client_t *client, uint32_t target_index,
              const pol_context_t *ctx, const pol_ask_t *ask, pol_decision_t *out);

/* ---- explaining (slow path: CLI, logs; may take time linear in the rules) ----------- */
typedef struct pol_explain {
  uint32_t rule;      /* the closest permit: fewest failing top-level conditions for this
                         target, then most that held, then the first written; UINT32_MAX
                         if no permit failed */
  uint32_t held;      /* its top-level conditions that held (its target list counts as one) */
  uint32_t total;     /* all of its top-level conditions */
  char failed[512];   /* the first that did not hold, in the language's syntax */
} pol_explain_t;

/* For a default deny: which permit came closest and why it did not match. */
void pol_explain_closest(const pol_config_t *cfg, const pol_client_t *client,
                         uint32_t target_index, const pol_context_t *ctx, pol_explain_t *out);
/* Writes rule as one line of the language ("permit \"x\" { client ...; target ...; }"),
 * NUL-terminated and cut at cap. Returns the length written. */
size_t pol_rule_format(const pol_config_t *cfg, uint32_t rule, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
