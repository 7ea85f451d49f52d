/* Fuzz target: a whole HTTP/2 server connection without a network — nghttp2 plus our
 * callbacks (request collection, limits, responses) fed arbitrary bytes in arbitrary
 * pieces. Properties: no crash or sanitizer report; the header values a handler gets hold
 * no control byte but HTAB (net/http.h); the connection's pool budget holds;
 * freeing the session returns every byte to the pool (no leak on any path). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/h2.h"
#include "net/pool.h"

static idm_pool_t pool;

/* The guarantee of net/http.h the handlers rely on: no control byte but HTAB in a value. */
static void check_values(const idm_http_req_t *req) {
  const idm_view_t *v[] = {&req->content_type, &req->authorization, &req->subject_token,
                           &req->target, &req->scope, &req->forwarded_for, &req->posture};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
    for (uint32_t k = 0; v[i]->ptr && k < v[i]->len; k++) {
      uint8_t c = (uint8_t)v[i]->ptr[k];
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        abort();
    }
}

static void handler(void *ud, idm_h2_t *h2, int32_t id, idm_http_req_t *req) {
  (void)ud;
  check_values(req);
  idm_http_resp_t r = {.status = req->path.len == 1 ? 404 : 200,
                       .content_type = "text/plain",
                       .body = (const char *)req->body,
                       .body_len = req->body_len,
                       .token = req->target.ptr,
                       .token_len = req->target.len};
  idm_h2_respond(h2, id, &r, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!pool.base && idm_pool_init(&pool, 32 << 20) != IDM_OK)
    abort();
  static const idm_h2_limits_t lim = {8, 1024, 1024, 256 * 1024};
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  uint8_t peer[16] = {127, 0, 0, 1};
  idm_why_t why = {{0}};
  idm_h2_t *h = idm_h2_new(&pool, &lim, handler, NULL, peer, 4, &why);
  if (!h)
    abort();
  /* First byte: bit 0 says whether to prepend the client preface, the rest picks the
   * piece size, so the corpus reaches frame parsing and split-frame paths. */
  size_t piece = 1;
  if (size) {
    if (data[0] & 1)
      idm_h2_recv(h, (const uint8_t *)preface, sizeof preface - 1, &why);
    piece = (size_t)(data[0] >> 1) + 1;
    data++, size--;
  }
  uint8_t out[16384];
  for (size_t off = 0; off < size; off += piece) {
    size_t n = size - off < piece ? size - off : piece;
    idm_err_t e = idm_h2_recv(h, data + off, n, &why);
    while (idm_h2_send(h, out, sizeof out) > 0)
      ;
    if (idm_h2_mem(h) > lim.mem_max)
      abort();
    if (e != IDM_OK)
      break;
  }
  idm_h2_free(h);
  if (pool.in_use != 0)
    abort();
  return 0;
}
