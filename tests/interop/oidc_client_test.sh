#!/usr/bin/env bash
# A standard OAuth/OIDC client (openid-client) and JOSE library (jose), in Node, against
# the real server: discovery, token exchange, JWT verification against the JWKS, and the
# documented error for a policy denial. Skips (77) without node or the npm packages.
set -euo pipefail
: "${IDMINT:?}" "${SRC_DIR:?}"
here="$SRC_DIR/tests/interop"
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }
[ -d "$here/node_modules/openid-client" ] && [ -d "$here/node_modules/jose" ] ||
  { echo "SKIP: npm packages missing (scripts/install-deps.sh)"; exit 77; }
source "$SRC_DIR/tests/net/lib.sh"
setup_env
start_server
node "$here/oidc_client.mjs" "$BASE" "$T/payments.jwt" "$T/sandbox.jwt" || fail "openid-client interop"
ok "openid-client discovery + token exchange; jose verifies the JWT against the JWKS"
stop_server || fail "SIGTERM exit status"
