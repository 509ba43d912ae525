//! The admin API's OpenAPI document: served at /admin/v1/openapi.json without a token, lists exactly the
//! routes of the router's route table, and validates against the OpenAPI 3.1 schema (`openapi-spec-validator`
//! from PyPI, in a virtual environment under target/).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::TestServer;

async fn fetch_document(server: &TestServer) -> serde_json::Value {
    let response = reqwest::get(server.url("/admin/v1/openapi.json")).await.expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn document_lists_exactly_the_routes_the_router_serves() {
    let server = TestServer::start().await;
    let document = fetch_document(&server).await;
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1."), "{}", document["openapi"]);
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = partnergate::http::admin::route_table().into_iter().collect();
    assert!(served.len() >= 30, "the route table lists {} routes", served.len());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(undocumented.is_empty(), "served but not in the OpenAPI document: {undocumented:?}");
    assert!(not_served.is_empty(), "in the OpenAPI document but not served: {not_served:?}");

    // The table is what the router serves: every route answers (401 without a token, or the document),
    // never 404 or 405.
    let http = reqwest::Client::new();
    for (method, path) in &served {
        let concrete = path.replace("{id}", "x").replace("{name}", "x").replace("{secret_id}", "x");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let status = http.request(method.clone(), server.url(&concrete)).send().await.unwrap().status();
        assert!(status == 401 || (status == 200 && path.ends_with("openapi.json")), "{method} {path}: {status}");
    }
    server.stop().await;
}

/// A virtual environment with openapi-spec-validator, made once per target directory.
fn validator() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = target.join("openapi-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let status = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().expect("python3 -m venv");
        assert!(status.success(), "python3 -m venv failed (python3-venv is needed; .ci/run installs it)");
        let status = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "openapi-spec-validator>=0.7,<1"])
            .status()
            .expect("pip");
        assert!(status.success(), "pip install openapi-spec-validator failed");
        std::fs::write(&ready, b"").unwrap();
    }
    python
}

#[tokio::test]
async fn document_validates_against_the_openapi_3_1_schema() {
    let server = TestServer::start().await;
    let document = fetch_document(&server).await;
    server.stop().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&document).unwrap()).unwrap();
    let python = validator();
    let check = "import json, sys\n\
                 from openapi_spec_validator import OpenAPIV31SpecValidator, validate\n\
                 validate(json.load(open(sys.argv[1])), cls=OpenAPIV31SpecValidator)\n\
                 print('valid')\n";
    let output = Command::new(python).arg("-c").arg(check).arg(file.path()).output().expect("validator");
    assert!(
        output.status.success(),
        "the document does not validate:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
