//! Verifies partnergate's access tokens where they are used (RFC 9068), enforces scopes per route, yields the
//! caller as a typed [`Principal`], and reports each request to the issuer's request log.
//!
//! Without features the crate has no web framework in it: [`Authorizer::authorize`] checks a request given its
//! method, route pattern and bearer token. Feature `actix`: a middleware and extractor for actix-web
//! ([`actix`]); feature `tower`: a layer for axum, tonic or hyper ([`tower`]).

mod authorizer;
pub mod clock;
mod discovery;
mod error;
mod jwks;
mod policy;
mod principal;
mod rejection;
mod reporter;
mod revocation;
mod token_cache;
mod token_source;
mod verifier;

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "tower")]
pub mod tower;

pub use authorizer::{Authorizer, Decision, Refusal, ReportStart};
pub use discovery::{Discovery, Metadata};
pub use error::{FetchError, VerifyError};
pub use jwks::JwksSettings;
pub use policy::{Requirement, RoutePolicy};
pub use principal::Principal;
pub use rejection::{bearer_token, Rejection};
pub use reporter::{
    ReporterConfig, ReporterStats, ReporterTask, UsageRecord, UsageReporter, MAX_BATCH, USAGE_REPORT_SCOPE,
};
pub use revocation::{
    FollowerTask, RevocationConfig, RevocationFollower, RevocationStats, StalePolicy, StartupPolicy, EVENTS_READ_SCOPE,
};
pub use verifier::{Verifier, VerifierConfig, VerifierStats};
