-- A client's optional environment label (development, staging, production, ...), for people to tell a
-- partner's integrations apart and to filter listings by it; the token path does not read it.
ALTER TABLE clients ADD COLUMN environment TEXT;
CREATE INDEX clients_environment ON clients (environment, id);
