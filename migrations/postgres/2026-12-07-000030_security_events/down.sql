DELETE FROM client_scopes WHERE scope = 'authz.events.read';
DELETE FROM role_scopes WHERE scope = 'authz.events.read';
DELETE FROM partner_scopes WHERE scope = 'authz.events.read';
DELETE FROM scopes WHERE name = 'authz.events.read';
DROP TABLE event_receivers;
DROP TABLE security_event_sequence;
DROP TABLE security_events;
