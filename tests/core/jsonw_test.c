#include <criterion/criterion.h>
#include <string.h>

#include "core/json.h"
#include "core/jsonw.h"

Test(jsonw, nested_and_separators) {
  char buf[256];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "a");
  idm_jsonw_int(&w, -42);
  idm_jsonw_key(&w, "b");
  idm_jsonw_arr_begin(&w);
  idm_jsonw_uint(&w, 0);
  idm_jsonw_bool(&w, true);
  idm_jsonw_null(&w);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_obj_end(&w);
  idm_jsonw_arr_end(&w);
  idm_jsonw_key(&w, "c");
  idm_jsonw_str(&w, "x");
  idm_jsonw_obj_end(&w);
  size_t n;
  cr_assert_eq(idm_jsonw_finish(&w, &n), IDM_OK);
  cr_assert_str_eq(buf, "{\"a\":-42,\"b\":[0,true,null,{}],\"c\":\"x\"}");
}

Test(jsonw, escapes_and_roundtrips_through_jansson) {
  const char raw[] = "q\"b\\s/\n\r\t\b\f\x01\x1f\x7f é ✓ 😀";
  char buf[256];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_obj_begin(&w);
  idm_jsonw_key(&w, "k\"");
  idm_jsonw_strn(&w, raw, sizeof raw - 1);
  idm_jsonw_obj_end(&w);
  size_t n;
  cr_assert_eq(idm_jsonw_finish(&w, &n), IDM_OK);
  json_error_t je;
  json_t *v = json_loadb(buf, n, 0, &je);
  cr_assert_not_null(v, "%s: %s", buf, je.text);
  cr_assert_str_eq(json_string_value(json_object_get(v, "k\"")), raw);
  json_decref(v);
}

Test(jsonw, invalid_utf8_replaced) {
  const char raw[] = "a\xff\xc0\x80\xed\xa0\x80z";
  char buf[128];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_strn(&w, raw, sizeof raw - 1);
  size_t n;
  cr_assert_eq(idm_jsonw_finish(&w, &n), IDM_OK);
  json_error_t je;
  json_t *v = json_loadb(buf, n, JSON_DECODE_ANY, &je);
  cr_assert_not_null(v, "%s", buf);
  json_decref(v);
}

Test(jsonw, overflow_is_sticky) {
  char buf[8];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_arr_begin(&w);
  idm_jsonw_str(&w, "too long for the buffer");
  idm_jsonw_arr_end(&w);
  size_t n;
  cr_assert_eq(idm_jsonw_finish(&w, &n), IDM_ERR_NOSPACE);
}

Test(jsonw, unbalanced_is_error) {
  char buf[64];
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf);
  idm_jsonw_obj_begin(&w);
  size_t n;
  cr_assert_eq(idm_jsonw_finish(&w, &n), IDM_ERR_INVALID_ARG);
}

Test(json, rejects_duplicates_and_trailing) {
  idm_json_init();
  idm_err_t e;
  idm_why_t why = {{0}};
  json_t *v = idm_json_parse("{\"a\":1,\"a\":2}", 13, &e, &why);
  cr_assert_null(v);
  cr_assert_eq(e, IDM_ERR_JSON_DUPKEY);
  v = idm_json_parse("{\"a\":1} x", 9, &e, &why);
  cr_assert_null(v);
  cr_assert_eq(e, IDM_ERR_JSON);
  v = idm_json_parse("{\"a\":\"x\"}", 9, &e, &why);
  cr_assert_not_null(v);
  long long i;
  cr_assert_eq(idm_json_get_int(v, "a", &i, &why), IDM_ERR_JSON_TYPE);
  cr_assert_eq(idm_json_get_int(v, "b", &i, &why), IDM_ERR_NOT_FOUND);
  json_decref(v);
}

Test(json, arena_backed_parse) {
  idm_json_init();
  idm_arena_t a;
  cr_assert_eq(idm_arena_init(&a, 1 << 16), IDM_OK);
  idm_json_use_arena(&a);
  idm_err_t e;
  json_t *v = idm_json_parse("{\"sub\":\"x\",\"n\":[1,2,3]}", 23, &e, NULL);
  cr_assert_not_null(v);
  cr_assert_gt(a.used, 0);
  json_decref(v); /* no-op for arena blocks */
  idm_json_use_arena(NULL);
  idm_arena_cleanup(&a);
}

/* The escaper's eight-bytes-at-a-time scan against a byte-by-byte reference, on random
 * strings dense in the bytes that need escaping and on long clean runs. */
static size_t escape_ref(char *out, const unsigned char *s, size_t n) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c >= 0x20 && c < 0x80) {
      out[o++] = (char)c;
    } else {
      return (size_t)-1; /* control and non-ASCII bytes: compared only through jansson below */
    }
  }
  return o;
}

Test(jsonw, escape_scan_matches_reference) {
  static const unsigned char pool[] = "abcXYZ019 -_./:\"\\~{}";
  unsigned seed = 12345;
  char out[512], ref[512];
  unsigned char s[200];
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = (size_t)(iter % 200);
    for (size_t i = 0; i < n; i++) {
      seed = seed * 1103515245u + 12345u;
      /* mostly clean runs, sometimes a byte that needs escaping or a control byte */
      unsigned r = (seed >> 16) % 100;
      s[i] = r < 90 ? pool[(seed >> 8) % 15] : r < 97 ? pool[15 + (seed >> 8) % 5] : (unsigned char)((seed >> 8) % 0x20);
    }
    size_t want = escape_ref(ref, s, n);
    size_t got = idm_json_escape(out, sizeof out, (const char *)s, n);
    cr_assert_neq(got, (size_t)-1);
    if (want != (size_t)-1) {
      cr_assert_eq(got, want, "iter %d", iter);
      cr_assert_eq(memcmp(out, ref, got), 0, "iter %d", iter);
    } else {
      /* control bytes: the escaped form must parse back to the input */
      char doc[600];
      doc[0] = '"';
      memcpy(doc + 1, out, got);
      doc[got + 1] = '"';
      json_error_t je;
      json_t *v = json_loadb(doc, got + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
      cr_assert_not_null(v, "iter %d: %s", iter, je.text);
      cr_assert_eq(json_string_length(v), n);
      cr_assert_eq(memcmp(json_string_value(v), s, n), 0, "iter %d", iter);
      json_decref(v);
    }
  }
}
