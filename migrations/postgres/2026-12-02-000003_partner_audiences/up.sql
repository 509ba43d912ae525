-- The audiences a partner's admin may give its clients (its audience ceiling), set by the operator.
CREATE TABLE partner_audiences (
    partner_id TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    audience TEXT NOT NULL,
    PRIMARY KEY (partner_id, audience)
);
-- Existing partners keep what their clients use today, so their admins' edits keep working.
INSERT INTO partner_audiences (partner_id, audience)
    SELECT DISTINCT clients.partner_id, client_audiences.audience
    FROM client_audiences JOIN clients ON clients.id = client_audiences.client_id;
