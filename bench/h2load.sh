#!/usr/bin/env bash
# Load benchmark over h2c with h2load (-c 16 -m 32), server and load generator pinned to
# different cores:
#   1. idmint POST /v1/token (token exchange, cached attestation), jwt and batch profiles
#   2. idmint GET /.well-known/jwks.json and discovery (no signature needed)
#   3. h2o (one thread) and nginx (one worker) serving a fixed 300-byte body over h2c
#   4. the bare signing rate of the same number of threads (bench/bm_net BM_net_jwt_mint)
#   5. the token exchange again at 80% of its maximum rate, for p50/p99 latency
#   6. idmload (when built): the batch profile, JWKS and h2o again in closed loop with the
#      lighter client (h2load saturates its own core before the server at these rates), and
#      jwt and batch profile at 80% of the maximum idmload finds in
#      closed loop, open loop, latency from the intended send (env IDMLOAD: its binary)
# Prints one table (rates, ratios, latency percentiles from h2load's per-request log).
# Environment: IDMINT (binary), BENCH_DURATION (default 3s), SERVER_CPUS (default 0),
# CLIENT_CPUS (default: every other core), BM_NET (bm_net binary; default next to IDMINT).
set -euo pipefail
: "${IDMINT:?IDMINT must name the idmint binary}"
src=$(cd "$(dirname "$0")/.." && pwd)
DUR=${BENCH_DURATION:-3s}
ncpu=$(nproc)
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-$( [ "$ncpu" -gt 1 ] && echo "1-$((ncpu - 1))" || echo 0)}
BM_NET=${BM_NET:-$(dirname "$IDMINT")/../bench/bm_net}
threads=$(taskset -c "$SERVER_CPUS" nproc)
for t in h2load taskset curl python3; do
  command -v "$t" >/dev/null || { echo "h2load.sh: $t is missing, skipping"; exit 0; }
done
T=$(mktemp -d /tmp/idmint-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
source "$src/bench/lib.bash"
port() { bench_port; }
wait_up() { bench_wait_up "$1" h2load.sh; }

# --- idmint
P=$(port)
bench_setup
bench_conf "$T/idmint.conf" "$P" "$threads" "${BENCH_FSYNC:-batch}"
taskset -c "$SERVER_CPUS" "$IDMINT" serve --config "$T/idmint.conf" 2> "$T/idmint.err" &
pids+=($!)
wait_up "http://127.0.0.1:$P/healthz"
v=$(curl -sf "http://127.0.0.1:$P/v1/token" --data-binary @"$T/form-jwt" \
  -H 'content-type: application/x-www-form-urlencoded' || true)
grep -q access_token <<< "$v" ||
  { echo "h2load.sh: token exchange does not work" >&2; cat "$T/idmint.err" >&2; exit 1; }

bench_measure_init
run() { bench_h2load_run "$@"; }
ilrun() { bench_idmload_run "$@"; }
ticks() { bench_ticks "$@"; }
IDMLOAD=${IDMLOAD:-$(dirname "$IDMINT")/../bench/idmload}
form=(-d "$T/form-jwt" -H 'content-type: application/x-www-form-urlencoded')
IP=${pids[0]}
read -r tok_rps tok_p50 tok_p99 tok_bad tok_cpu < <(run token "$IP" "http://127.0.0.1:$P/v1/token" "${form[@]}")
read -r btok_rps btok_p50 btok_p99 btok_bad btok_cpu < <(run btok "$IP" "http://127.0.0.1:$P/v1/token" -d "$T/form-batch" -H 'content-type: application/x-www-form-urlencoded')
read -r jwks_rps jwks_p50 jwks_p99 jwks_bad jwks_cpu < <(run jwks "$IP" "http://127.0.0.1:$P/.well-known/jwks.json")
read -r ibtok_rps ibtok_cpu < <(ilrun ibtok "$IP" "http://127.0.0.1:$P/v1/token" -d "$T/form-batch" -H 'content-type: application/x-www-form-urlencoded')
read -r ijwks_rps ijwks_cpu < <(ilrun ijwks "$IP" "http://127.0.0.1:$P/.well-known/jwks.json")
read -r disc_rps disc_p50 disc_p99 disc_bad disc_cpu < <(run disc "$IP" "http://127.0.0.1:$P/.well-known/openid-configuration")
# 80% of the maximum token rate, spread over the 16 clients
rps80=$(python3 -c "print(max(1, int($tok_rps * 0.8 / 16)))")
read -r tok80_rps tok80_p50 tok80_p99 tok80_bad tok80_cpu < <(run token80 "$IP" "http://127.0.0.1:$P/v1/token" "${form[@]}" --rps "$rps80")
# ==== idmload (bench/idmload.c): open-loop latency at 80 % of the maximum =================
# h2load's --rps sends bursts and measures from the actual send, which hides queueing
# (docs/PERFORMANCE.md, "Load harness"). idmload finds the maximum in closed loop with the
# same connection shape (-c 16 -m 32), then sends at 80 % of it on a uniform schedule and
# measures each request from its intended send time. Skipped when idmload is not built.
IDMLOAD=${IDMLOAD:-$(dirname "$IDMINT")/../bench/idmload}
il_rows=""
il_row() {  # NAME LABEL FORMFILE: one table row
  local name=$1 label=$2 body=$3 t0 t1
  local il=(taskset -c "$CLIENT_CPUS" "$IDMLOAD" -c 16 -m 32 -D "$DUR" --warm-up 1s --json
            -d "$body" -H 'content-type: application/x-www-form-urlencoded')
  "${il[@]}" "http://127.0.0.1:$P/v1/token" > "$T/$name-max.json" 2> "$T/$name-max.err" || true
  local max
  max=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rate_2xx'])" "$T/$name-max.json" 2>/dev/null || echo 0)
  if python3 -c "import sys; sys.exit(float('$max') > 0)"; then
    echo "| idmint POST /v1/token ($label), idmload: no 2xx answer in closed loop, nothing to measure at 80% (/readyz: $(curl -s "http://127.0.0.1:$P/readyz")) | | | | | | |"
    return
  fi
  t0=$(ticks "$IP")
  "${il[@]}" -r "$(python3 -c "print(max(1.0, $max * 0.8))")" "http://127.0.0.1:$P/v1/token" \
    > "$T/$name.json" 2> "$T/$name.err" || true
  t1=$(ticks "$IP")
  python3 - "$T/$name.json" "$max" "$label" "$t0" "$t1" "$HZ" <<'PY' || echo "| $label: idmload failed ($(head -c 200 "$T/$name.err")) | | | | | | |"
import json, sys
r = json.load(open(sys.argv[1]))
mx, label = float(sys.argv[2]), sys.argv[3]
cpu_s = (float(sys.argv[5]) - float(sys.argv[4])) / float(sys.argv[6])
q, lat, st, e = r["requests"], r["latency_ms"], r["status"], r["errors"]
bad = q["completed"] - st["2xx"] + e["total"] + q["unfinished"]
per_cpu = (q["completed"] + q["warmup"]) / cpu_s if cpu_s > 0 else 0
print(f"| idmint POST /v1/token ({label}) at 80% of max, idmload open loop "
      f"(-r {r['target_rate']:.0f}; max {mx:.0f} 2xx/s closed loop) | {r['rate']:.0f} | {per_cpu:.0f} | "
      f"{lat['p50']:.3f} | {lat['p99']:.3f} | {bad} | p99.9 {lat['p99_9']:.3f} ms, "
      f"max {lat['max']:.3f} ms, {q['late']} late |")
PY
}
if [ -x "$IDMLOAD" ]; then
  il_rows=$(il_row il_jwt "jwt" "$T/form-jwt")
  il_rows+=$'\n'$(il_row il_batch "batch profile" "$T/form-batch")
else
  il_rows="| (idmload not built: no open-loop rows) | | | | | | |"
fi
# ==== end of the idmload block ==========================================================
sends=$(curl -s "http://127.0.0.1:$P/metrics" | sed -n 's/^idmint_sends_total \([0-9]*\)/\1/p')
reqs=$(curl -s "http://127.0.0.1:$P/metrics" | sed -n 's/^idmint_http_request_duration_seconds_count \([0-9]*\)/\1/p')

# --- h2o and nginx: a fixed 300-byte body over h2c
bench_www
h2o_rps=0 h2o_p99=nan h2o_cpu=0 ih2o_rps=0 ih2o_cpu=0 nginx_rps=0 nginx_p99=nan nginx_cpu=0
if command -v h2o >/dev/null; then
  HP=$(port)
  bench_h2o_conf "$T/h2o.conf" "$HP"
  taskset -c "$SERVER_CPUS" h2o -c "$T/h2o.conf" >/dev/null 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$HP/body"
  read -r h2o_rps _ h2o_p99 _ h2o_cpu < <(run h2o "${pids[-1]}" "http://127.0.0.1:$HP/body")
  read -r ih2o_rps ih2o_cpu < <(ilrun ih2o "${pids[-1]}" "http://127.0.0.1:$HP/body")
fi
if command -v nginx >/dev/null; then
  NP=$(port)
  cat > "$T/nginx.conf" <<CONF
worker_processes 1;
user $(id -un);
daemon off;
pid $T/nginx.pid;
error_log $T/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000000;  # else nginx closes each h2c connection after 1000 requests
  client_body_temp_path $T/nginx-body;
  server {
    listen 127.0.0.1:$NP http2;
    root $T/www;
  }
}
CONF
  taskset -c "$SERVER_CPUS" nginx -c "$T/nginx.conf" -p "$T" >/dev/null 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$NP/body"
  nw=$(pgrep -P "${pids[-1]}" | head -1)
  read -r nginx_rps _ nginx_p99 _ nginx_cpu < <(run nginx "${nw:-${pids[-1]}}" "http://127.0.0.1:$NP/body")
fi

# --- bare signing rate of the same number of threads
sign_rps=0
if [ -x "$BM_NET" ]; then
  bm=()
  for i in $(seq 1 "$threads"); do
    cpu=$(taskset -c "$SERVER_CPUS" python3 -c "import os; print(sorted(os.sched_getaffinity(0))[$((i - 1))])")
    taskset -c "$cpu" "$BM_NET" --benchmark_filter='BM_net_jwt_mint$' --benchmark_min_time=1 \
      --benchmark_format=json > "$T/sign$i.json" 2>/dev/null &
    bm+=($!)
  done
  for p in "${bm[@]}"; do wait "$p"; done
  sign_rps=$(python3 -c "
import json,sys
print(int(sum(json.load(open('$T/sign%d.json' % i))['benchmarks'][0]['items_per_second'] for i in range(1, $threads + 1))))")
fi

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}' if b else 'n/a')"; }
cat <<OUT
h2load -c 16 -m 32 -t 1 -D $DUR (warm-up ${WARM}s); server cores $SERVER_CPUS ($threads thread(s)), h2load cores $CLIENT_CPUS; audit fsync ${BENCH_FSYNC:-batch}
req/CPU-s: 200s completed per CPU-second of the server process, both counted over the same window after the warm-up (comparable under machine load)
| what | req/s | req/CPU-s | p50 ms | p99 ms | non-2xx | ratio (req/CPU-s) |
|---|---:|---:|---:|---:|---:|---|
| idmint POST /v1/token (jwt, cached attestation) | $tok_rps | $tok_cpu | $tok_p50 | $tok_p99 | $tok_bad | $(ratio "$tok_cpu" "$sign_rps") of bare signing |
| idmint POST /v1/token at 80% of max (--rps $rps80 x 16) | $tok80_rps | $tok80_cpu | $tok80_p50 | $tok80_p99 | $tok80_bad | |
$il_rows
| idmint POST /v1/token (batch profile, cached attestation) | $btok_rps | $btok_cpu | $btok_p50 | $btok_p99 | $btok_bad | $(ratio "$btok_cpu" "$h2o_cpu") of h2o |
| idmint POST /v1/token (batch profile), idmload closed loop | $ibtok_rps | $ibtok_cpu | | | | $(ratio "$ibtok_cpu" "$ih2o_cpu") of h2o (idmload) |
| idmint GET /.well-known/jwks.json | $jwks_rps | $jwks_cpu | $jwks_p50 | $jwks_p99 | $jwks_bad | $(ratio "$jwks_cpu" "$h2o_cpu") of h2o |
| idmint GET /.well-known/jwks.json, idmload closed loop | $ijwks_rps | $ijwks_cpu | | | | $(ratio "$ijwks_cpu" "$ih2o_cpu") of h2o (idmload) |
| idmint GET /.well-known/openid-configuration | $disc_rps | $disc_cpu | $disc_p50 | $disc_p99 | $disc_bad | $(ratio "$disc_cpu" "$h2o_cpu") of h2o |
| h2o 2.2 (1 thread), 300-byte file | $h2o_rps | $h2o_cpu | | $h2o_p99 | | |
| h2o 2.2 (1 thread), 300-byte file, idmload closed loop | $ih2o_rps | $ih2o_cpu | | | | |
| nginx 1.22 (1 worker), 300-byte file | $nginx_rps | $nginx_cpu | | $nginx_p99 | | $(ratio "$nginx_cpu" "$h2o_cpu") of h2o |
| bare jwt mint, $threads thread(s) (bm_net BM_net_jwt_mint, per CPU-s) | | $sign_rps | | | | |
idmint responses per send(2): $(ratio "$reqs" "$sends") ($reqs responses, $sends sends)
audit log: $("$IDMINT" jwks --dir "$T/keys" > "$T/jwks.json"; "$IDMINT" audit verify "$T/audit.log" --jwks "$T/jwks.json" 2>&1 | tail -1)
OUT
