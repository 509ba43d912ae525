-- Console sign-in for people through an OpenID provider (README, "Console sign-in with your identity provider").
-- An invitation names an email address, a partner and the reserved scopes its admin gets; the first sign-in with
-- that verified email binds it to the person's (issuer, subject), which later sign-ins match.
CREATE TABLE console_invitations (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    scopes TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    bound_issuer TEXT,
    bound_subject TEXT,
    bound_at TIMESTAMP,
    UNIQUE (partner_id, email)
);
CREATE UNIQUE INDEX console_invitations_person ON console_invitations (bound_issuer, bound_subject);
CREATE INDEX console_invitations_email ON console_invitations (email);
-- Signed-in people. Only the SHA-256 of the session id is stored: a copy of this table opens no session.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    invitation_id TEXT REFERENCES console_invitations (id) ON DELETE CASCADE,
    partner_id TEXT,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
-- Sign-ins under way at the provider: the state names the PKCE verifier and the nonce until the callback.
CREATE TABLE console_sign_ins (
    state TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
