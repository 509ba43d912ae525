-- Rate limit per client (NULL: the server's default) and the partner's quota mode.
ALTER TABLE clients ADD COLUMN rate_limit_per_minute INTEGER;
ALTER TABLE partners ADD COLUMN quota_log_only BOOLEAN NOT NULL DEFAULT 0;
-- Tokens issued per partner and UTC day, counted by the audit writer in the commit of their audit events.
CREATE TABLE partner_usage (
    partner_id TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, day)
);
