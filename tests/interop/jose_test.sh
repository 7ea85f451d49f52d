#!/usr/bin/env bash
# Interop with the npm `jose` package (a widely used, independent JOSE implementation),
# in separate Node processes:
#   1. jose verifies idmint's EdDSA and ES256 tokens against idmint's published JWKS;
#   2. tokens jose signs with idmint's private key files are accepted by
#      `idmint token verify`, and ones signed with a wrong key, for a wrong audience,
#      already expired, or with alg "none" are refused with the right reason.
# Skips (exit 77) when node or the jose package is missing.
set -uo pipefail
: "${IDMINT:?}" "${SRC_DIR:?}"
here="$SRC_DIR/tests/interop"
if ! command -v node >/dev/null; then echo "SKIP: node is not installed"; exit 77; fi
if [ ! -d "$here/node_modules/jose" ]; then
  echo "SKIP: npm package jose missing (run scripts/install-deps.sh or npm ci in tests/interop)"
  exit 77
fi
helper() { node "$here/jose_interop.mjs" "$@"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name expected_rc actual_rc
  if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1 (exit $3, wanted $2)"; fail=1; fi
}

"$IDMINT" keys new --dir "$tmp/keys" >/dev/null || exit 1
"$IDMINT" keys new --dir "$tmp/keys" --alg ES256 >/dev/null || exit 1
"$IDMINT" keys rotate --dir "$tmp/keys" >/dev/null || exit 1   # NEXT keys in the JWKS too
"$IDMINT" jwks --dir "$tmp/keys" >"$tmp/jwks.json" || exit 1
iss=https://idmint.test aud=spiffe://corp.example/payments/db

for alg in EdDSA ES256; do
  tok=$("$IDMINT" token mint --keys "$tmp/keys" --alg $alg --sub workload --aud "$aud" \
        --iss "$iss" --ttl 5m --scope "db.read") || exit 1
  helper verify "$tmp/jwks.json" "$tok" "$aud" "$iss" >"$tmp/out" 2>&1
  check "jose verifies idmint $alg token" 0 $?
  grep -q '"sub":"workload"' "$tmp/out" || { echo "FAIL jose payload: $(cat "$tmp/out")"; fail=1; }
  helper verify "$tmp/jwks.json" "$tok" "other-audience" "$iss" >/dev/null 2>&1
  check "jose refuses idmint $alg token for another audience" 1 $?
  # tampered payload
  bad="${tok%%.*}.$(printf '%s' '{"sub":"admin"}' | base64 -w0 | tr '+/' '-_' | tr -d '=').${tok##*.}"
  helper verify "$tmp/jwks.json" "$bad" "$aud" "$iss" >/dev/null 2>&1
  check "jose refuses tampered idmint $alg token" 1 $?
done

# The reverse direction: jose signs with idmint's active private keys.
active_file() { # alg -> key file of the ACTIVE key
  for f in "$tmp"/keys/*.json; do
    if grep -q "\"alg\":\"$1\"" "$f" && grep -q '"state":"active"' "$f"; then echo "$f"; return; fi
  done
}
for alg in EdDSA ES256; do
  kf=$(active_file $alg)
  [ -n "$kf" ] || { echo "FAIL no active $alg key"; exit 1; }
  tok=$(helper sign "$kf" "$aud" "$iss" normal) || exit 1
  "$IDMINT" token verify --jwks "$tmp/jwks.json" --audience "$aud" --issuer "$iss" "$tok" \
    >"$tmp/out" 2>&1
  check "idmint accepts jose-signed $alg token" 0 $?
  grep -q '"sub": "signed-by-jose"' "$tmp/out" || { echo "FAIL claims: $(cat "$tmp/out")"; fail=1; }
  for variant in wrong-key expired none wrongaud; do
    v=$variant a="$aud"
    [ $variant = wrongaud ] && v=normal a=https://not-this-audience
    tok=$(helper sign "$kf" "$a" "$iss" $v) || exit 1
    "$IDMINT" token verify --jwks "$tmp/jwks.json" --audience "$aud" --issuer "$iss" "$tok" \
      >"$tmp/out" 2>&1
    rc=$?
    check "idmint refuses jose $alg token ($variant)" 1 $rc
    case $variant in
      wrong-key) want=IDM_ERR_JWS_SIGNATURE ;;
      expired)   want=IDM_ERR_JWT_EXPIRED ;;
      none)      want=IDM_ERR_JWS_ALG_REFUSED ;;
      wrongaud)  want=IDM_ERR_JWT_AUDIENCE ;;
    esac
    grep -q "$want" "$tmp/out" || { echo "FAIL reason for $variant: $(cat "$tmp/out")"; fail=1; }
  done
done
exit $fail
