#!/usr/bin/env bash
# `make run` (scripts/run-dev.sh): the embedded default config with generated dev keys, a
# sample issuer and subject token, and the curl example it prints. The test runs the
# script as `make run` does (on a free port, in a scratch dev directory), runs the printed
# curl command exactly as printed, and expects a credential; then the printed offline
# `token exchange` line; then Ctrl-C (SIGINT) drains and exits 0.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
IDMINT_DEV_DIR="$T/dev" IDMINT_DEV_PORT="$PORT" \
  bash "$SRC_DIR/scripts/run-dev.sh" "$IDMINT" > "$T/run.out" 2> "$T/server.err" &
SERVER_PID=$!
wait_server
grep -q "http://127.0.0.1:$PORT" "$T/run.out" || fail "no server address printed: $(cat "$T/run.out")"

# The printed curl example: from "curl -s" to the first line without a trailing backslash.
python3 - "$T/run.out" > "$T/example.sh" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
start = next(i for i, l in enumerate(lines) if l.strip().startswith("curl -s") and "/v1/token" in l)
out = []
for l in lines[start:]:
    out.append(l)
    if not l.rstrip().endswith("\\"):
        break
print("\n".join(out))
PY
[ -s "$T/example.sh" ] || fail "no curl example printed"
resp=$(bash "$T/example.sh")
grep -q '"access_token"' <<< "$resp" || fail "the printed curl example got: $resp"
ok "make run's printed curl example returns a credential"

# The printed offline line.
off=$(grep -E '^ +.*token exchange --config' "$T/run.out" | head -1)
[ -n "$off" ] || fail "no offline token exchange line printed"
out=$(bash -c "$off")
grep -q 'access_token\|eyJ' <<< "$out" || fail "the printed offline exchange gave: $out"
ok "the printed offline token exchange works"

kill -INT "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[ "$rc" = 0 ] || fail "SIGINT: exit status $rc"
ok "Ctrl-C drains and exits 0"
