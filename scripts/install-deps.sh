#!/usr/bin/env bash
# Installs every Debian 12 package the build, tests, benchmarks and interop peers need,
# plus the npm packages of the interop tests. Does nothing when all are present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
  build-essential cmake pkg-config git
  liburing-dev android-libboringssl-dev libnghttp2-dev libxxhash-dev
  libjemalloc-dev libjansson-dev libcriterion-dev libbenchmark-dev
  clang libclang-rt-14-dev
  curl nghttp2-client h2o nginx-light haproxy redis-server
  nodejs npm
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js may come from elsewhere (it does on some images): accept any node + npm on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
want=()
for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
if [ ${#want[@]} -gt 0 ]; then
  echo "install-deps: installing ${want[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
  # Packaged daemons must not hold ports the tests choose.
  for svc in nginx haproxy redis-server h2o; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# npm packages for the interop tests (a widely used JOSE library and an OAuth client).
if [ -f "$here/tests/interop/package.json" ] && [ ! -d "$here/tests/interop/node_modules" ]; then
  echo "install-deps: npm ci in tests/interop"
  (cd "$here/tests/interop" && npm ci --no-audit --no-fund --loglevel=error)
fi
