#!/usr/bin/env bash
# idmint keys / jwks / token mint|verify|inspect from the command line: exit codes,
# modes of what it writes, refusals that name the file or flag, and --help everywhere.
set -uo pipefail
: "${IDMINT:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # name want_rc cmd...
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, wanted $want"; cat "$tmp/out" "$tmp/err"; fail=1
  else
    echo "ok   $name"
  fi
}
has() { # name pattern file
  grep -q -- "$2" "$3" || { echo "FAIL $1: '$2' not in $(cat "$3")"; fail=1; }
}

for c in "keys" "jwks" "token" "token mint" "token verify" "token inspect" "token exchange"; do
  expect "$c --help" 0 $IDMINT $c --help
  has "$c --help" "usage" "$tmp/out"
done
expect "keys without subcommand" 2 $IDMINT keys
expect "keys new without --dir" 2 $IDMINT keys new
expect "keys new bad alg" 2 $IDMINT keys new --dir "$tmp/k" --alg HS256
has "bad alg names the flag" "--alg" "$tmp/err"
expect "token mint missing flags" 2 $IDMINT token mint --keys "$tmp/k"
expect "token mint bad ttl" 2 $IDMINT token mint --keys "$tmp/k" --sub s --aud a --ttl 5x
has "bad ttl names the flag" "--ttl" "$tmp/err"

expect "keys new" 0 $IDMINT keys new --dir "$tmp/k"
kid=$(cat "$tmp/out")
[ ${#kid} = 43 ] || { echo "FAIL kid length ${#kid}"; fail=1; }
[ "$(stat -c %a "$tmp/k")" = 700 ] || { echo "FAIL dir mode $(stat -c %a "$tmp/k")"; fail=1; }
[ "$(stat -c %a "$tmp/k/$kid.json")" = 600 ] || { echo "FAIL file mode"; fail=1; }
expect "keys new ES256" 0 $IDMINT keys new --dir "$tmp/k" --alg ES256
expect "keys list" 0 $IDMINT keys list --dir "$tmp/k"
has "list shows the kid" "$kid" "$tmp/out"
has "list shows state" "active" "$tmp/out"
expect "jwks" 0 $IDMINT jwks --dir "$tmp/k"
cp "$tmp/out" "$tmp/jwks.json"
has "jwks has the kid" "\"kid\":\"$kid\"" "$tmp/jwks.json"
grep -q '"d"' "$tmp/jwks.json" && { echo "FAIL private member published"; fail=1; }

chmod 644 "$tmp/k/$kid.json"
expect "group-readable key file refused" 1 $IDMINT keys list --dir "$tmp/k"
has "refusal names the file" "$kid.json" "$tmp/err"
has "refusal names the mode" "0644" "$tmp/err"
chmod 600 "$tmp/k/$kid.json"
head -c 40 "$tmp/k/$kid.json" >"$tmp/trunc" && chmod 600 "$tmp/trunc"
cp "$tmp/k/$kid.json" "$tmp/saved"
cp "$tmp/trunc" "$tmp/k/$kid.json"
expect "truncated key file refused" 1 $IDMINT jwks --dir "$tmp/k"
has "truncation is named" "truncated" "$tmp/err"
cp "$tmp/saved" "$tmp/k/$kid.json"

expect "token mint" 0 $IDMINT token mint --keys "$tmp/k" --sub alice --aud db --ttl 5m --scope "r w"
tok=$(cat "$tmp/out")
expect "token verify" 0 $IDMINT token verify --jwks "$tmp/jwks.json" --audience db "$tok"
has "verify prints claims" '"sub": "alice"' "$tmp/out"
printf '%s\n' "$tok" >"$tmp/tok"
expect "token verify @FILE" 0 $IDMINT token verify --jwks "$tmp/jwks.json" "@$tmp/tok"
expect "token verify stdin" 0 $IDMINT token verify --jwks "$tmp/jwks.json" - <"$tmp/tok"
expect "token verify wrong audience" 1 $IDMINT token verify --jwks "$tmp/jwks.json" --audience x "$tok"
has "audience reason" "IDM_ERR_JWT_AUDIENCE" "$tmp/err"
expect "token verify wrong issuer" 1 $IDMINT token verify --jwks "$tmp/jwks.json" --issuer x "$tok"
has "issuer reason" "IDM_ERR_JWT_ISSUER" "$tmp/err"
expect "token verify garbage" 1 $IDMINT token verify --jwks "$tmp/jwks.json" "a.b"
has "format reason" "IDM_ERR_JWS_FORMAT" "$tmp/err"
expect "token verify missing jwks" 1 $IDMINT token verify --jwks "$tmp/nope.json" "$tok"
has "missing jwks named" "nope.json" "$tmp/err"
expect "token mint --claim" 0 $IDMINT token mint --keys "$tmp/k" --alg ES256 --sub s --aud a \
  --ttl 1m --iss https://issuer.test --claim uid=1000 --claim ns=payments \
  --claim 'str="1000"' --claim 'obj={"k":[1,2]}' --claim iat=1 --claim nbf=1 --claim exp=2
tok2=$(cat "$tmp/out")
expect "expired via --claim exp" 1 $IDMINT token verify --jwks "$tmp/jwks.json" "$tok2"
has "expiry reason" "expired" "$tmp/err"
expect "token inspect" 0 $IDMINT token inspect "$tok2"
has "inspect is labelled" "UNVERIFIED" "$tmp/out"
has "inspect numbers" '"uid": 1000' "$tmp/out"
has "inspect strings" '"str": "1000"' "$tmp/out"
has "inspect string" '"ns": "payments"' "$tmp/out"
has "inspect objects" '"k": \[' "$tmp/out"
expect "keys rotate" 0 $IDMINT keys rotate --dir "$tmp/k" --alg EdDSA
has "rotate lists next" "next" "$tmp/out"
expect "keys rotate bad ttl" 2 $IDMINT keys rotate --dir "$tmp/k" --max-token-ttl nope
exit $fail
