/* idm_err_t: the engine's one error enum.
 *
 * 0 is success, negative values are errors. Names, codes and messages come from the
 * X-macro tables in engine/errors/<area>.def, one file per area so that areas grow
 * independently:
 *   core -1..-99, crypto (keys/JOSE/JWT) -100..-199, attest -200..-299,
 *   net (io_uring/HTTP) -300..-399, batch (batching/audit) -400..-499.
 *
 * The code says what kind of failure; the specific reason ("token expired 42s ago")
 * travels beside it in an idm_why_t filled by the function that failed, so it can
 * reach the caller and the audit log without allocation. */
#ifndef IDM_CORE_ERROR_H
#define IDM_CORE_ERROR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum idm_err {
  IDM_OK = 0,
#define X(name, code, fatal, msg) name = (code),
#include "errors/core.def"
#include "errors/crypto.def"
#include "errors/attest.def"
#include "errors/net.def"
#include "errors/batch.def"
#undef X
} idm_err_t;

/* A specific, human-readable reason for a failure. Fixed size: never allocates. */
#define IDM_WHY_LEN 256
typedef struct idm_why {
  char text[IDM_WHY_LEN]; /* NUL-terminated; "" when no reason was given */
} idm_why_t;

/* The symbolic name ("IDM_ERR_NOMEM") and the generic message of an error code.
 * Both return static strings; unknown codes give "IDM_ERR_UNKNOWN"/"unknown error". */
const char *idm_err_name(idm_err_t err);
const char *idm_err_str(idm_err_t err);

/* True when the error means the connection (or process step) cannot continue. */
bool idm_err_is_fatal(idm_err_t err);

/* Formats the reason into *why (if why is not NULL) and returns err, so that a failure
 * reads as one statement: return idm_fail(why, IDM_ERR_X, "token expired %llds ago", s); */
idm_err_t idm_fail(idm_why_t *why, idm_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The reason if one was given, else the generic message of err. */
const char *idm_why_str(const idm_why_t *why, idm_err_t err);

/* For tests and docs: the i-th entry of the error table (0 <= i < idm_err_count()). */
size_t idm_err_count(void);
idm_err_t idm_err_at(size_t i);

static inline void idm_why_clear(idm_why_t *why) {
  if (why)
    why->text[0] = '\0';
}

#ifdef __cplusplus
}
#endif
#endif
