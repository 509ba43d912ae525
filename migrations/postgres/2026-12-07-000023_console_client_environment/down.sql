DROP INDEX clients_environment;
ALTER TABLE clients DROP COLUMN environment;
