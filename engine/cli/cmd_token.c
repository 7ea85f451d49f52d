/* idmint token mint|verify|inspect|exchange.
 *
 * mint is a testing aid (no policy): it signs with the directory's ACTIVE key through the
 * same idm_jwt_mint the server uses, or, when --claim adds claims, through the same key
 * and header with a claims object built here. verify dispatches on the header's alg to
 * one verifier per token profile (the profiles[] table): the jwt profile (EdDSA, ES256,
 * and every other alg, which it refuses with a precise reason) and the batch profile
 * (EdDSA-MTB1), which the batch area's verifier library provides. exchange belongs to the
 * server (cmd_exchange.c). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "idmint/verify.h"
#include "core/b64url.h"
#include "core/json.h"
#include "core/limits.h"
#include "crypto/jose.h"
#include "crypto/jwt.h"
#include "crypto/keys.h"

#define CLAIMS_MAX 64 /* --claim flags per command */

static const char token_usage[] =
    "usage: idmint token mint    --keys DIR --sub S --aud A --ttl 5m [--scope S] [--iss URL]\n"
    "                            [--alg EdDSA|ES256] [--claim NAME=VALUE ...]\n"
    "       idmint token verify  --jwks FILE [--audience A] [--issuer I] [--leeway 30s]\n"
    "                            TOKEN_OR_@FILE\n"
    "       idmint token inspect TOKEN_OR_@FILE\n"
    "       idmint token exchange --config FILE --subject-token DOC_OR_@FILE --audience T ...\n"
    "\n"
    "  mint     sign a token with the ACTIVE key of DIR, without policy (a testing aid).\n"
    "           --alg picks the key (default EdDSA, else the directory's ES256 key).\n"
    "           --iss defaults to urn:idmint:cli. Each --claim NAME=VALUE adds (or\n"
    "           overrides) a claim; VALUE is inserted as JSON when it parses as JSON\n"
    "           (an object, array, number, true, false, null or a quoted string), else\n"
    "           as a string: --claim uid=1000 is a number, --claim 'uid=\"1000\"' and\n"
    "           --claim ns=payments are strings. Prints the token.\n"
    "  verify   check a token of either profile (jwt: EdDSA/ES256; batch: EdDSA-MTB1)\n"
    "           against the JWK Set in FILE: structure, algorithm, signature, iss and aud\n"
    "           when given, exp/nbf with --leeway (default 30s, at most 5m). Exit 0 and\n"
    "           print the claims JSON, or exit 1 with the reason.\n"
    "  inspect  decode the header and claims WITHOUT verifying anything.\n"
    "  exchange the token-exchange path of POST /v1/token, offline (idmint token exchange\n"
    "           --help).\n"
    "\n"
    "TOKEN_OR_@FILE is the token itself, @path to read it from a file, or - for stdin.\n";

/* ---- mint ------------------------------------------------------------------------ */

static json_t *claim_value(const char *v) {
  json_t *j = json_loads(v, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
  return j ? j : json_string(v);
}

static int mint_custom(const idm_key_t *k, const idm_claims_t *c, char **extra, int n_extra) {
  json_t *o = json_object();
  json_object_set_new(o, "iss", json_string(c->iss));
  json_object_set_new(o, "sub", json_string(c->sub));
  json_object_set_new(o, "aud", json_string(c->aud));
  json_object_set_new(o, "iat", json_integer(c->iat));
  json_object_set_new(o, "nbf", json_integer(c->nbf));
  json_object_set_new(o, "exp", json_integer(c->exp));
  json_object_set_new(o, "jti", json_string(c->jti));
  if (c->scope && *c->scope)
    json_object_set_new(o, "scope", json_string(c->scope));
  for (int i = 0; i < n_extra; i++) {
    char *eq = strchr(extra[i], '=');
    *eq = '\0';
    json_t *v = claim_value(eq + 1);
    if (!v) {
      json_decref(o);
      return idm_cli_err("token mint: --claim %s: value is not valid UTF-8", extra[i]);
    }
    json_object_set_new(o, extra[i], v);
    *eq = '=';
  }
  char *payload = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (!payload)
    return idm_cli_err("token mint: claims do not serialize");
  char hdr[160];
  snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
           idm_key_alg_name(idm_key_alg(k)), idm_key_kid(k));
  size_t hl = strlen(hdr), pl = strlen(payload);
  size_t cap = idm_b64url_encoded_len(hl) + idm_b64url_encoded_len(pl) + 100;
  char *tok = malloc(cap);
  if (!tok) {
    idm_json_dumps_free(payload);
    return idm_cli_err("out of memory");
  }
  size_t o2 = idm_b64url_encode(tok, cap, (const uint8_t *)hdr, hl);
  tok[o2++] = '.';
  o2 += idm_b64url_encode(tok + o2, cap - o2, (const uint8_t *)payload, pl);
  idm_json_dumps_free(payload);
  uint8_t sig[IDM_SIG_MAX];
  size_t sl;
  if (idm_key_sign(k, sig, &sl, (const uint8_t *)tok, o2) != IDM_OK) {
    free(tok);
    return idm_cli_err("token mint: signing with key %s failed", idm_key_kid(k));
  }
  tok[o2++] = '.';
  o2 += idm_b64url_encode(tok + o2, cap - o2, sig, sl);
  tok[o2] = '\0';
  puts(tok);
  free(tok);
  return IDM_EXIT_OK;
}

static int cmd_mint(int argc, char **argv) {
  const char *dir = NULL, *sub = NULL, *aud = NULL, *ttl_s = NULL, *scope = NULL, *iss = NULL,
             *alg_name = NULL;
  char *extra[CLAIMS_MAX];
  int n_extra = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      return idm_cli_usage("token", "token mint: %s needs a value", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--keys"))
      dir = v;
    else if (!strcmp(a, "--sub"))
      sub = v;
    else if (!strcmp(a, "--aud"))
      aud = v;
    else if (!strcmp(a, "--ttl"))
      ttl_s = v;
    else if (!strcmp(a, "--scope"))
      scope = v;
    else if (!strcmp(a, "--iss"))
      iss = v;
    else if (!strcmp(a, "--alg"))
      alg_name = v;
    else if (!strcmp(a, "--claim")) {
      const char *eq = strchr(v, '=');
      if (!eq || eq == v)
        return idm_cli_usage("token", "token mint: --claim '%s' is not NAME=VALUE", v);
      if (n_extra == CLAIMS_MAX)
        return idm_cli_usage("token", "token mint: more than %d --claim flags", CLAIMS_MAX);
      extra[n_extra++] = argv[i];
    } else
      return idm_cli_usage("token", "token mint: unknown argument '%s'", a);
  }
  if (!dir || !sub || !aud || !ttl_s)
    return idm_cli_usage("token", "token mint: --keys, --sub, --aud and --ttl are required");
  long long ttl = idm_cli_parse_duration(ttl_s);
  if (ttl <= 0)
    return idm_cli_usage("token", "token mint: --ttl '%s' is not a duration like 5m", ttl_s);
  int alg = -1;
  if (alg_name && (alg = idm_key_alg_from_name(alg_name)) < 0)
    return idm_cli_usage("token", "token mint: --alg must be EdDSA or ES256, not '%s'", alg_name);
  idm_why_t why = {{0}};
  idm_keyring_t *kr = idm_keyring_load(dir, NULL, &why);
  if (!kr)
    return idm_cli_err("%s", why.text);
  const idm_key_t *k = alg >= 0 ? idm_keyring_signer(kr, (idm_key_alg_t)alg)
                                : idm_keyring_signer(kr, IDM_KEY_EDDSA);
  if (!k && alg < 0)
    k = idm_keyring_signer(kr, IDM_KEY_ES256);
  if (!k) {
    idm_keyring_free(kr);
    return idm_cli_err("%s: no active %s key (idmint keys new --dir %s%s)", dir,
                       alg >= 0 ? alg_name : "signing", dir, alg >= 0 ? " --alg " : "");
  }
  idm_jti_gen_t g;
  idm_jti_gen_init(&g, "cli", 0);
  char jti[IDM_JTI_MAX];
  idm_jti_next(&g, jti);
  int64_t now = idm_clock_now_s(NULL);
  idm_claims_t c = {.iss = iss ? iss : "urn:idmint:cli", .sub = sub, .aud = aud, .iat = now,
                    .nbf = now, .exp = now + ttl, .jti = jti, .scope = scope};
  int rc;
  if (n_extra) {
    rc = mint_custom(k, &c, extra, n_extra);
  } else {
    char tok[IDM_TOKEN_MAX];
    size_t len;
    idm_err_t e = idm_jwt_mint(tok, sizeof tok, &len, k, &c, &why);
    rc = e ? idm_cli_err("token mint: %s", idm_why_str(&why, e)) : (puts(tok), IDM_EXIT_OK);
  }
  idm_keyring_free(kr);
  return rc;
}

/* ---- verify ----------------------------------------------------------------------- */

typedef struct verify_args {
  const char *jwks_path;
  const char *jwks_json; /* the file's bytes */
  size_t jwks_len;
  idm_jwt_expect_t expect;
} verify_args_t;

static int refuse(idm_err_t e, const idm_why_t *why) {
  return idm_cli_err("token refused: %s (%s)", idm_why_str(why, e), idm_err_name(e));
}

static int print_claims(const json_t *claims) {
  char *s = json_dumps(claims, JSON_INDENT(2));
  if (!s)
    return idm_cli_err("claims do not serialize");
  puts(s);
  idm_json_dumps_free(s);
  return IDM_EXIT_OK;
}

/* jwt profile: EdDSA / ES256 (idm_jwt_verify refuses every other alg precisely). */
static int verify_jwt(const verify_args_t *a, const char *tok, size_t len) {
  idm_why_t why = {{0}};
  idm_jwks_t *set = idm_jwks_parse(a->jwks_json, a->jwks_len, &why);
  if (!set)
    return idm_cli_err("%s: %s", a->jwks_path, why.text);
  json_t *claims = NULL;
  idm_err_t e = idm_jwt_verify(set, tok, len, &a->expect, NULL, NULL, &claims, &why);
  idm_jwks_free(set);
  if (e)
    return refuse(e, &why);
  int rc = print_claims(claims);
  json_decref(claims);
  return rc;
}

/* batch profile: EdDSA-MTB1, checked by the batch area's verifier library
 * (engine/include/idmint/verify.h): leaf, Merkle path, batch signature, then the same
 * claim checks as the jwt profile. */
static int verify_batch(const verify_args_t *a, const char *tok, size_t len) {
  char reason[IDM_VERIFY_REASON_LEN];
  idm_verify_opts_t o = {.issuer = a->expect.issuer, .audience = a->expect.audience,
                         .leeway_s = a->expect.leeway_s};
  idm_verifier_t *v = idm_verifier_new(a->jwks_json, a->jwks_len, &o, reason);
  if (!v)
    return idm_cli_err("%s: %s", a->jwks_path, reason);
  static char claims[IDM_JWT_MAX_BYTES];
  idm_verified_t out;
  int e = idm_verify_token(v, tok, len, 0, &out, claims, sizeof claims, reason);
  idm_verifier_free(v);
  if (e)
    return idm_cli_err("token refused: %s (%s)", reason, idm_err_name((idm_err_t)e));
  json_t *c = idm_json_parse(claims, out.claims_len, NULL, NULL);
  if (!c)
    return idm_cli_err("claims do not parse");
  int rc = print_claims(c);
  json_decref(c);
  return rc;
}

typedef int (*verify_fn)(const verify_args_t *a, const char *tok, size_t len);
static const struct {
  idm_jws_alg_t alg;
  verify_fn fn;
} profiles[] = {
    {IDM_JWS_EDDSA_MTB1, verify_batch},
};

static int cmd_verify(int argc, char **argv) {
  verify_args_t a = {.expect = {.leeway_s = 30}};
  const char *arg = NULL, *leeway_s = NULL;
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i];
    const char **slot = !strcmp(f, "--jwks")       ? &a.jwks_path
                        : !strcmp(f, "--audience") ? &a.expect.audience
                        : !strcmp(f, "--issuer")   ? &a.expect.issuer
                        : !strcmp(f, "--leeway")   ? &leeway_s
                                                   : NULL;
    if (slot) {
      if (i + 1 >= argc)
        return idm_cli_usage("token", "token verify: %s needs a value", f);
      *slot = argv[++i];
    } else if (f[0] == '-' && f[1] == '-') {
      return idm_cli_usage("token", "token verify: unknown argument '%s'", f);
    } else if (arg) {
      return idm_cli_usage("token", "token verify: more than one token given");
    } else {
      arg = f;
    }
  }
  if (!a.jwks_path || !arg)
    return idm_cli_usage("token", "token verify: --jwks FILE and a token are required");
  if (leeway_s) {
    long long l = idm_cli_parse_duration(leeway_s);
    if (l < 0 || l > IDM_JWT_LEEWAY_MAX_S)
      return idm_cli_usage("token", "token verify: --leeway '%s' must be a duration up to 5m",
                           leeway_s);
    a.expect.leeway_s = l;
  }
  char *tok;
  size_t len;
  if (idm_cli_read_arg(arg, 2 * IDM_JWT_MAX_BYTES, &tok, &len))
    return IDM_EXIT_FAIL;
  char *jwks;
  size_t jl;
  char at[4200];
  snprintf(at, sizeof at, "@%s", a.jwks_path + (a.jwks_path[0] == '@'));
  if (idm_cli_read_arg(at, IDM_KEYFILE_MAX_BYTES, &jwks, &jl)) {
    free(tok);
    return IDM_EXIT_FAIL;
  }
  a.jwks_json = jwks;
  a.jwks_len = jl;
  /* Dispatch on the header's alg; a token whose header does not parse is refused by the
   * jwt verifier with the precise structural reason. */
  verify_fn fn = verify_jwt;
  idm_jws_t j;
  if (idm_jws_parse(&j, NULL, tok, len, NULL) == IDM_OK) {
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
      if (profiles[i].alg == j.alg)
        fn = profiles[i].fn;
    idm_jws_cleanup(&j);
  }
  int rc = fn(&a, tok, len);
  free(jwks);
  free(tok);
  return rc;
}

/* ---- inspect ---------------------------------------------------------------------- */

static int cmd_inspect(int argc, char **argv) {
  if (argc != 2)
    return idm_cli_usage("token", "token inspect: exactly one TOKEN_OR_@FILE is required");
  char *tok;
  size_t len;
  if (idm_cli_read_arg(argv[1], 2 * IDM_JWT_MAX_BYTES, &tok, &len))
    return IDM_EXIT_FAIL;
  idm_jws_t j;
  idm_why_t why = {{0}};
  idm_err_t e = idm_jws_parse(&j, NULL, tok, len, &why);
  if (e) {
    free(tok);
    return idm_cli_err("token inspect: %s (%s)", idm_why_str(&why, e), idm_err_name(e));
  }
  json_t *out = json_object();
  json_object_set_new(out, "UNVERIFIED", json_string("decoded only: the signature, issuer, "
                                                     "audience and expiry were NOT checked"));
  json_object_set(out, "header", j.header);
  json_object_set(out, "claims", j.claims);
  json_object_set_new(out, "signature_bytes", json_integer((json_int_t)j.sig_len));
  fprintf(stderr, "idmint: UNVERIFIED token contents follow (use 'idmint token verify')\n");
  int rc = print_claims(out);
  json_decref(out);
  idm_jws_cleanup(&j);
  free(tok);
  return rc;
}

int idm_cmd_token(int argc, char **argv) {
  const char *sub = argc >= 2 ? argv[1] : NULL;
  if (sub && !strcmp(sub, "exchange"))
    return idm_cmd_token_exchange(argc - 1, argv + 1);
  if (idm_cli_wants_help(argc, argv)) {
    fputs(token_usage, stdout);
    return IDM_EXIT_OK;
  }
  if (!sub)
    return idm_cli_usage("token", "token: missing subcommand (mint, verify, inspect, exchange)");
  if (!strcmp(sub, "mint"))
    return cmd_mint(argc - 1, argv + 1);
  if (!strcmp(sub, "verify"))
    return cmd_verify(argc - 1, argv + 1);
  if (!strcmp(sub, "inspect"))
    return cmd_inspect(argc - 1, argv + 1);
  return idm_cli_usage("token", "token: unknown subcommand '%s' (mint, verify, inspect, exchange)",
                       sub);
}
