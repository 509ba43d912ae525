//! The access log of the real binary in JSON (`PARTNERGATE_LOG_FORMAT=json`): one object per line, one
//! access line per request with its method, path, status, latency, client id and request id, and never the
//! secret, the token or the query string a request carried.

mod common;

use std::time::Duration;

use common::*;

fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not a JSON line ({err}): {line}")))
        .collect()
}

fn access_lines(log: &str) -> Vec<serde_json::Value> {
    json_lines(log).into_iter().filter(|line| line["target"] == "partnergate::access").collect()
}

/// `serve` on `db` with the log in `format` at `info`.
fn logging(db: &TestDatabase, dir: &std::path::Path, format: &str) -> std::process::Command {
    let mut command = partnergate_binary();
    command
        .env("PARTNERGATE_DATABASE_URL", &db.url)
        .env("PARTNERGATE_KEYS_DIR", dir.join("keys"))
        .env("PARTNERGATE_LOG_FORMAT", format)
        .env(partnergate::keys::kek::ENV_VALUE, postgres_test_kek())
        .env("RUST_LOG", "info");
    command
}

fn json_logging(db: &TestDatabase, dir: &std::path::Path) -> std::process::Command {
    logging(db, dir, "json")
}

#[tokio::test]
async fn one_json_access_line_per_request_without_credentials() {
    let db = TestDatabase::new();
    let pool = db.pool();
    let client = Seed::partner("access-log")
        .role(&["orders.read"])
        .create_on(&mut partnergate::store::Tx::new(pool.get().unwrap()));
    let (client_id, secret) = (client.client.id.clone(), client.secret.secret.expose().to_string());
    let dir = tempfile::tempdir().unwrap();
    let command = json_logging(&db, dir.path());
    let server = ServeProcess::start(&command, dir.path()).await;
    let before = access_lines(&server.log_text()).len();
    let http = reqwest::Client::new();

    let granted = http
        .post(server.url("/oauth2/token"))
        .header("authorization", basic_auth(&client_id, &secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-request-id", "granted-1")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 200);
    let token: serde_json::Value = granted.json().await.unwrap();
    let access_token = token["access_token"].as_str().unwrap().to_string();

    // The right secret with one character changed, in the body: refused, and the body never logged.
    let mut wrong = secret.clone();
    wrong.replace_range(10..11, if &secret[10..11] == "a" { "b" } else { "a" });
    let refused = http
        .post(server.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-request-id", "refused-1")
        .body(form(&[("grant_type", "client_credentials"), ("client_id", &client_id), ("client_secret", &wrong)]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // A secret and a token in the query string: the path is logged without it.
    let query = form(&[("client_secret", &secret), ("token", &access_token)]);
    let health =
        http.get(server.url(&format!("/healthz?{query}"))).header("x-request-id", "health-1").send().await.unwrap();
    assert_eq!(health.status(), 200);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let lines = access_lines(&server.log_text());
        if lines.len() >= before + 3 || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let by_id = |id: &str| {
        let matching: Vec<_> = lines.iter().filter(|line| line["request_id"] == id).collect();
        assert_eq!(matching.len(), 1, "one access line for {id}: {lines:#?}");
        matching[0].clone()
    };

    let line = by_id("granted-1");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/oauth2/token");
    assert_eq!(line["status"], 200);
    assert_eq!(line["client_id"], client_id.as_str());
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
    assert!(line["ts"].as_str().is_some_and(|ts| ts.contains('T')), "{line}");

    let line = by_id("refused-1");
    assert_eq!((line["path"].as_str(), line["status"].as_u64()), (Some("/oauth2/token"), Some(401)));
    assert_eq!(line["client_id"], client_id.as_str(), "the client id the refused request named");

    let line = by_id("health-1");
    assert_eq!((line["method"].as_str(), line["path"].as_str()), (Some("GET"), Some("/healthz")));
    assert_eq!(line["client_id"], "-");

    let log = server.log_text();
    json_lines(&log);
    for (what, credential) in [("secret", &secret), ("wrong secret", &wrong), ("token", &access_token)] {
        assert!(!log.contains(credential.as_str()), "the {what} is in the log:\n{log}");
    }
    assert!(!log.to_lowercase().contains("basic "), "an Authorization header is in the log:\n{log}");
    assert!(!log.contains("grant_type"), "a form body or query is in the log:\n{log}");
}

/// Access lines are written in batches (see `cli::logging`): under a burst every request still gets exactly
/// one whole line, none is torn by the other lines written meanwhile, and the last request's line is in the log
/// once the server has exited. (The shutdown takes longer than the 100 ms flush interval, so this does not tell
/// the final flush in `main` from the periodic one.)
#[tokio::test]
async fn batched_access_lines_are_whole_and_flushed_at_exit() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let command = json_logging(&db, dir.path());
    let mut server = ServeProcess::start(&command, dir.path()).await;
    let http = reqwest::Client::new();
    let (tasks, each) = (8, 250);
    let mut burst = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let (http, url) = (http.clone(), server.url("/healthz"));
        burst.spawn(async move {
            for n in 0..each {
                let sent = http.get(&url).header("x-request-id", format!("burst-{task}-{n}")).send().await;
                assert_eq!(sent.unwrap().status(), 200);
            }
        });
    }
    while let Some(done) = burst.join_next().await {
        done.unwrap();
    }
    // The last one is answered; stop at once.
    let last = http.get(server.url("/healthz")).header("x-request-id", "the-last-one").send().await.unwrap();
    assert_eq!(last.status(), 200);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());

    let lines = access_lines(&server.log_text());
    let mut seen = std::collections::HashMap::new();
    for line in &lines {
        *seen.entry(line["request_id"].as_str().unwrap_or_default().to_string()).or_insert(0) += 1;
    }
    for task in 0..tasks {
        for n in 0..each {
            assert_eq!(seen.get(&format!("burst-{task}-{n}")), Some(&1), "burst-{task}-{n}: {} lines", lines.len());
        }
    }
    assert_eq!(seen.get("the-last-one"), Some(&1), "the last request's line was lost at exit");
}

/// Issue 17 item 6: a client id is the caller's text (Basic credentials are form-decoded, so `%0A` is a
/// newline), and the text log wrote it as it came: a caller could end the access line and forge the next one,
/// rewrite a terminal line, or add `key=value` fields. Every such character is escaped, a value with spaces is
/// quoted, and each request is still one line that starts like every other.
#[tokio::test]
async fn the_text_log_escapes_what_callers_send() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let server = ServeProcess::start(&logging(&db, dir.path(), "text"), dir.path()).await;
    let http = reqwest::Client::new();
    // (request id, client id sent, how the access line must show it)
    let cases = [
        (
            "inject-1",
            "a\nFORGED-1 INFO  partnergate::access] request status=200",
            r#""a\nFORGED-1 INFO  partnergate::access] request status=200""#,
        ),
        ("inject-2", "b\rFORGED-2", r#""b\rFORGED-2""#),
        ("inject-3", "c\u{1b}[2KFORGED-3", r"c\u{1b}[2KFORGED-3"),
        ("inject-4", "d\0FORGED-4", r"d\u{0}FORGED-4"),
        ("inject-5", "e\u{2028}FORGED-5\u{2029}", r#""e\u{2028}FORGED-5\u{2029}""#),
        ("inject-6", "f\u{202e}FORGED-6", r"f\u{202e}FORGED-6"),
        ("inject-7", "g\u{85}FORGED-7\tx", r#""g\u{85}FORGED-7\tx""#),
        ("inject-8", "h status=200 request_id=forged-8", r#""h status=200 request_id=forged-8""#),
        ("inject-9", "i\"quoted\\", r#""i\"quoted\\""#),
    ];
    for (request_id, client_id, _) in &cases {
        let refused = http
            .post(server.url("/oauth2/token"))
            .header("authorization", basic_auth(client_id, "pgs_not-a-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-request-id", *request_id)
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{client_id:?}");
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = server.log_text();
        if log.contains("request_id=inject-9") || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let unsafe_char =
        |c: char| c != '\n' && (c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}'));
    assert!(!log.chars().any(unsafe_char), "a raw control character in the log:\n{log:?}");
    for line in log.lines() {
        // `serve` announces its address on stderr without the logger; every other line is the logger's.
        let ours = line.starts_with('[') || line.starts_with("partnergate listening on ");
        assert!(ours, "a line that the server did not start (forged?): {line:?}\n{log}");
    }
    for (request_id, client_id, shown) in &cases {
        let lines: Vec<&str> = log.lines().filter(|l| l.ends_with(&format!("request_id={request_id}"))).collect();
        assert_eq!(lines.len(), 1, "one access line for {client_id:?}:\n{log}");
        assert!(lines[0].contains(&format!(" client_id={shown} ")), "{client_id:?} shown as {shown}: {}", lines[0]);
    }
}
