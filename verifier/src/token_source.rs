//! An access token for the resource server's own client (client-credentials grant at the issuer's token
//! endpoint), kept until shortly before it expires. Shared by the usage reporter and the revocation follower,
//! each holding its own for its own scope.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::Clock;
use crate::discovery::Discovery;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

pub(crate) struct ClientToken {
    discovery: Arc<Discovery>,
    clock: Arc<dyn Clock>,
    client_id: String,
    client_secret: String,
    scope: &'static str,
    /// The access token and when to stop using it (clock time).
    held: Option<(String, Duration)>,
}

impl ClientToken {
    pub fn new(
        discovery: Arc<Discovery>,
        clock: Arc<dyn Clock>,
        client_id: &str,
        client_secret: &str,
        scope: &'static str,
    ) -> Self {
        ClientToken {
            discovery,
            clock,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            scope,
            held: None,
        }
    }

    /// Forgets the token held (the server refused it).
    pub fn invalidate(&mut self) {
        self.held = None;
    }

    /// The token held, or a new one when none is held or it is about to expire; `resource` (RFC 8707): the
    /// audience to ask for, if not the client's default.
    pub async fn get(&mut self, resource: Option<&str>) -> Result<String, String> {
        let now = self.clock.now();
        if let Some((token, until)) = &self.held {
            if now < *until {
                return Ok(token.clone());
            }
        }
        let metadata = self.discovery.metadata().await.map_err(|err| format!("issuer metadata: {err}"))?;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("scope", self.scope),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
        ];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let response = self
            .discovery
            .http()
            .post(&metadata.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|err| format!("token endpoint unreachable: {}", err.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(format!("token endpoint answered {status}: {body:.300}"));
        }
        let answer: TokenResponse = response.json().await.map_err(|err| format!("token response: {err}"))?;
        // Renew a little before expiry, so that a request never travels with a token about to lapse.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60));
        let until = now + lifetime.saturating_sub(lifetime.min(Duration::from_secs(30)) / 2);
        self.held = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }
}
