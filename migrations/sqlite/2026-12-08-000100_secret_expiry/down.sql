DELETE FROM leases WHERE name = 'secret-expiry';
DROP TABLE secret_expiry_notices;
DROP INDEX client_secrets_expires_at_idx;
ALTER TABLE partners DROP COLUMN secret_max_age_days;
