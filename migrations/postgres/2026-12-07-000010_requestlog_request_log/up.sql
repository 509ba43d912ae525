-- The request log (ARCHITECTURE.md, The request log): one row per request a resource server reported, and
-- per-minute aggregates kept longer for charts. No foreign keys: records outlive the clients they name, and
-- a reporter states ids from verified tokens, which the server does not look up on ingestion.
-- Partitioned by UTC day like the audit trail (`store::partitions`): retention drops whole days. The primary key
-- of a partitioned table must hold the partition key; ids stay unique by their sequence.
CREATE TABLE request_log (
    id BIGSERIAL,
    occurred_at TIMESTAMP NOT NULL,
    reporter TEXT NOT NULL,
    client_id TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    jti TEXT,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE request_log_default PARTITION OF request_log DEFAULT;
-- Today and a week ahead; the server's maintenance keeps creating them (named as `store::partitions` names them).
DO $$
DECLARE
    day DATE := CURRENT_DATE;
BEGIN
    WHILE day <= CURRENT_DATE + 7 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF request_log FOR VALUES FROM (%L) TO (%L)',
            'request_log_p' || to_char(day, 'YYYYMMDD'), day::timestamp, (day + 1)::timestamp);
        day := day + 1;
    END LOOP;
END $$;
-- Newest first, under every filter: (filter column, time, id) matches the listing's order and its cursor.
CREATE INDEX request_log_time_idx ON request_log (occurred_at, id);
CREATE INDEX request_log_partner_idx ON request_log (partner_id, occurred_at, id);
CREATE INDEX request_log_client_idx ON request_log (client_id, occurred_at, id);
CREATE INDEX request_log_route_idx ON request_log (route, occurred_at, id);
CREATE INDEX request_log_status_idx ON request_log (status, occurred_at, id);

CREATE TABLE request_minutes (
    id BIGSERIAL PRIMARY KEY,
    minute TIMESTAMP NOT NULL,
    partner_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    status_class INTEGER NOT NULL,
    requests BIGINT NOT NULL,
    latency_sum_ms BIGINT NOT NULL,
    latency_max_ms INTEGER NOT NULL
);
-- The upsert's conflict target; it also serves a time range without other filters.
CREATE UNIQUE INDEX request_minutes_key_idx
    ON request_minutes (minute, partner_id, client_id, method, route, status_class);
CREATE INDEX request_minutes_partner_idx ON request_minutes (partner_id, minute);
CREATE INDEX request_minutes_client_idx ON request_minutes (client_id, minute);

-- A resource server reporting its requests (DESIGN.md 4.2); the operator's partner may grant it.
INSERT INTO scopes (name, description, created_at) VALUES
    ('authz.usage.report', 'Report a resource server''s requests to the request log; nothing else', CURRENT_TIMESTAMP);
INSERT INTO partner_scopes (partner_id, scope)
    SELECT id, 'authz.usage.report' FROM partners WHERE id = 'operator';
