/* The server: thread per core, one io_uring per thread, shared-nothing.
 *
 * Each worker owns a ring, one SO_REUSEPORT listener per address, a slot array of
 * connections with their input and output buffers (one region reserved at start, pages
 * touched on use), a pool for HTTP/2 state, a router, an exchange context and metrics.
 * A loop turn is:
 *
 *   wait (≤ tick) ─► reap CQEs (accept, recv, send; bounded) ─► parse and answer every
 *   connection with new input (bounded per connection) ─► one coalesced send per
 *   connection with output ─► timers every tick
 *
 * so every response produced in a turn for a connection leaves in one send(2) — what
 * lets h2o serve ~30 responses per write where nginx pays two writes per response.
 *
 * A turn's work is bounded (turn_spent: IDM_NET_TURN_SIGNS jwt-profile signatures,
 * IDM_NET_TURN_REQS requests, scaled up while the thread stays saturated): every response
 * of a turn waits for the turn's seal, so a turn that read 500 jwt exchanges would hold
 * the first answer for 500 signatures. A turn that reaches its budget stops reading (HTTP/2
 * input is fed to nghttp2 in IDM_NET_H2_RECV_CHUNK pieces so that it stops close to it);
 * the unread input and the connections not reached are carried, first, into the next turn,
 * which starts without waiting.
 *
 * Adaptive batching and audit group commit. A gathered batch is sealed at the end of a
 * turn when the turn was saturated, for a lone client, when the seal gap has passed, or —
 * when the audit I/O is idle — after the gap scaled down by how busy the thread has been
 * (seal_due): an idle thread seals at once, a busy one lets batches grow, since each seal
 * costs a root signature and a share of an audit write. Sealed lines of every thread go
 * into the log's one offset-ordered queue; one thread at a time is the log's writer and
 * writes every line queued at the lowest unwritten offset as one pwritev (write_kick),
 * strictly in file order, so a crash leaves no hole: with fsync batch through its ring
 * with RWF_DSYNC (write and sync in one trip through io_uring's worker, no fdatasync),
 * otherwise inline. Its completion releases the answers of its own lines at once, before
 * the turn reads more, and wakes each other thread whose lines it carried with a message
 * on that thread's ring (IORING_OP_MSG_RING; a 1 ms poll where the kernel lacks it).
 *
 * user_data carries (op, slot, generation) — see ring.h. A connection slot is reused only
 * when no operation on it is in flight (ops == 0), and its generation changes on reuse, so
 * a late completion can never touch the next connection. Closing is shutdown(2) + close:
 * the shutdown ends any armed receive, whose final completion then frees the slot.
 *
 * Receive uses multishot recv with a provided buffer ring where the kernel has it (data is
 * copied into the connection's input buffer and the buffer recycled at once), else a
 * single-shot recv straight into the input buffer. Accept is multishot where available.
 *
 * server.unix_socket: worker 0 alone owns the AF_UNIX listener (one more entry in its
 * listener array, served by the same accept/recv/send machinery and protocols). One owner
 * because SO_REUSEPORT does not spread AF_UNIX sockets across listeners, because the
 * callers are local and few, and because attesting a peer reads and hashes its executable:
 * keeping that on one thread bounds what local clients can cost the TCP workers. Each
 * accepted unix connection is identified once (idm_attest_unix_peer) into a peer record
 * from a pool of IDM_NET_UNIX_CONNS_MAX reserved at start (its arena holds the identity's
 * strings for the connection's life); a full pool refuses the connection with 503. A peer
 * that cannot be identified keeps its connection: its exchanges without a subject_token
 * answer 400 invalid_grant with the reason. After a reload the identity is taken again
 * (its trust block belonged to the old configuration) before the next request uses it.
 */
#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "attest/attest.h"
#include "batch/audit.h"
#include "batch/batch.h"
#include "core/limits.h"
#include "net/exchange.h"
#include "net/h2.h"
#include "net/http1.h"
#include "net/log.h"
#include "net/metrics.h"
#include "net/pool.h"
#include "net/exehash.h"
#include "net/ring.h"
#include "net/router.h"
#include "net/snapshot.h"

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN 24

enum { C_FREE = 0, C_OPEN, C_CLOSING };
/* Received buffers a connection may hold back while its input buffer is full (the
 * multishot receive is being cancelled); more means the peer ignores back-pressure. */
#define PARKED_MAX 48 /* > the kernel's multishot retries per wake-up (32) */
enum { P_UNKNOWN = 0, P_H1, P_H2 };

typedef struct worker worker_t;

/* The attested identity of one unix-socket connection (see the design note above). */
typedef struct unix_peer {
  idm_arena_t arena;           /* IDM_NET_UNIX_PEER_BYTES: the identity's strings */
  idm_identity_t id;
  bool ok;                     /* id is valid; else why says what failed */
  bool hashing;                /* its executable is being hashed (exehash): input waits */
  uint8_t hash_tries;          /* hand-offs to exehash for this identification */
  uint64_t gen;                /* snapshot generation id was taken under */
  char why[IDM_WHY_LEN];
  uint32_t next_free;
} unix_peer_t;

typedef struct conn {
  worker_t *w;
  uint32_t slot, gen;
  int fd;
  uint8_t state, proto, ops;   /* ops: operations in flight (recv, send) */
  bool recv_armed, send_busy, want_close, peer_eof, in_ready, in_dirty, h1_paused;
  bool continue_sent, cancel_sent;
  bool h1_wait;                /* a deferred answer is due before the next request */
  bool in_carry;
  uint8_t nparked;             /* provided buffers held back while the input is full */
  uint16_t parked_bid[PARKED_MAX], parked_len[PARKED_MAX];
  uint8_t *in;                 /* IDM_NET_CONN_IN_BYTES */
  uint32_t in_off, in_len;     /* unread bytes are in[in_off..in_len) */
  size_t in_need;              /* h1: parse again once this many bytes are unread */
  uint8_t *out;                /* IDM_NET_CONN_OUT_BYTES */
  uint32_t out_len;
  idm_h2_t *h2;
  int64_t active_ns;           /* last progress (bytes in or out) */
  int64_t req_start_ns;        /* first byte of an incomplete request; 0: none */
  uint8_t peer[16];
  uint8_t fam;
  unix_peer_t *up;             /* accepted on unix_socket: its peer record, else NULL */
#if IDM_NET_STAGES
  int64_t rx_ns;               /* reaping of the receive that brought the oldest unread byte */
#endif
} conn_t;

/* An exchange waiting for its batch: where its answer goes, and the result itself (the
 * batcher writes the token into res.token). */
typedef struct pending {
  uint32_t conn_slot, conn_gen;
  int32_t stream_id;           /* HTTP/2 stream; 0 for HTTP/1.1 */
  bool authz, head, close_after, keep_alive_10, used;
  int64_t start_ns;
#if IDM_NET_STAGES
  int64_t parse_ns;
#endif
  uint32_t next_free;
  idm_exchange_res_t res;
} pending_t;

/* fsync interval: the thread's fdatasync in flight. */
typedef struct audit_sync {
  bool busy;
  uint64_t upto;               /* the written watermark it covers */
#if IDM_NET_STAGES
  int64_t sub_ns;
#endif
} audit_sync_t;


/* Stage timing (opt-in, compile time: -DIDM_NET_STAGES=1; off by default and then no code
 * at all). Where a response's time goes between its request being read and its release:
 * per request the wait from the receive to the parse (carry-over), the whole server time
 * (parse to release) and the release lag (from the reaping of the completion that released
 * it to its on_done); per batch the gather time (oldest parse to seal) and the seal's own
 * CPU; per audit write and fdatasync the time in the ring; per turn its length. Log-bucketed
 * (quarter octaves, ≤ 19 % high), reported per thread in one log line at exit
 * ("net_stages"). Measuring only: docs/PERFORMANCE.md, "Adaptive batching". */
#ifndef IDM_NET_STAGES
#define IDM_NET_STAGES 0
#endif
enum { ST_READ, ST_GATHER, ST_SEAL, ST_WRITE, ST_SYNC, ST_RELEASE, ST_TOTAL, ST_TURN, ST_N };
#if IDM_NET_STAGES
static const char *const ST_NAME[ST_N] = {"read_wait", "gather", "seal_cpu", "write", "sync",
                                          "release_lag", "server_total", "turn"};
#define ST_BUCKETS 128
typedef struct stages {
  uint64_t n[ST_N], b[ST_N][ST_BUCKETS];
} stages_t;
static unsigned st_bucket(int64_t ns) {
  uint64_t v = ns > 64 ? (uint64_t)ns : 64; /* 64 ns resolution floor */
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  unsigned q = (unsigned)((v >> (e - 2)) & 3u);
  unsigned i = (e - 6) * 4 + q;
  return i < ST_BUCKETS ? i : ST_BUCKETS - 1;
}
static double st_upper_us(unsigned i) { /* upper bound of bucket i, µs */
  unsigned e = i / 4 + 6, q = i % 4;
  return (double)((1ull << e) + (uint64_t)(q + 1) * (1ull << (e - 2))) / 1000.0;
}
#define ST_NOW() idm_clock_mono_ns()
#define ST_ADD(w, k, ns) ((void)((w)->st.n[k]++), (void)((w)->st.b[k][st_bucket(ns)]++))
#else
#define ST_NOW() 0
#define ST_ADD(w, st, ns) ((void)0)
#endif

struct worker {
  unsigned index;
  pthread_t tid;
  idm_ring_t ring;
  int lfd[IDM_NET_LISTEN_MAX + 1];  /* + the unix listener (worker 0) */
  unsigned nl;
  bool accept_armed[IDM_NET_LISTEN_MAX + 1];
  int unix_li;                 /* index of the unix listener in lfd, or -1 */
  unix_peer_t *peers;          /* IDM_NET_UNIX_CONNS_MAX records (unix listener owner) */
  uint32_t peer_free;          /* free list head; UINT32_MAX: none */
  idm_exehash_t *exehash;      /* hashes peers' executables off the loop (unix owner) */
  uint64_t exehash_buf;        /* its eventfd's counter, read through the ring */
  bool exehash_armed;
  bool exehash_broken;         /* its eventfd read failed: hash in the loop (on_hashed) */
  conn_t *conns;
  uint32_t conns_max, nopen;
  uint32_t *free_slots, nfree;
  uint32_t *ready, nready;
  uint32_t *dirty, ndirty;
  uint32_t *carry, ncarry;     /* connections with work left for the next turn */
  uint8_t *bufmem;
  size_t bufmem_len;
  idm_pool_t pool;
  idm_metrics_t metrics;
  idm_router_t router;
  idm_exchange_ctx_t ex;
  char *scratch;
  uint8_t *body_buf;
  idm_h1_req_t h1req;
  idm_batch_t *batch;
  pending_t *pend;
  uint32_t pend_free, npend;   /* free list head (UINT32_MAX: empty), in use */
  audit_sync_t fs;             /* fsync interval: our fdatasync */
  struct {                     /* this thread is the log's writer (idm_audit_take) */
    bool busy;
    unsigned iov0;             /* g.iov[iov0..n): what is left to write (short writes) */
    idm_audit_group_t g;       /* g.off advances over short writes; g.end stays */
#if IDM_NET_STAGES
    int64_t sub_ns;
#endif
  } grp;
  _Atomic bool wake_me;        /* a batch lingers until the audit I/O is idle: the writer
                                  wakes us when its group completes */
  const idm_snapshot_t *snap;
  _Atomic uint64_t seen_gen;
  int64_t now_ns, next_tick_ns;
  uint32_t turn_reqs;          /* requests routed this turn (see turn_spent) */
  uint32_t audit_cqes;         /* audit completions reaped this turn */
  bool audit_inline_done;      /* an inline audit write completed (audit_write_inline) */
  uint32_t turn_scale;         /* 1..IDM_NET_TURN_SCALE_MAX: the turn budget's multiple */
  uint32_t util_pm;            /* utilization, ‰ (EWMA of IDM_NET_UTIL_WINDOW_US windows) */
  int64_t util_t0, idle_ns;    /* the current window: start, time spent waiting */
  unsigned seal_reason;        /* idm_seal_reason_t of the next seal (metrics) */
  int64_t last_seal_ns;        /* when the last batch was sealed, and its entries */
  size_t last_seal_entries;
  bool draining;
  int64_t drain_deadline_ns;
  char date[40];
  int64_t date_s;
#if IDM_NET_STAGES
  stages_t st;
  int64_t st_first_ns;         /* parse time of the oldest request of the gathered batch */
#endif
};

/* The process-wide server state: the one named struct of mutable globals. */
static struct {
  _Atomic(idm_snapshot_t *) snap;
  atomic_bool stop;
  worker_t *workers;
  unsigned nthreads;
  idm_metrics_t **metrics;
  const idm_clock_t *clk;
  struct sockaddr_storage addr[IDM_NET_LISTEN_MAX];
  socklen_t alen[IDM_NET_LISTEN_MAX];
  unsigned naddr;
  int64_t header_timeout_ns, idle_timeout_ns, drain_timeout_ns;
  idm_audit_log_t *audit;
  bool msg_ring;               /* every ring can wake another (IORING_OP_MSG_RING) */
  atomic_bool audit_held;      /* the last take was held for the preallocation zeroer */
  char issuer[512];            /* fixed for the process: the batchers' issuer */
  char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" : no unix socket */
} g;

/* ---- lists ----------------------------------------------------------------------- */

static void mark_ready(worker_t *w, conn_t *c) {
  if (!c->in_ready) {
    c->in_ready = true;
    w->ready[w->nready++] = c->slot;
  }
}
static void mark_dirty(worker_t *w, conn_t *c) {
  if (!c->in_dirty) {
    c->in_dirty = true;
    w->dirty[w->ndirty++] = c->slot;
  }
}

/* How long a batch lingers when the audit I/O is idle: the seal gap scaled by the square
 * of the thread's utilization (util_pm: busy turns / wall time over the last
 * IDM_NET_UTIL_WINDOW_US) relative to IDM_NET_UTIL_FULL_GAP_PM, and the whole gap above
 * that. At 10 % the batch lingers ~2 % of the gap, at 50 % about half of it. At 80 % load a
 * write costs ~0.15 ms of CPU here (io-wq context switches, the virtio kick): sealing
 * more often than every gap there costs more CPU than the thread has to spare. */
static int64_t seal_gap_idle_ns(const worker_t *w) {
  int64_t u = w->util_pm < IDM_NET_UTIL_FULL_GAP_PM ? w->util_pm : IDM_NET_UTIL_FULL_GAP_PM;
  return IDM_NET_SEAL_GAP_US * 1000LL * u * u /
         ((int64_t)IDM_NET_UTIL_FULL_GAP_PM * IDM_NET_UTIL_FULL_GAP_PM);
}

/* The turn has gathered its budget of work (IDM_NET_TURN_SIGNS, IDM_NET_TURN_REQS, times
 * turn_scale):
 * stop reading, seal, answer; unread input waits for the next turn. */
static bool turn_spent(const worker_t *w) {
  return w->ex.signs >= IDM_NET_TURN_SIGNS * w->turn_scale ||
         w->turn_reqs >= IDM_NET_TURN_REQS * w->turn_scale;
}

/* The audit I/O is idle: no line of any thread queued, no group being written (by any
 * thread: lines of all threads are written in groups by one writer at a time, write_kick),
 * and no fdatasync of ours in flight. */
static bool audit_idle(const worker_t *w) {
  return !idm_audit_write_busy(g.audit) && !w->fs.busy;
}

/* Seal the gathered batch at the end of this turn? The adaptive half of group commit:
 *  - yes when the turn reached its budget or left work for the next one (saturated: the
 *    batch is as large as a turn allows), when draining, and when the last batch held a
 *    single entry (a lone client waits for nothing but its own signature and audit write);
 *  - yes when the thread's audit I/O is idle and the batch has lingered for the seal gap
 *    scaled by the thread's recent utilization (util_pm): a thread with time to spare seals
 *    at once (its answers wait for nothing), a busy one lets the batch grow, because each
 *    seal costs a root signature and an audit write + sync (~0.1 ms of CPU here, more than
 *    a handful of requests) and sealing at every short turn tips a server at 80 % load
 *    into overload;
 *  - while the audit I/O is busy a new line would only wait behind it (the writer takes it
 *    when its write is done, with whatever else is queued by then), so the batch keeps
 *    gathering until that I/O completes — the writer's completion, or its ring message to
 *    a thread that asked for one (wake_me), makes that turn seal it — or
 *    IDM_NET_SEAL_GAP_US have passed.
 * Sets w->seal_reason for the metrics. */
static bool seal_due(worker_t *w) {
  if (turn_spent(w) || w->ncarry) {
    w->seal_reason = IDM_SEAL_SATURATED;
    return true;
  }
  if (w->draining) {
    w->seal_reason = IDM_SEAL_OTHER;
    return true;
  }
  if (w->last_seal_entries < 2) {
    w->seal_reason = IDM_SEAL_SINGLE;
    return true;
  }
  int64_t since = idm_clock_mono_ns() - w->last_seal_ns;
  if (since >= IDM_NET_SEAL_GAP_US * 1000LL) {
    w->seal_reason = IDM_SEAL_GAP;
    return true;
  }
  if (audit_idle(w)) {
    if (since >= seal_gap_idle_ns(w)) {
      w->seal_reason = IDM_SEAL_IDLE;
      return true;
    }
  } else if (g.nthreads > 1) {
    atomic_store_explicit(&w->wake_me, true, memory_order_relaxed); /* group_done wakes us */
  }
  return false;
}

/* Keeps a connection's unread input for the next turn. */
static void carry_over(worker_t *w, conn_t *c) {
  if (!c->in_carry) {
    c->in_carry = true;
    w->carry[w->ncarry++] = c->slot;
  }
}

/* ---- connection lifecycle ---------------------------------------------------------- */

static void slot_release(worker_t *w, conn_t *c) {
  c->state = C_FREE;
  c->gen = (c->gen + 1) & IDM_UD_GEN_MASK;
  w->free_slots[w->nfree++] = c->slot;
}

static void conn_close(worker_t *w, conn_t *c) {
  if (c->state != C_OPEN)
    return;
  c->state = C_CLOSING;
  for (uint8_t i = 0; i < c->nparked; i++)
    idm_ring_buf_recycle(&w->ring, c->parked_bid[i]);
  c->nparked = 0;
  shutdown(c->fd, SHUT_RDWR);
  close(c->fd);
  c->fd = -1;
  idm_h2_free(c->h2);
  c->h2 = NULL;
  if (c->up) {
    c->up->next_free = w->peer_free;
    w->peer_free = (uint32_t)(c->up - w->peers);
    c->up = NULL;
  }
  w->nopen--;
  IDM_MET_ADD(&w->metrics.conns_open, (uint64_t)-1);
  if (c->ops == 0)
    slot_release(w, c);
}

static void op_done(worker_t *w, conn_t *c) {
  c->ops--;
  if (c->state == C_CLOSING && c->ops == 0)
    slot_release(w, c);
}

static void arm_recv(worker_t *w, conn_t *c) {
  if (c->recv_armed || c->state != C_OPEN || c->peer_eof || c->want_close)
    return;
  struct io_uring_sqe *sqe;
  if (w->ring.multishot_recv) {
    if (c->in_off && IDM_NET_CONN_IN_BYTES - c->in_len < w->ring.buf_bytes) {
      memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
      c->in_len -= c->in_off;
      c->in_off = 0;
    }
    if (c->nparked || IDM_NET_CONN_IN_BYTES - c->in_len < w->ring.buf_bytes)
      return; /* back-pressure: receive again once the parser has made room */
    c->cancel_sent = false;
    sqe = idm_ring_sqe(&w->ring);
    if (!sqe)
      return;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = w->ring.bgid;
  } else {
    if (c->in_off) { /* safe: no receive targets the buffer now */
      memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
      c->in_len -= c->in_off;
      c->in_off = 0; /* in_need counts unread bytes: the move leaves it unchanged */
    }
    if (c->in_len >= IDM_NET_CONN_IN_BYTES)
      return; /* full: wait until the parser consumes (or the conn is closed) */
    sqe = idm_ring_sqe(&w->ring);
    if (!sqe)
      return;
    io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, IDM_NET_CONN_IN_BYTES - c->in_len, 0);
  }
  io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_RECV, c->slot, c->gen));
  c->recv_armed = true;
  c->ops++;
}

static void refuse_fd(worker_t *w, int fd) {
  static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n";
  ssize_t r = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)r;
  close(fd);
  IDM_MET_INC(&w->metrics.conns_refused);
}

/* Identifies the peer of unix connection c under the current snapshot (at accept, and
 * again after a reload). A failure is kept with the record, not fatal to the connection. */
static void unix_peer_attest(worker_t *w, conn_t *c) {
  unix_peer_t *u = c->up;
  idm_arena_reset(&u->arena);
  idm_why_t why = {{0}};
  int xfd = -1;
  idm_err_t e;
  if (!w->snap || !w->snap->attest)
    e = idm_fail(&why, IDM_ERR_ATTEST_TRUST_UNKNOWN, "no trust block of kind unix");
  else if (w->exehash && !w->exehash_broken)
    e = idm_attest_unix_peer_cached(w->snap->attest, c->fd, &u->arena, &u->id, &xfd, &why);
  else /* no hasher thread (it could not start): hash here */
    e = idm_attest_unix_peer(w->snap->attest, c->fd, &u->arena, &u->id, &why);
  if (e == IDM_ERR_UNIX_EXE_UNHASHED) {
    /* A new executable: hashed by the exehash thread while the loop goes on; this
     * connection's input waits (conn_process) until on_hashed asks again. Twice at most:
     * a file that keeps changing under us is refused below. */
    if (u->hash_tries < 2 && idm_exehash_submit(w->exehash, xfd, c->slot, c->gen)) {
      u->hash_tries++;
      u->hashing = true;
      u->ok = false; /* the arena was reset: nothing of the old identity is left */
      snprintf(u->why, sizeof u->why, "the peer's executable is being hashed");
      return;
    }
    close(xfd);
    e = idm_fail(&why, IDM_ERR_UNIX_PEER,
                 u->hash_tries ? "the peer's executable changed while it was being hashed"
                               : "too many executables are being hashed at once");
  }
  u->hash_tries = 0;
  u->ok = e == IDM_OK;
  u->gen = w->snap ? w->snap->gen : 0;
  u->why[0] = '\0';
  if (!u->ok) {
    snprintf(u->why, sizeof u->why, "%s", idm_why_str(&why, e));
    idm_log("warn", "unix_peer_unidentified", "path", g.unix_path, "msg", u->why, NULL);
  }
}

/* Fills the request's unix-peer fields for a request on connection c. */
static void unix_peer_req(worker_t *w, conn_t *c, idm_http_req_t *req) {
  if (!c->up)
    return;
  if (!c->up->hashing && c->up->gen != (w->snap ? w->snap->gen : 0))
    unix_peer_attest(w, c); /* conn_process has done so already: not reached */
  req->unix_conn = true;
  req->unix_peer = c->up->ok ? &c->up->id : NULL;
  req->unix_peer_why = c->up->ok ? NULL : c->up->why;
}

static void conn_open(worker_t *w, int fd, bool is_unix) {
  if (!w->nfree || w->draining || (is_unix && w->peer_free == UINT32_MAX)) {
    refuse_fd(w, fd);
    return;
  }
  conn_t *c = &w->conns[w->free_slots[--w->nfree]];
  uint32_t gen = c->gen, slot = c->slot;
  uint8_t *in = c->in, *out = c->out;
  /* The slot may still sit in this turn's ready/dirty/carry list from its previous
   * connection: keep those marks so that each slot is listed at most once (the lists hold
   * conns_max entries) — the stale entry now simply serves the new connection. */
  bool r = c->in_ready, d = c->in_dirty, k = c->in_carry;
  memset(c, 0, sizeof *c);
  c->in_ready = r;
  c->in_dirty = d;
  c->in_carry = k;
  c->w = w;
  c->gen = gen;
  c->slot = slot;
  c->in = in;
  c->out = out;
  c->fd = fd;
  c->state = C_OPEN;
  c->active_ns = w->now_ns;
  if (is_unix) {
    c->up = &w->peers[w->peer_free];
    w->peer_free = c->up->next_free;
    c->up->hashing = false;
    c->up->hash_tries = 0;
    unix_peer_attest(w, c);
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET) {
      memcpy(c->peer, &((struct sockaddr_in *)&ss)->sin_addr, 4);
      c->fam = 4;
    } else if (ss.ss_family == AF_INET6) {
      const uint8_t *a = (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
      static const uint8_t v4m[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (!memcmp(a, v4m, 12)) {
        memcpy(c->peer, a + 12, 4);
        c->fam = 4;
      } else {
        memcpy(c->peer, a, 16);
        c->fam = 6;
      }
    }
  }
  int one = 1;
  if (!is_unix)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  w->nopen++;
  IDM_MET_INC(&w->metrics.conns_accepted);
  IDM_MET_INC(&w->metrics.conns_open);
  arm_recv(w, c);
}

/* ---- HTTP/1.1 ------------------------------------------------------------------- */

static void pend_bind(worker_t *w, conn_t *c, const idm_http_req_t *req,
                      const idm_http_resp_t *resp, int32_t stream_id, bool close_after,
                      bool ka10);

static void refresh_date(worker_t *w) {
  int64_t s = idm_clock_now_s(g.clk);
  if (s == w->date_s)
    return;
  w->date_s = s;
  time_t t = (time_t)s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void h1_write(worker_t *w, conn_t *c, const idm_http_resp_t *r, bool head, bool close,
                     bool keep_alive_10) {
  char *o = (char *)c->out + c->out_len;
  size_t cap = IDM_NET_CONN_OUT_BYTES - c->out_len;
  int n = snprintf(o, cap, "HTTP/1.1 %d %s\r\nServer: idmint\r\nDate: %s\r\nContent-Length: %zu\r\n",
                   r->status, idm_http_reason(r->status), w->date, r->body_len);
  size_t len = n > 0 ? (size_t)n : 0;
#define ADD(...)                                                                              \
  do {                                                                                        \
    int k_ = snprintf(o + len, len < cap ? cap - len : 0, __VA_ARGS__);                       \
    len += k_ > 0 ? (size_t)k_ : 0;                                                           \
  } while (0)
  if (r->content_type)
    ADD("Content-Type: %s\r\n", r->content_type);
  if (r->no_store)
    ADD("Cache-Control: no-store\r\nPragma: no-cache\r\n");
  if (r->retry_after_s)
    ADD("Retry-After: %u\r\n", r->retry_after_s);
  if (r->allow)
    ADD("Allow: %s\r\n", r->allow);
  if (r->token && r->token_len)
    ADD("X-Idmint-Token: %.*s\r\nX-Idmint-Authorization: Bearer %.*s\r\n", (int)r->token_len,
        r->token, (int)r->token_len, r->token);
  if (close)
    ADD("Connection: close\r\n");
  else if (keep_alive_10)
    ADD("Connection: keep-alive\r\n");
  ADD("\r\n");
#undef ADD
  if (len >= cap || (!head && len + r->body_len > cap)) {
    /* Cannot happen: the parser waits for IDM_NET_H1_RESP_MAX_BYTES of room. */
    c->want_close = true;
    return;
  }
  if (!head && r->body_len) {
    memcpy(o + len, r->body, r->body_len);
    len += r->body_len;
  }
  c->out_len += (uint32_t)len;
  mark_dirty(w, c);
}

static void h1_error(worker_t *w, conn_t *c, int status, const char *why) {
  idm_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  idm_route_error(&w->router, &resp, status, "invalid_request", why);
  h1_write(w, c, &resp, false, true, false);
  c->want_close = true;
}

static void h1_process(worker_t *w, conn_t *c) {
  idm_h1_limits_t lim = {IDM_NET_HEADER_MAX_BYTES, IDM_NET_BODY_MAX_BYTES, IDM_NET_HEADERS_MAX};
  for (int budget = IDM_NET_REQS_PER_CONN_TURN; budget > 0; budget--) {
    if (c->want_close || c->h1_wait || turn_spent(w))
      break;
    size_t avail = c->in_len - c->in_off;
    if (!avail)
      break;
    if (IDM_NET_CONN_OUT_BYTES - c->out_len < IDM_NET_H1_RESP_MAX_BYTES) {
      c->h1_paused = true; /* resumes when the send completes */
      break;
    }
    if (c->in_need && avail < c->in_need)
      break;
    idm_h1_req_t *h = &w->h1req;
    idm_why_t why = {{0}};
    idm_err_t e = idm_h1_parse(h, w->body_buf, IDM_NET_BODY_MAX_BYTES, c->in + c->in_off, avail,
                               &lim, &why);
    if (e == IDM_ERR_HTTP_INCOMPLETE) {
      c->in_need = h->need;
      if (!c->req_start_ns)
        c->req_start_ns = w->now_ns;
      if (h->head_done && h->expect_continue && !c->continue_sent) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        memcpy(c->out + c->out_len, cont, sizeof cont - 1);
        c->out_len += sizeof cont - 1;
        c->continue_sent = true;
        mark_dirty(w, c);
      }
      if (avail >= IDM_NET_CONN_IN_BYTES) /* cannot happen within the limits; be safe */
        h1_error(w, c, 431, "request exceeds the connection buffer");
      break;
    }
    c->in_need = 0;
    if (e) {
      IDM_MET_INC(&w->metrics.parse_errors);
      h1_error(w, c, idm_h1_error_status(e), idm_why_str(&why, e));
      c->in_off = c->in_len;
      break;
    }
    idm_http_req_t req;
    memset(&req, 0, sizeof req);
    idm_http_req_method(&req, h->method, h->method_len);
    idm_http_req_target(&req, h->target, h->target_len);
    for (uint32_t i = 0; i < h->header_count; i++)
      idm_http_req_header(&req, h->headers[i].name, h->headers[i].name_len, h->headers[i].value,
                          h->headers[i].value_len);
    req.body = h->body;
    req.body_len = h->body_len;
    memcpy(req.peer, c->peer, 16);
    req.peer_family = c->fam;
    req.start_ns = w->now_ns;
    unix_peer_req(w, c, &req);
    idm_http_resp_t resp;
    w->turn_reqs++;
    idm_route(&w->router, &req, &resp);
    bool close = !h->keep_alive || resp.close;
    c->in_off += (uint32_t)h->consumed;
    if (resp.deferred) {
      /* Answered when its batch is written; requests behind it wait (HTTP/1.1 order). */
      pend_bind(w, c, &req, &resp, 0, close, h->version_minor == 0 && h->keep_alive);
      c->h1_wait = true;
      c->req_start_ns = 0;
      c->continue_sent = false;
      c->active_ns = w->now_ns;
      break;
    }
    h1_write(w, c, &resp, req.method == IDM_HTTP_HEAD, close,
             h->version_minor == 0 && h->keep_alive);
    c->req_start_ns = 0;
    c->continue_sent = false;
    c->active_ns = w->now_ns;
    if (close) {
      c->want_close = true;
      c->in_off = c->in_len;
    }
  }
  if (c->in_off == c->in_len) {
    if (!c->recv_armed || w->ring.multishot_recv)
      c->in_off = c->in_len = 0;
  } else {
    if (!c->req_start_ns)
      c->req_start_ns = w->now_ns;
    /* Work left after this turn's budget, not blocked on output: next turn. */
    if (!c->h1_paused && !c->h1_wait && !c->want_close &&
        (!c->in_need || c->in_len - c->in_off >= c->in_need))
      carry_over(w, c);
  }
}

/* ---- deferred answers (group commit) -------------------------------------------- */

static idm_exchange_res_t *pend_get(void *ud, void **cookie) {
  worker_t *w = ud;
  if (w->pend_free == UINT32_MAX)
    return NULL;
  pending_t *p = &w->pend[w->pend_free];
  w->pend_free = p->next_free;
  w->npend++;
  p->used = true;
  p->stream_id = 0;
  *cookie = p;
  return &p->res;
}

static void pend_put(void *ud, void *cookie) {
  worker_t *w = ud;
  pending_t *p = cookie;
  p->used = false;
  p->next_free = w->pend_free;
  w->pend_free = (uint32_t)(p - w->pend);
  w->npend--;
}

/* Remembers where a deferred answer goes. */
static void pend_bind(worker_t *w, conn_t *c, const idm_http_req_t *req,
                      const idm_http_resp_t *resp, int32_t stream_id, bool close_after,
                      bool ka10) {
  pending_t *p = resp->cookie;
  p->conn_slot = c->slot;
  p->conn_gen = c->gen;
  p->stream_id = stream_id;
  p->authz = idm_route_endpoint(req) == IDM_EP_AUTHZ;
  p->head = req->method == IDM_HTTP_HEAD;
  p->close_after = close_after;
  p->keep_alive_10 = ka10;
  p->start_ns = req->start_ns;
#if IDM_NET_STAGES
  p->parse_ns = ST_NOW();
  ST_ADD(w, ST_READ, p->parse_ns - c->rx_ns);
  if (!w->st_first_ns)
    w->st_first_ns = p->parse_ns;
#endif
}

static void h1_write(worker_t *w, conn_t *c, const idm_http_resp_t *r, bool head, bool close,
                     bool keep_alive_10);

/* idm_batch_complete's callback: the batch of this credential is sealed and its audit line
 * released (or the log failed: then no credential leaves). */
static void on_done(void *cookie, idm_err_t err, void *ctx) {
  worker_t *w = ctx;
  pending_t *p = cookie;
#if IDM_NET_STAGES
  int64_t st_t = ST_NOW();
  ST_ADD(w, ST_RELEASE, st_t - w->now_ns);
  ST_ADD(w, ST_TOTAL, st_t - p->parse_ns);
#endif
  if (err) {
    p->res.status = 503;
    p->res.error = "temporarily_unavailable";
    snprintf(p->res.description, sizeof p->res.description,
             "the audit log cannot record the credential (%s); none was issued",
             idm_err_str(err));
    p->res.token_len = 0;
  }
  idm_http_resp_t resp;
  memset(&resp, 0, sizeof resp);
  idm_exchange_http_reply(&w->router, p->authz, &p->res, &resp);
  if (w->draining)
    resp.close = true;
  idm_route_count(&w->router, p->authz ? IDM_EP_AUTHZ : IDM_EP_TOKEN, &resp, p->start_ns);
  conn_t *c = &w->conns[p->conn_slot];
  if (c->state == C_OPEN && c->gen == p->conn_gen) {
    if (c->h2) {
      idm_h2_respond(c->h2, p->stream_id, &resp, p->head); /* gone if the peer reset it */
    } else {
      bool close = p->close_after || resp.close;
      h1_write(w, c, &resp, p->head, close, p->keep_alive_10);
      c->h1_wait = false;
      if (close) {
        c->want_close = true;
        c->in_off = c->in_len;
      }
      mark_ready(w, c); /* pipelined requests behind it */
    }
    mark_dirty(w, c);
  }
  pend_put(w, p);
}

/* Audit group commit across threads. A sealed line is queued in the log's shared,
 * offset-ordered queue (idm_audit_enqueue, seal_submit). One thread at a time is the log's
 * writer: the first whose write_kick finds lines queued at the lowest unwritten offset and
 * no writer active takes every such line (idm_audit_take), of any thread, and writes them
 * as one pwritev; when it completes it gives the role back and takes what was queued
 * meanwhile. So lines sealed while a write runs wait and leave together, the file is
 * written strictly in order (a kill -9 leaves a torn or missing tail, never a hole before
 * a written line: tests/batch/crashsafe_test.sh), and a write carries the lines of every
 * thread: one write per group, not one per line and thread.
 *
 * With fsync batch each group is written through the writer's ring with RWF_DSYNC: the
 * group before it had completed, written and synced, when it was taken, so its completion
 * makes everything up to its end durable — one operation writes and syncs it, and no
 * fdatasync is needed. With fsync none or an interval it is a plain pwritev made inline
 * (audit_write_inline). Then the writer wakes each other thread whose line it carried
 * (group_wake: a message on its ring, IORING_OP_MSG_RING), which releases and sends its
 * answers at once. Line memory is the sealing thread's batcher slot, which is reused only
 * once the line is released (or the log has failed, when no new line is sealed), so
 * another thread may write it. */
static void on_audit_cqe(worker_t *w, struct io_uring_cqe *cqe);

/* With fsync `none` or an interval, an audit write is a plain buffered write: it is made
 * here, in the thread, and completed at once, instead of through io_uring, which on ext4
 * hands every buffered write to a kernel worker thread (no non-blocking buffered writes
 * there): two context switches and ~25-70 µs of CPU per write on this VM against ~2-3 µs
 * for the write itself. A buffered write to the page cache blocks only under dirty-page
 * throttling; `fsync batch` keeps its RWF_DSYNC writes on the ring, where they wait for
 * the disk. */
static bool audit_write_inline(void) {
  return idm_audit_options(g.audit)->fsync != IDM_AUDIT_FSYNC_BATCH;
}

/* Wakes worker t's loop with a message on its ring (IDM_OP_WAKE). Without ring messages
 * a thread with batches in flight polls at 1 ms instead (worker_main). */
static bool wake_worker(worker_t *w, unsigned t) {
  if (!g.msg_ring || t == w->index || t >= g.nthreads)
    return false;
  struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
  if (!sqe)
    return false;
  io_uring_prep_msg_ring(sqe, g.workers[t].ring.ring.ring_fd, 0,
                         idm_ud_make(IDM_OP_WAKE, w->index, 0), 0);
  io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_CANCEL, 0, 0)); /* our own CQE: ignored */
  return true;
}

/* After a group: wake the threads whose lines it carried, and those whose batch lingers
 * until the audit I/O is idle (wake_me); every other thread when the log failed. True
 * when a message was queued: the caller submits it at once (group_done), not at the end
 * of this thread's turn, which may hold many signatures. */
static bool group_wake(worker_t *w, bool all) {
  if (g.nthreads == 1)
    return false;
  uint64_t seen[(IDM_NET_THREADS_MAX + 63) / 64] = {0};
  bool sent = false;
  for (unsigned k = 0; k < w->grp.g.n; k++) {
    uint32_t t = w->grp.g.owner[k];
    if (t < IDM_NET_THREADS_MAX && !(seen[t / 64] >> (t % 64) & 1)) {
      seen[t / 64] |= 1ull << (t % 64);
      sent |= wake_worker(w, t);
    }
  }
  for (unsigned t = 0; t < g.nthreads; t++) {
    if (seen[t / 64] >> (t % 64) & 1)
      continue;
    bool lingers = atomic_exchange_explicit(&g.workers[t].wake_me, false, memory_order_relaxed);
    if (all || lingers)
      sent |= wake_worker(w, t);
  }
  return sent;
}

static void audit_inline_complete(worker_t *w, uint64_t user_data, ssize_t r) {
  struct io_uring_cqe cqe;
  memset(&cqe, 0, sizeof cqe);
  cqe.user_data = user_data;
  cqe.res = r < 0 ? -errno : (int32_t)r;
  w->audit_inline_done = true;
  on_audit_cqe(w, &cqe); /* a short write or EINTR writes the rest from there */
}

static void group_done(worker_t *w, bool failed);

static void submit_group(worker_t *w) {
  if (audit_write_inline()) {
    ssize_t r = pwritev(idm_audit_fd(g.audit), w->grp.g.iov + w->grp.iov0,
                        (int)(w->grp.g.n - w->grp.iov0), (off_t)w->grp.g.off);
    audit_inline_complete(w, idm_ud_make(IDM_OP_WRITE, 0, 0), r);
    return;
  }
  struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
  if (!sqe) {
    idm_audit_written(g.audit, w->grp.g.off, -EIO);
    group_done(w, true);
    return;
  }
  io_uring_prep_writev(sqe, idm_audit_fd(g.audit), w->grp.g.iov + w->grp.iov0,
                       w->grp.g.n - w->grp.iov0, w->grp.g.off);
  sqe->rw_flags = RWF_DSYNC; /* fsync batch: each completed piece is on disk when its CQE comes */
  io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_WRITE, 0, 0));
}

/* Becomes the log's writer and writes a group, while there is one to take: inline writes
 * complete here, so the loop takes what other threads queued meanwhile; a ring write holds
 * the role until its completion (on_audit_cqe takes the next group then). A group held
 * for the preallocation zeroer is retried on a later turn (audit_held: threads with batches
 * in flight poll at 1 ms meanwhile). */
static void write_kick(worker_t *w) {
  bool held = false, took = false;
  while (!w->grp.busy && idm_audit_take(g.audit, &w->grp.g, &held)) {
    took = true;
    w->grp.busy = true;
    w->grp.iov0 = 0;
    IDM_MET_INC(&w->metrics.audit_writes);
#if IDM_NET_STAGES
    w->grp.sub_ns = ST_NOW();
#endif
    submit_group(w);
  }
  if (held) {
    IDM_MET_INC(&w->metrics.audit_prealloc_waits);
    atomic_store_explicit(&g.audit_held, true, memory_order_relaxed);
  } else if (took) {
    atomic_store_explicit(&g.audit_held, false, memory_order_relaxed);
  }
}

static void submit_fsync(worker_t *w) {
  struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
  if (!sqe) {
    idm_audit_synced(g.audit, w->fs.upto, -EIO);
    w->fs.busy = false;
    return;
  }
  io_uring_prep_fsync(sqe, idm_audit_fd(g.audit), IORING_FSYNC_DATASYNC);
  IDM_MET_INC(&w->metrics.audit_syncs);
#if IDM_NET_STAGES
  w->fs.sub_ns = ST_NOW();
#endif
  io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_FSYNC, 0, 0));
}

/* Seals the gathered batch and queues its audit line. One thread writes it at the end of
 * the turn (write_kick), with whatever else it sealed; several try at once, since another
 * thread's group may be waiting for this line (a queued line behind it is not taken
 * before it: no hole). */
static idm_err_t seal_submit(void *ud) {
  worker_t *w = ud;
  if (!idm_batch_pending(w->batch))
    return IDM_ERR_BATCH_EMPTY;
  idm_batch_sealed_t sealed;
  idm_why_t why = {{0}};
#if IDM_NET_STAGES
  int64_t st_t0 = ST_NOW();
#endif
  idm_err_t e = idm_batch_seal(w->batch, &sealed, &why);
  if (e != IDM_ERR_BATCH_BUSY)
    w->ex.signs = 0; /* sealed (on a signing failure too: its entries complete with it) */
  if (e) {
    if (e != IDM_ERR_BATCH_BUSY)
      idm_log("error", "batch_seal_failed", "msg", idm_why_str(&why, e), NULL);
    return e;
  }
  w->last_seal_ns = idm_clock_mono_ns();
  w->last_seal_entries = sealed.entries;
  IDM_MET_INC(&w->metrics.seals[w->seal_reason]);
  w->seal_reason = IDM_SEAL_SATURATED; /* the default: a full batch sealed by the exchange */
#if IDM_NET_STAGES
  ST_ADD(w, ST_SEAL, w->last_seal_ns - st_t0);
  if (w->st_first_ns)
    ST_ADD(w, ST_GATHER, st_t0 - w->st_first_ns);
  w->st_first_ns = 0;
#endif
  if (!sealed.record)
    return IDM_OK;
  idm_audit_enqueue(g.audit, sealed.record, sealed.record_len, sealed.offset, w->index);
  if (g.nthreads > 1)
    write_kick(w);
  return IDM_OK;
}

/* An audit write failed (res < 0) or made no progress (res == 0): the log is failed closed
 * (idm_audit_written has already recorded a negative res) and the failure logged. */
static void audit_write_failed(int res) {
  if (res == 0)
    idm_audit_fail(g.audit, "audit write wrote nothing (disk full?)");
  char e[96];
  snprintf(e, sizeof e, "%s", res < 0 ? strerror(-res) : "no progress");
  idm_log("error", "audit_write_failed", "error", e, "msg", "issuance stopped (fail closed)",
          NULL);
}

/* The group is written (or failed): give the writer's role back, wake the threads waiting
 * for it, and — a ring write — take the next group at once. */
static void group_done(worker_t *w, bool failed) {
  w->grp.busy = false;
  idm_audit_put(g.audit);
  bool sent = group_wake(w, failed); /* before write_kick reuses w->grp */
  if (!failed && !audit_write_inline())
    write_kick(w);
  if (sent) /* the wake-ups (and the next group's write) leave now */
    io_uring_submit(&w->ring.ring);
}

static void on_audit_cqe(worker_t *w, struct io_uring_cqe *cqe) {
  if (idm_ud_op(cqe->user_data) == IDM_OP_FSYNC) { /* fsync interval */
    if (!w->fs.busy)
      return;
    ST_ADD(w, ST_SYNC, w->now_ns - w->fs.sub_ns);
    idm_audit_synced(g.audit, w->fs.upto, cqe->res);
    w->fs.busy = false;
    if (cqe->res < 0)
      if (group_wake(w, true)) /* the log failed: every thread stops now */
        io_uring_submit(&w->ring.ring);
    return;
  }
  if (!w->grp.busy)
    return;
  int res = cqe->res;
  if (res == -EINTR || res == -EAGAIN) {
    submit_group(w);
    return;
  }
  idm_audit_written(g.audit, w->grp.g.off, res < 0 ? res : (int64_t)res);
  if (res <= 0) {
    audit_write_failed(res);
    group_done(w, true);
    return;
  }
  w->grp.g.off += (uint64_t)res;
  if (w->grp.g.off < w->grp.g.end) { /* short write: the rest, at its offset */
    size_t left = (size_t)res;
    while (left >= w->grp.g.iov[w->grp.iov0].iov_len) /* ends before g.end: in range */
      left -= w->grp.g.iov[w->grp.iov0++].iov_len;
    w->grp.g.iov[w->grp.iov0].iov_base = (char *)w->grp.g.iov[w->grp.iov0].iov_base + left;
    w->grp.g.iov[w->grp.iov0].iov_len -= left;
    submit_group(w);
    return;
  }
  ST_ADD(w, ST_WRITE, w->now_ns - w->grp.sub_ns);
  /* fsync batch: written with RWF_DSYNC after every byte before it was synced. */
  if (idm_audit_options(g.audit)->fsync == IDM_AUDIT_FSYNC_BATCH)
    idm_audit_synced(g.audit, w->grp.g.end, 0);
  group_done(w, false);
}

/* ---- HTTP/2 ---------------------------------------------------------------------- */

static void h2_on_request(void *ud, idm_h2_t *h2, int32_t stream_id, idm_http_req_t *req) {
  conn_t *c = ud;
  worker_t *w = c->w;
  req->start_ns = w->now_ns;
  unix_peer_req(w, c, req);
  idm_http_resp_t resp;
  w->turn_reqs++;
  idm_route(&w->router, req, &resp);
  if (resp.deferred) {
    pend_bind(w, c, req, &resp, stream_id, false, false);
    c->active_ns = w->now_ns;
    return;
  }
  if (idm_h2_respond(h2, stream_id, &resp, req->method == IDM_HTTP_HEAD) == IDM_ERR_POOL_EMPTY)
    c->want_close = true;
  c->active_ns = w->now_ns;
  mark_dirty(w, c);
}

static void h2_process(worker_t *w, conn_t *c) {
  /* In chunks, so that the turn can stop close to its budget; nghttp2 buffers a frame cut
   * between chunks itself. */
  while (c->in_off < c->in_len && !c->want_close) {
    if (turn_spent(w)) {
      carry_over(w, c);
      break;
    }
    size_t n = c->in_len - c->in_off;
    if (n > IDM_NET_H2_RECV_CHUNK)
      n = IDM_NET_H2_RECV_CHUNK;
    idm_why_t why = {{0}};
    if (idm_h2_recv(c->h2, c->in + c->in_off, n, &why) != IDM_OK) {
      IDM_MET_INC(&w->metrics.h2_sessions_failed);
      c->want_close = true;
      c->in_off = c->in_len;
      break;
    }
    c->in_off += (uint32_t)n;
  }
  if (c->in_off == c->in_len && (!c->recv_armed || w->ring.multishot_recv))
    c->in_off = c->in_len = 0;
  mark_dirty(w, c);
}

static void unpark(worker_t *w, conn_t *c) {
  while (c->nparked) {
    if (c->in_off && IDM_NET_CONN_IN_BYTES - c->in_len < c->parked_len[0]) {
      memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
      c->in_len -= c->in_off;
      c->in_off = 0;
    }
    if (IDM_NET_CONN_IN_BYTES - c->in_len < c->parked_len[0])
      return;
    memcpy(c->in + c->in_len, idm_ring_buf(&w->ring, c->parked_bid[0]), c->parked_len[0]);
    c->in_len += c->parked_len[0];
    idm_ring_buf_recycle(&w->ring, c->parked_bid[0]);
    c->nparked--;
    memmove(c->parked_bid, c->parked_bid + 1, c->nparked * sizeof c->parked_bid[0]);
    memmove(c->parked_len, c->parked_len + 1, c->nparked * sizeof c->parked_len[0]);
  }
}

static void conn_process(worker_t *w, conn_t *c) {
  if (c->state != C_OPEN)
    return;
  unpark(w, c);
  if (c->up) { /* a unix peer: identified (again, after a reload) before its requests */
    if (!c->up->hashing && c->up->gen != (w->snap ? w->snap->gen : 0))
      unix_peer_attest(w, c);
    if (c->up->hashing)
      return; /* its input waits in c->in; on_hashed marks it ready */
  }
  if (c->proto == P_UNKNOWN && c->in_len > c->in_off) {
    size_t avail = c->in_len - c->in_off, n = avail < PREFACE_LEN ? avail : PREFACE_LEN;
    if (memcmp(c->in + c->in_off, PREFACE, n) != 0) {
      c->proto = P_H1;
    } else if (n == PREFACE_LEN) {
      idm_h2_limits_t lim = {IDM_NET_H2_STREAMS_MAX, IDM_NET_HEADER_MAX_BYTES,
                             IDM_NET_BODY_MAX_BYTES, IDM_NET_H2_CONN_MEM_BYTES};
      idm_why_t why = {{0}};
      c->h2 = idm_h2_new(&w->pool, &lim, h2_on_request, c, c->peer, c->fam, &why);
      if (!c->h2) {
        IDM_MET_INC(&w->metrics.overloaded);
        conn_close(w, c);
        return;
      }
      c->proto = P_H2;
      c->req_start_ns = 0;
    } else if (!c->req_start_ns) {
      c->req_start_ns = w->now_ns;
    }
  }
  if (c->proto == P_H1) {
    h1_process(w, c);
    if (c->nparked && !c->h1_paused) {
      unpark(w, c);
      h1_process(w, c);
    }
  } else if (c->proto == P_H2) {
    h2_process(w, c);
    if (c->nparked) {
      unpark(w, c);
      h2_process(w, c);
    }
  }
  if (c->peer_eof && !c->want_close) {
    /* The peer finished sending: answer what is complete, then close. */
    if (c->proto != P_H2)
      c->want_close = true;
    else
      idm_h2_goaway(c->h2);
    mark_dirty(w, c);
  }
  arm_recv(w, c);
}

/* ---- output ---------------------------------------------------------------------- */

/* Starts the send of what the connection has to say. False only when the connection is
 * open, idle and has nothing to send; true when it sent, or cannot now (closed, or a send
 * in flight: its completion flushes again). */
static bool conn_send(worker_t *w, conn_t *c) {
  if (c->state != C_OPEN || c->send_busy)
    return true;
  if (c->h2 && c->out_len < IDM_NET_CONN_OUT_BYTES)
    c->out_len += (uint32_t)idm_h2_send(c->h2, c->out + c->out_len,
                                        IDM_NET_CONN_OUT_BYTES - c->out_len);
  if (!c->out_len)
    return false;
  struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
  if (!sqe) {
    conn_close(w, c);
    return true;
  }
  io_uring_prep_send(sqe, c->fd, c->out, c->out_len, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_SEND, c->slot, c->gen));
  c->send_busy = true;
  c->ops++;
  IDM_MET_INC(&w->metrics.sends);
  IDM_MET_ADD(&w->metrics.send_bytes, c->out_len);
  return true;
}

static void conn_flush(worker_t *w, conn_t *c) {
  if (conn_send(w, c))
    return;
  if (c->want_close || (c->h2 && idm_h2_done(c->h2)) || (c->peer_eof && c->proto != P_H2))
    conn_close(w, c);
}

/* ---- completions ----------------------------------------------------------------- */

static void on_accept(worker_t *w, struct io_uring_cqe *cqe) {
  unsigned li = idm_ud_slot(cqe->user_data);
  if (li >= w->nl)
    return;
  if (!(cqe->flags & IORING_CQE_F_MORE))
    w->accept_armed[li] = false;
  if (cqe->res >= 0) {
    conn_open(w, cqe->res, (int)li == w->unix_li);
    return;
  }
  if (cqe->res == -EINVAL && w->ring.multishot_accept) {
    w->ring.multishot_accept = false;
    idm_log("warn", "io_uring", "msg", "multishot accept refused by the kernel; using single-shot",
            NULL);
  } else if (cqe->res != -ECANCELED && cqe->res != -EINTR && cqe->res != -EAGAIN) {
    char e[64];
    snprintf(e, sizeof e, "%s", strerror(-cqe->res));
    idm_log("warn", "accept_failed", "error", e, NULL);
  }
}

/* The exehash thread's eventfd: one read armed at a time. */
static void arm_hashed(worker_t *w) {
  if (!w->exehash || w->exehash_armed || w->exehash_broken)
    return;
  struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
  if (!sqe)
    return; /* the ring failed; the loop reports it */
  io_uring_prep_read(sqe, idm_exehash_efd(w->exehash), &w->exehash_buf, sizeof w->exehash_buf, 0);
  io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_HASHED, 0, 0));
  w->exehash_armed = true;
}

/* Executables hashed: identify their connections now (the digest is cached) and let their
 * input through. A connection closed meanwhile (its slot reused or not) is skipped. */
static void on_hashed(worker_t *w, struct io_uring_cqe *cqe) {
  w->exehash_armed = false;
  if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN) {
    /* Cannot happen with an eventfd; if it does, do not spin re-arming a failing read:
     * the jobs handed out finish unseen, so hash in the loop from now on (exehash_broken)
     * and fail the connections that wait. */
    char e[64];
    snprintf(e, sizeof e, "%s", strerror(-cqe->res));
    idm_log("error", "exehash_failed", "error", e, "msg",
            "reading the hasher's eventfd failed; hashing in the event loop from now on", NULL);
    w->exehash_broken = true;
    for (uint32_t i = 0; i < w->conns_max; i++) {
      conn_t *c = &w->conns[i];
      if (c->state == C_OPEN && c->up && c->up->hashing) {
        c->up->hashing = false;
        c->up->gen = UINT64_MAX; /* identified again (inline) before its next request */
        mark_ready(w, c);
      }
    }
    return;
  }
  idm_exehash_done_t d[16];
  size_t n;
  while ((n = idm_exehash_take(w->exehash, d, sizeof d / sizeof d[0])) > 0) {
    for (size_t i = 0; i < n; i++) {
      if (d[i].slot >= w->conns_max)
        continue;
      conn_t *c = &w->conns[d[i].slot];
      if (c->state != C_OPEN || c->gen != d[i].gen || !c->up || !c->up->hashing)
        continue;
      c->up->hashing = false;
      if (d[i].err == IDM_OK) {
        unix_peer_attest(w, c);
      } else {
        unix_peer_t *u = c->up;
        u->hash_tries = 0;
        u->ok = false;
        u->gen = w->snap ? w->snap->gen : 0;
        snprintf(u->why, sizeof u->why, "%s", d[i].why);
        idm_log("warn", "unix_peer_unidentified", "path", g.unix_path, "msg", u->why, NULL);
      }
      if (!c->up->hashing)
        mark_ready(w, c);
    }
  }
  arm_hashed(w);
}

static void arm_accept(worker_t *w) {
  if (w->draining)
    return;
  for (unsigned i = 0; i < w->nl; i++) {
    if (w->accept_armed[i] || w->lfd[i] < 0)
      continue;
    struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
    if (!sqe)
      return;
    if (w->ring.multishot_accept)
      io_uring_prep_multishot_accept(sqe, w->lfd[i], NULL, NULL, SOCK_CLOEXEC);
    else
      io_uring_prep_accept(sqe, w->lfd[i], NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_ACCEPT, i, 0));
    w->accept_armed[i] = true;
  }
}

static void on_recv(worker_t *w, struct io_uring_cqe *cqe) {
  uint32_t slot = idm_ud_slot(cqe->user_data);
  bool more = cqe->flags & IORING_CQE_F_MORE;
  bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;
  uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
  conn_t *c = slot < w->conns_max ? &w->conns[slot] : NULL;
  if (!c || c->gen != idm_ud_gen(cqe->user_data) || c->state == C_FREE) {
    if (has_buf)
      idm_ring_buf_recycle(&w->ring, bid);
    return;
  }
  if (!more) {
    c->recv_armed = false;
    op_done(w, c);
  }
  if (c->state != C_OPEN) {
    if (has_buf)
      idm_ring_buf_recycle(&w->ring, bid);
    return;
  }
  int res = cqe->res;
  if (res > 0) {
    c->active_ns = w->now_ns;
#if IDM_NET_STAGES
    if (c->in_off == c->in_len && !c->nparked)
      c->rx_ns = w->now_ns;
#endif
    if (has_buf) {
      size_t free_tail = IDM_NET_CONN_IN_BYTES - c->in_len;
      if ((size_t)res > free_tail && c->in_off) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
        free_tail = IDM_NET_CONN_IN_BYTES - c->in_len;
      }
      if ((size_t)res > free_tail || c->nparked) {
        /* Input full (the peer sends faster than we may answer): hold the buffer back
         * and stop the multishot receive; TCP flow control does the rest. */
        if (c->nparked >= PARKED_MAX) {
          idm_ring_buf_recycle(&w->ring, bid);
          IDM_MET_INC(&w->metrics.parse_errors);
          conn_close(w, c);
          return;
        }
        c->parked_bid[c->nparked] = bid;
        c->parked_len[c->nparked] = (uint16_t)res;
        c->nparked++;
        if (more && !c->cancel_sent) {
          struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
          if (sqe) {
            io_uring_prep_cancel64(sqe, cqe->user_data, 0);
            io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_CANCEL, 0, 0));
            c->cancel_sent = true;
            io_uring_submit(&w->ring.ring); /* now: every CQE until then is parked */
          }
        }
        mark_ready(w, c);
        return;
      }
      memcpy(c->in + c->in_len, idm_ring_buf(&w->ring, bid), (size_t)res);
      idm_ring_buf_recycle(&w->ring, bid);
    }
    c->in_len += (uint32_t)res;
    mark_ready(w, c);
    return;
  }
  if (has_buf)
    idm_ring_buf_recycle(&w->ring, bid);
  if (res == 0) {
    c->peer_eof = true;
    mark_ready(w, c);
  } else if (res == -ENOBUFS || res == -ECANCELED) {
    mark_ready(w, c); /* re-armed once buffers are back / the input has room */
  } else if (res == -EINVAL && w->ring.multishot_recv) {
    w->ring.multishot_recv = false;
    idm_log("warn", "io_uring", "msg", "multishot receive refused by the kernel; using single-shot",
            NULL);
    mark_ready(w, c);
  } else if (res != -EINTR && res != -EAGAIN) {
    conn_close(w, c);
  } else {
    mark_ready(w, c);
  }
}

static void on_send(worker_t *w, struct io_uring_cqe *cqe) {
  uint32_t slot = idm_ud_slot(cqe->user_data);
  conn_t *c = slot < w->conns_max ? &w->conns[slot] : NULL;
  if (!c || c->gen != idm_ud_gen(cqe->user_data) || c->state == C_FREE)
    return;
  c->send_busy = false;
  op_done(w, c);
  if (c->state != C_OPEN)
    return;
  if (cqe->res < 0) {
    conn_close(w, c);
    return;
  }
  uint32_t n = (uint32_t)cqe->res;
  if (n > c->out_len)
    n = c->out_len;
  memmove(c->out, c->out + n, c->out_len - n);
  c->out_len -= n;
  if (n)
    c->active_ns = w->now_ns;
  if (c->h1_paused) {
    c->h1_paused = false;
    mark_ready(w, c);
  }
  mark_dirty(w, c);
}

/* ---- timers and drain ------------------------------------------------------------ */

static void tick(worker_t *w) {
  for (uint32_t i = 0; i < w->conns_max; i++) {
    conn_t *c = &w->conns[i];
    if (c->state != C_OPEN)
      continue;
    if (c->req_start_ns && w->now_ns - c->req_start_ns > g.header_timeout_ns) {
      IDM_MET_INC(&w->metrics.timeouts);
      if (c->proto != P_H2 && !c->out_len && !c->send_busy) {
        h1_error(w, c, 408, "request not received in time");
        c->in_off = c->in_len = 0;
      } else {
        conn_close(w, c);
      }
      continue;
    }
    bool busy = c->req_start_ns || c->out_len || c->send_busy || c->h1_wait ||
                (c->h2 && idm_h2_streams(c->h2));
    if (!busy && w->now_ns - c->active_ns > g.idle_timeout_ns) {
      IDM_MET_INC(&w->metrics.timeouts);
      if (c->h2) {
        idm_h2_goaway(c->h2);
        c->want_close = true;
        mark_dirty(w, c);
      } else {
        conn_close(w, c);
      }
      continue;
    }
    if (w->draining) {
      if (w->now_ns > w->drain_deadline_ns) {
        conn_close(w, c);
      } else if (c->h2) {
        idm_h2_goaway(c->h2);
        mark_dirty(w, c);
      } else if (!busy) {
        conn_close(w, c);
      }
    }
  }
}

static void start_drain(worker_t *w) {
  w->draining = true;
  w->router.draining = true;
  w->drain_deadline_ns = w->now_ns + g.drain_timeout_ns;
  for (unsigned i = 0; i < w->nl; i++) {
    if (w->lfd[i] >= 0) {
      /* Cancel the armed accept, then stop listening: new connections go elsewhere. */
      struct io_uring_sqe *sqe = idm_ring_sqe(&w->ring);
      if (sqe) {
        io_uring_prep_cancel64(sqe, idm_ud_make(IDM_OP_ACCEPT, i, 0), 0);
        io_uring_sqe_set_data64(sqe, idm_ud_make(IDM_OP_CANCEL, 0, 0));
      }
      io_uring_submit(&w->ring.ring);
      close(w->lfd[i]);
      w->lfd[i] = -1;
    }
  }
  tick(w);
}

/* ---- the loop -------------------------------------------------------------------- */

static void refresh_snapshot(worker_t *w) {
  idm_snapshot_t *s = atomic_load_explicit(&g.snap, memory_order_acquire);
  /* A lingering batch (seal_due) was gathered under the old snapshot and key: seal it
   * first; if it cannot be sealed yet (every slot busy), move next turn. */
  if (s != w->snap && w->batch && idm_batch_pending(w->batch)) {
    w->seal_reason = IDM_SEAL_OTHER;
    if (seal_submit(w) != IDM_OK)
      return;
  }
  if (s != w->snap) {
    w->snap = s;
    w->router.snap = s;
    idm_exchange_ctx_set_snapshot(&w->ex, s);
    const idm_key_t *k = s ? idm_keyring_signer(s->keys, IDM_KEY_EDDSA) : NULL;
    idm_why_t why = {{0}};
    if (w->batch && k && idm_batch_set_key(w->batch, k, &why) != IDM_OK)
      idm_log("error", "batch_key", "msg", why.text, NULL);
  }
  atomic_store_explicit(&w->seen_gen, s ? s->gen : 0, memory_order_release);
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  w->now_ns = idm_clock_mono_ns();
  w->next_tick_ns = w->now_ns + IDM_NET_TICK_MS * 1000000LL;
  w->turn_scale = 1;
  w->util_t0 = w->now_ns;
  w->seal_reason = IDM_SEAL_SATURATED;
  idm_why_t rwhy = {{0}};
  if (idm_ring_start(&w->ring, &rwhy) != IDM_OK) {
    idm_log("error", "io_uring", "msg", rwhy.text, NULL);
    atomic_store(&g.stop, true); /* the others drain; main sees every worker gone: exit 1 */
    atomic_store(&w->seen_gen, UINT64_MAX);
    return NULL;
  }
  arm_accept(w);
  arm_hashed(w);
  for (;;) {
    refresh_snapshot(w);
    if (!w->draining && atomic_load(&g.stop))
      start_drain(w);
    if (w->draining && w->nopen == 0 && w->npend == 0 &&
        (!w->batch || idm_batch_inflight(w->batch) == 0) && !w->grp.busy && !w->fs.busy)
      break;
    /* While batches wait for their audit line, another thread may be writing it: its
     * writer wakes us with a ring message when it is done (group_wake), so we wait at most
     * IDM_NET_AUDIT_POLL_MS (a backstop: a log failed by the preallocation zeroer wakes
     * no one). Without ring messages, or while a line is held for the zeroer, poll at 1 ms. */
    bool inflight = w->batch && idm_batch_inflight(w->batch);
    long long poll_ns = !g.msg_ring || atomic_load_explicit(&g.audit_held, memory_order_relaxed)
                            ? 1000000LL
                            : IDM_NET_AUDIT_POLL_MS * 1000000LL;
    struct __kernel_timespec ts = {0, inflight ? poll_ns : IDM_NET_TICK_MS * 1000000LL};
    if (w->batch && idm_batch_pending(w->batch)) { /* a lingering batch: wake to seal it */
      int64_t gap = audit_idle(w) ? seal_gap_idle_ns(w) : IDM_NET_SEAL_GAP_US * 1000LL;
      int64_t left = w->last_seal_ns + gap - idm_clock_mono_ns();
      ts.tv_nsec = left < 1000 ? 1000 : left < ts.tv_nsec ? left : ts.tv_nsec;
    }
    struct io_uring_cqe *cqe = NULL;
    int rc;
    w->turn_reqs = 0;
    /* Work is waiting: do not block — unless the turn budget is still spent because every
     * batch slot awaits its audit write (the seal was refused); then wait for one. */
    if (w->ncarry && !turn_spent(w)) {
      /* a deferred-task-run ring runs its completions only when asked to */
      rc = w->ring.deferred ? io_uring_submit_and_get_events(&w->ring.ring)
                            : io_uring_submit(&w->ring.ring);
      for (uint32_t i = 0; i < w->ncarry; i++) {
        w->conns[w->carry[i]].in_carry = false;
        mark_ready(w, &w->conns[w->carry[i]]);
      }
      w->ncarry = 0;
    } else {
      int64_t t_wait = idm_clock_mono_ns();
      rc = io_uring_submit_and_wait_timeout(&w->ring.ring, &cqe, 1, &ts, NULL);
      w->idle_ns += idm_clock_mono_ns() - t_wait;
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
      char e[64];
      snprintf(e, sizeof e, "%s", strerror(-rc));
      idm_log("error", "io_uring", "msg", "submit_and_wait failed", "error", e, NULL);
      break;
    }
    w->now_ns = idm_clock_mono_ns();
    if (w->now_ns - w->util_t0 >= IDM_NET_UTIL_WINDOW_US * 1000LL) {
      int64_t win = w->now_ns - w->util_t0;
      int64_t busy = win > w->idle_ns ? win - w->idle_ns : 0;
      w->util_pm = (w->util_pm + (uint32_t)(busy * 1000 / win)) / 2;
      w->util_t0 = w->now_ns;
      w->idle_ns = 0;
    }
    refresh_date(w);
    w->router.overloaded = false;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&w->ring.ring, head, cqe) {
      switch (idm_ud_op(cqe->user_data)) {
      case IDM_OP_ACCEPT: on_accept(w, cqe); break;
      case IDM_OP_RECV: on_recv(w, cqe); break;
      case IDM_OP_SEND: on_send(w, cqe); break;
      case IDM_OP_WRITE:
      case IDM_OP_FSYNC: on_audit_cqe(w, cqe); w->audit_cqes++; break;
      case IDM_OP_WAKE: w->audit_cqes++; break; /* another thread's write released ours */
      case IDM_OP_HASHED: on_hashed(w, cqe); break;
      default: break;
      }
      if (++seen >= IDM_NET_CQES_PER_TURN)
        break;
    }
    io_uring_cq_advance(&w->ring.ring, seen);
    /* An audit write or sync completed: release its answers and send them now, before this
     * turn reads and seals anything (a turn's work, a jwt batch's signatures above all,
     * would otherwise hold them back). Only the connections on_done made dirty are sent
     * here; the end of the turn flushes (and closes) the rest as usual. */
    if (w->batch && w->audit_cqes) {
      uint32_t from = w->ndirty;
      if (idm_batch_complete(w->batch, on_done, w))
        for (uint32_t i = from; i < w->ndirty; i++)
          conn_send(w, &w->conns[w->dirty[i]]);
    }
    w->audit_cqes = 0;
    /* Parse and answer. A connection may re-enter the list (send completion): bounded by
     * the list's capacity, one entry per connection at a time. */
    uint32_t requests_before = (uint32_t)__atomic_load_n(&w->metrics.lat_count, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < w->nready; i++) {
      conn_t *c = &w->conns[w->ready[i]];
      c->in_ready = false;
      if (turn_spent(w)) { /* the rest first next turn, in the same order */
        carry_over(w, c);
        continue;
      }
      conn_process(w, c);
      uint32_t done = (uint32_t)__atomic_load_n(&w->metrics.lat_count, __ATOMIC_RELAXED) -
                      requests_before;
      if (done >= IDM_NET_QUEUED_MAX)
        w->router.overloaded = true; /* shed issuance for the rest of this turn */
    }
    w->nready = 0;
    /* Group commit: seal what this turn decided, start its audit write, and release every
     * answer whose line is on file. */
    if (w->batch) {
      idm_batch_complete(w->batch, on_done, w); /* frees slots a refused seal may need */
      if (idm_batch_pending(w->batch) && seal_due(w))
        seal_submit(w);
      uint64_t upto;
      if (g.audit && !w->fs.busy && idm_audit_fsync_due(g.audit, w->now_ns, &upto)) {
        w->fs = (audit_sync_t){.busy = true, .upto = upto};
        submit_fsync(w);
      }
      idm_batch_complete(w->batch, on_done, w);
      if (g.audit)
        write_kick(w);
      if (w->audit_inline_done) /* written in this turn: answer in this turn */
        idm_batch_complete(w->batch, on_done, w);
      w->audit_inline_done = false;
    }
    for (uint32_t i = 0; i < w->ndirty; i++) {
      conn_t *c = &w->conns[w->dirty[i]];
      c->in_dirty = false;
      conn_flush(w, c);
    }
    w->ndirty = 0;
#if IDM_NET_STAGES
    if (seen || requests_before != (uint32_t)__atomic_load_n(&w->metrics.lat_count, __ATOMIC_RELAXED))
      ST_ADD(w, ST_TURN, ST_NOW() - w->now_ns);
#endif
    /* Saturated (work carried to the next turn): a larger budget next turn; else back to
     * the latency-bounding one. */
    if (w->ncarry)
      w->turn_scale = w->turn_scale < IDM_NET_TURN_SCALE_MAX ? w->turn_scale + 1 : w->turn_scale;
    else
      w->turn_scale = 1;
    arm_accept(w);
    if (w->now_ns >= w->next_tick_ns) {
      w->next_tick_ns = w->now_ns + IDM_NET_TICK_MS * 1000000LL;
      tick(w);
      for (uint32_t i = 0; i < w->ndirty; i++) {
        conn_t *c = &w->conns[w->dirty[i]];
        c->in_dirty = false;
        conn_flush(w, c);
      }
      w->ndirty = 0;
    }
  }
  atomic_store(&w->seen_gen, UINT64_MAX);
#if IDM_NET_STAGES
  char line[IDM_LOG_LINE_MAX - 256], *o = line;
  for (unsigned st = 0; st < ST_N; st++) {
    double pv[5] = {0};
    static const double pq[5] = {0.5, 0.9, 0.99, 0.999, 1.0};
    uint64_t acc = 0;
    unsigned k = 0;
    for (unsigned i = 0; i < ST_BUCKETS && k < 5; i++) {
      acc += w->st.b[st][i];
      while (k < 5 && w->st.n[st] && acc >= (uint64_t)(pq[k] * (double)w->st.n[st]))
        pv[k++] = st_upper_us(i);
    }
    o += snprintf(o, (size_t)(line + sizeof line - o), "%s%s n=%llu p50=%.0f p90=%.0f p99=%.0f p99.9=%.0f max=%.0f us",
                  st ? "; " : "", ST_NAME[st], (unsigned long long)w->st.n[st], pv[0], pv[1],
                  pv[2], pv[3], pv[4]);
  }
  idm_log("info", "net_stages", "msg", line, NULL);
#endif
  return NULL;
}

/* ---- start-up -------------------------------------------------------------------- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len) {
  char host[256], port[16];
  const char *colon = strrchr(s, ':');
  if (!colon || !colon[1] || strlen(colon + 1) >= sizeof port)
    return -1;
  size_t hl = (size_t)(colon - s);
  if (hl >= sizeof host)
    return -1;
  memcpy(host, s, hl);
  host[hl] = '\0';
  snprintf(port, sizeof port, "%s", colon + 1);
  char *h = host;
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
    h[hl - 1] = '\0';
    h++;
  }
  if (!*h || !strcmp(h, "*"))
    h = "0.0.0.0";
  struct addrinfo hints, *ai = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(h, port, &hints, &ai) != 0 || !ai)
    return -1;
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  *len = ai->ai_addrlen;
  freeaddrinfo(ai);
  return 0;
}

static int open_listener(struct sockaddr_storage *ss, socklen_t len, idm_why_t *why) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    idm_fail(why, IDM_ERR_LISTEN, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
    idm_fail(why, IDM_ERR_LISTEN, "%s", strerror(errno));
    close(fd);
    return -1;
  }
  /* Port 0: learn the port so the other threads' sockets join the same one. */
  socklen_t l = len;
  getsockname(fd, (struct sockaddr *)ss, &l);
  return fd;
}

static void addr_str(const struct sockaddr_storage *ss, char *out, size_t cap) {
  char h[64] = "?";
  unsigned port = 0;
  if (ss->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, h, sizeof h);
    port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    snprintf(out, cap, "%s:%u", h, port);
  } else {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, h, sizeof h);
    port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    snprintf(out, cap, "[%s]:%u", h, port);
  }
}

static idm_err_t worker_init(worker_t *w, unsigned index, uint32_t conns_max, bool single_shot,
                             idm_why_t *why) {
  memset(w, 0, sizeof *w);
  w->index = index;
  for (unsigned i = 0; i < IDM_NET_LISTEN_MAX + 1; i++)
    w->lfd[i] = -1;
  w->unix_li = -1;
  w->peer_free = UINT32_MAX;
  idm_err_t e = idm_ring_init(&w->ring, IDM_NET_RING_ENTRIES, IDM_NET_RECV_BUFS,
                              IDM_NET_RECV_BUF_BYTES, !single_shot, why);
  if (e)
    return e;
  w->conns_max = conns_max;
  w->conns = calloc(conns_max, sizeof *w->conns);
  w->free_slots = calloc(conns_max, sizeof *w->free_slots);
  w->ready = calloc(conns_max, sizeof *w->ready);
  w->dirty = calloc(conns_max, sizeof *w->dirty);
  w->carry = calloc(conns_max, sizeof *w->carry);
  w->scratch = malloc(IDM_NET_RESP_BODY_MAX_BYTES);
  w->body_buf = malloc(IDM_NET_BODY_MAX_BYTES);
  w->bufmem_len = (size_t)conns_max * (IDM_NET_CONN_IN_BYTES + IDM_NET_CONN_OUT_BYTES);
  w->bufmem = mmap(NULL, w->bufmem_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (!w->conns || !w->free_slots || !w->ready || !w->dirty || !w->carry || !w->scratch || !w->body_buf ||
      w->bufmem == MAP_FAILED)
    return idm_fail(why, IDM_ERR_NOMEM, "cannot reserve connection memory for %u connections",
                    conns_max);
  for (uint32_t i = 0; i < conns_max; i++) {
    conn_t *c = &w->conns[i];
    c->slot = i;
    c->fd = -1;
    c->in = w->bufmem + (size_t)i * (IDM_NET_CONN_IN_BYTES + IDM_NET_CONN_OUT_BYTES);
    c->out = c->in + IDM_NET_CONN_IN_BYTES;
    w->free_slots[conns_max - 1 - i] = i;
  }
  w->nfree = conns_max;
  if (idm_pool_init(&w->pool, IDM_NET_POOL_BYTES) != IDM_OK)
    return idm_fail(why, IDM_ERR_NOMEM, "cannot reserve the HTTP/2 pool");
  return IDM_OK;
}

static void worker_cleanup(worker_t *w) {
  for (uint32_t i = 0; w->conns && i < w->conns_max; i++) {
    if (w->conns[i].state == C_OPEN) {
      close(w->conns[i].fd);
      idm_h2_free(w->conns[i].h2);
    }
  }
  for (unsigned i = 0; i < w->nl; i++)
    if (w->lfd[i] >= 0)
      close(w->lfd[i]);
  if (w->ring.ring.ring_fd > 0)
    idm_ring_cleanup(&w->ring);
  idm_exchange_ctx_cleanup(&w->ex);
  idm_batch_free(w->batch);
  free(w->pend);
  idm_pool_cleanup(&w->pool);
  if (w->bufmem && w->bufmem != MAP_FAILED)
    munmap(w->bufmem, w->bufmem_len);
  free(w->conns);
  free(w->free_slots);
  free(w->ready);
  free(w->dirty);
  free(w->carry);
  free(w->scratch);
  free(w->body_buf);
  idm_exehash_free(w->exehash); /* after the ring: no read of its eventfd is left */
  for (uint32_t i = 0; w->peers && i < IDM_NET_UNIX_CONNS_MAX; i++)
    idm_arena_cleanup(&w->peers[i].arena);
  free(w->peers);
}

/* The unix listener: a stale socket file is removed first (a regular file or anything
 * else at the path is an error, never deleted); the socket is made mode 0666 — reaching
 * it is not the gate, the unix trust and the policy on uid/gid/exe are (a deployment that
 * wants the file mode as a first gate puts the socket in a directory only its callers can
 * search). -1 with the reason. */
static int open_unix_listener(const char *path, idm_why_t *why) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    idm_fail(why, IDM_ERR_LISTEN, "unix_socket path is longer than %zu bytes",
             sizeof sa.sun_path - 1);
    return -1;
  }
  memcpy(sa.sun_path, path, strlen(path));
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      idm_fail(why, IDM_ERR_LISTEN, "%s exists and is not a socket; not removing it", path);
      return -1;
    }
    unlink(path);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    idm_fail(why, IDM_ERR_LISTEN, "socket(AF_UNIX): %s", strerror(errno));
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0666) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    idm_fail(why, IDM_ERR_LISTEN, "%s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static void log_error(const char *event, const char *msg) {
  idm_log("error", event, "msg", msg, NULL);
}

/* The server settings a process applies only at start (listeners, threads, the audit log,
 * batch and connection sizes, the node id that keeps jti unique). A reload that changes one
 * still applies everything else, and says which it kept in a "reload_partial" warning, so an
 * operator is not left believing the new value is live. Each is kept as a digest of its
 * value at start. */
enum { FIXED_LISTEN, FIXED_THREADS, FIXED_MAXCONN, FIXED_AUDIT, FIXED_FSYNC, FIXED_BATCH,
       FIXED_UNIX, FIXED_NODE, FIXED_PREALLOC, FIXED_N };
static const char *const fixed_name[FIXED_N] = {"listen", "threads", "max_connections", "audit",
                                                "fsync", "batch_max", "unix_socket", "node_id",
                                                "audit_preallocate"};
static uint64_t g_fixed[FIXED_N];

static uint64_t fixed_str(const char *v, uint64_t seed) {
  return v ? XXH3_64bits_withSeed(v, strlen(v) + 1, seed) : seed; /* NUL: "" is not absent */
}

static void fixed_digest(const pol_server_t *srv, uint64_t out[FIXED_N]) {
  uint64_t h = 1;
  for (uint32_t i = 0; i < srv->listen_count; i++)
    h = fixed_str(srv->listen[i], h);
  out[FIXED_LISTEN] = h;
  out[FIXED_THREADS] = srv->threads;
  out[FIXED_MAXCONN] = srv->max_connections;
  out[FIXED_AUDIT] = fixed_str(srv->audit_path, 0);
  out[FIXED_FSYNC] = fixed_str(srv->fsync, 0);
  out[FIXED_BATCH] = srv->batch_max;
  out[FIXED_UNIX] = fixed_str(srv->unix_socket, 0);
  out[FIXED_NODE] = fixed_str(srv->node_id, 0);
  out[FIXED_PREALLOC] = srv->audit_preallocate;
}

/* Names the start-only settings s changes, comma-separated, into out ("" if none). */
static void fixed_changed(const pol_server_t *srv, char *out, size_t cap) {
  uint64_t now[FIXED_N];
  fixed_digest(srv, now);
  size_t n = 0;
  out[0] = '\0';
  for (int i = 0; i < FIXED_N; i++)
    if (now[i] != g_fixed[i]) {
      int k = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", fixed_name[i]);
      if (k < 0 || (size_t)k >= cap - n)
        break;
      n += (size_t)k;
    }
}

/* Reload: build, swap, wait for every worker to move, free the old snapshot. */
static void reload(const char *path) {
  idm_why_t why = {{0}};
  idm_err_t err = IDM_OK;
  idm_snapshot_t *cur = atomic_load(&g.snap);
  idm_snapshot_t *s = idm_snapshot_load(path, g.clk, &err, &why);
  if (!s) {
    idm_log("error", "reload_refused", "config", path, "msg", idm_why_str(&why, err),
            "kept", "the running configuration keeps serving", NULL);
    return;
  }
  if (strcmp(s->server->issuer, g.issuer) != 0) {
    idm_log("error", "reload_refused", "config", path, "msg",
            "server.issuer changed; the issuer is fixed for the process (restart to change it)",
            NULL);
    idm_snapshot_free(s);
    return;
  }
  if (!idm_keyring_signer(s->keys, IDM_KEY_EDDSA)) {
    idm_log("error", "reload_refused", "config", path, "msg",
            "no active EdDSA key in the new key directory (batches are signed with Ed25519)",
            NULL);
    idm_snapshot_free(s);
    return;
  }
  char kept[160];
  fixed_changed(s->server, kept, sizeof kept);
  s->gen = cur->gen + 1;
  atomic_store_explicit(&g.snap, s, memory_order_release);
  for (int spins = 0; spins < 2000; spins++) {
    bool all = true;
    for (unsigned i = 0; i < g.nthreads; i++)
      if (atomic_load_explicit(&g.workers[i].seen_gen, memory_order_acquire) < s->gen)
        all = false;
    if (all)
      break;
    struct timespec d = {0, 5 * 1000000};
    nanosleep(&d, NULL);
  }
  /* Workers that have not moved in 10 s are wedged; keep the old snapshot alive rather
   * than free memory they might read (a bounded leak beats a use-after-free). */
  bool all = true;
  for (unsigned i = 0; i < g.nthreads; i++)
    if (atomic_load(&g.workers[i].seen_gen) < s->gen)
      all = false;
  if (all)
    idm_snapshot_free(cur);
  char gen[24];
  snprintf(gen, sizeof gen, "%llu", (unsigned long long)s->gen);
  idm_log("info", "reloaded", "config", path, "generation", gen, "policy",
          pol_config_policy_id(s->cfg), NULL);
  if (kept[0])
    idm_log("warn", "reload_partial", "config", path, "kept", kept, "msg",
            "these server settings apply at start only; the running values stay until a restart",
            NULL);
}

/* server.fsync: "none", "batch", or an interval ("100ms", "1s"). */
static int audit_opts(const char *v, idm_audit_opts_t *o) {
  memset(o, 0, sizeof *o);
  if (!v || !strcmp(v, "batch")) {
    o->fsync = IDM_AUDIT_FSYNC_BATCH;
    return 0;
  }
  if (!strcmp(v, "none")) {
    o->fsync = IDM_AUDIT_FSYNC_NONE;
    return 0;
  }
  char *end;
  long long n = strtoll(v, &end, 10);
  long long mul = !strcmp(end, "ms") ? 1 : !strcmp(end, "s") ? 1000 : !strcmp(end, "m") ? 60000 : -1;
  if (end == v || n <= 0 || mul < 0)
    return -1;
  o->fsync = IDM_AUDIT_FSYNC_INTERVAL;
  o->fsync_interval_ms = n * mul;
  return 0;
}

int idm_server_run(const idm_server_opts_t *o) {
  memset(&g, 0, sizeof g);
  g.clk = o->clk;
  g.header_timeout_ns = (o->header_timeout_ms ? o->header_timeout_ms : IDM_NET_HEADER_TIMEOUT_MS) * 1000000LL;
  g.idle_timeout_ns = (o->idle_timeout_ms ? o->idle_timeout_ms : IDM_NET_IDLE_TIMEOUT_MS) * 1000000LL;
  g.drain_timeout_ns = IDM_NET_DRAIN_TIMEOUT_MS * 1000000LL;
  idm_why_t why = {{0}};
  if (idm_ring_available(&why) != IDM_OK) {
    fprintf(stderr, "idmint: serve: %s; idmint needs io_uring (Linux 5.11 or newer, not "
                    "blocked by seccomp or kernel.io_uring_disabled)\n", why.text);
    return 1;
  }
  idm_err_t err = IDM_OK;
  idm_snapshot_t *snap = idm_snapshot_load(o->config_path, g.clk, &err, &why);
  if (!snap) {
    idm_log("error", "config_refused", "config", o->config_path, "msg", idm_why_str(&why, err),
            NULL);
    return 1;
  }
  snap->gen = 1;
  atomic_store(&g.snap, snap);
  const pol_server_t *srv = snap->server;
  if (idm_h2_global_init() != IDM_OK) {
    log_error("start_failed", "nghttp2 setup failed");
    idm_snapshot_free(snap);
    return 1;
  }
  unsigned n = o->threads ? o->threads : srv->threads;
  if (!n) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (unsigned)c : 1;
  }
  if (n > IDM_NET_THREADS_MAX)
    n = IDM_NET_THREADS_MAX;
  g.nthreads = n;
  uint32_t conns_max = srv->max_connections ? srv->max_connections : IDM_NET_CONNS_MAX_DEFAULT;
  g.naddr = srv->listen_count < IDM_NET_LISTEN_MAX ? srv->listen_count : IDM_NET_LISTEN_MAX;
  for (unsigned i = 0; i < g.naddr; i++) {
    if (parse_listen(srv->listen[i], &g.addr[i], &g.alen[i]) != 0) {
      idm_log("error", "config_refused", "config", o->config_path, "msg",
              "listen address is not HOST:PORT with a numeric host", "listen", srv->listen[i],
              NULL);
      idm_snapshot_free(snap);
      return 1;
    }
  }
  snprintf(g.issuer, sizeof g.issuer, "%s", srv->issuer);
  fixed_digest(srv, g_fixed);
  idm_audit_opts_t aopt;
  if (audit_opts(srv->fsync, &aopt) != 0) {
    idm_log("error", "config_refused", "config", o->config_path, "msg",
            "server.fsync must be none, batch or an interval like 100ms", NULL);
    idm_snapshot_free(snap);
    return 1;
  }
  _Static_assert(IDM_AUDIT_PREALLOC_MAX_MIB == 16384, "policy/parse.c audit_preallocate bound");
  aopt.preallocate = (uint64_t)srv->audit_preallocate << 20;
  g.audit = idm_audit_open(srv->audit_path, &aopt, &why);
  if (!g.audit) {
    idm_log("error", "audit_open_failed", "path", srv->audit_path, "msg", why.text, NULL);
    idm_snapshot_free(snap);
    return 1;
  }
  if (idm_audit_recovered_bytes(g.audit)) {
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)idm_audit_recovered_bytes(g.audit));
    idm_log("warn", "audit_recovered", "path", srv->audit_path, "torn_tail_bytes", b, NULL);
  }
  const idm_key_t *root_key = idm_keyring_signer(snap->keys, IDM_KEY_EDDSA);
  if (!root_key) {
    idm_log("error", "config_refused", "keys", srv->keys_dir, "msg",
            "no active EdDSA key: batches (and the audit log) are signed with Ed25519; run "
            "idmint keys new --dir KEYS --alg EdDSA", NULL);
    idm_audit_close(g.audit);
    idm_snapshot_free(snap);
    return 1;
  }
  g.workers = calloc(n, sizeof *g.workers);
  g.metrics = calloc(n, sizeof *g.metrics);
  if (!g.workers || !g.metrics) {
    log_error("start_failed", "out of memory");
    return 1;
  }
  int rc = 1;
  unsigned started = 0;
  for (unsigned i = 0; i < n; i++) {
    worker_t *w = &g.workers[i];
    err = worker_init(w, i, conns_max, o->single_shot, &why);
    if (!err)
      err = idm_exchange_ctx_init(&w->ex, i, srv->node_id, 4096, g.clk, &w->metrics, &why);
    if (!err) {
      idm_batch_opts_t bo = {.key = root_key, .items_max = srv->batch_max, .log = g.audit,
                             .iss = g.issuer, .clk = g.clk};
      if (bo.items_max > IDM_BATCH_ITEMS_MAX)
        bo.items_max = IDM_BATCH_ITEMS_MAX;
      err = idm_batch_new(&w->batch, &bo, &why);
    }
    if (!err) {
      w->pend = calloc(IDM_NET_PENDING_MAX, sizeof *w->pend);
      if (!w->pend)
        err = idm_fail(&why, IDM_ERR_NOMEM, "cannot reserve the pending-answer pool");
      for (uint32_t k = 0; w->pend && k < IDM_NET_PENDING_MAX; k++)
        w->pend[k].next_free = k + 1 < IDM_NET_PENDING_MAX ? k + 1 : UINT32_MAX;
      w->pend_free = 0;
    }
    if (err) {
      if (err == IDM_ERR_URING_UNAVAILABLE)
        fprintf(stderr, "idmint: serve: %s\n", why.text);
      else
        log_error("start_failed", idm_why_str(&why, err));
      goto out;
    }
    g.metrics[i] = &w->metrics;
    for (unsigned a = 0; a < g.naddr; a++) {
      w->lfd[a] = open_listener(&g.addr[a], g.alen[a], &why);
      if (w->lfd[a] < 0) {
        char as[80];
        addr_str(&g.addr[a], as, sizeof as);
        idm_log("error", "listen_failed", "addr", as, "msg", why.text, NULL);
        goto out;
      }
      w->nl = a + 1;
    }
    if (i == 0 && srv->unix_socket) {
      w->peers = calloc(IDM_NET_UNIX_CONNS_MAX, sizeof *w->peers);
      if (!w->peers) {
        log_error("start_failed", "cannot reserve the unix peer records");
        goto out;
      }
      for (uint32_t k = 0; k < IDM_NET_UNIX_CONNS_MAX; k++) {
        if (idm_arena_init(&w->peers[k].arena, IDM_NET_UNIX_PEER_BYTES) != IDM_OK) {
          log_error("start_failed", "cannot reserve the unix peer records");
          goto out;
        }
        w->peers[k].next_free = k + 1 < IDM_NET_UNIX_CONNS_MAX ? k + 1 : UINT32_MAX;
      }
      w->peer_free = 0;
      idm_why_t hwhy = {{0}};
      w->exehash = idm_exehash_new(IDM_NET_UNIX_CONNS_MAX, &hwhy);
      if (!w->exehash) /* the peers' executables are then hashed in the loop */
        idm_log("warn", "exehash_unavailable", "msg", hwhy.text, NULL);
      if (strlen(srv->unix_socket) >= sizeof g.unix_path) {
        idm_log("error", "listen_failed", "path", srv->unix_socket, "msg",
                "unix_socket path is too long for a socket address", NULL);
        goto out;
      }
      int ufd = open_unix_listener(srv->unix_socket, &why);
      if (ufd < 0) {
        idm_log("error", "listen_failed", "path", srv->unix_socket, "msg", why.text, NULL);
        goto out;
      }
      snprintf(g.unix_path, sizeof g.unix_path, "%s", srv->unix_socket);
      w->unix_li = (int)w->nl;
      w->lfd[w->nl++] = ufd;
    }
  }
  for (unsigned i = 0; i < n; i++) {
    worker_t *w = &g.workers[i];
    w->router.snap = snap;
    w->router.ex = &w->ex;
    w->router.m = &w->metrics;
    w->router.all_metrics = g.metrics;
    w->router.thread_count = n;
    w->router.scratch = w->scratch;
    w->router.scratch_cap = IDM_NET_RESP_BODY_MAX_BYTES;
    w->router.audit = g.audit;
    w->router.pend_get = pend_get;
    w->router.pend_put = pend_put;
    w->router.pend_ud = w;
    w->ex.batch = w->batch;
    w->ex.seal = seal_submit;
    w->ex.seal_ud = w;
  }
  g.msg_ring = true; /* a thread wakes another only if every ring takes messages */
  for (unsigned i = 0; i < n; i++)
    g.msg_ring = g.msg_ring && g.workers[i].ring.msg_ring;
  char line[256];
  idm_ring_describe(&g.workers[0].ring, line, sizeof line);
  idm_log("info", "io_uring", "msg", line, NULL);
  size_t per_thread = (size_t)conns_max * (IDM_NET_CONN_IN_BYTES + IDM_NET_CONN_OUT_BYTES) +
                      IDM_NET_POOL_BYTES + (size_t)IDM_NET_RECV_BUFS * IDM_NET_RECV_BUF_BYTES +
                      IDM_NET_REQ_ARENA_BYTES + (size_t)IDM_NET_PENDING_MAX * sizeof(pending_t);
  char mem[160];
  snprintf(mem, sizeof mem, "%u threads x %u connections; at most %zu MiB of buffers per thread",
           n, conns_max, per_thread >> 20);
  idm_log("info", "memory", "msg", mem, NULL);

  /* A file-size limit (RLIMIT_FSIZE) reached by an audit write made in a worker thread
   * (fsync none or an interval) fails it with EFBIG — issuance stops, fail closed —
   * instead of SIGXFSZ killing the process. */
  signal(SIGXFSZ, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  for (; started < n; started++) {
    if (pthread_create(&g.workers[started].tid, NULL, worker_main, &g.workers[started]) != 0) {
      log_error("start_failed", "cannot start a worker thread");
      atomic_store(&g.stop, true);
      goto join;
    }
  }
  for (unsigned a = 0; a < g.naddr; a++) {
    char as[80];
    addr_str(&g.addr[a], as, sizeof as);
    idm_log("info", "listening", "addr", as, "issuer", srv->issuer, "protocols",
            "http/1.1, h2c (prior knowledge)", NULL);
  }
  if (g.unix_path[0])
    idm_log("info", "listening", "unix", g.unix_path, "issuer", srv->issuer, "protocols",
            "http/1.1, h2c (prior knowledge); peers identified by SO_PEERCRED", NULL);
  for (;;) {
    struct timespec to = {0, 200 * 1000000};
    int sig = sigtimedwait(&set, NULL, &to);
    if (sig == SIGTERM || sig == SIGINT) {
      idm_log("info", "draining", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
      atomic_store(&g.stop, true);
      break;
    }
    if (sig == SIGHUP)
      reload(o->config_path);
    bool alive = false;
    for (unsigned i = 0; i < n; i++)
      if (atomic_load(&g.workers[i].seen_gen) != UINT64_MAX)
        alive = true;
    if (!alive) {
      log_error("stopped", "every worker thread has stopped");
      atomic_store(&g.stop, true);
      goto join;
    }
  }
  rc = 0;
join:
  for (unsigned i = 0; i < started; i++)
    pthread_join(g.workers[i].tid, NULL);
  if (rc == 0)
    idm_log("info", "stopped", "msg", "drained; exiting", NULL);
out:
  for (unsigned i = 0; i < n; i++)
    worker_cleanup(&g.workers[i]);
  free(g.workers);
  free(g.metrics);
  if (g.unix_path[0]) /* ours: created at start */
    unlink(g.unix_path);
  idm_audit_close(g.audit);
  idm_snapshot_free(atomic_load(&g.snap));
  return rc;
}
