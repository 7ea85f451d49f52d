#!/usr/bin/env bash
# make run: start the server on the embedded default (examples/dev.conf) with generated
# development keys, a sample identity issuer and a subject token, and print a working
# curl example. Everything generated lives in build/dev/ (re-used on the next run).
set -euo pipefail
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
dev=${IDMINT_DEV_DIR:-$src/build/dev}
port=${IDMINT_DEV_PORT:-8080}
mkdir -p "$dev"
sed -e "s/127.0.0.1:8080/127.0.0.1:$port/g" "$src/examples/dev.conf" > "$dev/dev.conf"
[ -d "$dev/keys" ] || "$bin" keys new --dir "$dev/keys" >/dev/null
[ -d "$dev/issuer" ] || "$bin" keys new --dir "$dev/issuer" >/dev/null
"$bin" jwks --dir "$dev/issuer" > "$dev/issuer.jwks.json"
"$bin" token mint --keys "$dev/issuer" --iss https://issuer.dev.idmint.example \
  --sub "spiffe://dev.idmint.example/ns/payments/sa/api" --aud idmint --ttl 24h \
  --claim team=payments --claim env=dev > "$dev/subject.jwt"
cat <<MSG
idmint dev server on http://127.0.0.1:$port (config $dev/dev.conf)

Exchange the sample identity document for a credential scoped to payments-db:

  curl -s http://127.0.0.1:$port/v1/token \\
    -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\
    -d subject_token_type=urn:ietf:params:oauth:token-type:jwt \\
    -d subject_token=\$(cat $dev/subject.jwt) \\
    -d audience=payments-db

Same over HTTP/2: add --http2-prior-knowledge. Offline, without the server:
  $bin token exchange --config $dev/dev.conf --subject-token @$dev/subject.jwt --audience payments-db

Discovery: curl -s http://127.0.0.1:$port/.well-known/openid-configuration
Stop with Ctrl-C (SIGINT drains and exits); reload with kill -HUP.

MSG
exec "$bin" serve --config "$dev/dev.conf"
