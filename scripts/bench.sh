#!/usr/bin/env bash
# Runs every Google Benchmark binary, then the bench/*.sh load scripts (h2load and friends),
# each under a time limit, and keeps going when one fails (the summary names it and the
# exit status is 1). Knobs (see docs/PERFORMANCE.md, "Running make bench"):
#   BENCH_QUICK=1        smoke run: 0.05 s per benchmark, no 1M-element sizes, 1 s h2load runs
#   BENCH_MIN_TIME=S     seconds per benchmark (default 0.2; quick 0.05)
#   BENCH_FILTER=RE      Google Benchmark --benchmark_filter (a leading '-' negates)
#   BENCH_TIMEOUT=S      limit per binary or script (default 300)
#   BENCH_ONLY="a b"     run only these (bm_policy, h2load, ...)
#   BENCH_OUT=DIR        also write each binary's JSON to DIR/<name>.json
set -euo pipefail
dir=${1:?build dir}
src=$(cd "$(dirname "$0")/.." && pwd)
quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
  min_time=${BENCH_MIN_TIME:-0.05}
  filter=${BENCH_FILTER:--/1000000$}   # the 1M-rule policy sizes take minutes to set up
  export BENCH_DURATION=${BENCH_DURATION:-1s}
else
  min_time=${BENCH_MIN_TIME:-0.2}
  filter=${BENCH_FILTER:-}
fi
limit=${BENCH_TIMEOUT:-300}
want() { [ -z "${BENCH_ONLY:-}" ] || grep -qw -- "$1" <<< "$BENCH_ONLY"; }
failed=()
t_all=$SECONDS
for bin in "$dir"/bench/bm_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name=$(basename "$bin")
  want "$name" || continue
  echo "== $name (min_time ${min_time}s${filter:+, filter $filter})"
  args=(--benchmark_counters_tabular=true --benchmark_min_time="$min_time")
  [ -n "$filter" ] && args+=(--benchmark_filter="$filter")
  [ -n "${BENCH_OUT:-}" ] && mkdir -p "$BENCH_OUT" &&
    args+=(--benchmark_out="$BENCH_OUT/$name.json" --benchmark_out_format=json)
  t0=$SECONDS
  timeout --kill-after=10 "$limit" "$bin" "${args[@]}" || { echo "!! $name failed (rc $?)"; failed+=("$name"); }
  echo "-- $name took $((SECONDS - t0))s"
done
for sh in "$src"/bench/*.sh; do
  [ -f "$sh" ] || continue
  name=$(basename "$sh" .sh)
  want "$name" || continue
  echo "== $name.sh"
  t0=$SECONDS
  IDMINT="$dir/engine/idmint" BM_NET="$dir/bench/bm_net" timeout --kill-after=10 "$limit" bash "$sh" ||
    { echo "!! $name.sh failed (rc $?)"; failed+=("$name.sh"); }
  echo "-- $name.sh took $((SECONDS - t0))s"
done
echo "bench: $((SECONDS - t_all))s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
