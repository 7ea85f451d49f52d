#!/usr/bin/env bash
# Runs every Google Benchmark binary, then the bench/*.sh load scripts (h2load and friends).
set -euo pipefail
dir=${1:?build dir}
src=$(cd "$(dirname "$0")/.." && pwd)
for bin in "$dir"/bench/bm_*; do
  [ -x "$bin" ] || continue
  echo "== $(basename "$bin")"
  "$bin" --benchmark_counters_tabular=true
done
for sh in "$src"/bench/*.sh; do
  [ -f "$sh" ] || continue
  echo "== $(basename "$sh")"
  IDMINT="$dir/engine/idmint" bash "$sh"
done
