-- partnergate initial schema (PostgreSQL). Keep in step with ../../sqlite: same tables, same columns.
CREATE TABLE partners (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    suspended BOOLEAN NOT NULL DEFAULT FALSE,
    rate_limit_per_minute INTEGER,
    token_quota_per_day INTEGER,
    tokens_revoked_before TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE scopes (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE partner_scopes (
    partner_id TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    scope TEXT NOT NULL REFERENCES scopes (name),
    PRIMARY KEY (partner_id, scope)
);

CREATE TABLE roles (
    name TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE role_scopes (
    role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    scope TEXT NOT NULL REFERENCES scopes (name),
    PRIMARY KEY (role, scope)
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY NOT NULL,
    partner_id TEXT NOT NULL REFERENCES partners (id),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    token_lifetime_secs INTEGER,
    tokens_revoked_before TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX clients_partner_idx ON clients (partner_id, id);

CREATE TABLE client_roles (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    role TEXT NOT NULL REFERENCES roles (name),
    PRIMARY KEY (client_id, role)
);

CREATE TABLE client_scopes (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope TEXT NOT NULL REFERENCES scopes (name),
    PRIMARY KEY (client_id, scope)
);

CREATE TABLE client_audiences (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    audience TEXT NOT NULL,
    PRIMARY KEY (client_id, audience)
);

CREATE TABLE client_secrets (
    id TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    last_used_at TIMESTAMP
);
CREATE INDEX client_secrets_client_idx ON client_secrets (client_id);

CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP NOT NULL
);
CREATE INDEX revoked_tokens_expiry_idx ON revoked_tokens (expires_at);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,
    event_type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT,
    request_id TEXT,
    actor TEXT,
    partner_id TEXT,
    client_id TEXT,
    secret_id TEXT,
    scopes TEXT,
    audience TEXT,
    jti TEXT,
    source_ip TEXT,
    user_agent TEXT,
    details TEXT
);
CREATE INDEX audit_events_partner_idx ON audit_events (partner_id, id);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, id);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at);

-- Reserved scopes of the admin API and introspection (DESIGN.md 4.2).
INSERT INTO scopes (name, description, created_at) VALUES
    ('authz.admin', 'Operator: every partner, client, role, scope and audit event', CURRENT_TIMESTAMP),
    ('authz.clients.read', 'Read the clients of the caller''s own partner', CURRENT_TIMESTAMP),
    ('authz.clients.write', 'Manage the clients of the caller''s own partner, within its ceiling', CURRENT_TIMESTAMP),
    ('authz.audit.read', 'Read the audit events of the caller''s own partner', CURRENT_TIMESTAMP),
    ('authz.introspect', 'Call the token introspection endpoint', CURRENT_TIMESTAMP);
