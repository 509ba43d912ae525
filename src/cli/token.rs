//! `partnergate token`: fetches a token with the `oauth2` crate, the quickest way for a partner to check its
//! credentials, and prints the token and its decoded (unverified) header and claims.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Args, ValueEnum};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use super::{CliError, CliResult, Context};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthMethod {
    /// HTTP Basic (client_secret_basic).
    Basic,
    /// client_id and client_secret in the form body (client_secret_post).
    Post,
}

#[derive(Args)]
pub struct TokenArgs {
    /// Server base URL.
    #[arg(long, env = "PARTNERGATE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[arg(long, env = "PARTNERGATE_CLIENT_ID")]
    pub client_id: String,
    /// Prefer the environment variable: a flag ends up in shell history.
    #[arg(long, env = "PARTNERGATE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: String,
    /// A scope to request (repeatable); none requests every allowed scope.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// The audience to request (RFC 8707 `resource` if it is a URI, else `audience`).
    #[arg(long)]
    pub audience: Option<String>,
    #[arg(long, value_enum, default_value = "basic")]
    pub auth: AuthMethod,
}

fn decode_part(part: &str) -> serde_json::Value {
    URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(serde_json::Value::Null)
}

pub async fn run(ctx: &Context, args: TokenArgs) -> CliResult {
    let token_url = TokenUrl::new(format!("{}/oauth2/token", args.url.trim_end_matches('/')))
        .map_err(|err| CliError(format!("invalid --url: {err}")))?;
    let client = BasicClient::new(ClientId::new(args.client_id))
        .set_client_secret(ClientSecret::new(args.client_secret))
        .set_token_uri(token_url)
        .set_auth_type(match args.auth {
            AuthMethod::Basic => AuthType::BasicAuth,
            AuthMethod::Post => AuthType::RequestBody,
        });
    // No redirects: a token request must not be replayed to another host (oauth2 crate guidance).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| CliError(err.to_string()))?;
    let mut request = client.exchange_client_credentials();
    for scope in args.scopes {
        request = request.add_scope(Scope::new(scope));
    }
    if let Some(audience) = &args.audience {
        let name = if audience.contains("://") { "resource" } else { "audience" };
        request = request.add_extra_param(name, audience.clone());
    }
    let response = request.request_async(&http).await.map_err(|err| CliError(describe_error(&err)))?;
    let access_token = response.access_token().secret().clone();
    let mut parts = access_token.split('.');
    let header = decode_part(parts.next().unwrap_or_default());
    let claims = decode_part(parts.next().unwrap_or_default());
    let output = serde_json::json!({
        "access_token": access_token,
        "expires_in": response.expires_in().map(|d| d.as_secs()),
        "header": header,
        "claims": claims,
    });
    ctx.print(&output, |o| {
        format!(
            "access_token: {}\nheader: {}\nclaims: {}",
            o["access_token"].as_str().unwrap_or_default(),
            serde_json::to_string_pretty(&o["header"]).unwrap_or_default(),
            serde_json::to_string_pretty(&o["claims"]).unwrap_or_default()
        )
    });
    Ok(())
}

fn describe_error<RE: std::error::Error + 'static>(
    err: &oauth2::RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> String {
    match err {
        oauth2::RequestTokenError::ServerResponse(response) => format!(
            "the server refused: {}{}",
            response.error(),
            response.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        other => format!("token request failed: {other}"),
    }
}

/// Never prints the secret.
impl std::fmt::Debug for TokenArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenArgs")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}
