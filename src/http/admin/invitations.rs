//! `/admin/v1/partners/{id}/invitations`: who may sign in to the console as a partner's admin. The operator
//! invites to any partner; a partner admin to its own, with at most its own scopes.

use actix_web::{web, HttpResponse};

use super::{AdminCaller, Deleted, Listing, RouteTable};
use crate::http::problem::{Problem, ProblemBody};
use crate::http::AppState;
use crate::registry::invitations::{self, Invitation, NewInvitation};

pub fn routes(routes: &mut RouteTable) {
    routes
        .post("/partners/{id}/invitations", create)
        .get("/partners/{id}/invitations", list)
        .delete("/partners/{id}/invitations/{invitation_id}", delete);
}

#[utoipa::path(
    post,
    path = "/admin/v1/partners/{id}/invitations",
    operation_id = "create_invitation",
    tag = "invitations",
    summary = "Invite an email address to administer a partner from the console (the operator: any partner; a partner admin: its own, with at most its own scopes)",
    params(("id" = String, Path, description = "the partner id")),
    request_body = NewInvitation,
    responses((status = 201, body = Invitation), (status = "4XX", description = "a problem: invalid input, token, permission, not found, or already invited", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn create(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
    body: web::Json<NewInvitation>,
) -> Result<HttpResponse, Problem> {
    let invitation = state.registry.run(move |tx| invitations::create(tx, &caller, &id, &body)).await?;
    Ok(HttpResponse::Created().json(invitation))
}

#[utoipa::path(
    get,
    path = "/admin/v1/partners/{id}/invitations",
    operation_id = "list_invitations",
    tag = "invitations",
    summary = "A partner's invitations, open and taken",
    params(("id" = String, Path, description = "the partner id")),
    responses((status = 200, body = Listing<Invitation>), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn list(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let items = state.registry.run(move |tx| invitations::list(tx, &caller, &id)).await?;
    Ok(HttpResponse::Ok().json(Listing::complete(items)))
}

#[utoipa::path(
    delete,
    path = "/admin/v1/partners/{id}/invitations/{invitation_id}",
    operation_id = "delete_invitation",
    tag = "invitations",
    summary = "Withdraw an invitation; the person who took it is signed out at once",
    params(("id" = String, Path, description = "the partner id"), ("invitation_id" = String, Path, description = "the invitation id")),
    responses((status = 200, body = Deleted), (status = "4XX", description = "a problem: invalid input, token, permission, or not found", body = ProblemBody), (status = 503, description = "the database is unavailable", body = ProblemBody))
)]
async fn delete(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (partner_id, invitation_id) = path.into_inner();
    let deleted = invitation_id.clone();
    state.registry.run(move |tx| invitations::delete(tx, &caller, &partner_id, &invitation_id)).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted }))
}
