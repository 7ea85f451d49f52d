/* Header capture and status reasons shared by the HTTP/1.1 and HTTP/2 layers. */
#include "net/http.h"

#include <string.h>

#include "net/http1.h"

static void set(idm_view_t *v, const char *p, size_t n) {
  v->ptr = p;
  v->len = (uint32_t)n;
}

void idm_http_req_header(idm_http_req_t *req, const char *name, size_t n, const char *value,
                         size_t vn) {
  switch (n) {
  case 12:
    if (idm_h1_eq(name, n, "content-type"))
      set(&req->content_type, value, vn);
    break;
  case 13:
    if (idm_h1_eq(name, n, "authorization"))
      set(&req->authorization, value, vn);
    break;
  case 14:
    if (idm_h1_eq(name, n, "x-idmint-scope"))
      set(&req->scope, value, vn);
    break;
  case 15:
    if (idm_h1_eq(name, n, "x-idmint-target"))
      set(&req->target, value, vn);
    else if (idm_h1_eq(name, n, "x-forwarded-for") && !req->forwarded_for.ptr)
      set(&req->forwarded_for, value, vn);
    break;
  case 16:
    if (idm_h1_eq(name, n, "x-idmint-posture"))
      set(&req->posture, value, vn);
    break;
  case 22:
    if (idm_h1_eq(name, n, "x-idmint-subject-token"))
      set(&req->subject_token, value, vn);
    break;
  default:
    break;
  }
}

void idm_http_req_method(idm_http_req_t *req, const char *m, size_t n) {
  set(&req->method_name, m, n);
  if (n == 3 && !memcmp(m, "GET", 3))
    req->method = IDM_HTTP_GET;
  else if (n == 4 && !memcmp(m, "POST", 4))
    req->method = IDM_HTTP_POST;
  else if (n == 4 && !memcmp(m, "HEAD", 4))
    req->method = IDM_HTTP_HEAD;
  else
    req->method = IDM_HTTP_OTHER;
}

void idm_http_req_target(idm_http_req_t *req, const char *t, size_t n) {
  const char *q = memchr(t, '?', n);
  if (q) {
    set(&req->path, t, (size_t)(q - t));
    set(&req->query, q + 1, n - (size_t)(q - t) - 1);
  } else {
    set(&req->path, t, n);
    req->query.ptr = NULL;
    req->query.len = 0;
  }
}

const char *idm_http_reason(int status) {
  switch (status) {
  case 100: return "Continue";
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 417: return "Expectation Failed";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}
