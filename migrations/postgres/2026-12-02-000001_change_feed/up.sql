-- The change feed (DESIGN.md section 3): every registry change names what changed, in the change's own
-- transaction. PostgreSQL instances are told by NOTIFY (delivered on commit); the rows are kept for parity with
-- SQLite, whose instances poll them. Pruned by the hourly maintenance.
CREATE TABLE registry_changes (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
