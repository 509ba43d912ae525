DROP TABLE partner_usage;
ALTER TABLE partners DROP COLUMN quota_log_only;
ALTER TABLE clients DROP COLUMN rate_limit_per_minute;
