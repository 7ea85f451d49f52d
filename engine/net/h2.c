/* HTTP/2 through nghttp2, memory-driven.
 *
 * Request collection: on begin_headers a stream record is taken from the pool; header
 * callbacks copy only the fields the router reads (pseudo-headers :method/:path and the
 * idm_http_req_header names) into one growable per-stream byte buffer and remember
 * (field, offset, length), because nghttp2's header buffers die with the callback and the
 * byte buffer may move as it grows. Every header, captured or not, is counted against the
 * header limit (name + value + 32, as HPACK sizes them), so an HPACK bomb that expands
 * a few bytes into megabytes stops at the limit and gets 431. DATA is appended to the
 * stream's body up to the body limit (413 after it). At END_STREAM the views are built and
 * on_request runs.
 *
 * Memory: nghttp2 is given an nghttp2_mem backed by the thread's pool, with a per-
 * connection byte budget, so a hostile peer can make a connection fail but cannot make
 * the process grow.
 *
 * Output: nghttp2_session_mem_send returns a pointer into nghttp2's own buffer that is
 * valid until the next call; a chunk that does not fit the caller's buffer is kept as
 * (pointer, length) and copied first next time. Response bodies do not go through that
 * buffer: DATA frames are NGHTTP2_DATA_FLAG_NO_COPY, sized to the room left in the
 * caller's buffer (data_length), and send_data writes each frame's header and payload
 * straight into it during mem_send, in order with the chunks around it (one copy of a
 * body instead of two; the stream's own copy stays until the frame is written).
 */
#include "net/h2.h"

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/limits.h"

enum { F_METHOD, F_PATH, F_OTHER, F__MAX = 16 };

typedef struct field {
  uint8_t kind;          /* F_METHOD, F_PATH, or F_OTHER (name stored before the value) */
  uint32_t off, name_len, len;
} field_t;

/* A stream record is one pool block of 2 KiB that also holds a typical request's captured
 * headers and body and, once the request is dispatched (its body is no longer read), the
 * response body: one allocation per request instead of four. Larger ones spill into pool
 * blocks of their own. */
#define HDR_INLINE 192
#define BODY_INLINE 1400

typedef struct stream {
  struct stream *prev, *next; /* the session's open streams (nghttp2_session_del does not
                                 report them closed, so we free them ourselves) */
  int32_t id;
  char *buf;             /* captured names and values: hdr_inl, or a pool block */
  size_t buf_len, buf_cap;
  field_t fields[F__MAX];
  uint32_t field_count;
  uint32_t header_bytes;
  uint8_t *body;         /* body_inl, or a pool block */
  size_t body_len, body_cap;
  char *out;             /* response body being sent: body_inl, or a pool block */
  size_t out_len, out_off; /* out_off: bytes handed to nghttp2 as DATA frame lengths */
  size_t out_sent;       /* bytes written into the caller's output by send_data */
  int reject;            /* 0, or 413/431/400: answer this instead of routing */
  bool dispatched, responded, is_head;
  char hdr_inl[HDR_INLINE];   /* (not zeroed at start: only the fields above are) */
  uint8_t body_inl[BODY_INLINE];
} stream_t;
_Static_assert(sizeof(stream_t) + 16 <= 2048, "a stream record fits one 2 KiB pool block");

struct idm_h2 {
  nghttp2_session *session;
  idm_pool_t *pool;
  idm_h2_limits_t lim;
  idm_h2_on_request_fn fn;
  void *ud;
  size_t mem;            /* pool bytes held by this connection */
  size_t streams;
  stream_t *streams_head;  /* every stream record we own */
  const uint8_t *pending; /* output left over from the last mem_send */
  size_t pending_len;
  uint8_t *sd_out;       /* during idm_h2_send: the caller's buffer, its size, bytes used */
  size_t sd_cap, sd_n;   /* (send_data writes DATA frames straight into it) */
  stream_t *last;        /* the stream looked up last (callbacks come in runs per stream) */
  uint8_t peer[16];
  uint8_t peer_family;
  bool goaway;
};

static nghttp2_session_callbacks *g_cbs;
static nghttp2_option *g_opt;

/* ---- memory -------------------------------------------------------------------- */

static void *h2_malloc(size_t n, void *ud) {
  idm_h2_t *h = ud;
  if (n == 0)
    n = 1;
  /* The budget counts the block really taken (its power-of-two class), not the bytes
   * asked: counting the request let a connection hold up to twice its mem_max. */
  size_t take = idm_pool_size_for(n);
  if (!take || h->mem + take > h->lim.mem_max)
    return NULL;
  void *p = idm_pool_alloc(h->pool, n);
  if (p)
    h->mem += idm_pool_block_size(p);
  return p;
}
static void h2_free(void *p, void *ud) {
  idm_h2_t *h = ud;
  if (!p)
    return;
  h->mem -= idm_pool_block_size(p);
  idm_pool_free(h->pool, p);
}
static void *h2_calloc(size_t n, size_t sz, void *ud) {
  if (sz && n > SIZE_MAX / sz)
    return NULL;
  void *p = h2_malloc(n * sz, ud);
  if (p)
    memset(p, 0, n * sz);
  return p;
}
static void *h2_realloc(void *p, size_t n, void *ud) {
  if (!p)
    return h2_malloc(n, ud);
  if (n == 0) {
    h2_free(p, ud);
    return NULL;
  }
  size_t have = idm_pool_block_size(p);
  if (n <= have)
    return p;
  void *q = h2_malloc(n, ud);
  if (!q)
    return NULL;
  memcpy(q, p, have);
  h2_free(p, ud);
  return q;
}

/* Appends to a buffer that starts in the stream record (inl, cap bytes) and moves to pool
 * blocks owned by the connection's budget as it grows. */
static bool buf_append(idm_h2_t *h, void **buf, size_t *len, size_t *cap, const void *inl,
                       const void *src, size_t n) {
  if (*len + n > *cap) {
    size_t want = *cap * 2 > 256 ? *cap * 2 : 256;
    while (want < *len + n)
      want *= 2;
    void *q = h2_malloc(want, h);
    if (!q)
      return false;
    if (*len)
      memcpy(q, *buf, *len);
    if (*buf != inl)
      h2_free(*buf, h);
    *buf = q;
    *cap = idm_pool_block_size(q);
  }
  if (n) /* memcpy from a NULL src is undefined even for 0 bytes */
    memcpy((uint8_t *)*buf + *len, src, n);
  *len += n;
  return true;
}

static void stream_free(idm_h2_t *h, stream_t *s) {
  if (h->last == s)
    h->last = NULL;
  if (s->prev)
    s->prev->next = s->next;
  else
    h->streams_head = s->next;
  if (s->next)
    s->next->prev = s->prev;
  if (s->buf != s->hdr_inl)
    h2_free(s->buf, h);
  if (s->body != s->body_inl)
    h2_free(s->body, h);
  if (s->out != (char *)s->body_inl)
    h2_free(s->out, h);
  h2_free(s, h);
}

/* The stream record of id: header, data and frame callbacks arrive in runs for one stream,
 * so the last one looked up saves most of nghttp2's stream-map lookups. */
static stream_t *stream_get(idm_h2_t *h, nghttp2_session *session, int32_t id) {
  if (h->last && h->last->id == id)
    return h->last;
  stream_t *s = nghttp2_session_get_stream_user_data(session, id);
  if (s)
    h->last = s;
  return s;
}

/* ---- callbacks ----------------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  idm_h2_t *h = ud;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  stream_t *s = h2_malloc(sizeof *s, h);
  if (!s)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM: we cannot serve it */
  memset(s, 0, offsetof(stream_t, hdr_inl));
  s->buf = s->hdr_inl;
  s->buf_cap = sizeof s->hdr_inl;
  s->body = s->body_inl;
  s->body_cap = sizeof s->body_inl;
  s->id = frame->hd.stream_id;
  if (nghttp2_session_set_stream_user_data(session, s->id, s) != 0) {
    h2_free(s, h);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  s->next = h->streams_head;
  if (s->next)
    s->next->prev = s;
  h->streams_head = s;
  h->streams++;
  return 0;
}

#define NAME(s) {s, sizeof s - 1}
static const struct {
  const char *name;
  size_t len;
} captured[] = {NAME("content-type"),   NAME("authorization"),   NAME("x-idmint-subject-token"),
                NAME("x-idmint-target"), NAME("x-idmint-scope"), NAME("x-forwarded-for"),
                NAME("x-idmint-posture")};
#undef NAME

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  idm_h2_t *h = ud;
  if (frame->hd.type != NGHTTP2_HEADERS)
    return 0;
  stream_t *s = stream_get(h, session, frame->hd.stream_id);
  if (!s || s->reject)
    return 0;
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* trailers: counted by nghttp2's own checks, ignored here */
  s->header_bytes += (uint32_t)(namelen + valuelen + 32);
  if (s->header_bytes > h->lim.header_max) {
    s->reject = 431;
    return 0;
  }
  uint8_t kind;
  if (namelen == 7 && !memcmp(name, ":method", 7))
    kind = F_METHOD;
  else if (namelen == 5 && !memcmp(name, ":path", 5))
    kind = F_PATH;
  else {
    bool want = false;
    for (size_t i = 0; i < sizeof captured / sizeof captured[0] && !want; i++)
      want = captured[i].len == namelen && !memcmp(captured[i].name, name, namelen);
    if (!want)
      return 0;
    kind = F_OTHER;
  }
  if (s->field_count >= F__MAX)
    return 0;
  field_t *f = &s->fields[s->field_count];
  f->kind = kind;
  f->off = (uint32_t)s->buf_len;
  f->name_len = kind == F_OTHER ? (uint32_t)namelen : 0;
  f->len = (uint32_t)valuelen;
  if ((kind == F_OTHER &&
       !buf_append(h, (void **)&s->buf, &s->buf_len, &s->buf_cap, s->hdr_inl, name, namelen)) ||
      !buf_append(h, (void **)&s->buf, &s->buf_len, &s->buf_cap, s->hdr_inl, value, valuelen))
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  s->field_count++;
  return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *ud) {
  idm_h2_t *h = ud;
  stream_t *s = stream_get(h, session, stream_id);
  if (!s || s->reject)
    return 0;
  if (s->body_len + len > h->lim.body_max) {
    s->reject = 413;
    return 0;
  }
  if (!buf_append(h, (void **)&s->body, &s->body_len, &s->body_cap, s->body_inl, data, len))
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return 0;
}

static void dispatch(idm_h2_t *h, stream_t *s) {
  if (s->dispatched)
    return;
  s->dispatched = true;
  idm_http_req_t req;
  memset(&req, 0, sizeof req);
  req.http2 = true;
  memcpy(req.peer, h->peer, 16);
  req.peer_family = h->peer_family;
  bool have_method = false, have_path = false;
  for (uint32_t i = 0; i < s->field_count; i++) {
    field_t *f = &s->fields[i];
    const char *base = s->buf + f->off;
    if (f->kind == F_METHOD) {
      idm_http_req_method(&req, base, f->len);
      have_method = true;
    } else if (f->kind == F_PATH) {
      idm_http_req_target(&req, base, f->len);
      have_path = true;
    } else {
      idm_http_req_header(&req, base, f->name_len, base + f->name_len, f->len);
    }
  }
  s->is_head = req.method == IDM_HTTP_HEAD;
  req.body = s->body;
  req.body_len = s->body_len;
  if (!s->reject && (!have_method || !have_path))
    s->reject = 400; /* nghttp2's messaging checks make this unreachable; kept as a guard */
  if (s->reject) {
    idm_http_resp_t resp;
    memset(&resp, 0, sizeof resp);
    resp.status = s->reject;
    resp.content_type = "application/json";
    resp.body = s->reject == 431 ? "{\"error\":\"invalid_request\",\"error_description\":"
                                   "\"request header fields too large\"}"
              : s->reject == 413 ? "{\"error\":\"invalid_request\",\"error_description\":"
                                   "\"request body too large\"}"
                                 : "{\"error\":\"invalid_request\"}";
    resp.body_len = strlen(resp.body);
    idm_h2_respond(h, s->id, &resp, false);
    return;
  }
  h->fn(h->ud, h, s->id, &req);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud) {
  idm_h2_t *h = ud;
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  stream_t *s = stream_get(h, session, frame->hd.stream_id);
  if (!s)
    return 0;
  /* A rejected request is answered as soon as its headers are in, without waiting for a
   * body we will not read. */
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) || s->reject)
    dispatch(h, s);
  return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *ud) {
  idm_h2_t *h = ud;
  stream_t *s = stream_get(h, session, stream_id);
  if (!s)
    return 0;
  nghttp2_session_set_stream_user_data(session, stream_id, NULL);
  stream_free(h, s);
  h->streams--;
  return 0;
}

/* DATA without a copy into nghttp2's frame buffer: read_body only sizes the frame, and
 * send_data writes its header and payload straight into idm_h2_send's output. */
static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud) {
  stream_t *s = src->ptr;
  size_t n = s->out_len - s->out_off;
  if (n > len)
    n = len;
  s->out_off += n;
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (s->out_off == s->out_len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* A DATA frame no longer than the room left in idm_h2_send's output (at least 64 bytes of
 * payload), so that a small output buffer delays frames but never blocks them forever. */
static ssize_t data_length(nghttp2_session *session, uint8_t type, int32_t stream_id,
                          int32_t conn_window, int32_t stream_window, uint32_t max_frame,
                          void *ud) {
  idm_h2_t *h = ud;
  size_t room = h->sd_out && h->sd_cap - h->sd_n > 9 + 64 ? h->sd_cap - h->sd_n - 9 : 64;
  return (ssize_t)(room < max_frame ? room : max_frame);
}

static int send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *ud) {
  idm_h2_t *h = ud;
  stream_t *s = src->ptr;
  size_t pad = frame->data.padlen; /* 0: we set no padding callback; handled anyway */
  size_t need = 9 + length + pad;
  if (!h->sd_out || h->sd_cap - h->sd_n < need)
    return NGHTTP2_ERR_WOULDBLOCK; /* retried by the next idm_h2_send, after a send */
  if (length > s->out_len - s->out_sent)
    return NGHTTP2_ERR_CALLBACK_FAILURE; /* cannot happen: read_body sized it */
  uint8_t *o = h->sd_out + h->sd_n;
  memcpy(o, framehd, 9);
  o += 9;
  if (pad)
    *o++ = (uint8_t)(pad - 1);
  memcpy(o, s->out + s->out_sent, length);
  if (pad > 1)
    memset(o + length, 0, pad - 1);
  s->out_sent += length;
  h->sd_n += need;
  return 0;
}

/* ---- API ----------------------------------------------------------------------- */

idm_err_t idm_h2_global_init(void) {
  if (g_cbs)
    return IDM_OK;
  if (nghttp2_session_callbacks_new(&g_cbs) != 0 || nghttp2_option_new(&g_opt) != 0)
    return IDM_ERR_NOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(g_cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(g_cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g_cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(g_cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(g_cbs, on_stream_close);
  nghttp2_session_callbacks_set_send_data_callback(g_cbs, send_data);
  nghttp2_session_callbacks_set_data_source_read_length_callback(g_cbs, data_length);
  nghttp2_option_set_stream_reset_rate_limit(g_opt, IDM_NET_H2_RST_BURST, IDM_NET_H2_RST_RATE);
  nghttp2_option_set_max_continuations(g_opt, IDM_NET_H2_CONTINUATIONS_MAX);
  nghttp2_option_set_max_settings(g_opt, IDM_NET_H2_SETTINGS_MAX);
  nghttp2_option_set_max_outbound_ack(g_opt, IDM_NET_H2_OUTBOUND_ACK_MAX);
  nghttp2_option_set_max_deflate_dynamic_table_size(g_opt, 4096);
  nghttp2_option_set_no_closed_streams(g_opt, 1); /* no memory kept for closed streams */
  return IDM_OK;
}

idm_h2_t *idm_h2_new(idm_pool_t *pool, const idm_h2_limits_t *lim, idm_h2_on_request_fn fn,
                     void *ud, const uint8_t peer[16], uint8_t peer_family, idm_why_t *why) {
  if (!g_cbs && idm_h2_global_init() != IDM_OK) {
    idm_fail(why, IDM_ERR_NOMEM, "nghttp2 setup failed");
    return NULL;
  }
  idm_h2_t *h = idm_pool_alloc(pool, sizeof *h);
  if (!h) {
    idm_fail(why, IDM_ERR_POOL_EMPTY, "HTTP/2 pool exhausted");
    return NULL;
  }
  memset(h, 0, sizeof *h);
  h->pool = pool;
  h->lim = *lim;
  h->fn = fn;
  h->ud = ud;
  memcpy(h->peer, peer, 16);
  h->peer_family = peer_family;
  nghttp2_mem mem = {h, h2_malloc, h2_free, h2_calloc, h2_realloc};
  if (nghttp2_session_server_new3(&h->session, g_cbs, h, g_opt, &mem) != 0) {
    idm_pool_free(pool, h);
    idm_fail(why, IDM_ERR_POOL_EMPTY, "cannot create an HTTP/2 session");
    return NULL;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->streams_max},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim->header_max},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535},
  };
  if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0) {
    idm_h2_free(h);
    idm_fail(why, IDM_ERR_POOL_EMPTY, "cannot queue HTTP/2 SETTINGS");
    return NULL;
  }
  return h;
}

void idm_h2_free(idm_h2_t *h) {
  if (!h)
    return;
  if (h->session)
    nghttp2_session_del(h->session); /* frees nghttp2's state, not our stream records */
  while (h->streams_head)
    stream_free(h, h->streams_head);
  idm_pool_free(h->pool, h);
}

idm_err_t idm_h2_recv(idm_h2_t *h, const uint8_t *in, size_t len, idm_why_t *why) {
  ssize_t rc = nghttp2_session_mem_recv(h->session, in, len);
  if (rc < 0) {
    /* nghttp2 has queued a GOAWAY where the protocol allows; flush it, then close. */
    return idm_fail(why, IDM_ERR_H2, "HTTP/2: %s", nghttp2_strerror((int)rc));
  }
  return IDM_OK;
}

size_t idm_h2_send(idm_h2_t *h, uint8_t *out, size_t cap) {
  size_t n = 0;
  for (;;) {
    if (h->pending_len) {
      size_t k = h->pending_len < cap - n ? h->pending_len : cap - n;
      memcpy(out + n, h->pending, k);
      n += k;
      h->pending += k;
      h->pending_len -= k;
      if (h->pending_len)
        return n; /* out is full */
    }
    if (n == cap)
      return n;
    const uint8_t *data = NULL;
    h->sd_out = out;
    h->sd_cap = cap;
    h->sd_n = n;
    ssize_t rc = nghttp2_session_mem_send(h->session, &data);
    n = h->sd_n; /* DATA frames send_data wrote meanwhile, in order */
    h->sd_out = NULL;
    if (rc <= 0)
      return n; /* 0: nothing more; <0: fatal, want_write turns false and we close */
    h->pending = data;
    h->pending_len = (size_t)rc;
  }
}

/* Decimal of v into out (at least 21 bytes), NUL-terminated: no printf on the hot path. */
static size_t dec(char *out, size_t v) {
  char t[24];
  size_t n = 0;
  do
    t[n++] = (char)('0' + v % 10);
  while (v /= 10);
  for (size_t i = 0; i < n; i++)
    out[i] = t[n - 1 - i];
  out[n] = '\0';
  return n;
}

idm_err_t idm_h2_respond(idm_h2_t *h, int32_t stream_id, const idm_http_resp_t *resp,
                         bool is_head) {
  stream_t *s = stream_get(h, h->session, stream_id);
  if (!s || s->responded)
    return IDM_ERR_NOT_FOUND;
  is_head = is_head || s->is_head;
  char status[8], clen[24], retry[16];
  unsigned st = (unsigned)((resp->status % 1000 + 1000) % 1000);
  status[0] = (char)('0' + st / 100), status[1] = (char)('0' + st / 10 % 10);
  status[2] = (char)('0' + st % 10), status[3] = '\0';
  size_t clen_len = dec(clen, resp->body_len);
  nghttp2_nv nv[10];
  size_t n = 0;
#define NVL(nm, val, len)                                                                     \
  nv[n++] = (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), sizeof(nm) - 1, (len),           \
                         NGHTTP2_NV_FLAG_NO_COPY_NAME}
#define NV(nm, val) NVL(nm, val, strlen(val))
  NVL(":status", status, 3);
  if (resp->content_type)
    NV("content-type", resp->content_type);
  NVL("content-length", clen, clen_len);
  if (resp->no_store)
    NVL("cache-control", "no-store", 8);
  if (resp->retry_after_s) {
    snprintf(retry, sizeof retry, "%u", resp->retry_after_s);
    NV("retry-after", retry);
  }
  if (resp->allow)
    NV("allow", resp->allow);
#undef NV
#undef NVL
  char *auth = NULL;
  if (resp->token && resp->token_len) {
    nv[n++] = (nghttp2_nv){(uint8_t *)"x-idmint-token", (uint8_t *)resp->token, 14,
                           resp->token_len, NGHTTP2_NV_FLAG_NO_COPY_NAME};
    auth = h2_malloc(resp->token_len + 8, h);
    if (!auth)
      return IDM_ERR_POOL_EMPTY;
    memcpy(auth, "Bearer ", 7);
    memcpy(auth + 7, resp->token, resp->token_len);
    nv[n++] = (nghttp2_nv){(uint8_t *)"x-idmint-authorization", (uint8_t *)auth, 22,
                           resp->token_len + 7, NGHTTP2_NV_FLAG_NO_COPY_NAME};
  }
  nghttp2_data_provider prd, *prdp = NULL;
  if (!is_head && resp->body_len) {
    /* The request was dispatched: its body (maybe in body_inl) is no longer read, so the
     * response may take its place; memmove, as a handler may answer with the request body. */
    s->out = resp->body_len <= sizeof s->body_inl ? (char *)s->body_inl
                                                  : h2_malloc(resp->body_len, h);
    if (!s->out) {
      h2_free(auth, h);
      return IDM_ERR_POOL_EMPTY;
    }
    memmove(s->out, resp->body, resp->body_len);
    s->out_len = resp->body_len;
    s->out_off = 0;
    s->out_sent = 0;
    prd.source.ptr = s;
    prd.read_callback = read_body;
    prdp = &prd;
  }
  int rc = nghttp2_submit_response(h->session, stream_id, nv, n, prdp);
  h2_free(auth, h); /* nghttp2 copied the values */
  if (rc != 0)
    return IDM_ERR_POOL_EMPTY;
  s->responded = true;
  return IDM_OK;
}

void idm_h2_goaway(idm_h2_t *h) {
  if (h->goaway)
    return;
  h->goaway = true;
  nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                        NULL, 0);
}

bool idm_h2_done(const idm_h2_t *h) {
  return !h->pending_len && !nghttp2_session_want_read(h->session) &&
         !nghttp2_session_want_write(h->session);
}

bool idm_h2_want_write(const idm_h2_t *h) {
  return h->pending_len || nghttp2_session_want_write(h->session);
}

size_t idm_h2_streams(const idm_h2_t *h) { return h->streams; }
size_t idm_h2_mem(const idm_h2_t *h) { return h->mem; }
