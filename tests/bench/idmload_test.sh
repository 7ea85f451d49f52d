#!/usr/bin/env bash
# idmload (bench/idmload.c) against the real server on a free port: closed loop, open loop
# (a POST /v1/token form), --find-max, --json; clean errors for bad options, a closed port
# and a server that goes away mid-run. No timing assertions: only counts and the order of
# the percentiles.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
LOAD=${IDMLOAD:-$BUILD_DIR/bench/idmload}
[ -x "$LOAD" ] || { echo "skip: $LOAD is not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }

# expect_usage 'message part' args...: exit status 2 and the message on stderr
expect_usage() {
  local want=$1 rc=0
  shift
  "$LOAD" "$@" > "$T/out" 2> "$T/err" || rc=$?
  [ "$rc" = 2 ] || fail "idmload $*: exit $rc, want 2 ($(cat "$T/err"))"
  grep -qF -- "$want" "$T/err" || fail "idmload $*: '$(cat "$T/err")' does not say '$want'"
}
U=http://127.0.0.1:1/x
expect_usage "-c must be between 1 and" -c 0 "$U"
expect_usage "-m wants an integer, got '4x'" -m 4x "$U"
expect_usage "-r wants a number, got 'fast'" -r fast "$U"
expect_usage "-r must be between 0" -r -5 "$U"
expect_usage "-D must be more than 0 s" -D 0 "$U"
expect_usage "unknown unit 'h'" -D 1h "$U"
expect_usage "--at applies to --find-max only" --at 0.5 "$U"
expect_usage "--at wants a fraction in (0, 1]" --find-max --at 1.5 "$U"
expect_usage "--find-max finds the rate itself" --find-max -r 10 "$U"
expect_usage "--poisson needs an open-loop rate" --poisson "$U"
expect_usage "TLS is not supported" https://127.0.0.1:1/
expect_usage "is not an http:// URI" ftp://x/
expect_usage "port 70000 is out of range" http://127.0.0.1:70000/
expect_usage "expected 'name: value'" -H nocolon "$U"
expect_usage "connection-specific header" -H 'Connection: close' "$U"
expect_usage "-d $T/missing: No such file" -d "$T/missing" "$U"
expect_usage "-t 3 is more threads than connections" -t 3 -c 2 "$U"
expect_usage "no URI given" -c 1
expect_usage "needs a value" -c
expect_usage "unknown option '--nope'" --nope "$U"
ok "option errors: exit 2 with the reason"

# a closed port: a plain error, exit 1, no crash
CLOSED=$(free_port)
rc=0
"$LOAD" -D 1 "http://127.0.0.1:$CLOSED/healthz" > "$T/out" 2> "$T/err" || rc=$?
[ "$rc" = 1 ] || fail "closed port: exit $rc, want 1 ($(cat "$T/err"))"
grep -q "connect to 127.0.0.1:$CLOSED: Connection refused" "$T/err" || fail "closed port: $(cat "$T/err")"
ok "closed port: $(cat "$T/err")"

setup_env
start_server

# check_json FILE MODE: completed > 0, every answer 2xx, no errors, p50 <= p99 <= max
check() {
  python3 - "$@" <<'PY' || fail "$1: $(cat "$1")"
import json, sys
f, path = sys.argv[1], sys.argv[2:]
r = json.load(open(f))
for k in path:
    r = r[k]
q = r["requests"]; lat = r["latency_ms"]
assert q["completed"] > 0, "nothing completed"
assert r["status"]["2xx"] == q["completed"], "non-2xx answers"
assert r["errors"]["total"] == 0 and q["unfinished"] == 0, "errors"
assert lat["count"] == q["completed"]
assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat
assert r["rate"] > 0 and r["rate_2xx"] == r["rate"], (r["rate"], r["rate_2xx"])
if r["mode"] == "open":
    assert q["scheduled"] == q["sent"] == q["completed"], q
    s = r["service_ms"]; g = r["send_lag_ms"]
    assert s["count"] == q["completed"] and g["count"] == q["sent"]
    assert 0 < s["p50"] <= s["p99"] <= s["max"], s
PY
}

"$LOAD" -c 2 -m 4 -D 1 --json "$BASE/healthz" > "$T/closed.json" || fail "closed loop: $(cat "$T/closed.json")"
check "$T/closed.json"
ok "closed loop GET /healthz: $(python3 -c "import json; r=json.load(open('$T/closed.json')); print(r['requests']['completed'], 'completed, p99', r['latency_ms']['p99'], 'ms')")"

form="$T/form"
printf 'grant_type=%s&subject_token_type=%s&audience=payments-db&subject_token=%s' \
  "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" \
  "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt" "$(cat "$T/payments.jwt")" > "$form"
"$LOAD" -c 2 -m 4 -r 200 -D 1 --warm-up 0.2 --json -d "$form" \
  -H 'Content-Type: application/x-www-form-urlencoded' "$BASE/v1/token" > "$T/open.json" ||
  fail "open loop: $(cat "$T/open.json")"
check "$T/open.json"
python3 - "$T/open.json" <<'PY' || fail "open loop counts: $(cat "$T/open.json")"
import json, sys
r = json.load(open(sys.argv[1]))
# 200/s for 1 s on a uniform schedule: exactly 200 due in the window, 40 in the warm-up
assert r["requests"]["scheduled"] == 200, r["requests"]
assert r["requests"]["warmup"] == 40, r["requests"]
assert r["mode"] == "open" and r["target_rate"] == 200
PY
ok "open loop POST /v1/token at 200/s: 200 scheduled, sent and answered 2xx"

"$LOAD" -c 2 -m 2 -r 300 --poisson -D 1 "$BASE/healthz" > "$T/text" || fail "poisson: $(cat "$T/text")"
grep -q '^status codes: [1-9][0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx' "$T/text" || fail "text report: $(cat "$T/text")"
grep -q '^latency ms (from intended): *p50 ' "$T/text" || fail "text report: $(cat "$T/text")"
ok "poisson open loop, text report"

"$LOAD" --find-max --at 0.5 -c 2 -m 4 -t 2 -D 0.5 --json "$BASE/healthz" > "$T/fm.json" ||
  fail "find-max: $(cat "$T/fm.json")"
check "$T/fm.json" closed
check "$T/fm.json" open
python3 - "$T/fm.json" <<'PY' || fail "find-max rate: $(cat "$T/fm.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["at"] == 0.5 and r["closed"]["mode"] == "closed" and r["open"]["mode"] == "open"
assert abs(r["open"]["target_rate"] - 0.5 * r["closed"]["rate_2xx"]) < 1e-3 * r["closed"]["rate_2xx"] + 1
PY
ok "--find-max: open loop at half the closed-loop rate, 2 threads"

# regression: --find-max took every answer as capacity, so a server answering fast 503s (or
# here 404s) set the open-loop rate; only 2xx count now
rc=0
"$LOAD" --find-max -c 1 -m 2 -D 0.3 --json "$BASE/nope" > "$T/nf.json" 2> "$T/nf.err" || rc=$?
[ "$rc" = 1 ] || fail "find-max on 404s: exit $rc"
grep -q "got no 2xx responses" "$T/nf.err" || fail "find-max on 404s: $(cat "$T/nf.err")"
python3 - "$T/nf.json" <<'PY' || fail "find-max on 404s: $(cat "$T/nf.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["open"] is None and r["closed"]["rate"] > 0 and r["closed"]["rate_2xx"] == 0, r["closed"]
assert r["closed"]["status"]["4xx"] == r["closed"]["requests"]["completed"] > 0
PY
ok "--find-max counts only 2xx as capacity"

# the server goes away mid-run: counted, reported, exit 0 (responses were received)
"$LOAD" -c 2 -m 4 -r 400 -D 2 --drain 0.5 --json "$BASE/healthz" > "$T/gone.json" 2> "$T/gone.err" &
lp=$!
sleep 0.7
stop_server || true
rc=0
wait "$lp" || rc=$?
[ "$rc" = 0 ] || fail "server gone: exit $rc ($(cat "$T/gone.err"))"
python3 - "$T/gone.json" <<'PY' || fail "server gone: $(cat "$T/gone.json")"
import json, sys
r = json.load(open(sys.argv[1]))
q, c = r["requests"], r["connections"]
assert q["completed"] > 0, q
assert c["dropped"] + c["goaway"] > 0, c
assert c["failed_reconnects"] > 0, c
assert q["unfinished"] > 0, q          # due requests could not be sent any more
PY
ok "server stopped mid-run: $(python3 -c "import json; r=json.load(open('$T/gone.json')); print(r['requests']['completed'], 'completed,', r['requests']['unfinished'], 'unfinished,', r['connections'])")"
