#!/usr/bin/env bash
# Abuse: slowloris, oversized headers and bodies, too many connections, HTTP/2 rapid
# reset, CONTINUATION flood, HPACK bomb, PING and SETTINGS floods, deep pipelining. After
# each the server must still be up and answer a normal request at once; at the end its
# resident memory must be within the bound it stated at start-up (the "memory" log line:
# threads x max_connections x per-connection buffers + pools; here 1 thread x 64).
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
setup_env "max_connections 64"
sed -i 's/threads         2/threads         1/' "$T/idmint.conf"
start_server --header-timeout 1000 --idle-timeout 4000
A="python3 $SRC_DIR/tests/net/abuse.py"
alive() {
  [ "$(curl -s -m 2 "$BASE/healthz")" = ok ] || fail "server not answering after $1"
  kill -0 "$SERVER_PID" || fail "server died after $1"
}

# slowloris: 20 connections trickling a head never finish; the header timeout cuts them
cut=$($A slowloris "$PORT" 20 4)
[ "$cut" = 20 ] || fail "slowloris: only $cut of 20 connections were cut"
alive slowloris
ok "slowloris: every trickling connection cut by the header timeout (408/close)"

# oversized header (h1 431, h2 431 or reset) and body (413 both)
big=$(head -c 20000 /dev/zero | tr '\0' a)
c=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz" -H "X-Big: $big")
[ "$c" = 431 ] || fail "h1 big header: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge "$BASE/healthz" -H "X-Big: $big" || true)
case "$c" in 431|000) ;; *) fail "h2 big header: $c" ;; esac
head -c 40000 /dev/zero | tr '\0' b > "$T/bigbody"
c=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v1/token" --data-binary @"$T/bigbody")
[ "$c" = 413 ] || fail "h1 big body: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' "$BASE/v1/token" --data-binary @"$T/bigbody")
[ "$c" = 413 ] || fail "h1 big chunked body: $c"
c=$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge "$BASE/v1/token" --data-binary @"$T/bigbody")
[ "$c" = 413 ] || fail "h2 big body: $c"
alive "oversized requests"
ok "oversized headers (431) and bodies (413, also chunked and over h2)"

# too many connections: 64 per thread here; the rest get 503 + Retry-After and a close
read -r acc ref < <($A conns "$PORT" 100)
[ "$acc" -le 64 ] && [ "$acc" -ge 60 ] && [ "$ref" -ge 36 ] || fail "connection limit: accepted $acc refused $ref"
sleep 0.3
alive "connection flood"
grep -q '^idmint_connections_total{result="refused"} [1-9]' <<< "$(curl -s "$BASE/metrics")" || fail "refused not counted"
ok "connection limit: $acc accepted, $ref refused with 503, then normal service"

# HTTP/2 rapid reset (CVE-2023-44487): the session is ended, the server stays up
v=$($A rapid_reset "$PORT" 5000)
case "$v" in goaway|closed) ;; *) fail "rapid reset: connection stayed $v" ;; esac
alive "rapid reset"
ok "HTTP/2 rapid reset: session ended ($v)"

v=$($A continuation "$PORT" 2000)
case "$v" in goaway|closed) ;; *) fail "continuation flood: connection stayed $v" ;; esac
alive "CONTINUATION flood"
ok "CONTINUATION flood: session ended ($v)"

v=$($A hpack_bomb "$PORT" 20000)
case "$v" in answered|reset|goaway|closed) ;; *) fail "hpack bomb: $v" ;; esac
alive "HPACK bomb"
ok "HPACK bomb: stopped at the header limit ($v)"

v=$($A ping_flood "$PORT" 200000)
alive "PING flood"
ok "PING flood without reading ACKs: server unaffected (connection $v)"
v=$($A settings_flood "$PORT" 100000)
alive "SETTINGS flood"
ok "SETTINGS flood without reading ACKs: server unaffected (connection $v)"

# deep pipelining without reading: answered in order, back-pressure instead of growth
got=$($A pipeline "$PORT" 2000)
[ "$got" = 2000 ] || fail "pipelining: $got of 2000 answered"
alive pipelining
ok "2000 pipelined requests answered"

# memory stayed within the stated bound
bound=$(sed -n 's/.*at most \([0-9]*\) MiB of buffers per thread.*/\1/p' "$T/server.err")
rss=$(rss_kib)
limit=$(( (bound + 64) * 1024 ))   # + 64 MiB for code, libraries, keys, JSON, stacks
[ "$rss" -lt "$limit" ] || fail "RSS ${rss} KiB over the stated bound ${bound} MiB (+64)"
ok "resident memory ${rss} KiB within the stated bound (${bound} MiB per thread + 64 MiB)"
stop_server || fail "SIGTERM exit status"
