-- Every filter of the admin API, CLI and console served by an index (issue 18): the event type was the one
-- without. SQLite plans before it sees a bound value, so partial indexes would not be used here.
CREATE INDEX audit_events_type_idx ON audit_events (event_type, id);
