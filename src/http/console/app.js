// The partnergate console: vanilla JS, same origin only. The admin token is kept in this module's memory for
// the tab; the secret typed at sign-in is sent once to the token endpoint and cleared.
let token = null;
let expiresAt = 0;
let signOutTimer = null;
const $ = (id) => document.getElementById(id);
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
// Every id in an admin URL is one encoded path segment: imported client ids may hold `/`, `?`, `#`, `%` or `..`.
const seg = encodeURIComponent;
// A number input: empty is null (clears the limit, the server default applies).
const numberOrNull = (id) => ($(id).value === "" ? null : Number($(id).value));

function showError(message, requestId) {
  const box = $("error");
  box.textContent = requestId ? `${message} (request id ${requestId})` : message;
  box.hidden = false;
}

async function api(method, path, body) {
  if (token === null || Date.now() >= expiresAt) {
    if (token !== null) expired();
    throw new Error("signed out");
  }
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/admin/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError(data.message || response.statusText, response.headers.get("x-request-id"));
    if (response.status === 401) signOut();
    throw new Error(data.message);
  }
  $("error").hidden = true;
  return data;
}

function claims(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

async function signIn(event) {
  event.preventDefault();
  const form = new URLSearchParams({
    grant_type: "client_credentials", client_id: $("client-id").value, client_secret: $("client-secret").value,
  });
  $("client-secret").value = "";
  const response = await fetch("/oauth2/token", { method: "POST", body: form });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError(data.error_description || data.error || "sign-in failed", response.headers.get("x-request-id"));
    return;
  }
  token = data.access_token;
  const who = claims(token);
  expiresAt = who.exp * 1000;
  $("who").textContent = `${who.client_id} of partner ${who.partner_id} (${who.scope})`;
  // Signs out by itself when the token expires (a timer, and a check before every call in case the tab slept).
  signOutTimer = setTimeout(expired, Math.max(0, expiresAt - Date.now()));
  $("signed-out").hidden = true;
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("error").hidden = true;
  const scopes = who.scope.split(" ");
  $("operator").hidden = !scopes.includes("authz.admin");
  $("audit").hidden = !(scopes.includes("authz.admin") || scopes.includes("authz.audit.read"));
  const admin = scopes.includes("authz.admin");
  const clients = admin || scopes.includes("authz.clients.read") || scopes.includes("authz.clients.write");
  $("clients").hidden = !clients;
  // A partner admin's own partner and its usage (reading them takes the clients scopes).
  $("own-partner").hidden = admin || !clients;
  ownPartner = who.partner_id;
  if (clients) await loadClients();
  if (!$("own-partner").hidden) await loadOwnPartner();
  if (!$("audit").hidden) await loadAudit(null);
  if (!$("operator").hidden) await loadOperator();
}

function signOut() {
  token = null;
  expiresAt = 0;
  clearTimeout(signOutTimer);
  $("who").textContent = "";
  forgetSecret();
  $("edit-client").hidden = true;
  $("edit-partner").hidden = true;
  $("secrets").hidden = true;
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
}

function expired() {
  const at = new Date(expiresAt).toISOString();
  signOut();
  $("signed-out").textContent = `Signed out: the admin token expired at ${at}. Sign in again.`;
  $("signed-out").hidden = false;
}

function forgetSecret() {
  $("new-secret-value").textContent = "";
  $("copy-status").textContent = "";
  $("new-secret").hidden = true;
}

let ownPartner = null;
async function loadOwnPartner() {
  const partner = await api("GET", `/partners/${seg(ownPartner)}`);
  $("own-name").textContent = `${partner.name} (${partner.id})${partner.suspended ? ", suspended" : ""}`;
  $("own-ceiling").textContent = partner.scope_ceiling.join(" ");
  $("own-audiences").textContent = partner.audience_ceiling.join(" ");
  $("own-rate").textContent = partner.rate_limit_per_minute ?? "none";
  const usage = await api("GET", `/partners/${seg(ownPartner)}/usage`);
  $("own-usage").textContent = usage.tokens;
  $("own-quota").textContent = usage.token_quota_per_day ?? "no quota";
  $("own-log-only").textContent = usage.quota_log_only ? "(log only)" : "";
  $("own-resets").textContent = usage.resets_at;
}

function button(label, action) {
  const b = document.createElement("button");
  b.textContent = label;
  b.type = "button";
  b.addEventListener("click", () => action().catch(() => {}));
  return b;
}

async function loadClients() {
  const page = await api("GET", "/clients?limit=500");
  const body = $("clients-table").querySelector("tbody");
  body.replaceChildren();
  for (const client of page.items) {
    const row = body.insertRow();
    row.dataset.clientId = client.id;
    for (const value of [client.id, client.name, client.enabled ? "yes" : "no", client.roles.join(" "),
      client.scopes.join(" "), client.audiences.join(" ")]) {
      row.insertCell().textContent = value;
    }
    const lastUsed = row.insertCell();
    api("GET", `/clients/${seg(client.id)}/secrets`).then((secrets) => {
      lastUsed.textContent = secrets.items.map((s) => s.last_used_at).filter(Boolean).sort().pop() || "never";
    }).catch(() => {});
    cells(row, [client.description, client.rate_limit_per_minute ?? "default", client.token_lifetime_secs ?? "default"]);
    const actions = row.insertCell();
    actions.append(
      button(client.enabled ? "Disable" : "Enable", async () => {
        await api("POST", `/clients/${seg(client.id)}/${client.enabled ? "disable" : "enable"}`);
        await loadClients();
      }),
      button("Secrets", () => loadSecrets(client.id)),
      button("Revoke tokens", () => api("POST", `/clients/${seg(client.id)}/revoke-tokens`)),
      button("Delete", async () => {
        if (!confirm(`Delete ${client.name}? Its secrets stop working at once.`)) return;
        await api("DELETE", `/clients/${seg(client.id)}`);
        await loadClients();
      }),
      button("Edit", async () => editClient(client)),
    );
  }
}

let editing = null;
function editClient(client) {
  editing = client;
  $("edit-client-id").textContent = client.id;
  $("edit-name").value = client.name;
  $("edit-description").value = client.description;
  $("edit-roles").value = client.roles.join(", ");
  $("edit-scopes").value = client.scopes.join(", ");
  $("edit-audiences").value = client.audiences.join(", ");
  $("edit-rate").value = client.rate_limit_per_minute ?? "";
  $("edit-lifetime").value = client.token_lifetime_secs ?? "";
  $("edit-enabled").checked = client.enabled;
  $("edit-client").hidden = false;
}

async function saveClient(event) {
  event.preventDefault();
  const client = editing;
  await api("PATCH", `/clients/${seg(client.id)}`, {
    name: $("edit-name").value, description: $("edit-description").value, roles: list($("edit-roles").value),
    scopes: list($("edit-scopes").value), audiences: list($("edit-audiences").value),
    rate_limit_per_minute: numberOrNull("edit-rate"), token_lifetime_secs: numberOrNull("edit-lifetime"),
  });
  const enabled = $("edit-enabled").checked;
  if (enabled !== client.enabled) await api("POST", `/clients/${seg(client.id)}/${enabled ? "enable" : "disable"}`);
  $("edit-client").hidden = true;
  await loadClients();
}

function cells(row, values) {
  for (const value of values) row.insertCell().textContent = value ?? "";
}

let secretsOf = null;
async function loadSecrets(clientId) {
  secretsOf = clientId;
  $("secrets-client").textContent = clientId;
  $("secrets").hidden = false;
  const secrets = await api("GET", `/clients/${seg(clientId)}/secrets`);
  const body = $("secrets-table").querySelector("tbody");
  body.replaceChildren();
  for (const secret of secrets.items) {
    const row = body.insertRow();
    row.dataset.secretId = secret.id;
    cells(row, [secret.id, secret.name, secret.prefix, secret.created_at, secret.expires_at, secret.revoked_at,
      secret.last_used_at]);
    if (!secret.revoked_at) {
      row.insertCell().append(button("Revoke", async () => {
        await api("DELETE", `/clients/${seg(clientId)}/secrets/${seg(secret.id)}`);
        await loadSecrets(clientId);
      }));
    }
  }
}

async function rotate() {
  const issued = await api("POST", `/clients/${seg(secretsOf)}/secrets`, { grace_period_secs: Number($("grace").value) });
  $("new-secret-value").textContent = issued.secret;
  $("new-secret").hidden = false;
  await loadSecrets(secretsOf);
}

let auditCursor = null;
async function loadAudit(cursor) {
  const query = new URLSearchParams({ limit: "50" });
  const filters = { partner_id: "audit-partner", since: "audit-since", until: "audit-until", client_id: "audit-client", event_type: "audit-type",
    outcome: "audit-outcome" };
  for (const [name, id] of Object.entries(filters)) if ($(id).value) query.set(name, $(id).value);
  if (cursor !== null) query.set("cursor", cursor);
  const page = await api("GET", `/audit?${query}`);
  const body = $("audit-table").querySelector("tbody");
  body.replaceChildren();
  for (const event of page.items) {
    cells(body.insertRow(), [event.occurred_at, event.event_type, event.outcome, event.reason, event.client_id,
      event.partner_id, event.request_id]);
  }
  auditCursor = page.next_cursor;
  await drawUsage(query);
  $("audit-next").hidden = auditCursor === null;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

// Token requests of the filtered time range (the newest 1000), per client and minute, granted vs denied.
async function drawUsage(filterQuery) {
  const query = new URLSearchParams(filterQuery);
  query.set("event_type", "token.request");
  query.set("limit", "1000");
  query.delete("cursor");
  const page = await api("GET", `/audit?${query}`);
  const perClient = new Map();
  for (const event of page.items) {
    const minute = event.occurred_at.slice(0, 16);
    const client = event.client_id || "(unknown client)";
    if (!perClient.has(client)) perClient.set(client, new Map());
    const buckets = perClient.get(client);
    const bucket = buckets.get(minute) || { granted: 0, denied: 0 };
    bucket[event.outcome === "success" ? "granted" : "denied"] += 1;
    buckets.set(minute, bucket);
  }
  const chart = $("usage-chart");
  chart.replaceChildren();
  for (const [client, buckets] of perClient) {
    const minutes = [...buckets.keys()].sort();
    const max = Math.max(...minutes.map((m) => buckets.get(m).granted + buckets.get(m).denied));
    const width = Math.max(200, minutes.length * 14);
    const figure = svg("svg", { width, height: 80, role: "img", "data-client-id": client });
    figure.append(svg("title", {}));
    figure.firstChild.textContent = client;
    minutes.forEach((minute, i) => {
      const { granted, denied } = buckets.get(minute);
      const g = (granted / max) * 60;
      const d = (denied / max) * 60;
      const bar = svg("rect", { x: i * 14, y: 70 - g, width: 10, height: g, fill: "#2a2", class: "granted" });
      bar.append(svg("title", {}));
      bar.firstChild.textContent = `${minute}: ${granted} granted`;
      const refused = svg("rect", { x: i * 14, y: 70 - g - d, width: 10, height: d, fill: "#c22", class: "denied" });
      refused.append(svg("title", {}));
      refused.firstChild.textContent = `${minute}: ${denied} denied`;
      figure.append(bar, refused);
    });
    const label = document.createElement("div");
    label.textContent = `${client}: ${minutes[0]} to ${minutes[minutes.length - 1]} UTC`;
    chart.append(label, figure);
  }
}

async function loadOperator() {
  const partners = await api("GET", "/partners?limit=500");
  const body = $("partners-table").querySelector("tbody");
  body.replaceChildren();
  for (const partner of partners.items) {
    const row = body.insertRow();
    row.dataset.partnerId = partner.id;
    cells(row, [partner.id, partner.name, partner.suspended ? "yes" : "no", partner.scope_ceiling.join(" "),
      partner.rate_limit_per_minute ?? "none", partner.token_quota_per_day ?? "none"]);
    const usage = row.insertCell();
    usage.className = "usage";
    api("GET", `/partners/${seg(partner.id)}/usage`).then((today) => {
      usage.textContent = today.tokens;
    }).catch(() => {});
    cells(row, [partner.quota_log_only ? "log only" : "refused", partner.audience_ceiling.join(" ")]);
    row.insertCell().append(
      button(partner.suspended ? "Resume" : "Suspend", async () => {
        await api("POST", `/partners/${seg(partner.id)}/${partner.suspended ? "resume" : "suspend"}`);
        await loadOperator();
      }),
      button("Edit", async () => editPartner(partner)),
    );
  }
  const scopes = await api("GET", "/scopes?limit=500");
  $("scopes-list").replaceChildren(...scopes.items.map((scope) => {
    const item = document.createElement("li");
    item.textContent = `${scope.name}: ${scope.description}`;
    return item;
  }));
  const roles = await api("GET", "/roles?limit=500");
  $("roles-list").replaceChildren(...roles.items.map((role) => {
    const item = document.createElement("li");
    item.textContent = `${role.name}: ${role.scopes.join(" ")}`;
    return item;
  }));
  const keys = await api("GET", "/keys");
  const keyRows = $("keys-table").querySelector("tbody");
  keyRows.replaceChildren();
  for (const key of keys.items) {
    cells(keyRows.insertRow(), [key.kid, key.alg, key.state, key.published_at, key.activated_at, key.retired_at]);
  }
}

let editingPartner = null;
function editPartner(partner) {
  editingPartner = partner.id;
  $("edit-partner-id").textContent = partner.id;
  $("partner-name").value = partner.name;
  $("partner-ceiling").value = partner.scope_ceiling.join(", ");
  $("partner-audiences").value = partner.audience_ceiling.join(", ");
  $("partner-rate").value = partner.rate_limit_per_minute ?? "";
  $("partner-quota").value = partner.token_quota_per_day ?? "";
  $("partner-log-only").checked = partner.quota_log_only;
  $("edit-partner").hidden = false;
}

async function savePartner(event) {
  event.preventDefault();
  await api("PATCH", `/partners/${seg(editingPartner)}`, {
    name: $("partner-name").value, scope_ceiling: list($("partner-ceiling").value),
    audience_ceiling: list($("partner-audiences").value), rate_limit_per_minute: numberOrNull("partner-rate"),
    token_quota_per_day: numberOrNull("partner-quota"), quota_log_only: $("partner-log-only").checked,
  });
  $("edit-partner").hidden = true;
  await loadOperator();
}

async function copySecret() {
  const status = $("copy-status");
  try {
    await navigator.clipboard.writeText($("new-secret-value").textContent);
    status.textContent = "Copied to the clipboard.";
  } catch (err) {
    status.textContent = `Could not copy (${err.message}): select the secret and copy it by hand.`;
  }
}

async function createClient(event) {
  event.preventDefault();
  const created = await api("POST", "/clients", {
    name: $("new-name").value, roles: list($("new-roles").value), scopes: list($("new-scopes").value),
    audiences: list($("new-audiences").value),
  });
  $("new-secret-value").textContent = created.secret.secret;
  $("new-secret").hidden = false;
  await loadClients();
}

$("sign-in").addEventListener("submit", (e) => signIn(e).catch((err) => showError(String(err))));
$("sign-out").addEventListener("click", signOut);
$("rotate").addEventListener("click", () => rotate().catch(() => {}));
$("audit-filter").addEventListener("submit", (e) => {
  e.preventDefault();
  loadAudit(null).catch(() => {});
});
$("audit-next").addEventListener("click", () => loadAudit(auditCursor).catch(() => {}));
$("create-client").addEventListener("submit", (e) => createClient(e).catch(() => {}));
$("copy-secret").addEventListener("click", () => copySecret());
$("dismiss-secret").addEventListener("click", forgetSecret);
$("edit-client").addEventListener("submit", (e) => saveClient(e).catch(() => {}));
$("edit-cancel").addEventListener("click", () => { $("edit-client").hidden = true; });
$("edit-partner").addEventListener("submit", (e) => savePartner(e).catch(() => {}));
$("partner-cancel").addEventListener("click", () => { $("edit-partner").hidden = true; });
$("own-refresh").addEventListener("click", () => loadOwnPartner().catch(() => {}));
