#!/usr/bin/env bash
# idmint policy check / explain as a process: exit codes, error format, decisions as JSON.
set -euo pipefail
: "${IDMINT:?}" "${SRC_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# the shipped example passes
"$IDMINT" policy check "$SRC_DIR/examples/policy.conf" > "$tmp/out" || fail "example rejected"
grep -q "ok (8 trust, 4 target, 11 rule blocks" "$tmp/out" || fail "check output: $(cat "$tmp/out")"

# errors: file:line:col, source line, caret; all of them; exit 1
printf 'server {\n  threads "x"\n  bogus 1\n}\npermit "p" { target "nope" }\n' > "$tmp/bad.conf"
set +e
"$IDMINT" policy check "$tmp/bad.conf" > "$tmp/out" 2> "$tmp/err"
rc=$?
set -e
[ "$rc" = 1 ] || fail "bad config exit $rc"
[ ! -s "$tmp/out" ] || fail "errors must go to stderr"
grep -qx "$tmp/bad.conf:2:11: 'threads' takes a whole number, not string \"x\"" "$tmp/err" || fail "$(cat "$tmp/err")"
grep -qx '  threads "x"' "$tmp/err" || fail "no source line"
grep -qx '          ^' "$tmp/err" || fail "no caret"
grep -q "$tmp/bad.conf:3:3: unknown key 'bogus'" "$tmp/err" || fail "second error missing"
grep -q "$tmp/bad.conf:5:21: unknown target \"nope\"" "$tmp/err" || fail "third error missing"
grep -qx "3 errors" "$tmp/err" || fail "no count"

set +e
"$IDMINT" policy check "$tmp/missing.conf" 2> "$tmp/err"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "missing.conf: No such file" "$tmp/err" || fail "missing file: $rc $(cat "$tmp/err")"
set +e
"$IDMINT" policy check 2> /dev/null; rc=$?
set -e
[ "$rc" = 2 ] || fail "usage error exit $rc"
"$IDMINT" policy --help | grep -q "policy explain FILE --request" || fail "help"

ex() { "$IDMINT" policy explain "$SRC_DIR/examples/policy.conf" --request "$1"; }
jq_() { node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(JSON.stringify(eval("j"+process.argv[1])))' "$1"; }

# allow, with the deciding rule, granted scope and ttl
ex "$SRC_DIR/examples/requests/payments-api.json" > "$tmp/out"
[ "$(jq_ .decision < "$tmp/out")" = '"allow"' ] || fail "allow: $(cat "$tmp/out")"
[ "$(jq_ .rules < "$tmp/out")" = '["payments-api"]' ] || fail "rules"
[ "$(jq_ .scope < "$tmp/out")" = '"db.read"' ] || fail "scope"
[ "$(jq_ .ttl_s < "$tmp/out")" = '120' ] || fail "ttl"

# default deny: the closest permit and the condition that failed
cat > "$tmp/deny.json" <<'J'
{"client": {"trust": "k8s-prod", "namespace": "billing", "service_account": "api"},
 "target": "spiffe://corp.example/payments/db",
 "context": {"source_ip": "10.1.2.3", "time": "2026-11-23T10:00:00Z"}}
J
ex "$tmp/deny.json" > "$tmp/out"
[ "$(jq_ .outcome < "$tmp/out")" = '"default"' ] || fail "deny: $(cat "$tmp/out")"
[ "$(jq_ .rules < "$tmp/out")" = '[]' ] || fail "deny rules"
[ "$(jq_ .closest.rule < "$tmp/out")" = '"payments-api"' ] || fail "closest: $(cat "$tmp/out")"
[ "$(jq_ .closest.failed < "$tmp/out")" = '"namespace == \"payments\""' ] || fail "failed: $(cat "$tmp/out")"

# forbid names the forbid
cat > "$tmp/forbid.json" <<'J'
{"client": {"trust": "k8s-prod", "namespace": "payments", "service_account": "worker"},
 "target": "payments-cache",
 "context": {"source_ip": "10.1.2.3", "time": "2026-11-28T10:00:00+01:00"}}
J
ex "$tmp/forbid.json" > "$tmp/out"
[ "$(jq_ .outcome < "$tmp/out")" = '"forbid"' ] || fail "forbid: $(cat "$tmp/out")"
[ "$(jq_ .rules < "$tmp/out")" = '["cache-not-from-workers-at-weekends"]' ] || fail "forbid rules"

# a scope no matching permit grants
cat > "$tmp/scope.json" <<'J'
{"client": {"trust": "k8s-prod", "namespace": "payments", "service_account": "api"},
 "target": "payments-db", "scope": "db.read db.admin", "ttl": "1m",
 "context": {"source_ip": "10.1.2.3", "time": "2026-11-23T10:00:00Z"}}
J
ex "$tmp/scope.json" > "$tmp/out"
[ "$(jq_ .outcome < "$tmp/out")" = '"scope"' ] || fail "scope: $(cat "$tmp/out")"
[ "$(jq_ .scope_not_granted < "$tmp/out")" = '["db.admin"]' ] || fail "scope_not_granted"

# posture, claims and unix numbers from JSON
cat > "$tmp/sso.json" <<'J'
{"client": {"trust": "sso", "claims": {"email": "ann@corp.example"}}, "target": "metrics",
 "context": {"source_ip": "fd00::7", "posture": {"disk": "encrypted", "score": 91}}}
J
ex "$tmp/sso.json" > "$tmp/out"
[ "$(jq_ .rules < "$tmp/out")" = '["staff-dashboards"]' ] || fail "sso: $(cat "$tmp/out")"
cat > "$tmp/unix.json" <<'J'
{"client": {"trust": "local", "uid": 1000, "gid": 100, "exe": "/usr/local/bin/agent"}, "target": "metrics"}
J
ex "$tmp/unix.json" > "$tmp/out"
[ "$(jq_ .ttl_s < "$tmp/out")" = '60' ] || fail "unix: $(cat "$tmp/out")"

# hostile requests: one precise line, exit 1
for bad in '{"client": {"colour": "x"}, "target": "metrics"}|unknown client attribute "colour"' \
           '{"client": {}, "target": "nope"}|unknown target "nope"' \
           '{"client": {"trust": "zz"}, "target": "metrics"}|client.trust "zz" is not a trust' \
           '{"target": "metrics", "context": {"time": "yesterday"}}|context.time must be an RFC 3339' \
           '{"target": "metrics", "context": {"source_ip": "10.0.0.300"}}|context.source_ip must be' \
           '{"target": "metrics", "extra": 1}|unknown key "extra"' \
           '[1]|must be a JSON object' \
           '{"target": "metrics", "target": "x"}|duplicate'; do
  printf '%s' "${bad%%|*}" > "$tmp/bad.json"
  set +e
  ex "$tmp/bad.json" > /dev/null 2> "$tmp/err"; rc=$?
  set -e
  [ "$rc" = 1 ] || fail "exit $rc for ${bad%%|*}"
  grep -q "${bad#*|}" "$tmp/err" || fail "want '${bad#*|}', got: $(cat "$tmp/err")"
  [ "$(wc -l < "$tmp/err")" = 1 ] || fail "one line: $(cat "$tmp/err")"
done
echo "policy cli: ok"
