//! The issuer's metadata (RFC 8414): where its JWKS and its token endpoint are.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use crate::error::FetchError;

/// The endpoints this crate uses from the metadata document.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
}

/// Fetches the metadata once (again after a failure) and shares it between the verifier and the reporter.
#[derive(Debug)]
pub struct Discovery {
    http: reqwest::Client,
    issuer: String,
    metadata_url: String,
    found: Mutex<Option<Arc<Metadata>>>,
}

impl Discovery {
    /// `metadata_url`: by default `{issuer}/.well-known/oauth-authorization-server`.
    pub fn new(issuer: &str, metadata_url: Option<String>, timeout: Duration) -> Self {
        let issuer = issuer.trim_end_matches('/').to_string();
        let metadata_url =
            metadata_url.unwrap_or_else(|| format!("{issuer}/.well-known/oauth-authorization-server"));
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Discovery { http, issuer, metadata_url, found: Mutex::new(None) }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn metadata(&self) -> Result<Arc<Metadata>, FetchError> {
        if let Some(found) = self.found.lock().expect("metadata lock").clone() {
            return Ok(found);
        }
        let response = self.http.get(&self.metadata_url).send().await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let metadata: Metadata = response.json().await?;
        // RFC 8414 section 3.3: the document must be the issuer's own, or its keys could be anyone's.
        if metadata.issuer.trim_end_matches('/') != self.issuer {
            return Err(FetchError::IssuerMismatch(metadata.issuer));
        }
        let metadata = Arc::new(metadata);
        *self.found.lock().expect("metadata lock") = Some(metadata.clone());
        Ok(metadata)
    }
}
