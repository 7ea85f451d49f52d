/* Private declarations shared by the crypto modules (jose.c, keys.c, jwt.c). */
#ifndef IDM_CRYPTO_INTERNAL_H
#define IDM_CRYPTO_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* RFC 7638 thumbprint of a public JWK object (members kty, crv, x, y, n, e, as written)
 * into out (43 base64url chars + NUL). IDM_ERR_JWKS when a required member is missing
 * or not a string. */
idm_err_t idm_jose_thumbprint(const json_t *jwk, char out[44], idm_why_t *why);

/* Decodes the base64url string member name of obj into out (exactly want bytes unless
 * want is 0, then at most cap). IDM_ERR_JWKS with a reason naming the member. */
idm_err_t idm_jose_get_b64(const json_t *obj, const char *name, uint8_t *out, size_t cap,
                           size_t want, size_t *got, idm_why_t *why);

#endif
