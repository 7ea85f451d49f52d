#!/usr/bin/env bash
# A unix-socket peer whose executable is new to the server is hashed off the event loop
# (engine/net/exehash.h): while it is, the same worker goes on answering everyone else.
# The server runs one worker thread (the unix listener's owner takes the TCP connections
# too) with IDMINT_FAULT_HASH_DELAY_MS making each hash take 4 s, as a very large binary
# would. A fresh copy of curl (a new inode: not in the digest cache) asks for a token on
# the socket; meanwhile /healthz over TCP must answer within 2 s (when the worker hashed
# in its loop it answered after the 4 s). Then the unix request gets its token, under a
# rule that pins the copy's SHA-256, so the digest computed on the other thread is the one
# policy saw.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
command -v sha256sum >/dev/null || { echo "skip: no sha256sum"; exit 77; }
SOCK="$T/run/idmint.sock"
mkdir -p "$T/run" "$T/bin"
BIG="$T/bin/curl-copy"
cp "$(readlink -f "$(command -v curl)")" "$BIG"
truncate -s +8M "$BIG" # trailing bytes: still runs, and its own digest
chmod +x "$BIG"
SUM=$(sha256sum "$BIG" | cut -d' ' -f1)
setup_env "unix_socket \"$SOCK\""
sed -i 's/^  threads .*/  threads         1/' "$T/idmint.conf"
grep -q '^  threads         1$' "$T/idmint.conf" || fail "could not set threads 1"
cat >> "$T/idmint.conf" <<CONF
trust "local" { kind unix }
target "local-svc" {
  audience "https://local.t"
  ttl      5m
}
permit "pinned-copy" {
  client trust == "local" and exe_sha256 == "$SUM"
  target "local-svc"
}
CONF
export IDMINT_FAULT_HASH_DELAY_MS=4000
start_server
unset IDMINT_FAULT_HASH_DELAY_MS
for _ in $(seq 1 40); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || fail "no socket at $SOCK"

"$BIG" -s -o "$T/uresp" -w '%{http_code}' --max-time 30 --unix-socket "$SOCK" \
  http://x/v1/token --data-urlencode "grant_type=$GT" --data-urlencode "audience=local-svc" \
  > "$T/ucode" 2> "$T/uerr" &
UPID=$!
sleep 0.5 # accepted, and its executable is being hashed
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE/healthz" || true)
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$code" = 200 ] ||
  fail "/healthz over TCP answered '$code' after ${ms} ms while a peer's executable was hashed (the loop waited for the hash)"
ok "/healthz answered in ${ms} ms while the unix peer's executable was being hashed"

wait "$UPID" || fail "the unix-socket request failed: $(cat "$T/uerr")"
[ "$(cat "$T/ucode")" = 200 ] || fail "unix-socket token request: $(cat "$T/ucode") $(cat "$T/uresp")"
grep -q access_token "$T/uresp" || fail "no token: $(cat "$T/uresp")"
ok "the unix peer got its token under the rule pinning its executable's SHA-256"
grep -q unix_peer_unidentified "$T/server.err" && fail "a peer was left unidentified: $(grep unix_peer_unidentified "$T/server.err")"

# Cached now: a second request on a new connection from the same copy needs no hashing.
r=$("$BIG" -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$SOCK" \
  http://x/v1/token --data-urlencode "grant_type=$GT" --data-urlencode "audience=local-svc")
[ "$r" = 200 ] || fail "second request from the same executable: $r"
ok "a second connection from the same executable is identified from the digest cache"
stop_server || fail "server did not exit cleanly"
ok "clean shutdown"
