// bench/node/bulk-clients.mjs COUNT PARTNERS SCOPE AUDIENCE SQL_OUT AUTH_OUT
// Registers COUNT clients over PARTNERS partners in bulk, as SQL that both psql and sqlite3 run (multi-row
// INSERTs in one transaction): each partner with SCOPE in its ceiling, each client with SCOPE, AUDIENCE and one
// secret in the server's format (pgs_ + 43 base62 + CRC-32 checksum; only its SHA-256 stored). Writes one
// `Basic ...` Authorization value per client to AUTH_OUT, for wrk to pick from at random.
import { createHash, randomInt } from "node:crypto";
import { writeFileSync } from "node:fs";
import { crc32 } from "node:zlib";

const [count, partners, scope, audience, sqlOut, authOut] = process.argv.slice(2);
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const random = (n) => Array.from({ length: n }, () => BASE62[randomInt(62)]).join("");
const base62 = (value, digits) => {
  let out = "";
  for (let i = 0; i < digits; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
};
const now = new Date().toISOString().replace("T", " ").replace(/\..*/, "");
const q = (s) => `'${s.replaceAll("'", "''")}'`;

const sql = ["BEGIN;"];
const rows = { partners: [], partner_scopes: [], clients: [], client_scopes: [], client_audiences: [], client_secrets: [] };
for (let p = 0; p < Number(partners); p++) {
  rows.partners.push(`(${q(`bulk-${p}`)}, ${q(`Bulk ${p}`)}, ${q(now)}, ${q(now)})`);
  rows.partner_scopes.push(`(${q(`bulk-${p}`)}, ${q(scope)})`);
}
const auth = [];
for (let c = 0; c < Number(count); c++) {
  const partner = `bulk-${c % Number(partners)}`;
  const id = `pgc_${random(24)}`;
  const body = `pgs_${random(43)}`;
  const secret = body + base62(crc32(body) >>> 0, 6);
  const hash = createHash("sha256").update(secret).digest("hex");
  rows.clients.push(`(${q(id)}, ${q(partner)}, ${q(`bulk ${c}`)}, ${q(now)}, ${q(now)})`);
  rows.client_scopes.push(`(${q(id)}, ${q(scope)})`);
  rows.client_audiences.push(`(${q(id)}, ${q(audience)})`);
  rows.client_secrets.push(`(${q(`sec_${random(16)}`)}, ${q(id)}, 'bulk', ${q(hash)}, ${q(secret.slice(0, 8))}, ${q(now)})`);
  auth.push(`Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`);
}
const columns = {
  partners: "(id, name, created_at, updated_at)",
  partner_scopes: "(partner_id, scope)",
  clients: "(id, partner_id, name, created_at, updated_at)",
  client_scopes: "(client_id, scope)",
  client_audiences: "(client_id, audience)",
  client_secrets: "(id, client_id, name, secret_hash, prefix, created_at)",
};
for (const [table, values] of Object.entries(rows)) {
  for (let i = 0; i < values.length; i += 1000) {
    sql.push(`INSERT INTO ${table} ${columns[table]} VALUES\n${values.slice(i, i + 1000).join(",\n")};`);
  }
}
sql.push("COMMIT;");
writeFileSync(sqlOut, sql.join("\n") + "\n");
writeFileSync(authOut, auth.join("\n") + "\n");
