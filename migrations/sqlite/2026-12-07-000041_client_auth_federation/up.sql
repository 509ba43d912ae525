-- Identity providers the operator lets a partner trust for workload identity federation.
CREATE TABLE partner_trusted_issuers (
    partner_id TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    PRIMARY KEY (partner_id, issuer)
);
-- A token of `issuer` for `subject` with `audience` authenticates the client; one (issuer, subject) maps to at
-- most one client.
CREATE TABLE federated_credentials (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    audience TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX federated_credentials_client_id ON federated_credentials (client_id);
