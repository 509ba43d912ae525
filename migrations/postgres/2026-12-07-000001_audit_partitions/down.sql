ALTER TABLE audit_events RENAME TO audit_events_partitioned;
ALTER TABLE audit_events_partitioned RENAME CONSTRAINT audit_events_pkey TO audit_events_partitioned_pkey;
DROP INDEX audit_events_partner_idx;
DROP INDEX audit_events_client_idx;
CREATE TABLE audit_events (
    id BIGINT PRIMARY KEY DEFAULT nextval('audit_events_id_seq'),
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
ALTER SEQUENCE audit_events_id_seq OWNED BY audit_events.id;
INSERT INTO audit_events SELECT id, occurred_at, event_type, outcome, reason, request_id, actor, partner_id,
    client_id, secret_id, scopes, audience, jti, source_ip, user_agent, details FROM audit_events_partitioned;
DROP TABLE audit_events_partitioned;
CREATE INDEX audit_events_partner_idx ON audit_events (partner_id, id);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, id);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at);
