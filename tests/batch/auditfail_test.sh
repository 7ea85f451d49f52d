#!/usr/bin/env bash
# Fail closed when the audit log cannot be written (DESIGN.md "Audit"; docs/API.md).
#
# The server runs under a small file-size limit (RLIMIT_FSIZE, `ulimit -f`), so after a
# few batches the audit write fails the way a full disk or a quota does (EFBIG). Then:
#   - the server stays up (the limit's SIGXFSZ must not kill it),
#   - every later token request is refused with 503 temporarily_unavailable,
#   - /readyz answers 503 and names the audit failure, /healthz still answers,
#   - every credential a client received is in the log, and the log's complete lines
#     verify (a torn last line is what a crash would leave too).
# AUDITFAIL_FSYNC picks the fsync policy (default batch: RWF_DSYNC writes through io_uring);
# auditfail_inline_test.sh runs this with `none`, where the worker thread writes itself.
source "$SRC_DIR/tests/net/lib.sh"

setup_env "fsync ${AUDITFAIL_FSYNC:-batch}"
LIMIT_KIB=16
start_server_fsize "$LIMIT_KIB"
curl -sf "$BASE/readyz" | grep -qx ready || fail "/readyz is not ready at start"
ok "server up under a ${LIMIT_KIB} KiB file-size limit"

# Exchange until the log is full; every answer is either a credential or a 503.
exchange_until_503
[ -n "$got503" ] || fail "200 requests and the audit log never failed (limit not applied?)"
n_issued=$(wc -l < "$T/issued")
[ "$n_issued" -ge 1 ] || fail "no credential was issued before the log filled"
ok "issuance stopped with 503 after $n_issued credentials"

kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died when its audit write failed"
ok "server still running"

# Fail closed stays closed: more requests, both profiles, keep failing.
for aud in payments-db cache; do
  r=$(exchange "$T/payments.jwt" "$aud")
  [ "${r%% *}" = 503 ] || fail "after the audit failure, $aud got: $r"
done
ok "later requests of both profiles refused"

code=$(curl -s -o "$T/ready" -w '%{http_code}' "$BASE/readyz")
[ "$code" = 503 ] || fail "/readyz answered $code after the audit failure"
grep -qi 'audit' "$T/ready" || fail "/readyz does not name the audit failure: $(cat "$T/ready")"
ok "/readyz 503: $(head -c 200 "$T/ready")"
curl -sf "$BASE/healthz" >/dev/null || fail "/healthz does not answer"
grep -q 'audit_write_failed' "$T/server.err" || fail "no audit_write_failed log line"
ok "/healthz answers; the failure is logged"

stop_server || true

# Every complete line verifies; every credential the client received is in the log.
"$IDMINT" jwks --dir "$T/keys" > "$T/jwks.json"
size=$(stat -c %s "$T/audit.log")
[ "$size" -le $((LIMIT_KIB * 1024)) ] || fail "log is $size bytes, over the limit"
# Keep the complete (newline-terminated) lines only.
python3 - "$T/audit.log" "$T/complete.log" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
cut = data.rfind(b'\n') + 1
open(sys.argv[2], 'wb').write(data[:cut])
print(f"{cut} of {len(data)} bytes are complete lines")
PY
"$IDMINT" audit verify "$T/complete.log" --jwks "$T/jwks.json" > "$T/verify.out" 2>&1 ||
  fail "complete lines do not verify: $(cat "$T/verify.out")"
ok "complete lines verify: $(tail -1 "$T/verify.out")"
while read -r tok; do
  jti=$("$IDMINT" token inspect "$tok" 2>/dev/null | sed -n 's/.*"jti": *"\([^"]*\)".*/\1/p' | head -1)
  [ -n "$jti" ] || fail "cannot read the jti of an issued token"
  grep -q "\"jti\":\"$jti\"" "$T/complete.log" || fail "issued credential $jti is not in the log"
done < "$T/issued"
ok "all $n_issued issued credentials are in the log"

# A restart without the limit cuts the torn tail and issues again on an intact chain.
start_server
grep -q 'recovered\|torn' "$T/server.err" || echo "note: no torn-tail message at restart"
r=$(exchange "$T/payments.jwt" payments-db)
[ "${r%% *}" = 200 ] || fail "after restart: $r"
stop_server || fail "server did not exit cleanly"
"$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" > "$T/verify2.out" 2>&1 ||
  fail "log after restart does not verify: $(cat "$T/verify2.out")"
ok "restart cut the torn tail and issued again: $(tail -1 "$T/verify2.out")"
