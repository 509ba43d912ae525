//! The token endpoint end to end: real server, real `oauth2` client, tokens verified against the JWKS.

mod common;

use common::*;
use oauth2::AuthType;

#[actix_web::test]
async fn basic_and_post_tokens_verify_against_the_jwks() {
    let server = TestServer::start().await;
    let created = server.seed(
        "acme",
        &["orders.read", "orders.write"],
        &["orders.read"],
        &["orders.write"],
        &[],
    );
    let id = created.client.id.clone();
    let secret = created.secret.secret.expose().to_string();
    for auth in [AuthType::BasicAuth, AuthType::RequestBody] {
        let token = fetch_token(&server, auth.clone(), &id, &secret, &[], None)
            .await
            .expect("token issued");
        let claims = server
            .verify(&token, &server.settings.default_audience)
            .await;
        assert_eq!(claims["iss"], server.settings.issuer.as_str());
        assert_eq!(claims["sub"], id.as_str());
        assert_eq!(claims["client_id"], id.as_str());
        assert_eq!(claims["aud"], server.settings.default_audience.as_str());
        assert_eq!(claims["partner_id"], "acme");
        assert_eq!(claims["scope"], "orders.read orders.write");
        let iat = claims["iat"].as_i64().unwrap();
        assert_eq!(claims["nbf"].as_i64().unwrap(), iat);
        assert_eq!(claims["exp"].as_i64().unwrap() - iat, 600);
        assert_eq!(
            claims["jti"].as_str().unwrap().len(),
            22,
            "128 bits in base64url"
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    }
    server.stop().await;
}
