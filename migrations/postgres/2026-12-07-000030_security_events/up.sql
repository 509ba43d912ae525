-- The revocation stream (DESIGN.md section 8; ARCHITECTURE.md, "The revocation stream"): every change that makes
-- tokens unacceptable, or reverses one, written in the change's own transaction with a gapless sequence number
-- taken from the counter row below. Kept for the longest token lifetime plus a margin (hourly maintenance).
CREATE TABLE security_events (
    seq BIGINT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    partner_id TEXT,
    client_id TEXT,
    -- A revoked token's jti and exp (kind token_revoked).
    token_id TEXT,
    token_expires_at TIMESTAMP,
    -- Tokens issued at or before this time are revoked (kind tokens_cut_off).
    cutoff TIMESTAMP,
    occurred_at TIMESTAMP NOT NULL,
    -- Further facts as JSON (the secret of a credential change, who made the change).
    payload TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX security_events_occurred_at ON security_events (occurred_at);

-- The one counter row: updating it locks it until commit, so that sequence order is commit order.
CREATE TABLE security_event_sequence (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO security_event_sequence (id, last_seq) VALUES (1, 0);

-- Each receiver (a client holding authz.events.read) and what it has acknowledged.
CREATE TABLE event_receivers (
    client_id TEXT PRIMARY KEY NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    acked_seq BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_poll_at TIMESTAMP NOT NULL,
    acked_at TIMESTAMP
);

INSERT INTO scopes (name, description, created_at) VALUES
    ('authz.events.read', 'Follow the revocation stream (Security Event Tokens by poll)', CURRENT_TIMESTAMP);
-- The operator partner's ceiling holds every reserved scope.
INSERT INTO partner_scopes (partner_id, scope)
    SELECT id, 'authz.events.read' FROM partners WHERE id = 'operator';
