#!/usr/bin/env bash
# The evaluators (eval.c: pol_eval, ref.c: pol_eval_ref and the leaf conditions) must not
# allocate, lock or do I/O: their object files may not even reference such functions.
set -euo pipefail
: "${BUILD_DIR:?}"
status=0
for src in eval ref; do
  obj=$(find "$BUILD_DIR/policy" -name "$src.c.o" | head -1)
  [ -n "$obj" ] || { echo "no object for $src.c"; exit 1; }
  if nm -u "$obj" | grep -q __asan_init; then
    # unoptimized sanitizer objects keep unused static helpers (xxhash's state allocator)
    echo "skip: $obj is an unoptimized sanitizer build; the optimized build checks this"
    exit 77
  fi
  bad=$(nm -u "$obj" | awk '{print $NF}' |
        grep -E '^(malloc|calloc|realloc|free|aligned_alloc|posix_memalign|strdup|strndup|pthread_.*|.*printf|fopen|fwrite|write|read|mmap|madvise|strto.*|setlocale)$' || true)
  if [ -n "$bad" ]; then
    echo "FAIL: $src.c references: $bad"
    status=1
  fi
done
[ $status = 0 ] && echo "evaluators reference no allocation, lock or I/O"
exit $status
