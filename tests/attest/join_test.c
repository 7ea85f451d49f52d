/* join-token: one-time bootstrap tokens, and unix peers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/sha.h>

#include "attest/internal.h"
#include "core/file.h"
#include "core/limits.h"
#include "env.h"

static idm_arena_t g_arena;
static pol_trust_t t_join, t_unix;
static char g_store[512];

static void setup(void) {
  idm_arena_init(&g_arena, 64 * 1024);
  static int n;
  snprintf(g_store, sizeof g_store, "%s/join-%d-%d.json", g_dir, (int)getpid(), n++);
  memset(&t_join, 0, sizeof t_join);
  t_join.name = "edge";
  t_join.kind = POL_KIND_JOIN_TOKEN;
  t_join.store = g_store;
  memset(&t_unix, 0, sizeof t_unix);
  t_unix.name = "local";
  t_unix.kind = POL_KIND_UNIX;
}
static void teardown(void) { idm_arena_cleanup(&g_arena); }
TestSuite(join, .init = setup, .fini = teardown);

static idm_attest_t *mk(void) {
  const pol_trust_t *ts[] = {&t_join, &t_unix};
  idm_why_t why = {{0}};
  idm_attest_t *a = idm_attest_new_from_trusts(ts, 2, &why);
  cr_assert_not_null(a, "%s", why.text);
  return a;
}

static idm_err_t use(idm_attest_t *a, const char *tok, long long now, idm_identity_t *id,
                     idm_why_t *why) {
  idm_clock_t c = env_clock(now);
  idm_arena_reset(&g_arena);
  return idm_attest_verify(a, NULL, &g_arena, IDM_DOC_JOIN_TOKEN, NULL, tok, strlen(tok), &c, id,
                           why);
}

static void mint(const char *name, long long ttl, long long now, char *tok) {
  idm_clock_t c = env_clock(now);
  idm_why_t why = {{0}};
  cr_assert_eq(idm_join_token_new(&t_join, name, ttl, &c, tok, IDM_JOIN_TOKEN_MAX, &why), IDM_OK,
               "%s", why.text);
}

Test(join, used_once_then_refused) {
  idm_attest_t *a = mk();
  char tok[IDM_JOIN_TOKEN_MAX];
  mint("edge-7", 3600, NOW, tok);
  cr_assert(!strncmp(tok, "idmjt1.edge-7.", 14), "%s", tok);
  /* Only a hash is stored; the store is private. */
  char *text;
  size_t n;
  cr_assert_eq(idm_file_read(g_store, 1 << 20, &text, &n, NULL), IDM_OK);
  cr_assert_null(strstr(text, tok + 14), "the secret must not be stored");
  free(text);
  struct stat st;
  stat(g_store, &st);
  cr_assert_eq(st.st_mode & 077, 0);

  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(use(a, tok, NOW + 10, &id, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(id.client.attr[POL_A_TOKEN_NAME].len, 6);
  cr_assert(!memcmp(id.client.attr[POL_A_TOKEN_NAME].ptr, "edge-7", 6));
  cr_assert(!memcmp(id.client.attr[POL_A_KIND].ptr, "join-token", 10));
  cr_assert_eq(use(a, tok, NOW + 20, &id, &why), IDM_ERR_JOIN_USED, "%s", why.text);
  cr_assert(strstr(why.text, "already used 10s ago"), "%s", why.text);
  /* A fresh attest (e.g. after a restart) still knows it was used. */
  idm_attest_free(a);
  a = mk();
  cr_assert_eq(use(a, tok, NOW + 30, &id, &why), IDM_ERR_JOIN_USED, "%s", why.text);
  idm_attest_free(a);
}

/* A store whose times are out of range (damaged or hand-edited) is refused with the entry
 * and field named, by both presenting and minting, instead of overflowing the arithmetic
 * on them. (Found by fuzz/join_store: "expires" near INT64_MIN or INT64_MAX, "used" at
 * INT64_MIN were subtracted from or added to the clock.) */
Test(join, store_times_out_of_range_refused) {
  idm_attest_t *a = mk();
  const char *tok = "idmjt1.edge-7.AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
  uint8_t d[32];
  SHA256((const uint8_t *)tok, strlen(tok), d);
  char h[65];
  for (int i = 0; i < 32; i++)
    snprintf(h + 2 * i, 3, "%02x", d[i]);
  static const struct {
    long long expires, used;
    const char *field;
  } cases[] = {{-9223372036854775807LL - 1, 0, "\"expires\""},
               {9223372036854775807LL, 0, "\"expires\""},
               {-1, 0, "\"expires\""},
               {NOW + 60, -9223372036854775807LL - 1, "\"used\""},
               {NOW + 60, 253402300800LL, "\"used\""}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[512];
    int n = snprintf(text, sizeof text,
                     "{\"version\":1,\"tokens\":[{\"name\":\"edge-7\",\"sha256\":\"%s\","
                     "\"created\":1,\"expires\":%lld,\"used\":%lld}]}",
                     h, cases[i].expires, cases[i].used);
    cr_assert_eq(idm_file_write_atomic(g_store, text, (size_t)n, 0600, NULL), IDM_OK);
    idm_identity_t id;
    idm_why_t why = {{0}};
    cr_assert_eq(use(a, tok, NOW, &id, &why), IDM_ERR_JOIN_STORE, "case %zu: %s", i, why.text);
    cr_assert(strstr(why.text, "entry 0") && strstr(why.text, cases[i].field) &&
                  strstr(why.text, "is not a time in seconds"),
              "case %zu: %s", i, why.text);
    idm_clock_t c = env_clock(NOW);
    char out[IDM_JOIN_TOKEN_MAX];
    memset(&why, 0, sizeof why);
    cr_assert_eq(idm_join_token_new(&t_join, "dev", 60, &c, out, sizeof out, &why),
                 IDM_ERR_JOIN_STORE, "case %zu: %s", i, why.text);
  }
  idm_attest_free(a);
}

Test(join, refused_after_ttl_unknown_or_malformed) {
  idm_attest_t *a = mk();
  char tok[IDM_JOIN_TOKEN_MAX];
  mint("sensor", 3600, NOW, tok);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(use(a, tok, NOW + 3600, &id, &why), IDM_ERR_JOIN_EXPIRED, "%s", why.text);
  cr_assert(strstr(why.text, "expired 0s ago"), "%s", why.text);
  /* Another token with a flipped secret character is unknown. */
  char other[IDM_JOIN_TOKEN_MAX];
  snprintf(other, sizeof other, "%s", tok);
  other[strlen(other) - 2] = other[strlen(other) - 2] == 'A' ? 'B' : 'A';
  cr_assert_eq(use(a, other, NOW, &id, &why), IDM_ERR_JOIN_UNKNOWN, "%s", why.text);
  static const char *const bad[] = {"idmjt1.x", "nope", "idmjt1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                    "idmjt1.a b.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(use(a, bad[i], NOW, &id, &why), IDM_ERR_JOIN_FORMAT, "%s", bad[i]);
  idm_clock_t c = env_clock(NOW);
  cr_assert_eq(idm_join_token_new(&t_join, "bad name", 60, &c, tok, sizeof tok, &why),
               IDM_ERR_JOIN_FORMAT);
  cr_assert_eq(idm_join_token_new(&t_join, "x", IDM_JOIN_TTL_MAX_S + 1, &c, tok, sizeof tok, &why),
               IDM_ERR_JOIN_FORMAT);
  idm_attest_free(a);
}

typedef struct race {
  idm_attest_t *a;
  const char *tok;
  _Atomic int ok;
} race_t;

static void *racer(void *arg) {
  race_t *r = arg;
  idm_arena_t ar;
  idm_arena_init(&ar, 64 * 1024);
  idm_clock_t c = env_clock(NOW + 1);
  idm_identity_t id;
  if (idm_attest_verify(r->a, NULL, &ar, IDM_DOC_JOIN_TOKEN, "edge", r->tok, strlen(r->tok), &c,
                        &id, NULL) == IDM_OK)
    r->ok++;
  idm_arena_cleanup(&ar);
  return NULL;
}

Test(join, one_time_under_concurrency_threads_and_processes) {
  idm_attest_t *a = mk();
  char tok[IDM_JOIN_TOKEN_MAX];
  mint("racer", 600, NOW, tok);
  race_t r = {a, tok, 0};
  pthread_t th[8];
  for (int i = 0; i < 8; i++)
    pthread_create(&th[i], NULL, racer, &r);
  for (int i = 0; i < 8; i++)
    pthread_join(th[i], NULL);
  cr_assert_eq(r.ok, 1, "%d threads succeeded", (int)r.ok);

  /* Processes: each child has its own attest (own mutex); only the flock protects. */
  mint("racer2", 600, NOW, tok);
  pid_t kids[6];
  for (int i = 0; i < 6; i++) {
    kids[i] = fork();
    if (kids[i] == 0) {
      idm_attest_t *ca = mk();
      race_t cr = {ca, tok, 0};
      racer(&cr);
      _exit(cr.ok ? 0 : 3);
    }
  }
  int wins = 0;
  for (int i = 0; i < 6; i++) {
    int status;
    waitpid(kids[i], &status, 0);
    cr_assert(WIFEXITED(status));
    wins += WEXITSTATUS(status) == 0;
  }
  cr_assert_eq(wins, 1, "%d processes succeeded", wins);
  idm_attest_free(a);
}

/* The server's pair: identification that never hashes hands out the executable for
 * hashing elsewhere, and once it is hashed gives what idm_attest_unix_peer gives. */
Test(join, unix_peer_cached_hands_out_the_executable_to_hash) {
  idm_attest_t *a = mk();
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  idm_identity_t id;
  idm_why_t why = {{0}};
  int xfd = 123456;
  /* A fresh process (Criterion forks per test): our executable is not in the cache. */
  cr_assert_eq(idm_attest_unix_peer_cached(a, sv[0], &g_arena, &id, &xfd, &why),
               IDM_ERR_UNIX_EXE_UNHASHED, "%s", why.text);
  cr_assert_geq(xfd, 0);
  struct stat s1, s2;
  cr_assert_eq(fstat(xfd, &s1), 0);
  cr_assert_eq(stat("/proc/self/exe", &s2), 0);
  cr_assert(s1.st_ino == s2.st_ino && s1.st_dev == s2.st_dev, "not our executable");
  cr_assert_eq(idm_attest_unix_exe_hash(xfd, &why), IDM_OK, "%s", why.text);
  close(xfd);
  cr_assert_eq(idm_attest_unix_peer_cached(a, sv[0], &g_arena, &id, &xfd, &why), IDM_OK,
               "%s", why.text);
  cr_assert_eq(xfd, -1);
  idm_identity_t id2;
  cr_assert_eq(idm_attest_unix_peer(a, sv[0], &g_arena, &id2, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(id.client.attr[POL_A_EXE_SHA256].len, 64);
  cr_assert(!memcmp(id.client.attr[POL_A_EXE_SHA256].ptr, id2.client.attr[POL_A_EXE_SHA256].ptr, 64));
  /* Not a socket: an error, and no descriptor handed out. */
  cr_assert_eq(idm_attest_unix_peer_cached(a, 999, &g_arena, &id, &xfd, &why), IDM_ERR_UNIX_PEER);
  cr_assert_eq(xfd, -1);
  close(sv[0]);
  close(sv[1]);
  idm_attest_free(a);
}

Test(join, unix_peer_identified_by_kernel) {
  idm_attest_t *a = mk();
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  idm_identity_t id;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_attest_unix_peer(a, sv[0], &g_arena, &id, &why), IDM_OK, "%s", why.text);
  char want[32];
  snprintf(want, sizeof want, "%u", (unsigned)getuid());
  cr_assert_eq(id.client.attr[POL_A_UID].len, strlen(want));
  cr_assert(!memcmp(id.client.attr[POL_A_UID].ptr, want, strlen(want)));
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
  cr_assert_eq(id.client.attr[POL_A_EXE].len, (uint32_t)n);
  cr_assert(!memcmp(id.client.attr[POL_A_EXE].ptr, exe, (size_t)n));
  /* The digest matches the file's. */
  char *bin;
  size_t bl;
  exe[n] = '\0';
  cr_assert_eq(idm_file_read(exe, 1u << 30, &bin, &bl, NULL), IDM_OK);
  uint8_t d[32];
  SHA256((const uint8_t *)bin, bl, d);
  free(bin);
  char hexd[65];
  for (int i = 0; i < 32; i++)
    snprintf(hexd + 2 * i, 3, "%02x", d[i]);
  cr_assert(!memcmp(id.client.attr[POL_A_EXE_SHA256].ptr, hexd, 64));
  cr_assert(!memcmp(id.client.attr[POL_A_KIND].ptr, "unix", 4));
  close(sv[0]);
  close(sv[1]);
  /* Not a socket. */
  cr_assert_eq(idm_attest_unix_peer(a, 0 + 999, &g_arena, &id, &why), IDM_ERR_UNIX_PEER);
  idm_attest_free(a);
}

/* The executable's digest is cached by device, inode, size, mtime and ctime: a second
 * look at an unchanged file is a hit with the same digest; rewriting it (same size, even
 * with its mtime put back) is a miss that hashes the new contents. */
static void sha_hex_file(int fd, uint8_t out[32]) {
  struct stat st;
  cr_assert_eq(fstat(fd, &st), 0);
  uint8_t *b = malloc((size_t)st.st_size + 1);
  cr_assert_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
  SHA256(b, (size_t)st.st_size, out);
  free(b);
}

Test(join, exe_digest_cached_until_the_file_changes) {
  char path[] = "/tmp/idm-exe-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  char a[8192], b[8192];
  memset(a, 'a', sizeof a);
  memset(b, 'b', sizeof b);
  cr_assert_eq(write(fd, a, sizeof a), (ssize_t)sizeof a);
  uint64_t h0, m0, h1, m1;
  idm_attest_exe_cache_stats(&h0, &m0);
  uint8_t d1[32], d2[32], want[32];
  idm_why_t why = {{0}};
  cr_assert_eq(idm_attest_exe_digest(fd, path, d1, &why), IDM_OK, "%s", why.text);
  sha_hex_file(fd, want);
  cr_assert(!memcmp(d1, want, 32));
  cr_assert_eq(idm_attest_exe_digest(fd, path, d2, &why), IDM_OK, "%s", why.text);
  cr_assert(!memcmp(d2, want, 32));
  idm_attest_exe_cache_stats(&h1, &m1);
  cr_assert_eq(m1 - m0, 1);
  cr_assert_eq(h1 - h0, 1);

  struct stat st;
  cr_assert_eq(fstat(fd, &st), 0);
  usleep(20 * 1000); /* a later ctime even on a coarse clock */
  cr_assert_eq(pwrite(fd, b, sizeof b, 0), (ssize_t)sizeof b);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  cr_assert_eq(futimens(fd, ts), 0); /* mtime back; ctime moved on */
  cr_assert_eq(idm_attest_exe_digest(fd, path, d2, &why), IDM_OK, "%s", why.text);
  sha_hex_file(fd, want);
  cr_assert(!memcmp(d2, want, 32));
  cr_assert(memcmp(d1, d2, 32));
  idm_attest_exe_cache_stats(&h0, &m0);
  cr_assert_eq(m0 - m1, 1);

  /* Not a regular file. */
  int dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
  cr_assert_eq(idm_attest_exe_digest(dfd, "/tmp", d2, &why), IDM_ERR_UNIX_PEER);
  cr_assert(strstr(why.text, "not a regular file"), "%s", why.text);
  close(dfd);
  close(fd);
  unlink(path);
}

/* A unix peer attested twice hashes its executable once. */
Test(join, unix_peer_digest_hashed_once) {
  idm_attest_t *a = mk();
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  idm_identity_t id1, id2;
  idm_why_t why = {{0}};
  cr_assert_eq(idm_attest_unix_peer(a, sv[0], &g_arena, &id1, &why), IDM_OK, "%s", why.text);
  uint64_t h0, m0, h1, m1;
  idm_attest_exe_cache_stats(&h0, &m0);
  cr_assert_eq(idm_attest_unix_peer(a, sv[0], &g_arena, &id2, &why), IDM_OK, "%s", why.text);
  idm_attest_exe_cache_stats(&h1, &m1);
  cr_assert_eq(h1 - h0, 1);
  cr_assert_eq(m1, m0);
  cr_assert(!memcmp(id1.client.attr[POL_A_EXE_SHA256].ptr, id2.client.attr[POL_A_EXE_SHA256].ptr,
                    64));
  close(sv[0]);
  close(sv[1]);
  idm_attest_free(a);
}
