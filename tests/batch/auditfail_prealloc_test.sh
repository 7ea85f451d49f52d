#!/usr/bin/env bash
# Fail closed when preallocating the audit log fails (server.audit_preallocate; the
# zeroing thread's write fails the way a full disk does). The server runs under a
# file-size limit (`ulimit -f`) a little over its 1 MiB lead: the zeros of the first
# mebibyte fit, so it starts ready; the first line makes the zeroer extend the file past
# the limit (EFBIG). Then:
#   - the server stays up; later token requests are refused with 503;
#   - /readyz answers 503 and names the preallocation failure;
#   - every credential a client received is in the log, and the log verifies with its
#     zero tail;
#   - a restart without the limit issues again, and SIGTERM truncates the log to its
#     last line.
source "$SRC_DIR/tests/net/lib.sh"

setup_env "audit_preallocate 1"
LIMIT_KIB=1100
start_server_fsize "$LIMIT_KIB"
sleep 0.3 # the first mebibyte of zeros
curl -sf "$BASE/readyz" | grep -qx ready || fail "/readyz is not ready at start"
ok "server up with a 1 MiB preallocated log under a ${LIMIT_KIB} KiB file-size limit"

exchange_until_503 0.01
[ -n "$got503" ] || fail "200 requests and the preallocation never failed (limit not applied?)"
n_issued=$(wc -l < "$T/issued")
ok "issuance stopped with 503 after $n_issued credentials"
kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died when preallocation failed"

code=$(curl -s -o "$T/ready" -w '%{http_code}' "$BASE/readyz")
[ "$code" = 503 ] || fail "/readyz answered $code after the preallocation failure"
grep -q 'preallocation' "$T/ready" || fail "/readyz does not name the preallocation failure: $(cat "$T/ready")"
ok "/readyz 503: $(head -c 200 "$T/ready")"
r=$(exchange "$T/payments.jwt" payments-db)
[ "${r%% *}" = 503 ] || fail "after the failure: $r"

stop_server || true
"$IDMINT" jwks --dir "$T/keys" > "$T/jwks.json"
"$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" > "$T/verify.out" 2>&1 ||
  fail "the log does not verify: $(cat "$T/verify.out")"
ok "log verifies: $(tail -1 "$T/verify.out")"
while read -r tok; do
  jti=$("$IDMINT" token inspect "$tok" 2>/dev/null | sed -n 's/.*"jti": *"\([^"]*\)".*/\1/p' | head -1)
  [ -n "$jti" ] || fail "cannot read the jti of an issued token"
  grep -aq "\"jti\":\"$jti\"" "$T/audit.log" || fail "issued credential $jti is not in the log"
done < "$T/issued"
ok "all $n_issued issued credentials are in the log"

start_server
sleep 0.3
r=$(exchange "$T/payments.jwt" payments-db)
[ "${r%% *}" = 200 ] || fail "after restart: $r"
size=$(stat -c %s "$T/audit.log")
[ "$size" -gt $((1024 * 1024)) ] || fail "restarted server did not preallocate (size $size)"
stop_server || fail "server did not exit cleanly"
[ "$(tail -c 1 "$T/audit.log" | od -An -c | tr -d ' ')" = '\n' ] ||
  fail "SIGTERM did not truncate the log to its last line"
"$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" > "$T/verify2.out" 2>&1 ||
  fail "log after restart does not verify: $(cat "$T/verify2.out")"
ok "restart issued again; SIGTERM truncated the log to $(stat -c %s "$T/audit.log") bytes: $(tail -1 "$T/verify2.out")"
