/* Secure random bytes from BoringSSL's RAND_bytes (getrandom-seeded, fork-safe). */
#ifndef IDM_CORE_RANDOM_H
#define IDM_CORE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills out[0..n). IDM_ERR_RANDOM if the generator fails (it does not in practice). */
idm_err_t idm_random_bytes(void *out, size_t n);
/* A random 64-bit value, e.g. a hash seed. Aborts if the generator fails. */
uint64_t idm_random_u64(void);

#ifdef __cplusplus
}
#endif
#endif
