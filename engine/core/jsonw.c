/* JSON writer. Separators are emitted lazily: every value or key first calls sep(),
 * which writes ',' unless it is the first item of its container. */
#include "core/jsonw.h"

#include <string.h>

static void put(idm_jsonw_t *w, const char *s, size_t n) {
  if (w->overflow)
    return;
  if (n > w->cap - w->len) {
    w->overflow = true;
    return;
  }
  memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void putc1(idm_jsonw_t *w, char c) { put(w, &c, 1); }

static void sep(idm_jsonw_t *w) {
  if (w->after_key) {
    w->after_key = false;
    return;
  }
  if (!w->first[w->depth])
    putc1(w, ',');
  w->first[w->depth] = false;
}

void idm_jsonw_init(idm_jsonw_t *w, char *buf, size_t cap) {
  memset(w, 0, sizeof *w);
  w->buf = buf;
  w->cap = cap;
  w->first[0] = true;
}

static void open_c(idm_jsonw_t *w, char c) {
  sep(w);
  putc1(w, c);
  if (w->depth >= IDM_JSONW_DEPTH_MAX) {
    w->misuse = true;
    return;
  }
  w->first[++w->depth] = true;
}

static void close_c(idm_jsonw_t *w, char c) {
  if (w->depth == 0 || w->after_key) {
    w->misuse = true;
    return;
  }
  w->depth--;
  putc1(w, c);
}

void idm_jsonw_obj_begin(idm_jsonw_t *w) { open_c(w, '{'); }
void idm_jsonw_obj_end(idm_jsonw_t *w) { close_c(w, '}'); }
void idm_jsonw_arr_begin(idm_jsonw_t *w) { open_c(w, '['); }
void idm_jsonw_arr_end(idm_jsonw_t *w) { close_c(w, ']'); }

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. Rejects overlongs,
 * surrogates and code points above U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
      return 0;
    if (c == 0xe0 && s[1] < 0xa0)
      return 0; /* overlong */
    if (c == 0xed && s[1] >= 0xa0)
      return 0; /* surrogate */
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
      return 0;
    if (c == 0xf0 && s[1] < 0x90)
      return 0;
    if (c == 0xf4 && s[1] >= 0x90)
      return 0;
    return 4;
  }
  return 0;
}

/* Bytes copied as they are: printable ASCII except '"' and '\\'. One table read per byte
 * keeps the common case (already-clean strings) a tight loop. */
static bool json_plain[256];
__attribute__((constructor)) static void json_plain_init(void) {
  for (int c = 0x20; c < 0x80; c++)
    json_plain[c] = c != '"' && c != '\\';
}

size_t idm_json_escape(char *out, size_t cap, const char *str, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t o = 0;
#define EMIT(p, n)                                                                             \
  do {                                                                                         \
    if ((n) > cap - o)                                                                         \
      return (size_t)-1;                                                                       \
    memcpy(out + o, (p), (n));                                                                 \
    o += (n);                                                                                  \
  } while (0)
  size_t i = 0;
  while (i < len) {
    size_t run = i;
    /* Eight bytes at a time while none of them needs escaping (SWAR: a byte < 0x20,
     * >= 0x80, '"' or '\\' sets its lane's high bit), then byte by byte. */
    while (run + 8 <= len) {
      uint64_t x;
      memcpy(&x, s + run, 8);
      const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
      uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
      uint64_t bad = ((x - ones * 0x20) | x | ((q - ones) & ~q) | ((b - ones) & ~b)) & high;
      if (bad)
        break;
      run += 8;
    }
    while (run < len && json_plain[s[run]])
      run++;
    if (run > i) {
      EMIT(s + i, run - i);
      i = run;
      continue;
    }
    unsigned char c = s[i];
    if (c == '"') {
      EMIT("\\\"", 2);
      i++;
    } else if (c == '\\') {
      EMIT("\\\\", 2);
      i++;
    } else if (c < 0x20) {
      char e[6];
      const char *p = e;
      size_t n = 2;
      switch (c) {
      case '\n': p = "\\n"; break;
      case '\r': p = "\\r"; break;
      case '\t': p = "\\t"; break;
      case '\b': p = "\\b"; break;
      case '\f': p = "\\f"; break;
      default:
        e[0] = '\\', e[1] = 'u', e[2] = '0', e[3] = '0', e[4] = hex[c >> 4], e[5] = hex[c & 15];
        n = 6;
      }
      EMIT(p, n);
      i++;
    } else {
      size_t n = utf8_seq(s + i, len - i);
      if (n == 0) {
        EMIT("\\ufffd", 6);
        i++;
      } else {
        EMIT(s + i, n);
        i += n;
      }
    }
  }
#undef EMIT
  return o;
}

static void put_string(idm_jsonw_t *w, const char *s, size_t len) {
  putc1(w, '"');
  if (w->overflow)
    return;
  size_t n = idm_json_escape(w->buf + w->len, w->cap - w->len, s, len);
  if (n == (size_t)-1) {
    w->overflow = true;
    return;
  }
  w->len += n;
  putc1(w, '"');
}

void idm_jsonw_keyn(idm_jsonw_t *w, const char *key, size_t len) {
  if (w->after_key || w->depth == 0)
    w->misuse = true;
  sep(w);
  put_string(w, key, len);
  putc1(w, ':');
  w->after_key = true;
}

void idm_jsonw_key(idm_jsonw_t *w, const char *key) { idm_jsonw_keyn(w, key, strlen(key)); }

void idm_jsonw_strn(idm_jsonw_t *w, const char *s, size_t len) {
  sep(w);
  put_string(w, s, len);
}

void idm_jsonw_str(idm_jsonw_t *w, const char *s) { idm_jsonw_strn(w, s, strlen(s)); }

/* Two digits per division: timestamps (10 digits) take five steps. */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930"
                                     "31323334353637383940414243444546474849505152535455565758596061"
                                     "62636465666768697071727374757677787980818283848586878889909192"
                                     "93949596979899";

size_t idm_fmt_uint(char *out, uint64_t v) {
  char tmp[20];
  char *p = tmp + sizeof tmp;
  while (v >= 100) {
    unsigned d = (unsigned)(v % 100);
    v /= 100;
    p -= 2;
    memcpy(p, digit_pairs + 2 * d, 2);
  }
  if (v >= 10) {
    p -= 2;
    memcpy(p, digit_pairs + 2 * v, 2);
  } else {
    *--p = (char)('0' + v);
  }
  size_t n = (size_t)(tmp + sizeof tmp - p);
  memcpy(out, p, n);
  return n;
}

void idm_jsonw_uint(idm_jsonw_t *w, uint64_t v) {
  char tmp[20];
  size_t n = idm_fmt_uint(tmp, v);
  sep(w);
  put(w, tmp, n);
}

void idm_jsonw_int(idm_jsonw_t *w, int64_t v) {
  if (v >= 0) {
    idm_jsonw_uint(w, (uint64_t)v);
    return;
  }
  sep(w);
  putc1(w, '-');
  w->after_key = true; /* suppress the separator for the digits */
  idm_jsonw_uint(w, (uint64_t)0 - (uint64_t)v);
}

void idm_jsonw_bool(idm_jsonw_t *w, bool v) {
  sep(w);
  if (v)
    put(w, "true", 4);
  else
    put(w, "false", 5);
}

void idm_jsonw_null(idm_jsonw_t *w) {
  sep(w);
  put(w, "null", 4);
}

void idm_jsonw_raw(idm_jsonw_t *w, const char *json, size_t len) {
  sep(w);
  put(w, json, len);
}

idm_err_t idm_jsonw_finish(idm_jsonw_t *w, size_t *len) {
  if (w->overflow)
    return IDM_ERR_NOSPACE;
  if (w->misuse || w->depth != 0 || w->after_key)
    return IDM_ERR_INVALID_ARG;
  if (w->len < w->cap)
    w->buf[w->len] = '\0';
  *len = w->len;
  return IDM_OK;
}

/* ---- idm_jcat_t --------------------------------------------------------------------- */

void idm_jcat_str(idm_jcat_t *w, const char *s, size_t n) {
  if (!s)
    s = "", n = 0;
  if (w->over || (size_t)(w->end - w->p) < 2) {
    w->over = true;
    return;
  }
  *w->p++ = '"';
  size_t e = idm_json_escape(w->p, (size_t)(w->end - w->p) - 1, s, n);
  if (e == (size_t)-1) {
    w->over = true;
    return;
  }
  w->p += e;
  *w->p++ = '"';
}

void idm_jcat_uint(idm_jcat_t *w, uint64_t v) {
  if (w->over || (size_t)(w->end - w->p) < 20) {
    char t[20];
    idm_jcat_raw(w, t, idm_fmt_uint(t, v));
    return;
  }
  w->p += idm_fmt_uint(w->p, v);
}

void idm_jcat_int(idm_jcat_t *w, int64_t v) {
  if (v < 0) {
    IDM_JCAT_LIT(w, "-");
    idm_jcat_uint(w, (uint64_t)0 - (uint64_t)v);
  } else {
    idm_jcat_uint(w, (uint64_t)v);
  }
}
