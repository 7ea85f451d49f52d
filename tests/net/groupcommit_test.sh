#!/usr/bin/env bash
# Adaptive batching and audit group commit (engine/net/server.c: seal_due, write_kick),
# with the default `fsync batch`. Behaviour, not timing:
#   1. a light load (one connection, two streams, closed loop: a new request as soon as an
#      answer comes) on an otherwise idle server: once the audit I/O is idle the gathered
#      batch is sealed at once ("idle" seals), not held for the seal gap;
#   2. under saturation batches are sealed because the turn's budget was reached
#      ("saturated"), several lines may share one write;
#   3. for both: every seal is one audit line (the reasons add up to the lines on file),
#      every line was carried by some write, every answer is 200, the log verifies;
#   4. one worker thread (where lines are written in groups): every group starts after all
#      before it is synced, so each is written with RWF_DSYNC and no fdatasync is needed.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
LOAD=${IDMLOAD:-$BUILD_DIR/bench/idmload}
[ -x "$LOAD" ] || { echo "skip: $LOAD is not built"; exit 77; }

setup_env "fsync batch"
sed -i 's/^  threads .*/  threads 1/' "$T/idmint.conf"  # the grouped writes are one thread's
grep -qx '  threads 1' "$T/idmint.conf" || fail "could not set threads 1"
start_server
printf 'grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Ajwt&audience=cache&subject_token=%s' \
  "$(cat "$T/payments.jwt")" > "$T/form-batch"

metric() { curl -s "$BASE/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
seals() { metric "idmint_batch_seals_total{reason=\"$1\"}"; }
load() {  # NAME idmload-args...: closed loop, every answer must be 200
  local name=$1
  shift
  "$LOAD" "$@" --json -d "$T/form-batch" -H 'content-type: application/x-www-form-urlencoded' \
    "$BASE/v1/token" > "$T/$name.json" 2> "$T/$name.err" || fail "idmload $name: $(cat "$T/$name.err")"
  python3 - "$T/$name.json" "$name" <<'PY' || fail "$name: $(cat "$T/$name.json")"
import json, sys
r = json.load(open(sys.argv[1]))
s, e = r["status"], r["errors"]["total"]
if s.get("2xx", 0) == 0 or any(v for k, v in s.items() if k != "2xx") or e:
    sys.exit(f"non-200 answers or errors: {s}, {e} errors")
PY
}

# 1. light load: two streams on one connection (one thread). The seal gap scales with the
# thread's utilization, which a machine busy with other work raises (a thread waiting for a
# CPU counts as busy): up to 5 rounds.
for round in 1 2 3 4 5; do
  load light -c 1 -m 2 -D 1
  idle=$(seals idle) gap=$(seals gap) single=$(seals single)
  [ "${idle:-0}" -gt 0 ] && break
done
[ "${idle:-0}" -gt 0 ] || fail "light load: no batch sealed on an idle audit log (idle=$idle gap=$gap single=$single)"
ok "light load: $idle batches sealed as soon as the audit log was idle ($gap after the seal gap, $single single)"

# 2. saturation
load heavy -c 8 -m 32 -D 1
sat=$(seals saturated)
[ "${sat:-0}" -gt 0 ] || fail "saturated: no batch sealed for a full turn"
ok "saturated: $sat batches sealed for a full turn"

# 3. accounting and the log
total=0
for r in saturated idle gap single other; do total=$((total + $(seals "$r"))); done
writes=$(metric idmint_audit_writes_total)
syncs=$(metric idmint_audit_syncs_total)
stop_server || fail "server did not exit cleanly"
lines=$(wc -l < "$T/audit.log")
[ "$total" = "$lines" ] || fail "seals by reason add up to $total, the log has $lines lines"
[ "$writes" -gt 0 ] && [ "$writes" -le "$lines" ] || fail "$writes audit writes for $lines lines"
ok "$lines lines, sealed for the reasons counted, carried by $writes writes"
[ "$syncs" = 0 ] || fail "one thread, fsync batch: $syncs fdatasyncs, expected every group written with RWF_DSYNC"
ok "every group written with RWF_DSYNC, no fdatasync"
"$IDMINT" jwks --dir "$T/keys" > "$T/jwks.json"
"$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" > "$T/verify.out" 2>&1 ||
  fail "audit log does not verify: $(cat "$T/verify.out")"
ok "$(tail -1 "$T/verify.out")"
