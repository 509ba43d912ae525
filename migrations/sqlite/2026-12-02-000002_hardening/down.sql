ALTER TABLE clients DROP COLUMN disabled_by;
