// bench/node/revocation-probe.mjs MODE: the revocation stream's side of bench/run (bench/scenarios/stream.sh).
// Settings come from the environment: PROBE_ISSUER (partnergate's URL), PROBE_SCOPE, PROBE_ADMIN_ID and
// PROBE_ADMIN_SECRET (an admin client), PROBE_VICTIM_ID and PROBE_VICTIM_SECRET (a client whose tokens are
// turned off and on), PROBE_CHANGES (the instance where revocations and admin calls go, default PROBE_ISSUER;
// another instance on the same database). Tokens for the resource server come from PROBE_ISSUER.
//
// MODE `latency`: PROBE_ITERATIONS times, with the resource server at PROBE_RESOURCE (orders_api following the
// stream): a fresh token of the victim is accepted (and so cached as verified) at `GET /whoami`, revoked at
// `/oauth2/revoke`; then another, and the victim disabled and enabled through the admin API. After each
// change's 200 the resource server is asked every PROBE_INTERVAL_MS (default 5) until it answers as it should
// (401 after a revocation or a disable, 200 after an enable); the time from the 200 to that answer is a
// sample. Prints `{"revoke": [ms...], "disable": [...], "enable": [...], "timeouts": n}`; a sample that did not
// come within PROBE_TIMEOUT_MS (default 10000) is counted as a timeout and recorded as that timeout.
//
// MODE `churn`: disables and enables the victim through the admin API PROBE_EVENTS_PER_SEC times a second
// (each change one security event) until it gets SIGTERM; prints `{"events": n}`.
import { performance } from 'node:perf_hooks';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const issuer = env('PROBE_ISSUER');
const changes = env('PROBE_CHANGES', issuer);
const scope = env('PROBE_SCOPE');
const admin = { id: env('PROBE_ADMIN_ID'), secret: env('PROBE_ADMIN_SECRET') };
const victim = { id: env('PROBE_VICTIM_ID'), secret: env('PROBE_VICTIM_SECRET') };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const basic = (c) => `Basic ${Buffer.from(`${c.id}:${c.secret}`).toString('base64')}`;

async function expectStatus(response, status, what) {
  const text = await response.text();
  if (response.status !== status) throw new Error(`${what}: ${response.status} ${text.slice(0, 300)}`);
  return text;
}

async function token(client, scopeWanted, at = issuer) {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (scopeWanted) body.set('scope', scopeWanted);
  const response = await fetch(`${at}/oauth2/token`, { method: 'POST', headers: { authorization: basic(client) }, body });
  return JSON.parse(await expectStatus(response, 200, `token for ${client.id}`)).access_token;
}

// An admin token, renewed a minute before it expires.
let adminToken = null;
let adminUntil = 0;
async function adminPost(path) {
  if (performance.now() > adminUntil) {
    adminToken = await token(admin, undefined, changes);
    adminUntil = performance.now() + 60_000;
  }
  const response = await fetch(`${changes}/admin/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: '{}',
  });
  await expectStatus(response, 200, `POST ${path}`);
}

async function latency() {
  const resource = env('PROBE_RESOURCE');
  const iterations = Number(env('PROBE_ITERATIONS'));
  const interval = Number(env('PROBE_INTERVAL_MS', '5'));
  const timeout = Number(env('PROBE_TIMEOUT_MS', '10000'));
  const samples = { revoke: [], disable: [], enable: [], timeouts: 0 };
  const statusAt = async (accessToken) => {
    const response = await fetch(`${resource}/whoami`, { headers: { authorization: `Bearer ${accessToken}` } });
    await response.arrayBuffer();
    return response.status;
  };
  // From `changed` (just after the change's 200) until the resource server answers `status` for the token.
  const until = async (kind, accessToken, status) => {
    const changed = performance.now();
    for (;;) {
      if ((await statusAt(accessToken)) === status) break;
      if (performance.now() - changed > timeout) {
        samples.timeouts += 1;
        break;
      }
      await sleep(interval);
    }
    samples[kind].push(Math.min(performance.now() - changed, timeout));
  };
  const accepted = async () => {
    const accessToken = await token(victim, scope);
    const status = await statusAt(accessToken);
    if (status !== 200) throw new Error(`a fresh token of the victim answered ${status} at the resource server`);
    return accessToken;
  };
  const victimAuth = basic(victim);
  for (let i = 0; i < iterations; i++) {
    const revoked = await accepted();
    const response = await fetch(`${changes}/oauth2/revoke`, {
      method: 'POST',
      headers: { authorization: victimAuth },
      body: new URLSearchParams({ token: revoked }),
    });
    await expectStatus(response, 200, 'revoke');
    await until('revoke', revoked, 401);

    const disabled = await accepted();
    await adminPost(`/clients/${victim.id}/disable`);
    await until('disable', disabled, 401);
    await adminPost(`/clients/${victim.id}/enable`);
    await until('enable', disabled, 200);
  }
  return samples;
}

async function churn() {
  const every = 1000 / Number(env('PROBE_EVENTS_PER_SEC'));
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  let events = 0;
  let next = performance.now();
  while (!stopping) {
    await adminPost(`/clients/${victim.id}/${events % 2 === 0 ? 'disable' : 'enable'}`);
    events += 1;
    next += every;
    await sleep(Math.max(0, next - performance.now()));
  }
  // Left enabled.
  if (events % 2 === 1) await adminPost(`/clients/${victim.id}/enable`);
  return { events: events + (events % 2) };
}

const mode = process.argv[2];
const result = mode === 'latency' ? await latency() : mode === 'churn' ? await churn() : null;
if (!result) {
  console.error('usage: revocation-probe.mjs latency|churn');
  process.exit(2);
}
console.log(JSON.stringify(result));
