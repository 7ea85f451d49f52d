/* Key directory: file format and modes, refusal of bad files, rotation with a controlled
 * clock, signing forms. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/file.h"
#include "core/json.h"
#include "core/limits.h"
#include "crypto/crypto_testutil.h"
#include "crypto/jose.h"
#include "crypto/keys.h"

static void setup(void) { idm_json_init(); }
TestSuite(keys, .init = setup);

static const int64_t T0 = 1800000000;

static char *key_path(const char *dir, const char *kid) {
  char *p = malloc(strlen(dir) + 64);
  sprintf(p, "%s/%s.json", dir, kid);
  return p;
}

static size_t count_files(const char *dir) {
  DIR *d = opendir(dir);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    n += de->d_name[0] != '.';
  closedir(d);
  return n;
}

Test(keys, new_creates_private_dir_and_files) {
  char *base = tu_tmpdir();
  char dir[512];
  snprintf(dir, sizeof dir, "%s/keys", base);
  idm_clock_t clk;
  idm_clock_set_s(&clk, T0);
  char kid[IDM_KID_LEN + 1];
  idm_why_t why = {{0}};
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, &clk, kid, &why), IDM_OK, "%s", why.text);
  struct stat st;
  cr_assert_eq(stat(dir, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);
  char *p = key_path(dir, kid);
  cr_assert_eq(stat(p, &st), 0, "file is named <kid>.json");
  cr_assert_eq(st.st_mode & 0777, 0600);
  cr_assert_eq(strlen(kid), IDM_KID_LEN);
  /* the file holds a standard private JWK */
  json_t *f = json_load_file(p, 0, NULL);
  cr_assert_not_null(f);
  cr_assert_str_eq(json_string_value(json_object_get(f, "state")), "active");
  json_t *jwk = json_object_get(f, "jwk");
  cr_assert_str_eq(json_string_value(json_object_get(jwk, "kty")), "OKP");
  cr_assert_str_eq(json_string_value(json_object_get(jwk, "kid")), kid);
  cr_assert_eq(json_string_length(json_object_get(jwk, "d")), 43);
  json_decref(f);
  free(p);

  /* second key of the alg is NEXT, a third is refused; ES256 is independent */
  char kid2[IDM_KID_LEN + 1], kid3[IDM_KID_LEN + 1];
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, &clk, kid2, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, &clk, NULL, &why), IDM_ERR_KEY_STATE);
  cr_assert(strstr(why.text, "rotate"), "%s", why.text);
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_ES256, &clk, kid3, &why), IDM_OK, "%s", why.text);

  idm_keyring_t *kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_not_null(kr, "%s", why.text);
  cr_assert_eq(idm_keyring_count(kr), 3);
  cr_assert_str_eq(idm_key_kid(idm_keyring_signer(kr, IDM_KEY_EDDSA)), kid);
  cr_assert_str_eq(idm_key_kid(idm_keyring_signer(kr, IDM_KEY_ES256)), kid3);
  const idm_key_t *k2 = idm_keyring_find(kr, kid2, strlen(kid2));
  cr_assert_not_null(k2);
  cr_assert_eq(idm_key_state(k2), IDM_KEY_NEXT);
  /* the published set holds all three, public only, with kid = thumbprint */
  size_t jl;
  const char *js = idm_keyring_jwks_json(kr, &jl);
  cr_assert_eq(strlen(js), jl);
  cr_assert_null(strstr(js, "\"d\""), "no private member is published");
  const idm_jwks_t *set = idm_keyring_jwks(kr);
  cr_assert_eq(idm_jwks_count(set), 3);
  for (size_t i = 0; i < 3; i++)
    cr_assert_str_eq(idm_jwk_kid(idm_jwks_at(set, i)), idm_jwk_thumbprint(idm_jwks_at(set, i)));
  idm_keyring_free(kr);
  tu_rmrf(base);
  free(base);
}

static void write_file(const char *path, const char *data, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  cr_assert_geq(fd, 0);
  cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
  fchmod(fd, mode);
  close(fd);
}

static char *slurp(const char *path) {
  char *buf;
  size_t len;
  cr_assert_eq(idm_file_read(path, 1 << 20, &buf, &len, NULL), IDM_OK);
  return buf;
}

Test(keys, bad_files_refused_with_file_and_problem) {
  char *dir = tu_tmpdir();
  idm_clock_t clk;
  idm_clock_set_s(&clk, T0);
  char kid[IDM_KID_LEN + 1];
  idm_why_t why = {{0}};
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_ES256, &clk, kid, &why), IDM_OK, "%s", why.text);
  char *p = key_path(dir, kid);
  char *good = slurp(p);

  /* group-readable */
  chmod(p, 0640);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, p) && strstr(why.text, "0640"), "%s", why.text);
  chmod(p, 0600);

  /* truncated */
  char *cut = strdup(good);
  cut[strlen(cut) / 2] = '\0';
  write_file(p, cut, 0600);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, p) && strstr(why.text, "truncated"), "%s", why.text);
  free(cut);

  /* wrong type: valid JSON that is not a key file; an empty file; a directory */
  write_file(p, "{\"hello\":1}", 0600);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, p) && strstr(why.text, "not an idmint key file"), "%s", why.text);
  write_file(p, "", 0600);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, p), "%s", why.text);
  unlink(p);
  cr_assert_eq(mkdir(p, 0700), 0);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, p) && strstr(why.text, "not a regular file"), "%s", why.text);
  rmdir(p);

  /* private part that does not match the public one */
  json_t *f = json_loads(good, 0, NULL);
  json_t *jwk = json_object_get(f, "jwk");
  json_object_set_new(jwk, "d", json_string("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"));
  char *bad = json_dumps(f, 0);
  write_file(p, bad, 0600);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, p) && strstr(why.text, "does not match"), "%s", why.text);
  tu_jfree(bad);
  /* alg EdDSA with an EC JWK */
  json_object_set_new(f, "alg", json_string("EdDSA"));
  bad = json_dumps(f, 0);
  write_file(p, bad, 0600);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, "kty OKP"), "%s", why.text);
  tu_jfree(bad);
  json_decref(f);

  /* a good file under another name */
  unlink(p);
  char other[600];
  snprintf(other, sizeof other, "%s/renamed.json", dir);
  write_file(other, good, 0600);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, "thumbprint"), "%s", why.text);
  unlink(other);

  /* back to good; other files are ignored; a group-writable directory is refused */
  write_file(p, good, 0600);
  write_file(other, "", 0644);
  unlink(other);
  snprintf(other, sizeof other, "%s/README", dir);
  write_file(other, "notes", 0644);
  idm_keyring_t *kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_not_null(kr, "%s", why.text);
  idm_keyring_free(kr);
  chmod(dir, 0770);
  cr_assert_null(idm_keyring_load(dir, &clk, &why));
  cr_assert(strstr(why.text, "group or others write"), "%s", why.text);
  chmod(dir, 0700);
  cr_assert_null(idm_keyring_load("/nonexistent-idm-dir", &clk, &why));

  free(good);
  free(p);
  tu_rmrf(dir);
  free(dir);
}

static const idm_key_t *by_state(idm_keyring_t *kr, idm_key_state_t s, int nth) {
  for (size_t i = 0; i < idm_keyring_count(kr); i++)
    if (idm_key_state(idm_keyring_at(kr, i)) == s && nth-- == 0)
      return idm_keyring_at(kr, i);
  return NULL;
}

Test(keys, rotation_state_machine) {
  char *dir = tu_tmpdir();
  idm_clock_t clk;
  idm_clock_set_s(&clk, T0);
  idm_why_t why = {{0}};
  const int64_t ttl = 3600;
  cr_assert_eq(idm_keys_rotate(dir, &clk, ttl, &why), IDM_ERR_KEY_NONE);
  char a[IDM_KID_LEN + 1];
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, &clk, a, &why), IDM_OK);

  /* rotate 1: only pre-publishes B; A keeps signing */
  idm_clock_advance_s(&clk, 100);
  cr_assert_eq(idm_keys_rotate(dir, &clk, ttl, &why), IDM_OK, "%s", why.text);
  idm_keyring_t *kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_eq(idm_keyring_count(kr), 2);
  cr_assert_str_eq(idm_key_kid(idm_keyring_signer(kr, IDM_KEY_EDDSA)), a);
  char b[IDM_KID_LEN + 1];
  strcpy(b, idm_key_kid(by_state(kr, IDM_KEY_NEXT, 0)));
  idm_keyring_free(kr);

  /* rotate 2: B signs, A retired but published, C is the new NEXT */
  idm_clock_advance_s(&clk, 100);
  int64_t t2 = idm_clock_now_s(&clk);
  cr_assert_eq(idm_keys_rotate(dir, &clk, ttl, &why), IDM_OK, "%s", why.text);
  kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_eq(idm_keyring_count(kr), 3);
  cr_assert_str_eq(idm_key_kid(idm_keyring_signer(kr, IDM_KEY_EDDSA)), b);
  cr_assert_eq(idm_key_activated_s(idm_keyring_signer(kr, IDM_KEY_EDDSA)), t2);
  const idm_key_t *ra = by_state(kr, IDM_KEY_RETIRED, 0);
  cr_assert_str_eq(idm_key_kid(ra), a);
  cr_assert_eq(idm_key_retired_s(ra), t2);
  int64_t until = idm_key_publish_until_s(ra);
  cr_assert_eq(until, t2 + ttl + IDM_JWT_LEEWAY_MAX_S);
  cr_assert_not_null(by_state(kr, IDM_KEY_NEXT, 0));
  cr_assert_str_neq(idm_key_kid(by_state(kr, IDM_KEY_NEXT, 0)), b);
  cr_assert_null(by_state(kr, IDM_KEY_ACTIVE, 1), "one ACTIVE per alg");
  idm_keyring_free(kr);

  /* A stays published until every token it signed has expired, then is dropped */
  idm_clock_set_s(&clk, until - 1);
  kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_not_null(idm_keyring_find(kr, a, IDM_KID_LEN));
  idm_keyring_free(kr);
  idm_clock_set_s(&clk, until);
  kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_null(idm_keyring_find(kr, a, IDM_KID_LEN));
  cr_assert_null(idm_jwks_find(idm_keyring_jwks(kr), a, IDM_KID_LEN));
  cr_assert_eq(idm_keyring_count(kr), 2);
  idm_keyring_free(kr);
  /* the next rotation deletes A's file and retires B */
  cr_assert_eq(count_files(dir), 3);
  cr_assert_eq(idm_keys_rotate(dir, &clk, ttl, &why), IDM_OK, "%s", why.text);
  char *pa = key_path(dir, a);
  cr_assert_neq(access(pa, F_OK), 0, "expired retired key file deleted");
  free(pa);
  kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_eq(idm_keyring_count(kr), 3); /* B retired, C active, D next */
  cr_assert_str_eq(idm_key_kid(by_state(kr, IDM_KEY_RETIRED, 0)), b);
  idm_keyring_free(kr);
  tu_rmrf(dir);
  free(dir);
}

Test(keys, two_active_after_crash_newest_signs) {
  /* A rotation interrupted between promoting NEXT and retiring ACTIVE leaves two ACTIVE
   * keys: the directory still loads, the one activated last signs, both are published. */
  char *dir = tu_tmpdir();
  idm_clock_t clk;
  idm_clock_set_s(&clk, T0);
  idm_why_t why = {{0}};
  char a[IDM_KID_LEN + 1], b[IDM_KID_LEN + 1];
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, &clk, a, &why), IDM_OK);
  idm_clock_advance_s(&clk, 10);
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, &clk, b, &why), IDM_OK);
  char *pb = key_path(dir, b);
  char *s = slurp(pb);
  json_t *f = json_loads(s, 0, NULL);
  json_object_set_new(f, "state", json_string("active"));
  json_object_set_new(f, "activated", json_integer(T0 + 10));
  char *out = json_dumps(f, 0);
  write_file(pb, out, 0600);
  idm_keyring_t *kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_not_null(kr, "%s", why.text);
  cr_assert_str_eq(idm_key_kid(idm_keyring_signer(kr, IDM_KEY_EDDSA)), b);
  cr_assert_eq(idm_jwks_count(idm_keyring_jwks(kr)), 2);
  idm_keyring_free(kr);
  tu_jfree(out);
  json_decref(f);
  free(s);
  free(pb);
  tu_rmrf(dir);
  free(dir);
}

Test(keys, signatures_are_64_byte_jose_form) {
  char *dir = tu_tmpdir();
  idm_why_t why = {{0}};
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, NULL, NULL, &why), IDM_OK);
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_ES256, NULL, NULL, &why), IDM_OK);
  idm_keyring_t *kr = idm_keyring_load(dir, NULL, &why);
  cr_assert_not_null(kr, "%s", why.text);
  for (int alg = IDM_KEY_EDDSA; alg <= IDM_KEY_ES256; alg++) {
    const idm_key_t *k = idm_keyring_signer(kr, (idm_key_alg_t)alg);
    cr_assert_not_null(k);
    /* sign a JWS signing input and verify it through the published set */
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\"}", idm_key_alg_name(alg), idm_key_kid(k));
    char *t = tu_token(hdr, "{\"x\":1}", "", 0);
    size_t si = strlen(t) - 1;
    uint8_t sig[IDM_SIG_MAX];
    size_t sl = 0;
    cr_assert_eq(idm_key_sign(k, sig, &sl, (const uint8_t *)t, si), IDM_OK);
    cr_assert_eq(sl, 64, "%s signature is raw 64 bytes", idm_key_alg_name(alg));
    char *full = tu_token(hdr, "{\"x\":1}", sig, sl);
    idm_jws_t j;
    cr_assert_eq(idm_jws_parse(&j, NULL, full, strlen(full), &why), IDM_OK);
    cr_assert_eq(idm_jws_verify_set(&j, idm_keyring_jwks(kr), &why), IDM_OK, "%s", why.text);
    idm_jws_cleanup(&j);
    free(full);
    free(t);
  }
  idm_keyring_free(kr);
  tu_rmrf(dir);
  free(dir);
}

Test(keys, rotate_one_alg_leaves_the_other) {
  char *dir = tu_tmpdir();
  idm_clock_t clk;
  idm_clock_set_s(&clk, T0);
  idm_why_t why = {{0}};
  char ed[IDM_KID_LEN + 1], es[IDM_KID_LEN + 1];
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_EDDSA, &clk, ed, &why), IDM_OK);
  cr_assert_eq(idm_keys_new(dir, IDM_KEY_ES256, &clk, es, &why), IDM_OK);
  cr_assert_eq(idm_keys_rotate_alg(dir, &clk, 60, IDM_KEY_ES256, &why), IDM_OK, "%s", why.text);
  cr_assert_eq(idm_keys_rotate_alg(dir, &clk, 60, IDM_KEY_ES256, &why), IDM_OK, "%s", why.text);
  idm_keyring_t *kr = idm_keyring_load(dir, &clk, &why);
  cr_assert_str_eq(idm_key_kid(idm_keyring_signer(kr, IDM_KEY_EDDSA)), ed, "EdDSA untouched");
  cr_assert_str_neq(idm_key_kid(idm_keyring_signer(kr, IDM_KEY_ES256)), es, "ES256 rotated");
  cr_assert_eq(idm_key_state(idm_keyring_find(kr, es, IDM_KID_LEN)), IDM_KEY_RETIRED);
  cr_assert_eq(idm_keyring_count(kr), 4); /* ed active, es retired, es active, es next */
  idm_keyring_free(kr);
  /* an alg with no keys */
  char *empty = tu_tmpdir();
  cr_assert_eq(idm_keys_new(empty, IDM_KEY_EDDSA, &clk, NULL, &why), IDM_OK);
  cr_assert_eq(idm_keys_rotate_alg(empty, &clk, 60, IDM_KEY_ES256, &why), IDM_ERR_KEY_NONE);
  cr_assert(strstr(why.text, "no ES256 keys"), "%s", why.text);
  /* a key directory whose parent does not exist */
  cr_assert_neq(idm_keys_new("/nonexistent-idm/keys", IDM_KEY_EDDSA, &clk, NULL, &why), IDM_OK);
  cr_assert(strstr(why.text, "/nonexistent-idm/keys"), "%s", why.text);
  tu_rmrf(empty);
  free(empty);
  tu_rmrf(dir);
  free(dir);
}
