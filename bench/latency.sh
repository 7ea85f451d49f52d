#!/usr/bin/env bash
# Latency of POST /v1/token under open-loop load, with idmload (docs/PERFORMANCE.md, "Load
# harness"). For each audit fsync policy and each profile (jwt, batch): a fresh idmint finds
# its maximum in closed loop (idmload -r 0, -c 16 -m 32), then, each on a fresh server, open
# loop at every fraction of that maximum; then h2o (one thread, 300-byte file) at the same
# open-loop rates, as the floor of client + kernel + machine. Server pinned to SERVER_CPUS,
# idmload to CLIENT_CPUS. Per run it prints the rates, latency from the intended send,
# the server's CPU per request, credentials per audit batch, responses per send(2), and
# /readyz afterwards.
# Environment: IDMINT (binary), IDMLOAD (default next to IDMINT: ../bench/idmload),
# BENCH_DURATION (default 3s), LATENCY_FSYNC (default "none batch"), LATENCY_AT (default
# "0.5 0.8"), SERVER_CPUS (default 0), CLIENT_CPUS (default 1, or 0 on one core).
set -euo pipefail
: "${IDMINT:?IDMINT must name the idmint binary}"
IDMLOAD=${IDMLOAD:-$(dirname "$IDMINT")/../bench/idmload}
DUR=${BENCH_DURATION:-3s}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-$( [ "$(nproc)" -gt 1 ] && echo 1 || echo 0)}
for t in taskset curl python3; do
  command -v "$t" >/dev/null || { echo "latency.sh: $t is missing, skipping"; exit 0; }
done
[ -x "$IDMLOAD" ] || { echo "latency.sh: $IDMLOAD is not built, skipping"; exit 0; }
T=$(mktemp -d /tmp/idmint-latency.XXXXXX)
SP=""
cleanup() { [ -n "$SP" ] && { kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; }; rm -rf "$T"; }
trap cleanup EXIT
source "$(cd "$(dirname "$0")" && pwd)/lib.bash"
port() { bench_port; }
HZ=$(getconf CLK_TCK)
P=$(port)
bench_setup
conf() { bench_conf "$T/idmint-$1.conf" "$P" 1 "$1"; }  # FSYNC: one worker thread

wait_up() { bench_wait_up "$1" latency.sh; }
start() {  # FSYNC
  rm -f "$T/audit.log"
  taskset -c "$SERVER_CPUS" "$IDMINT" serve --config "$T/idmint-$1.conf" 2> "$T/idmint.err" &
  SP=$!
  wait_up "http://127.0.0.1:$P/healthz" || { cat "$T/idmint.err" >&2; exit 1; }
}
stop() { kill "$SP"; wait "$SP" 2>/dev/null || true; SP=""; }
ticks() { awk '{print $14 + $15}' "/proc/$SP/stat"; }
sends() { curl -s "http://127.0.0.1:$P/metrics" | sed -n 's/^idmint_sends_total \([0-9]*\)/\1/p'; }

# one FSYNC PROFILE [-r RATE]: a fresh server, one idmload run; prints a row, keeps $T/last.json
one() {
  local f=$1 prof=$2
  shift 2
  start "$f"
  local c0 s0 b0 c1 s1 b1 ready
  c0=$(ticks) s0=$(sends) b0=$(wc -l < "$T/audit.log")
  taskset -c "$CLIENT_CPUS" "$IDMLOAD" -c 16 -m 32 -D "$DUR" --warm-up 1s --json "$@" \
    -d "$T/form-$prof" -H 'content-type: application/x-www-form-urlencoded' \
    "http://127.0.0.1:$P/v1/token" > "$T/last.json" 2> "$T/last.err" || true
  c1=$(ticks) s1=$(sends) b1=$(wc -l < "$T/audit.log")
  ready=$(curl -s "http://127.0.0.1:$P/readyz")
  stop
  python3 - "$T/last.json" "$c0" "$c1" "$s0" "$s1" "$b0" "$b1" "$HZ" "$prof" "$f" "$ready" <<'PY' || echo "| $prof | $f | idmload failed: $(head -c 200 "$T/last.err") |"
import json, sys
a = sys.argv
r = json.load(open(a[1])); q = r["requests"]; l = r["latency_ms"]
n = q["completed"] + q["warmup"]
cpu = (float(a[3]) - float(a[2])) / float(a[8])
sends = int(a[5]) - int(a[4]) - 1          # less the /metrics answer itself
batches = int(a[7]) - int(a[6])
bad = q["completed"] - r["status"]["2xx"] + r["errors"]["total"] + q["unfinished"]
tgt = "max" if r["mode"] == "closed" else f"{r['target_rate']:.0f}"
print(f"| {a[9]} | {a[10]} | {r['mode']} | {tgt} | {r['rate']:.0f} | {l['p50']:.3f} | {l['p99']:.3f} | "
      f"{l['p99_9']:.3f} | {q['late']} | {bad} | {1e6 * cpu / max(n, 1):.1f} | {n / max(batches, 1):.1f} | "
      f"{n / max(sends, 1):.1f} | {a[11]} |")
PY
}

echo "idmload -c 16 -m 32 -D $DUR (warm-up 1s); server cores $SERVER_CPUS (1 thread), idmload cores $CLIENT_CPUS; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "latency in ms from the intended send; srv us/req: server CPU (user+sys, all threads) per request; late: requests that found no free stream"
echo "| profile | fsync | mode | target req/s | achieved req/s | p50 | p99 | p99.9 | late | non-2xx, errors, unfinished | srv us/req | credentials per batch | responses per send | /readyz after |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
rates=()
for f in ${LATENCY_FSYNC:-none batch}; do
  conf "$f"
  for prof in jwt batch; do
    one "$f" "$prof"
    max=$(python3 -c "import json; print(json.load(open('$T/last.json'))['rate_2xx'])" 2>/dev/null || echo 0)
    python3 -c "import sys; sys.exit(float('$max') <= 0)" || continue   # no 2xx: nothing to measure at
    for at in ${LATENCY_AT:-0.5 0.8}; do
      r=$(python3 -c "print(max(1.0, $max * $at))")
      rates+=("$r")
      one "$f" "$prof" -r "$r"
    done
  done
done

# the floor: h2o serving a 300-byte file at the same open-loop rates
if command -v h2o >/dev/null; then
  HP=$(port)
  bench_h2o_conf "$T/h2o.conf" "$HP"
  taskset -c "$SERVER_CPUS" h2o -c "$T/h2o.conf" >/dev/null 2>&1 &
  SP=$!
  wait_up "http://127.0.0.1:$HP/body"
  for r in 0 "${rates[@]}"; do
    taskset -c "$CLIENT_CPUS" "$IDMLOAD" -c 16 -m 32 -D "$DUR" --warm-up 1s --json -r "$r" \
      "http://127.0.0.1:$HP/body" 2>/dev/null | python3 -c "
import json, sys
r = json.load(sys.stdin); q = r['requests']; l = r['latency_ms']
tgt = 'max' if r['mode'] == 'closed' else f\"{r['target_rate']:.0f}\"
print(f\"| h2o 300-byte file | - | {r['mode']} | {tgt} | {r['rate']:.0f} | {l['p50']:.3f} | {l['p99']:.3f} | {l['p99_9']:.3f} | {q['late']} | {q['completed'] - r['status']['2xx'] + r['errors']['total'] + q['unfinished']} | | | | |\")" ||
      echo "| h2o 300-byte file | - | -r $r: idmload failed | |"
  done
  stop
fi
