/* Shared set-up of the attest test binaries: one temporary directory and the test issuers'
 * keys, made once in the Criterion runner before it forks the tests, and trust blocks
 * built by hand (no configuration parser needed). */
#ifndef IDM_TESTS_ATTEST_ENV_H
#define IDM_TESTS_ATTEST_ENV_H

#include <dirent.h>
#include <unistd.h>

#include "attest/attest.h"
#include "core/json.h"
#include "fixtures.h"

#define NOW 1790000000LL /* 2026-09-21 */

static char g_dir[256];
static pid_t g_owner;
static fx_key_t g_rsa, g_rsa_other, g_ec256, g_ec384, g_ed;


__attribute__((constructor)) static void env_init(void) {
  idm_json_init();
  snprintf(g_dir, sizeof g_dir, "/tmp/idm-attest-XXXXXX");
  if (!mkdtemp(g_dir))
    fx_die("mkdtemp");
  g_owner = getpid();
  fx_key_new(&g_rsa, FX_RSA, "rsa-1");
  fx_key_new(&g_rsa_other, FX_RSA, "rsa-1"); /* same kid, another key */
  fx_key_new(&g_ec256, FX_EC256, "ec-256");
  fx_key_new(&g_ec384, FX_EC384, "ec-384");
  fx_key_new(&g_ed, FX_ED25519, "ed-1");
}

FX_FN const char *env_path(const char *name) {
  static char buf[8][512];
  static int i;
  char *b = buf[i++ % 8];
  snprintf(b, 512, "%s/%s", g_dir, name);
  return b;
}

FX_FN idm_clock_t env_clock(long long t) {
  idm_clock_t c;
  idm_clock_set_s(&c, t);
  return c;
}

__attribute__((destructor)) static void env_fini(void) {
  if (getpid() == g_owner && g_dir[0])
  {
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
      if (e->d_name[0] != '.')
        unlink(env_path(e->d_name));
    if (d)
      closedir(d);
    rmdir(g_dir);
  }
}

#endif
