/* The protocol-neutral request and response that HTTP/1.1 and HTTP/2 hand to the router.
 *
 * CONTRACT: every view in idm_http_req_t is borrowed from the protocol layer and valid
 * only during the handler call. The response body points into the thread's scratch
 * buffer (or static memory) and must be copied before the next handler call.
 */
#ifndef IDM_NET_HTTP_H
#define IDM_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum idm_http_method {
  IDM_HTTP_GET, IDM_HTTP_HEAD, IDM_HTTP_POST, IDM_HTTP_OTHER
} idm_http_method_t;

typedef struct idm_view {
  const char *ptr;  /* NULL: absent */
  uint32_t len;
} idm_view_t;

typedef struct idm_http_req {
  idm_http_method_t method;
  idm_view_t method_name;
  idm_view_t path;            /* without the query */
  idm_view_t query;           /* after '?', absent if none */
  idm_view_t content_type;
  idm_view_t authorization;
  idm_view_t subject_token;   /* X-Idmint-Subject-Token */
  idm_view_t target;          /* X-Idmint-Target */
  idm_view_t scope;           /* X-Idmint-Scope */
  idm_view_t forwarded_for;   /* X-Forwarded-For (honoured only from trusted proxies) */
  idm_view_t posture;         /* X-Idmint-Posture (idem) */
  const uint8_t *body;
  size_t body_len;
  uint8_t peer[16];           /* the TCP peer; IPv4 in the first 4 bytes */
  uint8_t peer_family;        /* 0 unknown, 4, 6 */
  int64_t start_ns;           /* monotonic, when the request was complete */
  bool http2;
  /* Set on a connection accepted on server.unix_socket: the peer identity established once
   * at accept (idm_attest_unix_peer; borrowed, valid for the handler call), or NULL with
   * unix_peer_why saying why the peer could not be identified. */
  bool unix_conn;
  const struct idm_identity *unix_peer;
  const char *unix_peer_why;
} idm_http_req_t;

#define IDM_HTTP_RESP_TOKEN_MAX 4096

typedef struct idm_http_resp {
  int status;
  const char *content_type;   /* static string; NULL: no body type */
  const char *body;           /* borrowed until the next handler call */
  size_t body_len;
  uint32_t retry_after_s;     /* 0: no Retry-After */
  bool no_store;              /* Cache-Control: no-store, Pragma: no-cache */
  bool close;                 /* close the connection after this response */
  const char *allow;          /* Allow header for 405, static */
  const char *token;          /* /v1/authz: X-Idmint-Token and X-Idmint-Authorization */
  size_t token_len;
  bool deferred;              /* no answer yet: it comes when the batcher reports cookie */
  void *cookie;
} idm_http_resp_t;

/* Records one request header by name if it is one the router reads (name is matched
 * case-insensitively). Used by both protocol layers, which pass only valid field values:
 * no control byte other than HTAB (http1.c refuses the request; nghttp2 resets the
 * stream), so no NUL reaches the handlers or the audit log through a header. */
void idm_http_req_header(idm_http_req_t *req, const char *name, size_t name_len,
                         const char *value, size_t value_len);
/* Splits a request target into path and query and sets the method from its name. */
void idm_http_req_target(idm_http_req_t *req, const char *target, size_t len);
void idm_http_req_method(idm_http_req_t *req, const char *m, size_t len);

/* "OK", "Bad Request", ... for a status code. */
const char *idm_http_reason(int status);

#ifdef __cplusplus
}
#endif
#endif
