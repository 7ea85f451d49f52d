/* The server: worker threads, each with its own io_uring ring, SO_REUSEPORT listeners,
 * connections, HTTP/1.1 and HTTP/2, router, exchange pipeline and metrics; and the main
 * thread, which owns signals (SIGTERM drain, SIGHUP reload) and the snapshot swap.
 *
 * CONTRACT:
 *  - idm_server_run blocks until the server stops; it returns the process exit status:
 *    0 after a SIGTERM/SIGINT drain, 1 when it could not start (configuration, keys,
 *    listen address, io_uring unavailable), each reason logged as one JSON line.
 *  - Reload (SIGHUP) builds a new snapshot; on failure the old one keeps serving and the
 *    reason is logged. On success every worker moves to the new one at its next loop
 *    turn and the old one is freed once all have moved.
 *  - Everything a connection can hold is bounded by the limits in core/limits.h and the
 *    config's max_connections; the bound is reported at start in the "memory" log line.
 */
#ifndef IDM_NET_SERVER_H
#define IDM_NET_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct idm_server_opts {
  const char *config_path;
  unsigned threads;           /* 0: the config's server.threads (0 there: one per core) */
  bool single_shot;           /* force single-shot accept/recv (tests of the fallback) */
  const idm_clock_t *clk;     /* NULL: real time */
  int64_t header_timeout_ms;  /* 0: IDM_NET_HEADER_TIMEOUT_MS */
  int64_t idle_timeout_ms;    /* 0: IDM_NET_IDLE_TIMEOUT_MS */
} idm_server_opts_t;

int idm_server_run(const idm_server_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
