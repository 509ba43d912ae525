// The partnergate console: vanilla JS, same origin only. The admin token is kept in this module's memory for
// the tab; the secret typed at sign-in is sent once to the token endpoint and cleared.
let token = null;
let signOutTimer = null;
const $ = (id) => document.getElementById(id);
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

function showError(message, requestId) {
  const box = $("error");
  box.textContent = requestId ? `${message} (request id ${requestId})` : message;
  box.hidden = false;
}

async function api(method, path, body) {
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
  $("who").textContent = `${who.client_id} of partner ${who.partner_id} (${who.scope})`;
  signOutTimer = setTimeout(signOut, Math.max(0, who.exp * 1000 - Date.now()));
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("error").hidden = true;
  await loadClients();
}

function signOut() {
  token = null;
  clearTimeout(signOutTimer);
  $("who").textContent = "";
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
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
    const actions = row.insertCell();
    actions.append(
      button(client.enabled ? "Disable" : "Enable", async () => {
        await api("POST", `/clients/${client.id}/${client.enabled ? "disable" : "enable"}`);
        await loadClients();
      }),
      button("Revoke tokens", () => api("POST", `/clients/${client.id}/revoke-tokens`)),
      button("Delete", async () => {
        if (!confirm(`Delete ${client.name}? Its secrets stop working at once.`)) return;
        await api("DELETE", `/clients/${client.id}`);
        await loadClients();
      }),
    );
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
$("create-client").addEventListener("submit", (e) => createClient(e).catch(() => {}));
$("copy-secret").addEventListener("click", () => navigator.clipboard.writeText($("new-secret-value").textContent));
$("dismiss-secret").addEventListener("click", () => {
  $("new-secret-value").textContent = "";
  $("new-secret").hidden = true;
});
