DROP TABLE federated_credentials;
DROP TABLE partner_trusted_issuers;
