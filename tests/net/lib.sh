# Shared set-up for the process-level server tests: a scratch directory with signing keys,
# a sample OIDC issuer (keys + JWKS), subject tokens, a config on a free 127.0.0.1 port,
# and start/stop helpers. Source it; it needs IDMINT (the binary) and SRC_DIR.
set -euo pipefail
: "${IDMINT:?IDMINT must name the idmint binary}"
: "${SRC_DIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/idmint-test.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [ -f "$T/server.err" ] && tail -5 "$T/server.err" >&2; exit 1; }
ok() { echo "ok - $*"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ISS=https://issuer.test.idmint.example
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"

# setup_env [extra server lines]: keys, issuer, tokens, config.
setup_env() {
  "$IDMINT" keys new --dir "$T/keys" >/dev/null
  "$IDMINT" keys new --dir "$T/issuer" >/dev/null
  "$IDMINT" jwks --dir "$T/issuer" > "$T/issuer.jwks.json"
  mint() { "$IDMINT" token mint --keys "$T/issuer" --iss "$ISS" --aud idmint --ttl 1h "$@" | tr -d "\n"; }
  mint --sub spiffe://t/payments/api --claim team=payments --claim env=prod > "$T/payments.jwt"
  mint --sub spiffe://t/sandbox/x --claim team=payments --claim env=sandbox > "$T/sandbox.jwt"
  mint --sub spiffe://t/other --claim team=web > "$T/web.jwt"
  "$IDMINT" keys new --dir "$T/rogue" >/dev/null
  "$IDMINT" token mint --keys "$T/rogue" --iss "$ISS" --aud idmint --ttl 1h --sub evil \
    --claim team=payments | tr -d "\n" > "$T/rogue.jwt"
  write_config "${1:-}"
}

write_config() {
  cat > "$T/idmint.conf" <<CONF
server {
  listen          "127.0.0.1:$PORT"
  issuer          "$BASE"
  keys            "keys"
  audit           "audit.log"
  threads         2
  trusted_proxies [127.0.0.1/32]
  $1
}
trust "test-oidc" {
  kind     oidc
  issuer   "$ISS"
  jwks     "issuer.jwks.json"
  audience "idmint"
}
target "payments-db" {
  audience "spiffe://t/payments/db"
  ttl      5m
}
target "reports" {
  audience "https://reports.t"
  ttl      10m
}
permit "payments-api" {
  client trust == "test-oidc" and claims.team == "payments"
  target "payments-db"
  scope  "db.read db.write"
  ttl    2m
}
target "cache" {
  audience "https://cache.t"
  format   batch
  ttl      1m
}
permit "cache-access" {
  client claims.team == "payments"
  target "cache"
}
target "vault" {
  audience "https://vault.t"
  ttl      1m
}
permit "managed-devices" {
  client claims.team == "payments"
  target "vault"
  when   posture.disk == "encrypted" and posture.patch_level >= 3
}
permit "office-only" {
  client claims.team == "web"
  target "reports"
  when   source_ip in 10.0.0.0/8
}
forbid "no-sandbox" {
  client claims.env == "sandbox"
}
CONF
}

# start_server [serve flags...]: starts and waits until /healthz answers.
# Waits until the server in SERVER_PID answers /healthz; fails if it exits first.
wait_server() {
  for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start: $(cat "$T/server.err")"
    sleep 0.05
  done
  fail "server did not start"
}

start_server() {
  "$IDMINT" serve --config "$T/idmint.conf" "$@" 2> "$T/server.err" &
  SERVER_PID=$!
  wait_server
}

# start_server_fsize KIB: the server under a file-size limit (ulimit -f KIB), so that an
# audit write past it fails with EFBIG as on a full disk.
start_server_fsize() {
  ( ulimit -f "$1"; exec "$IDMINT" serve --config "$T/idmint.conf" 2> "$T/server.err" ) &
  SERVER_PID=$!
  wait_server
}

# exchange_until_503 [PAUSE]: payments-db exchanges (at most 200, PAUSE seconds apart) until
# the first answer that is not 200, which must be 503 temporarily_unavailable. The tokens
# received are appended to $T/issued; got503 is the 503's request number ("" if none came).
exchange_until_503() {
  : > "$T/issued"
  got503=""
  local i r
  for i in $(seq 1 200); do
    r=$(exchange "$T/payments.jwt" payments-db)
    case "${r%% *}" in
    200) sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' <<< "${r#* }" >> "$T/issued" ;;
    503) grep -q '"error":"temporarily_unavailable"' <<< "$r" || fail "503 without the documented error: $r"
         got503=$i; return 0 ;;
    *) fail "request $i: unexpected answer $r" ;;
    esac
    [ -z "${1:-}" ] || sleep "$1"
  done
}

stop_server() {
  kill -TERM "$SERVER_PID"
  local rc=0
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  return $rc
}

GT=urn:ietf:params:oauth:grant-type:token-exchange
JWT_TYPE=urn:ietf:params:oauth:token-type:jwt

# exchange TOKEN_FILE AUDIENCE [curl args...]: prints "STATUS BODY".
exchange() {
  local f=$1 aud=$2
  shift 2
  curl -s -o "$T/resp" -w '%{http_code}' "$@" "$BASE/v1/token" \
    --data-urlencode "grant_type=$GT" --data-urlencode "subject_token_type=$JWT_TYPE" \
    --data-urlencode "subject_token@$f" --data-urlencode "audience=$aud"
  echo " $(cat "$T/resp")"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
