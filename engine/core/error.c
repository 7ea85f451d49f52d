/* Error names and messages, generated from the engine/errors/<area>.def tables. */
#include "core/error.h"

#include <stdio.h>

typedef struct err_entry {
  idm_err_t code;
  bool fatal;
  const char *name;
  const char *msg;
} err_entry_t;

static const err_entry_t err_table[] = {
    {IDM_OK, false, "IDM_OK", "success"},
#define X(name, code, fatal, msg) {name, (fatal) != 0, #name, msg},
#include "errors/core.def"
#include "errors/crypto.def"
#include "errors/attest.def"
#include "errors/net.def"
#include "errors/batch.def"
#undef X
};

static const err_entry_t *err_find(idm_err_t err) {
  for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
    if (err_table[i].code == err)
      return &err_table[i];
  return NULL;
}

const char *idm_err_name(idm_err_t err) {
  const err_entry_t *e = err_find(err);
  return e ? e->name : "IDM_ERR_UNKNOWN";
}

const char *idm_err_str(idm_err_t err) {
  const err_entry_t *e = err_find(err);
  return e ? e->msg : "unknown error";
}

bool idm_err_is_fatal(idm_err_t err) {
  const err_entry_t *e = err_find(err);
  return e ? e->fatal : true;
}

idm_err_t idm_fail(idm_why_t *why, idm_err_t err, const char *fmt, ...) {
  if (why) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof why->text, fmt, ap);
    va_end(ap);
  }
  return err;
}

const char *idm_why_str(const idm_why_t *why, idm_err_t err) {
  if (why && why->text[0])
    return why->text;
  return idm_err_str(err);
}

size_t idm_err_count(void) { return sizeof err_table / sizeof err_table[0]; }

idm_err_t idm_err_at(size_t i) { return i < idm_err_count() ? err_table[i].code : IDM_OK; }
