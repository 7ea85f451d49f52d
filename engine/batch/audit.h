/* The audit transparency log (DESIGN.md "Audit"): one JSON line per sealed batch, chained
 * by the hash of the previous line, shared by every thread of a process; its writer's
 * bookkeeping (written / fsynced watermarks, fail-closed state); and its verifier.
 *
 * LINE FORMAT v2 (docs/TOKENS.md "Audit log" gives every field):
 *   {"v":2,"seq":S,"time":T,"kid":KID,"iss":ISS,"size":N,"root":B64,"sig":B64,
 *    "entries":[ENTRY,...],"prev":B64}\n
 * where root/sig are those of the batch message of batch/btoken.h, "prev" is the
 * base64url SHA-256 of the previous line's bytes (its '\n' excluded; 32 zero bytes for
 * the first line), and each ENTRY is one decision ([..]: only when it differs from the
 * default in docs/TOKENS.md):
 *   {"d":"allow"[,"alg":..,"kid":..],"sub":..[,"trust":..],"target":..[,"aud":..],
 *    "scope":..[,"policy":..],"rules":[..][,"iat":..][,"nbf":..],"ttl":..,"jti":..}
 *   {"d":"deny","sub":..,"trust":..,"target":..,"scope":..,"rules":[..],"reason":..}
 * An allow entry with the line's iss, kid and time rebuilds its credential's signing
 * input, so the leaf is not written.  * "prev" is written last so that a thread hashes its whole line before it takes the
 * log's lock, and only the final 45 bytes are hashed inside it.
 *
 * CONCURRENCY (one log, many threads, each with its own batcher and ring):
 *  - Sequence numbers come from one atomic counter (idm_audit_seq_reserve), taken before
 *    the batch is signed; sequences are unique but may appear out of file order by up to
 *    the number of concurrently sealing threads (the verifier allows IDM_AUDIT_REORDER_MAX).
 *  - idm_audit_chain is the critical section that orders lines, once per batch: it links
 *    the line to the previous one and assigns the line its file offset. File order = chain
 *    order, because every write is positional.
 *  - A record is "released" (its responses may be sent) when every byte before its end
 *    has been written (policy none/interval) or written and fsynced (policy batch). So a
 *    client never holds a credential whose line could be lost behind an unwritten hole.
 *  - Any failed or short-and-abandoned write, or failed fsync, flips the log into the
 *    failed state for good (fail closed): every batcher refuses new items with
 *    IDM_ERR_AUDIT_FAILED and /readyz reports idm_audit_failed's reason.
 *
 * ASYNCHRONOUS USE (the server; group commit across its threads, see "write queue"):
 *    seal → idm_audit_enqueue(log, line, ...) → any thread: idm_audit_take(log, &grp)
 *    makes it THE writer of every queued line contiguous from the lowest unwritten offset
 *    → pwritev(fd, grp.iov, grp.n, grp.off) (policy batch: through its ring, RWF_DSYNC)
 *    → idm_audit_written(log, off, res) (+ policy batch: idm_audit_synced(log, grp.end, 0))
 *    → idm_audit_put(log); wake the threads named in grp.owner
 *    → policy interval: each loop turn, if idm_audit_fsync_due(...) submit fdatasync
 *    → idm_batch_complete() releases the batches whose end <= idm_audit_released_upto.
 *    One writer at a time, in file order: a crash leaves a torn or missing tail, no hole.
 * SYNCHRONOUS USE (CLI, tests, benchmarks): idm_audit_write_sync does pwrite (+ fdatasync
 * for policy batch) and the same bookkeeping (not mixed with the queue on one log). */
#ifndef IDM_BATCH_AUDIT_H
#define IDM_BATCH_AUDIT_H

#include <openssl/sha.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "batch/merkle.h"
#include "core/limits.h"
#include "core/error.h"
#include "crypto/jose.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum idm_audit_fsync {
  IDM_AUDIT_FSYNC_NONE = 0,  /* never fsync; release once written to the page cache */
  IDM_AUDIT_FSYNC_BATCH,     /* fdatasync after each record; release once durable */
  IDM_AUDIT_FSYNC_INTERVAL,  /* fdatasync every interval_ms; release once written */
} idm_audit_fsync_t;

typedef struct idm_audit_opts {
  idm_audit_fsync_t fsync;
  int64_t fsync_interval_ms;  /* IDM_AUDIT_FSYNC_INTERVAL only; > 0 */
  /* PREALLOCATION (server.audit_preallocate; 0 = off). A background thread keeps this
   * many bytes past the log's logical end written with zeros and synced, so that a line
   * overwrites blocks that already exist and its fdatasync flushes data only (no i_size
   * change, no journal commit). The file's size then runs ahead of its content: its
   * logical end is after its last complete line, and only zero bytes follow it. */
  uint64_t preallocate;
  uint32_t zero_chunk;        /* bytes zeroed (and synced) per step; 0 = IDM_AUDIT_ZERO_CHUNK */
} idm_audit_opts_t;

typedef struct idm_audit_log idm_audit_log_t; /* opaque; thread-safe */

/* Opens (creating 0600 if missing) the log at path for appending. An existing log is
 * scanned: every complete line must be well formed and chained to the one before (else
 * the open fails naming the line, so a tampered log is never extended); a torn tail
 * (what a crash leaves after the last complete line: an unterminated line, the zeros of
 * a preallocated region, lines of other threads written around an unwritten one) is cut
 * off, which is safe because no response was released for it. A tail is accepted as a
 * crash's only when every run of non-zero bytes in it starts where a line or a page
 * starts and at most IDM_AUDIT_TORN_LINES_MAX line ends follow its first zero byte; else
 * the open fails naming the offset and line (a log zeroed or damaged mid-file). The chain
 * and the sequence continue from the last good line. With opts->preallocate the zeroing
 * thread starts here. Start-up path: allocates and reads the whole file. */
idm_audit_log_t *idm_audit_open(const char *path, const idm_audit_opts_t *opts,
                                idm_why_t *why);
/* NULL is a no-op; does not fsync. With preallocation: stops the zeroing thread and
 * truncates the file to the written watermark (its last complete line), so a clean stop
 * leaves a file that ends with its last line. */
void idm_audit_close(idm_audit_log_t *log);

/* The file descriptor for the server's positional writes (owned by the log). */
int idm_audit_fd(const idm_audit_log_t *log);
const idm_audit_opts_t *idm_audit_options(const idm_audit_log_t *log);
/* Bytes cut off as a torn tail by idm_audit_open (for the start-up log line). */
uint64_t idm_audit_recovered_bytes(const idm_audit_log_t *log);

/* Next batch sequence (atomic; unique for this log). */
uint64_t idm_audit_seq_reserve(idm_audit_log_t *log);

/* The one critical section per batch. `partial` is the SHA-256 state over the line's
 * bytes up to and including `"prev":"`; the line ends with prev's 43 base64url
 * characters, `"}` and '\n', and is line_len bytes in all. Under the log's lock this
 * writes the previous line's hash into prev_b64 (43 chars, no NUL), finishes this line's
 * hash, and reserves [*offset, *offset + line_len) of the file for it. */
void idm_audit_chain(idm_audit_log_t *log, const SHA256_CTX *partial, char prev_b64[43],
                     size_t line_len, uint64_t *offset);

/* Preallocation: may the line reserved as [offset, end) be written now? False while the
 * zeroing thread is writing zeros over a range the line reaches (it reserved its offset
 * after the zeroer claimed the range, when the zeroer had fallen behind the log's end);
 * true for good once the zeroer is done with it. Always true without preallocation. An
 * atomic read: the server keeps such a write back and retries it on a later loop turn.
 * INVARIANT: the zeroer claims a range only at or beyond every offset reserved so far
 * (under the log's lock) and never writes below it, so zeros never land on a line. */
bool idm_audit_may_write(const idm_audit_log_t *log, uint64_t end);
/* Preallocation: bytes on file as lines or zeros ([0, this)); for tests and metrics. */
uint64_t idm_audit_zeroed_upto(idm_audit_log_t *log);

/* Write bookkeeping. idm_audit_written: the bytes [offset, offset + n) are on file; a
 * negative n is -errno of a failed write (fails the log closed). A short write is
 * reported with the bytes done and the caller writes the rest (or reports failure).
 * idm_audit_synced: an fdatasync issued when the written watermark was `upto` finished
 * with res (0 or -errno). */
void idm_audit_written(idm_audit_log_t *log, uint64_t offset, int64_t n);
void idm_audit_synced(idm_audit_log_t *log, uint64_t upto, int res);
/* Every byte before this offset is on file (read it just before issuing an fdatasync
 * and pass it to idm_audit_synced). */
uint64_t idm_audit_written_upto(idm_audit_log_t *log);
/* Records whose end offset is <= this may be released (see CONCURRENCY). Atomic read. */
uint64_t idm_audit_released_upto(const idm_audit_log_t *log);
/* IDM_AUDIT_FSYNC_INTERVAL: true when an fdatasync is due at mono time now_ns and none
 * is in flight; the caller then issues it and reports idm_audit_synced(log, *upto, res).
 * For the other policies: false (batch issues its own; none never does). */
bool idm_audit_fsync_due(idm_audit_log_t *log, int64_t now_ns, uint64_t *upto);

/* Fail closed: the first reason sticks. */
void idm_audit_fail(idm_audit_log_t *log, const char *reason);
/* True when the log has failed; the reason goes into *why (for /readyz). Atomic read. */
bool idm_audit_failed(const idm_audit_log_t *log, idm_why_t *why);

/* ---- the write queue (group commit across threads) ----------------------------------- */

/* One writer's group: lines [off, end) of the file, contiguous, iov[0..n) in order, each
 * with the owner its thread gave idm_audit_enqueue. */
typedef struct idm_audit_group {
  uint64_t off, end;
  unsigned n;
  struct iovec iov[IDM_AUDIT_GROUP_LINES_MAX];
  uint32_t owner[IDM_AUDIT_GROUP_LINES_MAX];
} idm_audit_group_t;

/* Queues a chained line whose bytes are final, [offset, offset + len), for the writer.
 * rec must stay valid until the line is released (idm_audit_released_upto passes its end)
 * or the log has failed. owner is the caller's (the server's worker index). A full queue
 * (cannot happen: at most one line per batch slot of every thread) fails the log. */
void idm_audit_enqueue(idm_audit_log_t *log, const char *rec, size_t len, uint64_t offset,
                       uint32_t owner);
/* Becomes the log's one writer: true with *grp = every queued line contiguous from the
 * lowest offset not yet taken (at most IDM_AUDIT_GROUP_LINES_MAX, each allowed by
 * idm_audit_may_write). The caller writes it whole (short writes: the rest, at its
 * offset), reports it (idm_audit_written; policy batch, written with RWF_DSYNC:
 * idm_audit_synced(log, grp->end, 0) — everything before it was synced when it was taken)
 * and calls idm_audit_put. False when another writer is active, nothing is queued at the
 * lowest offset (its thread has not queued it yet), the log has failed, or — *held true —
 * the zeroer is not yet past the first line (retry on a later turn). */
bool idm_audit_take(idm_audit_log_t *log, idm_audit_group_t *grp, bool *held);
/* The writer is done with its group (after its bookkeeping): another may take the next. */
void idm_audit_put(idm_audit_log_t *log);
/* A writer is active or a line is queued (relaxed atomic reads: a hint for batching). */
bool idm_audit_write_busy(const idm_audit_log_t *log);

/* Synchronous write of one record at its offset (waits, off the request path, while
 * idm_audit_may_write is false; pwrite loop, then fdatasync for policy
 * batch, then the bookkeeping above). IDM_ERR_AUDIT_FAILED with the reason on failure. */
idm_err_t idm_audit_write_sync(idm_audit_log_t *log, const char *rec, size_t len,
                               uint64_t offset, idm_why_t *why);

/* ---- verification of a log ---------------------------------------------------------- */

/* State of a verifier walking a log from its first line. Caller allocates; init/cleanup. */
typedef struct idm_audit_verifier {
  const idm_jwks_t *jwks;      /* borrowed; NULL checks the chain and trees but no signature */
  uint64_t lines;              /* lines accepted so far */
  uint64_t entries, allows, denies;
  idm_hash_t prev;             /* hash of the last accepted line */
  uint64_t seq_max;            /* highest sequence seen (valid when lines > 0) */
  uint64_t *seq_seen;          /* bitmap window of IDM_AUDIT_REORDER_MAX bits below seq_max */
  idm_hash_t *scratch;         /* Merkle scratch: idm_merkle_tree_nodes(IDM_BATCH_ITEMS_MAX) */
  /* Optional: leaves to look for (credentials a client received), sorted by the caller
   * with idm_audit_verifier_want; found[i] is set when leaf i is in a verified line. */
  const idm_hash_t *want;
  size_t want_n;
  bool *found;
} idm_audit_verifier_t;

idm_err_t idm_audit_verifier_init(idm_audit_verifier_t *v, const idm_jwks_t *jwks);
void idm_audit_verifier_cleanup(idm_audit_verifier_t *v);
/* Sorts want[0..n) in place and makes the verifier mark each leaf it meets in found[]. */
void idm_audit_verifier_want(idm_audit_verifier_t *v, idm_hash_t *want, bool *found, size_t n);

/* Checks the next line (without its '\n'): JSON shape, "v", the chain ("prev"), the
 * sequence (unique within the reorder window), the signature over the batch message with
 * the kid's Ed25519 key from the JWKS, the Merkle root over the allow entries' leaves in
 * order, built from each allow entry's fields (the credential's signing input is rebuilt
 * from them), and the tree size. On error the reason names the field
 * or entry; the line number is the caller's (v->lines + 1). */
idm_err_t idm_audit_verify_line(idm_audit_verifier_t *v, const char *line, size_t len,
                                idm_why_t *why);

/* Walks a whole file. *bad_line is the 1-based number of the first wrong line (0 when
 * all are good); the error says what is wrong with it (IDM_ERR_AUDIT_TORN for an
 * unterminated last line, or one cut short by zero bytes). A region of zero bytes after
 * the last newline, to the end of the file, is accepted (a preallocated log's tail, or
 * what a crash leaves); a non-zero byte after such zeros is an error on the line the
 * zeros start, naming the offsets. */
idm_err_t idm_audit_verify_file(idm_audit_verifier_t *v, const char *path,
                                uint64_t *bad_line, idm_why_t *why);

#ifdef __cplusplus
}
#endif
#endif
