/* jansson glue. The arena allocator stores each block's size in a 16-byte header so
 * that jansson's realloc-free usage (it only mallocs and frees) works; frees of arena
 * blocks are no-ops because the arena is reset as a whole. Blocks from malloc and blocks
 * from an arena are told apart by a tag in the same header. */
#include "core/json.h"

#include <stdlib.h>
#include <string.h>

#include "core/limits.h"

static _Thread_local idm_arena_t *tl_arena;

#define HDR 16
enum { TAG_HEAP = 0x48, TAG_ARENA = 0x41 };

static void *json_alloc(size_t n) {
  uint8_t *p;
  uint8_t tag;
  if (tl_arena) {
    p = idm_arena_alloc(tl_arena, n + HDR, 16);
    tag = TAG_ARENA;
  } else {
    p = malloc(n + HDR);
    tag = TAG_HEAP;
  }
  if (!p)
    return NULL;
  p[0] = tag;
  return p + HDR;
}

static void json_free(void *ptr) {
  if (!ptr)
    return;
  uint8_t *p = (uint8_t *)ptr - HDR;
  if (p[0] == TAG_HEAP)
    free(p);
}

void idm_json_init(void) { json_set_alloc_funcs(json_alloc, json_free); }

void idm_json_dumps_free(char *s) {
  if (!s)
    return;
  json_malloc_t m;
  json_free_t f;
  json_get_alloc_funcs(&m, &f);
  f(s);
}

idm_arena_t *idm_json_use_arena(idm_arena_t *a) {
  idm_arena_t *old = tl_arena;
  tl_arena = a;
  return old;
}

json_t *idm_json_parse(const char *buf, size_t len, idm_err_t *err, idm_why_t *why) {
  idm_err_t e = IDM_OK;
  json_t *v = NULL;
  if (len > IDM_JSON_INPUT_MAX_BYTES) {
    e = idm_fail(why, IDM_ERR_TOO_LARGE, "JSON document of %zu bytes exceeds the %d-byte limit",
                 len, IDM_JSON_INPUT_MAX_BYTES);
    goto out;
  }
  json_error_t je;
  v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
  if (!v) {
    if (json_error_code(&je) == json_error_duplicate_key)
      e = idm_fail(why, IDM_ERR_JSON_DUPKEY, "duplicate key in JSON at offset %d: %s",
                   je.position, je.text);
    else
      e = idm_fail(why, IDM_ERR_JSON, "invalid JSON at offset %d: %s", je.position, je.text);
  }
out:
  if (err)
    *err = e;
  return v;
}

idm_err_t idm_json_get_str(const json_t *obj, const char *key, const char **out,
                           size_t *out_len, idm_why_t *why) {
  json_t *v = json_object_get(obj, key);
  if (!v)
    return idm_fail(why, IDM_ERR_NOT_FOUND, "\"%s\" is missing", key);
  if (!json_is_string(v))
    return idm_fail(why, IDM_ERR_JSON_TYPE, "\"%s\" must be a string", key);
  *out = json_string_value(v);
  if (out_len)
    *out_len = json_string_length(v);
  return IDM_OK;
}

idm_err_t idm_json_get_int(const json_t *obj, const char *key, long long *out, idm_why_t *why) {
  json_t *v = json_object_get(obj, key);
  if (!v)
    return idm_fail(why, IDM_ERR_NOT_FOUND, "\"%s\" is missing", key);
  if (!json_is_integer(v))
    return idm_fail(why, IDM_ERR_JSON_TYPE, "\"%s\" must be an integer", key);
  *out = json_integer_value(v);
  return IDM_OK;
}
