/* Structured logs: one JSON object per line on stderr, written with one write(2) so lines
 * from different threads never interleave.
 *
 *   {"ts":"2026-11-23T10:50:00.123Z","level":"info","event":"listening","addr":"..."}
 *
 * idm_log takes the level, an event name and then NULL-terminated key/value string pairs.
 * Values are escaped; a line is cut at IDM_LOG_LINE_MAX bytes. Not for the per-request
 * hot path (one line costs a syscall). */
#ifndef IDM_NET_LOG_H
#define IDM_NET_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

#define IDM_LOG_LINE_MAX 4096

void idm_log(const char *level, const char *event, ...) __attribute__((sentinel));

/* Where lines go (default 2 = stderr); for tests. */
void idm_log_set_fd(int fd);

#ifdef __cplusplus
}
#endif
#endif
