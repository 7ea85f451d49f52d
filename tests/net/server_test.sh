#!/usr/bin/env bash
# The real server on a free port, driven by real clients: curl over HTTP/1.1 and HTTP/2
# (prior knowledge), nghttp; every endpoint and every documented answer of the token
# exchange; the offline `token exchange`; SIGHUP reload (good and broken); SIGTERM drain.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
setup_env
start_server

# --- health, readiness, metrics, discovery, JWKS over both protocols
for proto in --http1.1 --http2-prior-knowledge; do
  [ "$(curl -s $proto "$BASE/healthz")" = ok ] || fail "healthz $proto"
  [ "$(curl -s $proto "$BASE/readyz")" = ready ] || fail "readyz $proto"
  grep -q "\"issuer\":\"$BASE\"" <<< "$(curl -s $proto "$BASE/.well-known/openid-configuration")" || fail "discovery $proto"
  grep -q '"kty":"OKP"' <<< "$(curl -s $proto "$BASE/.well-known/jwks.json")" || fail "jwks $proto"
  [ "$(curl -s -o /dev/null -w '%{http_code}' $proto "$BASE/nope")" = 404 ] || fail "404 $proto"
  [ "$(curl -s -o /dev/null -w '%{http_code}' $proto -X DELETE "$BASE/v1/token")" = 405 ] || fail "405 $proto"
done
grep -q '^2' <<< "$(curl -s --http2-prior-knowledge -o /dev/null -w '%{http_version}' "$BASE/healthz")" || fail "not h2"
ok "health, readiness, discovery, JWKS, 404/405 over HTTP/1.1 and h2c"

# --- token exchange: allow, and each documented refusal
r=$(exchange "$T/payments.jwt" payments-db)
case "$r" in "200 "*'"token_type":"Bearer"'*'"scope":"db.read db.write"'*) ;; *) fail "allow: $r" ;; esac
tok=$(sed 's/.*"access_token":"\([^"]*\)".*/\1/' "$T/resp")
curl -s "$BASE/.well-known/jwks.json" > "$T/our.jwks"
v=$("$IDMINT" token verify --jwks "$T/our.jwks" --audience spiffe://t/payments/db --issuer "$BASE" "$tok")
grep -q '"sub": *"spiffe://t/payments/api"' <<< "$v" || fail "minted token does not verify"
r=$(exchange "$T/payments.jwt" spiffe://t/payments/db --http2-prior-knowledge)
case "$r" in "200 "*) ;; *) fail "allow by audience URI over h2: $r" ;; esac
ok "exchange allowed (form, h1 and h2, by name and audience URI); token verifies against JWKS"

# batch profile (EdDSA-MTB1): one signature per batch, Merkle proof per token
r=$(exchange "$T/payments.jwt" cache --http2-prior-knowledge)
case "$r" in "200 "*) ;; *) fail "batch profile: $r" ;; esac
btok=$(sed 's/.*"access_token":"\([^"]*\)".*/\1/' "$T/resp")
grep -q 'EdDSA-MTB1' <<< "$("$IDMINT" token inspect "$btok" 2>/dev/null)" || fail "not a batch-profile token"
"$IDMINT" token verify --jwks "$T/our.jwks" --audience https://cache.t "$btok" >/dev/null ||
  fail "batch-profile token does not verify"
ok "batch-profile credential verifies against the JWKS"

r=$(exchange "$T/sandbox.jwt" payments-db)
case "$r" in '403 {"error":"access_denied","error_description":"forbidden by rule no-sandbox"}') ;; *) fail "forbid: $r" ;; esac
r=$(exchange "$T/web.jwt" payments-db)
case "$r" in '403 {"error":"access_denied",'*) ;; *) fail "default deny: $r" ;; esac
# a denial whose requested scope is too large for an audit entry once escaped (1000
# control bytes: 6000 escaped) is still recorded, without the scope (found by fuzzing)
for i in $(seq 1000); do printf '\001'; done > "$T/bigscope"
r=$(exchange "$T/web.jwt" payments-db --data-urlencode "scope@$T/bigscope")
case "$r" in '403 {"error":"access_denied",'*) ;; *) fail "default deny, large scope: $r" ;; esac
r=$(exchange "$T/rogue.jwt" payments-db)
case "$r" in '400 {"error":"invalid_grant",'*) ;; *) fail "bad signature: $r" ;; esac
echo -n "not-a-jwt" > "$T/junk"
r=$(exchange "$T/junk" payments-db)
case "$r" in '400 {"error":"invalid_grant",'*) ;; *) fail "junk token: $r" ;; esac
r=$(exchange "$T/payments.jwt" no-such-target)
case "$r" in '400 {"error":"invalid_target","error_description":"unknown target no-such-target"}') ;; *) fail "unknown target: $r" ;; esac
r=$(curl -s -w ' %{http_code}' "$BASE/v1/token" -d grant_type=password)
case "$r" in '{"error":"invalid_request",'*' 400') ;; *) fail "malformed: $r" ;; esac
r=$(curl -s -w ' %{http_code}' "$BASE/v1/token" -d "grant_type=$GT&grant_type=$GT")
case "$r" in *'appears more than once'*' 400') ;; *) fail "repeated param: $r" ;; esac
r=$(curl -s -w ' %{http_code}' "$BASE/v1/token" -H 'Content-Type: text/plain' -d x)
case "$r" in '{"error":"invalid_request",'*' 400') ;; *) fail "content type: $r" ;; esac
ok "deny (forbid, default), bad subject token, unknown target, malformed: documented answers"

# scope: requesting an ungranted scope is denied; requesting a granted subset is kept
r=$(exchange "$T/payments.jwt" payments-db --data-urlencode "scope=db.admin")
case "$r" in '403 '*) ;; *) fail "scope deny: $r" ;; esac
r=$(exchange "$T/payments.jwt" payments-db --data-urlencode "scope=db.read")
case "$r" in '200 '*'"scope":"db.read"'*) ;; *) fail "scope subset: $r" ;; esac
ok "scope narrowing"

# JSON body, chunked body, Expect: 100-continue (curl sends it for large bodies)
j=$(printf '{"grant_type":"%s","subject_token_type":"%s","subject_token":"%s","audience":"payments-db"}' \
     "$GT" "$JWT_TYPE" "$(cat "$T/payments.jwt")")
r=$(curl -s -w ' %{http_code}' "$BASE/v1/token" -H 'Content-Type: application/json' -d "$j")
case "$r" in *'"access_token"'*' 200') ;; *) fail "json body: $r" ;; esac
r=$(curl -s -w ' %{http_code}' "$BASE/v1/token" -H 'Content-Type: application/json' \
     -H 'Transfer-Encoding: chunked' -d "$j")
case "$r" in *'"access_token"'*' 200') ;; *) fail "chunked body: $r" ;; esac
r=$(curl -s -w ' %{http_code}' "$BASE/v1/token" -H 'Content-Type: application/json' \
     -H 'Expect: 100-continue' -d "$j")
case "$r" in *'"access_token"'*' 200') ;; *) fail "expect 100-continue: $r" ;; esac
ok "JSON, chunked and Expect: 100-continue bodies"

# source_ip from X-Forwarded-For is honoured from a trusted proxy (127.0.0.1/32)
r=$(exchange "$T/web.jwt" reports)
case "$r" in '403 '*) ;; *) fail "web without office ip: $r" ;; esac
r=$(exchange "$T/web.jwt" reports -H 'X-Forwarded-For: 203.0.113.9, 10.1.2.3')
case "$r" in '200 '*) ;; *) fail "trusted proxy XFF: $r" ;; esac
ok "X-Forwarded-For from a trusted proxy feeds the policy's source_ip"

# ... and only from a trusted proxy: from 127.0.0.2 (not in trusted_proxies) both headers
# are ignored, so the same request is denied
r=$(exchange "$T/web.jwt" reports --interface 127.0.0.2 -H 'X-Forwarded-For: 10.1.2.3')
case "$r" in '403 '*) ;; *) fail "XFF from an untrusted peer was honoured: $r" ;; esac
r=$(exchange "$T/payments.jwt" vault)
case "$r" in '403 '*) ;; *) fail "vault without posture: $r" ;; esac
r=$(exchange "$T/payments.jwt" vault -H 'X-Idmint-Posture: disk=encrypted, patch_level=2')
case "$r" in '403 '*) ;; *) fail "vault with low patch level: $r" ;; esac
r=$(exchange "$T/payments.jwt" vault -H 'X-Idmint-Posture: disk=encrypted, patch_level=4')
case "$r" in '200 '*) ;; *) fail "vault with posture from a trusted proxy: $r" ;; esac
r=$(exchange "$T/payments.jwt" vault --interface 127.0.0.2 -H 'X-Idmint-Posture: disk=encrypted, patch_level=4')
case "$r" in '403 '*) ;; *) fail "posture from an untrusted peer was honoured: $r" ;; esac
ok "X-Idmint-Posture feeds posture.NAME from a trusted proxy; both headers ignored from others"

# --- introspection
r=$(curl -s "$BASE/v1/introspect" --data-urlencode "token=$tok")
case "$r" in '{"active":true,'*'"sub":"spiffe://t/payments/api"'*) ;; *) fail "introspect: $r" ;; esac
r=$(curl -s "$BASE/v1/introspect" --data-urlencode "token=$(cat "$T/payments.jwt")")
[ "$r" = '{"active":false}' ] || fail "introspect foreign token: $r"
ok "introspection (RFC 7662)"

# --- gateway check
h=$(curl -s -D - -o /dev/null "$BASE/v1/authz/anything" -H "X-Idmint-Subject-Token: $(cat "$T/payments.jwt")" \
     -H 'X-Idmint-Target: payments-db')
grep -q '^HTTP/1.1 200' <<< "$h" || fail "authz allow: $h"
grep -qi '^x-idmint-authorization: Bearer ey' <<< "$h" || fail "authz header: $h"
h=$(curl -s -D - -o /dev/null --http2-prior-knowledge "$BASE/v1/authz" \
     -H "Authorization: Bearer $(cat "$T/sandbox.jwt")" -H 'X-Idmint-Target: payments-db')
grep -q '^HTTP/2 403' <<< "$h" || fail "authz deny: $h"
grep -qi 'x-idmint-token' <<< "$h" && fail "credential on a deny"
ok "gateway check /v1/authz (allow with credential headers, deny 403 without)"

# --- nghttp (a second, independent HTTP/2 client)
if command -v nghttp >/dev/null; then
  nghttp -n -s "$BASE/healthz" "$BASE/.well-known/jwks.json" "$BASE/readyz" > "$T/nghttp.out" || fail "nghttp"
  [ "$(grep -cE '^ +[0-9]+ +\+[0-9.]+(us|ms) .* 200 ' "$T/nghttp.out")" = 3 ] || fail "nghttp stats: $(cat "$T/nghttp.out")"
  printf 'grant_type=%s&subject_token_type=%s&audience=payments-db&subject_token=%s' \
      "$GT" "$JWT_TYPE" "$(cat "$T/payments.jwt")" > "$T/form"
  nghttp -v "$BASE/v1/token" -d "$T/form" -H 'content-type: application/x-www-form-urlencoded' \
      > "$T/nghttp2.out" 2>&1 || fail "nghttp post"
  grep -q ':status: 200' "$T/nghttp2.out" || fail "nghttp exchange: $(tail -5 "$T/nghttp2.out")"
  ok "nghttp GETs and a token exchange"
  # More jwt-profile exchanges at once than one loop turn signs (IDM_NET_TURN_SIGNS): the
  # rest of the connection's input waits for the next turns, and every one is answered.
  nghttp -n -s -m 100 "$BASE/v1/token" -d "$T/form" \
      -H 'content-type: application/x-www-form-urlencoded' > "$T/nghttp3.out" 2>&1 || fail "nghttp x100"
  [ "$(grep -cE ' 200 +[0-9]+ /v1/token$' "$T/nghttp3.out")" = 100 ] ||
    fail "100 concurrent exchanges on one h2 connection: $(tail -5 "$T/nghttp3.out")"
  ok "100 concurrent exchanges on one HTTP/2 connection, across several loop turns"
fi
# The same over 60 HTTP/1.1 connections at once.
: > "$T/par.cfg"
for _ in $(seq 60); do printf 'url = "%s/v1/token"\noutput = "/dev/null"\n' "$BASE" >> "$T/par.cfg"; done
printf 'grant_type=%s&subject_token_type=%s&audience=payments-db&subject_token=%s' \
    "$GT" "$JWT_TYPE" "$(cat "$T/payments.jwt")" > "$T/form1"
codes=$(curl -s -Z --parallel-max 60 --http1.1 -K "$T/par.cfg" -w '%{http_code}\n' \
    -H 'content-type: application/x-www-form-urlencoded' --data-binary @"$T/form1" 2>/dev/null | sort | uniq -c)
[ "$(awk '{print $1, $2}' <<< "$codes")" = "60 200" ] || fail "60 parallel HTTP/1.1 exchanges: $codes"
ok "60 parallel HTTP/1.1 exchanges, across several loop turns"

# --- metrics reflect what happened
m=$(curl -s "$BASE/metrics")
grep -q '^idmint_http_requests_total{endpoint="token",outcome="ok"} [1-9]' <<< "$m" || fail "metrics ok"
grep -q '^idmint_http_requests_total{endpoint="token",outcome="access_denied"} [1-9]' <<< "$m" || fail "metrics denied"
grep -q '^idmint_tokens_minted_total{target="payments-db"} [1-9]' <<< "$m" || fail "metrics minted"
grep -q '^idmint_policy_decisions_total{decision="deny_forbid"} [1-9]' <<< "$m" || fail "metrics decisions"
grep -q '^idmint_attest_cache_total{result="hit"} [1-9]' <<< "$m" || fail "metrics attest cache"
grep -q '^idmint_http_request_duration_seconds_bucket{le="+Inf"} [1-9]' <<< "$m" || fail "metrics histogram"
ok "metrics: requests by endpoint/outcome, minted by target, decisions, cache hits, latency"

# --- offline exchange gives the same answers
v=$("$IDMINT" token exchange --config "$T/idmint.conf" --subject-token @"$T/payments.jwt" \
  --audience payments-db)
grep -q '"token_type":"Bearer"' <<< "$v" || fail "offline allow"
set +e
out=$("$IDMINT" token exchange --config "$T/idmint.conf" --subject-token @"$T/sandbox.jwt" --audience payments-db 2>&1)
rc=$?
set -e
[ $rc = 1 ] || fail "offline deny exit $rc"
grep -q 'access_denied' <<< "$out" || fail "offline deny: $out"
ok "idmint token exchange (offline) allow and deny"

# --- SIGHUP: a broken config is refused and the old one keeps serving
cp "$T/idmint.conf" "$T/good.conf"
echo 'permit "broken" { client trust == }' >> "$T/idmint.conf"
kill -HUP "$SERVER_PID"
for _ in $(seq 1 40); do grep -q reload_refused "$T/server.err" && break; sleep 0.05; done
grep -q '"event":"reload_refused"' "$T/server.err" || fail "broken reload not logged"
r=$(exchange "$T/payments.jwt" payments-db)
case "$r" in "200 "*) ;; *) fail "after refused reload: $r" ;; esac
# a good config with a new rule takes effect
sed 's/target "payments-db"$/target "payments-db", "reports"/' "$T/good.conf" > "$T/idmint.conf"
r=$(exchange "$T/payments.jwt" reports)
case "$r" in "403 "*) ;; *) fail "before reload: $r" ;; esac
kill -HUP "$SERVER_PID"
for _ in $(seq 1 40); do grep -q '"event":"reloaded"' "$T/server.err" && break; sleep 0.05; done
r=$(exchange "$T/payments.jwt" reports)
case "$r" in "200 "*) ;; *) fail "after reload: $r" ;; esac
ok "SIGHUP reload: broken config refused (old keeps serving), good config applied"
# a reload that changes a start-only setting applies the rest and names what it kept
grep -q '"event":"reload_partial"' "$T/server.err" && fail "reload_partial without a change"
sed -i 's/^  threads .*/  threads         1/' "$T/idmint.conf"
n=$(grep -c '"event":"reloaded"' "$T/server.err")
kill -HUP "$SERVER_PID"
for _ in $(seq 1 40); do [ "$(grep -c '"event":"reloaded"' "$T/server.err")" -gt "$n" ] && break; sleep 0.05; done
grep '"event":"reload_partial"' "$T/server.err" | grep -q '"kept":"threads"' ||
  fail "start-only change not named: $(grep reload_ "$T/server.err" | tail -2)"
r=$(exchange "$T/payments.jwt" reports)
case "$r" in "200 "*) ;; *) fail "after partial reload: $r" ;; esac
ok "SIGHUP reload of a start-only setting (threads): applied the rest, warned reload_partial"
# a reload keeps the attestation cache of trust blocks it did not change: no verification
# again (the old server cleared every cache at each reload)
misses() { curl -s "$BASE/metrics" | sed -n 's/^idmint_attest_cache_total{result="miss"} //p'; }
for _ in $(seq 1 16); do exchange "$T/payments.jwt" payments-db >/dev/null; done  # every thread
m0=$(misses)
n=$(grep -c '"event":"reloaded"' "$T/server.err")
kill -HUP "$SERVER_PID"
for _ in $(seq 1 40); do [ "$(grep -c '"event":"reloaded"' "$T/server.err")" -gt "$n" ] && break; sleep 0.05; done
for _ in $(seq 1 8); do
  r=$(exchange "$T/payments.jwt" payments-db)
  case "$r" in "200 "*) ;; *) fail "after the cache-keeping reload: $r" ;; esac
done
m1=$(misses)
[ -n "$m0" ] && [ "$m0" = "$m1" ] || fail "attestation cache misses went from $m0 to $m1 across a reload"
ok "SIGHUP reload kept the attestation cache ($m1 misses before and after)"

# --- every log line is one JSON object
python3 - "$T/server.err" <<'PY' || fail "log lines are not JSON"
import json, sys
for line in open(sys.argv[1]):
    json.loads(line)
PY

# --- SIGTERM drains and exits 0
stop_server || fail "SIGTERM exit status $?"
grep -q '"event":"stopped"' "$T/server.err" || fail "no stopped log line"
ok "SIGTERM: drained, exit 0"

# every decision (allows and denials) is in the audit transparency log, and it verifies
"$IDMINT" audit verify "$T/audit.log" --jwks "$T/our.jwks" > "$T/audit.out" 2>&1 ||
  fail "audit verify: $(cat "$T/audit.out")"
grep -q '"d":"deny"' "$T/audit.log" || fail "denials not audited"
grep -q '"d":"deny".*requested scope of 1000 bytes not recorded' "$T/audit.log" ||
  fail "denial with a scope too large for its audit entry not recorded"
grep -q '"d":"allow"' "$T/audit.log" || fail "allows not audited"
ok "audit log: allows and denials recorded; chain, signatures and entries verify"
