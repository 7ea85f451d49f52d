#!/usr/bin/env bash
# server.unix_socket: idmint serve listens on an AF_UNIX socket and identifies each caller
# by its kernel credentials (SO_PEERCRED + /proc/PID/exe) under a `kind unix` trust. A
# token request there needs no subject_token; policy sees uid/gid/exe/exe_sha256. Driven by
# curl --unix-socket over HTTP/1.1 and h2c.
set -euo pipefail
source "$SRC_DIR/tests/net/lib.sh"
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
ME=$(id -u)
SOCK="$T/run/idmint.sock"
mkdir -p "$T/run"
# A stale socket left by a killed server must not stop the start.
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$SOCK"
setup_env "unix_socket \"$SOCK\""
cat >> "$T/idmint.conf" <<CONF
trust "local" { kind unix }
target "local-svc" {
  audience "https://local.t"
  ttl      5m
}
target "local-guarded" {
  audience "https://guarded.t"
  ttl      5m
}
target "local-other" {
  audience "https://other.t"
  ttl      5m
}
permit "me" {
  client trust == "local" and uid == $ME and kind == "unix"
  target "local-svc"
}
permit "any-local" {
  client trust == "local"
  target "local-guarded"
}
forbid "no-curl" {
  client exe like "*curl*"
  target "local-guarded"
}
permit "someone-else" {
  client trust == "local" and uid == 999999
  target "local-other"
}
CONF
start_server
# the listening line may follow the first /healthz answer (another thread logs it): wait for it
for _ in $(seq 1 40); do grep -q '"unix":"'"$SOCK"'"' "$T/server.err" && break; sleep 0.05; done
grep -q '"unix":"'"$SOCK"'"' "$T/server.err" || fail "no listening line for the unix socket"
[ -S "$SOCK" ] || fail "no socket at $SOCK"
[ "$(stat -c %a "$SOCK")" = 666 ] || fail "socket mode $(stat -c %a "$SOCK")"
ok "listens on unix_socket (stale socket replaced, mode 0666)"

# uexchange AUDIENCE [curl args...]: a token request on the unix socket, no subject_token.
uexchange() {
  local aud=$1
  shift
  curl -s -o "$T/resp" -w '%{http_code}' --unix-socket "$SOCK" "$@" http://x/v1/token \
    --data-urlencode "grant_type=$GT" --data-urlencode "audience=$aud"
  echo " $(cat "$T/resp")"
}
payload() { # the JWT payload of the access_token in $T/resp
  python3 - "$T/resp" <<'PY'
import base64, json, sys
tok = json.load(open(sys.argv[1]))["access_token"]
p = tok.split(".")[1]
print(json.dumps(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))))
PY
}
CURL_EXE=$(readlink -f "$(command -v curl)")

for proto in --http1.1 --http2-prior-knowledge; do
  r=$(uexchange local-svc $proto)
  case "$r" in '200 '*) ;; *) fail "unix peer exchange $proto: $r" ;; esac
  p=$(payload)
  python3 - "$p" "$ME" <<'PY' || fail "claims of the unix-peer token: $p"
import json, sys
c = json.loads(sys.argv[1])
assert c["sub"] == "uid:" + sys.argv[2], c
assert c["aud"] == "https://local.t", c
PY
done
ok "no subject_token on the unix socket: the peer (uid $ME) gets a token, sub uid:$ME (h1, h2c)"

r=$(uexchange local-svc --data-urlencode "subject_token_type=urn:idmint:token-type:unix-peer")
case "$r" in '200 '*) ;; *) fail "explicit unix-peer type: $r" ;; esac
r=$(uexchange local-svc --data-urlencode "subject_token_type=urn:idmint:token-type:unix-peer" \
  --data-urlencode "subject_token=x")
case "$r" in '400 '*invalid_request*) ;; *) fail "unix-peer type with a token: $r" ;; esac
ok "subject_token_type urn:idmint:token-type:unix-peer is optional there, and takes no token"

r=$(uexchange local-guarded)
case "$r" in '403 '*no-curl*) ;; *) fail "forbid on exe like *curl* ($CURL_EXE): $r" ;; esac
r=$(uexchange local-other)
case "$r" in '403 '*'no permit'*) ;; *) fail "permit on another uid matched: $r" ;; esac
ok "policy sees exe (forbid on *curl* is 403) and uid (a permit for another uid is 403)"

# A subject_token on the unix socket works as on TCP.
r=$(curl -s -o "$T/resp" -w '%{http_code}' --unix-socket "$SOCK" http://x/v1/token \
  --data-urlencode "grant_type=$GT" --data-urlencode "subject_token_type=$JWT_TYPE" \
  --data-urlencode "subject_token@$T/payments.jwt" --data-urlencode "audience=payments-db")
[ "$r" = 200 ] || fail "document exchange on the unix socket: $r $(cat "$T/resp")"
[ "$(payload | python3 -c 'import json,sys; print(json.load(sys.stdin)["sub"])')" = \
  spiffe://t/payments/api ] || fail "document exchange on the unix socket: wrong sub"
r=$(curl -s -o "$T/resp" -w '%{http_code}' --unix-socket "$SOCK" http://x/v1/token \
  --data-urlencode "grant_type=$GT" --data-urlencode "subject_token_type=$JWT_TYPE" \
  --data-urlencode "subject_token@$T/rogue.jwt" --data-urlencode "audience=payments-db")
[ "$r" = 400 ] || fail "a bad document on the unix socket fell back to the peer: $r"
ok "a subject_token on the unix socket is attested as on TCP (no fallback to the peer)"

# The gateway check on the unix socket: no token, the peer is the identity.
r=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H 'X-Idmint-Target: local-svc' \
  http://x/v1/authz/anything)
[ "$r" = 200 ] || fail "authz with the unix peer: $r"
ok "/v1/authz on the unix socket uses the peer"

# Over TCP there is no peer: the same request is refused.
r=$(curl -s -o "$T/resp" -w '%{http_code}' "$BASE/v1/token" \
  --data-urlencode "grant_type=$GT" --data-urlencode "audience=local-svc")
case "$r $(cat "$T/resp")" in '400 '*'missing subject_token'*) ;; *) fail "TCP no token: $r" ;; esac
r=$(curl -s -o "$T/resp" -w '%{http_code}' "$BASE/v1/token" --data-urlencode "grant_type=$GT" \
  --data-urlencode "subject_token_type=urn:idmint:token-type:unix-peer" \
  --data-urlencode "audience=local-svc")
case "$r $(cat "$T/resp")" in '400 '*'unix socket'*) ;; *) fail "TCP unix-peer type: $r" ;; esac
ok "over TCP a request without subject_token, or with the unix-peer type, is 400"

# After a reload the peer is identified again under the new configuration.
sed -i "s/uid == $ME and kind/uid == 999998 and kind/" "$T/idmint.conf"
kill -HUP "$SERVER_PID"
for _ in $(seq 1 60); do grep -q '"event":"reloaded"' "$T/server.err" && break; sleep 0.05; done
grep -q '"event":"reloaded"' "$T/server.err" || fail "no reload"
r=$(uexchange local-svc)
case "$r" in '403 '*) ;; *) fail "after reload the old rule still matched: $r" ;; esac
ok "reload: the new policy applies on the unix socket"

stop_server || fail "SIGTERM exit status $?"
[ ! -e "$SOCK" ] || fail "socket file left behind at $SOCK"
ok "the socket file is removed on shutdown"

# Without a `kind unix` trust the caller cannot be identified: the connection stays, its
# requests without a document are 400 invalid_grant with the reason, and it is logged.
write_config "unix_socket \"$SOCK\""
start_server
r=$(uexchange payments-db)
case "$r" in '400 '*invalid_grant*'kind unix'*) ;; *) fail "unidentified peer: $r" ;; esac
grep -q '"event":"unix_peer_unidentified"' "$T/server.err" || fail "unidentified peer not logged"
r=$(curl -s -o "$T/resp" -w '%{http_code}' --unix-socket "$SOCK" http://x/v1/token \
  --data-urlencode "grant_type=$GT" --data-urlencode "subject_token_type=$JWT_TYPE" \
  --data-urlencode "subject_token@$T/payments.jwt" --data-urlencode "audience=payments-db")
[ "$r" = 200 ] || fail "document exchange from an unidentified peer: $r"
stop_server || fail "SIGTERM exit status $?"
ok "an unidentified peer gets 400 invalid_grant with the reason, and documents still work"
