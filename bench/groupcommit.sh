#!/usr/bin/env bash
# Audit writes and fdatasyncs per line, and req/s, of idmint with several worker threads
# under closed-loop load (docs/PERFORMANCE.md, "Group commit across threads"). For each
# binary in IDMINT (space-separated: e.g. a build before and after a change, measured
# interleaved, ROUNDS times): a fresh server, `threads GC_THREADS`, `fsync GC_FSYNC`,
# idmload -c 16 -m 32 closed loop for BENCH_DURATION after a 1 s warm-up, on the batch
# profile; then /metrics' idmint_audit_writes_total and idmint_audit_syncs_total against
# the lines the log gained. Server on SERVER_CPUS, idmload on CLIENT_CPUS.
# Environment: IDMINT (binaries), IDMLOAD (default next to the first: ../bench/idmload),
# BENCH_DURATION (default 3s), GC_THREADS (default 2), GC_FSYNC (default batch),
# ROUNDS (default 1), SERVER_CPUS (default 0-1), CLIENT_CPUS (default 1).
set -euo pipefail
: "${IDMINT:?IDMINT must name the idmint binary (or several, space-separated)}"
read -r -a BINS <<< "$IDMINT"
IDMLOAD=${IDMLOAD:-$(dirname "${BINS[0]}")/../bench/idmload}
DUR=${BENCH_DURATION:-3s}
THREADS=${GC_THREADS:-2}
FSYNC=${GC_FSYNC:-batch}
SERVER_CPUS=${SERVER_CPUS:-0-$(( $(nproc) > 1 ? 1 : 0 ))}
CLIENT_CPUS=${CLIENT_CPUS:-$( [ "$(nproc)" -gt 1 ] && echo 1 || echo 0)}
for t in taskset curl python3; do
  command -v "$t" >/dev/null || { echo "groupcommit.sh: $t is missing, skipping"; exit 0; }
done
[ -x "$IDMLOAD" ] || { echo "groupcommit.sh: $IDMLOAD is not built, skipping"; exit 0; }
T=$(mktemp -d /tmp/idmint-groupcommit.XXXXXX)
SP=""
cleanup() { [ -n "$SP" ] && { kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; }; rm -rf "$T"; }
trap cleanup EXIT
source "$(cd "$(dirname "$0")" && pwd)/lib.bash"
IDMINT=${BINS[0]}  # bench_setup's keys and tokens
P=$(bench_port)
bench_setup
bench_conf "$T/idmint.conf" "$P" "$THREADS" "$FSYNC"
HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$SP/stat"; }
metric() { curl -s "http://127.0.0.1:$P/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

echo "idmload -c 16 -m 32 -D $DUR (warm-up 1s), batch profile; idmint threads $THREADS, fsync $FSYNC, cores $SERVER_CPUS; idmload cores $CLIENT_CPUS; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "srv us/req: the server's CPU (user+sys, all threads) per request, warm-up included"
echo "| binary | req/s | srv us/req | p50 ms | p99 ms | lines | writes | syncs | lines per write | (writes+syncs) per line | non-2xx, errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for _ in $(seq 1 "${ROUNDS:-1}"); do
  for bin in "${BINS[@]}"; do
    rm -f "$T/audit.log"
    taskset -c "$SERVER_CPUS" "$bin" serve --config "$T/idmint.conf" 2> "$T/idmint.err" &
    SP=$!
    bench_wait_up "http://127.0.0.1:$P/healthz" groupcommit.sh || { cat "$T/idmint.err" >&2; exit 1; }
    c0=$(ticks) l0=$(wc -l < "$T/audit.log") w0=$(metric idmint_audit_writes_total) s0=$(metric idmint_audit_syncs_total)
    taskset -c "$CLIENT_CPUS" "$IDMLOAD" -c 16 -m 32 -D "$DUR" --warm-up 1s --json \
      -d "$T/form-batch" -H 'content-type: application/x-www-form-urlencoded' \
      "http://127.0.0.1:$P/v1/token" > "$T/last.json" 2> "$T/last.err" || true
    c1=$(ticks) l1=$(wc -l < "$T/audit.log") w1=$(metric idmint_audit_writes_total) s1=$(metric idmint_audit_syncs_total)
    kill "$SP"; wait "$SP" 2>/dev/null || true; SP=""
    python3 - "$T/last.json" "$bin" $((l1 - l0)) $((w1 - w0)) $((s1 - s0)) "$c0" "$c1" "$HZ" <<'PY' || echo "| $bin | idmload failed: $(head -c 200 "$T/last.err") |"
import json, sys
a = sys.argv
r = json.load(open(a[1])); q = r["requests"]; l = r["latency_ms"]
lines, writes, syncs = int(a[3]), int(a[4]), int(a[5])
n = q["completed"] + q["warmup"]
cpu = (float(a[7]) - float(a[6])) / float(a[8])
bad = q["completed"] - r["status"]["2xx"] + r["errors"]["total"] + q["unfinished"]
print(f"| {a[2]} | {r['rate']:.0f} | {1e6 * cpu / max(n, 1):.2f} | {l['p50']:.3f} | {l['p99']:.3f} | {lines} | {writes} | {syncs} | "
      f"{lines / max(writes, 1):.2f} | {(writes + syncs) / max(lines, 1):.3f} | {bad} |")
PY
  done
done
