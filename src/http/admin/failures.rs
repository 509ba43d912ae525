//! Refused admin requests are audited too: a partner admin probing other partners' ids, a rejected token or
//! a forbidden change leaves an `admin.refused` event with the caller (when known), method, path and status.
//! Successful changes are recorded by the registry, in the transaction of the change.

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{web, Error, HttpMessage};
use futures_util::future::LocalBoxFuture;
use serde_json::json;

use crate::audit::{AuditEvent, Outcome};
use crate::http::request_id::request_meta;
use crate::http::AppState;
use crate::registry::Tenancy;

/// Set by the `AdminCaller` extractor when the bearer token was accepted.
#[derive(Debug, Clone)]
pub struct Identified {
    pub actor: String,
    pub tenancy: Tenancy,
}

/// Set by the `AdminCaller` extractor when the bearer token was refused, with the real reason.
#[derive(Debug, Clone, Copy)]
pub struct Rejected(pub &'static str);

/// The middleware body, for `Scope::wrap_fn`.
pub fn record<S, B>(req: ServiceRequest, service: &S) -> LocalBoxFuture<'static, Result<ServiceResponse<B>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: 'static,
{
    let response = service.call(req);
    Box::pin(async move {
        let response = response.await?;
        let status = response.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return Ok(response);
        }
        let request = response.request();
        let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else { return Ok(response) };
        let mut event = AuditEvent::new("admin.refused", Outcome::Failure, request_meta(request), state.clock.now());
        let reason = status.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_");
        event.reason = Some(match request.extensions().get::<Rejected>() {
            Some(Rejected(why)) => format!("{reason}: {why}"),
            None => reason,
        });
        if let Some(who) = request.extensions().get::<Identified>() {
            event.actor = Some(who.actor.clone());
            if let Tenancy::Partner(partner) = &who.tenancy {
                event.partner_id = Some(partner.clone());
            }
        }
        event.details =
            Some(json!({"method": request.method().as_str(), "path": request.path(), "status": status.as_u16()}));
        if let Err(err) = state.audit.record(event).await {
            log::warn!("could not record a refused admin request: {err}");
        }
        Ok(response)
    })
}
