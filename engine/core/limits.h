/* Every named limit of the engine, in one place. Each says what it prevents.
 * Derived limits are checked with _Static_assert where they meet. Areas append their
 * own section; keep the units in the names. */
#ifndef IDM_CORE_LIMITS_H
#define IDM_CORE_LIMITS_H

/* ---- core ---------------------------------------------------------------------- */
/* Deepest nesting the JSON writer tracks; deeper output is a programming error. */
#define IDM_JSONW_DEPTH_MAX 16
/* Largest JSON document parsed from outside input (JWT payloads, JWKS, IID, requests).
 * Bounds parser memory and time for hostile input. */
#define IDM_JSON_INPUT_MAX_BYTES (64 * 1024)

/* ---- crypto: keys, JOSE, JWT ------------------------------------------------------ */
/* Largest compact JWS accepted from outside. Real k8s/GitHub tokens are 1-2 KiB. */
#define IDM_JWT_MAX_BYTES (16 * 1024)
/* Largest key or JWKS file read from disk. */
#define IDM_KEYFILE_MAX_BYTES (64 * 1024)
/* Largest decoded JWS header. Bounds the JSON parse of a header before any key is
 * consulted; real headers (alg, typ, kid) are under 200 bytes. */
#define IDM_JWS_HEADER_MAX_BYTES 4096
/* Most keys kept from one JWK Set, and the longest kid: bound memory and lookup time for
 * a hostile or corrupt set (real k8s/OIDC sets hold 1-4 keys). */
#define IDM_JWKS_KEYS_MAX 64
#define IDM_JWK_KID_MAX_BYTES 256
/* RSA moduli outside this range are refused: under 2048 bits is forgeable in practice,
 * over 8192 bits makes each verification a CPU-exhaustion vector. */
#define IDM_RSA_MODULUS_MIN_BITS 2048
#define IDM_RSA_MODULUS_MAX_BITS 8192
/* Clock-skew allowance on exp/nbf/iat: larger requested values are clamped to this. */
#define IDM_JWT_LEEWAY_MAX_S 300
/* Default upper bound on the lifetime of a token we sign; a retired key stays published
 * for this long after retirement (plus leeway), so every token it signed can be verified. */
#define IDM_KEYS_MAX_TOKEN_TTL_S (24 * 3600)
/* Most key files in one key directory. */
#define IDM_KEYDIR_FILES_MAX 256

/* ---- attest ---------------------------------------------------------------------- */
/* Trust blocks one idm_attest_t serves; bounds the issuer scan when `iss` chooses. */
#define IDM_ATTEST_TRUSTS_MAX 256
/* Clock skew accepted on exp/nbf/iat whatever the trust block says. */
#define IDM_ATTEST_LEEWAY_MAX_S 300
/* Largest AWS IID subject token ({"document":...,"signature":...}); real ones are ~1.5 KiB. */
#define IDM_ATTEST_IID_MAX_BYTES (8 * 1024)
/* Largest value copied into one client attribute; longer claims are refused. */
#define IDM_ATTEST_ATTR_MAX_BYTES 1024
/* oidc: top-level string claims exposed as claims.NAME; more are ignored. */
#define IDM_ATTEST_CLAIMS_MAX 64
/* Cache: slots probed per lookup/insert (bounds the work of a miss). */
#define IDM_ATTEST_CACHE_PROBE_MAX 16
/* Cache: bytes at the end of a document (its signature) that the lookup hash covers. */
#define IDM_ATTEST_CACHE_HASH_TAIL_BYTES 128
/* Cache: default ring bytes per identity when the caller gives no byte budget. */
#define IDM_ATTEST_CACHE_BYTES_PER_ENTRY 1024
/* Cache: documents longer than this are verified every time, never stored. */
#define IDM_ATTEST_CACHE_DOC_MAX_BYTES (8 * 1024)
/* Cache: JWS header segments stored once per cache and shared by the records of every
 * token that starts with one (they differ per issuer key, not per token); more distinct
 * headers than this until the next clear are stored whole in each record. */
#define IDM_ATTEST_CACHE_PREFIXES 64
/* Cache: longest header segment shared that way (bytes, the '.' included). */
#define IDM_ATTEST_CACHE_PREFIX_MAX_BYTES 192
/* Join tokens: name length, count per store, store file size, longest ttl. */
#define IDM_JOIN_NAME_MAX 64
#define IDM_JOIN_TOKEN_MAX 128 /* bytes of a token, NUL included */
#define IDM_JOIN_TOKENS_MAX 4096
#define IDM_JOIN_STORE_MAX_BYTES (1024 * 1024)
#define IDM_JOIN_TTL_MAX_S (7 * 86400)
/* unix: largest executable hashed for exe_sha256 (bounds the work of one peer). */
#define IDM_UNIX_EXE_MAX_BYTES (512LL * 1024 * 1024)

/* ---- net ------------------------------------------------------------------------- */
/* Bytes of one HTTP/1.1 request head (request line + headers) or one HTTP/2 header list
 * (decoded). Bounds parser work and memory per request; over it: 431 (h1) or RST_STREAM
 * (h2). Large enough for a 8 KiB identity document in X-Idmint-Subject-Token. */
#define IDM_NET_HEADER_MAX_BYTES (16 * 1024)
/* Headers in one request; more is 431. */
#define IDM_NET_HEADERS_MAX 64
/* Bytes of one request body (after de-chunking). Over it: 413. Holds a form with a
 * subject token of IDM_JWT_MAX_BYTES plus the other fields. */
#define IDM_NET_BODY_MAX_BYTES (32 * 1024)
/* Bytes a connection may buffer unread (HTTP/1.1 pipelining, partial requests). A peer
 * that sends more while not reading its responses is disconnected. */
#define IDM_NET_CONN_IN_BYTES (IDM_NET_HEADER_MAX_BYTES + IDM_NET_BODY_MAX_BYTES + 16 * 1024)
/* Bytes of responses a connection buffers before one send. A turn stops producing output
 * for the connection when it is full (back-pressure); the rest waits for the send. */
#define IDM_NET_CONN_OUT_BYTES (64 * 1024)
/* Largest response body a handler may produce (metrics, JWKS, discovery, token). */
#define IDM_NET_RESP_BODY_MAX_BYTES (32 * 1024)
/* HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
#define IDM_NET_H2_STREAMS_MAX 128
/* Bytes the HTTP/2 layer (nghttp2 state, stream bodies, queued responses) of one
 * connection may hold; over it the connection fails with a GOAWAY. */
#define IDM_NET_H2_CONN_MEM_BYTES (4 * 1024 * 1024)
/* Rapid reset (CVE-2023-44487): RST_STREAM frames accepted in a burst, then per second. */
#define IDM_NET_H2_RST_BURST 1000
#define IDM_NET_H2_RST_RATE 33
/* CONTINUATION frames accepted after one HEADERS frame. */
#define IDM_NET_H2_CONTINUATIONS_MAX 8
/* SETTINGS entries per frame; queued PING/SETTINGS ACKs before the peer is cut off. */
#define IDM_NET_H2_SETTINGS_MAX 32
#define IDM_NET_H2_OUTBOUND_ACK_MAX 1000
/* Per-thread pool that serves every allocation of the HTTP/2 layer and response bodies
 * (no malloc on the request path). An empty pool sheds the connection that asked. */
#define IDM_NET_POOL_BYTES (64 * 1024 * 1024)
/* Connections per thread when the config does not say (server.max_connections). */
#define IDM_NET_CONNS_MAX_DEFAULT 4096
/* A request head must complete this long after its first byte (slowloris). */
#define IDM_NET_HEADER_TIMEOUT_MS 10000
/* A connection with no request in progress is closed after this long. */
#define IDM_NET_IDLE_TIMEOUT_MS 60000
/* SIGTERM: in-flight requests get this long to finish before connections are cut. */
#define IDM_NET_DRAIN_TIMEOUT_MS 10000
/* Completions handled per loop turn, and requests parsed per connection per turn: bounds
 * the work of one turn so that timers and other connections are never starved. */
#define IDM_NET_CQES_PER_TURN 4096
#define IDM_NET_REQS_PER_CONN_TURN 256
/* Work one loop turn may gather before it seals its batch and answers: jwt-profile
 * credentials (each costs one Ed25519 signature at seal, ~25 us on the 2-vCPU dev VM) and
 * requests of any kind. A turn that reaches either stops reading; the connections it did
 * not reach are served first next turn. Every response of a turn waits for the whole
 * turn's work, so this bounds latency (~1 ms turns: p99 < 2 ms at 80 % load). While turns
 * keep leaving work behind (the thread is saturated, latency is queueing anyway) the
 * budget grows by this step per turn up to IDM_NET_TURN_SCALE_MAX times it, so that a
 * batch's root signature and audit sync are shared by more requests; the first turn that
 * reads everything resets it. */
/* Under a steady stream of requests on a busy thread a batch is sealed at most this often
 * (it lingers between; see seal_due in server.c): the root signature and the audit write
 * are shared by the requests of ~0.75 ms, and an answer waits at most this long for its
 * seal to start. A thread with time to spare and an idle audit log seals sooner. */
#define IDM_NET_SEAL_GAP_US 750
#define IDM_NET_TURN_SIGNS 32
#define IDM_NET_TURN_REQS 128
#define IDM_NET_TURN_SCALE_MAX 8
/* The window over which a thread measures its utilization (busy turns / wall time), which
 * scales the seal gap while the audit I/O is idle (server.c, seal_due). */
#define IDM_NET_UTIL_WINDOW_US 4000
/* From this utilization (‰) up, a batch lingers for the whole seal gap even when the audit
 * I/O is idle; below it, for the gap × (utilization / this)² (server.c, seal_gap_idle_ns). */
#define IDM_NET_UTIL_FULL_GAP_PM 700
/* HTTP/2 input is handed to nghttp2 this many bytes at a time, so that a turn stops within
 * a few requests of its budget (the rest stays in the connection's input buffer). */
#define IDM_NET_H2_RECV_CHUNK 2048
/* Requests accepted by one thread between two audit group commits; more is 503 with
 * Retry-After (the cap on work queued per thread). */
#define IDM_NET_QUEUED_MAX 4096
/* Exchanges a thread may hold waiting for their batch's audit write (each holds a response
 * of IDM_TOKEN_MAX + ~1.5 KiB). Over it new exchanges get 503 with Retry-After. */
#define IDM_NET_PENDING_MAX 1024
/* Submission/completion queue entries of each thread's ring. */
#define IDM_NET_RING_ENTRIES 4096
/* Provided receive buffers per thread (count, bytes each; count a power of two). */
#define IDM_NET_RECV_BUFS 512
#define IDM_NET_RECV_BUF_BYTES (16 * 1024)
/* Listen addresses in one config; worker threads. */
#define IDM_NET_LISTEN_MAX 8
#define IDM_NET_THREADS_MAX 256
/* unix_socket: connections open on it at once (each holds its attested peer identity in a
 * record of IDM_NET_UNIX_PEER_BYTES reserved at start; more are refused with 503), and the
 * record size (uid, gid, exe path up to PATH_MAX, SHA-256 hex, subject). */
#define IDM_NET_UNIX_CONNS_MAX 256
#define IDM_NET_UNIX_PEER_BYTES (8 * 1024)
/* Per-thread request arena (attestation JSON, policy inputs, minted token). */
#define IDM_NET_REQ_ARENA_BYTES (256 * 1024)
/* Targets with their own row in the tokens-minted metric; the rest are summed as "other". */
#define IDM_NET_METRIC_TARGETS_MAX 64
/* Timer sweep and signal check period of the event loop. */
#define IDM_NET_TICK_MS 200
/* How long a thread with batches awaiting their audit line sleeps at most: the thread that
 * writes them wakes it with a ring message (IORING_OP_MSG_RING); this is the backstop
 * (a log failed by the preallocation zeroer wakes no one). Without ring messages: 1 ms. */
#define IDM_NET_AUDIT_POLL_MS 10

#ifndef __cplusplus /* C++ (benchmarks) spells it static_assert */
_Static_assert(IDM_NET_CONN_IN_BYTES >= IDM_NET_HEADER_MAX_BYTES + IDM_NET_BODY_MAX_BYTES,
               "a connection must buffer one whole request");
/* Room one HTTP/1.1 response may need: head, two token headers, largest body. */
#define IDM_NET_H1_RESP_MAX_BYTES (IDM_NET_RESP_BODY_MAX_BYTES + 2 * 4096 + 2048)
_Static_assert(IDM_NET_CONN_OUT_BYTES >= IDM_NET_H1_RESP_MAX_BYTES + 4096,
               "one largest response must fit the output buffer");
_Static_assert((IDM_NET_RECV_BUFS & (IDM_NET_RECV_BUFS - 1)) == 0, "buffer ring size");
#endif

/* ---- batch ----------------------------------------------------------------------- */
/* Most entries (credentials + denials) one batch holds. Bounds the Merkle path in every
 * batch token (log2 of it), the per-thread batcher memory and one audit line. A server
 * configures a smaller maximum (default IDM_BATCH_ITEMS_DEFAULT). */
#define IDM_BATCH_ITEMS_MAX 4096
#define IDM_BATCH_ITEMS_DEFAULT 256
/* Sealed batches per thread whose audit record is still being written. When every slot
 * waits, idm_batch_add sheds load (IDM_ERR_BATCH_BUSY) instead of queueing without end. */
#define IDM_BATCH_INFLIGHT_MAX 8
/* Longest Merkle inclusion path a proof may carry: a tree of 2^32 leaves. Real paths are
 * at most ceil(log2(IDM_BATCH_ITEMS_MAX)) = 12 long; parsers refuse longer ones. */
#define IDM_MERKLE_PATH_MAX 32
/* Bytes of one audit entry (subject, trust, target, audience, scope, jti, rules, reason
 * escaped); an entry that does not fit is recorded truncated with "trunc":true. */
#define IDM_AUDIT_ENTRY_MAX_BYTES 3072
/* Longest issuer a batcher accepts: it is written (escaped) into every audit line's head. */
#define IDM_BATCH_ISS_MAX 256
/* Bytes of an audit line outside its entries (sequence, kid, root, signature, chain, and
 * the issuer escaped: up to 6 x IDM_BATCH_ISS_MAX). */
#define IDM_AUDIT_HEAD_MAX_BYTES 2048
/* Longest audit line the verifier reads: a full batch of full entries. Bounds memory
 * when reading a hostile log. */
#define IDM_AUDIT_LINE_MAX_BYTES (IDM_BATCH_ITEMS_MAX * IDM_AUDIT_ENTRY_MAX_BYTES + IDM_AUDIT_HEAD_MAX_BYTES)
/* How far out of file order batch sequences may appear (threads seal concurrently and
 * reserve sequences before they chain their lines). Bounds the verifier's window. */
#define IDM_AUDIT_REORDER_MAX 65536
/* Written ranges of the audit log that complete ahead of an earlier unwritten one
 * (threads' writes finish out of order). Bounded by threads x IDM_BATCH_INFLIGHT_MAX in
 * practice; overflowing it fails the log closed rather than losing track. */
#define IDM_AUDIT_RANGES_MAX 4096
/* A crash tail of the audit log (what follows its last complete line) holds only lines
 * that were reserved and not yet released: at most one per batch slot of every thread.
 * Open refuses a tail with more line ends after a zero byte than this (a log zeroed or
 * damaged mid-file, not a crash). */
#define IDM_AUDIT_TORN_LINES_MAX (IDM_NET_THREADS_MAX * IDM_BATCH_INFLIGHT_MAX)
/* server.audit_preallocate: the most MiB kept zeroed ahead of the log's end, and the bytes
 * the background zeroer writes and syncs at a time (each sync flushes at most this much
 * that a request-path fdatasync could otherwise find dirty). */
#define IDM_AUDIT_PREALLOC_MAX_MIB 16384
#define IDM_AUDIT_ZERO_CHUNK (256 * 1024)
/* The shared audit write queue (idm_audit_enqueue): sealed lines of every thread not yet
 * written, at most one per batch slot of every thread; and the most lines one writer takes
 * into one pwritev (a group; well under IOV_MAX). */
#define IDM_AUDIT_QUEUE_MAX (IDM_NET_THREADS_MAX * IDM_BATCH_INFLIGHT_MAX)
#define IDM_AUDIT_GROUP_LINES_MAX 64
/* Verified batch signatures a verifier remembers, so that it checks each batch's
 * signature once. */
#define IDM_VERIFY_CACHE_ENTRIES 1024

#endif
