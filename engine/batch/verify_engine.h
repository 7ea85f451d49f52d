/* Engine-side entry points of the token verifier (include/idmint/verify.h), for code that
 * already holds a parsed key set and an arena: the server's /v1/introspect.
 *
 * CONTRACT (owned by the batch area; consumer: server introspection):
 *  - idm_verifier_new_set borrows set: it must outlive the verifier (e.g. both live in
 *    one configuration snapshot). Allocates (start-up / reload path).
 *  - idm_verifier_check verifies either profile exactly as idm_verify_token does, with all
 *    scratch memory and the returned claims object taken from arena (valid until its
 *    reset): no allocation on the request path. Errors: the codes of idm_verify_token,
 *    with the reason in *why. */
#ifndef IDM_BATCH_VERIFY_ENGINE_H
#define IDM_BATCH_VERIFY_ENGINE_H

#include <jansson.h>

#include "core/arena.h"
#include "core/error.h"
#include "crypto/jose.h"
#include "idmint/verify.h"

#ifdef __cplusplus
extern "C" {
#endif

idm_verifier_t *idm_verifier_new_set(const idm_jwks_t *set, const idm_verify_opts_t *opts,
                                     idm_why_t *why);

idm_err_t idm_verifier_check(idm_verifier_t *v, idm_arena_t *arena, const char *tok,
                             size_t len, int64_t now_s, idm_verified_t *out, json_t **claims,
                             idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
