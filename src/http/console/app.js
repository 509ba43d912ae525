// The partnergate console: vanilla JS, same origin only, no third-party code. The admin token and everything
// read with it live in `state`, in this module's memory for the tab; signing out replaces `state` and resets
// every form and view. The secret typed at sign-in is sent once to the token endpoint and cleared. A person
// signed in through the identity provider has no token here: an HttpOnly session cookie (unreadable by this
// script) authenticates, and every change carries the session's CSRF token in `X-CSRF-Token`.

const $ = (id) => document.getElementById(id);
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);
// Every id in an admin URL is one encoded path segment: imported client ids may hold `/`, `?`, `#`, `%` or `..`.
const seg = encodeURIComponent;
// A number input: empty is null (clears the limit, the server default applies).
const numberOrNull = (id) => ($(id).value === "" ? null : Number($(id).value));
const PAGE = 50;
// "1 client", "4 clients" ("more than 500 clients" for a count given as text).
const plural = (count, word) => `${count} ${word}${String(count) === "1" ? "" : "s"}`;
const DAY_SECS = 86400;
// Rotation's default grace period: the other secrets keep working this long (never 0 by default).
const DEFAULT_GRACE_DAYS = 7;

function freshState() {
  return {
    token: null, expiresAt: 0, timer: null, who: null, session: null,
    can: { operator: false, clientsRead: false, clientsWrite: false, audit: false },
    ownPartner: null, partner: null, client: null, secrets: [],
    pages: { partners: [null], clients: [null], audit: [null], requests: [null] },
  };
}
let state = freshState();
// A list drawn from an answer that a newer load of the same list has overtaken would show stale rows (or
// another filter's): each load takes a ticket, and only the latest one draws.
const tickets = { partners: 0, clients: 0, audit: 0, requests: 0 };
const latest = (name, ticket) => tickets[name] === ticket;

// ---------------------------------------------------------------------------------------------------------
// Small DOM helpers
// ---------------------------------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key.startsWith("data")) element.setAttribute(key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), value);
    else element.setAttribute(key, value);
  }
  element.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (c instanceof Node ? c : String(c))));
  return element;
}

function button(label, action, { kind = "", name = label.toLowerCase().replace(/\s+/g, "-") } = {}) {
  const b = el("button", { type: "button", class: kind, "data-action": name }, label);
  b.addEventListener("click", () => run(action));
  return b;
}

// Runs an action; its failure is already shown by `api` (or shown here).
async function run(action) {
  try {
    await action();
  } catch (err) {
    if (err && err.shown !== true && err.message !== "signed out") showError(String(err.message || err));
  }
}

const when = (iso) => (iso ? iso.replace("T", " ").replace(/(:\d\d)(\.\d+)?Z$/, "$1 UTC") : "");
function age(iso) {
  if (!iso) return "";
  const secs = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (secs < 3600) return `${Math.floor(secs / 60)} min`;
  if (secs < DAY_SECS) return `${Math.floor(secs / 3600)} h`;
  return `${Math.floor(secs / DAY_SECS)} d`;
}
function untilText(iso) {
  if (!iso) return "never";
  const secs = (Date.parse(iso) - Date.now()) / 1000;
  if (secs <= 0) return `expired ${when(iso)}`;
  const days = secs / DAY_SECS;
  return `${when(iso)} (in ${days >= 1 ? `${Math.floor(days)} d` : `${Math.ceil(secs / 3600)} h`})`;
}

/// A cell with a name (a link when `href`) and its id beneath.
function named(name, id, href) {
  const label = href ? el("a", { href, class: "name" }, name || id) : el("span", { class: "name" }, name || id);
  return el("td", { "data-col": "name" }, label, el("span", { class: "id" }, id));
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind}` }, text);
}

/// Fills a table's body: each row is `{ cells: [[column, content], ...], data: {...} }`. Cells are labelled
/// with their column header for the stacked layout of narrow windows.
function fillTable(table, rows, empty = "Nothing to show.") {
  const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  table.classList.add("stack");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (rows.length === 0) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: headers.length }, empty)));
    return;
  }
  for (const row of rows) {
    const tr = el("tr");
    for (const [key, value] of Object.entries(row.data || {})) tr.dataset[key] = value;
    row.cells.forEach(([column, content], i) => {
      const td = content instanceof HTMLTableCellElement ? content : el("td", { "data-col": column }, content ?? "");
      td.dataset.label = headers[i] || "";
      tr.append(td);
    });
    body.append(tr);
  }
}

function showError(message, requestId) {
  const box = $("error");
  box.textContent = requestId ? `${message} (request id ${requestId})` : message;
  box.hidden = false;
  $("notice").hidden = true;
}

function notify(message) {
  $("notice").textContent = message;
  $("notice").hidden = false;
  $("error").hidden = true;
}

// A confirmation that states the consequence; resolves to whether the person went ahead.
function confirmAction(title, consequence, okLabel) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = consequence;
  $("confirm-ok").textContent = okLabel;
  dialog.showModal();
  $("confirm-cancel").focus();
  return new Promise((resolve) => {
    const finish = (answer) => {
      $("confirm-ok").onclick = null;
      $("confirm-cancel").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $("confirm-ok").onclick = () => finish(true);
    $("confirm-cancel").onclick = () => finish(false);
    dialog.onclose = () => finish(false);
  });
}

// ---------------------------------------------------------------------------------------------------------
// The admin API
// ---------------------------------------------------------------------------------------------------------

/// `allow`: statuses answered to the caller instead of shown as errors (the request log's 404).
async function api(method, path, body, { allow = [] } = {}) {
  const session = state.session;
  if (session === null && (state.token === null || Date.now() >= state.expiresAt)) {
    if (state.token !== null) expired();
    throw new Error("signed out");
  }
  const headers = session ? { "X-CSRF-Token": session.csrf_token } : { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = session || state.token;
  const response = await fetch(`/admin/v1${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  // Signed out (or in as someone else) while this was under way: drop the answer.
  if ((state.session || state.token) !== token) throw new Error("signed out");
  if (allow.includes(response.status)) return { status: response.status, ...data };
  if (!response.ok) {
    showError(data.message || response.statusText, response.headers.get("x-request-id"));
    if (response.status === 401) signOut();
    const err = new Error(data.message || response.statusText);
    err.shown = true;
    err.status = response.status;
    err.error = data.error;
    throw err;
  }
  $("error").hidden = true;
  return data;
}

function claims(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

// ---------------------------------------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------------------------------------

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
  state = freshState();
  state.token = data.access_token;
  const who = claims(state.token);
  state.who = who;
  state.expiresAt = who.exp * 1000;
  const operator = who.scope.split(" ").includes("authz.admin");
  // Signs out by itself when the token expires (a timer, and a check before every call in case the tab slept).
  state.timer = setTimeout(expired, Math.max(0, state.expiresAt - Date.now()));
  $("client-id").value = "";
  await enter(who.scope.split(" "), who.partner_id,
    `${who.client_id} of partner ${who.partner_id} (${operator ? "operator" : "partner admin"})`);
}

/// A person signed in through the identity provider: the session the cookie names, if any.
async function resumeSession() {
  const response = await fetch("/console/session", { cache: "no-store" });
  if (!response.ok) return;
  const session = await response.json();
  state = freshState();
  state.session = session;
  const role = session.role === "operator" ? "operator" : `partner admin of ${session.partner_id}`;
  await enter(session.scopes, session.partner_id, `${session.email} (${role})`);
}

/// Opens the console for a caller holding `scopes` (of `partnerId` unless operator).
async function enter(scopes, partnerId, whoText) {
  const operator = scopes.includes("authz.admin");
  state.can = {
    operator,
    clientsRead: operator || scopes.includes("authz.clients.read") || scopes.includes("authz.clients.write"),
    clientsWrite: operator || scopes.includes("authz.clients.write"),
    audit: operator || scopes.includes("authz.audit.read"),
  };
  state.scopes = scopes;
  state.ownPartner = operator ? null : partnerId;
  $("who").textContent = whoText;
  $("signed-out").hidden = true;
  $("error").hidden = true;
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("nav").hidden = false;
  for (const link of document.querySelectorAll("[data-needs]")) link.hidden = !allowed(link.dataset.needs);
  for (const id of ["show-create-client", "partner-new-client"]) $(id).hidden = !state.can.clientsWrite;
  for (const id of ["new-partner-field", "clients-partner-field", "audit-partner-field", "requests-partner-field"]) {
    $(id).hidden = !operator;
  }
  const start = operator ? "#partners" : state.can.clientsRead ? "#own" : state.can.audit ? "#audit" : "#own";
  if (location.hash === start) await route();
  else location.hash = start;
}

function allowed(need) {
  const can = state.can;
  return { operator: can.operator, own: !can.operator && can.clientsRead, clients: can.clientsRead,
    audit: can.audit }[need];
}

/// Forgets everything: the token, what was read with it, every typed value, every drawn row.
function signOut() {
  clearTimeout(state.timer);
  state = freshState();
  charts.clear();
  forgetSecret();
  if ($("confirm").open) $("confirm").close();
  for (const form of document.querySelectorAll("form")) form.reset();
  for (const body of document.querySelectorAll("tbody")) body.replaceChildren();
  for (const id of ["who", "partner-title", "partner-status", "partner-facts", "partner-actions", "own-usage",
    "own-quota", "own-of", "own-log-only", "own-resets", "client-title", "client-status", "client-env", "client-facts",
    "client-actions", "client-crumb-partner", "secrets-client", "edit-client-id", "edit-partner-id",
    "usage-chart", "partner-chart", "client-chart", "requests-chart", "requests-note", "client-requests-note", "notice", "error",
    "new-partner", "edit-role-name", "partners-page", "clients-page", "audit-page", "requests-page", "confirm-title", "confirm-text",
    "confirm-ok"]) {
    $(id).replaceChildren();
  }
  for (const next of document.querySelectorAll("[data-cursor]")) delete next.dataset.cursor;
  $("own-meter").value = 0;
  editingRole = null;
  for (const hidden of ["notice", "error", "requests-note", "edit-client", "edit-partner", "edit-role", "create-client",
    "create-partner", "app", "sign-out", "nav"]) {
    $(hidden).hidden = true;
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  for (const link of document.querySelectorAll("#nav a")) link.removeAttribute("aria-current");
  history.replaceState(null, "", location.pathname);
  $("sign-in").hidden = false;
  document.title = "partnergate console";
}

/// The sign-out button: a session ends server-side first (its cookie then opens nothing), then the page clears.
async function endSession() {
  const session = state.session;
  if (session !== null) {
    await fetch("/console/sign-out", { method: "POST", headers: { "X-CSRF-Token": session.csrf_token } })
      .catch(() => undefined);
  }
  signOut();
}

/// What the sign-in page offers: the identity provider, an admin client's credentials, or both.
async function signInOptions() {
  const response = await fetch("/console/sign-in-options");
  const options = response.ok ? await response.json() : { identity_provider: false, client_sign_in: true };
  $("sso-sign-in").hidden = !options.identity_provider;
  $("client-sign-in").hidden = !options.client_sign_in;
  $("client-sign-in").disabled = !options.client_sign_in;
}

function expired() {
  const at = new Date(state.expiresAt).toISOString();
  signOut();
  $("signed-out").textContent = `Signed out: the admin token expired at ${at}. Sign in again.`;
  $("signed-out").hidden = false;
}

function forgetSecret() {
  $("new-secret-value").textContent = "";
  $("copy-status").textContent = "";
  $("new-secret").hidden = true;
}

function showSecret(secret) {
  $("new-secret-value").textContent = secret;
  $("copy-status").textContent = "";
  $("new-secret").hidden = false;
  $("copy-secret").focus();
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

// ---------------------------------------------------------------------------------------------------------
// Navigation: `#partners`, `#partner/<id>`, `#clients`, `#client/<id>`, `#catalog`, `#keys`, `#audit`,
// `#requests`, `#own`
// ---------------------------------------------------------------------------------------------------------

const VIEWS = {
  partners: { view: "view-partners", need: "operator", load: () => loadPartners() },
  partner: { view: "view-partner", need: "operator", load: (id) => openPartner(id) },
  own: { view: "view-partner", need: "own", load: () => openPartner(state.ownPartner) },
  clients: { view: "view-clients", need: "clients", load: () => loadClients() },
  client: { view: "view-client", need: "clients", load: (id) => openClient(id) },
  catalog: { view: "view-catalog", need: "operator", load: () => loadCatalog() },
  keys: { view: "view-keys", need: "operator", load: () => loadKeys() },
  audit: { view: "view-audit", need: "audit", load: () => loadAudit() },
  requests: { view: "view-requests", need: "audit", load: () => loadRequests() },
};

async function route() {
  if (state.token === null && state.session === null) return;
  const [name, ...rest] = location.hash.slice(1).split("/");
  const target = VIEWS[name] && allowed(VIEWS[name].need) ? VIEWS[name] : null;
  if (!target) return;
  const id = rest.length ? decodeURIComponent(rest.join("/")) : null;
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== target.view;
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.dataset.view === name || (name === "partner" && link.dataset.view === "partners")
      || (name === "client" && link.dataset.view === "clients");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("edit-client").hidden = true;
  $("edit-partner").hidden = true;
  document.title = `${$(target.view).dataset.title} · partnergate console`;
  await run(() => target.load(id));
  // Keyboard and screen-reader users land on the new view's heading, not on the link they left.
  const heading = $(target.view).querySelector("h1");
  heading.tabIndex = -1;
  if (!$("confirm").open) heading.focus({ preventScroll: true });
}

const go = (hash) => {
  if (location.hash === hash) return route();
  location.hash = hash;
  return Promise.resolve();
};

// ---------------------------------------------------------------------------------------------------------
// Partners
// ---------------------------------------------------------------------------------------------------------

async function loadPartners(move = 0) {
  const pages = turn(state.pages.partners, move);
  const cursor = pages[pages.length - 1];
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (cursor) query.set("cursor", cursor);
  const ticket = ++tickets.partners;
  const page = await api("GET", `/partners?${query}`);
  if (!latest("partners", ticket)) return;
  const search = $("partners-search").value.trim().toLowerCase();
  const items = page.items.filter((p) => !search || p.id.includes(search) || p.name.toLowerCase().includes(search));
  fillTable($("partners-table"), items.map((partner) => {
    const usage = el("td", { class: "usage", "data-col": "usage" });
    api("GET", `/partners/${seg(partner.id)}/usage`).then((today) => { usage.textContent = today.tokens; })
      .catch(() => {});
    return {
      data: { partnerId: partner.id },
      cells: [
        ["name", named(partner.name, partner.id, `#partner/${seg(partner.id)}`)],
        ["status", partner.suspended ? badge("suspended", "off") : badge("active", "ok")],
        ["usage", usage],
        ["quota", partner.token_quota_per_day ? `${partner.token_quota_per_day}${partner.quota_log_only ? " (log only)" : ""}` : "none"],
        ["rate", partner.rate_limit_per_minute ?? "none"],
        ["ceiling", partner.scope_ceiling.join(" ")],
      ],
    };
  }), search ? "No partner on this page matches." : "No partners yet.");
  pager("partners", page.next_cursor, page.items.length);
}

/// The cursors of the pages seen so far: a cursor string turns to the next page, -1 back to the previous one,
/// anything else draws the current page again.
function turn(pages, move) {
  if (typeof move === "string" && move !== "") pages.push(move);
  else if (move === -1 && pages.length > 1) pages.pop();
  return pages;
}

function pager(name, next, shown) {
  const pages = state.pages[name];
  $(`${name}-prev`).hidden = pages.length <= 1;
  $(`${name}-next`).hidden = !next;
  $(`${name}-next`).dataset.cursor = next || "";
  $(`${name}-page`).textContent = `Page ${pages.length} · ${shown} shown`;
}

async function createPartner(event) {
  event.preventDefault();
  const partner = await api("POST", "/partners", {
    id: $("new-partner-id").value.trim(), name: $("new-partner-name").value.trim(),
    scope_ceiling: list($("new-partner-ceiling").value), audience_ceiling: list($("new-partner-audiences").value),
  });
  $("create-partner").reset();
  $("create-partner").hidden = true;
  await go(`#partner/${seg(partner.id)}`);
  notify(`Partner ${partner.name} (${partner.id}) created.`);
}

/// The partner's clients (up to a page of 500), for the detail page and the consequences of actions.
async function partnerClients(id) {
  const page = await api("GET", `/clients?partner_id=${seg(id)}&limit=500`);
  return { items: page.items, count: page.next_cursor ? `more than ${page.items.length}` : String(page.items.length) };
}

async function openPartner(id) {
  const partner = await api("GET", `/partners/${seg(id)}`);
  state.partner = partner;
  const clients = await partnerClients(id);
  $("partner-title").textContent = partner.name;
  $("partner-status").replaceChildren(partner.suspended ? badge("suspended", "off") : badge("active", "ok"));
  facts($("partner-facts"), [
    ["Id", partner.id], ["Scope ceiling", partner.scope_ceiling.join(" ") || "none"],
    ["Audience ceiling", partner.audience_ceiling.join(" ") || "none"],
    ["Trusted issuers", (partner.trusted_issuers || []).join(" ") || "none"],
    ["Rate limit / min", partner.rate_limit_per_minute ?? "none"],
    ["Quota / day", partner.token_quota_per_day ?? "none"], ["Clients", clients.count],
    ["Maximum secret age", partner.secret_max_age_days == null ? "the server's default"
      : partner.secret_max_age_days === 0 ? "none" : `${partner.secret_max_age_days} d`],
    ["Created", when(partner.created_at)],
  ]);
  const protectedPartner = partner.id === "operator";
  const actions = [];
  if (state.can.operator) {
    actions.push(button("Edit", async () => editPartner(partner)));
    if (partner.suspended) actions.push(button("Resume", () => suspendPartner(partner, false, clients.count)));
    else if (!protectedPartner) actions.push(button("Suspend", () => suspendPartner(partner, true, clients.count), { kind: "danger-outline" }));
    actions.push(button("Revoke tokens", () => revokePartnerTokens(partner, clients.count), { kind: "danger-outline" }));
    if (!protectedPartner) actions.push(button("Delete", () => deletePartner(partner, clients.count), { kind: "danger-outline" }));
    else actions.push(el("span", { class: "hint", id: "protected-note" }, "The operator's own partner cannot be suspended or deleted: that would lock every admin out."));
  }
  $("partner-actions").replaceChildren(...actions);
  fillTable($("partner-clients"), clients.items.map((client) => clientRow(client, false)), "No clients yet.");
  await loadExpiring(id);
  await loadUsage(id);
  await loadInvitations(id);
  if (state.can.audit) {
    const events = await api("GET", `/audit?${new URLSearchParams({ partner_id: id, event_type: "token.request", limit: "1000" })}`);
    drawChart($("partner-chart"), events.items, id);
  } else {
    $("partner-chart").replaceChildren(el("p", { class: "hint" }, "Reading the audit trail takes authz.audit.read."));
  }
}

// Secrets that expire soon: the partner's to rotate before its integrations stop.
async function loadExpiring(partnerId) {
  const expiring = await api("GET", `/secrets/expiring?${new URLSearchParams({ within_days: "30", partner_id: partnerId })}`);
  fillTable($("partner-expiring"), expiring.items.map((secret) => ({
    data: { secretId: secret.secret_id },
    cells: [["name", named(secret.name, secret.secret_id)],
      ["client", named(secret.client_name, secret.client_id, `#client/${encodeURIComponent(secret.client_id)}`)],
      ["expires", el("td", { "data-col": "expires" }, expiryBadge(secret.expires_in_days), " ", untilText(secret.expires_at))],
      ["age", `${secret.age_days} d`]],
  })), "No secret expires within 30 days.");
}

/// A badge for a working secret that expires within 30 days; nothing otherwise.
function expiryBadge(daysLeft) {
  if (daysLeft == null || daysLeft >= 30) return "";
  return badge(daysLeft < 1 ? "expires today" : `expires in ${daysLeft} d`, daysLeft < 7 ? "off" : "warn");
}

/// The people invited to administer the partner. A partner admin gives at most the scopes it holds.
async function loadInvitations(id) {
  $("invitations").hidden = !state.can.clientsRead;
  if (!state.can.clientsRead) return;
  $("invite-form").hidden = !state.can.clientsWrite;
  for (const box of document.querySelectorAll("input[name=invite-scope]")) {
    box.disabled = !state.can.operator && !state.scopes.includes(box.value);
    if (box.disabled) box.checked = false;
  }
  const page = await api("GET", `/partners/${seg(id)}/invitations`);
  fillTable($("invitations-table"), page.items.map((invitation) => ({
    data: { email: invitation.email },
    cells: [
      ["email", invitation.email], ["scopes", invitation.scopes.join(" ")],
      ["status", invitation.bound ? badge(`signed in since ${when(invitation.bound.at)}`, "ok") : badge("not yet signed in", "")],
      ["invited-by", invitation.invited_by],
      ["actions", state.can.clientsWrite
        ? button("Withdraw", () => withdrawInvitation(id, invitation), { kind: "danger-outline small" }) : ""],
    ],
  })), "Nobody invited yet.");
}

async function invite() {
  const partner = state.partner;
  const scopes = [...document.querySelectorAll("input[name=invite-scope]:checked")].map((box) => box.value);
  const invitation = await api("POST", `/partners/${seg(partner.id)}/invitations`, { email: $("invite-email").value, scopes });
  $("invite-email").value = "";
  notify(`Invited ${invitation.email} to administer ${partner.name} with ${invitation.scopes.join(" ")}.`);
  await loadInvitations(partner.id);
}

async function withdrawInvitation(partnerId, invitation) {
  if (!(await confirmAction(`Withdraw the invitation of ${invitation.email}?`,
    `${invitation.email} can no longer sign in as an admin of this partner${invitation.bound ? " and is signed out now" : ""}.`,
    "Withdraw"))) return;
  await api("DELETE", `/partners/${seg(partnerId)}/invitations/${seg(invitation.id)}`);
  notify(`Withdrew the invitation of ${invitation.email}.`);
  await loadInvitations(partnerId);
}

async function loadUsage(id) {
  const usage = await api("GET", `/partners/${seg(id)}/usage`);
  $("own-usage").textContent = usage.tokens;
  $("own-of").textContent = usage.token_quota_per_day ? "of" : "tokens ·";
  $("own-quota").textContent = usage.token_quota_per_day ?? "no quota";
  $("own-meter").value = usage.token_quota_per_day ? Math.min(1, usage.tokens / usage.token_quota_per_day) : 0;
  $("own-log-only").textContent = usage.quota_log_only ? "Over quota, tokens are still issued (log only)." : "";
  $("own-resets").textContent = when(usage.resets_at);
}

function facts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value ?? "")]));
}

async function suspendPartner(partner, suspend, clientCount) {
  if (suspend && !(await confirmAction(`Suspend ${partner.name}?`,
    `${partner.name}'s ${plural(clientCount, "client")} will get no tokens until resumed, and the tokens they hold are refused from now on.`,
    "Suspend partner"))) return;
  await api("POST", `/partners/${seg(partner.id)}/${suspend ? "suspend" : "resume"}`);
  await openPartner(partner.id);
  notify(suspend ? `${partner.name} is suspended: its clients get no tokens until resumed.`
    : `${partner.name} is resumed: its clients get tokens again.`);
}

async function revokePartnerTokens(partner, clientCount) {
  if (!(await confirmAction(`Revoke every token of ${partner.name}?`,
    `Every token issued so far to ${partner.name}'s ${plural(clientCount, "client")} is refused from now on; they must request new ones.`,
    "Revoke tokens"))) return;
  const result = await api("POST", `/partners/${seg(partner.id)}/revoke-tokens`);
  notify(`Revoked every token of ${partner.name} issued until ${when(result.tokens_revoked_before)}.`);
}

async function deletePartner(partner, clientCount) {
  if (clientCount !== "0") {
    showError(`${partner.name} still has ${plural(clientCount, "client")}: delete them before the partner.`);
    return;
  }
  if (!(await confirmAction(`Delete ${partner.name}?`,
    `Partner ${partner.id} and its ceilings are deleted; its audit events stay. This cannot be undone.`,
    "Delete partner"))) return;
  await api("DELETE", `/partners/${seg(partner.id)}`);
  await go("#partners");
  notify(`Partner ${partner.name} (${partner.id}) deleted.`);
}

function editPartner(partner) {
  $("edit-partner-id").textContent = partner.id;
  $("partner-name").value = partner.name;
  $("partner-ceiling").value = partner.scope_ceiling.join(", ");
  $("partner-audiences").value = partner.audience_ceiling.join(", ");
  $("partner-issuers").value = (partner.trusted_issuers || []).join(", ");
  $("partner-rate").value = partner.rate_limit_per_minute ?? "";
  $("partner-quota").value = partner.token_quota_per_day ?? "";
  $("partner-log-only").checked = partner.quota_log_only;
  $("partner-secret-max-age").value = partner.secret_max_age_days ?? "";
  $("edit-partner").hidden = false;
  $("partner-name").focus();
}

async function savePartner(event) {
  event.preventDefault();
  const id = state.partner.id;
  const saved = await api("PATCH", `/partners/${seg(id)}`, {
    name: $("partner-name").value, scope_ceiling: list($("partner-ceiling").value),
    audience_ceiling: list($("partner-audiences").value), trusted_issuers: list($("partner-issuers").value),
    rate_limit_per_minute: numberOrNull("partner-rate"),
    token_quota_per_day: numberOrNull("partner-quota"), quota_log_only: $("partner-log-only").checked,
    secret_max_age_days: numberOrNull("partner-secret-max-age"),
  });
  $("edit-partner").hidden = true;
  await openPartner(id);
  notify(`Partner ${saved.name} saved.`);
}

// ---------------------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------------------

function statusBadge(client) {
  return client.enabled ? badge("enabled", "ok")
    : badge(client.disabled_by ? `disabled by ${client.disabled_by}` : "disabled", "off");
}

/// A client's row; `withActions`: the list's quick actions (the detail page has them all).
function clientRow(client, withActions) {
  const cells = [["name", named(client.name, client.id, `#client/${seg(client.id)}`)]];
  if (withActions) cells.push(["partner", client.partner_id]);
  cells.push(["environment", client.environment ?? ""], ["enabled", statusBadge(client)],
    ["scopes", [...client.roles.map((r) => `role:${r}`), ...client.scopes].join(" ")]);
  if (withActions) {
    const lastUsed = el("td", { "data-col": "last-used" });
    api("GET", `/clients/${seg(client.id)}/secrets`).then((secrets) => {
      lastUsed.textContent = when(secrets.items.map((s) => s.last_used_at).filter(Boolean).sort().pop()) || "never";
    }).catch(() => {});
    cells.push(["last-used", lastUsed]);
    const actions = el("td", { class: "actions-cell", "data-col": "actions" });
    if (state.can.clientsWrite) {
      actions.append(
        button(client.enabled ? "Disable" : "Enable", () => setEnabled(client, !client.enabled), { kind: "small", name: "toggle" }),
        button("Revoke tokens", () => revokeClientTokens(client), { kind: "small" }),
        button("Delete", () => deleteClient(client), { kind: "small danger-outline" }),
      );
    }
    cells.push(["actions", actions]);
  }
  return { data: { clientId: client.id }, cells };
}

async function loadClients(move = 0) {
  const pages = turn(state.pages.clients, move);
  const cursor = pages[pages.length - 1];
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (cursor) query.set("cursor", cursor);
  if ($("clients-partner").value.trim()) query.set("partner_id", $("clients-partner").value.trim());
  if ($("clients-environment").value.trim()) query.set("environment", $("clients-environment").value.trim());
  const search = $("clients-search").value.trim();
  if (search) query.set("search", search);
  const ticket = ++tickets.clients;
  const page = await api("GET", `/clients?${query}`);
  if (!latest("clients", ticket)) return;
  fillTable($("clients-table"), page.items.map((client) => clientRow(client, true)),
    search ? "No client matches." : "No clients.");
  pager("clients", page.next_cursor, page.items.length);
}

async function showCreateClient(partnerId) {
  const form = $("create-client");
  if (state.can.operator) {
    const partners = await api("GET", "/partners?limit=500");
    $("new-partner").replaceChildren(...partners.items.map((p) => el("option", { value: p.id }, `${p.name} (${p.id})`)));
    if (partnerId) $("new-partner").value = partnerId;
  }
  form.hidden = false;
  $("new-name").focus();
}

async function createClient(event) {
  event.preventDefault();
  const body = {
    name: $("new-name").value, roles: list($("new-roles").value), scopes: list($("new-scopes").value),
    audiences: list($("new-audiences").value),
  };
  if ($("new-environment").value.trim()) body.environment = $("new-environment").value.trim();
  if (state.can.operator) body.partner_id = $("new-partner").value;
  const secretMethods = ["client_secret_basic", "client_secret_post"];
  body.token_endpoint_auth_methods = { secret: secretMethods, key: ["private_key_jwt"],
    both: [...secretMethods, "private_key_jwt"] }[$("new-auth").value];
  if ($("new-jwks").value.trim()) {
    try {
      body.jwks = JSON.parse($("new-jwks").value);
    } catch (err) {
      showError(`The public keys are not JSON: ${err.message}`);
      return;
    }
  }
  if ($("new-jwks-uri").value.trim()) body.jwks_uri = $("new-jwks-uri").value.trim();
  const created = await api("POST", "/clients", body);
  $("create-client").reset();
  $("create-client").hidden = true;
  await loadClients();
  notify(`Client ${created.client.name} (${created.client.id}) created for partner ${created.client.partner_id}.`);
  // A client that may use no secret method (private_key_jwt only) is created without one.
  if (created.secret) showSecret(created.secret.secret);
}

async function setEnabled(client, enabled) {
  if (!enabled && !(await confirmAction(`Disable ${client.name}?`,
    `${client.name} (${client.id}) gets no tokens until enabled again, and the tokens it holds are refused from now on.`,
    "Disable client"))) return;
  await api("POST", `/clients/${seg(client.id)}/${enabled ? "enable" : "disable"}`);
  await refreshClientViews(client.id);
  notify(enabled ? `${client.name} is enabled: it gets tokens again.` : `${client.name} is disabled: it gets no tokens until enabled.`);
}

async function revokeClientTokens(client) {
  if (!(await confirmAction(`Revoke every token of ${client.name}?`,
    `Every token issued to ${client.name} (${client.id}) so far is refused from now on; it must request a new one with its secret.`,
    "Revoke tokens"))) return;
  const result = await api("POST", `/clients/${seg(client.id)}/revoke-tokens`);
  notify(`Revoked every token of ${client.name} issued until ${when(result.tokens_revoked_before)}.`);
}

async function deleteClient(client) {
  const secrets = await api("GET", `/clients/${seg(client.id)}/secrets`);
  const active = secrets.items.filter((s) => s.active).length;
  if (!(await confirmAction(`Delete ${client.name}?`,
    `${client.name} (${client.id}) and its ${plural(active, "working secret")} are deleted: the integration stops getting tokens at once. This cannot be undone.`,
    "Delete client"))) return;
  await api("DELETE", `/clients/${seg(client.id)}`);
  if (location.hash.startsWith("#client/")) await go("#clients");
  else await loadClients();
  notify(`Client ${client.name} (${client.id}) deleted.`);
}

/// After a change: the view that shows the client draws it again.
async function refreshClientViews(id) {
  if (location.hash.startsWith("#client/")) await openClient(id);
  else await loadClients();
}

async function openClient(id) {
  const client = await api("GET", `/clients/${seg(id)}`);
  state.client = client;
  $("client-title").textContent = client.name;
  $("client-status").replaceChildren(statusBadge(client));
  $("client-env").textContent = client.environment ?? "";
  $("client-crumb-partner").replaceChildren(state.can.operator
    ? el("a", { href: `#partner/${seg(client.partner_id)}` }, `partner ${client.partner_id}`) : "");
  facts($("client-facts"), [
    ["Id", client.id], ["Partner", client.partner_id], ["Environment", client.environment ?? "none"],
    ["Description", client.description || "none"], ["Roles", client.roles.join(" ") || "none"],
    ["Direct scopes", client.scopes.join(" ") || "none"], ["Audiences", client.audiences.join(" ") || "server default"],
    ["Token lifetime", client.token_lifetime_secs ? `${client.token_lifetime_secs} s` : "server default"],
    ["Rate limit / min", client.rate_limit_per_minute ?? "server default"],
    ["Authentication", (client.token_endpoint_auth_methods || []).join(" ") || "none"],
    ["Public keys", client.jwks_uri ?? ((client.jwks?.keys || []).map((k) => `${k.kid} (${k.kty})`).join(", ") || "none")],
    ["Federated", (client.federated_credentials || []).map((f) => `${f.issuer} ${f.subject}`).join(", ") || "none"],
    ["Created", when(client.created_at)],
  ]);
  const actions = [];
  if (state.can.clientsWrite) {
    actions.push(
      button("Edit", async () => editClient(client)),
      button(client.enabled ? "Disable" : "Enable", () => setEnabled(client, !client.enabled), { kind: client.enabled ? "danger-outline" : "", name: "toggle" }),
      button("Revoke tokens", () => revokeClientTokens(client), { kind: "danger-outline" }),
      button("Delete", () => deleteClient(client), { kind: "danger-outline" }),
    );
  }
  $("client-actions").replaceChildren(...actions);
  $("rotate-form").hidden = !state.can.clientsWrite;
  $("grace-hint").hidden = !state.can.clientsWrite;
  await loadSecrets(id);
  if (state.can.audit) {
    const events = await api("GET", `/audit?${new URLSearchParams({ client_id: id, event_type: "token.request", limit: "1000" })}`);
    drawChart($("client-chart"), events.items, id);
    fillTable($("client-audit"), events.items.slice(0, 20).map((e) => ({
      cells: [["time", when(e.occurred_at)], ["outcome", outcomeBadge(e.outcome)], ["reason", e.reason],
        ["scopes", e.scopes], ["address", e.source_ip]],
    })), "No token requests yet.");
  } else {
    $("client-chart").replaceChildren(el("p", { class: "hint" }, "Reading the audit trail takes authz.audit.read."));
  }
  await loadRequestTable($("client-requests"), $("client-requests-note"), new URLSearchParams({ client_id: id, limit: "20" }), false);
}

const outcomeBadge = (outcome) => badge(outcome, outcome === "success" ? "ok" : "off");

function editClient(client) {
  $("edit-client-id").textContent = client.id;
  $("edit-name").value = client.name;
  $("edit-description").value = client.description;
  $("edit-environment").value = client.environment ?? "";
  $("edit-roles").value = client.roles.join(", ");
  $("edit-scopes").value = client.scopes.join(", ");
  $("edit-audiences").value = client.audiences.join(", ");
  $("edit-rate").value = client.rate_limit_per_minute ?? "";
  $("edit-lifetime").value = client.token_lifetime_secs ?? "";
  $("edit-enabled").checked = client.enabled;
  $("edit-client").hidden = false;
  $("edit-name").focus();
}

async function saveClient(event) {
  event.preventDefault();
  const client = state.client;
  const enabled = $("edit-enabled").checked;
  if (!enabled && client.enabled && !(await confirmAction(`Disable ${client.name}?`,
    `${client.name} (${client.id}) gets no tokens until enabled again, and the tokens it holds are refused from now on.`,
    "Save and disable"))) return;
  const environment = $("edit-environment").value.trim();
  await api("PATCH", `/clients/${seg(client.id)}`, {
    name: $("edit-name").value, description: $("edit-description").value, roles: list($("edit-roles").value),
    scopes: list($("edit-scopes").value), audiences: list($("edit-audiences").value),
    rate_limit_per_minute: numberOrNull("edit-rate"), token_lifetime_secs: numberOrNull("edit-lifetime"),
    environment: environment === "" ? null : environment,
  });
  if (enabled !== client.enabled) await api("POST", `/clients/${seg(client.id)}/${enabled ? "enable" : "disable"}`);
  $("edit-client").hidden = true;
  await openClient(client.id);
  notify(`Client ${$("edit-name").value} saved${enabled !== client.enabled ? (enabled ? " and enabled" : " and disabled") : ""}.`);
}

async function loadSecrets(clientId) {
  $("secrets-client").textContent = state.client ? state.client.name : clientId;
  const secrets = await api("GET", `/clients/${seg(clientId)}/secrets`);
  state.secrets = secrets.items;
  fillTable($("secrets-table"), secrets.items.map((secret) => {
    const actions = el("td", { class: "actions-cell", "data-col": "actions" });
    if (!secret.revoked_at && state.can.clientsWrite) {
      actions.append(button("Revoke", () => revokeSecret(clientId, secret), { kind: "small danger-outline" }));
    }
    return {
      data: { secretId: secret.id },
      cells: [["name", named(secret.name, secret.id)], ["prefix", secret.prefix],
        ["age", `${age(secret.created_at)} (${when(secret.created_at)})`],
        ["expires", el("td", { "data-col": "expires" }, secret.active ? expiryBadge(secret.expires_in_days) : "", " ",
          secret.expires_at ? untilText(secret.expires_at) : "never")],
        ["revoked", when(secret.revoked_at)], ["last-used", secret.last_used_at ? `${when(secret.last_used_at)}` : "never"],
        ["actions", actions]],
    };
  }), "No secrets.");
}

async function revokeSecret(clientId, secret) {
  const others = state.secrets.filter((s) => s.id !== secret.id && s.active).length;
  const name = state.client ? state.client.name : clientId;
  if (!(await confirmAction(`Revoke secret ${secret.name}?`,
    `Secret ${secret.name} (${secret.prefix}…) of ${name} stops working at once; ${others === 0 ? "the client has no other working secret and gets no tokens until it is given a new one" : `its ${plural(others, "other working secret")} ${others === 1 ? "keeps" : "keep"} working`}.`,
    "Revoke secret"))) return;
  await api("DELETE", `/clients/${seg(clientId)}/secrets/${seg(secret.id)}`);
  await loadSecrets(clientId);
  notify(`Secret ${secret.name} of ${name} revoked.`);
}

async function rotate(event) {
  event.preventDefault();
  const clientId = state.client.id;
  const days = Number($("grace-days").value);
  const others = state.secrets.filter((s) => s.active).length;
  if (days === 0 && others > 0 && !(await confirmAction("Rotate with no grace period?",
    `The client's ${plural(others, "other working secret")} expire at once: the integration fails until the new secret is deployed.`,
    "Rotate now"))) return;
  const issued = await api("POST", `/clients/${seg(clientId)}/secrets`, { grace_period_secs: Math.round(days * DAY_SECS) });
  await loadSecrets(clientId);
  notify(`New secret ${issued.name} created; the other secrets ${days === 0 ? "expired at once" : `expire in ${days} days`}.`);
  showSecret(issued.secret);
}

// ---------------------------------------------------------------------------------------------------------
// Scopes and roles
// ---------------------------------------------------------------------------------------------------------

async function loadCatalog() {
  const scopes = await api("GET", "/scopes?limit=500");
  fillTable($("scopes-table"), scopes.items.map((scope) => ({
    data: { scope: scope.name },
    cells: [["name", el("span", { class: "mono" }, scope.name)], ["description", scope.description],
      // The reserved `authz.*` scopes are the server's own: not offered for deletion.
      ["actions", el("td", { class: "actions-cell" }, scope.name.startsWith("authz.") ? ""
        : button("Delete", () => deleteCatalog("scope", scope.name), { kind: "small danger-outline" }))]],
  })), "No scopes yet.");
  const roles = await api("GET", "/roles?limit=500");
  fillTable($("roles-table"), roles.items.map((role) => ({
    data: { role: role.name },
    cells: [["name", el("td", {}, el("span", { class: "name" }, role.name), el("span", { class: "id" }, role.description))],
      ["scopes", role.scopes.join(" ")],
      ["actions", el("td", { class: "actions-cell" }, button("Edit", async () => editRole(role), { kind: "small" }),
        button("Delete", () => deleteCatalog("role", role.name), { kind: "small danger-outline" }))]],
  })), "No roles yet.");
}

let editingRole = null;
function editRole(role) {
  editingRole = role.name;
  $("edit-role-name").textContent = role.name;
  $("edit-role-scopes").value = role.scopes.join(", ");
  $("edit-role").hidden = false;
  $("edit-role-scopes").focus();
}

async function saveRole() {
  const role = await api("PATCH", `/roles/${seg(editingRole)}`, { scopes: list($("edit-role-scopes").value) });
  $("edit-role").hidden = true;
  await loadCatalog();
  notify(`Role ${role.name} now grants ${role.scopes.join(" ") || "nothing"}; clients holding it get that on their next token.`);
}

async function deleteCatalog(kind, name) {
  if (!(await confirmAction(`Delete ${kind} ${name}?`,
    `The ${kind} ${name} leaves the catalog. If a client, role or partner still uses it, the server refuses and says which.`,
    `Delete ${kind}`))) return;
  await api("DELETE", `/${kind}s/${seg(name)}`);
  await loadCatalog();
  notify(`The ${kind} ${name} is deleted.`);
}

async function createScope(event) {
  event.preventDefault();
  const scope = await api("POST", "/scopes", { name: $("new-scope-name").value.trim(), description: $("new-scope-description").value });
  $("create-scope").reset();
  await loadCatalog();
  notify(`Scope ${scope.name} added.`);
}

async function createRole(event) {
  event.preventDefault();
  const role = await api("POST", "/roles", {
    name: $("new-role-name").value.trim(), description: $("new-role-description").value, scopes: list($("new-role-scopes").value),
  });
  $("create-role").reset();
  await loadCatalog();
  notify(`Role ${role.name} added.`);
}

// ---------------------------------------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------------------------------------

async function loadKeys() {
  const keys = await api("GET", "/keys");
  fillTable($("keys-table"), keys.items.map((key) => {
    const actions = el("td", { class: "actions-cell", "data-col": "actions" });
    if (key.state === "published") {
      actions.append(button("Activate", () => activateKey(key), { kind: "small" }),
        button("Retire", () => retireKey(key), { kind: "small danger-outline" }));
    }
    const shown = key.state === "active" ? badge("active", "ok") : key.state === "retired" ? badge("retired", "off") : badge(key.state, "");
    return {
      data: { kid: key.kid },
      cells: [["kid", el("span", { class: "mono" }, key.kid)], ["alg", key.alg], ["state", shown],
        ["published", when(key.published_at)], ["activated", when(key.activated_at)], ["retired", when(key.retired_at)],
        ["actions", actions]],
    };
  }), "No signing keys.");
}

async function activateKey(key) {
  const tried = await api("POST", `/keys/${seg(key.kid)}/activate`, undefined, { allow: [409] });
  if (tried.status === 409) {
    if (!(await confirmAction("Activate this key early?",
      `${tried.message} Resource servers that fetched the JWKS before ${when(key.published_at)} do not know this key yet and refuse its tokens until they fetch it again.`,
      "Activate early"))) return;
    await api("POST", `/keys/${seg(key.kid)}/activate?force=true`);
  }
  await loadKeys();
  notify(`Key ${key.kid} signs new tokens; the previous key is retired and stays published until its tokens expire.`);
}

async function retireKey(key) {
  if (!(await confirmAction("Retire this key?", `Key ${key.kid} will never sign; it stays in the JWKS until pruned.`, "Retire key"))) return;
  await api("POST", `/keys/${seg(key.kid)}/retire`);
  await loadKeys();
  notify(`Key ${key.kid} retired.`);
}

async function generateKey(event) {
  event.preventDefault();
  const key = await api("POST", "/keys", { alg: $("key-alg").value });
  await loadKeys();
  notify(`Key ${key.kid} (${key.alg}) generated and published; activate it once verifiers have fetched it.`);
}

async function rotateKeys() {
  const report = await api("POST", "/keys/rotate");
  const steps = [];
  if (report.removed.length) steps.push(`removed ${report.removed.join(", ")}`);
  if (report.published) steps.push(`published ${report.published.kid}`);
  if (report.activated) steps.push(`activated ${report.activated.kid}`);
  if (report.waiting) steps.push(`${report.waiting.kid} may sign from ${when(report.ready_at)}: run the step again then`);
  await loadKeys();
  notify(`Rotation step: ${steps.join("; ") || "nothing was due"}.`);
}

async function pruneKeys() {
  const pruned = await api("POST", "/keys/prune");
  await loadKeys();
  notify(pruned.removed.length ? `Removed ${pruned.removed.join(", ")}.` : "No retired key was due for removal.");
}

// ---------------------------------------------------------------------------------------------------------
// Audit trail and its chart
// ---------------------------------------------------------------------------------------------------------

function auditQuery() {
  const query = new URLSearchParams({ limit: "50" });
  const filters = { partner_id: "audit-partner", since: "audit-since", until: "audit-until", client_id: "audit-client",
    event_type: "audit-type", outcome: "audit-outcome" };
  for (const [name, id] of Object.entries(filters)) if ($(id).value.trim()) query.set(name, $(id).value.trim());
  return query;
}

async function loadAudit(move = 0) {
  const pages = turn(state.pages.audit, move);
  const query = auditQuery();
  const cursor = pages[pages.length - 1];
  if (cursor) query.set("cursor", cursor);
  const ticket = ++tickets.audit;
  const page = await api("GET", `/audit?${query}`);
  if (!latest("audit", ticket)) return;
  fillTable($("audit-table"), page.items.map((event) => ({
    cells: [["time", when(event.occurred_at)], ["type", event.event_type], ["outcome", event.outcome],
      ["reason", event.reason], ["client", event.client_id], ["partner", event.partner_id], ["actor", event.actor],
      ["request", event.request_id]],
  })), "No events match.");
  pager("audit", page.next_cursor === null ? null : String(page.next_cursor), page.items.length);
  // The chart: token requests of the same filter (the newest 1000).
  const chartQuery = auditQuery();
  chartQuery.set("event_type", "token.request");
  chartQuery.set("limit", "1000");
  const events = await api("GET", `/audit?${chartQuery}`);
  if (!latest("audit", ticket)) return;
  drawChart($("usage-chart"), events.items, $("audit-client").value.trim() || $("audit-partner").value.trim() || "all");
}

const SVG = "http://www.w3.org/2000/svg";
function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

const BUCKET_MINUTES = [1, 5, 15, 60, 360, 1440];
// The charts on the page and how to draw each again at a new width.
const charts = new Map();
let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => {
    for (const [container, redraw] of charts) if (container.isConnected) redraw();
  }, 100);
});

/// The bucket size, in minutes, that shows `span` milliseconds in at most `most` bars.
function bucketMinutes(span, most) {
  return BUCKET_MINUTES.find((m) => span / (m * 60000) < most) || 1440;
}

/// A chart's width: the container's, so that text keeps its size on a phone and on a wide screen.
function chartWidth(container) {
  return Math.max(280, Math.min(1200, Math.round(container.clientWidth || 640)));
}

/// Token requests over time: stacked bars (granted, denied) per time bucket. `subject` names what the events
/// are of (a client, a partner, or all).
function drawChart(container, events, subject) {
  charts.set(container, () => drawChart(container, events, subject));
  if (events.length === 0) {
    container.replaceChildren(el("p", { class: "hint" }, "No token requests in this range."));
    return;
  }
  const times = events.map((e) => Date.parse(e.occurred_at));
  const first = Math.min(...times);
  const minutes = bucketMinutes(Math.max(...times) - first, Math.floor(chartWidth(container) / 18));
  const size = minutes * 60000;
  const start = Math.floor(first / size) * size;
  const counts = new Map();
  for (const e of events) {
    const at = start + Math.floor((Date.parse(e.occurred_at) - start) / size) * size;
    const bucket = counts.get(at) || { granted: 0, denied: 0 };
    bucket[e.outcome === "success" ? "granted" : "denied"] += 1;
    counts.set(at, bucket);
  }
  drawBars(container, {
    subject, start, minutes, counts, unit: "requests", title: `Token requests of ${subject}`,
    series: [{ key: "granted", label: "granted" }, { key: "denied", label: "denied" }],
  });
}

const STATUS_CLASSES = [2, 3, 4, 5].map((c) => ({ key: `s${c}xx`, label: `${c}xx` }));

/// API requests over time from the request log's per-minute aggregates, stacked by status class.
function drawRequestChart(container, summary, subject) {
  charts.set(container, () => drawRequestChart(container, summary, subject));
  if (summary.buckets.length === 0) {
    container.replaceChildren(el("p", { class: "hint" }, "No API requests in this range."));
    return;
  }
  const counts = new Map();
  for (const b of summary.buckets) {
    const at = Date.parse(b.start);
    const bucket = counts.get(at) || Object.fromEntries(STATUS_CLASSES.map((c) => [c.key, 0]));
    const key = `s${b.status_class}`;
    if (key in bucket) bucket[key] += b.requests;
    counts.set(at, bucket);
  }
  drawBars(container, {
    subject, start: Date.parse(summary.since), end: Date.parse(summary.until), minutes: summary.interval_minutes,
    counts, unit: "requests", title: `API requests of ${subject} by status class`, series: STATUS_CLASSES,
  });
}

/// Stacked bars per time bucket, with both axes labelled and a legend. `counts` maps a time (ms) to a count
/// per series key, each added to the bucket it falls in; the buckets run from `start` (to `end`, or to the
/// last time counted).
function drawBars(container, { subject, start, end, minutes, counts, unit, title, series }) {
  container.replaceChildren();
  const size = minutes * 60000;
  const first = Math.floor(start / size) * size;
  const last = end === undefined ? Math.max(...counts.keys()) : end - 1;
  const count = Math.max(1, Math.floor((last - first) / size) + 1);
  const buckets = Array.from({ length: count }, () => ({}));
  for (const [at, bucket] of counts) {
    const into = buckets[Math.min(count - 1, Math.max(0, Math.floor((at - first) / size)))];
    for (const [key, n] of Object.entries(bucket)) into[key] = (into[key] || 0) + n;
  }
  const totals = Object.fromEntries(series.map((s) => [s.key, 0]));
  for (const b of buckets) for (const s of series) totals[s.key] += b[s.key] || 0;
  const max = Math.max(...buckets.map((b) => series.reduce((sum, s) => sum + (b[s.key] || 0), 0)));
  const top = niceCeiling(max);
  const width = chartWidth(container);
  const [height, left, right, topPad, bottom] = [220, 48, 12, 12, 44];
  const plotW = width - left - right;
  const plotH = height - topPad - bottom;
  const summary = series.map((s) => `${totals[s.key]} ${s.label}`).join(", ");
  const figure = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "data-client-id": subject,
    "aria-label": `${title} per ${minutes} min: ${summary}`,
  });
  figure.append(svg("title", {}, title));
  // The y axis: gridlines and counts.
  const ticks = top % 2 === 0 ? [0, top / 2, top] : [0, top];
  for (const tick of ticks) {
    const y = topPad + plotH - (tick / top) * plotH;
    figure.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid-line" }),
      svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, String(tick)));
  }
  figure.append(svg("text", { x: 12, y: topPad + plotH / 2, transform: `rotate(-90 12 ${topPad + plotH / 2})`, "text-anchor": "middle" }, unit));
  const slot = plotW / count;
  const barW = Math.max(1, Math.min(24, slot * 0.7));
  buckets.forEach((bucket, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    const label = new Date(first + i * size).toISOString().slice(0, 16).replace("T", " ");
    let base = topPad + plotH;
    for (const s of series) {
      const h = ((bucket[s.key] || 0) / top) * plotH;
      base -= h;
      const bar = svg("rect", { x, y: base, width: barW, height: h, class: s.key });
      bar.append(svg("title", {}, `${label} UTC: ${bucket[s.key] || 0} ${s.label}`));
      figure.append(bar);
    }
  });
  // The x axis: a baseline and up to six time labels.
  const axis = svg("g", { class: "axis" });
  axis.append(svg("line", { x1: left, x2: width - right, y1: topPad + plotH, y2: topPad + plotH }));
  const every = Math.max(1, Math.ceil(count / 6));
  for (let i = 0; i < count; i += every) {
    const at = new Date(first + i * size).toISOString();
    const text = minutes >= 1440 ? at.slice(5, 10) : count * minutes > 1440 ? `${at.slice(5, 10)} ${at.slice(11, 16)}` : at.slice(11, 16);
    axis.append(svg("text", { x: left + i * slot + slot / 2, y: topPad + plotH + 16, "text-anchor": "middle" }, text));
  }
  axis.append(svg("text", { x: left + plotW / 2, y: height - 6, "text-anchor": "middle" },
    `time (UTC, ${new Date(first).toISOString().slice(0, 10)}), per ${minutes} min`));
  figure.append(axis);
  const legend = el("ul", { class: "legend" }, ...series.map((s) => el("li", { class: s.key }, `${s.label} (${totals[s.key]})`)));
  container.append(figure, legend);
}

function niceCeiling(value) {
  if (value <= 2) return 2;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((s) => s * magnitude >= value);
  return step * magnitude;
}

// ---------------------------------------------------------------------------------------------------------
// The request log (GET /admin/v1/requests; a server without it answers 404 and the view says so)
// ---------------------------------------------------------------------------------------------------------

function requestsQuery() {
  const query = new URLSearchParams({ limit: "50" });
  const filters = { partner_id: "requests-partner", client_id: "requests-client", route: "requests-route",
    status: "requests-status", since: "requests-since", until: "requests-until" };
  for (const [name, id] of Object.entries(filters)) if ($(id).value.trim()) query.set(name, $(id).value.trim());
  return query;
}

async function loadRequests(move = 0) {
  const pages = turn(state.pages.requests, move);
  const query = requestsQuery();
  const cursor = pages[pages.length - 1];
  if (cursor) query.set("cursor", cursor);
  const ticket = ++tickets.requests;
  const page = await loadRequestTable($("requests-table"), $("requests-note"), query, true, () => latest("requests", ticket));
  if (!latest("requests", ticket)) return;
  if (page) pager("requests", page.next_cursor === null || page.next_cursor === undefined ? null : String(page.next_cursor), page.items.length);
  else pager("requests", null, 0);
  if (page) await loadRequestSummary(ticket);
}

/// The chart of the same filter (the status as its class) over the window, and the requests per route.
async function loadRequestSummary(ticket) {
  const query = requestsQuery();
  query.delete("limit");
  const status = query.get("status");
  if (status && /^[1-5][0-9][0-9]$/.test(status)) query.set("status", `${status[0]}xx`);
  const until = query.get("until") ? Date.parse(query.get("until")) : Date.now();
  const since = query.get("since") ? Date.parse(query.get("since")) : until - 24 * 3600000;
  if (!query.get("since")) query.set("since", new Date(since).toISOString());
  const minutes = bucketMinutes(until - since, Math.floor(chartWidth($("requests-chart")) / 18));
  query.set("interval_minutes", String(minutes));
  const summary = await api("GET", `/requests/summary?${query}`, undefined, { allow: [400] });
  if (!latest("requests", ticket)) return;
  if (summary.status === 400) {
    $("requests-chart").replaceChildren(el("p", { class: "hint" }, `No chart: ${summary.message}`));
    fillTable($("requests-routes"), [], "No chart for this filter.");
    return;
  }
  const subject = query.get("client_id") || query.get("partner_id") || "all";
  drawRequestChart($("requests-chart"), summary, subject);
  const routes = new Map();
  for (const b of summary.buckets) {
    const key = `${b.method} ${b.route}`;
    const row = routes.get(key) || { method: b.method, route: b.route, s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0, total: 0 };
    if (`s${b.status_class}` in row) row[`s${b.status_class}`] += b.requests;
    row.total += b.requests;
    routes.set(key, row);
  }
  fillTable($("requests-routes"), [...routes.values()].sort((a, b) => b.total - a.total || a.route.localeCompare(b.route) || a.method.localeCompare(b.method)).map((r) => ({
    cells: [["method", r.method], ["route", el("span", { class: "mono" }, r.route)], ["2xx", String(r.s2xx)],
      ["3xx", String(r.s3xx)], ["4xx", String(r.s4xx)], ["5xx", String(r.s5xx)], ["total", String(r.total)]],
  })), "No requests in this range.");
}

/// Fills a request table; answers the page, or null when this server has no request log (yet).
async function loadRequestTable(table, note, query, full, current = () => true) {
  const page = await api("GET", `/requests?${query}`, undefined, { allow: [404, 403] });
  if (!current()) return null;
  if (page.status === 404 || page.status === 403) {
    fillTable(table, [], "No request log.");
    note.textContent = page.status === 404
      ? "The request log is not available on this server yet: GET /admin/v1/requests answered 404. It appears here once the server has it and resource servers report to it."
      : `The request log is not readable with this sign-in: ${page.message || "forbidden"}.`;
    note.hidden = false;
    return null;
  }
  note.hidden = true;
  note.textContent = "";
  fillTable(table, page.items.map((r) => ({
    cells: full
      ? [["time", when(r.time)], ["client", r.client_id], ["partner", r.partner_id], ["method", r.method],
        ["route", el("span", { class: "mono" }, r.route)], ["status", String(r.status)], ["latency", String(r.latency_ms)],
        ["reporter", r.reporter]]
      : [["time", when(r.time)], ["method", r.method], ["route", el("span", { class: "mono" }, r.route)],
        ["status", String(r.status)], ["latency", `${r.latency_ms} ms`]],
  })), "No requests match.");
  return page;
}

// ---------------------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------------------

const on = (id, type, handler) => $(id).addEventListener(type, (event) => run(() => handler(event)));
const submit = (id, handler) => on(id, "submit", (event) => { event.preventDefault(); return handler(event); });

$("sign-in").addEventListener("submit", (e) => signIn(e).catch((err) => showError(String(err))));
$("sign-out").addEventListener("click", () => endSession());
submit("invite-form", invite);
signInOptions().then(resumeSession).catch((err) => showError(String(err)));
window.addEventListener("hashchange", () => route());
// Moving to another section: the last action's result belonged to the one left.
$("nav").addEventListener("click", () => { $("notice").hidden = true; });
on("copy-secret", "click", copySecret);
$("dismiss-secret").addEventListener("click", forgetSecret);
submit("create-partner", createPartner);
on("show-create-partner", "click", async () => { $("create-partner").hidden = false; $("new-partner-id").focus(); });
on("create-partner-cancel", "click", async () => { $("create-partner").reset(); $("create-partner").hidden = true; });
on("partners-search", "input", () => loadPartners());
on("partners-next", "click", () => loadPartners($("partners-next").dataset.cursor));
on("partners-prev", "click", () => loadPartners(-1));
submit("edit-partner", savePartner);
on("partner-cancel", "click", async () => { $("edit-partner").hidden = true; });
on("own-refresh", "click", () => loadUsage(state.partner.id));
on("partner-new-client", "click", async () => { await go("#clients"); await showCreateClient(state.partner ? state.partner.id : null); });
on("show-create-client", "click", () => showCreateClient(null));
on("create-cancel", "click", async () => { $("create-client").reset(); $("create-client").hidden = true; });
submit("create-client", createClient);
submit("clients-filter", () => { state.pages.clients = [null]; return loadClients(); });
// The search runs on the server over every page, so a new search starts again at the first page.
on("clients-search", "input", () => { state.pages.clients = [null]; loadClients(); });
on("clients-next", "click", () => loadClients($("clients-next").dataset.cursor));
on("clients-prev", "click", () => loadClients(-1));
submit("edit-client", saveClient);
on("edit-cancel", "click", async () => { $("edit-client").hidden = true; });
submit("rotate-form", rotate);
submit("create-scope", createScope);
submit("create-role", createRole);
submit("edit-role", saveRole);
on("edit-role-cancel", "click", async () => { $("edit-role").hidden = true; });
submit("generate-key", generateKey);
on("rotate-keys", "click", rotateKeys);
on("prune-keys", "click", pruneKeys);
submit("audit-filter", () => { state.pages.audit = [null]; return loadAudit(); });
on("audit-next", "click", () => loadAudit($("audit-next").dataset.cursor));
on("audit-prev", "click", () => loadAudit(-1));
submit("requests-filter", () => { state.pages.requests = [null]; return loadRequests(); });
on("requests-next", "click", () => loadRequests($("requests-next").dataset.cursor));
on("requests-prev", "click", () => loadRequests(-1));
$("grace-days").value = String(DEFAULT_GRACE_DAYS);
