-- The audit trail partitioned by day (issue 18, ARCHITECTURE.md "The audit trail at scale"): retention drops
-- whole partitions instead of deleting rows. The server creates each day's partition ahead of time
-- (`store::partitions`); the default partition takes any event no day partition covers, so no insert fails.
-- Existing events move into the new table in this migration's transaction: none is lost.

ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;
ALTER TABLE audit_events_unpartitioned RENAME CONSTRAINT audit_events_pkey TO audit_events_unpartitioned_pkey;
DROP INDEX audit_events_partner_idx;
DROP INDEX audit_events_client_idx;
DROP INDEX audit_events_time_idx;

-- The primary key of a partitioned table must hold the partition key; ids stay unique by their sequence.
CREATE TABLE audit_events (
    id BIGINT NOT NULL DEFAULT nextval('audit_events_id_seq'),
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
    details TEXT,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE audit_events_id_seq OWNED BY audit_events.id;
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

-- One partition per UTC day, named <table>_pYYYYMMDD as `store::partitions` names them, from the oldest
-- event's day to a week ahead, but no more than 92 days back (the default retention is 90): thousands of
-- partitions would exhaust the lock table in this one transaction. Older events land in the default
-- partition, where retention deletes them in bounded batches.
DO $$
DECLARE
    day DATE := GREATEST(
        COALESCE((SELECT min(occurred_at)::date FROM audit_events_unpartitioned), CURRENT_DATE),
        CURRENT_DATE - 92);
BEGIN
    WHILE day <= CURRENT_DATE + 7 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
            'audit_events_p' || to_char(day, 'YYYYMMDD'), day::timestamp, (day + 1)::timestamp);
        day := day + 1;
    END LOOP;
END $$;

INSERT INTO audit_events (id, occurred_at, event_type, outcome, reason, request_id, actor, partner_id, client_id,
        secret_id, scopes, audience, jti, source_ip, user_agent, details)
    SELECT id, occurred_at, event_type, outcome, reason, request_id, actor, partner_id, client_id,
        secret_id, scopes, audience, jti, source_ip, user_agent, details
    FROM audit_events_unpartitioned;
DROP TABLE audit_events_unpartitioned;

-- Every filter of the admin API, CLI and console is served by an index (lists are newest first, by id), and
-- token requests, nearly all the rows, pay for as few as possible: the primary key, partner and client, and a
-- BRIN on the time (tiny, and enough for time ranges and retention of append-ordered rows). Rare event types
-- and failures get partial indexes, which cost a successful token request nothing.
CREATE INDEX audit_events_partner_idx ON audit_events (partner_id, id);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, id);
CREATE INDEX audit_events_time_brin ON audit_events USING brin (occurred_at);
CREATE INDEX audit_events_type_idx ON audit_events (event_type, id) WHERE event_type <> 'token.request';
CREATE INDEX audit_events_partner_type_idx ON audit_events (partner_id, event_type, id)
    WHERE event_type <> 'token.request';
CREATE INDEX audit_events_client_type_idx ON audit_events (client_id, event_type, id)
    WHERE event_type <> 'token.request';
CREATE INDEX audit_events_failure_idx ON audit_events (id) WHERE outcome = 'failure';
CREATE INDEX audit_events_failure_type_idx ON audit_events (event_type, id) WHERE outcome = 'failure';
CREATE INDEX audit_events_partner_failure_idx ON audit_events (partner_id, id) WHERE outcome = 'failure';
CREATE INDEX audit_events_client_failure_idx ON audit_events (client_id, id) WHERE outcome = 'failure';
