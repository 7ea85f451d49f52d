/* HTTP/1.1 request parser (RFC 9112): a pure function over a byte span.
 *
 * CONTRACT:
 *  - idm_h1_parse looks at in[0..len) (the connection's unread bytes) and either finds one
 *    complete request at its start (IDM_OK, req->consumed bytes), says more bytes are needed
 *    (IDM_ERR_HTTP_INCOMPLETE, req->need = the fewest total bytes worth parsing again), or
 *    refuses the request with a specific reason in *why:
 *      IDM_ERR_HTTP_PARSE        400  bad syntax, bad header, both Content-Length and
 *                                     Transfer-Encoding, conflicting lengths, no Host (1.1)
 *      IDM_ERR_HTTP_HEADER_LARGE 431  head over lim->header_max or too many headers
 *      IDM_ERR_HTTP_BODY_LARGE   413  body over lim->body_max (known from Content-Length
 *                                     before the body arrives)
 *      IDM_ERR_HTTP_VERSION      505  not HTTP/1.0 or HTTP/1.1
 *      IDM_ERR_UNSUPPORTED       501  a transfer coding other than chunked
 *      IDM_ERR_HTTP_EXPECT       417  an Expect other than 100-continue
 *    Every error is fatal to the connection (the stream can no longer be framed).
 *  - It does no I/O and never allocates. Every view in *req points into `in`, except a
 *    chunked body, which is decoded into body_buf (caller-owned, body_cap bytes). Views are
 *    valid while those bytes are.
 *  - When the head is complete but the body is not, req->head_done is true and the head
 *    fields are filled, so the caller can answer "Expect: 100-continue".
 */
#ifndef IDM_NET_HTTP1_H
#define IDM_NET_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct idm_h1_header {
  const char *name;   /* as sent (case preserved) */
  uint32_t name_len;
  const char *value;  /* leading and trailing whitespace removed */
  uint32_t value_len;
} idm_h1_header_t;

typedef struct idm_h1_limits {
  size_t header_max;  /* bytes of the head, request line through the empty line */
  size_t body_max;    /* bytes of the (decoded) body */
  uint32_t headers_max; /* <= IDM_NET_HEADERS_MAX */
} idm_h1_limits_t;

/* Chunks in one chunked body; more is 400 (bounds re-parsing of a slow chunked body). */
#define IDM_H1_CHUNKS_MAX 256
/* Longest chunk-size line (size and extensions, without its CRLF). */
#define IDM_H1_CHUNK_LINE_MAX 1024

typedef struct idm_h1_req {
  const char *method; uint32_t method_len;
  const char *target; uint32_t target_len;   /* origin-form, e.g. "/v1/token?x=1" */
  uint8_t version_minor;                     /* 0 or 1 */
  idm_h1_header_t headers[IDM_NET_HEADERS_MAX];
  uint32_t header_count;
  bool head_done;          /* the head is complete and valid */
  size_t head_len;         /* bytes of the head, CRLFCRLF included */
  int64_t content_length;  /* -1: none */
  bool chunked;
  bool keep_alive;         /* per version and Connection */
  bool expect_continue;
  const uint8_t *body;     /* NULL when body_len == 0 */
  size_t body_len;
  size_t consumed;         /* IDM_OK: bytes of this request */
  size_t need;             /* INCOMPLETE: parse again once len >= need */
} idm_h1_req_t;

idm_err_t idm_h1_parse(idm_h1_req_t *req, uint8_t *body_buf, size_t body_cap,
                       const uint8_t *in, size_t len, const idm_h1_limits_t *lim,
                       idm_why_t *why);

/* The HTTP status a parse error maps to (400, 413, 431, 501, 505, 417). */
int idm_h1_error_status(idm_err_t err);

/* Case-insensitive ASCII comparison of a view with a NUL-terminated lower-case string. */
bool idm_h1_eq(const char *s, size_t n, const char *lower);

#ifdef __cplusplus
}
#endif
#endif
