//! tower: [`AuthorizeLayer`], for axum, tonic or hyper. The verified caller goes into the request's extensions
//! as an `Arc<Principal>` (axum: `Extension<Arc<Principal>>`).
//!
//! The route pattern comes from a function the application gives, so that the crate does not depend on a
//! framework: with axum, add the layer with `Router::layer` (it then runs after routing) and read axum's
//! `MatchedPath`:
//!
//! ```ignore
//! fn matched_path(extensions: &http::Extensions) -> Option<&str> {
//!     extensions.get::<axum::extract::MatchedPath>().map(|path| path.as_str())
//! }
//! let app = Router::new().route("/orders", get(list)).layer(AuthorizeLayer::new(authorizer, matched_path));
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::{bearer_token, Authorizer, Rejection};

/// Where a request's route pattern is found (`None`: no route matched).
pub type RoutePattern = fn(&http::Extensions) -> Option<&str>;

#[derive(Clone)]
pub struct AuthorizeLayer {
    authorizer: Authorizer,
    route_pattern: RoutePattern,
}

impl AuthorizeLayer {
    pub fn new(authorizer: Authorizer, route_pattern: RoutePattern) -> Self {
        AuthorizeLayer { authorizer, route_pattern }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize { inner, authorizer: self.authorizer.clone(), route_pattern: self.route_pattern }
    }
}

#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    authorizer: Authorizer,
    route_pattern: RoutePattern,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Authorize<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready is the one to call; a clone stays for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authorizer = self.authorizer.clone();
        let (started_at, timer) = (authorizer.now(), Instant::now());
        let route = (self.route_pattern)(request.extensions()).map(str::to_owned);
        let method = request.method().clone();
        let token = bearer_token(request.headers().get_all(AUTHORIZATION).iter().map(HeaderValue::as_bytes))
            .map(str::to_owned);
        Box::pin(async move {
            let token = token.as_deref().map_err(Clone::clone);
            match authorizer.authorize(method.as_str(), route.as_deref(), token).await {
                Ok(principal) => {
                    if let Some(principal) = &principal {
                        request.extensions_mut().insert(principal.clone());
                    }
                    let response = inner.call(request).await?;
                    let status = response.status().as_u16();
                    authorizer.report(started_at, method.as_str(), route.as_deref(), status, timer.elapsed(), principal.as_deref());
                    Ok(response)
                }
                Err(refusal) => {
                    let response = rejection_response(&refusal.rejection, authorizer.realm());
                    let status = response.status().as_u16();
                    let principal = refusal.principal.as_deref();
                    authorizer.report(started_at, method.as_str(), route.as_deref(), status, timer.elapsed(), principal);
                    Ok(response)
                }
            }
        })
    }
}

/// The RFC 6750 answer to a refused request, with an empty body.
pub fn rejection_response<B: Default>(rejection: &Rejection, realm: &str) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let header = match rejection.challenge(realm) {
        Some(challenge) => HeaderValue::try_from(challenge).ok().map(|value| (WWW_AUTHENTICATE, value)),
        None => Some((RETRY_AFTER, HeaderValue::from_static("5"))),
    };
    if let Some((name, value)) = header {
        response.headers_mut().insert(name, value);
    }
    response
}
