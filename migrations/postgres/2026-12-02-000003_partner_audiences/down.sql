DROP TABLE partner_audiences;
