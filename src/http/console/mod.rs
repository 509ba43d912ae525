//! `/console`: the web console for operators and partner admins, static files embedded in the binary. It
//! uses only the documented admin API, the token endpoint and its own sign-in endpoints (`session`), from the
//! same origin, under a strict Content-Security-Policy (no inline script, no third-party requests) and
//! `X-Frame-Options: DENY`.

pub(in crate::http) mod session;

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                   form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const ASSETS: &[(&str, &str, &str)] = &[
    ("/console", "text/html; charset=utf-8", include_str!("index.html")),
    ("/console/app.js", "text/javascript; charset=utf-8", include_str!("app.js")),
    ("/console/style.css", "text/css; charset=utf-8", include_str!("style.css")),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    for &(path, content_type, body) in ASSETS {
        cfg.route(path, web::get().to(move || page(content_type, body)));
    }
    session::routes(cfg);
}

/// A static page or asset under the console's headers (also `GET /`'s page).
pub(super) async fn page(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}
