/* One io_uring per thread.
 *
 * Feature detection happens once, here: IORING_FEAT_* from the setup parameters, opcode
 * support from io_uring_get_probe_ring, and the buffer ring by registering it (liburing
 * 2.3 has no io_uring_setup_buf_ring, so the ring memory is allocated page-aligned and
 * registered by hand with io_uring_register_buf_ring). Multishot receive needs 6.0 and
 * multishot accept 5.19; the probe cannot see flags, so the kernel version decides and a
 * -EINVAL on first use still falls back (handled by the server loop).
 */
#include "net/ring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static bool kernel_at_least(int maj, int min) {
  struct utsname u;
  if (uname(&u) != 0)
    return false;
  int a = 0, b = 0;
  if (sscanf(u.release, "%d.%d", &a, &b) != 2)
    return false;
  return a > maj || (a == maj && b >= min);
}

idm_err_t idm_ring_available(idm_why_t *why) {
  FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
  if (f) {
    int v = 0;
    if (fscanf(f, "%d", &v) == 1 && v == 2) {
      fclose(f);
      return idm_fail(why, IDM_ERR_URING_UNAVAILABLE,
                      "io_uring is disabled on this host (kernel.io_uring_disabled=2)");
    }
    fclose(f);
  }
  struct io_uring ring;
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) {
    if (rc == -EPERM)
      return idm_fail(why, IDM_ERR_URING_UNAVAILABLE,
                      "io_uring is not permitted here (seccomp filter or "
                      "kernel.io_uring_disabled): %s", strerror(-rc));
    return idm_fail(why, IDM_ERR_URING_UNAVAILABLE, "io_uring cannot be set up: %s",
                    strerror(-rc));
  }
  io_uring_queue_exit(&ring);
  return IDM_OK;
}

idm_err_t idm_ring_init(idm_ring_t *r, unsigned entries, uint32_t buf_count, uint32_t buf_bytes,
                        bool allow_multishot, idm_why_t *why) {
  memset(r, 0, sizeof *r);
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4;
#ifdef IORING_SETUP_SUBMIT_ALL
  p.flags |= IORING_SETUP_SUBMIT_ALL;
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
  p.flags |= IORING_SETUP_COOP_TASKRUN;
#endif
#if defined(IORING_SETUP_DEFER_TASKRUN) && defined(IORING_SETUP_SINGLE_ISSUER)
  /* One thread submits and waits: completions (receive, send, audit write) are then run in
   * a batch when it waits, not by interrupting its turn. Set up disabled, so that the thread
   * that will use the ring becomes its issuer (idm_ring_start). */
  if (kernel_at_least(6, 1))
    p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
#endif
  int rc = io_uring_queue_init_params(entries, &r->ring, &p);
  if (rc == -EINVAL) { /* older kernel: retry without the optional setup flags */
    memset(&p, 0, sizeof p);
    rc = io_uring_queue_init_params(entries, &r->ring, &p);
  }
  if (rc < 0)
    return idm_fail(why, rc == -EPERM || rc == -ENOSYS ? IDM_ERR_URING_UNAVAILABLE : IDM_ERR_URING,
                    "io_uring_queue_init: %s", strerror(-rc));
  r->features = p.features;
  r->deferred = (p.flags & IORING_SETUP_R_DISABLED) != 0;
  struct io_uring_probe *probe = io_uring_get_probe_ring(&r->ring);
  bool have_recv = probe && io_uring_opcode_supported(probe, IORING_OP_RECV);
  bool have_send = probe && io_uring_opcode_supported(probe, IORING_OP_SEND);
  bool have_accept = probe && io_uring_opcode_supported(probe, IORING_OP_ACCEPT);
  bool have_close = probe && io_uring_opcode_supported(probe, IORING_OP_CLOSE);
  /* off with the forced single-shot fallback too, so that its test also runs the poll */
  r->msg_ring = allow_multishot && probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
  if (probe)
    io_uring_free_probe(probe);
  if (!have_recv || !have_send || !have_accept || !have_close) {
    io_uring_queue_exit(&r->ring);
    return idm_fail(why, IDM_ERR_URING_UNAVAILABLE,
                    "this kernel's io_uring lacks accept/recv/send/close (needs Linux 5.6+)");
  }
  if (!(r->features & IORING_FEAT_NODROP) || !(r->features & IORING_FEAT_EXT_ARG)) {
    io_uring_queue_exit(&r->ring);
    return idm_fail(why, IDM_ERR_URING_UNAVAILABLE,
                    "this kernel's io_uring lacks FEAT_NODROP/FEAT_EXT_ARG (needs Linux 5.11+)");
  }
  r->multishot_accept = allow_multishot && kernel_at_least(5, 19);
  if (buf_count && buf_bytes && allow_multishot && kernel_at_least(5, 19)) {
    size_t ring_bytes = (size_t)buf_count * sizeof(struct io_uring_buf);
    void *mem = NULL;
    if (posix_memalign(&mem, (size_t)sysconf(_SC_PAGESIZE), ring_bytes) == 0) {
      r->bufs = malloc((size_t)buf_count * buf_bytes);
      struct io_uring_buf_reg reg;
      memset(&reg, 0, sizeof reg);
      reg.ring_addr = (unsigned long)mem;
      reg.ring_entries = buf_count;
      reg.bgid = 0;
      if (r->bufs && io_uring_register_buf_ring(&r->ring, &reg, 0) == 0) {
        r->br = mem;
        r->buf_count = buf_count;
        r->buf_bytes = buf_bytes;
        r->bgid = 0;
        io_uring_buf_ring_init(r->br);
        int mask = io_uring_buf_ring_mask(buf_count);
        for (uint32_t i = 0; i < buf_count; i++)
          io_uring_buf_ring_add(r->br, idm_ring_buf(r, (uint16_t)i), buf_bytes, (uint16_t)i, mask,
                                (int)i);
        io_uring_buf_ring_advance(r->br, (int)buf_count);
        r->buf_ring = true;
      } else {
        free(mem);
        free(r->bufs);
        r->bufs = NULL;
      }
    }
  }
  r->multishot_recv = r->buf_ring && kernel_at_least(6, 0);
  return IDM_OK;
}

idm_err_t idm_ring_start(idm_ring_t *r, idm_why_t *why) {
  if (!r->deferred)
    return IDM_OK;
  /* liburing 2.3 declares io_uring_enable_rings but does not export it */
  if (syscall(__NR_io_uring_register, r->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
    return idm_fail(why, IDM_ERR_URING, "io_uring enable rings: %s", strerror(errno));
  return IDM_OK;
}

void idm_ring_cleanup(idm_ring_t *r) {
  if (r->buf_ring)
    io_uring_unregister_buf_ring(&r->ring, r->bgid);
  io_uring_queue_exit(&r->ring);
  free(r->br);
  free(r->bufs);
  memset(r, 0, sizeof *r);
}

struct io_uring_sqe *idm_ring_sqe(idm_ring_t *r) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
  while (!sqe) {
    r->sq_full++;
    int rc = io_uring_submit(&r->ring);
    if (rc < 0 && rc != -EAGAIN && rc != -EBUSY && rc != -EINTR)
      return NULL;
    sqe = io_uring_get_sqe(&r->ring);
  }
  return sqe;
}

void idm_ring_buf_recycle(idm_ring_t *r, uint16_t bid) {
  io_uring_buf_ring_add(r->br, idm_ring_buf(r, bid), r->buf_bytes, bid,
                        io_uring_buf_ring_mask(r->buf_count), 0);
  io_uring_buf_ring_advance(r->br, 1);
}

void idm_ring_describe(const idm_ring_t *r, char *out, size_t cap) {
  snprintf(out, cap,
           "io_uring: multishot accept %s, multishot receive %s, provided buffer ring %s "
           "(%u x %u bytes), fast poll %s, deferred task run %s, ring messages %s",
           r->multishot_accept ? "yes" : "no (single-shot accept)",
           r->multishot_recv ? "yes" : "no (single-shot receive)", r->buf_ring ? "yes" : "no",
           r->buf_count, r->buf_bytes, (r->features & IORING_FEAT_FAST_POLL) ? "yes" : "no", r->deferred ? "yes" : "no",
           r->msg_ring ? "yes" : "no (1 ms poll for audit releases)");
}
