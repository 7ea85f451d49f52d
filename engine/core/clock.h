/* idm_clock_t: wall-clock time that tests can control.
 *
 * Every function that compares against "now" (token expiry, policy time windows, key
 * rotation) takes a const idm_clock_t *. NULL or a zeroed clock reads the real
 * CLOCK_REALTIME; a clock with a fixed time returns exactly that, so tests are
 * deterministic. The server reads the clock once per loop turn. */
#ifndef IDM_CORE_CLOCK_H
#define IDM_CORE_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct idm_clock {
  int64_t fixed_ns; /* 0: real time; otherwise the time returned, ns since the epoch */
} idm_clock_t;

/* Nanoseconds / seconds since the Unix epoch. */
int64_t idm_clock_now_ns(const idm_clock_t *c);
static inline int64_t idm_clock_now_s(const idm_clock_t *c) { return idm_clock_now_ns(c) / 1000000000; }

/* Monotonic nanoseconds, for durations and timeouts (never faked). */
int64_t idm_clock_mono_ns(void);

/* Test control. */
static inline void idm_clock_set_s(idm_clock_t *c, int64_t s) { c->fixed_ns = s * 1000000000; }
static inline void idm_clock_advance_s(idm_clock_t *c, int64_t s) { c->fixed_ns += s * 1000000000; }

#ifdef __cplusplus
}
#endif
#endif
