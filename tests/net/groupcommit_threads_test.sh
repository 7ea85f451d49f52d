#!/usr/bin/env bash
# Audit group commit ACROSS worker threads (engine/net/server.c: write_kick, group_wake;
# engine/batch/audit.c: the write queue), with `threads 2` and the default `fsync batch`.
# Behaviour, not timing:
#   1. a light load (one connection, two streams, closed loop): batches are sealed as soon
#      as the log's audit I/O is idle ("idle" seals), also with several threads (before,
#      only one thread did);
#   2. under saturation (8 connections x 32 streams, closed loop) the lines of both threads
#      leave in shared groups: fewer audit writes than lines in the log, i.e. more than one
#      line per write (with one write per line and thread, as before, writes = lines);
#   3. one writer at a time, in file order: every group starts after all before it is
#      synced, so each is written with RWF_DSYNC and no fdatasync is issued at all;
#   4. every answer is 200, the seals add up to the lines, the log verifies.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
LOAD=${IDMLOAD:-$BUILD_DIR/bench/idmload}
[ -x "$LOAD" ] || { echo "skip: $LOAD is not built"; exit 77; }

setup_env "fsync batch"
sed -i 's/^  threads .*/  threads 2/' "$T/idmint.conf"
grep -qx '  threads 2' "$T/idmint.conf" || fail "could not set threads 2"
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

# 1. light load. The seal gap scales with the threads' utilization, which a machine busy
# with other work raises (a thread waiting for a CPU counts as busy): up to 5 rounds.
for round in 1 2 3 4 5; do
  load light -c 1 -m 2 -D 1
  idle=$(seals idle)
  [ "${idle:-0}" -gt 0 ] && break
done
[ "${idle:-0}" -gt 0 ] || fail "light load, 2 threads: no batch sealed on an idle audit log"
ok "light load, 2 threads: $idle batches sealed as soon as the audit log was idle"

# 2. saturation: the lines written before this phase are subtracted
w0=$(metric idmint_audit_writes_total)
l0=$(wc -l < "$T/audit.log")
load heavy -c 8 -m 32 -D 2
w1=$(metric idmint_audit_writes_total)
l1=$(wc -l < "$T/audit.log")
writes=$((w1 - w0)) lines=$((l1 - l0))
[ "$writes" -gt 0 ] || fail "saturated: no audit write"
[ "$lines" -gt "$writes" ] ||
  fail "saturated, 2 threads: $writes audit writes for $lines lines: the threads' lines were not grouped"
ok "saturated, 2 threads: $lines lines in $writes writes ($(python3 -c "print(f'{$lines / $writes:.2f}')") lines per write)"

# 3. and 4.
total=0
for r in saturated idle gap single other; do total=$((total + $(seals "$r"))); done
syncs=$(metric idmint_audit_syncs_total)
stop_server || fail "server did not exit cleanly"
all=$(wc -l < "$T/audit.log")
[ "$total" = "$all" ] || fail "seals by reason add up to $total, the log has $all lines"
[ "$syncs" = 0 ] || fail "2 threads, fsync batch: $syncs fdatasyncs, expected every group written with RWF_DSYNC"
ok "$all lines, each sealed once; every group written with RWF_DSYNC, no fdatasync"
"$IDMINT" jwks --dir "$T/keys" > "$T/jwks.json"
"$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" > "$T/verify.out" 2>&1 ||
  fail "audit log does not verify: $(cat "$T/verify.out")"
ok "$(tail -1 "$T/verify.out")"
