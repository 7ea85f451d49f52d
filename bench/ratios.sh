#!/usr/bin/env bash
# The served targets of issues 5 and 6 as interleaved rounds, so that each ratio compares
# two measurements taken seconds apart on the same core (docs/PERFORMANCE.md, "Interleaved
# ratios"). On a shared VM the speed of a core drifts by tens of percent over minutes; a
# ratio of two rows measured minutes apart (bench/h2load.sh) carries that drift, a ratio of
# neighbours in time mostly does not.
#
# One idmint (one worker thread, fsync BENCH_FSYNC, default batch) and one h2o (one thread,
# the 300-byte file) stay up, both pinned to SERVER_CPUS. Each round, in this order:
#   bare signing (bm_net BM_net_jwt_mint on the server's core), jwt-profile exchange (h2load),
#   bare signing again, batch-profile exchange (h2load), h2o (h2load), batch-profile
#   exchange (idmload), h2o (idmload)
# and prints per round: jwt req/CPU-s over the mean of the two bare-signing rates around it,
# and batch-profile req/CPU-s over h2o's in the same round (h2load, then idmload). Then the
# median, smallest and largest of each ratio over the rounds.
# Environment: IDMINT (binary), ROUNDS (default 5), BENCH_DURATION (default 3s),
# BENCH_FSYNC, SERVER_CPUS (default 0), CLIENT_CPUS (default 1), BM_NET, IDMLOAD.
set -euo pipefail
: "${IDMINT:?IDMINT must name the idmint binary}"
src=$(cd "$(dirname "$0")/.." && pwd)
DUR=${BENCH_DURATION:-3s}
ROUNDS=${ROUNDS:-5}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-$( [ "$(nproc)" -gt 1 ] && echo 1 || echo 0)}
BM_NET=${BM_NET:-$(dirname "$IDMINT")/../bench/bm_net}
IDMLOAD=${IDMLOAD:-$(dirname "$IDMINT")/../bench/idmload}
for t in h2load h2o taskset curl python3; do
  command -v "$t" >/dev/null || { echo "ratios.sh: $t is missing, skipping"; exit 0; }
done
[ -x "$BM_NET" ] || { echo "ratios.sh: $BM_NET is not built, skipping"; exit 0; }
T=$(mktemp -d /tmp/idmint-ratios.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
source "$src/bench/lib.bash"
bench_measure_init

P=$(bench_port)
bench_setup
bench_conf "$T/idmint.conf" "$P" 1 "${BENCH_FSYNC:-batch}"
taskset -c "$SERVER_CPUS" "$IDMINT" serve --config "$T/idmint.conf" 2> "$T/idmint.err" &
IP=$!
pids+=("$IP")
bench_wait_up "http://127.0.0.1:$P/healthz" ratios.sh
bench_www
HP=$(bench_port)
bench_h2o_conf "$T/h2o.conf" "$HP"
taskset -c "$SERVER_CPUS" h2o -c "$T/h2o.conf" >/dev/null 2>&1 &
HPID=$!
pids+=("$HPID")
bench_wait_up "http://127.0.0.1:$HP/body" ratios.sh

# Bare jwt-profile mint per CPU-second on the server's first core: the median of three
# 0.3 s repetitions (one repetition alone read anywhere from 26k to 44k/s within a minute
# on the shared VM; the median of three is steadier).
sign() {
  local cpu
  cpu=$(taskset -c "$SERVER_CPUS" python3 -c "import os; print(sorted(os.sched_getaffinity(0))[0])")
  taskset -c "$cpu" "$BM_NET" --benchmark_filter='BM_net_jwt_mint$' --benchmark_min_time=0.3 \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
    --benchmark_format=json 2>/dev/null |
    python3 -c "
import json, sys
b = json.load(sys.stdin)['benchmarks']
print(int(next(x for x in b if x.get('aggregate_name') == 'median')['items_per_second']))"
}
form_jwt=(-d "$T/form-jwt" -H 'content-type: application/x-www-form-urlencoded')
form_batch=(-d "$T/form-batch" -H 'content-type: application/x-www-form-urlencoded')
TOK="http://127.0.0.1:$P/v1/token"
BODY="http://127.0.0.1:$HP/body"

echo "ratios.sh: $ROUNDS interleaved rounds, $DUR per run (warm-up ${WARM}s), server cores $SERVER_CPUS (1 thread), clients on $CLIENT_CPUS; audit fsync ${BENCH_FSYNC:-batch}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | bare signing /CPU-s (before, after) | jwt req/CPU-s | jwt / bare | batch req/CPU-s (h2load) | h2o req/CPU-s (h2load) | batch / h2o (h2load) | batch req/CPU-s (idmload) | h2o req/CPU-s (idmload) | batch / h2o (idmload) |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
: > "$T/ratios"
for r in $(seq 1 "$ROUNDS"); do
  s0=$(sign)
  read -r _ _ _ jbad jwt < <(bench_h2load_run "jwt$r" "$IP" "$TOK" "${form_jwt[@]}")
  s1=$(sign)
  read -r _ _ _ bbad bat < <(bench_h2load_run "bat$r" "$IP" "$TOK" "${form_batch[@]}")
  read -r _ _ _ _ h2o < <(bench_h2load_run "h2o$r" "$HPID" "$BODY")
  read -r _ ibat < <(bench_idmload_run "ibat$r" "$IP" "$TOK" "${form_batch[@]}")
  read -r _ ih2o < <(bench_idmload_run "ih2o$r" "$HPID" "$BODY")
  [ "$jbad" = 0 ] && [ "$bbad" = 0 ] || echo "round $r: non-2xx answers (jwt $jbad, batch $bbad)" >&2
  python3 - "$r" "$s0" "$s1" "$jwt" "$bat" "$h2o" "$ibat" "$ih2o" >> "$T/ratios" <<'PY'
import sys
r, s0, s1, jwt, bat, h2o, ibat, ih2o = sys.argv[1], *map(float, sys.argv[2:])
q = lambda a, b: a / b if b else float('nan')
print(r, q(jwt, (s0 + s1) / 2), q(bat, h2o), q(ibat, ih2o), s0, s1, jwt, bat, h2o, ibat, ih2o)
PY
  tail -1 "$T/ratios" | python3 -c "
import sys
r, a, b, c, s0, s1, jwt, bat, h2o, ibat, ih2o = sys.stdin.read().split()
f = lambda x: f'{float(x):,.0f}'
print(f'| {r} | {f(s0)}, {f(s1)} | {f(jwt)} | **{float(a):.2f}** | {f(bat)} | {f(h2o)} | **{float(b):.2f}** | {f(ibat)} | {f(ih2o)} | **{float(c):.2f}** |')"
done
python3 - "$T/ratios" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for i, name in ((1, "jwt profile / bare signing (target >= 0.80)"),
                (2, "batch profile / h2o, h2load (target >= 0.50)"),
                (3, "batch profile / h2o, idmload (target >= 0.50)")):
    v = sorted(float(r[i]) for r in rows)
    print(f"{name}: median {statistics.median(v):.2f}, min {v[0]:.2f}, max {v[-1]:.2f} over {len(v)} rounds")
PY
echo "audit log: $("$IDMINT" jwks --dir "$T/keys" > "$T/jwks.json"; "$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" 2>&1 | tail -1)"
