/* idmint policy check FILE | idmint policy explain FILE --request REQUEST.json
 *
 * check compiles the whole configuration (every block kind) exactly as `serve` would and
 * prints every error as file:line:col, the source line and a caret. explain builds one
 * request from a JSON document (client attributes, target, context), decides it with
 * the compiled evaluator and prints the decision as JSON: the deciding rules, and for a
 * default deny the permit that came closest and its first condition that failed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/limits.h"
#include "policy.h"

static int usage_text(FILE *f) {
  fputs("usage: idmint policy check FILE\n"
        "       idmint policy explain FILE --request REQUEST.json\n\n"
        "check    compile FILE (server, trust, target, permit and forbid blocks); exit 0, or\n"
        "         exit 1 with every error as file:line:col: message, the line and a caret.\n"
        "explain  decide the request in REQUEST.json against FILE and print the decision:\n"
        "         {\"decision\", \"outcome\", \"rules\", \"scope\", \"ttl_s\", ...}; for a default deny\n"
        "         also the closest permit and the condition that failed. Exit 0 whatever\n"
        "         the decision; 1 if FILE or the request is invalid.\n\n"
        "REQUEST.json:\n"
        "  {\"client\": {\"trust\": \"k8s-prod\", \"namespace\": \"payments\", ...,\n"
        "              \"claims\": {\"email\": \"...\"}},\n"
        "   \"target\": \"payments-db\",\n"
        "   \"context\": {\"source_ip\": \"10.1.2.3\", \"time\": \"2026-11-23T10:00:00Z\",\n"
        "               \"posture\": {\"disk\": \"encrypted\", \"score\": 8}},\n"
        "   \"scope\": \"db.read\", \"ttl\": \"1m\"}\n"
        "  client.kind defaults to the named trust's kind; context.time defaults to now.\n",
        f);
  return IDM_EXIT_OK;
}

static void print_diag(const pol_diag_t *d) {
  uint32_t shown = d->count < POL_DIAG_MAX ? d->count : POL_DIAG_MAX;
  for (uint32_t i = 0; i < shown; i++)
    fprintf(stderr, "%s\n", d->text[i]);
  if (d->count > shown)
    fprintf(stderr, "... and %u more errors\n", d->count - shown);
  if (d->count > 1)
    fprintf(stderr, "%u errors\n", d->count);
}

static int cmd_check(const char *path) {
  pol_diag_t *d = calloc(1, sizeof *d);
  if (!d)
    return idm_cli_err("out of memory");
  pol_config_t *c = pol_config_load(path, d);
  if (!c) {
    print_diag(d);
    free(d);
    return IDM_EXIT_FAIL;
  }
  printf("%s: ok (%u trust, %u target, %u rule blocks; policy %s)\n", path,
         pol_config_trust_count(c), pol_config_target_count(c), pol_config_rule_count(c),
         pol_config_policy_id(c));
  pol_config_free(c);
  free(d);
  return IDM_EXIT_OK;
}

/* RFC 3339 date-time ("2026-11-23T10:00:00Z", "...T10:00:00.5+02:00") to Unix seconds. */
static bool parse_rfc3339(const char *s, int64_t *out) {
  struct tm tm = {0};
  int n = 0;
  if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
    return false;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
    return false;
  int m = 0;
  if (sscanf(s + 11, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3 || m != 8)
    return false;
  const char *p = s + 19;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return false;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  int64_t off = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om, k = 0;
    if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
      return false;
    off = (oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
    p += 6;
  } else {
    return false;
  }
  if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  *out = (int64_t)timegm(&tm) - off;
  return true;
}

/* The request's strings: owned copies that outlive the JSON (decref'd before output). */
typedef struct request {
  pol_client_t client;
  pol_kv_t claims[64];
  pol_kv_t posture[64];
  pol_context_t ctx;
  pol_ask_t ask;
  const pol_target_t *target;
  char *strings[512];
  int nstrings;
} request_t;

static pol_str_t keep(request_t *r, const char *s, size_t n) {
  if (r->nstrings >= (int)(sizeof r->strings / sizeof r->strings[0]))
    return (pol_str_t){NULL, 0};
  char *d = strndup(s, n);
  if (!d)
    return (pol_str_t){NULL, 0};
  r->strings[r->nstrings++] = d;
  return (pol_str_t){d, (uint32_t)n};
}

/* A JSON string or number as a policy value. */
static bool value_of(request_t *r, const json_t *v, pol_str_t *out) {
  char num[64];
  if (json_is_string(v)) {
    *out = keep(r, json_string_value(v), json_string_length(v));
  } else if (json_is_integer(v)) {
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    *out = keep(r, num, strlen(num));
  } else if (json_is_real(v)) {
    snprintf(num, sizeof num, "%.17g", json_real_value(v));
    *out = keep(r, num, strlen(num));
  } else {
    return false;
  }
  return out->ptr != NULL;
}

static int kv_object(request_t *r, const json_t *obj, const char *what, pol_kv_t *kv,
                     uint32_t *count) {
  if (!json_is_object(obj))
    return idm_cli_err("request: %s must be an object", what);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    if (*count >= 64)
      return idm_cli_err("request: more than 64 entries in %s", what);
    pol_kv_t *e = &kv[*count];
    e->name = keep(r, k, strlen(k));
    if (!value_of(r, v, &e->value))
      return idm_cli_err("request: %s.%s must be a string or a number", what, k);
    (*count)++;
  }
  return 0;
}

static int build_request(const pol_config_t *cfg, json_t *root, request_t *r) {
  if (!json_is_object(root))
    return idm_cli_err("request: the document must be a JSON object");
  const char *k;
  json_t *v;
  json_object_foreach(root, k, v) {
    if (strcmp(k, "client") && strcmp(k, "target") && strcmp(k, "context") &&
        strcmp(k, "scope") && strcmp(k, "ttl"))
      return idm_cli_err("request: unknown key \"%s\" (expected client, target, context, "
                         "scope, ttl)", k);
  }
  json_t *client = json_object_get(root, "client");
  if (client && !json_is_object(client))
    return idm_cli_err("request: client must be an object");
  json_object_foreach(client, k, v) {
    if (!strcmp(k, "claims")) {
      if (kv_object(r, v, "client.claims", r->claims, &r->client.claims_count))
        return IDM_EXIT_FAIL;
      r->client.claims = r->claims;
      continue;
    }
    if (!strncmp(k, "claims.", 7)) {
      if (r->client.claims_count >= 64)
        return idm_cli_err("request: too many claims");
      pol_kv_t *e = &r->claims[r->client.claims_count++];
      e->name = keep(r, k + 7, strlen(k + 7));
      if (!value_of(r, v, &e->value))
        return idm_cli_err("request: client.%s must be a string", k);
      r->client.claims = r->claims;
      continue;
    }
    int a = -1;
    for (int i = 0; i < POL_A__COUNT; i++)
      if (!strcmp(k, pol_attr_name((pol_attr_id_t)i)))
        a = i;
    if (a < 0)
      return idm_cli_err("request: unknown client attribute \"%s\"", k);
    if (!value_of(r, v, &r->client.attr[a]))
      return idm_cli_err("request: client.%s must be a string or a number", k);
  }
  pol_str_t trust = r->client.attr[POL_A_TRUST];
  if (trust.ptr) {
    const pol_trust_t *t = pol_config_trust_find(cfg, trust.ptr, trust.len);
    if (!t)
      return idm_cli_err("request: client.trust \"%s\" is not a trust of the configuration",
                         trust.ptr);
    if (!r->client.attr[POL_A_KIND].ptr) {
      const char *kn = pol_kind_name(t->kind);
      r->client.attr[POL_A_KIND] = (pol_str_t){kn, (uint32_t)strlen(kn)};
    }
  }
  json_t *target = json_object_get(root, "target");
  if (!json_is_string(target))
    return idm_cli_err("request: target must be a string (a target's name or audience)");
  r->target = pol_config_target_find(cfg, json_string_value(target), json_string_length(target));
  if (!r->target)
    return idm_cli_err("request: unknown target \"%s\"", json_string_value(target));
  r->ctx.now_s = (int64_t)time(NULL);
  json_t *ctx = json_object_get(root, "context");
  if (ctx && !json_is_object(ctx))
    return idm_cli_err("request: context must be an object");
  json_object_foreach(ctx, k, v) {
    if (!strcmp(k, "source_ip")) {
      const char *ip = json_string_value(v);
      if (ip && inet_pton(AF_INET, ip, r->ctx.source_ip) == 1)
        r->ctx.source_family = 4;
      else if (ip && inet_pton(AF_INET6, ip, r->ctx.source_ip) == 1)
        r->ctx.source_family = 6;
      else
        return idm_cli_err("request: context.source_ip must be an IPv4 or IPv6 address");
    } else if (!strcmp(k, "time")) {
      if (!json_is_string(v) || !parse_rfc3339(json_string_value(v), &r->ctx.now_s))
        return idm_cli_err("request: context.time must be an RFC 3339 date-time like "
                           "2026-11-23T10:00:00Z");
    } else if (!strcmp(k, "posture")) {
      if (kv_object(r, v, "context.posture", r->posture, &r->ctx.posture_count))
        return IDM_EXIT_FAIL;
      r->ctx.posture = r->posture;
    } else {
      return idm_cli_err("request: unknown context key \"%s\" (expected source_ip, time, posture)", k);
    }
  }
  json_t *scope = json_object_get(root, "scope");
  if (scope) {
    if (!json_is_string(scope))
      return idm_cli_err("request: scope must be a space-separated string");
    r->ask.scope = keep(r, json_string_value(scope), json_string_length(scope));
  }
  json_t *ttl = json_object_get(root, "ttl");
  if (json_is_integer(ttl) && json_integer_value(ttl) > 0) {
    r->ask.ttl_s = json_integer_value(ttl);
  } else if (json_is_string(ttl) && idm_cli_parse_duration(json_string_value(ttl)) > 0) {
    r->ask.ttl_s = idm_cli_parse_duration(json_string_value(ttl));
  } else if (ttl) {
    return idm_cli_err("request: ttl must be a duration like \"5m\" or a number of seconds");
  }
  return 0;
}

static const char *outcome_name(pol_outcome_t o) {
  switch (o) {
  case POL_ALLOW: return "allow";
  case POL_DENY_FORBID: return "forbid";
  case POL_DENY_SCOPE: return "scope";
  default: return "default";
  }
}

static int cmd_explain(const char *path, const char *req_path) {
  pol_diag_t *d = calloc(1, sizeof *d);
  request_t *r = calloc(1, sizeof *r);
  pol_decision_t *dec = calloc(1, sizeof *dec);
  int rc = IDM_EXIT_FAIL;
  char *buf = NULL;
  json_t *root = NULL, *out = NULL;
  pol_config_t *c = NULL;
  if (!d || !r || !dec) {
    rc = idm_cli_err("out of memory");
    goto done;
  }
  c = pol_config_load(path, d);
  if (!c) {
    print_diag(d);
    goto done;
  }
  size_t len = 0;
  idm_why_t why = {{0}};
  idm_err_t e = idm_file_read(req_path, IDM_JSON_INPUT_MAX_BYTES, &buf, &len, &why);
  if (e != IDM_OK) {
    rc = idm_cli_err("%s", idm_why_str(&why, e));
    goto done;
  }
  root = idm_json_parse(buf, len, &e, &why);
  if (!root) {
    rc = idm_cli_err("%s: %s", req_path, idm_why_str(&why, e));
    goto done;
  }
  if (build_request(c, root, r))
    goto done;
  pol_eval(c, &r->client, r->target->index, &r->ctx, &r->ask, dec);
  out = json_object();
  json_object_set_new(out, "decision", json_string(dec->allow ? "allow" : "deny"));
  json_object_set_new(out, "outcome", json_string(outcome_name(dec->outcome)));
  json_t *rules = json_array();
  for (uint32_t i = 0; i < dec->rule_count; i++)
    json_array_append_new(rules, json_string(pol_config_rule_name(c, dec->rules[i])));
  json_object_set_new(out, "rules", rules);
  json_object_set_new(out, "target", json_string(r->target->name));
  if (dec->allow) {
    json_object_set_new(out, "scope", json_string(dec->scope));
    json_object_set_new(out, "ttl_s", json_integer(dec->ttl_s));
  } else {
    json_object_set_new(out, "scope", json_null());
    json_object_set_new(out, "ttl_s", json_null());
  }
  json_object_set_new(out, "policy", json_string(pol_config_policy_id(c)));
  if (dec->outcome == POL_DENY_DEFAULT) {
    pol_explain_t ex;
    pol_explain_closest(c, &r->client, r->target->index, &r->ctx, &ex);
    if (ex.rule != UINT32_MAX) {
      json_t *cl = json_object();
      json_object_set_new(cl, "rule", json_string(pol_config_rule_name(c, ex.rule)));
      json_object_set_new(cl, "failed", json_string(ex.failed));
      json_object_set_new(cl, "held", json_integer(ex.held));
      json_object_set_new(cl, "of", json_integer(ex.total));
      json_object_set_new(out, "closest", cl);
    } else {
      json_object_set_new(out, "closest", json_null());
    }
  } else if (dec->outcome == POL_DENY_SCOPE) {
    /* which requested scopes no matching permit grants */
    pol_ask_t all = {{NULL, 0}, 0};
    pol_decision_t *u = calloc(1, sizeof *u);
    if (u) {
      pol_eval(c, &r->client, r->target->index, &r->ctx, &all, u);
      json_t *miss = json_array();
      const char *s = r->ask.scope.ptr;
      size_t n = r->ask.scope.len;
      for (size_t i = 0; i < n;) {
        while (i < n && s[i] == ' ')
          i++;
        size_t st = i;
        while (i < n && s[i] != ' ')
          i++;
        if (i == st)
          break;
        bool found = false;
        for (size_t j = 0; j < u->scope_len && !found;) {
          size_t e2 = j;
          while (e2 < u->scope_len && u->scope[e2] != ' ')
            e2++;
          found = e2 - j == i - st && !memcmp(u->scope + j, s + st, i - st);
          j = e2 + 1;
        }
        if (!found)
          json_array_append_new(miss, json_stringn(s + st, i - st));
      }
      json_object_set_new(out, "scope_not_granted", miss);
      json_object_set_new(out, "scope_grantable", json_string(u->scope));
      free(u);
    }
  }
  /* json_dumpf, not json_dumps: a dumped string would come from jansson's allocator
   * hooks (core/json.c) and could not be given to free() */
  if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
    rc = idm_cli_err("cannot write the decision to stdout");
    goto done;
  }
  putchar('\n');
  rc = IDM_EXIT_OK;
done:
  json_decref(out);
  json_decref(root);
  free(buf);
  if (r)
    for (int i = 0; i < r->nstrings; i++)
      free(r->strings[i]);
  free(r);
  free(dec);
  free(d);
  pol_config_free(c);
  return rc;
}

int idm_cmd_policy(int argc, char **argv) {
  if (idm_cli_wants_help(argc, argv))
    return usage_text(stdout);
  if (argc < 2)
    return idm_cli_usage("policy", "missing subcommand (check or explain)");
  if (!strcmp(argv[1], "check")) {
    if (argc != 3)
      return idm_cli_usage("policy", "policy check takes exactly one FILE");
    return cmd_check(argv[2]);
  }
  if (!strcmp(argv[1], "explain")) {
    const char *file = NULL, *req = NULL;
    for (int i = 2; i < argc; i++) {
      if (!strcmp(argv[i], "--request")) {
        if (++i >= argc)
          return idm_cli_usage("policy", "--request needs a file");
        req = argv[i];
      } else if (!strncmp(argv[i], "--request=", 10)) {
        req = argv[i] + 10;
      } else if (argv[i][0] == '-') {
        return idm_cli_usage("policy", "unknown flag %s", argv[i]);
      } else if (!file) {
        file = argv[i];
      } else {
        return idm_cli_usage("policy", "unexpected argument %s", argv[i]);
      }
    }
    if (!file || !req)
      return idm_cli_usage("policy", "policy explain needs FILE and --request REQUEST.json");
    return cmd_explain(file, req);
  }
  return idm_cli_usage("policy", "unknown subcommand %s (check or explain)", argv[1]);
}
