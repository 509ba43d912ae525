//! `partnergate token`: fetches a token with the `oauth2` crate, the quickest way for a partner to check its
//! credentials, and prints the token and its decoded (unverified) header and claims.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::{Args, ValueEnum};
use std::sync::Mutex;
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AsyncHttpClient, AuthType, ClientId, ClientSecret, HttpClientError, HttpRequest, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};

use super::{CliError, CliResult, Context};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthMethod {
    /// HTTP Basic (client_secret_basic).
    Basic,
    /// client_id and client_secret in the form body (client_secret_post).
    Post,
}

/// Only what a partner needs: where the server is, the credentials, what to ask for.
#[derive(Args)]
pub struct TokenArgs {
    /// Server base URL. Default: the issuer as `serve` derives it, from PARTNERGATE_ISSUER, else
    /// http://<PARTNERGATE_BIND>, else http://127.0.0.1:8080.
    #[arg(long, env = "PARTNERGATE_URL")]
    pub url: Option<String>,
    /// The client id (`pgc_...`).
    #[arg(long, env = "PARTNERGATE_CLIENT_ID", allow_hyphen_values = true)]
    pub client_id: String,
    /// The client secret (`pgs_...`). Prefer the environment variable: a flag ends up in shell history.
    #[arg(
        long,
        env = "PARTNERGATE_CLIENT_SECRET",
        hide_env_values = true,
        required_unless_present = "private_key",
        conflicts_with = "private_key"
    )]
    pub client_secret: Option<String>,
    /// Authenticate with private_key_jwt instead: the client's private key (PEM, PKCS#8 or SEC1: an EC P-256,
    /// Ed25519 or RSA key) signs a one-minute client assertion.
    #[arg(long, value_name = "FILE", requires = "key_id")]
    pub private_key: Option<std::path::PathBuf>,
    /// The `kid` under which the key's public half is registered.
    #[arg(long, value_name = "KID", env = "PARTNERGATE_KEY_ID")]
    pub key_id: Option<String>,
    /// A scope to request (repeatable); none requests every allowed scope.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// The audience to request (RFC 8707 `resource` if it is a URI, else `audience`).
    #[arg(long)]
    pub audience: Option<String>,
    /// How to present the credentials.
    #[arg(long, value_enum, default_value = "basic")]
    pub auth: AuthMethod,
    /// Seconds to wait for the server, connecting included.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout_secs: u64,
}

/// The audience of a client assertion: the issuer from the server's metadata (behind a proxy the URL the
/// command talks to may differ from it), else the token endpoint URL.
async fn assertion_audience(http: &reqwest::Client, base: &str, token_url: &str) -> String {
    let metadata = async {
        let response = http.get(format!("{base}/.well-known/oauth-authorization-server")).send().await.ok()?;
        let document: serde_json::Value = response.error_for_status().ok()?.json().await.ok()?;
        document["issuer"].as_str().map(str::to_string)
    };
    metadata.await.unwrap_or_else(|| token_url.to_string())
}

/// A client assertion (RFC 7523 section 2.2) for `client_id` and `audience`, signed with the key in `path`.
fn client_assertion(path: &std::path::Path, kid: &str, client_id: &str, audience: &str) -> Result<String, CliError> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let pem = std::fs::read(path).map_err(|err| CliError(format!("cannot read {}: {err}", path.display())))?;
    let (key, alg) = EncodingKey::from_ec_pem(&pem)
        .map(|key| (key, Algorithm::ES256))
        .or_else(|_| EncodingKey::from_ed_pem(&pem).map(|key| (key, Algorithm::EdDSA)))
        .or_else(|_| EncodingKey::from_rsa_pem(&pem).map(|key| (key, Algorithm::RS256)))
        .map_err(|_| CliError(format!("{} is not a PEM EC P-256, Ed25519 or RSA private key", path.display())))?;
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    // The system's time: the CLI signs as a client would, on its own machine's clock, not on a server's.
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": URL_SAFE_NO_PAD.encode(crate::credentials::random_bytes::<16>()),
    });
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|err| CliError(format!("cannot sign with {}: {err}", path.display())))
}

fn decode_part(part: &str) -> serde_json::Value {
    URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The server's base URL: the flag or PARTNERGATE_URL, else the issuer `serve` would use.
fn base_url(args: &TokenArgs) -> Result<String, CliError> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => {
            let settings = crate::config::TokenArgs::from_environment().and_then(|token| token.resolve());
            settings
                .map_err(|err| CliError(format!("no --url given and the server settings are invalid: {err}")))?
                .issuer
        }
    };
    Ok(url.trim_end_matches('/').to_string())
}

/// Status and body of the server's answer, kept so that a refusal can be reported with both: the `oauth2`
/// crate's errors carry neither for a non-JSON body.
struct Answer {
    status: reqwest::StatusCode,
    body: Vec<u8>,
}

type TokenError = RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>;

pub async fn run(ctx: &Context, args: TokenArgs) -> CliResult {
    let base = base_url(&args)?;
    let url = format!("{base}/oauth2/token");
    let token_url = TokenUrl::new(url.clone()).map_err(|err| CliError(format!("invalid URL {url:?}: {err}")))?;
    // No redirects: a token request must not be replayed to another host (oauth2 crate guidance).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(args.timeout_secs))
        .build()
        .map_err(|err| CliError(err.to_string()))?;
    let mut client = BasicClient::new(ClientId::new(args.client_id.clone())).set_token_uri(token_url);
    // With a key, the crate sends client_id in the body and the assertion goes along as two more parameters.
    let assertion = match (&args.private_key, &args.client_secret) {
        (Some(key), _) => {
            let audience = assertion_audience(&http, &base, &url).await;
            Some(client_assertion(key, args.key_id.as_deref().unwrap_or_default(), &args.client_id, &audience)?)
        }
        (None, Some(secret)) => {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
            None
        }
        (None, None) => return Err(CliError("give --client-secret or --private-key".into())),
    };
    let client = client.set_auth_type(match (args.auth, &assertion) {
        (_, Some(_)) | (AuthMethod::Post, None) => AuthType::RequestBody,
        (AuthMethod::Basic, None) => AuthType::BasicAuth,
    });
    let answer: Mutex<Option<Answer>> = Mutex::new(None);
    let (http_ref, answer_ref) = (&http, &answer);
    let recording_client = move |request: HttpRequest| async move {
        let response = http_ref.call(request).await?;
        let kept = Answer { status: response.status(), body: response.body().clone() };
        *answer_ref.lock().expect("answer lock") = Some(kept);
        Ok::<_, HttpClientError<reqwest::Error>>(response)
    };
    let mut request = client.exchange_client_credentials();
    if let Some(assertion) = assertion {
        request = request
            .add_extra_param("client_assertion_type", crate::oauth::assertion::JWT_BEARER)
            .add_extra_param("client_assertion", assertion);
    }
    for scope in &args.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    if let Some(audience) = &args.audience {
        let name = if audience.contains("://") { "resource" } else { "audience" };
        request = request.add_extra_param(name, audience.clone());
    }
    let response = request.request_async(&recording_client).await.map_err(|err| {
        let answer = answer.lock().expect("answer lock").take();
        CliError(explain(&url, &err, answer, args.timeout_secs))
    })?;
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
        // `exp` is in seconds since the epoch; shown as a time with its zone too.
        let expires = o["claims"]["exp"]
            .as_i64()
            .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0))
            .map_or("-".to_string(), |at| crate::store::utc::format(&at.naive_utc()));
        format!(
            "access_token: {}\nexpires_at: {expires}\nheader: {}\nclaims: {}",
            o["access_token"].as_str().unwrap_or_default(),
            serde_json::to_string_pretty(&o["header"]).unwrap_or_default(),
            serde_json::to_string_pretty(&o["claims"]).unwrap_or_default()
        )
    });
    Ok(())
}

/// One line naming the URL and the cause: the transport failure, or the status and body of the refusal.
fn explain(url: &str, err: &TokenError, answer: Option<Answer>, timeout_secs: u64) -> String {
    if let RequestTokenError::Request(transport) = err {
        return format!("token request to {url} failed: {}", transport_cause(transport, timeout_secs));
    }
    let Some(answer) = answer else { return format!("token request to {url} failed: {err}") };
    if answer.status != reqwest::StatusCode::OK {
        return format!("{url} answered HTTP {}: {}", answer.status, body_excerpt(&answer.body));
    }
    // A 200 whose body is not a token response; the body is not printed, it may hold a token.
    format!("{url} answered HTTP 200 but not with a token response: {err}")
}

fn transport_cause(err: &HttpClientError<reqwest::Error>, timeout_secs: u64) -> String {
    let HttpClientError::Reqwest(err) = err else { return err.to_string() };
    // reqwest's own message repeats the URL, which the caller names already.
    let chain = match std::error::Error::source(err.as_ref()) {
        Some(source) if err.url().is_some() => error_chain(source),
        _ => error_chain(err.as_ref()),
    };
    if err.is_timeout() {
        format!("no answer within {timeout_secs} s (timeout): {chain}")
    } else if err.is_connect() {
        let lower = chain.to_lowercase();
        if ["tls", "certificate", "handshake", "corrupt message"].iter().any(|word| lower.contains(word)) {
            format!("TLS handshake failed: {chain}")
        } else {
            format!("cannot connect: {chain}")
        }
    } else {
        chain
    }
}

/// The error and its sources, each said once (wrappers often repeat their source's text).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(current) = next {
        let text = current.to_string();
        if !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

/// The start of a body as text, for an error message.
fn body_excerpt(body: &[u8]) -> String {
    const LIMIT: usize = 500;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
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
