/* idm_jsonw_t: a JSON writer into a caller-owned buffer, for the hot path.
 *
 * It never allocates. Commas and nesting are tracked by the writer; strings are escaped
 * per RFC 8259 (quote, backslash, every control character) and invalid UTF-8 is replaced
 * by U+FFFD so the output is always valid JSON. Overflow is sticky: writes after the
 * buffer fills are dropped and idm_jsonw_finish reports IDM_ERR_NOSPACE. */
#ifndef IDM_CORE_JSONW_H
#define IDM_CORE_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "core/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct idm_jsonw {
  char *buf;                              /* borrowed; cap bytes */
  size_t cap;                             /* bytes */
  size_t len;                             /* bytes written; <= cap */
  bool overflow;                          /* a write did not fit */
  bool misuse;                            /* unbalanced or misplaced call */
  uint8_t depth;                          /* open containers */
  bool first[IDM_JSONW_DEPTH_MAX + 1];    /* next item at this depth is the first */
  bool after_key;                         /* a key was written, its value is due */
} idm_jsonw_t;

void idm_jsonw_init(idm_jsonw_t *w, char *buf, size_t cap);

void idm_jsonw_obj_begin(idm_jsonw_t *w);
void idm_jsonw_obj_end(idm_jsonw_t *w);
void idm_jsonw_arr_begin(idm_jsonw_t *w);
void idm_jsonw_arr_end(idm_jsonw_t *w);

/* An object key; the next call writes its value. */
void idm_jsonw_key(idm_jsonw_t *w, const char *key);
void idm_jsonw_keyn(idm_jsonw_t *w, const char *key, size_t len);

void idm_jsonw_str(idm_jsonw_t *w, const char *s);
void idm_jsonw_strn(idm_jsonw_t *w, const char *s, size_t len);
void idm_jsonw_int(idm_jsonw_t *w, int64_t v);
void idm_jsonw_uint(idm_jsonw_t *w, uint64_t v);
void idm_jsonw_bool(idm_jsonw_t *w, bool v);
void idm_jsonw_null(idm_jsonw_t *w);
/* Already-serialized JSON, copied verbatim (the caller vouches for its validity). */
void idm_jsonw_raw(idm_jsonw_t *w, const char *json, size_t len);

/* Escapes s[0..len) as the inside of a JSON string (no quotes) into out. Returns the
 * length, or (size_t)-1 if it does not fit. */
size_t idm_json_escape(char *out, size_t cap, const char *s, size_t len);

/* idm_jcat_t: the hot path's append-only JSON writer, for fixed layouts where the caller
 * writes separators and keys itself (constant fragments as literals). It never allocates;
 * overflow is sticky (over) and nothing is written past end. Strings are escaped like
 * idm_jsonw_str. Used where every nanosecond per credential counts (claims, audit
 * entries); idm_jsonw_t stays the general writer. */
typedef struct idm_jcat {
  char *p, *end;
  bool over;
} idm_jcat_t;

static inline void idm_jcat_init(idm_jcat_t *w, char *buf, size_t cap) {
  w->p = buf;
  w->end = buf + cap;
  w->over = false;
}
static inline void idm_jcat_raw(idm_jcat_t *w, const char *s, size_t n) {
  if (w->over || n > (size_t)(w->end - w->p)) {
    w->over = true;
    return;
  }
  memcpy(w->p, s, n);
  w->p += n;
}
#define IDM_JCAT_LIT(w, lit) idm_jcat_raw((w), (lit), sizeof(lit) - 1)
/* Ends a write into buf (the one given to idm_jcat_init): IDM_ERR_NOSPACE if it overflowed,
 * else IDM_OK with *len the bytes written. */
static inline idm_err_t idm_jcat_finish(const idm_jcat_t *w, const char *buf, size_t *len) {
  if (w->over)
    return IDM_ERR_NOSPACE;
  *len = (size_t)(w->p - buf);
  return IDM_OK;
}
/* "s" with s escaped; NULL writes "". */
void idm_jcat_str(idm_jcat_t *w, const char *s, size_t n);
void idm_jcat_uint(idm_jcat_t *w, uint64_t v);
void idm_jcat_int(idm_jcat_t *w, int64_t v);
/* Decimal digits of v into out (room for 20); returns their number. */
size_t idm_fmt_uint(char *out, uint64_t v);

/* IDM_OK with *len set (the buffer is also NUL-terminated if there is room), else
 * IDM_ERR_NOSPACE on overflow or IDM_ERR_INVALID_ARG on unbalanced containers. */
idm_err_t idm_jsonw_finish(idm_jsonw_t *w, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
