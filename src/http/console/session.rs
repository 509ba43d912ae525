//! Console sign-in for people: `/console/oidc/login` sends the browser to the operator's provider,
//! `/console/oidc/callback` opens a session (a cookie), `/console/session` tells the page who is signed in and
//! its CSRF token, `/console/sign-out` ends the session server-side. The admin API takes the same session
//! as a caller ([`admin_caller`]).

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::audit::RequestMeta;
use crate::console_auth::{ActiveSession, SignInError};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::registry::{Caller, RegistryError};

pub const COOKIE: &str = "partnergate_session";
/// Binds a sign-in under way to the browser that started it: a callback carrying another browser's `state`
/// (login CSRF: being signed in as the attacker) is refused.
const SIGN_IN_COOKIE: &str = "partnergate_sign_in";
const SIGN_IN_COOKIE_PATH: &str = "/console/oidc";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console/sign-in-options", web::get().to(options))
        .route("/console/oidc/login", web::get().to(login))
        .route(crate::console_auth::CALLBACK_PATH, web::get().to(callback))
        .route("/console/session", web::get().to(session))
        .route("/console/sign-out", web::post().to(sign_out));
}

/// The session cookie's value, if the request carries one.
pub fn cookie_value(req: &HttpRequest) -> Option<String> {
    named_cookie(req, COOKIE)
}

fn named_cookie(req: &HttpRequest, wanted: &str) -> Option<String> {
    let header = req.headers().get(header::COOKIE)?.to_str().ok()?;
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .and_then(|(_, value)| (!value.is_empty() && value.len() <= 128).then(|| value.to_string()))
}

fn session_cookie(state: &AppState, value: &str, max_age_secs: i64) -> String {
    cookie(state, COOKIE, "/", value, max_age_secs)
}

fn cookie(state: &AppState, name: &str, path: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.console.settings().sessions.secure_cookie { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

fn store_problem(err: SignInError) -> Problem {
    match err {
        SignInError::Store(err) => Problem::from(RegistryError::Store(err)),
        other => Problem::new(StatusCode::BAD_GATEWAY, "identity_provider", other.to_string()),
    }
}

/// The admin caller a session cookie names; CSRF is checked on every request that may change something.
pub async fn admin_caller(
    state: &AppState,
    req: &HttpRequest,
    cookie: String,
    meta: RequestMeta,
) -> Result<Caller, Problem> {
    let session = state.console.resume(cookie).await.map_err(store_problem)?;
    let session = session.ok_or_else(|| Problem::invalid_token("the console session has ended: sign in again"))?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        require_csrf(req, &session)?;
    }
    Ok(session.caller(meta, state.console.clock()))
}

fn require_csrf(req: &HttpRequest, session: &ActiveSession) -> Result<(), Problem> {
    let presented = req.headers().get(CSRF_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("");
    if session.csrf_matches(presented) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            format!(
                "a change made with the console session needs its CSRF token in {CSRF_HEADER} (GET /console/session)"
            ),
        ))
    }
}

/// What the sign-in page offers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignInOptions {
    /// Sign-in with the operator's OpenID provider (`/console/oidc/login`).
    pub identity_provider: bool,
    /// Sign-in with an admin client's id and secret.
    pub client_sign_in: bool,
}

async fn options(state: web::Data<AppState>) -> HttpResponse {
    let settings = state.console.settings();
    HttpResponse::Ok()
        .json(SignInOptions { identity_provider: settings.provider.is_some(), client_sign_in: settings.client_sign_in })
}

async fn login(state: web::Data<AppState>) -> HttpResponse {
    match state.console.begin().await {
        Ok((url, sign_in)) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, url))
            .insert_header((header::SET_COOKIE, cookie(&state, SIGN_IN_COOKIE, SIGN_IN_COOKIE_PATH, &sign_in, 600)))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(err) => refusal(&err).await,
    }
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(state: web::Data<AppState>, req: HttpRequest, query: web::Query<Callback>) -> HttpResponse {
    let query = query.into_inner();
    let (Some(code), Some(sign_in)) = (query.code, query.state) else {
        let said = query.error_description.or(query.error).unwrap_or_else(|| "no authorization code".into());
        return refusal(&SignInError::Provider(said)).await;
    };
    if named_cookie(&req, SIGN_IN_COOKIE).as_deref() != Some(sign_in.as_str()) {
        log::info!("console sign-in refused: the callback's state is not this browser's");
        return refusal(&SignInError::UnknownSignIn).await;
    }
    match state.console.complete(sign_in, code).await {
        Ok(opened) => {
            log::info!("console sign-in: {} as {}", opened.session.email, opened.session.role);
            let lifetime = state.console.settings().sessions.lifetime.num_seconds();
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console"))
                .insert_header((header::SET_COOKIE, session_cookie(&state, &opened.cookie_value, lifetime)))
                .append_header((header::SET_COOKIE, cookie(&state, SIGN_IN_COOKIE, SIGN_IN_COOKIE_PATH, "", 0)))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Err(err) => {
            log::info!("console sign-in refused: {err}");
            refusal(&err).await
        }
    }
}

/// A page that says why sign-in did not happen, under the console's headers.
async fn refusal(err: &SignInError) -> HttpResponse {
    let status = match err {
        SignInError::NoRole(_) => StatusCode::FORBIDDEN,
        SignInError::UnknownSignIn => StatusCode::BAD_REQUEST,
        SignInError::NotConfigured => StatusCode::NOT_FOUND,
        SignInError::Provider(_) => StatusCode::BAD_GATEWAY,
        SignInError::Store(err) if err.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
        SignInError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match err {
        SignInError::Store(_) => "the server could not complete the sign-in; try again".to_string(),
        other => other.to_string(),
    };
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not signed in - partnergate \
         console</title><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link \
         rel=\"stylesheet\" href=\"/console/style.css\"></head><body><main class=\"card narrow\"><h1>Not signed \
         in</h1><p id=\"refusal\">{}</p><p><a href=\"/console\">Back to the console</a></p></main></body></html>\n",
        escape_html(&message)
    );
    let mut response = super::page("text/html; charset=utf-8", "").await;
    *response.status_mut() = status;
    let mut response = response.set_body(actix_web::body::BoxBody::new(body));
    response.extensions_mut().insert(crate::http::errors::ShapedForPeople);
    response
}

fn escape_html(text: &str) -> String {
    text.chars().fold(String::with_capacity(text.len()), |mut out, c| {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
        out
    })
}

fn signed_out() -> Problem {
    Problem::invalid_token("not signed in to the console")
}

/// `GET /console/session`: who is signed in, and the CSRF token for changes.
async fn session(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Problem> {
    let cookie = cookie_value(&req).ok_or_else(signed_out)?;
    let session = state.console.resume(cookie).await.map_err(store_problem)?.ok_or_else(signed_out)?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(session))
}

/// `POST /console/sign-out`: deletes the session (CSRF-checked) and clears the cookie.
async fn sign_out(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Problem> {
    let Some(cookie) = cookie_value(&req) else {
        return Ok(HttpResponse::NoContent()
            .insert_header((header::SET_COOKIE, session_cookie(&state, "", 0)))
            .finish());
    };
    if let Some(session) = state.console.resume(cookie.clone()).await.map_err(store_problem)? {
        require_csrf(&req, &session)?;
        state.console.end(cookie).await.map_err(store_problem)?;
    }
    Ok(HttpResponse::NoContent().insert_header((header::SET_COOKIE, session_cookie(&state, "", 0))).finish())
}
