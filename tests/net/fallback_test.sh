#!/usr/bin/env bash
# The degraded io_uring path (single-shot accept and receive, no buffer ring), forced with
# --single-shot: what an older kernel gets. Same answers over HTTP/1.1 (with pipelining
# and a body that arrives in pieces) and HTTP/2.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
setup_env
start_server --single-shot
grep -q 'multishot receive' "$T/server.err" || fail "no io_uring feature line"
for proto in --http1.1 --http2-prior-knowledge; do
  [ "$(curl -s $proto "$BASE/healthz")" = ok ] || fail "healthz $proto"
  r=$(exchange "$T/payments.jwt" payments-db $proto)
  case "$r" in "200 "*) ;; *) fail "exchange $proto: $r" ;; esac
done
got=$(python3 "$SRC_DIR/tests/net/abuse.py" pipeline "$PORT" 3000)
[ "$got" = 3000 ] || fail "pipelining on single-shot receive: $got of 3000"
# a request head split across many small writes
python3 - "$PORT" <<'PY' || fail "split request"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
for i in range(0, len(req), 3):
    s.sendall(req[i:i + 3]); time.sleep(0.002)
data = b""
while True:
    d = s.recv(4096)
    if not d: break
    data += d
assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"ok\n"), data
PY
ok "single-shot accept/receive: h1, h2, pipelining, split heads"
stop_server || fail "SIGTERM exit status"
