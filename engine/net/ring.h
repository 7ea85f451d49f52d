/* idm_ring_t: one thread's io_uring, the features it found at start, its provided
 * receive buffers, and the one encoding of user_data.
 *
 * CONTRACT:
 *  - idm_ring_init sets the ring up and probes what the kernel offers; a missing optional
 *    feature (multishot accept/receive, buffer rings) turns its flag off so the caller
 *    degrades to single-shot operations, and idm_ring_describe says what was found in one
 *    plain line. A ring that cannot be created at all (seccomp, kernel.io_uring_disabled,
 *    ENOSYS) is IDM_ERR_URING_UNAVAILABLE with the reason.
 *  - idm_ring_sqe never returns NULL while the ring works: when the submission queue is
 *    full it submits what is queued and tries again.
 *  - -errno values from liburing are turned into idm errors here and nowhere else.
 */
#ifndef IDM_NET_RING_H
#define IDM_NET_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* liburing 2.3's headers predate some kernel flags; the values are kernel ABI. */
#ifndef IORING_CQE_F_BUFFER
#define IORING_CQE_F_BUFFER (1U << 0)
#endif
#ifndef IORING_CQE_F_MORE
#define IORING_CQE_F_MORE (1U << 1)
#endif
#ifndef IORING_CQE_BUFFER_SHIFT
#define IORING_CQE_BUFFER_SHIFT 16
#endif

/* Operations, as stored in user_data. */
typedef enum idm_op {
  IDM_OP_NONE = 0,
  IDM_OP_ACCEPT,  /* slot = listener index */
  IDM_OP_RECV,    /* slot = connection */
  IDM_OP_SEND,    /* slot = connection */
  IDM_OP_CLOSE,   /* slot = connection */
  IDM_OP_CANCEL,  /* result ignored */
  IDM_OP_WRITE,   /* slot = audit write */
  IDM_OP_FSYNC,   /* slot = audit write whose fdatasync this is */
  IDM_OP_WAKE,    /* a message from another thread's ring (IORING_OP_MSG_RING): its audit
                     write released our lines, or the log went idle or failed */
  IDM_OP_HASHED,  /* read of the executable hasher's eventfd (net/exehash.h) */
  IDM_OP__COUNT
} idm_op_t;

/* user_data = op (8 bits) | generation (24 bits) | slot (32 bits). The generation makes a
 * completion for a connection slot that has since been reused recognisable as stale. */
static inline uint64_t idm_ud_make(idm_op_t op, uint32_t slot, uint32_t gen) {
  return ((uint64_t)op << 56) | ((uint64_t)(gen & 0xffffffu) << 32) | slot;
}
static inline idm_op_t idm_ud_op(uint64_t ud) { return (idm_op_t)(ud >> 56); }
static inline uint32_t idm_ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffffu; }
static inline uint32_t idm_ud_slot(uint64_t ud) { return (uint32_t)ud; }
#define IDM_UD_GEN_MASK 0xffffffu

typedef struct idm_ring {
  struct io_uring ring;
  uint32_t features;          /* IORING_FEAT_* */
  bool multishot_accept;      /* IORING_ACCEPT_MULTISHOT (5.19+) */
  bool multishot_recv;        /* IORING_RECV_MULTISHOT (6.0+), needs buf_ring */
  bool buf_ring;              /* provided buffer ring registered */
  struct io_uring_buf_ring *br;
  uint8_t *bufs;              /* buf_count * buf_bytes */
  uint32_t buf_count;         /* power of two */
  uint32_t buf_bytes;
  uint16_t bgid;
  bool msg_ring;              /* IORING_OP_MSG_RING (5.18+): wake another thread's ring */
  bool deferred;              /* IORING_SETUP_DEFER_TASKRUN (6.1+): completions are run
                                 only when the owner waits; idm_ring_start binds the owner */
  uint64_t sq_full;           /* times the SQ was full and had to be flushed */
} idm_ring_t;

/* entries: SQ size. buf_count/buf_bytes: provided receive buffers (0 disables them).
 * allow_multishot false forces single-shot operations (the fallback path, for tests). */
idm_err_t idm_ring_init(idm_ring_t *r, unsigned entries, uint32_t buf_count, uint32_t buf_bytes,
                        bool allow_multishot, idm_why_t *why);
void idm_ring_cleanup(idm_ring_t *r);

/* Called once by the thread that will submit to and wait on the ring, before its first
 * submission: a deferred-task-run ring is set up disabled (so that another thread may set it
 * up) and is bound here to its one issuer. */
idm_err_t idm_ring_start(idm_ring_t *r, idm_why_t *why);

/* A free SQE (flushing the queue when full), or NULL if submission itself failed. */
struct io_uring_sqe *idm_ring_sqe(idm_ring_t *r);

/* The provided buffer of a completion, and giving it back to the kernel. */
static inline uint8_t *idm_ring_buf(idm_ring_t *r, uint16_t bid) {
  return r->bufs + (size_t)bid * r->buf_bytes;
}
void idm_ring_buf_recycle(idm_ring_t *r, uint16_t bid);

/* One plain line describing the features found (for the start-up log). */
void idm_ring_describe(const idm_ring_t *r, char *out, size_t cap);

/* Whether io_uring can be used at all in this process; IDM_ERR_URING_UNAVAILABLE with the
 * reason (e.g. "io_uring is disabled (kernel.io_uring_disabled=2)") when not. */
idm_err_t idm_ring_available(idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
