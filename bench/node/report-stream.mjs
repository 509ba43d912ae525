// The parts of bench/run's report for the revocation stream (bench/scenarios/stream.sh) and private_key_jwt
// (bench/scenarios/pkjwt.sh): lines for the table of targets and sections of their own.
const int = (n) => Math.round(n).toLocaleString('en-US');

// rows: bench/run's measured runs; stream: the stream scenario's JSON (null when it did not run).
export function streamReport(rows, stream) {
  const targets = [];
  const sections = [];
  const target = (text, ok) => targets.push(`- ${ok ? 'met' : '**not met**'}: ${text}`);

  // private_key_jwt next to the client secret, same round and backend.
  const secretRun = (r) => rows.find((x) => x.server === r.server && x.round === r.round && x.block === r.block &&
    x.scenario === 'token' && x.connections === r.connections);
  const pkjwt = rows.filter((r) => r.scenario === 'pkjwt');
  if (pkjwt.length) {
    sections.push('', 'private_key_jwt (ES256 assertions, each with its own jti, signed before the run) beside the ' +
      'client secret (`client_secret_basic`), same server, same round, 64 connections:', '',
      '| round | backend | secret req/s | private_key_jwt req/s | ratio | server CPU µs/token secret / private_key_jwt |',
      '|---:|---|---:|---:|---:|---:|');
    for (const r of pkjwt) {
      const secret = secretRun(r);
      if (!secret) continue;
      sections.push(`| ${r.round} | ${r.backend} | ${int(secret.rps)} | ${int(r.rps)} | ${(r.rps / secret.rps).toFixed(2)}× | ` +
        `${secret.server_cpu_us?.toFixed(0) ?? '-'} / ${r.server_cpu_us?.toFixed(0) ?? '-'} |`);
    }
  }

  if (!stream) return { targets, sections };
  const latencySection = (latency, where) => {
    const row = (what, s) => `| ${what} | ${s.count} | ${int(s.p50_ms)} | ${int(s.p99_ms)} | ${int(s.max_ms)} |`;
    sections.push('', `Revocation stream under token load (PostgreSQL), changes made ${where}: the example resource ` +
      `server (orders_api, release build) follows the stream while wrk sends token requests at 64 connections ` +
      `(${int(latency.load_rps)} tokens/s meanwhile, p99 ${latency.load_p99_ms.toFixed(1)} ms, ${latency.load_errors} errors); ` +
      `from each change's 200 to the resource server's answer (asked every 5 ms), ${latency.iterations} of each ` +
      `kind, ${latency.timeouts} not seen within 10 s:`, '',
      '| change | samples | p50 ms | p99 ms | max ms |', '|---|---:|---:|---:|---:|',
      row('token revoked at `/oauth2/revoke` → refused', latency.revoke),
      row('client disabled (admin API) → refused', latency.disable),
      row('both → refused', latency.refusal),
      row('client enabled again → accepted', latency.enable));
    target(`refusal ≤ 1 s at p99 from the 200 of a revocation or disable made ${where}, under token load ` +
      `(p99 ${int(latency.refusal.p99_ms)} ms, max ${int(latency.refusal.max_ms)} ms, ${latency.refusal.count} changes)`,
      latency.refusal.p99_ms <= 1000 && latency.timeouts === 0);
  };
  if (stream.latency) latencySection(stream.latency, 'at the instance the resource server polls');
  if (stream.latency_other) latencySection(stream.latency_other, 'at a second instance on the same database');
  const runs = (count) => rows.filter((r) => r.scenario === `stream-${count}`);
  const idle = runs(0);
  const busy = runs(stream.receivers);
  if (stream.receivers > 0 && idle.length && busy.length) {
    const sum = (list, key) => list.reduce((total, r) => total + r[key], 0);
    const mean = (list, key) => sum(list, key) / list.length;
    const ratio = mean(busy, 'rps') / mean(idle, 'rps');
    sections.push('', `Token rate with 0 and ${stream.receivers} resource servers following the stream (each an ` +
      `orders_api process with its own receiver client, long-polling), alternated; ${stream.events_per_sec} ` +
      `events/s (a client disabled or enabled through the admin API) in both:`, '',
      '| receivers | runs | req/s (each run) | mean req/s | server CPU µs/token | machine CPU µs/token |',
      '|---:|---:|---|---:|---:|---:|');
    for (const [count, list] of [[0, idle], [stream.receivers, busy]]) {
      sections.push(`| ${count} | ${list.length} | ${list.map((r) => int(r.rps)).join(', ')} | ${int(mean(list, 'rps'))} | ` +
        `${mean(list, 'server_cpu_us').toFixed(1)} | ${mean(list, 'machine_cpu_us').toFixed(1)} |`);
    }
    target(`${stream.receivers} stream receivers cost ≤ 1% of the token rate, as measured by req/s ` +
      `(${ratio.toFixed(3)}× of the rate without; server CPU per token ` +
      `${(mean(busy, 'server_cpu_us') / mean(idle, 'server_cpu_us')).toFixed(3)}×)`, ratio >= 0.99);
    // The same from CPU time: what the receivers cost the server per second, without token load, against
    // what the server spends per second on tokens at 64 connections.
    const quiet = (count) => (stream.idle ?? []).filter((w) => w.receivers === count);
    if (quiet(0).length && quiet(stream.receivers).length) {
      const extra = mean(quiet(stream.receivers), 'server_cpu_ms_per_s') - mean(quiet(0), 'server_cpu_ms_per_s');
      const tokenCpu = (mean(idle, 'rps') * mean(idle, 'server_cpu_us')) / 1000; // ms of server CPU per second
      const share = extra / tokenCpu;
      sections.push('', `Without token load (${stream.events_per_sec} events/s in both), the server's CPU time: ` +
        quiet(0).map((w) => `${w.server_cpu_ms_per_s.toFixed(1)}`).join(', ') + ` ms per second with no receiver, ` +
        quiet(stream.receivers).map((w) => `${w.server_cpu_ms_per_s.toFixed(1)}`).join(', ') +
        ` ms with ${stream.receivers} (clock ticks of 10 ms; ` +
        quiet(stream.receivers).map((w) => `${(w.polls_per_s ?? 0).toFixed(1)}`).join(', ') +
        ` polls answered per second). The difference, ${extra.toFixed(1)} ms per second, is ` +
        `${(share * 100).toFixed(2)}% of the ${tokenCpu.toFixed(0)} ms per second the server spends on tokens at 64 ` +
        `connections (${int(mean(idle, 'rps'))}/s × ${mean(idle, 'server_cpu_us').toFixed(1)} µs).`);
      target(`${stream.receivers} stream receivers cost ≤ 1% of the token rate, as measured by the server's CPU time ` +
        `(${(share * 100).toFixed(2)}%)`, share <= 0.01);
    }
  }
  return { targets, sections };
}
