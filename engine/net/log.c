/* JSON-lines logger. Formats into a stack buffer with the JSON writer, then one write. */
#include "net/log.h"

#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#include "core/jsonw.h"

static int log_fd = 2;

void idm_log_set_fd(int fd) { log_fd = fd; }

/* The fields every line starts with; the truncation fallback repeats them. */
static void log_head(idm_jsonw_t *w, const char *ts, const char *level, const char *event) {
  idm_jsonw_obj_begin(w);
  idm_jsonw_key(w, "ts");
  idm_jsonw_str(w, ts);
  idm_jsonw_key(w, "level");
  idm_jsonw_str(w, level);
  idm_jsonw_key(w, "event");
  idm_jsonw_str(w, event);
}

void idm_log(const char *level, const char *event, ...) {
  char buf[IDM_LOG_LINE_MAX];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char t[32];
  size_t tl = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
  t[tl++] = '.';
  long ms = ts.tv_nsec / 1000000;
  t[tl++] = (char)('0' + ms / 100);
  t[tl++] = (char)('0' + ms / 10 % 10);
  t[tl++] = (char)('0' + ms % 10);
  t[tl++] = 'Z';
  t[tl] = '\0';
  idm_jsonw_t w;
  idm_jsonw_init(&w, buf, sizeof buf - 1);
  log_head(&w, t, level, event);
  va_list ap;
  va_start(ap, event);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (!k)
      break;
    const char *v = va_arg(ap, const char *);
    idm_jsonw_key(&w, k);
    if (v)
      idm_jsonw_str(&w, v);
    else
      idm_jsonw_null(&w);
  }
  va_end(ap);
  idm_jsonw_obj_end(&w);
  size_t len = 0;
  if (idm_jsonw_finish(&w, &len) != IDM_OK) {
    /* Too long: say so rather than emit broken JSON. */
    idm_jsonw_init(&w, buf, sizeof buf - 1);
    log_head(&w, t, level, event);
    idm_jsonw_key(&w, "truncated");
    idm_jsonw_bool(&w, 1);
    idm_jsonw_obj_end(&w);
    idm_jsonw_finish(&w, &len);
  }
  buf[len++] = '\n';
  ssize_t wr = write(log_fd, buf, len);
  (void)wr;
}
