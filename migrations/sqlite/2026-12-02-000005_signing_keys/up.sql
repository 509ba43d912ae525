-- Signing keys shared by every instance (DESIGN.md section 3): their states and dates, the public JWK, and the
-- PKCS#8 private key sealed with AES-256-GCM under the key-encryption key (never stored in clear). A removed
-- key keeps its row (its dates stay on record) but loses its sealed private key.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('published', 'active', 'retired', 'removed')),
    published_at TIMESTAMP NOT NULL,
    activated_at TIMESTAMP,
    retired_at TIMESTAMP,
    removed_at TIMESTAMP
);
-- Exactly one key signs: a second active row is refused by the database itself.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

-- Work that exactly one instance may do at a time (the key rotation schedule), held until expires_at and taken
-- with a conditional update.
CREATE TABLE leases (
    name TEXT PRIMARY KEY NOT NULL,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
INSERT INTO leases (name, holder, expires_at) VALUES ('key-schedule', '', '1970-01-01 00:00:00');
