/* HTTP/2 session without a network: an nghttp2 client session talks to idm_h2_t through
 * memory, so framing, our callbacks and the abuse limits are tested deterministically. */
#include <criterion/criterion.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

#include "net/h2.h"
#include "net/pool.h"

typedef struct client {
  nghttp2_session *s;
  int status[64];
  char body[64][256];
  size_t body_len[64];
  int closed, reset;
} client_t;

static idm_pool_t pool;
static int requests_seen;

static void handler(void *ud, idm_h2_t *h2, int32_t id, idm_http_req_t *req) {
  requests_seen++;
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%.*s %.*s body=%zu tgt=%.*s", (int)req->method_name.len,
                   req->method_name.ptr, (int)req->path.len, req->path.ptr, req->body_len,
                   (int)req->target.len, req->target.ptr ? req->target.ptr : "");
  idm_http_resp_t r = {.status = 200, .content_type = "text/plain", .body = buf,
                       .body_len = (size_t)n};
  cr_assert_eq(idm_h2_respond(h2, id, &r, false), IDM_OK);
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                       size_t nl, const uint8_t *v, size_t vl, uint8_t fl, void *ud) {
  client_t *c = ud;
  if (nl == 7 && !memcmp(name, ":status", 7) && f->hd.stream_id < 128)
    c->status[f->hd.stream_id / 2] = atoi((const char *)v);
  return 0;
}
static int c_on_data(nghttp2_session *s, uint8_t fl, int32_t id, const uint8_t *d, size_t n,
                     void *ud) {
  client_t *c = ud;
  size_t i = (size_t)id / 2;
  if (i < 64 && c->body_len[i] + n < 256) {
    memcpy(c->body[i] + c->body_len[i], d, n);
    c->body_len[i] += n;
  }
  return 0;
}
static int c_on_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud) {
  client_t *c = ud;
  c->closed++;
  if (err)
    c->reset++;
  return 0;
}

/* A client session whose DATA goes to on_data, opening with SETTINGS iv[0..niv). */
static void client_init_with(client_t *c, nghttp2_on_data_chunk_recv_callback on_data,
                             const nghttp2_settings_entry *iv, size_t niv) {
  memset(c, 0, sizeof *c);
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
  nghttp2_session_client_new(&c->s, cb, c);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, niv);
}

static void client_init(client_t *c) { client_init_with(c, c_on_data, NULL, 0); }

/* Moves bytes both ways until both sides are quiet. */
static idm_err_t pump(client_t *c, idm_h2_t *h) {
  static uint8_t out[1 << 16];
  idm_err_t rc = IDM_OK;
  for (int round = 0; round < 100; round++) {
    bool moved = false;
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c->s, &data)) > 0) {
      idm_why_t why = {{0}};
      idm_err_t e = idm_h2_recv(h, data, (size_t)n, &why);
      if (e)
        rc = e;
      moved = true;
    }
    size_t k;
    while ((k = idm_h2_send(h, out, sizeof out)) > 0) {
      nghttp2_session_mem_recv(c->s, out, k);
      moved = true;
    }
    if (!moved)
      break;
  }
  return rc;
}

static idm_h2_t *server(void) {
  static const idm_h2_limits_t lim = {16, 2048, 1024, 1 << 20};
  uint8_t peer[16] = {127, 0, 0, 1};
  idm_why_t why = {{0}};
  idm_h2_t *h = idm_h2_new(&pool, &lim, handler, NULL, peer, 4, &why);
  cr_assert_not_null(h, "%s", why.text);
  return h;
}

static void setup(void) {
  cr_assert_eq(idm_pool_init(&pool, 64 << 20), IDM_OK);
  requests_seen = 0;
}
static void teardown(void) {
  cr_assert_eq(pool.in_use, 0, "pool leak: %zu bytes", pool.in_use);
  idm_pool_cleanup(&pool);
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0}

Test(h2, get_and_post, .init = setup, .fini = teardown) {
  client_t c;
  client_init(&c);
  idm_h2_t *h = server();
  nghttp2_nv get[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "x"),
                      NV(":path", "/healthz?x=1"), NV("x-idmint-target", "db")};
  int32_t id1 = nghttp2_submit_request(c.s, NULL, get, 5, NULL, NULL);
  cr_assert_eq(pump(&c, h), IDM_OK);
  cr_assert_eq(c.status[id1 / 2], 200);
  c.body[id1 / 2][c.body_len[id1 / 2]] = 0;
  cr_assert_str_eq(c.body[id1 / 2], "GET /healthz body=0 tgt=db");
  cr_assert_eq(idm_h2_streams(h), 0);
  idm_h2_free(h);
  nghttp2_session_del(c.s);
}

static ssize_t body_src(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                        nghttp2_data_source *src, void *ud) {
  size_t *left = src->ptr;
  size_t n = *left < len ? *left : len;
  memset(buf, 'b', n);
  *left -= n;
  if (!*left)
    *fl |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

Test(h2, body_collected_and_limited, .init = setup, .fini = teardown) {
  client_t c;
  client_init(&c);
  idm_h2_t *h = server();
  nghttp2_nv post[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "x"),
                       NV(":path", "/v1/token")};
  size_t left1 = 700, left2 = 5000;
  nghttp2_data_provider p1 = {{.ptr = &left1}, body_src}, p2 = {{.ptr = &left2}, body_src};
  int32_t a = nghttp2_submit_request(c.s, NULL, post, 4, &p1, NULL);
  int32_t b = nghttp2_submit_request(c.s, NULL, post, 4, &p2, NULL);
  pump(&c, h);
  cr_assert_eq(c.status[a / 2], 200);
  c.body[a / 2][c.body_len[a / 2]] = 0;
  cr_assert(strstr(c.body[a / 2], "body=700"), "%s", c.body[a / 2]);
  cr_assert_eq(c.status[b / 2], 413, "over the body limit: %d", c.status[b / 2]);
  idm_h2_free(h);
  nghttp2_session_del(c.s);
}

Test(h2, header_bomb_gets_431, .init = setup, .fini = teardown) {
  client_t c;
  client_init(&c);
  idm_h2_t *h = server();
  static char big[1500];
  memset(big, 'v', sizeof big - 1);
  nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "x"),
                     NV(":path", "/"), {(uint8_t *)"x-a", (uint8_t *)big, 3, sizeof big - 1, 0},
                     {(uint8_t *)"x-b", (uint8_t *)big, 3, sizeof big - 1, 0}};
  int32_t id = nghttp2_submit_request(c.s, NULL, nv, 6, NULL, NULL);
  pump(&c, h);
  cr_assert_eq(c.status[id / 2], 431);
  cr_assert_eq(requests_seen, 0, "a rejected request must not reach the handler");
  idm_h2_free(h);
  nghttp2_session_del(c.s);
}

Test(h2, rapid_reset_is_cut_off, .init = setup, .fini = teardown) {
  client_t c;
  client_init(&c);
  idm_h2_t *h = server();
  pump(&c, h);
  nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "x"),
                     NV(":path", "/")};
  idm_err_t rc = IDM_OK;
  /* Open and reset streams as fast as possible: nghttp2's reset rate limit must end the
   * session (GOAWAY) long before memory or CPU matter. */
  for (int i = 0; i < 3000 && rc == IDM_OK; i++) {
    int32_t id = nghttp2_submit_headers(c.s, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL);
    const uint8_t *data;
    ssize_t n;
    for (int k = 0; k < 2; k++) {
      if (k == 1)
        nghttp2_submit_rst_stream(c.s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      while ((n = nghttp2_session_mem_send(c.s, &data)) > 0) {
        idm_why_t why = {{0}};
        if (idm_h2_recv(h, data, (size_t)n, &why) != IDM_OK)
          rc = IDM_ERR_H2;
      }
    }
    static uint8_t out[1 << 16];
    while (idm_h2_send(h, out, sizeof out) > 0)
      ;
  }
  cr_assert(rc == IDM_ERR_H2 || idm_h2_done(h), "rapid reset was not stopped");
  cr_assert_lt(idm_h2_mem(h), 1 << 20);
  idm_h2_free(h);
  nghttp2_session_del(c.s);
}

Test(h2, garbage_fails_the_session, .init = setup, .fini = teardown) {
  idm_h2_t *h = server();
  static const char junk[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x08\x00\x00\x00\x00\x00xxxx";
  idm_why_t why = {{0}};
  idm_h2_recv(h, (const uint8_t *)junk, sizeof junk - 1, &why);
  uint8_t out[4096];
  size_t n = idm_h2_send(h, out, sizeof out);
  cr_assert_gt(n, 0); /* SETTINGS and, for the bad frame, a GOAWAY */
  idm_h2_free(h);
}

Test(h2, pool_budget_enforced, .init = setup, .fini = teardown) {
  static const idm_h2_limits_t lim = {16, 2048, 1024, 4096};
  uint8_t peer[16] = {0};
  idm_why_t why = {{0}};
  idm_h2_t *h = idm_h2_new(&pool, &lim, handler, NULL, peer, 0, &why);
  /* A 4 KiB budget cannot even hold nghttp2's session: creation fails cleanly. */
  cr_assert_null(h);
}

/* Regression (found by fuzz/h2_session): nghttp2_session_del frees its streams without
 * calling on_stream_close, so the stream records we keep in the pool leaked whenever a
 * connection ended with a request in progress. The teardown asserts the pool is empty. */
Test(h2, free_with_open_streams_returns_memory, .init = setup, .fini = teardown) {
  client_t c;
  client_init(&c);
  idm_h2_t *h = server();
  nghttp2_nv post[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "x"),
                       NV(":path", "/v1/token")};
  for (int i = 0; i < 5; i++) /* headers only: each stream waits for a body */
    nghttp2_submit_headers(c.s, NGHTTP2_FLAG_NONE, -1, NULL, post, 4, NULL);
  pump(&c, h);
  cr_assert_eq(idm_h2_streams(h), 5);
  idm_h2_free(h);
  nghttp2_session_del(c.s);
}

/* Response bodies leave as DATA frames written by send_data straight into the caller's
 * output (NGHTTP2_DATA_FLAG_NO_COPY): several frames per body, and an output buffer too
 * small for one frame must only delay them (WOULDBLOCK), never lose or reorder bytes. */
#define BIG_LEN 40000
static char big_body[BIG_LEN];
static size_t big_got[64];
static bool big_bad;

static void big_handler(void *ud, idm_h2_t *h2, int32_t id, idm_http_req_t *req) {
  requests_seen++;
  idm_http_resp_t r = {.status = 200, .content_type = "application/octet-stream",
                       .body = big_body, .body_len = BIG_LEN};
  cr_assert_eq(idm_h2_respond(h2, id, &r, false), IDM_OK);
}

static int big_on_data(nghttp2_session *s, uint8_t fl, int32_t id, const uint8_t *d, size_t n,
                       void *ud) {
  size_t i = (size_t)id / 2;
  if (i >= 64 || big_got[i] + n > BIG_LEN || memcmp(d, big_body + big_got[i], n) != 0)
    big_bad = true;
  else
    big_got[i] += n;
  return 0;
}

static void big_exchange(size_t out_cap) {
  for (size_t i = 0; i < BIG_LEN; i++)
    big_body[i] = (char)('a' + i % 23);
  memset(big_got, 0, sizeof big_got);
  big_bad = false;
  client_t c;
  /* Windows large enough for the whole body, so only our output buffer limits it. */
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
  client_init_with(&c, big_on_data, iv, 1);
  nghttp2_session_set_local_window_size(c.s, NGHTTP2_FLAG_NONE, 0, 1 << 22);
  static const idm_h2_limits_t lim = {16, 2048, 1024, 1 << 20};
  uint8_t peer[16] = {127, 0, 0, 1};
  idm_why_t why = {{0}};
  idm_h2_t *h = idm_h2_new(&pool, &lim, big_handler, NULL, peer, 4, &why);
  cr_assert_not_null(h, "%s", why.text);
  nghttp2_nv get[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", "x"),
                      NV(":path", "/big")};
  int32_t ids[3];
  for (int k = 0; k < 3; k++)
    ids[k] = nghttp2_submit_request(c.s, NULL, get, 4, NULL, NULL);
  static uint8_t out[1 << 16];
  for (int round = 0; round < 10000; round++) {
    bool moved = false;
    const uint8_t *data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(c.s, &data)) > 0) {
      cr_assert_eq(idm_h2_recv(h, data, (size_t)n, &why), IDM_OK);
      moved = true;
    }
    size_t k = idm_h2_send(h, out, out_cap);
    cr_assert_leq(k, out_cap);
    if (k) {
      cr_assert_eq(nghttp2_session_mem_recv(c.s, out, k), (ssize_t)k);
      moved = true;
    }
    if (!moved)
      break;
  }
  cr_assert_not(big_bad, "body bytes lost, changed or reordered");
  for (int k = 0; k < 3; k++) {
    cr_assert_eq(c.status[ids[k] / 2], 200);
    cr_assert_eq(big_got[ids[k] / 2], BIG_LEN, "stream %d got %zu bytes", ids[k],
                 big_got[ids[k] / 2]);
  }
  cr_assert_eq(idm_h2_streams(h), 0);
  idm_h2_free(h);
  nghttp2_session_del(c.s);
}

Test(h2, large_bodies_through_roomy_output, .init = setup, .fini = teardown) {
  big_exchange(1 << 16);
}

Test(h2, large_bodies_through_small_output, .init = setup, .fini = teardown) {
  big_exchange(700); /* less than one 16 KiB DATA frame: frames sized to the room */
}

Test(h2, large_bodies_through_tiny_output, .init = setup, .fini = teardown) {
  big_exchange(80); /* room for one 64-byte frame at a time */
}

/* A handler that answers with the request body itself: the response takes the place of the
 * request body inside the stream record when it fits (memmove onto itself), and a pool
 * block when it does not; both sides of the 1,400-byte inline area. */
static void echo_handler(void *ud, idm_h2_t *h2, int32_t id, idm_http_req_t *req) {
  requests_seen++;
  idm_http_resp_t r = {.status = 200, .content_type = "application/octet-stream",
                       .body = (const char *)req->body, .body_len = req->body_len};
  cr_assert_eq(idm_h2_respond(h2, id, &r, false), IDM_OK);
}

static size_t echo_got[64];
static bool echo_bad;
static int echo_on_data(nghttp2_session *s, uint8_t fl, int32_t id, const uint8_t *d, size_t n,
                        void *ud) {
  for (size_t i = 0; i < n; i++)
    if (d[i] != 'b')
      echo_bad = true;
  if ((size_t)id / 2 < 64)
    echo_got[id / 2] += n;
  return 0;
}

Test(h2, echo_bodies_inline_and_spilled, .init = setup, .fini = teardown) {
  memset(echo_got, 0, sizeof echo_got);
  echo_bad = false;
  client_t c;
  client_init_with(&c, echo_on_data, NULL, 0);
  static const idm_h2_limits_t lim = {16, 2048, 8192, 1 << 20};
  uint8_t peer[16] = {127, 0, 0, 1};
  idm_why_t why = {{0}};
  idm_h2_t *h = idm_h2_new(&pool, &lim, echo_handler, NULL, peer, 4, &why);
  cr_assert_not_null(h, "%s", why.text);
  nghttp2_nv post[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":authority", "x"),
                       NV(":path", "/echo")};
  size_t sizes[] = {1, 1399, 1400, 1401, 3000, 8000};
  size_t left[6];
  nghttp2_data_provider p[6];
  int32_t ids[6];
  for (int k = 0; k < 6; k++) {
    left[k] = sizes[k];
    p[k] = (nghttp2_data_provider){{.ptr = &left[k]}, body_src};
    ids[k] = nghttp2_submit_request(c.s, NULL, post, 4, &p[k], NULL);
  }
  cr_assert_eq(pump(&c, h), IDM_OK);
  cr_assert_not(echo_bad, "echoed bytes changed");
  for (int k = 0; k < 6; k++) {
    cr_assert_eq(c.status[ids[k] / 2], 200, "size %zu", sizes[k]);
    cr_assert_eq(echo_got[ids[k] / 2], sizes[k], "size %zu: got %zu", sizes[k],
                 echo_got[ids[k] / 2]);
  }
  cr_assert_eq(idm_h2_streams(h), 0);
  idm_h2_free(h);
  nghttp2_session_del(c.s);
}
