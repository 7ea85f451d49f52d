/* Decision semantics (DESIGN.md): default deny, forbid wins, scope and ttl, deciding
 * rules, absent attributes, every operator. Each case runs through pol_eval and the
 * reference interpreter, which must agree. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "policy.h"

static pol_config_t *cfg;

static const char *src =
    "trust \"k8s\" { kind kubernetes\n issuer \"https://k\"\n jwks \"k.json\"\n audience \"idmint\" }\n"
    "trust \"gh\" { kind github\n jwks \"gh.json\"\n audience \"idmint\" }\n"
    "trust \"u\" { kind unix }\n"
    "trust \"o\" { kind oidc\n issuer \"https://o\"\n jwks \"o\"\n audience \"a\" }\n"
    "target \"db\" { ttl 5m }\n"
    "target \"cache\" { ttl 1m\n audience \"spiffe://c\" }\n"
    "target \"other\" {}\n"
    "permit \"api\" {\n client trust == \"k8s\" and namespace == \"payments\" and service_account in [\"api\", \"worker\"]\n"
    " target \"db\", \"cache\"\n scope \"db.read db.write\"\n ttl 2m\n}\n"
    "permit \"reader\" {\n client namespace like \"pay*\"\n target \"db\"\n scope \"db.read metrics\"\n}\n"
    "permit \"office\" {\n client trust == \"gh\" and repository == \"corp/app\"\n target any\n"
    " when source_ip in [10.0.0.0/8, fd00::/8] and time in 22:00..06:00 and day in [mon, fri]\n}\n"
    "permit \"root\" {\n client uid < 1000 and exe like \"/usr/bin/*\"\n target \"other\"\n scope \"sys\"\n}\n"
    "permit \"claims\" {\n client claims.email like \"*@corp.example\" and not claims.group == \"x\"\n target \"other\"\n}\n"
    "permit \"posture\" {\n client trust == \"k8s\"\n target \"other\"\n when posture.score >= 7.5 and posture.disk == \"enc\"\n}\n"
    "forbid \"sandbox\" {\n client namespace like \"*-sandbox\"\n}\n"
    "forbid \"no-worker-cache\" {\n client service_account == \"worker\"\n target \"cache\"\n}\n";

static void setup(void) {
  pol_diag_t d;
  cfg = pol_config_parse(src, strlen(src), "eval.conf", &d);
  cr_assert_not_null(cfg, "%s", d.count ? d.text[0] : "");
}
static void teardown(void) { pol_config_free(cfg); }

TestSuite(eval, .init = setup, .fini = teardown);

#define S(x) ((pol_str_t){x, sizeof(x) - 1})

static pol_client_t k8s(const char *ns, const char *sa) {
  pol_client_t c = {0};
  c.attr[POL_A_TRUST] = S("k8s");
  c.attr[POL_A_KIND] = S("kubernetes");
  c.attr[POL_A_NAMESPACE] = (pol_str_t){ns, (uint32_t)strlen(ns)};
  c.attr[POL_A_SERVICE_ACCOUNT] = (pol_str_t){sa, (uint32_t)strlen(sa)};
  return c;
}

static uint32_t target(const char *name) {
  const pol_target_t *t = pol_config_target_find(cfg, name, strlen(name));
  cr_assert_not_null(t);
  return t->index;
}

/* Evaluates with both evaluators, asserts agreement, returns the fast one's decision. */
static pol_decision_t decide(const pol_client_t *cl, const char *tname, const pol_context_t *ctx,
                             const char *scope, int64_t ttl) {
  pol_ask_t ask = {{scope, scope ? (uint32_t)strlen(scope) : 0}, ttl};
  pol_context_t zero = {0};
  pol_decision_t a, b;
  memset(&a, 0x5a, sizeof a);
  memset(&b, 0xa5, sizeof b);
  pol_eval(cfg, cl, target(tname), ctx ? ctx : &zero, &ask, &a);
  pol_eval_ref(cfg, cl, target(tname), ctx ? ctx : &zero, &ask, &b);
  cr_assert_eq(a.outcome, b.outcome);
  cr_assert_eq(a.allow, b.allow);
  cr_assert_eq(a.rule_count, b.rule_count);
  cr_assert(memcmp(a.rules, b.rules, a.rule_count * sizeof a.rules[0]) == 0);
  cr_assert_str_eq(a.scope, b.scope);
  cr_assert_eq(a.scope_len, strlen(a.scope));
  cr_assert_eq(a.ttl_s, b.ttl_s);
  return a;
}

static void expect_rules(const pol_decision_t *d, const char *names) {
  char got[256] = "";
  for (uint32_t i = 0; i < d->rule_count; i++) {
    if (i)
      strcat(got, ",");
    strcat(got, pol_config_rule_name(cfg, d->rules[i]));
  }
  cr_assert_str_eq(got, names);
}

Test(eval, allow_unions_scope_and_takes_min_ttl) {
  pol_client_t c = k8s("payments", "api");
  pol_decision_t d = decide(&c, "db", NULL, NULL, 0);
  cr_assert_eq(d.outcome, POL_ALLOW);
  cr_assert(d.allow);
  expect_rules(&d, "api,reader");
  cr_assert_str_eq(d.scope, "db.read db.write metrics");
  cr_assert_eq(d.ttl_s, 120); /* permit api's 2m beats the target's 5m */
  d = decide(&c, "db", NULL, NULL, 30);
  cr_assert_eq(d.ttl_s, 30); /* the requested ttl is smaller still */
  d = decide(&c, "cache", NULL, NULL, 0);
  expect_rules(&d, "api");
  cr_assert_eq(d.ttl_s, 60); /* the target's 1m */
  cr_assert_str_eq(d.scope, "db.read db.write");
}

Test(eval, requested_scopes) {
  pol_client_t c = k8s("payments", "api");
  pol_decision_t d = decide(&c, "db", NULL, "metrics  db.write metrics", 0);
  cr_assert_eq(d.outcome, POL_ALLOW);
  cr_assert_str_eq(d.scope, "metrics db.write");
  d = decide(&c, "db", NULL, "db.read admin", 0);
  cr_assert_eq(d.outcome, POL_DENY_SCOPE);
  cr_assert_not(d.allow);
  cr_assert_str_eq(d.scope, "");
  cr_assert_eq(d.ttl_s, 0);
  expect_rules(&d, "api,reader");
  d = decide(&c, "db", NULL, "   ", 0); /* blanks only: nothing requested */
  cr_assert_str_eq(d.scope, "db.read db.write metrics");
}

Test(eval, default_deny_names_no_rule) {
  pol_client_t c = k8s("billing", "api");
  pol_decision_t d = decide(&c, "db", NULL, NULL, 0);
  cr_assert_eq(d.outcome, POL_DENY_DEFAULT);
  cr_assert_eq(d.rule_count, 0);
  pol_client_t none = {0};
  d = decide(&none, "db", NULL, NULL, 0);
  cr_assert_eq(d.outcome, POL_DENY_DEFAULT);
}

Test(eval, forbid_wins_and_is_named) {
  pol_client_t c = k8s("payments", "worker");
  pol_decision_t d = decide(&c, "cache", NULL, NULL, 0);
  cr_assert_eq(d.outcome, POL_DENY_FORBID);
  expect_rules(&d, "no-worker-cache");
  d = decide(&c, "db", NULL, NULL, 0); /* the forbid names only cache */
  cr_assert_eq(d.outcome, POL_ALLOW);
  c = k8s("pay-sandbox", "api");
  d = decide(&c, "db", NULL, NULL, 0); /* forbid without target: every target */
  cr_assert_eq(d.outcome, POL_DENY_FORBID);
  expect_rules(&d, "sandbox");
}

Test(eval, context_conditions) {
  pol_client_t c = {0};
  c.attr[POL_A_TRUST] = S("gh");
  c.attr[POL_A_REPOSITORY] = S("corp/app");
  pol_context_t ctx = {0};
  /* 2026-11-23 is a Monday; 23:30 UTC */
  ctx.now_s = 1795392000 + 23 * 3600 + 1800;
  ctx.source_family = 4;
  inet_pton(AF_INET, "10.1.2.3", ctx.source_ip);
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_ALLOW);
  ctx.now_s += 24 * 3600; /* tuesday */
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_DENY_DEFAULT);
  ctx.now_s += 3 * 24 * 3600 + 6 * 3600; /* saturday 05:30: in the window, but not a listed day */
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_DENY_DEFAULT);
  ctx.now_s = 1795392000 + 4 * 86400 + 5 * 3600 + 59 * 60; /* friday 05:59 */
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_ALLOW);
  ctx.now_s = 1795392000 + 4 * 86400 + 6 * 3600; /* friday 06:00: end is exclusive */
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_DENY_DEFAULT);
  ctx.now_s = 1795392000 + 22 * 3600;
  inet_pton(AF_INET, "11.1.2.3", ctx.source_ip);
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_DENY_DEFAULT);
  ctx.source_family = 6;
  inet_pton(AF_INET6, "fd12::1", ctx.source_ip);
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_ALLOW);
  ctx.source_family = 0; /* unknown source: the CIDR test is false */
  cr_assert_eq(decide(&c, "other", &ctx, NULL, 0).outcome, POL_DENY_DEFAULT);
}

Test(eval, numbers_claims_posture_absent) {
  pol_client_t c = {0};
  c.attr[POL_A_TRUST] = S("u");
  c.attr[POL_A_UID] = S("999");
  c.attr[POL_A_EXE] = S("/usr/bin/app");
  pol_decision_t d = decide(&c, "other", NULL, NULL, 0);
  cr_assert_eq(d.outcome, POL_ALLOW);
  expect_rules(&d, "root");
  cr_assert_str_eq(d.scope, "sys");
  cr_assert_eq(d.ttl_s, 300);
  c.attr[POL_A_UID] = S("1000");
  cr_assert_eq(decide(&c, "other", NULL, NULL, 0).outcome, POL_DENY_DEFAULT);
  c.attr[POL_A_UID] = S("12abc"); /* not a number: comparison false */
  cr_assert_eq(decide(&c, "other", NULL, NULL, 0).outcome, POL_DENY_DEFAULT);

  pol_kv_t claims[] = {{S("email"), S("ann@corp.example")}};
  pol_client_t o = {0};
  o.attr[POL_A_TRUST] = S("o");
  o.claims = claims;
  o.claims_count = 1;
  d = decide(&o, "other", NULL, NULL, 0);
  cr_assert_eq(d.outcome, POL_ALLOW); /* not claims.group == "x" holds: group is absent */
  pol_kv_t claims2[] = {{S("email"), S("ann@corp.example")}, {S("group"), S("x")}};
  o.claims = claims2;
  o.claims_count = 2;
  cr_assert_eq(decide(&o, "other", NULL, NULL, 0).outcome, POL_DENY_DEFAULT);

  pol_client_t k = k8s("x", "y");
  pol_kv_t posture[] = {{S("score"), S("8")}, {S("disk"), S("enc")}};
  pol_context_t ctx = {.posture = posture, .posture_count = 2};
  cr_assert_eq(decide(&k, "other", &ctx, NULL, 0).outcome, POL_ALLOW);
  posture[0].value = S("7.25");
  cr_assert_eq(decide(&k, "other", &ctx, NULL, 0).outcome, POL_DENY_DEFAULT);
  ctx.posture_count = 0;
  cr_assert_eq(decide(&k, "other", &ctx, NULL, 0).outcome, POL_DENY_DEFAULT);
}

Test(eval, bad_target_index_denies) {
  pol_client_t c = k8s("payments", "api");
  pol_context_t ctx = {0};
  pol_decision_t d;
  pol_eval(cfg, &c, 999, &ctx, NULL, &d);
  cr_assert_eq(d.outcome, POL_DENY_DEFAULT);
  cr_assert_eq(d.rule_count, 0);
}

Test(glob, semantics) {
  cr_assert(pol_glob_match("a*", 2, "abc", 3));
  cr_assert(pol_glob_match("*", 1, "", 0));
  cr_assert(pol_glob_match("a?c", 3, "abc", 3));
  cr_assert_not(pol_glob_match("a?c", 3, "ac", 2));
  cr_assert(pol_glob_match("*b*d", 4, "abcbd", 5));
  cr_assert_not(pol_glob_match("*b*d", 4, "abcbde", 6));
  cr_assert(pol_glob_match("a**", 3, "a", 1));
  cr_assert_not(pol_glob_match("", 0, "a", 1));
}

/* Shapes the random generator does not reach: more matches than the fast path's stack
 * array (handed to the reference), `in` lists whose product exceeds the expansion bound,
 * long target lists filed under "any". */
static void agree_on(const char *text, const pol_client_t *cl, const char *tname,
                     pol_outcome_t want, uint32_t want_rules) {
  pol_diag_t d;
  pol_config_t *saved = cfg;
  cfg = pol_config_parse(text, strlen(text), "big.conf", &d);
  cr_assert_not_null(cfg, "%s", d.count ? d.text[0] : "");
  pol_decision_t x = decide(cl, tname, NULL, NULL, 0);
  cr_assert_eq(x.outcome, want);
  cr_assert_eq(x.rule_count, want_rules);
  pol_config_free(cfg);
  cfg = saved;
}

Test(eval, index_edge_shapes) {
  /* regression: a rule with no condition and no scope left the u32 pool unallocated and
   * the empty key's tuple was copied from NULL (UBSan) */
  pol_client_t none = {0};
  agree_on("target \"t\" {}\npermit \"p\" { target any }\n", &none, "t", POL_ALLOW, 1);
  char *buf = malloc(1 << 20);
  size_t o = 0;
  o += (size_t)sprintf(buf + o, "target \"t\" {}\n");
  for (int i = 0; i < 300; i++)
    o += (size_t)sprintf(buf + o, "permit \"p%d\" {\n target any\n scope \"s%d\"\n}\n", i, i % 7);
  pol_client_t c = k8s("a", "b");
  agree_on(buf, &c, "t", POL_ALLOW, POL_DECISION_RULES_MAX);

  o = (size_t)sprintf(buf, "target \"t\" {}\npermit \"wide\" {\n client namespace in [");
  for (int i = 0; i < 100; i++)
    o += (size_t)sprintf(buf + o, "%s\"n%d\"", i ? ", " : "", i);
  o += (size_t)sprintf(buf + o, "] and service_account in [");
  for (int i = 0; i < 100; i++)
    o += (size_t)sprintf(buf + o, "%s\"s%d\"", i ? ", " : "", i);
  o += (size_t)sprintf(buf + o, "]\n target any\n}\n");
  c = k8s("n42", "s99");
  agree_on(buf, &c, "t", POL_ALLOW, 1);
  c = k8s("n42", "s100");
  agree_on(buf, &c, "t", POL_DENY_DEFAULT, 0);

  o = 0;
  for (int i = 0; i < 5000; i++)
    o += (size_t)sprintf(buf + o, "target \"t%d\" {}\n", i);
  o += (size_t)sprintf(buf + o, "forbid \"many\" {\n client namespace == \"a\"\n target ");
  for (int i = 0; i < 5000; i += 2)
    o += (size_t)sprintf(buf + o, "%s\"t%d\"", i ? ", " : "", i);
  o += (size_t)sprintf(buf + o, "\n}\npermit \"all\" { target any }\n");
  c = k8s("a", "b");
  agree_on(buf, &c, "t4998", POL_DENY_FORBID, 1);
  agree_on(buf, &c, "t4999", POL_ALLOW, 1);
  free(buf);
}

Test(eval, explain_closest_and_format) {
  char buf[512];
  pol_rule_format(cfg, 0, buf, sizeof buf);
  cr_assert_str_eq(buf, "permit \"api\" { client trust == \"k8s\" and namespace == \"payments\" and "
                        "service_account in [\"api\", \"worker\"]; target \"db\", \"cache\"; "
                        "scope \"db.read db.write\"; ttl 120s; }");
  pol_rule_format(cfg, 2, buf, sizeof buf);
  cr_assert_str_eq(buf, "permit \"office\" { client trust == \"gh\" and repository == \"corp/app\"; "
                        "target any; when source_ip in [10.0.0.0/8, fd00::/8] and time in "
                        "22:00..06:00 and day in [mon, fri]; }");
  pol_rule_format(cfg, 0, buf, 10); /* cut, still terminated */
  cr_assert_eq(strlen(buf), 9);

  pol_client_t c = k8s("billing", "api");
  pol_context_t ctx = {0};
  pol_explain_t ex;
  pol_explain_closest(cfg, &c, target("db"), &ctx, &ex);
  cr_assert_str_eq(pol_config_rule_name(cfg, ex.rule), "api"); /* ties go to the first */
  cr_assert_str_eq(ex.failed, "namespace == \"payments\"");
  cr_assert_eq(ex.held, 3);
  cr_assert_eq(ex.total, 4);
  c = k8s("payments", "api");
  /* "api" fails only its target list; "posture" fails both posture tests */
  pol_explain_closest(cfg, &c, target("other"), &ctx, &ex);
  cr_assert_str_eq(pol_config_rule_name(cfg, ex.rule), "api");
  cr_assert_str_eq(ex.failed, "target \"other\" is not one of the rule's targets");
  pol_kv_t posture[] = {{S("score"), S("9")}};
  ctx.posture = posture;
  ctx.posture_count = 1;
  pol_explain_closest(cfg, &c, target("other"), &ctx, &ex);
  cr_assert_str_eq(pol_config_rule_name(cfg, ex.rule), "api");
  c.attr[POL_A_NAMESPACE] = S("billing"); /* now api fails twice, posture once */
  pol_explain_closest(cfg, &c, target("other"), &ctx, &ex);
  cr_assert_str_eq(pol_config_rule_name(cfg, ex.rule), "posture");
  cr_assert_str_eq(ex.failed, "posture.disk == \"enc\"");
}

Test(number, strict_decimal_without_locale) {
  double v;
  cr_assert(pol_parse_number("7.5", 3, &v) && v == 7.5);
  cr_assert(pol_parse_number("-0.25", 5, &v) && v == -0.25);
  cr_assert(pol_parse_number("1000", 4, &v) && v == 1000);
  const char *bad[] = {"", "1e3", ".5", "5.", "--1", "1,5", "0x10", " 1", "1 ", "+1", "-"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_not(pol_parse_number(bad[i], strlen(bad[i]), &v), "accepted '%s'", bad[i]);
  cr_assert_not(pol_parse_number("123456789012345678901234567890123", 33, &v)); /* > 32 */
}

Test(index, weak_keys_give_way_to_glob_prefixes) {
  /* 40 rules whose only equality is trust == "k8s": filed by their glob prefix, not in one
   * bucket; the decisions are those of the reference (diff_test covers that at large). */
  char *buf = malloc(1 << 16);
  size_t o = (size_t)sprintf(buf, "trust \"k8s\" { kind kubernetes\n issuer \"https://k\"\n"
                                  " jwks \"k\"\n audience \"a\" }\ntarget \"t\" {}\n");
  for (int i = 0; i < 40; i++)
    o += (size_t)sprintf(buf + o, "permit \"g%d\" {\n client trust == \"k8s\" and namespace like "
                                  "\"team%d-*\"\n target any\n}\n", i, i);
  o += (size_t)sprintf(buf + o, "permit \"exact\" {\n client trust == \"k8s\" and namespace == "
                                "\"x\"\n target any\n}\n");
  pol_diag_t d;
  pol_config_t *c = pol_config_parse(buf, o, "weak.conf", &d);
  cr_assert_not_null(c, "%s", d.count ? d.text[0] : "");
  cr_assert_not_null(c->idx.glob);
  cr_assert_eq(c->idx.sigs_n, 1); /* only "exact" is hashed (trust, namespace) */
  pol_config_t *saved = cfg;
  cfg = c;
  pol_client_t cl = k8s("team7-web", "x");
  pol_decision_t x = decide(&cl, "t", NULL, NULL, 0);
  cr_assert_eq(x.outcome, POL_ALLOW);
  expect_rules(&x, "g7");
  cfg = saved;
  pol_config_free(c);
  free(buf);
}
