#!/usr/bin/env bash
# The hold path of audit_preallocate, end to end: a line whose range the zeroer has not
# written yet must wait (idm_audit_may_write), never be overwritten by zeros, and its
# answers must still come. IDMINT_FAULT_ZERO_DELAY_MS slows the zeroer (a test-only fault
# hook in engine/batch/audit.c) so that with a 1 MiB lead the log's end runs into the range
# being zeroed under load. For one worker thread (grouped writes) and for two (a write per
# line): every answer is 200, the waits are counted in /metrics, a clean stop truncates
# the log to its last line, and the whole log verifies. No timing assertions.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
LOAD=${IDMLOAD:-$BUILD_DIR/bench/idmload}
[ -x "$LOAD" ] || { echo "skip: $LOAD is not built"; exit 77; }

setup_env "audit_preallocate 1"
printf 'grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Ajwt&audience=cache&subject_token=%s' \
  "$(cat "$T/payments.jwt")" > "$T/form-batch"
"$IDMINT" jwks --dir "$T/keys" > "$T/jwks.json"

for threads in 1 2; do
  rm -f "$T/audit.log"
  IDMINT_FAULT_ZERO_DELAY_MS=150 start_server --threads "$threads"
  waits=0
  for round in 1 2 3 4 5 6; do
    rc=0
    "$LOAD" -c 8 -m 16 -r 0 -D 1 --drain 20 --json -d "$T/form-batch" \
      -H 'content-type: application/x-www-form-urlencoded' "$BASE/v1/token" \
      > "$T/load.json" 2> "$T/load.err" || rc=$?
    [ "$rc" = 0 ] || fail "idmload ($threads threads): exit $rc: $(cat "$T/load.err")"
    python3 - "$T/load.json" <<'PY' || fail "$threads threads: $(cat "$T/load.json")"
import json, sys
r = json.load(open(sys.argv[1]))
s = r.get("status", {})
# 503 is the documented answer while every batch slot awaits its (held) audit write.
if {k for k, v in s.items() if v and k not in ("2xx", "5xx")} or not s.get("2xx") or \
   r.get("errors", {}).get("total", 0):
    sys.exit(f"unexpected answers or errors: {r}")
PY
    waits=$(curl -s "$BASE/metrics" | awk '/^idmint_audit_prealloc_waits_total /{print $2}')
    [ "${waits:-0}" -gt 0 ] && break
  done
  [ "${waits:-0}" -gt 0 ] || fail "$threads threads: the zeroer never fell behind (no prealloc waits)"
  r=$(exchange "$T/payments.jwt" payments-db)
  [ "${r%% *}" = 200 ] || fail "$threads threads: a request after the held writes: $r"
  curl -sf "$BASE/readyz" | grep -qx ready || fail "$threads threads: /readyz: $(curl -s "$BASE/readyz")"
  ok "$threads thread(s): $waits held audit writes, every answer 2xx (or 503), next request served"
  stop_server || fail "$threads threads: server did not exit cleanly"
  [ "$(tail -c 1 "$T/audit.log" | od -An -tx1 | tr -d ' ')" = 0a ] ||
    fail "$threads threads: the log was not truncated to its last line at stop"
  "$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" > "$T/verify.out" 2>&1 ||
    fail "$threads threads: audit log does not verify: $(cat "$T/verify.out")"
  ok "$threads thread(s): $(tail -1 "$T/verify.out")"
done
