/* Fuzz target: the REQUEST.json of `idmint policy explain FILE --request REQUEST.json`
 * (engine/cli/cmd_policy.c: the request builder, RFC 3339 times, durations, the decision
 * and closest-permit output), run through the command itself against a fixed policy file.
 *
 * Input: the request file's bytes. The command's stdout (the decision JSON) and stderr
 * (the one-line refusal) go to /dev/null; sanitizer reports still reach the real stderr.
 *
 * Properties: no crash, leak or undefined behaviour; the command exits 0 (a decision was
 * printed) or 1 (the request was refused), never with a usage error; and it answers the
 * same twice. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fuzz_files.h"

/* Where sanitizer reports go while fd 2 is /dev/null (weak: absent without sanitizers). */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static char dir[128], conf_path[192], req_path[192];
static int devnull = -1, real_err = -1, real_out = -1;

static const char *const conf =
    "server {\n"
    "  listen \"127.0.0.1:1\"\n"
    "  issuer \"http://idmint.fuzz\"\n"
    "  keys \"keys\"\n"
    "}\n"
    "trust \"k8s\" {\n"
    "  kind kubernetes\n"
    "  issuer \"https://k8s.fuzz\"\n"
    "  jwks \"k8s.jwks.json\"\n"
    "  audience \"idmint\"\n"
    "}\n"
    "trust \"ci\" {\n"
    "  kind oidc\n"
    "  issuer \"https://ci.fuzz\"\n"
    "  jwks \"k8s.jwks.json\"\n"
    "  audience \"idmint\"\n"
    "}\n"
    "target \"db\" {\n"
    "  audience \"spiffe://fuzz/db\"\n"
    "  ttl 5m\n"
    "}\n"
    "target \"cache\" {\n"
    "  audience \"spiffe://fuzz/cache\"\n"
    "  format batch\n"
    "  ttl 2m\n"
    "}\n"
    "permit \"api\" {\n"
    "  client trust == \"k8s\" and namespace == \"payments\" and service_account in [\"api\", \"worker\"]\n"
    "  target \"db\", \"cache\"\n"
    "  when source_ip in 10.0.0.0/8 and time in 06:00..22:00 and day in [mon, tue, wed, thu, fri]\n"
    "  scope \"db.read db.write\"\n"
    "  ttl 2m\n"
    "}\n"
    "permit \"ci\" {\n"
    "  client trust == \"ci\" and claims.team == \"ops\"\n"
    "  target any\n"
    "  when posture.score >= 7 and posture.disk == \"encrypted\"\n"
    "  scope \"deploy\"\n"
    "}\n"
    "forbid \"sandbox\" {\n"
    "  client namespace like \"sandbox-*\"\n"
    "}\n";

static void setup(void) {
  idm_json_init();
  fz_tmpdir(dir, sizeof dir, "explain");
  snprintf(conf_path, sizeof conf_path, "%s/idmint.conf", dir);
  snprintf(req_path, sizeof req_path, "%s/request.json", dir);
  fz_write(conf_path, conf, strlen(conf), 0600);
  char jp[256];
  snprintf(jp, sizeof jp, "%s/k8s.jwks.json", dir);
  static const char jwks[] =
      "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
      "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\",\"kid\":\"k\"}]}";
  fz_write(jp, jwks, sizeof jwks - 1, 0600);
  devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  real_err = dup(2);
  real_out = dup(1);
  if (devnull < 0 || real_err < 0 || real_out < 0)
    abort();
  if (__sanitizer_set_report_fd)
    __sanitizer_set_report_fd((void *)(intptr_t)real_err);
}

static int explain(void) {
  char a0[] = "policy", a1[] = "explain", a3[] = "--request";
  char *argv[] = {a0, a1, conf_path, a3, req_path, NULL};
  fflush(stdout);
  fflush(stderr);
  dup2(devnull, 1);
  dup2(devnull, 2);
  int rc = idm_cmd_policy(5, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(real_out, 1);
  dup2(real_err, 2);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (devnull < 0)
    setup();
  if (size > 70 * 1024)
    return 0;
  fz_write(req_path, data, size, 0600);
  int rc = explain();
  if (rc != IDM_EXIT_OK && rc != IDM_EXIT_FAIL)
    abort();
  if (explain() != rc)
    abort();
  return 0;
}
