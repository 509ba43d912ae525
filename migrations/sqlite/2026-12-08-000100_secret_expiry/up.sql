-- Secret hygiene: the operator's maximum secret age per partner (NULL: the server's default; 0: none), the
-- expiry notices written once per secret and threshold, and the lease of the instance that writes them.
ALTER TABLE partners ADD COLUMN secret_max_age_days INTEGER;
CREATE INDEX client_secrets_expires_at_idx ON client_secrets (expires_at);
CREATE TABLE secret_expiry_notices (
    secret_id TEXT NOT NULL REFERENCES client_secrets (id) ON DELETE CASCADE,
    threshold_days INTEGER NOT NULL,
    noticed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (secret_id, threshold_days)
);
INSERT INTO leases (name, holder, expires_at) VALUES ('secret-expiry', '', '1970-01-01 00:00:00');
