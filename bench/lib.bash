# Shared set-up of the load scripts (bench/h2load.sh, bench/latency.sh): one idmint
# configuration, so that every script measures the same server. Source it after setting
# T (scratch directory) and IDMINT (the binary). Named .bash, not .sh, so that
# scripts/bench.sh (which runs every bench/*.sh) does not run it.
#   bench_port                        a free 127.0.0.1 port
#   bench_wait_up URL NAME            wait until URL answers over h2c, else exit 1
#   bench_setup                       keys, a sample OIDC issuer, a subject token, and the
#                                     token-exchange forms $T/form-jwt (target "db", jwt
#                                     profile) and $T/form-batch (target "cache", batch profile)
#   bench_conf FILE PORT THREADS FSYNC   the server configuration (BENCH_PREALLOC=MiB:
#                                        server.audit_preallocate, default 0 = off)
bench_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_wait_up() {
  for _ in $(seq 1 100); do
    curl -sf --http2-prior-knowledge "$1" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$2: $1 did not come up" >&2
  exit 1
}

bench_setup() {
  "$IDMINT" keys new --dir "$T/keys" >/dev/null
  "$IDMINT" keys new --dir "$T/issuer" >/dev/null
  "$IDMINT" jwks --dir "$T/issuer" > "$T/issuer.jwks.json"
  "$IDMINT" token mint --keys "$T/issuer" --iss https://issuer.bench --aud idmint --ttl 1h \
    --sub spiffe://bench/ns/payments/sa/api --claim team=payments | tr -d '\n' > "$T/subject.jwt"
  printf 'grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Atoken-exchange&subject_token_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Atoken-type%%3Ajwt&audience=db&subject_token=%s' \
    "$(cat "$T/subject.jwt")" > "$T/form-jwt"
  sed 's/audience=db/audience=cache/' "$T/form-jwt" > "$T/form-batch"
}

bench_conf() {
  cat > "$1" <<CONF
server {
  listen  "127.0.0.1:$2"
  issuer  "http://127.0.0.1:$2"
  keys    "keys"
  threads $3
  audit   "audit.log"
  fsync   $4
  audit_preallocate ${BENCH_PREALLOC:-0}
}
trust "bench" {
  kind oidc
  issuer "https://issuer.bench"
  jwks "issuer.jwks.json"
  audience "idmint"
}
target "db" {
  audience "spiffe://bench/db"
  ttl 5m
}
target "cache" {
  audience "spiffe://bench/cache"
  format batch
  ttl 5m
}
permit "payments" {
  client trust == "bench" and claims.team == "payments"
  target "db", "cache"
  scope "db.read"
}
CONF
}

# bench_www: the reference servers' fixed 300-byte body, $T/www/body.
bench_www() {
  mkdir -p "$T/www"
  head -c 300 /dev/zero | tr '\0' x > "$T/www/body"
}

# bench_h2o_conf FILE PORT: h2o with one thread serving $T/www (bench_www) over h2c.
bench_h2o_conf() {
  bench_www
  cat > "$1" <<CONF
user: $(id -un)
listen:
  host: 127.0.0.1
  port: $2
num-threads: 1
access-log: /dev/null
error-log: $T/h2o.err
pid-file: $T/h2o.pid
hosts:
  default:
    paths:
      /:
        file.dir: $T/www
CONF
}
