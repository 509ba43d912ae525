DROP INDEX audit_events_type_idx;
