# bench/scenarios/verifier.sh: the resource-server scenarios of bench/run (--verifier), sourced by it and run
# against its PostgreSQL partnergate (issue 20's targets). It uses bench/run's helpers and registry (S_URL,
# measure, fetch_token, ...) and appends its wrk runs to the same results, so they land in the same table.
#
# - `hello`: GET /hello on verifier/examples/bench_hello.rs, one process per guard (bare, the middleware with a
#   warm token, the middleware with its verified-token cache off so that every request is a first-seen token,
#   a plain jsonwebtoken decode per request, the middleware with usage reports to the partnergate), measured
#   in alternation with one token from the partnergate;
# - `ingest`: 1000-record batches POSTed to /admin/v1/requests by several connections at once (each one
#   reporter), checked against the rows the database gained;
# - how soon one request served with reports on is listed by GET /admin/v1/requests (probes, one at a time).
# Figures that are not a wrk run go to verifier.json next to the results, for report.mjs.

VERIFIER_MODES=(bare verifier verifier-cold jsonwebtoken verifier-reporter)
VERIFIER_INGEST_CONNECTIONS=(4 8)
VERIFIER_PROBES=${VERIFIER_PROBES:-20}
VERIFIER_ROUTE=/hello

# The request of a `measure` run of these scenarios (called by measure, whose locals it sets).
scenario_request_hello() {
  url="${S_URL[$1]}$VERIFIER_ROUTE"
  method=GET
  auth="Bearer $verifier_token"
}

scenario_request_ingest() {
  url="${S_URL[$1]}/admin/v1/requests"
  method=POST
  blob_file=$verifier_batch
  auth="Bearer $verifier_report_token"
  ctype=application/json
}

# verifier_start_hello MODE: one bench_hello process, registered like a server (its CPU and RSS are measured).
verifier_start_hello() {
  local mode=$1 name="hello-$1" dir="$work/hello-$1" url=""
  mkdir -p "$dir"
  # Port 0: the system picks a free one (no race with other programs), which bench_hello prints.
  BENCH_HELLO_MODE=$mode BENCH_HELLO_BIND=127.0.0.1:0 PARTNERGATE_ISSUER=$verifier_issuer \
    BENCH_HELLO_AUDIENCE=$audience BENCH_HELLO_CLIENT_ID=$verifier_reporter_id \
    BENCH_HELLO_CLIENT_SECRET=$verifier_reporter_secret RUST_LOG=warn \
    "$verifier_hello_bin" >"$dir/server.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local deadline=$(($(now_ms) + 30000))
  # Ready once it admits the token (the middleware's first request also loads the issuer's metadata and keys).
  until [ -n "$url" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $verifier_token" \
    "$url$VERIFIER_ROUTE" 2>/dev/null)" = 200 ]; do
    kill -0 "$pid" 2>/dev/null && [ "$(now_ms)" -lt "$deadline" ] || {
      tail -20 "$dir/server.log" >&2
      die "bench_hello $mode did not answer 200 to the token"
    }
    url=$(sed -n 's/^bench_hello listening on //p' "$dir/server.log")
    sleep 0.05
  done
  S_URL[$name]=$url
  S_PID[$name]=$pid
  S_KIND[$name]=hello
  S_BACKEND[$name]=postgres
  S_LABEL[$name]="bench_hello $mode"
  S_READY_MS[$name]=0
  log "$name ready on ${S_URL[$name]}"
}

# verifier_batch_file CLIENT PARTNER PATH: a batch of 1000 records as a reporter sends them.
verifier_batch_file() {
  jq -nc --arg client "$1" --arg partner "$2" --arg time "$(date -u +%Y-%m-%dT%H:%M:%S.000Z)" '
    {records: [range(1000) | {time: $time, method: "GET", route: "/bench/ingest/{id}", status: (if . % 50 == 0 then 404 else 200 end),
      latency_ms: (. % 7), client_id: $client, partner_id: $partner, jti: "bench-\(.)"}]}' >"$3"
}

# request_log_rows DATABASE ROUTE: the records of one route in the request log.
request_log_rows() { psql "$1" -qAtX -c "SELECT count(*) FROM request_log WHERE route = '$2'"; }

# verifier_settle DATABASE: until the reporter's backlog from the hello runs is stored (its records of
# GET /hello stop growing for 2 s, or 60 s), so that it does not load the ingestion runs.
verifier_settle() {
  local last=-1 now_rows deadline=$(($(now_ms) + 60000))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    now_rows=$(request_log_rows "$1" "$VERIFIER_ROUTE")
    [ "$now_rows" = "$last" ] && return
    last=$now_rows
    sleep 2
  done
}

# verifier_probe: one request on /probe with reports on, then GET /admin/v1/requests until it is listed;
# prints the milliseconds in between.
verifier_probe() {
  local hello=${S_URL[hello-verifier-reporter]} admin=${S_URL[$verifier_server]} started since deadline
  started=$(now_ms)
  since=$(date -u -d "@$((started / 1000)).$(printf '%03d' $((started % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
  curl -sf -o /dev/null -H "Authorization: Bearer $verifier_token" "$hello/probe" || die "the probe request failed"
  deadline=$((started + 30000))
  while :; do
    local listed
    listed=$(curl -sf -H "Authorization: Bearer $verifier_admin_token" \
      "$admin/admin/v1/requests?route=/probe&since=$since&limit=1" | jq '.items | length') ||
      die "GET /admin/v1/requests failed"
    [ "$listed" -gt 0 ] && break
    [ "$(now_ms)" -lt "$deadline" ] || die "a probe was not listed within 30 s"
    sleep 0.02
  done
  echo $(($(now_ms) - started))
}

verifier_run() {
  verifier_server=partnergate-postgres
  if [ -z "${S_URL[$verifier_server]:-}" ]; then
    log "verifier: needs the postgres backend (--backends postgres); skipped"
    return
  fi
  verifier_hello_bin=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/bench_hello
  case "$verifier_hello_bin" in /*) ;; *) verifier_hello_bin="$ROOT/$verifier_hello_bin" ;; esac
  if [ "$build" = 1 ]; then
    log "cargo build --release -p partnergate-verifier --example bench_hello"
    (cd "$ROOT" && cargo build --release --quiet -p partnergate-verifier --example bench_hello)
  fi
  [ -x "$verifier_hello_bin" ] || die "$verifier_hello_bin does not exist (build it, or drop --skip-build)"

  local url=${S_URL[$verifier_server]} db=${S_DB[$verifier_server]} dir=$work/$verifier_server metadata
  metadata=$(curl -sf "$url/.well-known/oauth-authorization-server") || die "verifier: no metadata"
  verifier_issuer=$(jq -er .issuer <<<"$metadata")
  local admin_audience
  admin_audience=$(jq -er .partnergate_admin_audience <<<"$metadata")
  # The operator's admin client (another one if the big-audit scenario made one) and the resource server's
  # reporting client, as the README's request-log section registers them.
  local admin reporter
  admin=$(PARTNERGATE_DATABASE_URL=$db PARTNERGATE_BIND=${url#http://} "$BIN" admin bootstrap --force --json \
    2>>"$dir/cli.log") || die "verifier: admin bootstrap failed"
  reporter=$(PARTNERGATE_DATABASE_URL=$db "$BIN" client create --partner operator --name "bench reporter" \
    --scope authz.usage.report --audience "$admin_audience" --json 2>>"$dir/cli.log") ||
    die "verifier: creating the reporting client failed"
  verifier_reporter_id=$(jq -r .client.id <<<"$reporter")
  verifier_reporter_secret=$(jq -r .secret.secret <<<"$reporter")
  verifier_admin_token=$(curl -sf -H "Authorization: $(basic "$(jq -r .client.id <<<"$admin")" "$(jq -r .secret.secret <<<"$admin")")" \
    -d grant_type=client_credentials "$url/oauth2/token" | jq -er .access_token) || die "verifier: no admin token"
  verifier_report_token=$(curl -sf -H "Authorization: $(basic "$verifier_reporter_id" "$verifier_reporter_secret")" \
    -d grant_type=client_credentials -d scope=authz.usage.report "$url/oauth2/token" | jq -er .access_token) ||
    die "verifier: no reporting token"
  verifier_token=$(fetch_token "$verifier_server")

  local mode
  for mode in "${VERIFIER_MODES[@]}"; do verifier_start_hello "$mode"; done

  verifier_batch=$work/ingest-batch.json
  # Records of the bench token's client (its id from its Basic credentials) and partner.
  verifier_batch_file "$(base64 -d <<<"${S_AUTH[$verifier_server]#Basic }" | cut -d: -f1)" benchco "$verifier_batch"

  local round conns before after requests reported=0
  for round in $(seq 1 "$rounds"); do
    log "round $round, verifier: GET $VERIFIER_ROUTE at 64 connections, ${duration}s per guard"
    for mode in "${VERIFIER_MODES[@]}"; do
      measure "$round" verifier hello 64 "hello-$mode"
      [ "$mode" = verifier-reporter ] && reported=$((reported + $(tail -1 "$results" | jq .requests)))
    done
    verifier_settle "$db"
    for conns in "${VERIFIER_INGEST_CONNECTIONS[@]}"; do
      log "round $round, verifier: request-log ingestion, 1000-record batches from $conns connections"
      before=$(request_log_rows "$db" "/bench/ingest/{id}")
      measure "$round" verifier ingest "$conns" "$verifier_server"
      after=$(request_log_rows "$db" "/bench/ingest/{id}")
      requests=$(tail -1 "$results" | jq .requests)
      [ $((after - before)) = $((requests * 1000)) ] ||
        failures+=("ingest c$conns: the request log gained $((after - before)) rows for $requests accepted batches of 1000")
    done
  done

  log "verifier: $VERIFIER_PROBES probes of how soon a request is listed by GET /admin/v1/requests"
  local times=() probe
  for probe in $(seq 1 "$VERIFIER_PROBES"); do
    # At a random point of the reporter's flush interval (1 s).
    sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
    times+=("$(verifier_probe)")
  done
  # Of the requests served with reports on (wrk's count; the readiness and probe requests aside), how many
  # the request log holds: the reporter drops the oldest records when its queue (100,000) is full.
  local stored
  stored=$(request_log_rows "$db" "$VERIFIER_ROUTE")
  printf '%s\n' "${times[@]}" | sort -n | jq -Rsc --argjson served "$reported" --argjson stored "$stored" '
    split("\n") | map(select(length > 0) | tonumber) as $t
    | {reported: {served: $served, stored: $stored}, visibility: {probes: ($t | length), p50_ms: $t[(($t | length) * 0.5 | floor)],
       p99_ms: $t[(($t | length) * 0.99 | floor)], max_ms: $t[-1]}}' >"$(dirname "$results")/verifier.json"
  log "verifier: listed after $(jq -c .visibility "$(dirname "$results")/verifier.json")"
}
