/* exehash: a thread that hashes unix peers' executables off the event loop.
 *
 * The first connection from a given executable on `unix_socket` needs the SHA-256 of the
 * whole file (docs/ATTESTATION.md, "Unix peers"): ~0.6 ms per MiB here, up to 512 MiB. Done
 * in the loop, it held up every connection of that worker for as long; a local user could
 * keep it busy by connecting from fresh copies of a large binary. The worker hands the
 * executable's descriptor to this thread instead (idm_attest_unix_peer_cached returned
 * IDM_ERR_UNIX_EXE_UNHASHED), keeps that one connection's input waiting, and asks again
 * when the digest is cached: the thread writes the worker's eventfd, whose read is armed
 * on the worker's ring.
 *
 * CONTRACT: one worker (the unix listener's owner) submits and takes; the thread only
 * hashes. At most `cap` jobs are outstanding (submitted and not yet taken); submit refuses
 * more. The thread takes no signals. Freed with the worker: queued descriptors are closed. */
#ifndef IDM_NET_EXEHASH_H
#define IDM_NET_EXEHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct idm_exehash idm_exehash_t;

typedef struct idm_exehash_done {
  uint32_t slot, gen;          /* the connection that asked (as given to submit) */
  idm_err_t err;               /* IDM_OK: the digest is cached now */
  char why[IDM_WHY_LEN];       /* why not, when err != IDM_OK */
} idm_exehash_done_t;

idm_exehash_t *idm_exehash_new(uint32_t cap, idm_why_t *why);
/* The eventfd the thread writes after each finished job (read it to re-arm). */
int idm_exehash_efd(const idm_exehash_t *h);
/* Takes exe_fd (closed by the thread after hashing) on success; false when cap jobs are
 * outstanding (exe_fd stays the caller's). */
bool idm_exehash_submit(idm_exehash_t *h, int exe_fd, uint32_t slot, uint32_t gen);
/* Moves up to cap finished jobs into out; returns how many. */
size_t idm_exehash_take(idm_exehash_t *h, idm_exehash_done_t *out, size_t cap);
void idm_exehash_free(idm_exehash_t *h); /* NULL is a no-op */

#endif
