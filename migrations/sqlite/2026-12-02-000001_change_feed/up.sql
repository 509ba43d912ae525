-- The change feed (DESIGN.md section 3): every registry change names what changed, in the change's own
-- transaction. SQLite instances poll this table; PostgreSQL instances are told by NOTIFY and the rows are kept
-- for parity and diagnosis. Pruned by the hourly maintenance.
CREATE TABLE registry_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
