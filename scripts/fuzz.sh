#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each, starting from (and growing) a copy of its
# seed corpus under build/fuzz/corpus. New crashes are left in build/fuzz/artifacts.
# An input that runs longer than FUZZ_TIMEOUT seconds (default 10) counts as a hang.
# FUZZ_TARGETS="a b" limits the run to those targets. See docs/FUZZING.md.
set -euo pipefail
dir=${1:?build dir}; secs=${2:-30}
tmo=${FUZZ_TIMEOUT:-10}
failed=()
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir/corpus" "$dir/artifacts"
status=0
for bin in "$dir"/fuzz/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name=$(basename "$bin"); name=${name#fuzz_}
  if [ -n "${FUZZ_TARGETS:-}" ] && ! grep -qw -- "$name" <<< "$FUZZ_TARGETS"; then continue; fi
  mkdir -p "$dir/corpus/$name"
  cp -n "$src/fuzz/corpus/$name"/* "$dir/corpus/$name/" 2>/dev/null || true
  echo "== fuzz $name for ${secs}s"
  dict=()
  [ -f "$src/fuzz/$name.dict" ] && dict=(-dict="$src/fuzz/$name.dict")
  "$bin" -max_total_time="$secs" -timeout="$tmo" -artifact_prefix="$dir/artifacts/$name-" \
         ${dict[@]+"${dict[@]}"} "$dir/corpus/$name" || { status=1; failed+=("$name"); }
done
if [ $status -ne 0 ]; then
  echo "fuzz: failures in: ${failed[*]} (inputs in $dir/artifacts/)" >&2
else
  echo "fuzz: every target ran ${secs}s without a crash, leak or hang"
fi
exit $status
