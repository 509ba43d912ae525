//! actix-web: [`RequireToken`], a middleware that checks each request against the [`Authorizer`] (route
//! pattern from `HttpRequest::match_pattern`, so wrap the `App`, not a single resource) and reports it; and
//! [`Principal`] as an extractor for handlers.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse};

use crate::{bearer_token, Authorizer, Decision, Principal, Refusal, Rejection, ReportStart};

/// The middleware's factory: `App::new().wrap(RequireToken::new(authorizer))`.
#[derive(Clone)]
pub struct RequireToken {
    authorizer: Authorizer,
}

impl RequireToken {
    pub fn new(authorizer: Authorizer) -> Self {
        RequireToken { authorizer }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireToken
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireTokenMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let authorizer = Rc::new(self.authorizer.clone());
        ready(Ok(RequireTokenMiddleware { service: Rc::new(service), authorizer }))
    }
}

pub struct RequireTokenMiddleware<S> {
    service: Rc<S>,
    /// Per worker thread: a request clones the `Rc`, not the authorizer's shared `Arc`s, whose counts every
    /// worker would otherwise bounce between cores on every request.
    authorizer: Rc<Authorizer>,
}

impl<S, B> Service<ServiceRequest> for RequireTokenMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let route = request.match_pattern();
        let started = self.authorizer.start_report();
        let token = bearer_token(request.headers().get_all(header::AUTHORIZATION).map(HeaderValue::as_bytes));
        let decision = match self.authorizer.authorize_now(request.method().as_str(), route.as_deref(), token) {
            Decision::Decided(decision) => decision,
            // Only a token not verified before waits for its verification; the warm path's future holds no more
            // than the call to the service.
            Decision::Verify(token) => {
                let token = token.to_owned();
                let (service, authorizer) = (self.service.clone(), self.authorizer.clone());
                return Box::pin(async move {
                    let method = request.method().clone();
                    let decision = authorizer.authorize_verified(method.as_str(), route.as_deref(), &token).await;
                    answer(service, authorizer, request, route, started, decision).await
                });
            }
        };
        let (service, authorizer) = (self.service.clone(), self.authorizer.clone());
        Box::pin(answer(service, authorizer, request, route, started, decision))
    }
}

/// Passes `request` on with its caller or answers its refusal, then reports it.
async fn answer<S, B>(
    service: Rc<S>,
    authorizer: Rc<Authorizer>,
    request: ServiceRequest,
    route: Option<String>,
    started: Option<ReportStart>,
    decision: Result<Option<Arc<Principal>>, Refusal>,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    let method = started.is_some().then(|| request.method().clone());
    let (response, principal) = match decision {
        Ok(principal) => {
            if let Some(principal) = &principal {
                request.extensions_mut().insert(principal.clone());
            }
            (service.call(request).await?.map_into_left_body(), principal)
        }
        Err(refusal) => {
            let response = rejection_response(&refusal.rejection, authorizer.realm());
            (request.into_response(response).map_into_right_body(), refusal.principal)
        }
    };
    if let Some(method) = method {
        let status = response.status().as_u16();
        authorizer.finish_report(started, method.as_str(), route.as_deref(), status, principal.as_deref());
    }
    Ok(response)
}

/// The RFC 6750 answer to a refused request (no body: the challenge says it all).
pub fn rejection_response(rejection: &Rejection, realm: &str) -> HttpResponse {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = HttpResponse::build(status);
    match rejection.challenge(realm) {
        Some(challenge) => response.insert_header((header::WWW_AUTHENTICATE, challenge)),
        None => response.insert_header((header::RETRY_AFTER, "5")),
    };
    response.finish()
}

/// The caller, for a handler behind [`RequireToken`]. On a route the policy makes public there is none: the
/// handler is answered `401`.
impl FromRequest for Principal {
    type Error = Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let principal = request.extensions().get::<Arc<Principal>>().map(|principal| Principal::clone(principal));
        ready(principal.ok_or_else(|| {
            let response = rejection_response(&Rejection::Missing, "api");
            actix_web::error::InternalError::from_response("no verified token", response).into()
        }))
    }
}
