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
#   bench_measure_init                after setting T, DUR (e.g. 3s), CLIENT_CPUS and
#                                     IDMLOAD: HZ, WARM and DUR_S for the two below
#   bench_h2load_run NAME PID URL [h2load args]    one closed-loop h2load run (-c 16 -m 32)
#   bench_idmload_run NAME PID URL [idmload args]  the same with idmload
#   bench_ticks PID                   CPU ticks (user + system, all threads) of a process
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

# CPU ticks (user + system, all threads) of a process.
bench_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

bench_measure_init() {
  HZ=$(getconf CLK_TCK)
  WARM=1 # seconds of warm-up (h2load --warm-up-time, idmload --warm-up)
  DUR_S=$(python3 -c "import re,sys; m=re.fullmatch(r'([0-9.]+)(ms|s|m)?','$DUR'); print(float(m.group(1))*{'ms':0.001,'s':1,None:1,'m':60}[m.group(2)])")
}

# bench_h2load_run NAME PID URL [h2load args]: prints "req/s p50_ms p99_ms non2xx req_per_cpu_s" and keeps
# the output. req_per_cpu_s divides the 200s that completed inside a measuring window by the
# server's CPU seconds (utime + stime, all threads) in the same window; it stays comparable
# when other work shares the machine (wall req/s does not). The window starts 0.25 s after
# h2load's warm-up has ended and stops 0.25 s before its last second: h2load counts and logs
# only the requests after the warm-up, so the CPU of the warm-up must not be counted either
# (before this window, the ticks of 4 s were divided by the requests of 3 s).
bench_h2load_run() {
  local name=$1 pid=$2 url=$3
  shift 3
  local hp
  taskset -c "$CLIENT_CPUS" h2load -c 16 -m 32 -t 1 -D "$DUR" --warm-up-time "${WARM}s" \
    --log-file "$T/$name.log" "$@" "$url" > "$T/$name.out" 2>&1 &
  hp=$!
  local w0 w1 t0 t1
  sleep "$(python3 -c "print($WARM + 0.25)")"
  w0=$(date +%s%6N) t0=$(bench_ticks "$pid")
  sleep "$(python3 -c "print(max(0.1, $DUR_S - 0.5))")"
  w1=$(date +%s%6N) t1=$(bench_ticks "$pid")
  wait "$hp" || true
  local rps bad
  rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$T/$name.out")
  bad=$(sed -n 's/^status codes: [0-9]* 2xx, \([0-9]*\) 3xx, \([0-9]*\) 4xx, \([0-9]*\) 5xx.*/\1 \2 \3/p' "$T/$name.out" | awk '{print $1+$2+$3}')
  python3 - "$T/$name.log" "${rps:-0}" "${bad:-0}" "$t0" "$t1" "$HZ" "$w0" "$w1" <<'PY2'
import sys
d = []
win = 0
w0, w1 = int(sys.argv[7]), int(sys.argv[8])
for line in open(sys.argv[1]):
    f = line.split('\t')
    if len(f) >= 3 and f[1] == '200':
        us = int(f[2])
        d.append(us)
        if w0 <= int(f[0]) + us < w1:  # start (epoch us) + duration: completed in the window
            win += 1
d.sort()
pct = lambda p: d[min(len(d) - 1, int(len(d) * p))] / 1000.0 if d else float('nan')
cpu_s = (float(sys.argv[5]) - float(sys.argv[4])) / float(sys.argv[6])
per_cpu = win / cpu_s if cpu_s > 0 else 0
print(f"{float(sys.argv[2]):.0f} {pct(0.5):.3f} {pct(0.99):.3f} {sys.argv[3]} {per_cpu:.0f}")
PY2
}
# bench_idmload_run NAME PID URL [idmload args]: closed loop with idmload (-c 16 -m 32), server CPU over
# the same kind of window as run(); prints "req/s req_per_cpu_s". h2load spends more CPU per
# response than idmload, so at a few hundred thousand req/s h2load's core, not the server,
# sets the pace and the server is measured half idle; these rows drive idmint and h2o with
# the lighter client, so both are compared saturated.
bench_idmload_run() {
  local name=$1 pid=$2 url=$3
  shift 3
  if [ ! -x "${IDMLOAD:-}" ]; then echo "0 0"; return; fi
  taskset -c "$CLIENT_CPUS" "$IDMLOAD" -c 16 -m 32 -D "$DUR" --warm-up "${WARM}s" --json "$@" \
    "$url" > "$T/$name.json" 2> "$T/$name.err" &
  local ip=$! w0 w1 t0 t1
  sleep "$(python3 -c "print($WARM + 0.25)")"
  w0=$(date +%s%6N) t0=$(bench_ticks "$pid")
  sleep "$(python3 -c "print(max(0.1, $DUR_S - 0.5))")"
  w1=$(date +%s%6N) t1=$(bench_ticks "$pid")
  wait "$ip" || true
  python3 - "$T/$name.json" "$t0" "$t1" "$HZ" "$w0" "$w1" <<'PY2' || echo "0 0"
import json, sys
r = json.load(open(sys.argv[1]))
ok = r["status"]["2xx"] / max(1, r["requests"]["completed"])
cpu_frac = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4]) / ((int(sys.argv[6]) - int(sys.argv[5])) / 1e6)
rate = r["rate"] * ok
print(f"{rate:.0f} {rate / cpu_frac if cpu_frac > 0 else 0:.0f}")
PY2
}
