// idmload: an open-loop HTTP/2 (h2c, prior knowledge) load generator that measures latency
// at a fixed request rate (docs/PERFORMANCE.md, "Load harness").
//
// Why not h2load --rps: h2load fires a burst per client every max(10 ms, 1/rps), its
// clients start their timers together, and it measures each request from its actual send,
// so a request queued behind a burst, or held back because the server stalled, is not
// charged for the wait (coordinated omission). idmload instead
//   * sends on a fixed schedule: request k is due at t0 + k/RATE (or after exponential gaps
//     with --poisson), spread round-robin over the connections;
//   * measures each request from its INTENDED send time (as wrk2 does), so a stall of the
//     server, or of the client, shows in the percentiles; a request that finds no free
//     stream slot on its connection waits in that connection's backlog, its latency keeps
//     counting, and it is reported as late;
//   * also reports the service time (from the actual send) and the send lag (actual minus
//     intended), so the client's own lateness is visible and not silently blamed on the
//     server.
// With -r 0 it runs closed loop (every stream kept busy, like h2load) to find the maximum
// rate; --find-max does both: closed loop, then open loop at --at (default 0.8) of the rate
// found, with the same connection shape.
//
// Design: one epoll loop per thread (-t), each owning a share of the connections; nghttp2
// client sessions driven from memory buffers (mem_recv / mem_send), one coalesced send per
// connection per loop turn; waits are timed in nanoseconds with epoll_pwait2 and a 1 ns
// timer slack so the schedule is kept to microseconds, not to epoll_wait's milliseconds.
// All memory is reserved before the clock starts: stream slots, per-connection backlogs
// (sized for every request the run can schedule, capped; an overflow is counted, never
// grown), send buffers, histograms (bench/idmload_hist.h). Server misbehaviour (GOAWAY,
// RST_STREAM, a dropped connection, a protocol error) is counted and the connection is
// re-established after a short pause; nothing the server sends can crash the tool.
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "idmload_hist.h"

// ---- limits (each bounds memory or a loop) ---------------------------------------------
#define IDML_CONNS_MAX 10000             /* -c: sockets and sessions */
#define IDML_STREAMS_MAX 10000           /* -m: stream slots per connection */
#define IDML_SLOTS_MAX (1u << 22)        /* -c x -m: all stream slots of a run */
#define IDML_THREADS_MAX 256             /* -t */
#define IDML_HEADERS_MAX 64              /* -H */
#define IDML_HEADER_BYTES_MAX 8192       /* one -H name + value */
#define IDML_BODY_MAX (64u << 20)        /* -d FILE */
#define IDML_RATE_MAX 1e8                /* -r, requests per second */
#define IDML_SECONDS_MAX 86400.0         /* -D, --warm-up, --drain */
#define IDML_BACKLOG_MAX (1u << 22)      /* due-but-unsent requests per connection */
#define IDML_OUT_CAP (256u << 10)        /* per-connection send buffer */
#define IDML_IN_CHUNK (64u << 10)        /* one read(2) */
#define IDML_READS_PER_TURN 8            /* reads per connection per loop turn */
#define IDML_EVENTS 256                  /* epoll events per wait */
#define IDML_RECONNECT_NS 20000000       /* pause before reconnecting: 20 ms */
#define IDML_CONNECT_TIMEOUT_MS 5000     /* the first connection of each socket */

#define NS 1000000000.0

// ---- configuration ------------------------------------------------------------------
typedef struct {
  char *uri;                     /* as given */
  char host[256], port[16], authority[300], path[4096];
  struct sockaddr_storage addr;
  socklen_t addr_len;
  int conns, streams, threads;
  double rate;                   /* 0: closed loop */
  bool poisson, json, find_max;
  double at;                     /* --find-max: fraction of the maximum */
  double duration_s, warmup_s, drain_s;
  uint64_t seed;
  const char *method;
  uint8_t *body;
  size_t body_len;
  char body_len_str[24];
  nghttp2_nv nv[IDML_HEADERS_MAX + 8];
  size_t nv_len;
  char *hdr_store[IDML_HEADERS_MAX];   /* owned copies of -H, lower-cased names */
  size_t hdr_count;
} config_t;

// ---- results ------------------------------------------------------------------------
typedef struct {
  uint64_t scheduled;          /* requests due in the measured window (open loop) */
  uint64_t sent;               /* measured requests handed to the connection */
  uint64_t completed;          /* measured requests with a complete response */
  uint64_t late;               /* measured requests that waited for a stream slot / a connection */
  uint64_t backlog_full;       /* requests that could not even be queued (error) */
  uint64_t unfinished;         /* measured requests still waiting or in flight at the end */
  uint64_t warmup;             /* requests sent during warm-up (excluded) */
  uint64_t in_window;          /* responses received inside the measured window */
  uint64_t in_window_2xx;      /* of which 2xx: the rate --find-max uses (fast 503s are no capacity) */
  uint64_t status[6];          /* [1..5]: 1xx..5xx, [0]: anything else */
  uint64_t rst;                /* streams reset by the server (RST_STREAM, not REFUSED) */
  uint64_t refused;            /* streams refused (REFUSED_STREAM, or above a GOAWAY's last id) */
  uint64_t lost;               /* requests in flight on a connection that went away */
  uint64_t no_status;          /* a stream that ended without a valid :status */
  uint64_t drops;              /* connections closed by the peer or failed mid-run */
  uint64_t goaways;            /* GOAWAY frames received */
  uint64_t connect_fail;       /* failed reconnects */
  uint64_t reconnects;         /* successful reconnects */
  uint64_t protocol;           /* nghttp2 rejected what the server sent */
  uint32_t goaway_code;        /* last GOAWAY error code */
  double elapsed_s;            /* measured window actually run */
  idml_hist_t lat, svc, lag;   /* from intended send; from actual send; send lag */
} results_t;

// ---- run state ----------------------------------------------------------------------
typedef struct thread_s thread_t;

typedef struct {
  int64_t intended, sent;      /* CLOCK_MONOTONIC ns */
  uint32_t body_off;
  int16_t status;
  bool in_use, measured;
} slot_t;

enum conn_state { CONN_DEAD, CONN_CONNECTING, CONN_UP };

typedef struct {
  thread_t *t;
  int fd;
  enum conn_state state;
  nghttp2_session *s;
  bool goaway;                 /* no new streams on this session */
  bool want_out;               /* EPOLLOUT armed */
  int64_t retry_at;            /* CONN_DEAD: when to reconnect */
  slot_t *slots;
  uint32_t *free_slots;        /* stack of free slot indices */
  uint32_t free_len, active;
  int64_t *backlog;            /* ring of intended times waiting for a slot */
  uint32_t bl_cap, bl_head, bl_len;
  uint32_t bl_late;            /* backlog entries (from the head) already counted late */
  uint8_t *out;
  size_t out_len;
  const uint8_t *pend;         /* nghttp2's last chunk not yet copied into out */
  size_t pend_len;
} conn_t;

struct thread_s {
  const config_t *cfg;
  pthread_t tid;
  int ep;
  conn_t *conns;
  int nconns;
  bool closed;                 /* closed loop */
  double rate;                 /* this thread's share (open loop) */
  int64_t t0, t_warm, t_end, t_drain;  /* start, end of warm-up, end of window, give-up time */
  int64_t next_due;            /* open loop: next intended send */
  int rr;                      /* round-robin cursor */
  uint64_t rng;
  int64_t now;                 /* time of the last clock read */
  uint8_t *in;
  nghttp2_session_callbacks *cb;
  results_t r;
  char err[256];               /* fatal set-up error of this thread, if any */
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("idmload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (see idmload --help)\n", stderr);
  va_end(ap);
  exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("idmload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

// ---- command line -------------------------------------------------------------------
static const char usage[] =
    "usage: idmload [options] http://HOST[:PORT]/PATH\n"
    "HTTP/2 cleartext (prior knowledge) load at a fixed rate; latency from the intended send.\n"
    "  -c, --connections N   connections (default 1)\n"
    "  -m, --streams N       max concurrent streams per connection (default 1)\n"
    "  -r, --rate RATE       requests per second in total; 0 = closed loop, every stream\n"
    "                        kept busy (default 0)\n"
    "      --poisson         exponential gaps between sends instead of uniform spacing\n"
    "  -D, --duration T      measured time (default 10s); T is seconds, or with s/ms/m\n"
    "      --warm-up T       time before the measured window, excluded (default 0)\n"
    "      --drain T         how long to wait for outstanding requests after the window\n"
    "                        (default 5s); those still open are reported as unfinished\n"
    "  -t, --threads N       threads, each with its share of connections and rate (default 1)\n"
    "  -d, --data FILE       request body (method becomes POST unless --method says)\n"
    "  -H, --header 'N: V'   request header (repeatable); 'host' sets :authority\n"
    "      --method M        request method (default GET, or POST with -d)\n"
    "      --find-max        closed loop first, then open loop at --at of the rate found\n"
    "      --at F            fraction of the maximum for --find-max, 0 < F <= 1 (default 0.8)\n"
    "      --seed N          seed of the --poisson gaps (default 1)\n"
    "      --json            one JSON object on stdout instead of the text report\n"
    "  -h, --help            this text\n"
    "Exit status: 0 when responses were received, 1 when none were (or set-up failed),\n"
    "2 for a usage error.\n";

static long parse_int(const char *opt, const char *s, long lo, long hi) {
  char *end;
  errno = 0;
  if (!*s || s[0] == ' ' || s[0] == '+')
    die_usage("%s wants an integer, got '%s'", opt, s);
  long v = strtol(s, &end, 10);
  if (*end || errno == ERANGE)
    die_usage("%s wants an integer, got '%s'", opt, s);
  if (v < lo || v > hi)
    die_usage("%s must be between %ld and %ld, got %ld", opt, lo, hi, v);
  return v;
}

static double parse_num(const char *opt, const char *s, char **end) {
  errno = 0;
  /* decimal only: no leading blanks or '+', no hex, inf or nan (strtod takes them all) */
  if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '.' || s[0] == '-') || strpbrk(s, "xX"))
    die_usage("%s wants a number, got '%s'", opt, s);
  double v = strtod(s, end);
  if (*end == s || errno == ERANGE || !isfinite(v))
    die_usage("%s wants a number, got '%s'", opt, s);
  return v;
}

/* Seconds: "2", "2.5", "2s", "500ms", "1m". */
static double parse_seconds(const char *opt, const char *s, double lo, bool lo_open) {
  char *end;
  double v = parse_num(opt, s, &end);
  if (!strcmp(end, "ms"))
    v /= 1000.0;
  else if (!strcmp(end, "m"))
    v *= 60.0;
  else if (*end && strcmp(end, "s"))
    die_usage("%s: unknown unit '%s' in '%s' (use s, ms or m)", opt, end, s);
  if (lo_open ? v <= lo : v < lo)
    die_usage("%s must be %s %g s, got '%s'", opt, lo_open ? "more than" : "at least", lo, s);
  if (v > IDML_SECONDS_MAX)
    die_usage("%s must be at most %g s, got '%s'", opt, IDML_SECONDS_MAX, s);
  return v;
}

static bool is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void parse_uri(config_t *cfg, const char *uri) {
  const char *p;
  if (!strncmp(uri, "https://", 8))
    die_usage("'%s': TLS is not supported, idmload speaks h2c (http://) with prior knowledge", uri);
  if (strncmp(uri, "http://", 7))
    die_usage("'%s' is not an http:// URI", uri);
  p = uri + 7;
  const char *host_end, *hp = p;
  if (*p == '[') {
    host_end = strchr(p, ']');
    if (!host_end)
      die_usage("'%s': unterminated [IPv6 address]", uri);
    hp = p + 1;
    p = host_end + 1;
  } else {
    host_end = p + strcspn(p, ":/?#");
    p = host_end;
  }
  size_t hl = (size_t)(host_end - hp);
  if (hl == 0)
    die_usage("'%s' names no host", uri);
  if (hl >= sizeof cfg->host)
    die_usage("'%s': host longer than %zu bytes", uri, sizeof cfg->host - 1);
  memcpy(cfg->host, hp, hl);
  cfg->host[hl] = 0;
  strcpy(cfg->port, "80");
  if (*p == ':') {
    p++;
    size_t pl = strspn(p, "0123456789");
    if (pl == 0 || pl > 5 || (p[pl] && p[pl] != '/' && p[pl] != '?'))
      die_usage("'%s': bad port", uri);
    memcpy(cfg->port, p, pl);
    cfg->port[pl] = 0;
    long port = strtol(cfg->port, NULL, 10);
    if (port < 1 || port > 65535)
      die_usage("'%s': port %ld is out of range 1-65535", uri, port);
    p += pl;
  } else if (*p && *p != '/' && *p != '?') {
    die_usage("'%s': unexpected '%c' after the host", uri, *p);
  }
  if (strchr(p, '#'))
    die_usage("'%s': a fragment (#) is not sent to a server", uri);
  const char *path = *p ? p : "/";
  char tmp[4096];
  if (*path == '?') {
    if (snprintf(tmp, sizeof tmp, "/%s", path) >= (int)sizeof tmp)
      die_usage("'%s': path longer than %zu bytes", uri, sizeof tmp - 2);
    path = tmp;
  }
  if (strlen(path) >= sizeof cfg->path)
    die_usage("'%s': path longer than %zu bytes", uri, sizeof cfg->path - 1);
  for (const char *c = path; *c; c++)
    if ((unsigned char)*c <= ' ' || *c == 0x7f)
      die_usage("'%s': the path has a space or control character; percent-encode it", uri);
  strcpy(cfg->path, path);
  bool v6 = strchr(cfg->host, ':') != NULL;
  bool default_port = !strcmp(cfg->port, "80");
  snprintf(cfg->authority, sizeof cfg->authority, "%s%s%s%s%s", v6 ? "[" : "", cfg->host,
           v6 ? "]" : "", default_port ? "" : ":", default_port ? "" : cfg->port);
}

static void resolve(config_t *cfg) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res = NULL;
  int rc = getaddrinfo(cfg->host, cfg->port, &hints, &res);
  if (rc)
    die("cannot resolve %s: %s", cfg->host, gai_strerror(rc));
  memcpy(&cfg->addr, res->ai_addr, res->ai_addrlen);
  cfg->addr_len = res->ai_addrlen;
  freeaddrinfo(res);
}

static void read_body(config_t *cfg, const char *file) {
  FILE *f = fopen(file, "rb");
  if (!f)
    die_usage("-d %s: %s", file, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    die_usage("-d %s: not a regular file", file);
  }
  if ((uint64_t)st.st_size > IDML_BODY_MAX) {
    fclose(f);
    die_usage("-d %s: %lld bytes is over the %u-byte limit", file, (long long)st.st_size,
              IDML_BODY_MAX);
  }
  free(cfg->body);
  cfg->body_len = (size_t)st.st_size;
  cfg->body = malloc(cfg->body_len ? cfg->body_len : 1);
  if (!cfg->body)
    die("out of memory");
  if (cfg->body_len && fread(cfg->body, 1, cfg->body_len, f) != cfg->body_len) {
    fclose(f);
    die_usage("-d %s: short read", file);
  }
  fclose(f);
}

static void add_header(config_t *cfg, const char *h) {
  if (cfg->hdr_count == IDML_HEADERS_MAX)
    die_usage("more than %d -H headers", IDML_HEADERS_MAX);
  if (strlen(h) > IDML_HEADER_BYTES_MAX)
    die_usage("-H: header longer than %d bytes", IDML_HEADER_BYTES_MAX);
  const char *colon = strchr(h, ':');
  if (!colon)
    die_usage("-H '%s': expected 'name: value'", h);
  if (colon == h)
    die_usage("-H '%s': empty header name (pseudo-headers come from the URI and --method)", h);
  for (const char *c = h; c < colon; c++)
    if (!is_tchar((unsigned char)*c))
      die_usage("-H '%s': the name has an invalid character '%c'", h, *c);
  const char *v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  size_t vl = strlen(v);
  while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
    vl--;
  for (size_t i = 0; i < vl; i++) {
    unsigned char ch = (unsigned char)v[i];
    if ((ch < ' ' && ch != '\t') || ch == 0x7f)
      die_usage("-H '%s': the value has a control character", h);
  }
  size_t nl = (size_t)(colon - h);
  char *store = malloc(nl + 1 + vl + 1);
  if (!store)
    die("out of memory");
  for (size_t i = 0; i < nl; i++)
    store[i] = (char)((h[i] >= 'A' && h[i] <= 'Z') ? h[i] + 32 : h[i]);
  store[nl] = 0;
  memcpy(store + nl + 1, v, vl);
  store[nl + 1 + vl] = 0;
  static const char *const banned[] = {"connection", "keep-alive", "proxy-connection",
                                       "transfer-encoding", "upgrade", "te"};
  for (size_t i = 0; i < sizeof banned / sizeof *banned; i++)
    if (!strcmp(store, banned[i]))
      die_usage("-H '%s': %s is a connection-specific header, not allowed in HTTP/2", h,
                banned[i]);
  cfg->hdr_store[cfg->hdr_count++] = store;
}

static nghttp2_nv mknv(const char *name, const char *value) {
  return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                      NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

/* The request's header block, built once; nghttp2 references (does not copy) the strings,
 * which live until exit. */
static void build_headers(config_t *cfg) {
  const char *authority = cfg->authority;
  bool has_cl = false;
  for (size_t i = 0; i < cfg->hdr_count; i++) {
    const char *n = cfg->hdr_store[i];
    if (!strcmp(n, "host"))
      authority = n + strlen(n) + 1;
    if (!strcmp(n, "content-length"))
      has_cl = true;
  }
  size_t k = 0;
  cfg->nv[k++] = mknv(":method", cfg->method);
  cfg->nv[k++] = mknv(":scheme", "http");
  cfg->nv[k++] = mknv(":authority", authority);
  cfg->nv[k++] = mknv(":path", cfg->path);
  bool has_ua = false;
  for (size_t i = 0; i < cfg->hdr_count; i++) {
    const char *n = cfg->hdr_store[i];
    if (!strcmp(n, "host"))
      continue;
    if (!strcmp(n, "user-agent"))
      has_ua = true;
    cfg->nv[k++] = mknv(n, n + strlen(n) + 1);
  }
  if (cfg->body && !has_cl) {
    snprintf(cfg->body_len_str, sizeof cfg->body_len_str, "%zu", cfg->body_len);
    cfg->nv[k++] = mknv("content-length", cfg->body_len_str);
  }
  if (!has_ua)
    cfg->nv[k++] = mknv("user-agent", "idmload");
  cfg->nv_len = k;
}

static void parse_args(config_t *cfg, int argc, char **argv) {
  enum { O_POISSON = 256, O_WARMUP, O_DRAIN, O_METHOD, O_FINDMAX, O_AT, O_SEED, O_JSON };
  static const struct option longs[] = {
      {"connections", required_argument, 0, 'c'}, {"streams", required_argument, 0, 'm'},
      {"rate", required_argument, 0, 'r'},        {"poisson", no_argument, 0, O_POISSON},
      {"duration", required_argument, 0, 'D'},    {"warm-up", required_argument, 0, O_WARMUP},
      {"drain", required_argument, 0, O_DRAIN},   {"threads", required_argument, 0, 't'},
      {"data", required_argument, 0, 'd'},        {"header", required_argument, 0, 'H'},
      {"method", required_argument, 0, O_METHOD}, {"find-max", no_argument, 0, O_FINDMAX},
      {"at", required_argument, 0, O_AT},         {"seed", required_argument, 0, O_SEED},
      {"json", no_argument, 0, O_JSON},           {"help", no_argument, 0, 'h'},
      {0, 0, 0, 0}};
  *cfg = (config_t){.conns = 1, .streams = 1, .threads = 1, .at = 0.8, .duration_s = 10,
                    .drain_s = 5, .seed = 1};
  bool rate_set = false, at_set = false;
  const char *method = NULL;
  opterr = 0;
  int o;
  while ((o = getopt_long(argc, argv, ":c:m:r:D:t:d:H:h", longs, NULL)) != -1) {
    char *end;
    switch (o) {
    case 'c': cfg->conns = (int)parse_int("-c", optarg, 1, IDML_CONNS_MAX); break;
    case 'm': cfg->streams = (int)parse_int("-m", optarg, 1, IDML_STREAMS_MAX); break;
    case 't': cfg->threads = (int)parse_int("-t", optarg, 1, IDML_THREADS_MAX); break;
    case 'r':
      cfg->rate = parse_num("-r", optarg, &end);
      if (*end)
        die_usage("-r wants requests per second, got '%s'", optarg);
      if (cfg->rate < 0 || cfg->rate > IDML_RATE_MAX)
        die_usage("-r must be between 0 (closed loop) and %g, got '%s'", IDML_RATE_MAX, optarg);
      rate_set = true;
      break;
    case 'D': cfg->duration_s = parse_seconds("-D", optarg, 0, true); break;
    case O_WARMUP: cfg->warmup_s = parse_seconds("--warm-up", optarg, 0, false); break;
    case O_DRAIN: cfg->drain_s = parse_seconds("--drain", optarg, 0, false); break;
    case O_POISSON: cfg->poisson = true; break;
    case 'd': read_body(cfg, optarg); break;
    case 'H': add_header(cfg, optarg); break;
    case O_METHOD:
      if (!*optarg)
        die_usage("--method is empty");
      for (const char *c = optarg; *c; c++)
        if (!is_tchar((unsigned char)*c))
          die_usage("--method '%s': invalid character '%c'", optarg, *c);
      method = optarg;
      break;
    case O_FINDMAX: cfg->find_max = true; break;
    case O_AT:
      cfg->at = parse_num("--at", optarg, &end);
      if (*end || cfg->at <= 0 || cfg->at > 1)
        die_usage("--at wants a fraction in (0, 1], got '%s'", optarg);
      at_set = true;
      break;
    case O_SEED: {
      errno = 0;
      unsigned long long v = strtoull(optarg, &end, 10);
      if (!*optarg || *end || errno || optarg[0] == '-')
        die_usage("--seed wants an unsigned integer, got '%s'", optarg);
      cfg->seed = v;
      break;
    }
    case O_JSON: cfg->json = true; break;
    case 'h': fputs(usage, stdout); exit(0);
    case ':': die_usage("%s needs a value", argv[optind - 1]);
    default:
      if (optopt)
        die_usage("unknown option '-%c'", optopt);
      die_usage("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind == argc)
    die_usage("no URI given");
  if (argc - optind > 1)
    die_usage("one URI only, got '%s' and '%s'", argv[optind], argv[optind + 1]);
  cfg->uri = argv[optind];
  parse_uri(cfg, cfg->uri);
  if (cfg->threads > cfg->conns)
    die_usage("-t %d is more threads than connections (-c %d)", cfg->threads, cfg->conns);
  if ((uint64_t)cfg->conns * (uint64_t)cfg->streams > IDML_SLOTS_MAX)
    die_usage("-c %d x -m %d is more than %u concurrent streams", cfg->conns, cfg->streams,
              IDML_SLOTS_MAX);
  if (cfg->find_max && rate_set)
    die_usage("--find-max finds the rate itself; drop -r");
  if (at_set && !cfg->find_max)
    die_usage("--at applies to --find-max only");
  if (cfg->poisson && !cfg->find_max && cfg->rate == 0)
    die_usage("--poisson needs an open-loop rate (-r RATE > 0, or --find-max)");
  cfg->method = method ? method : cfg->body ? "POST" : "GET";
  build_headers(cfg);
}

// ---- scheduling -----------------------------------------------------------------------
static double rng_unit(uint64_t *s) {   /* xorshift64*, (0, 1] */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  uint64_t v = (*s * UINT64_C(2685821657736338717)) >> 11;
  return ((double)v + 1.0) / 9007199254740992.0;
}

static int64_t next_gap_ns(thread_t *t) {
  double mean = NS / t->rate;
  double g = t->cfg->poisson ? -log(rng_unit(&t->rng)) * mean : mean;
  return g < 1 ? 1 : (int64_t)llround(g);
}

// ---- connections ----------------------------------------------------------------------
static void conn_arm(conn_t *c, bool out) {
  if (c->fd < 0 || c->want_out == out)
    return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(c->t->ep, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = out;
}

static void slot_free(conn_t *c, slot_t *sl) {
  sl->in_use = false;
  c->free_slots[c->free_len++] = (uint32_t)(sl - c->slots);
  c->active--;
}

/* The connection is gone (peer closed, error, or finished after GOAWAY): every request
 * still in flight on it is lost; due requests stay in the backlog for the next session. */
static void conn_down(conn_t *c, bool count_drop) {
  thread_t *t = c->t;
  if (c->fd >= 0) {
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  if (c->s) {
    nghttp2_session_del(c->s);
    c->s = NULL;
  }
  for (int i = 0; i < t->cfg->streams; i++) {
    slot_t *sl = &c->slots[i];
    if (!sl->in_use)
      continue;
    if (sl->measured)
      t->r.lost++;
    slot_free(c, sl);
  }
  if (count_drop)
    t->r.drops++;
  c->state = CONN_DEAD;
  c->goaway = false;
  c->want_out = false;
  c->out_len = 0;
  c->pend = NULL;
  c->pend_len = 0;
  c->retry_at = t->now + IDML_RECONNECT_NS;
}

static ssize_t cb_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                            uint32_t *flags, nghttp2_data_source *src, void *ud) {
  conn_t *c = ud;
  slot_t *sl = src->ptr;
  const config_t *cfg = c->t->cfg;
  size_t left = cfg->body_len - sl->body_off;
  size_t n = left < len ? left : len;
  memcpy(buf, cfg->body + sl->body_off, n);
  sl->body_off += (uint32_t)n;
  if (sl->body_off == cfg->body_len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int cb_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  if (f->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7))
    return 0;
  slot_t *sl = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!sl)
    return 0;
  int v = 0;
  if (valuelen == 3)
    for (size_t i = 0; i < 3; i++)
      v = (value[i] >= '0' && value[i] <= '9') ? v * 10 + (value[i] - '0') : -1000;
  /* nghttp2 already rejects a malformed :status; a 1xx is followed by the final one */
  if (v >= 100 && v <= 999)
    sl->status = (int16_t)v;
  return 0;
}

static int cb_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  conn_t *c = ud;
  if (f->hd.type == NGHTTP2_GOAWAY) {
    c->t->r.goaways++;
    c->t->r.goaway_code = f->goaway.error_code;
    c->goaway = true;
  }
  return 0;
}

static int cb_stream_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud) {
  conn_t *c = ud;
  thread_t *t = c->t;
  slot_t *sl = nghttp2_session_get_stream_user_data(s, sid);
  if (!sl || !sl->in_use)
    return 0;
  results_t *r = &t->r;
  int64_t now = t->now;
  if (code == NGHTTP2_REFUSED_STREAM) {
    if (sl->measured)
      r->refused++;
  } else if (code != NGHTTP2_NO_ERROR) {
    if (sl->measured)
      r->rst++;
  } else if (sl->status < 200) {
    if (sl->measured)
      r->no_status++;
  } else {
    if (now >= t->t_warm && now < t->t_end) {
      r->in_window++;
      if (sl->status >= 200 && sl->status <= 299)
        r->in_window_2xx++;
    }
    if (sl->measured) {
      r->completed++;
      int cls = sl->status / 100;
      r->status[cls >= 1 && cls <= 5 ? cls : 0]++;
      idml_hist_record(&r->lat, (uint64_t)(now - sl->intended));
      idml_hist_record(&r->svc, (uint64_t)(now - sl->sent));
    }
  }
  slot_free(c, sl);
  return 0;
}

static int conn_session(conn_t *c) {
  if (nghttp2_session_client_new(&c->s, c->t->cb, c))
    return -1;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 24)},
  };
  if (nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 2))
    return -1;
  /* a connection-level window as large as the streams' */
  if (nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, (1 << 30)))
    return -1;
  return 0;
}

static int sock_new(const config_t *cfg) {
  int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* Starts a (re)connection without waiting; the loop finishes it on EPOLLOUT. */
static void conn_start(conn_t *c) {
  int fd = sock_new(c->t->cfg);
  if (fd < 0) {
    c->t->r.connect_fail++;
    c->retry_at = c->t->now + IDML_RECONNECT_NS;
    return;
  }
  c->fd = fd;
  c->state = CONN_CONNECTING;
  struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
  if (epoll_ctl(c->t->ep, EPOLL_CTL_ADD, fd, &ev)) {
    close(fd);
    c->fd = -1;
    c->state = CONN_DEAD;
    c->t->r.connect_fail++;
    c->retry_at = c->t->now + IDML_RECONNECT_NS;
  }
}

static int conn_established(conn_t *c, bool reconnect) {
  if (conn_session(c))
    return -1;
  c->state = CONN_UP;
  c->want_out = false;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(c->t->ep, reconnect ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev))
    return -1;
  if (reconnect)
    c->t->r.reconnects++;
  return 0;
}

static void conn_connected(conn_t *c) {
  int err = 0;
  socklen_t l = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
    epoll_ctl(c->t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = CONN_DEAD;
    c->t->r.connect_fail++;
    c->retry_at = c->t->now + IDML_RECONNECT_NS;
    return;
  }
  if (conn_established(c, true)) {
    c->t->r.connect_fail++;
    conn_down(c, false);
  }
}

/* Hands nghttp2's output to the socket: copy into the connection's buffer until it is
 * full or nghttp2 has nothing more, then one send(2). */
static void conn_flush(conn_t *c) {
  for (;;) {
    while (c->out_len < IDML_OUT_CAP) {
      if (c->pend_len == 0) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(c->s, &p);
        if (n < 0) {
          c->t->r.protocol++;
          conn_down(c, true);
          return;
        }
        if (n == 0)
          break;
        c->pend = p;
        c->pend_len = (size_t)n;
      }
      size_t room = IDML_OUT_CAP - c->out_len;
      size_t k = c->pend_len < room ? c->pend_len : room;
      memcpy(c->out + c->out_len, c->pend, k);
      c->out_len += k;
      c->pend += k;
      c->pend_len -= k;
    }
    if (c->out_len == 0)
      break;
    ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn_arm(c, true);
        return;
      }
      conn_down(c, true);
      return;
    }
    if ((size_t)w < c->out_len) {
      memmove(c->out, c->out + w, c->out_len - (size_t)w);
      c->out_len -= (size_t)w;
      conn_arm(c, true);
      return;
    }
    c->out_len = 0;
  }
  conn_arm(c, false);
  /* A session with nothing left to do is closed, then re-established: after the server's
   * GOAWAY once its last streams are done, or at once when nghttp2 itself ended the session
   * because the server broke the protocol (we never send GOAWAY on our own). */
  if (!nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s)) {
    if (!c->goaway)
      c->t->r.protocol++;
    conn_down(c, false);
  }
}

static void conn_read(conn_t *c) {
  thread_t *t = c->t;
  for (int i = 0; i < IDML_READS_PER_TURN && c->state == CONN_UP; i++) {
    ssize_t n = recv(c->fd, t->in, IDML_IN_CHUNK, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    t->now = now_ns();
    if (n <= 0) {                 /* closed by the peer, or reset */
      conn_down(c, !c->goaway);
      return;
    }
    ssize_t k = nghttp2_session_mem_recv(c->s, t->in, (size_t)n);
    if (k < 0 || k != n) {
      t->r.protocol++;
      conn_down(c, true);
      return;
    }
    if ((size_t)n < IDML_IN_CHUNK)
      return;
  }
}

/* Submits one request on a free slot; intended is its due time (open loop) or now. */
static bool conn_submit(conn_t *c, int64_t intended) {
  thread_t *t = c->t;
  const config_t *cfg = t->cfg;
  uint32_t idx = c->free_slots[--c->free_len];
  slot_t *sl = &c->slots[idx];
  *sl = (slot_t){.intended = intended, .sent = t->now, .in_use = true,
                 .measured = intended >= t->t_warm && intended < t->t_end};
  nghttp2_data_provider dp = {.source.ptr = sl, .read_callback = cb_read_body};
  int32_t sid = nghttp2_submit_request(c->s, NULL, cfg->nv, cfg->nv_len,
                                       cfg->body ? &dp : NULL, sl);
  if (sid < 0) {               /* only on out of memory or exhausted stream ids */
    sl->in_use = false;
    c->free_slots[c->free_len++] = idx;
    c->goaway = true;          /* retire this session; a new one takes over */
    return false;
  }
  c->active++;
  if (sl->measured) {
    t->r.sent++;
    idml_hist_record(&t->r.lag, (uint64_t)(t->now - intended));
  } else {
    t->r.warmup++;
  }
  return true;
}

static void conn_pump(conn_t *c, bool window_open) {
  thread_t *t = c->t;
  if (c->state != CONN_UP || c->goaway)
    return;
  if (t->closed) {
    while (window_open && c->free_len > 0)
      if (!conn_submit(c, t->now))
        break;
  } else {
    while (c->bl_len > 0 && c->free_len > 0) {
      if (!conn_submit(c, c->backlog[c->bl_head]))
        break;
      c->bl_head = (c->bl_head + 1) % c->bl_cap;
      c->bl_len--;
      if (c->bl_late)
        c->bl_late--;
    }
  }
}

/* Open loop: a due request that could not be submitted in the turn it became due (no free
 * stream slot, no connection, or GOAWAY) is late; counted once. */
static void conn_count_late(conn_t *c) {
  thread_t *t = c->t;
  for (uint32_t j = c->bl_late; j < c->bl_len; j++) {
    int64_t due = c->backlog[(c->bl_head + j) % c->bl_cap];
    if (due >= t->t_warm && due < t->t_end)
      t->r.late++;
  }
  c->bl_late = c->bl_len;
}

/* Open loop: a request is due; it goes to the next connection in turn. */
static void enqueue_due(thread_t *t, int64_t due) {
  conn_t *c = &t->conns[t->rr];
  t->rr = (t->rr + 1) % t->nconns;
  bool measured = due >= t->t_warm && due < t->t_end;
  if (measured)
    t->r.scheduled++;
  if (c->bl_len == c->bl_cap) {
    t->r.backlog_full++;
    return;
  }
  c->backlog[(c->bl_head + c->bl_len) % c->bl_cap] = due;
  c->bl_len++;
}

static void *thread_main(void *arg) {
  thread_t *t = arg;
  const config_t *cfg = t->cfg;
  struct epoll_event evs[IDML_EVENTS];
  int64_t k_due = 0;                    /* requests this thread has scheduled */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  t->now = now_ns();
  for (int i = 0; i < t->nconns; i++) {
    conn_t *c = &t->conns[i];
    if (conn_established(c, false)) {
      snprintf(t->err, sizeof t->err, "cannot set up an HTTP/2 session (out of memory)");
      return NULL;
    }
  }
  /* the clock starts at t0 for every thread (closed loop would otherwise begin early) */
  struct timespec start = {.tv_sec = t->t0 / 1000000000, .tv_nsec = t->t0 % 1000000000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &start, NULL) == EINTR)
    ;
  /* Uniform spacing: thread i of n starts i/RATE after t0 and sends every n/RATE, so the
   * threads together keep the uniform total schedule; the j-th due time is computed from
   * j, not by adding rounded gaps, so it does not drift. */
  double period = t->closed ? 0 : NS / t->rate;
  int64_t first = t->next_due;
  for (;;) {
    t->now = now_ns();
    int64_t now = t->now;
    if (!t->closed) {
      while (t->next_due <= now && t->next_due < t->t_end) {
        enqueue_due(t, t->next_due);
        k_due++;
        t->next_due = cfg->poisson ? t->next_due + next_gap_ns(t)
                                   : first + (int64_t)llround((double)k_due * period);
      }
    }
    bool window_open = now < t->t_end;
    bool busy = false;
    for (int i = 0; i < t->nconns; i++) {
      conn_t *c = &t->conns[i];
      if (c->state == CONN_DEAD && now >= c->retry_at && (window_open || c->bl_len > 0))
        conn_start(c);
      if (c->state == CONN_UP) {
        conn_pump(c, window_open);
        conn_flush(c);
      }
      if (!t->closed)
        conn_count_late(c);
      if (c->active > 0 || c->bl_len > 0)
        busy = true;
    }
    if (!window_open && (!busy || now >= t->t_drain))
      break;
    /* sleep until the next due request, reconnect, end of window or drain deadline */
    int64_t wake = window_open ? t->t_end : t->t_drain;
    if (!t->closed && t->next_due < t->t_end && t->next_due < wake)
      wake = t->next_due;
    for (int i = 0; i < t->nconns; i++)
      if (t->conns[i].state == CONN_DEAD && t->conns[i].retry_at < wake &&
          (window_open || t->conns[i].bl_len > 0))
        wake = t->conns[i].retry_at;
    int64_t wait = wake - now_ns();
    if (wait < 0)
      wait = 0;
    struct timespec ts = {.tv_sec = wait / 1000000000, .tv_nsec = wait % 1000000000};
    int n = epoll_pwait2(t->ep, evs, IDML_EVENTS, &ts, NULL);
    if (n < 0 && errno == ENOSYS) {     /* kernel < 5.11: millisecond waits */
      n = epoll_wait(t->ep, evs, IDML_EVENTS, (int)(wait / 1000000));
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      snprintf(t->err, sizeof t->err, "epoll: %s", strerror(errno));
      return NULL;
    }
    t->now = now_ns();
    for (int i = 0; i < n; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->state == CONN_CONNECTING) {
        conn_connected(c);
        continue;
      }
      if (c->state != CONN_UP)
        continue;
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_read(c);
      if (c->state == CONN_UP && (evs[i].events & EPOLLOUT))
        conn_flush(c);
    }
  }
  t->r.elapsed_s = (double)((t->now < t->t_end ? t->now : t->t_end) - t->t_warm) / NS;
  for (int i = 0; i < t->nconns; i++) {
    conn_t *c = &t->conns[i];
    for (uint32_t j = 0; j < c->bl_len; j++) {
      int64_t due = c->backlog[(c->bl_head + j) % c->bl_cap];
      if (due >= t->t_warm && due < t->t_end)
        t->r.unfinished++;
    }
    for (int j = 0; j < cfg->streams; j++)
      if (c->slots[j].in_use && c->slots[j].measured)
        t->r.unfinished++;
  }
  return NULL;
}

// ---- one phase: connect, run the threads, merge ------------------------------------------
/* Connects every socket before the clock starts, so the first requests measure the server,
 * not the TCP handshakes. Fails the run when a connection cannot be made. */
static void connect_all(const config_t *cfg, int *fds) {
  for (int i = 0; i < cfg->conns; i++)
    fds[i] = -1;
  for (int i = 0; i < cfg->conns; i++) {
    fds[i] = sock_new(cfg);
    if (fds[i] < 0)
      die("connect to %s:%s: %s", cfg->host, cfg->port, strerror(errno));
  }
  int64_t deadline = now_ns() + (int64_t)IDML_CONNECT_TIMEOUT_MS * 1000000;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1: %s", strerror(errno));
  for (int i = 0; i < cfg->conns; i++) {
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev))
      die("epoll_ctl: %s", strerror(errno));
  }
  int left = cfg->conns;
  struct epoll_event evs[IDML_EVENTS];
  while (left > 0) {
    int64_t wait_ms = (deadline - now_ns()) / 1000000;
    if (wait_ms <= 0)
      die("connect to %s:%s: timed out after %d ms (%d of %d connections up)", cfg->host,
          cfg->port, IDML_CONNECT_TIMEOUT_MS, cfg->conns - left, cfg->conns);
    int n = epoll_wait(ep, evs, IDML_EVENTS, (int)wait_ms);
    if (n < 0 && errno != EINTR)
      die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      int fd = fds[evs[i].data.u32], err = 0;
      socklen_t l = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 && err)
        die("connect to %s:%s: %s", cfg->host, cfg->port, strerror(err));
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
      left--;
    }
  }
  close(ep);
}

static void results_init(results_t *r) {
  memset(r, 0, sizeof *r);
  idml_hist_init(&r->lat);
  idml_hist_init(&r->svc);
  idml_hist_init(&r->lag);
}

static void results_merge(results_t *a, const results_t *b) {
  a->scheduled += b->scheduled;
  a->sent += b->sent;
  a->completed += b->completed;
  a->late += b->late;
  a->backlog_full += b->backlog_full;
  a->unfinished += b->unfinished;
  a->warmup += b->warmup;
  a->in_window += b->in_window;
  a->in_window_2xx += b->in_window_2xx;
  for (int i = 0; i < 6; i++)
    a->status[i] += b->status[i];
  a->rst += b->rst;
  a->refused += b->refused;
  a->lost += b->lost;
  a->no_status += b->no_status;
  a->drops += b->drops;
  a->goaways += b->goaways;
  a->connect_fail += b->connect_fail;
  a->reconnects += b->reconnects;
  a->protocol += b->protocol;
  if (b->goaways)
    a->goaway_code = b->goaway_code;
  if (b->elapsed_s > a->elapsed_s)
    a->elapsed_s = b->elapsed_s;
  idml_hist_merge(&a->lat, &b->lat);
  idml_hist_merge(&a->svc, &b->svc);
  idml_hist_merge(&a->lag, &b->lag);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p)
    die("out of memory (%zu x %zu bytes)", n, size);
  return p;
}

/* Runs one measurement: closed loop when rate is 0. */
static void run_phase(const config_t *cfg, double rate, results_t *out) {
  int *fds = xcalloc((size_t)cfg->conns, sizeof *fds);
  connect_all(cfg, fds);
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb))
    die("out of memory");
  nghttp2_session_callbacks_set_on_header_callback(cb, cb_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, cb_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, cb_stream_close);

  thread_t *ts = xcalloc((size_t)cfg->threads, sizeof *ts);
  conn_t *conns = xcalloc((size_t)cfg->conns, sizeof *conns);
  double total_s = cfg->warmup_s + cfg->duration_s;
  /* the backlog can hold every request the run schedules on a connection, up to a cap */
  double per_conn = rate > 0 ? ceil(rate * total_s / cfg->conns) + 16 : 0;
  uint32_t bl_cap = per_conn > IDML_BACKLOG_MAX ? IDML_BACKLOG_MAX : (uint32_t)per_conn;
  if (bl_cap < 1)
    bl_cap = 1;
  for (int i = 0; i < cfg->conns; i++) {
    conn_t *c = &conns[i];
    c->fd = fds[i];
    c->slots = xcalloc((size_t)cfg->streams, sizeof *c->slots);
    c->free_slots = xcalloc((size_t)cfg->streams, sizeof *c->free_slots);
    for (int j = 0; j < cfg->streams; j++)
      c->free_slots[j] = (uint32_t)(cfg->streams - 1 - j);
    c->free_len = (uint32_t)cfg->streams;
    c->bl_cap = bl_cap;
    c->backlog = rate > 0 ? xcalloc(bl_cap, sizeof *c->backlog) : NULL;
    c->out = xcalloc(IDML_OUT_CAP, 1);
  }
  int64_t t0 = now_ns() + 2000000;      /* 2 ms for the threads to start */
  for (int i = 0; i < cfg->threads; i++) {
    thread_t *t = &ts[i];
    int lo = (int)((int64_t)cfg->conns * i / cfg->threads);
    int hi = (int)((int64_t)cfg->conns * (i + 1) / cfg->threads);
    t->cfg = cfg;
    t->cb = cb;
    t->conns = conns + lo;
    t->nconns = hi - lo;
    for (int j = 0; j < t->nconns; j++)
      t->conns[j].t = t;
    t->closed = rate == 0;
    t->rate = rate / cfg->threads;
    t->t0 = t0;
    t->t_warm = t0 + (int64_t)llround(cfg->warmup_s * NS);
    t->t_end = t->t_warm + (int64_t)llround(cfg->duration_s * NS);
    t->t_drain = t->t_end + (int64_t)llround(cfg->drain_s * NS);
    /* thread i's first request: i/RATE after t0, so the threads interleave evenly */
    t->next_due = rate > 0 ? t0 + (int64_t)llround(i * NS / rate) : t0;
    t->rng = cfg->seed * UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)i + 1;
    if (t->rng == 0)
      t->rng = 1;
    t->in = xcalloc(IDML_IN_CHUNK, 1);
    results_init(&t->r);
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    if (t->ep < 0)
      die("epoll_create1: %s", strerror(errno));
  }
  for (int i = 0; i < cfg->threads; i++)
    if (pthread_create(&ts[i].tid, NULL, thread_main, &ts[i]))
      die("cannot start thread %d", i);
  results_init(out);
  for (int i = 0; i < cfg->threads; i++) {
    pthread_join(ts[i].tid, NULL);
    if (ts[i].err[0])
      die("%s", ts[i].err);
    results_merge(out, &ts[i].r);
  }
  for (int i = 0; i < cfg->conns; i++) {
    conn_t *c = &conns[i];
    if (c->s)
      nghttp2_session_del(c->s);
    if (c->fd >= 0)
      close(c->fd);
    free(c->slots);
    free(c->free_slots);
    free(c->backlog);
    free(c->out);
  }
  for (int i = 0; i < cfg->threads; i++) {
    close(ts[i].ep);
    free(ts[i].in);
  }
  free(conns);
  free(ts);
  free(fds);
  nghttp2_session_callbacks_del(cb);
}

// ---- report -------------------------------------------------------------------------
static uint64_t errors_total(const results_t *r) {
  return r->rst + r->refused + r->lost + r->no_status + r->backlog_full + r->protocol;
}

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static double achieved(const results_t *r) {
  return r->elapsed_s > 0 ? (double)r->in_window / r->elapsed_s : 0;
}

static double achieved_2xx(const results_t *r) {
  return r->elapsed_s > 0 ? (double)r->in_window_2xx / r->elapsed_s : 0;
}

static void text_hist(const char *what, const idml_hist_t *h) {
  if (!h->count) {
    printf("%-28s no samples\n", what);
    return;
  }
  printf("%-28s p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n", what,
         ms(idml_hist_percentile(h, 50)), ms(idml_hist_percentile(h, 90)),
         ms(idml_hist_percentile(h, 99)), ms(idml_hist_percentile(h, 99.9)), ms(h->max),
         idml_hist_mean(h) / 1e6);
}

static void text_report(const config_t *cfg, double rate, const results_t *r) {
  if (rate > 0)
    printf("open loop: %.1f req/s (%s), ", rate, cfg->poisson ? "poisson" : "uniform");
  else
    printf("closed loop: every stream busy, ");
  printf("%d connection(s) x %d stream(s), %d thread(s), %s %s, %.3g s (+%.3g s warm-up)\n",
         cfg->conns, cfg->streams, cfg->threads, cfg->method, cfg->uri, cfg->duration_s,
         cfg->warmup_s);
  if (rate > 0)
    printf("requests: %" PRIu64 " scheduled, %" PRIu64 " sent, %" PRIu64 " completed, %" PRIu64
           " unfinished; %" PRIu64 " warm-up requests excluded\n",
           r->scheduled, r->sent, r->completed, r->unfinished, r->warmup);
  else
    printf("requests: %" PRIu64 " sent, %" PRIu64 " completed, %" PRIu64
           " unfinished; %" PRIu64 " warm-up requests excluded\n",
           r->sent, r->completed, r->unfinished, r->warmup);
  if (rate > 0)
    printf("late: %" PRIu64 " (%.2f %%) waited for a free stream or connection\n", r->late,
           r->scheduled ? 100.0 * (double)r->late / (double)r->scheduled : 0.0);
  printf("status codes: %" PRIu64 " 2xx, %" PRIu64 " 3xx, %" PRIu64 " 4xx, %" PRIu64
         " 5xx, %" PRIu64 " other\n",
         r->status[2], r->status[3], r->status[4], r->status[5], r->status[0] + r->status[1]);
  printf("errors: %" PRIu64 " (%" PRIu64 " reset, %" PRIu64 " refused, %" PRIu64
         " lost with a connection, %" PRIu64 " without status, %" PRIu64
         " backlog full); connections: %" PRIu64 " dropped, %" PRIu64 " GOAWAY",
         errors_total(r), r->rst, r->refused, r->lost, r->no_status, r->backlog_full, r->drops,
         r->goaways);
  if (r->goaways)
    printf(" (last code %s)", nghttp2_http2_strerror(r->goaway_code));
  printf(", %" PRIu64 " protocol errors, %" PRIu64 " reconnects, %" PRIu64
         " failed reconnects\n",
         r->protocol, r->reconnects, r->connect_fail);
  printf("rate: %.1f req/s achieved, %.1f of them 2xx (responses in the %.3f s window)",
         achieved(r), achieved_2xx(r), r->elapsed_s);
  if (rate > 0)
    printf(", target %.1f", rate);
  printf("\n");
  text_hist(rate > 0 ? "latency ms (from intended):" : "latency ms:", &r->lat);
  if (rate > 0) {
    text_hist("service ms (from sent):", &r->svc);
    text_hist("send lag ms (sent-intended):", &r->lag);
  }
}

static void json_hist(const char *name, const idml_hist_t *h) {
  printf("\"%s\":{\"count\":%" PRIu64 ",\"p50\":%.6f,\"p90\":%.6f,\"p99\":%.6f,\"p99_9\":%.6f,"
         "\"max\":%.6f,\"mean\":%.6f}",
         name, h->count, ms(idml_hist_percentile(h, 50)), ms(idml_hist_percentile(h, 90)),
         ms(idml_hist_percentile(h, 99)), ms(idml_hist_percentile(h, 99.9)),
         h->count ? ms(h->max) : 0.0, idml_hist_mean(h) / 1e6);
}

static void json_report(const config_t *cfg, double rate, const results_t *r) {
  printf("{\"mode\":\"%s\",\"target_rate\":%.3f,\"poisson\":%s,\"connections\":%d,"
         "\"streams\":%d,\"threads\":%d,\"duration_s\":%.6g,\"warmup_s\":%.6g,"
         "\"elapsed_s\":%.6f,\"rate\":%.3f,\"rate_2xx\":%.3f,",
         rate > 0 ? "open" : "closed", rate, cfg->poisson && rate > 0 ? "true" : "false",
         cfg->conns, cfg->streams, cfg->threads, cfg->duration_s, cfg->warmup_s, r->elapsed_s,
         achieved(r), achieved_2xx(r));
  printf("\"requests\":{\"scheduled\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"completed\":%" PRIu64
         ",\"late\":%" PRIu64 ",\"unfinished\":%" PRIu64 ",\"warmup\":%" PRIu64 "},",
         r->scheduled, r->sent, r->completed, r->late, r->unfinished, r->warmup);
  printf("\"status\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64
         ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64 "},",
         r->status[1], r->status[2], r->status[3], r->status[4], r->status[5], r->status[0]);
  printf("\"errors\":{\"total\":%" PRIu64 ",\"reset\":%" PRIu64 ",\"refused\":%" PRIu64
         ",\"lost\":%" PRIu64 ",\"no_status\":%" PRIu64 ",\"backlog_full\":%" PRIu64
         ",\"protocol\":%" PRIu64 "},",
         errors_total(r), r->rst, r->refused, r->lost, r->no_status, r->backlog_full,
         r->protocol);
  printf("\"connections\":{\"dropped\":%" PRIu64 ",\"goaway\":%" PRIu64
         ",\"reconnects\":%" PRIu64 ",\"failed_reconnects\":%" PRIu64 "},",
         r->drops, r->goaways, r->reconnects, r->connect_fail);
  json_hist("latency_ms", &r->lat);
  putchar(',');
  json_hist("service_ms", &r->svc);
  putchar(',');
  json_hist("send_lag_ms", &r->lag);
  putchar('}');
}

int main(int argc, char **argv) {
  config_t cfg;
  parse_args(&cfg, argc, argv);
  resolve(&cfg);
  signal(SIGPIPE, SIG_IGN);
  results_t *a = xcalloc(1, sizeof *a), *b = xcalloc(1, sizeof *b);
  int rc;
  if (cfg.find_max) {
    run_phase(&cfg, 0, a);
    double max = achieved_2xx(a);   /* 503s answered fast are not capacity */
    if (!cfg.json) {
      printf("== maximum rate, closed loop\n");
      text_report(&cfg, 0, a);
      fflush(stdout);
    }
    if (a->status[2] == 0 || max < 1.0 / cfg.duration_s) {
      if (cfg.json) {
        printf("{\"closed\":");
        json_report(&cfg, 0, a);
        printf(",\"at\":%.6g,\"open\":null}\n", cfg.at);
      }
      fprintf(stderr, "idmload: the closed-loop run got no 2xx responses; no rate to measure at\n");
      rc = 1;
    } else {
      double rate = max * cfg.at;
      run_phase(&cfg, rate, b);
      if (cfg.json) {
        printf("{\"closed\":");
        json_report(&cfg, 0, a);
        printf(",\"at\":%.6g,\"open\":", cfg.at);
        json_report(&cfg, rate, b);
        printf("}\n");
      } else {
        printf("== %.0f %% of the maximum (%.1f 2xx/s), open loop\n", cfg.at * 100, max);
        text_report(&cfg, rate, b);
      }
      rc = b->completed ? 0 : 1;
    }
  } else {
    run_phase(&cfg, cfg.rate, a);
    if (cfg.json) {
      json_report(&cfg, cfg.rate, a);
      putchar('\n');
    } else {
      text_report(&cfg, cfg.rate, a);
    }
    rc = a->completed ? 0 : 1;
  }
  for (size_t i = 0; i < cfg.hdr_count; i++)
    free(cfg.hdr_store[i]);
  free(cfg.body);
  free(a);
  free(b);
  return rc;
}
