#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each, starting from (and growing) a copy of its
# seed corpus under build/fuzz/corpus. New crashes are left in build/fuzz/artifacts.
set -euo pipefail
dir=${1:?build dir}; secs=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir/corpus" "$dir/artifacts"
status=0
for bin in "$dir"/fuzz/fuzz_*; do
  name=$(basename "$bin"); name=${name#fuzz_}
  mkdir -p "$dir/corpus/$name"
  cp -n "$src/fuzz/corpus/$name"/* "$dir/corpus/$name/" 2>/dev/null || true
  echo "== fuzz $name for ${secs}s"
  dict=()
  [ -f "$src/fuzz/$name.dict" ] && dict=(-dict="$src/fuzz/$name.dict")
  "$bin" -max_total_time="$secs" -artifact_prefix="$dir/artifacts/$name-" "${dict[@]}" \
         "$dir/corpus/$name" || status=1
done
exit $status
