DROP TABLE leases;
DROP TABLE signing_keys;
