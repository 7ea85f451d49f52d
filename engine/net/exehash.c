/* exehash: see exehash.h. */
#include "net/exehash.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "attest/attest.h"

typedef struct job {
  int fd;
  uint32_t slot, gen;
} job_t;

struct idm_exehash {
  pthread_t thr;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool stop;
  int efd;
  uint32_t cap, outstanding;    /* submitted and not yet taken */
  job_t *jobs;                  /* ring of queued jobs */
  uint32_t jhead, jn;
  idm_exehash_done_t *done;     /* ring of finished jobs */
  uint32_t dhead, dn;
};

static void *hasher_main(void *arg) {
  idm_exehash_t *h = arg;
  pthread_mutex_lock(&h->mu);
  for (;;) {
    while (!h->stop && h->jn == 0)
      pthread_cond_wait(&h->cv, &h->mu);
    if (h->stop)
      break;
    job_t j = h->jobs[h->jhead];
    h->jhead = (h->jhead + 1) % h->cap;
    h->jn--;
    pthread_mutex_unlock(&h->mu);

    idm_exehash_done_t d;
    memset(&d, 0, sizeof d);
    d.slot = j.slot;
    d.gen = j.gen;
    idm_why_t why = {{0}};
    d.err = idm_attest_unix_exe_hash(j.fd, &why);
    if (d.err)
      snprintf(d.why, sizeof d.why, "%s", idm_why_str(&why, d.err));
    close(j.fd);

    pthread_mutex_lock(&h->mu);
    h->done[(h->dhead + h->dn) % h->cap] = d; /* room: dn + jn <= outstanding <= cap */
    h->dn++;
    uint64_t one = 1;
    ssize_t r = write(h->efd, &one, sizeof one); /* cannot fail short of overflow */
    (void)r;
  }
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

idm_exehash_t *idm_exehash_new(uint32_t cap, idm_why_t *why) {
  idm_exehash_t *h = calloc(1, sizeof *h);
  if (!h || cap == 0) {
    free(h);
    idm_fail(why, IDM_ERR_NOMEM, "out of memory for the executable hasher");
    return NULL;
  }
  h->cap = cap;
  h->efd = -1;
  h->jobs = calloc(cap, sizeof *h->jobs);
  h->done = calloc(cap, sizeof *h->done);
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->cv, NULL);
  h->efd = eventfd(0, EFD_CLOEXEC);
  if (!h->jobs || !h->done || h->efd < 0) {
    idm_fail(why, IDM_ERR_NOMEM, "executable hasher: %s", h->efd < 0 ? strerror(errno) : "out of memory");
    idm_exehash_free(h);
    return NULL;
  }
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(&h->thr, NULL, hasher_main, h);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    idm_fail(why, IDM_ERR_NOMEM, "executable hasher thread: %s", strerror(e));
    idm_exehash_free(h);
    return NULL;
  }
  h->started = true;
  return h;
}

int idm_exehash_efd(const idm_exehash_t *h) { return h->efd; }

bool idm_exehash_submit(idm_exehash_t *h, int exe_fd, uint32_t slot, uint32_t gen) {
  pthread_mutex_lock(&h->mu);
  bool ok = h->outstanding < h->cap;
  if (ok) {
    h->jobs[(h->jhead + h->jn) % h->cap] = (job_t){exe_fd, slot, gen};
    h->jn++;
    h->outstanding++;
    pthread_cond_signal(&h->cv);
  }
  pthread_mutex_unlock(&h->mu);
  return ok;
}

size_t idm_exehash_take(idm_exehash_t *h, idm_exehash_done_t *out, size_t cap) {
  pthread_mutex_lock(&h->mu);
  size_t n = 0;
  while (n < cap && h->dn) {
    out[n++] = h->done[h->dhead];
    h->dhead = (h->dhead + 1) % h->cap;
    h->dn--;
    h->outstanding--;
  }
  pthread_mutex_unlock(&h->mu);
  return n;
}

void idm_exehash_free(idm_exehash_t *h) {
  if (!h)
    return;
  if (h->started) {
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thr, NULL); /* a hash under way finishes first (bounded by the size cap) */
  }
  for (uint32_t i = 0; i < h->jn; i++)
    close(h->jobs[(h->jhead + i) % h->cap].fd);
  if (h->efd >= 0)
    close(h->efd);
  pthread_mutex_destroy(&h->mu);
  pthread_cond_destroy(&h->cv);
  free(h->jobs);
  free(h->done);
  free(h);
}
