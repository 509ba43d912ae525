# bench/scenarios/pkjwt.sh, sourced by bench/run: the token rate of a client that authenticates with
# private_key_jwt (issue 22), beside the client-secret rate in the same round. The client's ES256 key pair is
# made for the run (node:crypto) in the run's temporary directory, its public half registered through the CLI
# (`client create --auth-method private_key_jwt --jwks`). Before each measured run, one token request body per
# request the run can send is signed in advance, each assertion with its own jti (a jti is single-use), and wrk
# sends each body once (bench/wrk/load.lua, BENCH_BODY_FILE). Uses bench/run's registry (S_*), $work, $NODE,
# $BIN, $scope, $audience, $threads, $send_secs, die and log.

declare -A PKJWT_CLIENT
pkjwt_kid=bench-es256-1
# Assertions signed per second of sending: above any rate this machine reaches with them (a token needs an
# ES256 verification and a jti insert more than with a secret), so that no thread runs out.
pkjwt_rate_bound=16000

# pkjwt_register NAME: the private_key_jwt client at server NAME (the key pair is made once per run).
pkjwt_register() {
  local name=$1 dir=$work/$1 client
  if [ ! -f "$work/pkjwt.pem" ]; then
    (umask 077 && "$NODE" "$BENCH_DIR/node/assertions.mjs" keys "$pkjwt_kid" "$work/pkjwt.jwks.json" "$work/pkjwt.pem") ||
      die "cannot make the private_key_jwt key pair"
  fi
  client=$(PARTNERGATE_DATABASE_URL=${S_DB[$name]} "$BIN" client create --partner benchco --name "bench private_key_jwt" \
    --scope "$scope" --audience "$audience" --auth-method private_key_jwt --jwks "$work/pkjwt.jwks.json" --json \
    2>>"$dir/cli.log") || die "$name: registering the private_key_jwt client failed (see $dir/cli.log)"
  PKJWT_CLIENT[$name]=$(jq -er .client.id <<<"$client") || die "$name: no client id in $client"
}

# pkjwt_request NAME: for bench/run's measure (its locals url, body_file, ctype, event): signs the run's
# assertions into a fresh file and points the request at it.
pkjwt_request() {
  local name=$1 count=$((pkjwt_rate_bound * send_secs)) started
  [ -n "${PKJWT_CLIENT[$name]:-}" ] || die "$name has no private_key_jwt client (pkjwt_register)"
  url="${S_URL[$name]}${S_TOKEN_PATH[$name]}"
  body_file=$work/pkjwt.bodies
  started=$(now_ms)
  "$NODE" "$BENCH_DIR/node/assertions.mjs" bodies "$work/pkjwt.pem" "$pkjwt_kid" "${PKJWT_CLIENT[$name]}" \
    "$url" "$scope" "$count" "$body_file" || die "cannot sign the assertions"
  log "$name: $count assertions signed in $(($(now_ms) - started)) ms"
  ctype=application/x-www-form-urlencoded
  event=token.request
}
