#include "core/clock.h"

#include <time.h>

int64_t idm_clock_now_ns(const idm_clock_t *c) {
  if (c && c->fixed_ns)
    return c->fixed_ns;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t idm_clock_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
