/* Parsing untrusted JSON with jansson: duplicate keys rejected, size bounded, and, when a
 * thread has set one, allocations served from its arena so that the request path does
 * not call malloc.
 *
 * jansson's allocator hooks are process-wide; idm_json_init installs hooks that consult
 * a thread-local arena (set with idm_json_use_arena) and fall back to malloc when none
 * is set. Memory from the arena is released by resetting the arena, not by json_decref,
 * so a json_t parsed with an arena must not outlive the arena's next reset. */
#ifndef IDM_CORE_JSON_H
#define IDM_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Installs the allocator hooks. Call once at start, before any thread parses JSON. */
void idm_json_init(void);

/* Makes this thread's jansson allocations come from a (NULL: back to malloc). Returns
 * the previous arena so callers can restore it. */
idm_arena_t *idm_json_use_arena(idm_arena_t *a);

/* Parses exactly buf[0..len) as one JSON value. Rejects duplicate object keys, inputs
 * over IDM_JSON_INPUT_MAX_BYTES, NUL bytes and trailing data, each with a reason
 * naming the position. The caller owns the result (json_decref, or arena reset). */
json_t *idm_json_parse(const char *buf, size_t len, idm_err_t *err, idm_why_t *why);

/* Releases a string returned by json_dumps (or any other block jansson allocated for the
 * caller) through jansson's allocator. Never pass such a string to free(): with the
 * hooks of idm_json_init installed every jansson block carries a header, so free() is a
 * bad free (ASan aborts; without ASan the heap is corrupted). Works whether or not the
 * hooks are installed, and for blocks served from a thread's arena it is a no-op (the
 * arena reset releases them). NULL is ignored. */
void idm_json_dumps_free(char *s);

/* Typed getters for object members: return IDM_ERR_NOT_FOUND if absent,
 * IDM_ERR_JSON_TYPE (with the key named in *why) if present with another type. */
idm_err_t idm_json_get_str(const json_t *obj, const char *key, const char **out,
                           size_t *out_len, idm_why_t *why);
idm_err_t idm_json_get_int(const json_t *obj, const char *key, long long *out, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
