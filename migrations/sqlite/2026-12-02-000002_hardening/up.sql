-- Who disabled a client: 'operator' (a hold that only the operator lifts) or 'partner'; NULL while enabled.
ALTER TABLE clients ADD COLUMN disabled_by TEXT CHECK (disabled_by IN ('operator', 'partner'));
-- Who disabled the clients disabled so far is unknown: they are held as the operator's, the safe reading.
UPDATE clients SET disabled_by = 'operator' WHERE enabled = 0;
