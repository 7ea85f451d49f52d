# Crash safety of the audit log (issue "Batched signing..."): start `idmint serve`, drive
# token exchanges from several concurrent clients (batch and jwt profile targets, and
# denials), kill -9 the server in the middle of the load, restart it (which cuts any torn
# tail), stop it, then check with `idmint audit verify --tokens` that every line of the log
# verifies and that every credential a client received is recorded in it.
# Needs IDMINT and SRC_DIR; exit 77 (skip) when this build's server does not write the
# audit log yet. AUDIT_PREALLOC=MiB runs it with server.audit_preallocate (what
# crashsafe_prealloc_test.sh does): kill -9 then leaves a zero-filled tail, which audit
# verify accepts and the restart cuts, and the clean stop truncates the log to its last
# line.
set -euo pipefail
: "${IDMINT:?IDMINT must name the idmint binary}"
T=$(mktemp -d "${TMPDIR:-/tmp}/idmint-crash.XXXXXX")
SERVER_PID=""
LOAD_PIDS=""
cleanup() {
  for p in $LOAD_PIDS; do kill "$p" 2>/dev/null || true; done
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/server.err" ] && tail -5 "$T/server.err" >&2; exit 1; }
command -v curl >/dev/null || { echo "SKIP: curl missing"; exit 77; }
if "$IDMINT" serve --help 2>&1 | grep -qi "not implemented"; then
  echo "SKIP: this build has no server yet"
  exit 77
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
ISS=https://issuer.crash.idmint.example

"$IDMINT" keys new --dir "$T/keys" >/dev/null
"$IDMINT" jwks --dir "$T/keys" > "$T/idmint.jwks.json"
"$IDMINT" keys new --dir "$T/issuer" >/dev/null
"$IDMINT" jwks --dir "$T/issuer" > "$T/issuer.jwks.json"
"$IDMINT" token mint --keys "$T/issuer" --iss "$ISS" --aud idmint --ttl 1h \
  --sub spiffe://t/payments/api --claim team=payments | tr -d '\n' > "$T/ok.jwt"
"$IDMINT" token mint --keys "$T/issuer" --iss "$ISS" --aud idmint --ttl 1h \
  --sub spiffe://t/sandbox --claim team=sandbox | tr -d '\n' > "$T/denied.jwt"

cat > "$T/idmint.conf" <<CONF
server {
  listen  "127.0.0.1:$PORT"
  issuer  "$BASE"
  keys    "keys"
  audit   "audit.log"
  threads 2
  $( [ "${AUDIT_PREALLOC:-0}" -gt 0 ] && echo "audit_preallocate $AUDIT_PREALLOC" )
}
trust "test-oidc" {
  kind     oidc
  issuer   "$ISS"
  jwks     "issuer.jwks.json"
  audience "idmint"
}
target "db-batch" {
  audience "spiffe://t/db-batch"
  format   batch
  ttl      5m
}
target "db-jwt" {
  audience "spiffe://t/db-jwt"
  format   jwt
  ttl      5m
}
permit "payments" {
  client claims.team == "payments"
  target any
}
CONF

start_server() {
  "$IDMINT" serve --config "$T/idmint.conf" 2>> "$T/server.err" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start: $(tail -3 "$T/server.err")"
    sleep 0.05
  done
  fail "server did not start"
}

GT=urn:ietf:params:oauth:grant-type:token-exchange
JT=urn:ietf:params:oauth:token-type:jwt
# client N AUDIENCE DOC: exchanges in a loop, 50 requests per curl process (one kept-alive
# connection), appending every response body and a newline to its file.
client() {
  local n=$1 aud=$2 doc=$3 args=() i
  for i in $(seq 1 50); do
    [ "$i" -gt 1 ] && args+=(--next)
    args+=(-s --max-time 5 -w '\n' "$BASE/v1/token" --data-urlencode "grant_type=$GT"
           --data-urlencode "subject_token_type=$JT" --data-urlencode "subject_token@$doc"
           --data-urlencode "audience=$aud")
  done
  while :; do
    curl "${args[@]}" >> "$T/resp.$n" 2>/dev/null || true
  done
}

start_server
# One exchange first: a server without the batcher/audit integration is skipped.
curl -s "$BASE/v1/token" --data-urlencode "grant_type=$GT" --data-urlencode "subject_token_type=$JT" \
  --data-urlencode "subject_token@$T/ok.jwt" --data-urlencode "audience=db-batch" > "$T/first"
if ! grep -q '"access_token"' "$T/first"; then
  echo "SKIP: this server build does not mint batch-profile credentials yet: $(head -c 200 "$T/first")"
  exit 77
fi
sleep 0.2
if [ ! -s "$T/audit.log" ]; then
  echo "SKIP: this server build does not write the audit log yet"
  exit 77
fi

# Light load: sequential requests each get a batch of their own (sealed when the loop has
# no more ready work), so batching adds no waiting.
for _ in $(seq 1 10); do
  curl -s "$BASE/v1/token" --data-urlencode "grant_type=$GT" --data-urlencode "subject_token_type=$JT" \
    --data-urlencode "subject_token@$T/ok.jwt" --data-urlencode "audience=db-batch" >> "$T/first"
  echo >> "$T/first"
done
lines=$(wc -l < "$T/audit.log")
ones=$(grep -ac '"size":1,' "$T/audit.log" || true)
[ "$lines" -eq 11 ] && [ "$ones" -eq 11 ] || fail "light load: $lines lines, $ones of size 1 (want 11, 11)"
echo "ok - light load: 11 sequential requests, 11 batches of one"

for n in 1 2 3 4 5 6; do
  case $n in
    1|2|3) client "$n" db-batch "$T/ok.jwt" & ;;
    4|5) client "$n" db-jwt "$T/ok.jwt" & ;;
    6) client "$n" db-batch "$T/denied.jwt" & ;;
  esac
  LOAD_PIDS="$LOAD_PIDS $!"
done
# Extra pressure over HTTP/2 when h2load is installed (its answers are not kept).
if command -v h2load >/dev/null; then
  printf 'grant_type=%s&subject_token_type=%s&audience=db-batch&subject_token=%s' \
    "$GT" "$JT" "$(cat "$T/ok.jwt")" > "$T/body"
  h2load -n 10000000 -c 4 -m 16 -d "$T/body" \
    -H 'content-type: application/x-www-form-urlencoded' "$BASE/v1/token" >/dev/null 2>&1 &
  LOAD_PIDS="$LOAD_PIDS $!"
fi
sleep 2
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
for p in $LOAD_PIDS; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
LOAD_PIDS=""

# Every credential a client received (a complete 200 body) must be in the log.
cat "$T/first" "$T"/resp.* | grep -o '"access_token":"[^"]*"' | sed 's/.*:"\(.*\)"/\1/' > "$T/tokens.txt" || true
got=$(wc -l < "$T/tokens.txt")
[ "$got" -gt 10 ] || fail "only $got credentials received under load"
echo "ok - $got credentials received before kill -9 ($(stat -c %s "$T/audit.log") bytes of log)"
if [ "${AUDIT_PREALLOC:-0}" -gt 0 ]; then
  # The file runs ahead of its last line with zeros; audit verify accepts them after the
  # last complete line. What else a kill leaves after the last line is reported there: a
  # line cut short (torn), or a later line that landed beyond an unwritten one (non-zero
  # bytes after zeros); the restart below cuts both.
  zt=$(python3 - "$T/audit.log" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
nl = d.rfind(b'\n') + 1
z = len(d) - len(d.rstrip(b'\0'))
print(z)
PY
)
  [ "$zt" -gt 0 ] || fail "preallocated log has no zero tail after kill -9"
  vout=$("$IDMINT" audit verify "$T/audit.log" --jwks "$T/idmint.jwks.json" 2>&1) ||
    case "$vout" in *incomplete*|*"after the zero-filled region"*) ;;
      *) fail "audit verify of the killed log: $vout" ;; esac
  echo "ok - kill -9 left a $zt-byte zero tail; audit verify: $(tail -1 <<< "$vout")"
fi

# Restart: recovery cuts a torn tail; new issuance continues the chain.
start_server
curl -s "$BASE/v1/token" --data-urlencode "grant_type=$GT" --data-urlencode "subject_token_type=$JT" \
  --data-urlencode "subject_token@$T/ok.jwt" --data-urlencode "audience=db-batch" \
  | grep -o '"access_token":"[^"]*"' | sed 's/.*:"\(.*\)"/\1/' >> "$T/tokens.txt"
# /v1/introspect knows both profiles: a batch token minted before the crash is active, the
# same token with one proof character changed is not.
bt=$(grep -m1 '^eyJhbGciOiJFZERTQS1NVEIx' "$T/tokens.txt" || true)
if [ -n "$bt" ]; then
  r=$(curl -s "$BASE/v1/introspect" --data-urlencode "token=$bt")
  case "$r" in '{"active":true,'*) ;; *) fail "introspect batch token: $r" ;; esac
  c=${bt: -20:1}; [ "$c" = Q ] && n=R || n=Q
  r=$(curl -s "$BASE/v1/introspect" --data-urlencode "token=${bt:0:${#bt}-20}$n${bt: -19}")
  [ "$r" = '{"active":false}' ] || fail "introspect altered batch token: $r"
  echo "ok - /v1/introspect: batch token active, altered copy inactive"
fi
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "server did not stop cleanly"
SERVER_PID=""

if [ "${AUDIT_PREALLOC:-0}" -gt 0 ]; then
  [ "$(tail -c 1 "$T/audit.log" | od -An -c | tr -d ' ')" = '\n' ] ||
    fail "after a clean stop the preallocated log does not end with its last line"
  echo "ok - clean stop truncated the preallocated log to its last line"
fi
out=$("$IDMINT" audit verify "$T/audit.log" --jwks "$T/idmint.jwks.json" --tokens "$T/tokens.txt" 2>&1) \
  || fail "audit verify: $out"
echo "ok - $out"
if grep -q audit_recovered "$T/server.err"; then
  echo "ok - restart cut a torn tail: $(grep -o 'torn_tail_bytes[^,}]*' "$T/server.err" | head -1)"
fi
case "$out" in *denials*) ;; *) fail "no summary: $out" ;; esac
