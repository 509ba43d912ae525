DELETE FROM client_scopes WHERE scope = 'authz.usage.report';
DELETE FROM role_scopes WHERE scope = 'authz.usage.report';
DELETE FROM partner_scopes WHERE scope = 'authz.usage.report';
DELETE FROM scopes WHERE name = 'authz.usage.report';
DROP TABLE request_minutes;
DROP TABLE request_log;
