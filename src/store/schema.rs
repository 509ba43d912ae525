//! Diesel table definitions, written by hand to match both `migrations/sqlite` and `migrations/postgres`.
//! Only column types that `MultiConnection` supports on both backends appear here.

diesel::table! {
    partners (id) {
        id -> Text,
        name -> Text,
        suspended -> Bool,
        rate_limit_per_minute -> Nullable<Integer>,
        token_quota_per_day -> Nullable<Integer>,
        tokens_revoked_before -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        quota_log_only -> Bool,
        secret_max_age_days -> Nullable<Integer>,
    }
}

diesel::table! {
    scopes (name) {
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    partner_scopes (partner_id, scope) {
        partner_id -> Text,
        scope -> Text,
    }
}

diesel::table! {
    partner_audiences (partner_id, audience) {
        partner_id -> Text,
        audience -> Text,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        description -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    role_scopes (role, scope) {
        role -> Text,
        scope -> Text,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        partner_id -> Text,
        name -> Text,
        description -> Text,
        enabled -> Bool,
        token_lifetime_secs -> Nullable<Integer>,
        tokens_revoked_before -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disabled_by -> Nullable<Text>,
        rate_limit_per_minute -> Nullable<Integer>,
        environment -> Nullable<Text>,
        auth_methods -> Text,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
    }
}

diesel::table! {
    partner_usage (partner_id, day) {
        partner_id -> Text,
        day -> Text,
        tokens -> BigInt,
    }
}

diesel::table! {
    client_roles (client_id, role) {
        client_id -> Text,
        role -> Text,
    }
}

diesel::table! {
    client_scopes (client_id, scope) {
        client_id -> Text,
        scope -> Text,
    }
}

diesel::table! {
    client_audiences (client_id, audience) {
        client_id -> Text,
        audience -> Text,
    }
}

diesel::table! {
    client_secrets (id) {
        id -> Text,
        client_id -> Text,
        name -> Text,
        secret_hash -> Text,
        prefix -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    partner_trusted_issuers (partner_id, issuer) {
        partner_id -> Text,
        issuer -> Text,
    }
}

diesel::table! {
    federated_credentials (issuer, subject) {
        issuer -> Text,
        subject -> Text,
        client_id -> Text,
        audience -> Text,
    }
}

diesel::table! {
    used_assertions (assertion_key) {
        assertion_key -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        client_id -> Text,
        expires_at -> Timestamp,
        revoked_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        event_type -> Text,
        outcome -> Text,
        reason -> Nullable<Text>,
        request_id -> Nullable<Text>,
        actor -> Nullable<Text>,
        partner_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        secret_id -> Nullable<Text>,
        scopes -> Nullable<Text>,
        audience -> Nullable<Text>,
        jti -> Nullable<Text>,
        source_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    registry_changes (seq) {
        seq -> BigInt,
        kind -> Text,
        target -> Text,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        public_jwk -> Text,
        sealed_private_key -> Binary,
        nonce -> Binary,
        state -> Text,
        published_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    secret_expiry_notices (secret_id, threshold_days) {
        secret_id -> Text,
        threshold_days -> Integer,
        noticed_at -> Timestamp,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    request_log (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        reporter -> Text,
        client_id -> Text,
        partner_id -> Text,
        method -> Text,
        route -> Text,
        status -> Integer,
        latency_ms -> Integer,
        jti -> Nullable<Text>,
    }
}

diesel::table! {
    request_minutes (id) {
        id -> BigInt,
        minute -> Timestamp,
        partner_id -> Text,
        client_id -> Text,
        method -> Text,
        route -> Text,
        status_class -> Integer,
        requests -> BigInt,
        latency_sum_ms -> BigInt,
        latency_max_ms -> Integer,
    }
}

diesel::table! {
    console_invitations (id) {
        id -> Text,
        partner_id -> Text,
        email -> Text,
        scopes -> Text,
        invited_by -> Text,
        created_at -> Timestamp,
        bound_issuer -> Nullable<Text>,
        bound_subject -> Nullable<Text>,
        bound_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    console_sessions (id_hash) {
        id_hash -> Text,
        csrf_token -> Text,
        issuer -> Text,
        subject -> Text,
        email -> Text,
        invitation_id -> Nullable<Text>,
        partner_id -> Nullable<Text>,
        scopes -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    console_sign_ins (state) {
        state -> Text,
        nonce -> Text,
        pkce_verifier -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(partner_scopes -> partners (partner_id));
diesel::joinable!(console_invitations -> partners (partner_id));
diesel::joinable!(partner_audiences -> partners (partner_id));
diesel::joinable!(clients -> partners (partner_id));
diesel::joinable!(partner_usage -> partners (partner_id));
diesel::joinable!(client_roles -> clients (client_id));
diesel::joinable!(client_scopes -> clients (client_id));
diesel::joinable!(client_audiences -> clients (client_id));
diesel::joinable!(client_secrets -> clients (client_id));
diesel::joinable!(secret_expiry_notices -> client_secrets (secret_id));
diesel::joinable!(federated_credentials -> clients (client_id));
diesel::joinable!(partner_trusted_issuers -> partners (partner_id));
diesel::joinable!(role_scopes -> roles (role));

diesel::table! {
    security_events (seq) {
        seq -> BigInt,
        kind -> Text,
        partner_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        token_id -> Nullable<Text>,
        token_expires_at -> Nullable<Timestamp>,
        cutoff -> Nullable<Timestamp>,
        occurred_at -> Timestamp,
        payload -> Text,
    }
}

diesel::table! {
    security_event_sequence (id) {
        id -> Integer,
        last_seq -> BigInt,
    }
}

diesel::table! {
    event_receivers (client_id) {
        client_id -> Text,
        acked_seq -> BigInt,
        created_at -> Timestamp,
        last_poll_at -> Timestamp,
        acked_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    partners,
    scopes,
    partner_scopes,
    partner_audiences,
    roles,
    role_scopes,
    clients,
    client_roles,
    client_scopes,
    client_audiences,
    client_secrets,
    secret_expiry_notices,
    revoked_tokens,
    used_assertions,
    partner_trusted_issuers,
    federated_credentials,
    audit_events,
    partner_usage,
    request_log,
    request_minutes,
    console_invitations,
    console_sessions,
);
