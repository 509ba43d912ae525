# bench/scenarios/stream.sh, sourced by bench/run: the revocation stream under token load (issue 21), on one
# partnergate server (PostgreSQL in bench/run):
#
# - latency: the example resource server (orders_api, release build) follows the stream while wrk sends token
#   requests at 64 connections; bench/node/revocation-probe.mjs revokes a token at /oauth2/revoke, and disables
#   and enables a client through the admin API, each a given number of times, and after each change's 200 asks
#   the resource server every 5 ms until it refuses (accepts, after an enable) the token it accepted before.
#   Reported: p50 / p99 / max of those delays, and the token rate meanwhile. Then the same with the changes
#   made at a second instance on the same database (same issuer and keys), the resource server polling the first.
# - receivers: the token rate (bench/run's measure) with no receiver and with N orders_api processes
#   long-polling the stream, each with its own client, alternated twice per round; in both, a client is
#   disabled or enabled through the admin API twice a second by default (--stream-events), so that the receivers have events to fetch,
#   verify and acknowledge. Then the same without token load, for the server's CPU time alone: on a shared
#   2-core machine req/s moves by more than 1% from run to run, CPU time spent by the stream does not.
#
# Uses bench/run's registry (S_*), $work, $NODE, $BIN, $scope, $audience, $threads, $rounds, measure,
# free_port, wait_http, now_ms, die and log. Results: $stream_result (JSON) for bench/node/report.mjs.

stream_result=$work/stream.json
echo null >"$stream_result"
declare -A STREAM
# Changes per second during the receivers' runs (bench/run --stream-events; 0: none, the receivers only wait).
stream_events_per_sec=${stream_events_per_sec:-2}

# stream_setup NAME: an admin client, the receivers' clients (partner `operator`: authz.events.read for the
# stream, authz.usage.report for orders_api's usage reports), and the client whose tokens get turned off.
stream_setup() {
  local name=$1 url=${S_DB[$1]} dir=$work/$1 issuer=${S_URL[$1]} receivers=$2 out i
  cli() { PARTNERGATE_DATABASE_URL=$url PARTNERGATE_BIND=${issuer#http://} "$BIN" "$@" --json 2>>"$dir/cli.log"; }
  out=$(cli admin bootstrap --force) || die "$name: admin bootstrap failed (see $dir/cli.log)"
  STREAM[admin_id]=$(jq -r .client.id <<<"$out")
  STREAM[admin_secret]=$(jq -r .secret.secret <<<"$out")
  for i in $(seq 0 "$receivers"); do
    out=$(cli client create --partner operator --name "bench receiver $i" --scope authz.events.read \
      --scope authz.usage.report --audience "$issuer" --audience "$issuer/admin") ||
      die "$name: registering receiver $i failed (see $dir/cli.log)"
    STREAM[rx_id_$i]=$(jq -r .client.id <<<"$out")
    STREAM[rx_secret_$i]=$(jq -r .secret.secret <<<"$out")
  done
  out=$(cli client create --partner benchco --name "bench revoked" --scope "$scope" --audience "$audience") ||
    die "$name: registering the revoked client failed (see $dir/cli.log)"
  STREAM[victim_id]=$(jq -r .client.id <<<"$out")
  STREAM[victim_secret]=$(jq -r .secret.secret <<<"$out")
}

# stream_start_receiver NAME I: orders_api number I following NAME's stream with receiver client I; returns
# once it listens (it catches up with the stream first). Sets STREAM[pid_I] and STREAM[url_I].
stream_start_receiver() {
  local name=$1 i=$2 log=$work/$1/orders_api.$2.log deadline
  # Port 0: the system picks a free one, which orders_api prints once it listens.
  PARTNERGATE_ISSUER=${S_URL[$name]} ORDERS_API_AUDIENCE=$audience ORDERS_API_BIND=127.0.0.1:0 \
    ORDERS_API_CLIENT_ID=${STREAM[rx_id_$i]} ORDERS_API_CLIENT_SECRET=${STREAM[rx_secret_$i]} RUST_LOG=warn \
    "$ORDERS_API" >"$log" 2>&1 &
  STREAM[pid_$i]=$!
  pids+=("$!") # bench/run's cleanup stops it if the run fails
  deadline=$(($(now_ms) + 30000))
  until grep -q "^orders_api on http" "$log"; do
    kill -0 "${STREAM[pid_$i]}" 2>/dev/null || { cat "$log" >&2; die "orders_api $i exited"; }
    [ "$(now_ms)" -lt "$deadline" ] || { cat "$log" >&2; die "orders_api $i did not start within 30 s"; }
    sleep 0.05
  done
  STREAM[url_$i]=$(sed -n 's/^orders_api on \(http:[^ ]*\) .*/\1/p' "$log" | head -1)
}

stream_stop_receivers() {
  local i pid kept=()
  for i in "$@"; do kill "${STREAM[pid_$i]}" 2>/dev/null || true; done
  for i in "$@"; do wait "${STREAM[pid_$i]}" 2>/dev/null || true; done
  # Out of bench/run's list once reaped (pids get reused).
  for pid in "${pids[@]}"; do
    for i in "$@"; do [ "$pid" = "${STREAM[pid_$i]}" ] && continue 2; done
    kept+=("$pid")
  done
  pids=("${kept[@]}")
}

# stream_probe_env NAME [VAR=VALUE...] COMMAND...: COMMAND with the probe's settings in its environment, in place
# of the (sub)shell that calls it, so that its pid is the one to signal; call it in a subshell or in the background.
stream_probe_env() {
  local name=$1
  exec env PROBE_ISSUER=${S_URL[$name]} PROBE_SCOPE=$scope PROBE_ADMIN_ID=${STREAM[admin_id]} \
    PROBE_ADMIN_SECRET=${STREAM[admin_secret]} PROBE_VICTIM_ID=${STREAM[victim_id]} \
    PROBE_VICTIM_SECRET=${STREAM[victim_secret]} "${@:2}"
}

# stream_second_instance NAME: another partnergate on NAME's database, with its issuer, keys and settings;
# sets STREAM[second_url] and STREAM[second_pid].
stream_second_instance() {
  local name=$1 dir=$work/$1 port pid
  port=$(free_port)
  PARTNERGATE_DATABASE_URL=${S_DB[$name]} PARTNERGATE_BIND=127.0.0.1:$port PARTNERGATE_KEYS_DIR=$dir/keys \
    PARTNERGATE_ISSUER=${S_URL[$name]} PARTNERGATE_CLIENT_RATE_LIMIT_PER_MINUTE=0 \
    PARTNERGATE_AUTH_FAILURES_PER_MINUTE_PER_ADDRESS=1000000 "$BIN" serve >"$dir/server-b.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_http "http://127.0.0.1:$port/readyz" "$pid" || { tail -20 "$dir/server-b.log" >&2; die "$name: the second instance did not become ready"; }
  STREAM[second_url]=http://127.0.0.1:$port
  STREAM[second_pid]=$pid
}

# stream_latency NAME ITERATIONS WHERE: the delays from a change's 200 to the resource server's refusal, under
# token load at NAME; the changes made at NAME (WHERE=same) or at the second instance (WHERE=other).
stream_latency() {
  local name=$1 iterations=$2 where=$3 wrk_out=$work/wrk.stream-latency.txt wrk_pid probe started changes=${S_URL[$1]}
  [ "$where" = other ] && changes=${STREAM[second_url]}
  stream_start_receiver "$name" 0
  log "$name: $iterations revocations and $iterations disable/enable pairs at $changes, orders_api following the stream, under token load at 64 connections"
  BENCH_METHOD=POST BENCH_BODY="grant_type=client_credentials&scope=$scope" BENCH_AUTH=${S_AUTH[$name]} \
    BENCH_CONTENT_TYPE=application/x-www-form-urlencoded BENCH_SEND_SECS="" \
    wrk -t"$threads" -c64 -d3600s --timeout 10s -s "$BENCH_DIR/wrk/load.lua" "${S_URL[$name]}${S_TOKEN_PATH[$name]}" \
    >"$wrk_out" 2>&1 &
  wrk_pid=$!
  transient+=("$wrk_pid")
  sleep 2
  started=$(now_ms)
  probe=$(stream_probe_env "$name" PROBE_RESOURCE="${STREAM[url_0]}" PROBE_ITERATIONS="$iterations" PROBE_CHANGES="$changes" \
    "$NODE" "$BENCH_DIR/node/revocation-probe.mjs" latency 2>"$work/$name/probe.log") ||
    { cat "$work/$name/probe.log" >&2; die "$name: the revocation probe failed"; }
  local elapsed=$(($(now_ms) - started))
  kill -INT "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" || true
  transient=()
  stream_stop_receivers 0
  local load
  load=$(sed -n 's/^BENCH_RESULT //p' "$wrk_out")
  [ -n "$load" ] || { cat "$wrk_out" >&2; die "$name: wrk printed no result during the revocation loop"; }
  local out=$work/stream-latency-$where.json
  jq -n --argjson probe "$probe" --argjson load "$load" --argjson iterations "$iterations" --argjson ms "$elapsed" \
    --arg where "$where" '
    def pct(p): sort | .[((length * p / 100) | ceil) - 1];
    def summary: {count: length, p50_ms: pct(50), p99_ms: pct(99), max_ms: max};
    {where: $where, iterations: $iterations, loop_ms: $ms, timeouts: $probe.timeouts,
     revoke: ($probe.revoke | summary), disable: ($probe.disable | summary), enable: ($probe.enable | summary),
     refusal: ($probe.revoke + $probe.disable | summary),
     load_rps: ($load.requests / ($load.duration_us / 1000000)), load_p99_ms: ($load.latency_us.p99 / 1000),
     load_errors: ($load.errors.connect + $load.errors.read + $load.errors.write + $load.errors.status + $load.errors.timeout)}' \
    >"$out"
  jq -r '"   refused after revoke p50 \(.revoke.p50_ms | floor) ms, p99 \(.revoke.p99_ms | floor) ms, max \(.revoke.max_ms | floor) ms; after disable p50 \(.disable.p50_ms | floor), p99 \(.disable.p99_ms | floor), max \(.disable.max_ms | floor) ms; accepted after enable p99 \(.enable.p99_ms | floor) ms; timeouts \(.timeouts); token load meanwhile \(.load_rps | floor)/s, errors \(.load_errors)"' \
    "$out" >&2
  [ "$(jq .timeouts "$out")" = 0 ] || failures+=("stream latency ($where): $(jq .timeouts "$out") changes not seen by the resource server within 10 s")
  [ "$(jq .load_errors "$out")" = 0 ] || failures+=("stream latency ($where): the token load had errors")
}

# stream_receivers NAME ROUND RECEIVERS: token rate with 0 and RECEIVERS receivers, alternated twice, then
# the server's CPU time with 0 and RECEIVERS receivers and no token load; events happen throughout.
stream_receivers() {
  local name=$1 round=$2 receivers=$3 pass count i churn ids pid=${S_PID[$1]} ticks machine polls
  ids=$(seq 1 "$receivers")
  for pass in 1 2 idle; do
    for count in 0 "$receivers"; do
      if [ "$count" -gt 0 ]; then
        for i in $ids; do stream_start_receiver "$name" "$i"; done
      fi
      churn=""
      if [ "$stream_events_per_sec" != 0 ]; then
        stream_probe_env "$name" PROBE_EVENTS_PER_SEC=$stream_events_per_sec \
          "$NODE" "$BENCH_DIR/node/revocation-probe.mjs" churn >"$work/churn.out" 2>>"$work/$name/probe.log" &
        churn=$!
      fi
      # Its admin token is fetched (and audited) before the measured run counts the audit trail.
      sleep 1
      if [ "$pass" = idle ]; then
        log "round $round: server CPU with $count stream receivers, $stream_events_per_sec events/s, no token load, ${duration}s"
        ticks=$(process_ticks "$pid")
        machine=$(machine_busy_ticks)
        # Polls answered meanwhile, from the server's access log.
        polls=$(grep -c 'path=/ssf/poll ' "$work/$name/server.log" || true)
        sleep "$duration"
        polls=$(($(grep -c 'path=/ssf/poll ' "$work/$name/server.log" || true) - polls))
        jq -nc --argjson round "$round" --argjson receivers "$count" --argjson secs "$duration" --argjson polls "$polls" \
          --argjson server "$(($(process_ticks "$pid") - ticks))" --argjson machine "$(($(machine_busy_ticks) - machine))" \
          --argjson hz "$clock_ticks" \
          '{round: $round, receivers: $receivers, polls_per_s: ($polls / $secs), server_cpu_ms_per_s: ($server * 1000 / $hz / $secs),
            machine_cpu_ms_per_s: ($machine * 1000 / $hz / $secs)}' >>"$work/stream-idle.jsonl"
        jq -r '"   \(.receivers) receivers, no token load: server \(.server_cpu_ms_per_s) ms of CPU per second, machine \(.machine_cpu_ms_per_s), \(.polls_per_s) polls/s"' \
          <<<"$(tail -1 "$work/stream-idle.jsonl")" >&2
      else
        log "round $round: tokens at 64 connections with $count stream receivers, $stream_events_per_sec events/s, ${duration}s"
        measure "$round" stream "stream-$count" 64 "$name"
      fi
      if [ -n "$churn" ]; then
        kill -TERM "$churn" 2>/dev/null || true
        wait "$churn" || failures+=("stream receivers: the event generator failed (see $work/$name/probe.log)")
      fi
      if [ "$count" -gt 0 ]; then
        # shellcheck disable=SC2086
        stream_stop_receivers $ids
      fi
    done
  done
}

# stream_run NAME ITERATIONS RECEIVERS: both parts; results into $stream_result.
stream_run() {
  local name=$1 iterations=$2 receivers=$3 round
  ORDERS_API=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/orders_api
  case "$ORDERS_API" in /*) ;; *) ORDERS_API="$ROOT/$ORDERS_API" ;; esac
  [ -x "$ORDERS_API" ] || die "$ORDERS_API does not exist (build it, or drop --skip-build)"
  stream_setup "$name" "$receivers"
  echo null >"$work/stream-latency-same.json"
  echo null >"$work/stream-latency-other.json"
  : >"$work/stream-idle.jsonl"
  if [ "$iterations" -gt 0 ]; then
    stream_latency "$name" "$iterations" same
    stream_second_instance "$name"
    stream_latency "$name" "$iterations" other
    # Stopped before the receivers' runs: it would follow their changes too.
    local pid kept=()
    kill "${STREAM[second_pid]}" 2>/dev/null || true
    wait "${STREAM[second_pid]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do [ "$pid" = "${STREAM[second_pid]}" ] || kept+=("$pid"); done
    pids=("${kept[@]}")
  fi
  if [ "$receivers" -gt 0 ]; then
    for round in $(seq 1 "$rounds"); do stream_receivers "$name" "$round" "$receivers"; done
  fi
  jq -n --slurpfile latency "$work/stream-latency-same.json" --slurpfile other "$work/stream-latency-other.json" \
    --slurpfile idle "$work/stream-idle.jsonl" \
    --argjson receivers "$receivers" --argjson events "$stream_events_per_sec" \
    '{latency: $latency[0], latency_other: $other[0], idle: $idle, receivers: $receivers, events_per_sec: $events}' \
    >"$stream_result"
}
