//! `GET /`: where a newcomer goes next. A browser gets a small page of links (under the console's headers), a
//! program the same links as JSON. Paths are relative: behind a proxy the public origin is the caller's.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

const LINKS: [(&str, &str, &str); 4] = [
    ("console", "/console", "the web console for operators and partner admins"),
    ("metadata", "/.well-known/oauth-authorization-server", "RFC 8414 metadata: issuer, token endpoint, JWKS"),
    ("jwks", "/.well-known/jwks.json", "the public keys that verify access tokens"),
    ("admin_api", "/admin/v1/openapi.json", "the admin API's OpenAPI document"),
];

const DOCS: &str = "README.md in the partnergate source: quickstart, walkthrough, settings, operations";

const PAGE: &str = concat!(
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>partnergate</title></head><body>\n",
    "<h1>partnergate</h1>\n<p>An OAuth2 client-credentials authorization server.</p>\n<ul>\n",
    "<li><a href=\"/console\">/console</a>: the web console for operators and partner admins</li>\n",
    "<li><a href=\"/.well-known/oauth-authorization-server\">/.well-known/oauth-authorization-server</a>: ",
    "RFC 8414 metadata: issuer, token endpoint, JWKS</li>\n",
    "<li><a href=\"/.well-known/jwks.json\">/.well-known/jwks.json</a>: the public keys that verify access tokens</li>\n",
    "<li><a href=\"/admin/v1/openapi.json\">/admin/v1/openapi.json</a>: the admin API's OpenAPI document</li>\n",
    "</ul>\n<p>Documentation: README.md in the partnergate source: quickstart, walkthrough, settings, operations.</p>\n",
    "</body></html>\n"
);

pub async fn home(req: HttpRequest) -> HttpResponse {
    let accept = req.headers().get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let mut response = if accept.contains("text/html") {
        super::console::page("text/html; charset=utf-8", PAGE).await
    } else {
        let mut links: serde_json::Map<String, serde_json::Value> =
            LINKS.iter().map(|(name, path, _)| (name.to_string(), (*path).into())).collect();
        links.insert("docs".into(), DOCS.into());
        HttpResponse::Ok().json(links)
    };
    response.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Accept"));
    response
}

#[cfg(test)]
mod tests {
    /// The page and the JSON name the same links.
    #[test]
    fn the_page_links_every_path() {
        for (_, path, what) in super::LINKS {
            assert!(super::PAGE.contains(&format!("<a href=\"{path}\">{path}</a>: {what}</li>")), "{path}");
        }
        assert!(super::PAGE.contains(super::DOCS));
    }
}
