//! Names and descriptions (issue 7 item 6): control, format and separator characters (bidi overrides,
//! zero-width characters, a BOM, line separators) are refused with `400 invalid_input` at the admin API and
//! a clear error with a non-zero exit at the CLI; letters of any script are accepted.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

/// Text that reads as something else, or hides a difference, once displayed.
const TRICKS: &[&str] = &[
    "Acme\u{202E}gnp.exe",
    "Acme\u{2067}Corp",
    "Ac\u{200B}me",
    "Ac\u{200D}me",
    "\u{FEFF}Acme",
    "Acme\u{2028}Corp",
    "Acme\u{2029}Corp",
    "Acme\u{00AD}Corp",
    "Acme\u{0085}Corp",
    // Letters and symbols that draw nothing (issue 17 item 16): Hangul fillers, the blank Braille pattern,
    // the Mongolian vowel separator, the combining grapheme joiner, Khmer inherent vowels, a musical null
    // notehead, and a name made of them alone.
    "Acme\u{3164}",
    "\u{3164}",
    "\u{2800}\u{2800}",
    "Ac\u{115F}me",
    "Ac\u{1160}me",
    "\u{FFA0}Acme",
    "Acme\u{180E}",
    "Ac\u{034F}me",
    "Ac\u{17B4}me",
    "Ac\u{17B5}me",
    "Ac\u{1D159}me",
    "Ac\u{E0000}me",
];

/// Names of nothing but spaces, which read as no name at all.
const BLANK: &[&str] = &[" ", "   ", "\u{3000}", " \u{00A0} ", "\u{2003}\u{2009}"];

const SCRIPTS: &[&str] =
    &["株式会社アクメ", "شركة أكمي للتجارة", "ООО «Акме»", "Ärger & Söhne", "ΑΚΜΕ Α.Ε.", "주식회사 애크미", "⠁⠉⠍⠑"];

#[actix_web::test]
async fn the_admin_api_refuses_invisible_characters_and_accepts_every_script() {
    let server = TestServer::start().await;
    let (_op, token) = server.operator().await;
    admin_json(&server, &token, Method::POST, "/scopes", json!({"name": "orders.read"})).await.expect_json(201);
    admin_json(&server, &token, Method::POST, "/partners", json!({"id": "acme", "name": "Acme"}))
        .await
        .expect_json(201);
    admin_json(&server, &token, Method::POST, "/roles", json!({"name": "feed"})).await.expect_json(201);
    let created =
        admin_json(&server, &token, Method::POST, "/clients", json!({"partner_id": "acme", "name": "sync"})).await;
    let cid = created.expect_json(201)["client"]["id"].as_str().unwrap().to_string();

    for trick in TRICKS {
        let attempts = [
            (Method::POST, "/partners".to_string(), json!({"id": "evil", "name": trick})),
            (Method::PATCH, "/partners/acme".to_string(), json!({"name": trick})),
            (Method::POST, "/clients".to_string(), json!({"partner_id": "acme", "name": trick})),
            (Method::POST, "/clients".to_string(), json!({"partner_id": "acme", "name": "x", "description": trick})),
            (Method::PATCH, format!("/clients/{cid}"), json!({"name": trick})),
            (Method::PATCH, format!("/clients/{cid}"), json!({"description": trick})),
            (Method::POST, format!("/clients/{cid}/secrets"), json!({"name": trick})),
            (Method::POST, "/scopes".to_string(), json!({"name": "orders.write", "description": trick})),
            (Method::PATCH, "/scopes/orders.read".to_string(), json!({"description": trick})),
            (Method::POST, "/roles".to_string(), json!({"name": "other", "description": trick})),
            (Method::PATCH, "/roles/feed".to_string(), json!({"description": trick})),
        ];
        for (method, path, body) in attempts {
            let reply = admin_json(&server, &token, method.clone(), &path, body).await;
            let problem = reply.expect_problem(400, "invalid_input");
            assert!(problem["message"].as_str().unwrap().contains("U+"), "{method} {path}: {problem}");
        }
    }
    for blank in BLANK {
        let attempts = [
            (Method::POST, "/partners".to_string(), json!({"id": "evil", "name": blank})),
            (Method::PATCH, "/partners/acme".to_string(), json!({"name": blank})),
            (Method::POST, "/clients".to_string(), json!({"partner_id": "acme", "name": blank})),
            (Method::PATCH, format!("/clients/{cid}"), json!({"name": blank})),
            (Method::POST, format!("/clients/{cid}/secrets"), json!({"name": blank})),
        ];
        for (method, path, body) in attempts {
            let reply = admin_json(&server, &token, method.clone(), &path, body).await;
            let problem = reply.expect_problem(400, "invalid_input");
            assert!(problem["message"].as_str().unwrap().contains("blank"), "{method} {path} {blank:?}: {problem}");
        }
    }
    admin_request(&server, Method::GET, "/partners/evil", Some(&token), None).await.expect_problem(404, "not_found");
    let acme = admin_request(&server, Method::GET, "/partners/acme", Some(&token), None).await.expect_json(200);
    assert_eq!(acme["name"], "Acme", "nothing was changed");

    for (i, name) in SCRIPTS.iter().enumerate() {
        let id = format!("partner-{i}");
        let partner = admin_json(&server, &token, Method::POST, "/partners", json!({"id": id, "name": name})).await;
        assert_eq!(partner.expect_json(201)["name"], *name);
        let body = json!({"partner_id": id, "name": name, "description": format!("{name}\u{3000}{name}")});
        let client = admin_json(&server, &token, Method::POST, "/clients", body).await;
        assert_eq!(client.expect_json(201)["client"]["name"], *name);
        let role =
            admin_json(&server, &token, Method::POST, "/roles", json!({"name": format!("r{i}"), "description": name}))
                .await;
        assert_eq!(role.expect_json(201)["description"], *name);
    }
    server.stop().await;
}

#[actix_web::test]
async fn the_cli_refuses_them_with_a_clear_error() {
    let server = TestServer::start().await;
    for trick in TRICKS {
        let output = run_cli(&server, &["partner", "create", "evil", "--name", trick]);
        assert!(!output.status.success(), "{trick:?} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("name: must not contain") && stderr.contains("U+"), "{stderr}");
        let output = run_cli(&server, &["scope", "create", "orders.read", "--description", trick]);
        assert!(!output.status.success(), "{trick:?} accepted as a description");
    }
    let output = run_cli(&server, &["partner", "create", "acme", "--name", SCRIPTS[0]]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    server.stop().await;
}
