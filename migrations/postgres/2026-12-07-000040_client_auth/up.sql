-- Client authentication methods (RFC 7591 names, space-separated) and the client's public keys for
-- private_key_jwt: an inline JWKS (JSON text) or a URL to fetch it from.
ALTER TABLE clients ADD COLUMN auth_methods TEXT NOT NULL DEFAULT 'client_secret_basic client_secret_post';
ALTER TABLE clients ADD COLUMN jwks TEXT;
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
-- Client assertions already used, until they expire: the unique key makes each single-use across instances.
CREATE TABLE used_assertions (
    assertion_key TEXT PRIMARY KEY,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX used_assertions_expires_at ON used_assertions (expires_at);
