/* HTTP/1.1 request parser.
 *
 * One pass over the head: request line, then header lines until the empty line, each
 * checked against RFC 9110/9112 grammar (tchar names, no CTL in values, no obs-fold, CRLF
 * or bare LF line ends). The framing headers (Content-Length, Transfer-Encoding,
 * Connection, Expect, Host) are interpreted on the way; anything that could let two
 * parsers disagree about where a request ends (both CL and TE, differing CLs, a coding
 * other than "chunked") is refused, which closes request smuggling.
 *
 * A chunked body is walked twice: first without copying to learn whether it is complete
 * (and, if not, the next offset worth waiting for), then decoded into the caller's buffer.
 * So a body that trickles in costs one walk of its chunk headers per wake-up, not a copy.
 */
#include "net/http1.h"

#include <string.h>

static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
};

bool idm_h1_eq(const char *s, size_t n, const char *lower) {
  size_t m = strlen(lower);
  if (n != m)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 'A' && c <= 'Z')
      c = (unsigned char)(c + 32);
    if (c != (unsigned char)lower[i])
      return false;
  }
  return true;
}

int idm_h1_error_status(idm_err_t err) {
  switch (err) {
  case IDM_ERR_HTTP_HEADER_LARGE: return 431;
  case IDM_ERR_HTTP_BODY_LARGE: return 413;
  case IDM_ERR_HTTP_VERSION: return 505;
  case IDM_ERR_UNSUPPORTED: return 501;
  case IDM_ERR_HTTP_EXPECT: return 417;
  default: return 400;
  }
}

/* Finds the end of the line starting at p (before end). Returns the offset of the first
 * byte after the line terminator, or 0 if no terminator; *line_len excludes CR/LF. */
static size_t line_end(const uint8_t *p, size_t n, size_t *line_len) {
  const uint8_t *lf = memchr(p, '\n', n);
  if (!lf)
    return 0;
  size_t l = (size_t)(lf - p);
  *line_len = (l && p[l - 1] == '\r') ? l - 1 : l;
  return l + 1;
}

static bool has_ctl(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
      return true;
  return false;
}

/* A comma-separated list contains token (case-insensitive). */
static bool list_has(const char *v, size_t n, const char *token) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t s = i;
    while (i < n && v[i] != ',')
      i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (e > s && idm_h1_eq(v + s, e - s, token))
      return true;
  }
  return false;
}

static idm_err_t parse_request_line(idm_h1_req_t *r, const uint8_t *p, size_t n, idm_why_t *why) {
  size_t i = 0;
  while (i < n && tchar[p[i]])
    i++;
  if (i == 0 || i >= n || p[i] != ' ')
    return idm_fail(why, IDM_ERR_HTTP_PARSE, "bad method in request line");
  r->method = (const char *)p;
  r->method_len = (uint32_t)i;
  size_t t = ++i;
  while (i < n && p[i] != ' ') {
    if (p[i] <= 0x20 || p[i] >= 0x7f)
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "bad byte 0x%02x in request target", p[i]);
    i++;
  }
  if (i == t || i >= n)
    return idm_fail(why, IDM_ERR_HTTP_PARSE, "missing request target or version");
  if (p[t] != '/' && !(i - t == 1 && p[t] == '*'))
    return idm_fail(why, IDM_ERR_HTTP_PARSE, "request target is not in origin form");
  r->target = (const char *)p + t;
  r->target_len = (uint32_t)(i - t);
  i++;
  if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 6] != '.' || p[i + 5] < '0' ||
      p[i + 5] > '9' || p[i + 7] < '0' || p[i + 7] > '9')
    return idm_fail(why, IDM_ERR_HTTP_PARSE, "malformed HTTP version");
  if (p[i + 5] != '1' || (p[i + 7] != '0' && p[i + 7] != '1'))
    return idm_fail(why, IDM_ERR_HTTP_VERSION, "HTTP/%c.%c is not supported", p[i + 5], p[i + 7]);
  r->version_minor = (uint8_t)(p[i + 7] - '0');
  return IDM_OK;
}

static idm_err_t parse_head(idm_h1_req_t *r, const uint8_t *in, size_t len,
                            const idm_h1_limits_t *lim, idm_why_t *why) {
  size_t scan = len < lim->header_max ? len : lim->header_max;
  size_t off = 0, ll = 0;
  /* RFC 9112 2.2: ignore at least one empty line before the request line. */
  while (off < scan && (in[off] == '\r' || in[off] == '\n')) {
    if (in[off] == '\n' || (off + 1 < scan && in[off + 1] == '\n'))
      off += in[off] == '\n' ? 1 : 2;
    else
      break;
    if (off > 4)
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "too many empty lines before the request");
  }
  size_t adv = line_end(in + off, scan - off, &ll);
  if (!adv)
    goto incomplete;
  idm_err_t e = parse_request_line(r, in + off, ll, why);
  if (e)
    return e;
  off += adv;
  bool host = false, te = false, cl = false, conn_close = false, conn_keep = false;
  for (;;) {
    adv = line_end(in + off, scan - off, &ll);
    if (!adv)
      goto incomplete;
    const uint8_t *p = in + off;
    off += adv;
    if (ll == 0)
      break;
    if (r->header_count >= lim->headers_max)
      return idm_fail(why, IDM_ERR_HTTP_HEADER_LARGE, "more than %u header fields",
                      (unsigned)lim->headers_max);
    if (p[0] == ' ' || p[0] == '\t')
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "obsolete line folding in header %u",
                      (unsigned)r->header_count + 1);
    size_t c = 0;
    while (c < ll && tchar[p[c]])
      c++;
    if (c == 0 || c >= ll || p[c] != ':')
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "malformed header field %u",
                      (unsigned)r->header_count + 1);
    size_t vs = c + 1, ve = ll;
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
      vs++;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
      ve--;
    if (has_ctl(p + vs, ve - vs))
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "control character in header %.*s", (int)c, p);
    idm_h1_header_t *h = &r->headers[r->header_count++];
    h->name = (const char *)p;
    h->name_len = (uint32_t)c;
    h->value = (const char *)p + vs;
    h->value_len = (uint32_t)(ve - vs);
    if (idm_h1_eq(h->name, c, "content-length")) {
      if (h->value_len == 0 || h->value_len > 15)
        return idm_fail(why, IDM_ERR_HTTP_PARSE, "invalid Content-Length");
      int64_t v = 0;
      for (uint32_t k = 0; k < h->value_len; k++) {
        if (h->value[k] < '0' || h->value[k] > '9')
          return idm_fail(why, IDM_ERR_HTTP_PARSE, "invalid Content-Length");
        v = v * 10 + (h->value[k] - '0');
      }
      if (cl && v != r->content_length)
        return idm_fail(why, IDM_ERR_HTTP_PARSE, "conflicting Content-Length values");
      cl = true;
      r->content_length = v;
    } else if (idm_h1_eq(h->name, c, "transfer-encoding")) {
      if (te || !idm_h1_eq(h->value, h->value_len, "chunked"))
        return idm_fail(why, IDM_ERR_UNSUPPORTED, "transfer coding '%.*s' is not supported",
                        (int)(h->value_len > 40 ? 40 : h->value_len), h->value);
      te = true;
    } else if (idm_h1_eq(h->name, c, "host")) {
      if (host)
        return idm_fail(why, IDM_ERR_HTTP_PARSE, "more than one Host header");
      host = true;
    } else if (idm_h1_eq(h->name, c, "connection")) {
      conn_close |= list_has(h->value, h->value_len, "close");
      conn_keep |= list_has(h->value, h->value_len, "keep-alive");
    } else if (idm_h1_eq(h->name, c, "expect")) {
      if (!idm_h1_eq(h->value, h->value_len, "100-continue"))
        return idm_fail(why, IDM_ERR_HTTP_EXPECT, "Expect '%.*s' is not supported",
                        (int)(h->value_len > 40 ? 40 : h->value_len), h->value);
      r->expect_continue = true;
    }
  }
  if (te && cl)
    return idm_fail(why, IDM_ERR_HTTP_PARSE, "both Content-Length and Transfer-Encoding");
  if (te && r->version_minor == 0)
    return idm_fail(why, IDM_ERR_HTTP_PARSE, "Transfer-Encoding in an HTTP/1.0 request");
  if (r->version_minor == 1 && !host)
    return idm_fail(why, IDM_ERR_HTTP_PARSE, "HTTP/1.1 request without Host");
  r->chunked = te;
  r->keep_alive = r->version_minor == 1 ? !conn_close : (conn_keep && !conn_close);
  r->head_len = off;
  r->head_done = true;
  return IDM_OK;
incomplete:
  if (len >= lim->header_max)
    return idm_fail(why, IDM_ERR_HTTP_HEADER_LARGE, "request head exceeds %zu bytes",
                    lim->header_max);
  r->need = len + 1;
  return IDM_ERR_HTTP_INCOMPLETE;
}

/* Walks (copy == false) or decodes (copy == true) a chunked body starting at in[0].
 * Returns IDM_OK with *used (bytes of the chunked encoding, trailers included) and
 * *body_len, or INCOMPLETE with *need (bytes of in worth waiting for), or an error. */
static idm_err_t chunked(const uint8_t *in, size_t len, bool copy, uint8_t *out, size_t cap,
                         size_t body_max, size_t trailer_max, size_t *used, size_t *body_len,
                         size_t *need, idm_why_t *why) {
  size_t off = 0, total = 0;
  for (unsigned n = 0;; n++) {
    if (n > IDM_H1_CHUNKS_MAX)
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "more than %d chunks", IDM_H1_CHUNKS_MAX);
    size_t ll = 0, adv = line_end(in + off, len - off, &ll);
    /* One limit whether or not the line has ended yet: a line that would be refused once
     * complete is refused as soon as it is too long, and a prefix of an accepted line is
     * only ever incomplete (a pending '\r' is not part of the line). */
    if (adv ? ll > IDM_H1_CHUNK_LINE_MAX : len - off > IDM_H1_CHUNK_LINE_MAX + 1)
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "chunk header line exceeds %d bytes",
                      IDM_H1_CHUNK_LINE_MAX);
    if (!adv) {
      *need = len + 1;
      return IDM_ERR_HTTP_INCOMPLETE;
    }
    const uint8_t *p = in + off;
    size_t k = 0;
    uint64_t sz = 0;
    while (k < ll) {
      uint8_t c = p[k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0)
        break;
      if (sz > (body_max + 1))
        return idm_fail(why, IDM_ERR_HTTP_BODY_LARGE, "chunked body exceeds %zu bytes", body_max);
      sz = sz * 16 + (uint64_t)d;
      k++;
    }
    if (k == 0)
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "bad chunk size");
    /* Chunk extensions (";name=value") are allowed and ignored; anything else is not. */
    while (k < ll && (p[k] == ' ' || p[k] == '\t'))
      k++;
    if (k < ll && (p[k] != ';' || has_ctl(p + k, ll - k)))
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "bad chunk extension");
    off += adv;
    if (sz == 0)
      break;
    if (total + sz > body_max)
      return idm_fail(why, IDM_ERR_HTTP_BODY_LARGE, "chunked body exceeds %zu bytes", body_max);
    if (len - off < sz + 2) {
      *need = off + sz + 2;
      return IDM_ERR_HTTP_INCOMPLETE;
    }
    if (in[off + sz] == '\r' ? in[off + sz + 1] != '\n' : in[off + sz] != '\n')
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "chunk data not followed by CRLF");
    if (copy) {
      if (total + sz > cap)
        return idm_fail(why, IDM_ERR_HTTP_BODY_LARGE, "chunked body exceeds %zu bytes", cap);
      memcpy(out + total, in + off, sz);
    }
    total += sz;
    off += sz + (in[off + sz] == '\r' ? 2 : 1);
  }
  /* Trailer fields, then the empty line; their bytes count against the header limit. */
  size_t tstart = off;
  for (;;) {
    size_t ll = 0, adv = line_end(in + off, len - off, &ll);
    if (!adv) {
      /* A lone CR may be the start of the final empty line, which a complete section does
       * not count either: counting it would refuse a prefix of an accepted request. */
      size_t pending = len - off == 1 && in[off] == '\r' ? 0 : len - off;
      if (off - tstart + pending > trailer_max)
        return idm_fail(why, IDM_ERR_HTTP_HEADER_LARGE, "trailer fields exceed %zu bytes",
                        trailer_max);
      *need = len + 1;
      return IDM_ERR_HTTP_INCOMPLETE;
    }
    const uint8_t *p = in + off;
    off += adv;
    if (ll == 0)
      break;
    if (off - tstart > trailer_max)
      return idm_fail(why, IDM_ERR_HTTP_HEADER_LARGE, "trailer fields exceed %zu bytes",
                      trailer_max);
    size_t c = 0;
    while (c < ll && tchar[p[c]])
      c++;
    if (c == 0 || c >= ll || p[c] != ':' || has_ctl(p + c + 1, ll - c - 1))
      return idm_fail(why, IDM_ERR_HTTP_PARSE, "malformed trailer field");
  }
  *used = off;
  *body_len = total;
  return IDM_OK;
}

idm_err_t idm_h1_parse(idm_h1_req_t *req, uint8_t *body_buf, size_t body_cap,
                       const uint8_t *in, size_t len, const idm_h1_limits_t *lim,
                       idm_why_t *why) {
  memset(req, 0, offsetof(idm_h1_req_t, headers));
  req->header_count = 0;
  req->head_done = false;
  req->head_len = 0;
  req->content_length = -1;
  req->chunked = req->keep_alive = req->expect_continue = false;
  req->body = NULL;
  req->body_len = 0;
  req->consumed = 0;
  req->need = 0;
  idm_h1_limits_t l = *lim;
  if (l.headers_max == 0 || l.headers_max > IDM_NET_HEADERS_MAX)
    l.headers_max = IDM_NET_HEADERS_MAX;
  idm_err_t e = parse_head(req, in, len, &l, why);
  if (e)
    return e;
  size_t h = req->head_len;
  if (req->content_length >= 0) {
    if ((uint64_t)req->content_length > l.body_max)
      return idm_fail(why, IDM_ERR_HTTP_BODY_LARGE,
                      "Content-Length %lld exceeds the %zu-byte body limit",
                      (long long)req->content_length, l.body_max);
    size_t cl = (size_t)req->content_length;
    if (len - h < cl) {
      req->need = h + cl;
      return IDM_ERR_HTTP_INCOMPLETE;
    }
    req->body = cl ? in + h : NULL;
    req->body_len = cl;
    req->consumed = h + cl;
    return IDM_OK;
  }
  if (!req->chunked) {
    req->consumed = h;
    return IDM_OK;
  }
  size_t used = 0, blen = 0, need = 0;
  e = chunked(in + h, len - h, false, NULL, 0, l.body_max, l.header_max, &used, &blen, &need, why);
  if (e == IDM_ERR_HTTP_INCOMPLETE) {
    req->need = h + need;
    return e;
  }
  if (e)
    return e;
  if (blen > body_cap)
    return idm_fail(why, IDM_ERR_HTTP_BODY_LARGE, "chunked body exceeds %zu bytes", body_cap);
  e = chunked(in + h, len - h, true, body_buf, body_cap, l.body_max, l.header_max, &used, &blen,
              &need, why);
  if (e)
    return e;
  req->body = blen ? body_buf : NULL;
  req->body_len = blen;
  req->consumed = h + used;
  return IDM_OK;
}
