//! The operator's OpenID provider, through the `openidconnect` crate: discovery, the authorization request
//! (code flow with PKCE, `state` and `nonce`), the code exchange and the ID token's verification (signature
//! by the provider's JWKS, `iss`, `aud`, `exp`, `nonce`).

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse, StandardTokenResponse,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::{Person, ProviderSettings, SignInError};

/// The one claim beyond the standard ones that role mapping reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GroupClaims {
    #[serde(default)]
    groups: Vec<String>,
}

impl AdditionalClaims for GroupClaims {}

type IdFields = IdTokenFields<
    GroupClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;
type IdTokenClaimsWithGroups = openidconnect::IdTokenClaims<GroupClaims, CoreGenderClaim>;
type DiscoveredClient = Client<
    GroupClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// An authorization request to send the browser to, and what its callback must present.
pub struct AuthorizationRequest {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The provider, discovered on the first sign-in (so that the server starts while it is down), and again when
/// an ID token's signature does not verify with the keys it had (the provider rotated them).
pub struct Provider {
    settings: ProviderSettings,
    http: reqwest::Client,
    client: tokio::sync::RwLock<Option<Arc<DiscoveredClient>>>,
}

fn provider_error(what: &str, err: impl std::fmt::Display) -> SignInError {
    SignInError::Provider(format!("{what}: {err}"))
}

impl Provider {
    pub fn new(settings: ProviderSettings) -> Self {
        // No redirects: the crate's advice against SSRF through a provider's answers.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("a reqwest client with rustls builds");
        Provider { settings, http, client: tokio::sync::RwLock::new(None) }
    }

    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    async fn client(&self) -> Result<Arc<DiscoveredClient>, SignInError> {
        if let Some(client) = self.client.read().await.as_ref() {
            return Ok(client.clone());
        }
        self.rediscover(None).await
    }

    /// Discovers the provider again, unless another sign-in already replaced `stale` meanwhile. Sign-ins are
    /// rare, so waiting for one fetch under the lock is simpler than a single-flight of its own.
    async fn rediscover(&self, stale: Option<&Arc<DiscoveredClient>>) -> Result<Arc<DiscoveredClient>, SignInError> {
        let mut slot = self.client.write().await;
        if let Some(current) = slot.as_ref() {
            if stale.is_none_or(|stale| !Arc::ptr_eq(stale, current)) {
                return Ok(current.clone());
            }
        }
        let fresh = Arc::new(self.discover().await?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    async fn discover(&self) -> Result<DiscoveredClient, SignInError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| provider_error("issuer", e))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| provider_error("discovery", e))?;
        let redirect =
            RedirectUrl::new(self.settings.redirect_uri.clone()).map_err(|e| provider_error("redirect", e))?;
        Ok(DiscoveredClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    pub async fn authorization_request(&self) -> Result<AuthorizationRequest, SignInError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge);
        if !self.settings.operator_groups.is_empty() {
            request = request.add_scope(Scope::new("groups".into()));
        }
        let (url, state, nonce) = request.url();
        Ok(AuthorizationRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and verifies the ID token it brings; the person it names.
    pub async fn person(&self, code: &str, nonce: &str, pkce_verifier: &str) -> Result<Person, SignInError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| provider_error("token endpoint", e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| provider_error("code exchange", e))?;
        let id_token = tokens.id_token().ok_or_else(|| provider_error("code exchange", "no ID token"))?;
        let nonce = Nonce::new(nonce.to_string());
        let person = |claims: &IdTokenClaimsWithGroups| Person {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email: claims.email().map(|email| email.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            groups: claims.additional_claims().groups.clone(),
        };
        let verifier = client.id_token_verifier();
        let first = id_token.claims(&verifier, &nonce).map(person);
        match first {
            Ok(person) => Ok(person),
            // Signed with a key that the provider published after our discovery: fetch its keys once more.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self.rediscover(Some(&client)).await?;
                let claims =
                    id_token.claims(&fresh.id_token_verifier(), &nonce).map_err(|e| provider_error("ID token", e))?;
                Ok(person(claims))
            }
            Err(e) => Err(provider_error("ID token", e)),
        }
    }
}
