/* The configuration language: accepted files, every block's schema, and the errors
 * (position, message, caret, several per pass). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

static const char *design_example =
    "# the example of DESIGN.md\n"
    "server {\n"
    "  listen          \"127.0.0.1:8080\"        # one or more\n"
    "  issuer          \"http://127.0.0.1:8080\"\n"
    "  keys            \"keys\"\n"
    "  audit           \"audit.log\"\n"
    "  threads         0\n"
    "  trusted_proxies [127.0.0.1/32]\n"
    "}\n"
    "trust \"k8s-prod\" {\n"
    "  kind     kubernetes\n"
    "  issuer   \"https://kubernetes.default.svc.cluster.local\"\n"
    "  jwks     \"k8s-prod.jwks.json\"\n"
    "  audience \"idmint\"\n"
    "}\n"
    "target \"payments-db\" {\n"
    "  audience \"spiffe://corp.example/payments/db\"\n"
    "  format   jwt\n"
    "  alg      EdDSA\n"
    "  ttl      5m\n"
    "}\n"
    "target \"payments-cache\" { ttl 10m }\n"
    "permit \"payments-api\" {\n"
    "  client trust == \"k8s-prod\" and namespace == \"payments\" and service_account in [\"api\", \"worker\"]\n"
    "  target \"payments-db\", \"payments-cache\"\n"
    "  when   source_ip in 10.0.0.0/8 and time in 06:00..22:00 and day in [mon, tue, wed, thu, fri]\n"
    "  scope  \"db.read db.write\"\n"
    "  ttl    2m\n"
    "}\n"
    "forbid \"no-sandbox\" {\n"
    "  client namespace like \"sandbox-*\"\n"
    "}\n";

static pol_config_t *parse(const char *src, pol_diag_t *d) {
  return pol_config_parse(src, strlen(src), "/etc/idmint/test.conf", d);
}

/* Parses src expecting failure; returns the diagnostics. */
static pol_diag_t *bad(const char *src) {
  static pol_diag_t d;
  pol_config_t *c = parse(src, &d);
  cr_assert_null(c, "accepted:\n%s", src);
  cr_assert_gt(d.count, 0);
  return &d;
}

static void expect_err(const char *src, const char *where, const char *msg) {
  pol_diag_t *d = bad(src);
  cr_assert(strstr(d->text[0], where) != NULL, "want position %s in:\n%s", where, d->text[0]);
  cr_assert(strstr(d->text[0], msg) != NULL, "want '%s' in:\n%s", msg, d->text[0]);
}

#define TRUSTS                                                                              \
  "trust \"k8s\" { kind kubernetes\n issuer \"https://k\"\n jwks \"k.json\"\n audience \"idmint\" }\n" \
  "trust \"gh\" { kind github\n jwks \"gh.json\"\n audience \"idmint\" }\n"                       \
  "target \"db\" { ttl 5m }\n"

Test(parse, design_example_and_accessors) {
  pol_diag_t d;
  pol_config_t *c = parse(design_example, &d);
  cr_assert_not_null(c, "%s", d.count ? d.text[0] : "");
  const pol_server_t *s = pol_config_server(c);
  cr_assert_eq(s->listen_count, 1);
  cr_assert_str_eq(s->listen[0], "127.0.0.1:8080");
  cr_assert_str_eq(s->issuer, "http://127.0.0.1:8080");
  cr_assert_str_eq(s->keys_dir, "/etc/idmint/keys");
  cr_assert_str_eq(s->audit_path, "/etc/idmint/audit.log");
  cr_assert_eq(s->threads, 0);
  cr_assert_eq(s->trusted_proxy_count, 1);
  cr_assert_eq(s->trusted_proxies[0].family, 4);
  cr_assert_eq(s->trusted_proxies[0].prefix, 32);
  cr_assert_str_eq(s->fsync, "batch");
  cr_assert_eq(s->batch_max, 1024);
  cr_assert_eq(s->max_connections, 4096);
  cr_assert_eq(s->audit_preallocate, 0); /* off unless asked for */
  cr_assert_not_null(s->node_id);
  cr_assert_eq(pol_config_trust_count(c), 1);
  const pol_trust_t *t = pol_config_trust_find(c, "k8s-prod", 8);
  cr_assert_not_null(t);
  cr_assert_eq(t->kind, POL_KIND_KUBERNETES);
  cr_assert_str_eq(t->jwks, "/etc/idmint/k8s-prod.jwks.json");
  cr_assert_eq(t->audience_count, 1);
  cr_assert_str_eq(t->audience[0], "idmint");
  cr_assert_eq(t->leeway_s, 30);
  cr_assert_eq(t->max_lifetime_s, 86400);
  cr_assert_null(pol_config_trust_find(c, "k8s", 3));
  cr_assert_eq(pol_config_target_count(c), 2);
  const pol_target_t *tg = pol_config_target_find(c, "payments-db", 11);
  cr_assert_not_null(tg);
  cr_assert_eq(tg->ttl_s, 300);
  cr_assert_eq(tg->format, POL_FORMAT_JWT);
  cr_assert_eq(tg->alg, POL_ALG_EDDSA);
  const char *aud = "spiffe://corp.example/payments/db";
  cr_assert_eq(pol_config_target_find(c, aud, strlen(aud)), tg);
  const pol_target_t *cache = pol_config_target(c, 1);
  cr_assert_str_eq(cache->name, "payments-cache");
  cr_assert_str_eq(cache->audience, "payments-cache");
  cr_assert_eq(cache->ttl_s, 600);
  cr_assert_eq(pol_config_rule_count(c), 2);
  cr_assert_str_eq(pol_config_rule_name(c, 0), "payments-api");
  cr_assert_str_eq(pol_config_rule_name(c, 1), "no-sandbox");
  cr_assert_null(pol_config_rule_name(c, 2));
  cr_assert_eq(strlen(pol_config_policy_id(c)), 16);
  pol_config_free(c);
  pol_config_free(NULL);
}

Test(parse, server_all_keys) {
  pol_diag_t d;
  pol_config_t *c = parse("server {\n listen [\"0.0.0.0:443\", \"[::1]:8443\"]\n"
                          " issuer \"https://id.example\"\n keys \"/var/keys\"\n audit \"a/b.log\"\n"
                          " threads 4\n trusted_proxies [10.0.0.0/8, fd00::/8]\n fsync 100ms\n"
                          " batch_max 64\n max_connections 100\n unix_socket \"run/u.sock\"\n"
                          " node_id \"node-7\"\n audit_preallocate 64\n}\n",
                          &d);
  cr_assert_not_null(c, "%s", d.count ? d.text[0] : "");
  const pol_server_t *s = pol_config_server(c);
  cr_assert_eq(s->listen_count, 2);
  cr_assert_str_eq(s->listen[1], "[::1]:8443");
  cr_assert_str_eq(s->keys_dir, "/var/keys");
  cr_assert_str_eq(s->audit_path, "/etc/idmint/a/b.log");
  cr_assert_eq(s->threads, 4);
  cr_assert_eq(s->trusted_proxy_count, 2);
  cr_assert_eq(s->trusted_proxies[1].family, 6);
  cr_assert_eq(s->trusted_proxies[1].prefix, 8);
  cr_assert_str_eq(s->fsync, "100ms");
  cr_assert_eq(s->batch_max, 64);
  cr_assert_eq(s->max_connections, 100);
  cr_assert_str_eq(s->unix_socket, "/etc/idmint/run/u.sock");
  cr_assert_str_eq(s->node_id, "node-7");
  cr_assert_eq(s->audit_preallocate, 64);
  cr_assert_str_eq(s->issuer, "https://id.example");
  pol_config_free(c);
  /* listen as a comma list, issuer defaulted from it */
  c = parse("server { listen \"10.1.1.1:80\", \"10.1.1.2:80\" }", &d);
  cr_assert_not_null(c);
  cr_assert_eq(pol_config_server(c)->listen_count, 2);
  cr_assert_str_eq(pol_config_server(c)->issuer, "http://10.1.1.1:80");
  pol_config_free(c);
}

Test(parse, trust_kinds) {
  pol_diag_t d;
  pol_config_t *c = parse(
      "trust \"gh\" { kind github\n jwks \"gh.json\"\n audience [\"a\", \"b\"]\n algorithms [RS256]\n"
      " leeway 10s\n max_lifetime 2h }\n"
      "trust \"gl\" { kind gitlab\n jwks \"/gl.json\"\n audience \"a\" }\n"
      "trust \"sp\" { kind spiffe\n trust_domain \"corp.example\"\n jwks \"b.json\"\n audience \"x\" }\n"
      "trust \"o\" { kind oidc\n issuer \"https://o\"\n jwks \"o.json\"\n audience \"x\" }\n"
      "trust \"aws\" { kind aws-iid\n certificate \"aws.pem\"\n max_age 5m }\n"
      "trust \"jt\" { kind \"join-token\"\n store \"tokens.db\" }\n"
      "trust \"u\" { kind unix }\n",
      &d);
  cr_assert_not_null(c, "%s", d.count ? d.text[0] : "");
  cr_assert_eq(pol_config_trust_count(c), 7);
  const pol_trust_t *gh = pol_config_trust(c, 0);
  cr_assert_str_eq(gh->issuer, "https://token.actions.githubusercontent.com");
  cr_assert_eq(gh->audience_count, 2);
  cr_assert_eq(gh->algorithm_count, 1);
  cr_assert_str_eq(gh->algorithms[0], "RS256");
  cr_assert_eq(gh->leeway_s, 10);
  cr_assert_eq(gh->max_lifetime_s, 7200);
  cr_assert_str_eq(pol_config_trust(c, 1)->issuer, "https://gitlab.com");
  cr_assert_str_eq(pol_config_trust(c, 1)->jwks, "/gl.json");
  cr_assert_str_eq(pol_config_trust(c, 2)->trust_domain, "corp.example");
  cr_assert_eq(pol_config_trust(c, 4)->kind, POL_KIND_AWS_IID);
  cr_assert_eq(pol_config_trust(c, 4)->max_age_s, 300);
  cr_assert_str_eq(pol_config_trust(c, 4)->certificate, "/etc/idmint/aws.pem");
  cr_assert_str_eq(pol_config_trust(c, 5)->store, "/etc/idmint/tokens.db");
  cr_assert_eq(pol_config_trust(c, 6)->kind, POL_KIND_UNIX);
  cr_assert_eq(pol_config_trust(c, 6)->index, 6);
  pol_config_free(c);
}

Test(parse, errors_have_position_message_and_caret) {
  pol_diag_t *d = bad("server {\n  threads \"four\"\n}\n");
  cr_assert_str_eq(d->text[0],
                   "/etc/idmint/test.conf:2:11: 'threads' takes a whole number, not string \"four\"\n"
                   "  threads \"four\"\n"
                   "          ^");
}

Test(parse, every_error_in_one_pass) {
  pol_diag_t *d = bad("server {\n  bogus 1\n  threads x\n}\n"
                      "target \"a\" { ttl 5 }\n"
                      "permit \"p\" {\n  client namespace < \"x\"\n  target \"nope\"\n}\n"
                      "permit \"p\" { target any }\n");
  cr_assert_geq(d->count, 4, "only %u errors", d->count);
  cr_assert(strstr(d->text[0], ":2:3: unknown key 'bogus' in server block"), "%s", d->text[0]);
  cr_assert(strstr(d->text[1], ":3:11: 'threads' takes a whole number"), "%s", d->text[1]);
  cr_assert(strstr(d->text[2], ":5:18: 'ttl' takes a duration"), "%s", d->text[2]);
  cr_assert(strstr(d->text[3], ":7:20: type mismatch: '<' compares numbers"), "%s", d->text[3]);
  cr_assert(strstr(d->text[4], ":10:8: duplicate permit name \"p\""), "%s", d->text[4]);
  /* names are resolved after the last block, even when the blocks had errors */
  cr_assert_eq(d->count, 6);
  cr_assert(strstr(d->text[5], ":8:10: unknown target \"nope\""), "%s", d->text[5]);
}

Test(parse, error_limit_counts_beyond_storage) {
  char src[8192] = "";
  for (int i = 0; i < 50; i++)
    strcat(src, "bogus\n");
  pol_diag_t *d = bad(src);
  cr_assert_eq(d->count, 50);
  cr_assert(strstr(d->text[POL_DIAG_MAX - 1], ":32:1:"), "%s", d->text[POL_DIAG_MAX - 1]);
}

Test(parse, schema_errors) {
  expect_err("server { listen \"nohost\" }", ":1:17:", "not host:port");
  expect_err("server { issuer \"ftp://x\" }", ":1:", "http:// or https://");
  expect_err("server { threads 5000 }", ":1:18:", "the most allowed is 1024");
  expect_err("server { audit_preallocate 20000 }", ":1:28:", "the most allowed is 16384");
  expect_err("server { audit_preallocate 64MiB }", ":1:28:", "takes a whole number");
  expect_err("server { fsync sometimes }", ":1:16:", "fsync is none, batch or an interval");
  expect_err("server { trusted_proxies [10.0.0.1/8] }", ":1:", "bits set after its /8 prefix");
  expect_err("server {}\nserver {}\n", ":2:1:", "more than one server block");
  expect_err("server { threads 1 threads 2 }", ":1:", "one setting per line");
  expect_err("server {\nthreads 1\nthreads 2 }", ":3:1:", "duplicate 'threads'");
  expect_err("trust \"x\" { kind kubernetes\n certificate \"c.pem\"\n issuer \"https://i\"\n"
             " jwks \"j\"\n audience \"a\" }",
             ":2:2:", "key 'certificate' does not apply to trust kind kubernetes");
  expect_err("trust \"x\" { kind kubernetes\n jwks \"j\"\n audience \"a\" }", ":1:7:",
             "trust \"x\" (kind kubernetes) needs 'issuer'");
  expect_err("trust \"x\" { kind github\n audience \"a\" }", ":1:7:", "needs 'jwks'");
  expect_err("trust \"x\" { kind spiffe\n jwks \"j\"\n audience \"a\" }", ":1:7:",
             "needs 'trust_domain'");
  expect_err("trust \"x\" { kind aws-iid }", ":1:7:", "needs 'certificate'");
  expect_err("trust \"x\" { kind join-token }", ":1:7:", "needs 'store'");
  expect_err("trust \"x\" { kind unix\n store \"s\" }", ":2:2:", "does not apply to trust kind unix");
  expect_err("trust \"x\" { kind k8s }", ":1:18:", "unknown trust kind 'k8s'");
  expect_err("trust \"x\" { issuer \"https://i\" }", ":1:7:", "needs a kind");
  expect_err("trust \"x\" { kind unix }\ntrust \"x\" { kind unix }", ":2:7:",
             "duplicate trust name \"x\" (first defined at line 1)");
  expect_err("trust \"x\" { kind github\n jwks \"j\"\n audience \"a\"\n algorithms [HS256] }", ":4:14:",
             "unknown algorithm 'HS256'");
  expect_err("target \"t\" { format cbor }", ":1:21:", "unknown format 'cbor'");
  expect_err("target \"t\" { alg RS256 }", ":1:18:", "unknown alg 'RS256'");
  expect_err("target \"t\" { ttl 0 }", ":1:18:", "ttl must be more than 0");
  expect_err("target \"t\" { ttl 5 }", ":1:18:", "takes a duration");
  expect_err("target \"a\" { audience \"x\" }\ntarget \"b\" { audience \"x\" }", ":2:14:",
             "audience \"x\" is already used");
  expect_err("target \"a\" {}\ntarget \"a\" {}", ":2:8:", "duplicate target name");
  expect_err("target \"a\" {", ":1:1:", "never closed");
  expect_err("widget \"a\" {}", ":1:1:", "expected a block");
  expect_err("target \"a\" { ttl 5m", ":1:1:", "never closed");
  expect_err("target a {}", ":1:8:", "target needs a quoted name");
  expect_err("target \"a\" { audience \"unterminated }", ":1:23:", "unterminated string");
  expect_err("target \"a\" { audience \"\\q\" }", ":1:24:", "unknown escape");
  expect_err("target \"a\" { ttl = 5m }", ":1:18:", "'=' is not an operator");
}

Test(parse, rule_errors) {
  expect_err(TRUSTS "permit \"p\" { client namespace == \"x\" }", ":9:8:",
             "must name its targets");
  expect_err(TRUSTS "permit \"p\" { target \"zz\" }", ":9:21:", "unknown target \"zz\"");
  expect_err(TRUSTS "permit \"p\" { target any\n client trust == \"zz\" }", ":10:18:",
             "unknown trust \"zz\"");
  expect_err(TRUSTS "permit \"p\" { target any\n client trust == \"gh\" and namespace == \"x\" }",
             ":10:27:", "attribute 'namespace' does not exist for github clients (it exists for kubernetes)");
  expect_err(TRUSTS "permit \"p\" { target any\n client claims.email == \"x\" }", ":10:2:",
             "can never match");
  expect_err(TRUSTS "permit \"p\" { target any\n client kind == github and pod == \"x\" }", ":10:28:",
             "'pod' does not exist for github");
  expect_err(TRUSTS "permit \"p\" { target any\n client source_ip in 10.0.0.0/8 }", ":10:9:",
             "context attribute");
  expect_err(TRUSTS "permit \"p\" { target any\n when namespace == \"x\" }", ":10:7:",
             "client attribute");
  expect_err(TRUSTS "permit \"p\" { target any\n when source_ip == 10.0.0.0/8 }", ":10:17:",
             "type mismatch: source_ip is tested against CIDRs with 'in'");
  expect_err(TRUSTS "permit \"p\" { target any\n client namespace < \"x\" }", ":10:19:",
             "type mismatch");
  expect_err(TRUSTS "permit \"p\" { target any\n client namespace == 5 }", ":10:22:",
             "type mismatch");
  expect_err(TRUSTS "permit \"p\" { target any\n client namespace like 5 }", ":10:24:",
             "quoted glob");
  expect_err(TRUSTS "permit \"p\" { target any\n when time in 22:00..22:00 }", ":10:15:",
             "is empty");
  expect_err(TRUSTS "permit \"p\" { target any\n when time in 25:00..26:00 }", ":10:15:",
             "impossible time");
  expect_err(TRUSTS "permit \"p\" { target any\n when time in 10:60..11:00 }", ":10:15:",
             "impossible time");
  expect_err(TRUSTS "permit \"p\" { target any\n when day in [mon, funday] }", ":10:20:",
             "expected a day");
  expect_err(TRUSTS "permit \"p\" { target any\n when posture.score >= \"high\" }", ":10:24:",
             "compares numbers");
  expect_err(TRUSTS "permit \"p\" { target any\n client namespace in [] }", ":10:19:",
             "empty list");
  expect_err(TRUSTS "permit \"p\" { target any\n client (namespace == \"x\" }", ":10:27:",
             "expected ')'");
  expect_err(TRUSTS "permit \"p\" { target any\n client namespace == \"x\" and }", ":10:30:",
             "expected a condition");
  expect_err(TRUSTS "permit \"p\" { target any\n client color == \"x\" }", ":10:9:",
             "unknown client attribute 'color'");
  expect_err(TRUSTS "forbid \"f\" { scope \"a\" }", ":9:20:", "a forbid grants nothing");
  expect_err(TRUSTS "permit \"p\" { target any\n scope \"\" }", ":10:8:", "empty scope");
  expect_err(TRUSTS "permit \"p\" { target any\n ttl 0s }", ":10:6:", "ttl must be more than 0");
  expect_err(TRUSTS "permit \"p\" { target any\n target any }", ":10:2:", "duplicate 'target'");
  expect_err(TRUSTS "permit \"p\" { target any\n client uid == \"0\" }", ":10:16:",
             "compares numbers");
  expect_err(TRUSTS "permit \"p\" { target any\n client kind == windows }", ":10:17:",
             "unknown kind 'windows'");
  char deep[600] = TRUSTS "permit \"p\" { target any\n client ";
  for (int i = 0; i < 70; i++)
    strcat(deep, "(");
  strcat(deep, "namespace == \"x\"");
  for (int i = 0; i < 70; i++)
    strcat(deep, ")");
  strcat(deep, " }");
  expect_err(deep, ":10:", "nested more than");
}

Test(parse, expressions_accepted) {
  pol_diag_t d;
  pol_config_t *c = parse(
      TRUSTS "trust \"u\" { kind unix }\ntrust \"o\" { kind oidc\n issuer \"https://o\"\n jwks \"o\"\n audience \"a\" }\n"
             "permit \"a\" {\n client (trust == \"k8s\" and not namespace == \"kube-system\") or\n"
             "        (trust == \"gh\" and repository like \"corp/*\" and ref != \"refs/heads/dev\")\n"
             " target [\"db\"]\n"
             " when source_ip in [10.0.0.0/8, \"fd00::/8\", 192.168.1.7] and time in 22:00..06:00\n"
             "   and day == sat and posture.score >= 7.5 and posture.disk == \"encrypted\"\n"
             "   and posture.level in [1, 2] and posture.os in [\"linux\"]\n"
             " scope \"a b  a\"\n ttl 1h\n}\n"
             "permit \"u\" { client uid in [0, 1000] and gid >= 100 and exe like \"/usr/bin/*\"\n target any }\n"
             "permit \"o\" { client claims.email like \"*@corp.example\"\n target any }\n"
             "permit \"k\" { client kind in [kubernetes, \"unix\"] and subject != \"x\"\n target any }\n",
      &d);
  cr_assert_not_null(c, "%u: %s", d.count, d.count ? d.text[0] : "");
  pol_config_free(c);
}

Test(parse, load_reports_io_errors) {
  pol_diag_t d;
  cr_assert_null(pol_config_load("/nonexistent/idmint.conf", &d));
  cr_assert_eq(d.count, 1);
  cr_assert_str_eq(d.text[0], "/nonexistent/idmint.conf: No such file or directory");
  char path[] = "/tmp/idm_policy_testXXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  FILE *f = fdopen(fd, "w");
  fputs(design_example, f);
  fclose(f);
  pol_config_t *c = pol_config_load(path, &d);
  cr_assert_not_null(c);
  cr_assert_str_eq(pol_config_server(c)->keys_dir, "/tmp/keys");
  pol_config_free(c);
  unlink(path);
}

Test(parse, hostile_bytes) {
  const char src[] = "target \"a\" {\0 ttl 5m }";
  pol_diag_t d;
  cr_assert_null(pol_config_parse(src, sizeof src - 1, "x", &d));
  cr_assert(strstr(d.text[0], "unexpected byte 0x00"), "%s", d.text[0]);
  cr_assert_null(pol_config_parse("\xff\xfe", 2, "x", &d));
  pol_config_t *c = pol_config_parse("", 0, "x", &d);
  cr_assert_not_null(c); /* an empty file is a valid (deny-everything) configuration */
  pol_config_free(c);
}

Test(parse, caret_stays_under_the_column_of_a_long_line) {
  char src[600] = "target \"t\" { audience \"";
  for (int i = 0; i < 300; i++)
    strcat(src, "a");
  strcat(src, "\" ttl 5 }");
  pol_diag_t *d = bad(src);
  /* the error is at "ttl" (column 326): the line is shown from 60 bytes before it */
  cr_assert(strstr(d->text[0], ":1:326: unexpected 'ttl'"), "%s", d->text[0]);
  const char *line = strchr(d->text[0], '\n') + 1, *caret = strchr(line, '\n') + 1;
  cr_assert_eq(strncmp(line, "...", 3), 0);
  size_t col = strlen(caret) - 1;
  cr_assert_eq(caret[col], '^');
  cr_assert_eq(strncmp(line + col, "ttl", 3), 0, "caret not under the token:\n%s", d->text[0]);
}
