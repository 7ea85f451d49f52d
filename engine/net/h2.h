/* idm_h2_t: one HTTP/2 server connection, driven entirely by memory buffers.
 *
 * nghttp2 does the framing, HPACK and flow control; this module feeds it the bytes the
 * ring received (idm_h2_recv), collects each stream's request into a protocol-neutral
 * idm_http_req_t, hands it to the caller's on_request callback, and lets the caller answer
 * at once or later (idm_h2_respond). idm_h2_send copies everything ready to go out into
 * the caller's buffer, so a connection's output leaves in one send per loop turn.
 *
 * CONTRACT:
 *  - Every allocation (nghttp2's and ours) comes from the thread's idm_pool_t and is
 *    counted per connection; over IDM_NET_H2_CONN_MEM_BYTES the connection fails.
 *  - Abuse is contained by nghttp2 options and our callbacks: RST_STREAM rate limit
 *    (rapid reset, CVE-2023-44487), CONTINUATION cap, SETTINGS entry cap, queued ACK cap
 *    (SETTINGS/PING floods), decoded header bytes per stream (HPACK bombs: 431), body
 *    bytes per stream (413), concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS).
 *  - idm_h2_recv returns IDM_OK or IDM_ERR_H2 (the connection must be closed after
 *    idm_h2_send has flushed the GOAWAY nghttp2 queued).
 *  - The request views given to on_request are valid only during the callback.
 */
#ifndef IDM_NET_H2_H
#define IDM_NET_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "net/http.h"
#include "net/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct idm_h2 idm_h2_t;

/* Called once per complete request. The callee answers with idm_h2_respond, now or later
 * (before the stream is closed by the peer, after which the answer is dropped). */
typedef void (*idm_h2_on_request_fn)(void *ud, idm_h2_t *h2, int32_t stream_id,
                                     idm_http_req_t *req);

typedef struct idm_h2_limits {
  uint32_t streams_max;     /* SETTINGS_MAX_CONCURRENT_STREAMS */
  uint32_t header_max;      /* decoded header bytes per request */
  uint32_t body_max;        /* body bytes per request */
  size_t mem_max;           /* bytes of pool memory per connection */
} idm_h2_limits_t;

/* Process-wide setup of the shared nghttp2 callbacks and options (call once). */
idm_err_t idm_h2_global_init(void);

/* A new server session; SETTINGS are queued. peer/peer_family are copied into every
 * request. NULL with a reason on failure (pool exhausted). */
idm_h2_t *idm_h2_new(idm_pool_t *pool, const idm_h2_limits_t *lim, idm_h2_on_request_fn fn,
                     void *ud, const uint8_t peer[16], uint8_t peer_family, idm_why_t *why);
void idm_h2_free(idm_h2_t *h2); /* NULL is a no-op */

idm_err_t idm_h2_recv(idm_h2_t *h2, const uint8_t *in, size_t len, idm_why_t *why);

/* Copies pending output into out[0..cap); returns the bytes written (0: nothing ready). */
size_t idm_h2_send(idm_h2_t *h2, uint8_t *out, size_t cap);

/* Answers a stream. The body is copied. is_head: send headers only. Returns IDM_OK, or
 * IDM_ERR_NOT_FOUND if the stream is gone (reset by the peer), or IDM_ERR_POOL_EMPTY. */
idm_err_t idm_h2_respond(idm_h2_t *h2, int32_t stream_id, const idm_http_resp_t *resp,
                         bool is_head);

/* Graceful shutdown: GOAWAY with the last stream processed; existing streams finish. */
void idm_h2_goaway(idm_h2_t *h2);

/* True when the session has nothing left to read or write (the connection may close). */
bool idm_h2_done(const idm_h2_t *h2);
/* True when output is pending. */
bool idm_h2_want_write(const idm_h2_t *h2);
/* Streams open now, and bytes of pool memory held. */
size_t idm_h2_streams(const idm_h2_t *h2);
size_t idm_h2_mem(const idm_h2_t *h2);

#ifdef __cplusplus
}
#endif
#endif
