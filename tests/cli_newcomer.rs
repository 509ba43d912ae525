//! A newcomer's path through the CLI, with the real binary: the admin audience follows the server's settings,
//! `token` says why it failed, a mistyped database path is refused instead of silently created, the files
//! the server creates are private, and the output is readable.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clap::CommandFactory;
use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())).permissions().mode() & 0o777
}

#[actix_web::test]
async fn admin_bootstrap_registers_the_audience_the_server_checks_and_a_wrong_one_is_named() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let mut env = partnergate_binary();
    env.env("PARTNERGATE_DATABASE_URL", &db.url).env("PARTNERGATE_KEYS_DIR", dir.path().join("keys"));
    let server = ServeProcess::start(&env, dir.path()).await;
    // The operator's shell has the server's settings: here the non-default bind, no issuer of its own.
    let mut operator = partnergate_binary();
    operator.env("PARTNERGATE_DATABASE_URL", &db.url).env("PARTNERGATE_BIND", format!("127.0.0.1:{}", server.port));

    let metadata: serde_json::Value =
        reqwest::get(server.url("/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
    let expected = format!("http://127.0.0.1:{}/admin", server.port);
    assert_eq!(metadata["partnergate_admin_audience"], expected.as_str());

    let admin = run_command(&operator, &["--json", "admin", "bootstrap"]).json();
    assert_eq!(admin["client"]["audiences"], serde_json::json!([expected]), "{admin}");
    let token = client_credentials(&server, &admin).await;
    let reply = admin_get(&server, &token).await;
    assert_eq!(reply.status, 200, "the bootstrap client's token is an admin token: {}", reply.text);

    // A client registered for the audience the README used to hard-code is refused, and told why.
    let stale = run_command(
        &operator,
        &[
            "--json",
            "client",
            "create",
            "--partner",
            "operator",
            "--name",
            "stale",
            "--scope",
            "authz.admin",
            "--audience",
            "http://127.0.0.1:8080/admin",
        ],
    )
    .json();
    let token = client_credentials(&server, &stale).await;
    let body = admin_get(&server, &token).await.expect_problem(401, "invalid_token");
    assert_eq!(body["message"], format!("wrong audience: expected {expected}"), "{body}");
    drop(server);
}

async fn client_credentials(server: &ServeProcess, created: &serde_json::Value) -> String {
    let id = created["client"]["id"].as_str().unwrap();
    let secret = created["secret"]["secret"].as_str().unwrap();
    let response = reqwest::Client::new()
        .post(server.url("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_string()
}

async fn admin_get(server: &ServeProcess, token: &str) -> Reply {
    Reply::from(reqwest::Client::new().get(server.url("/admin/v1/partners")).bearer_auth(token).send().await.unwrap())
        .await
}

/// A one-shot HTTP server on loopback that answers the first request with `response` (or, with `None`,
/// reads it and never answers).
fn canned_server(response: Option<&'static str>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 4096];
        let _ = stream.read(&mut buffer);
        match response {
            Some(response) => {
                let _ = stream.write_all(response.as_bytes());
            }
            None => std::thread::sleep(std::time::Duration::from_secs(30)),
        }
    });
    port
}

#[actix_web::test]
async fn token_failures_name_the_url_and_the_cause() {
    let server = TestServer::start().await;
    let token = |env: &[(&str, String)]| {
        let mut command = partnergate_binary();
        command.env("PARTNERGATE_CLIENT_ID", "pgc_nobody").env("PARTNERGATE_CLIENT_SECRET", "pgs_wrong");
        for (name, value) in env {
            command.env(name, value);
        }
        command
    };

    // Nothing listens: the URL, derived from PARTNERGATE_BIND like the server's issuer, and the cause.
    let closed = free_port();
    let run = run_command(&token(&[("PARTNERGATE_BIND", format!("127.0.0.1:{closed}"))]), &["token"]);
    let stderr = run.failed();
    assert!(stderr.contains(&format!("http://127.0.0.1:{closed}/oauth2/token")), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    let run = run_command(&token(&[("PARTNERGATE_ISSUER", format!("http://localhost:{closed}"))]), &["token"]);
    assert!(run.failed().contains(&format!("http://localhost:{closed}/oauth2/token")), "{}", run.stderr);

    // The server refuses: its status and body.
    let run = run_command_async(&token(&[("PARTNERGATE_URL", server.base_url.clone())]), &["token"]).await;
    let stderr = run.failed();
    assert!(stderr.contains("HTTP 401") && stderr.contains("invalid_client"), "{stderr}");
    assert!(stderr.contains(&server.url("/oauth2/token")), "{stderr}");

    // Something else answers with an error page that is not JSON.
    let port = canned_server(Some(
        "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 13\r\nconnection: close\r\n\r\nupstream down",
    ));
    let run = run_command(&token(&[]), &["token", "--url", &format!("http://127.0.0.1:{port}")]);
    let stderr = run.failed();
    assert!(stderr.contains("HTTP 502") && stderr.contains("upstream down"), "{stderr}");

    // TLS spoken to a plain HTTP server.
    let https = server.base_url.replace("http://", "https://");
    let run = run_command_async(&token(&[]), &["token", "--url", &https]).await;
    assert!(run.failed().contains("TLS"), "{}", run.stderr);

    // A server that never answers.
    let port = canned_server(None);
    let run = run_command(&token(&[]), &["token", "--url", &format!("http://127.0.0.1:{port}"), "--timeout-secs", "1"]);
    assert!(run.failed().contains("timeout"), "{}", run.stderr);

    // A partner's tool: no database or keys options.
    let help = run_command(&token(&[]), &["token", "--help"]);
    let help = help.ok();
    assert!(help.contains("--client-id") && help.contains("PARTNERGATE_URL"), "{help}");
    for operator_only in ["--database", "--keys-dir", "--bind"] {
        assert!(!help.contains(operator_only), "token --help lists {operator_only}: {help}");
    }
    server.stop().await;
}

#[test]
fn operator_commands_refuse_a_missing_sqlite_database_and_migrate_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo").join("partnergate.db");
    let mut cli = partnergate_binary();
    cli.env("PARTNERGATE_DATABASE_URL", format!("sqlite://{}", path.display()));
    for args in [
        &["partner", "list"][..],
        &["scope", "create", "orders.read"],
        &["client", "list"],
        &["audit"],
        &["admin", "bootstrap"],
    ] {
        let run = run_command(&cli, args);
        let stderr = run.failed();
        assert!(stderr.contains(&path.display().to_string()), "{args:?} names the path: {stderr}");
        assert!(stderr.contains("partnergate migrate") && stderr.contains("partnergate serve"), "{stderr}");
        assert!(!path.exists() && !path.parent().unwrap().exists(), "{args:?} created {}", path.display());
    }
    run_command(&cli, &["migrate"]).ok();
    assert!(path.exists());
    run_command(&cli, &["partner", "list"]).ok();
}

#[actix_web::test]
async fn the_sqlite_files_and_directory_the_server_creates_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("nested").join("partnergate.db");
    let mut env = partnergate_binary();
    env.env("PARTNERGATE_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("PARTNERGATE_KEYS_DIR", dir.path().join("keys"));
    let server = ServeProcess::start(&env, dir.path()).await;
    // While the server runs, SQLite keeps its write-ahead log and shared-memory index beside the file.
    for directory in [&data, &data.join("nested")] {
        assert_eq!(mode(directory), 0o700, "{}", directory.display());
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(server);

    // `migrate` creates the same way.
    let other = dir.path().join("fresh").join("partnergate.db");
    let mut migrate = partnergate_binary();
    migrate.env("PARTNERGATE_DATABASE_URL", format!("sqlite://{}", other.display()));
    run_command(&under_umask_022(&migrate), &["migrate"]).ok();
    assert_eq!(mode(other.parent().unwrap()), 0o700);
    assert_eq!(mode(&other), 0o600);
}

#[actix_web::test]
async fn cli_output_has_headers_one_fact_per_line_help_everywhere_and_completions() {
    let server = TestServer::start().await;
    let cli = server.cli();
    run_command(&cli, &["scope", "create", "orders.read", "--description", "Read orders"]).ok();
    run_command(&cli, &["role", "create", "reader", "--scope", "orders.read"]).ok();
    let created = run_command(&cli, &["partner", "create", "acme", "--name", "Acme Corp", "--ceiling", "orders.read"]);
    assert!(created.ok().lines().any(|l| l.split_whitespace().eq(["name:", "Acme", "Corp"])), "{}", created.stdout);
    let created = run_command(
        &cli,
        &[
            "client",
            "create",
            "--partner",
            "acme",
            "--name",
            "sync",
            "--role",
            "reader",
            "--audience",
            "https://a.test",
        ],
    );
    let lines: Vec<&str> = created.ok().lines().collect();
    for (name, value) in
        [("client_id:", "pgc_"), ("client_secret:", "pgs_"), ("partner:", "acme"), ("roles:", "reader")]
    {
        assert!(
            lines.iter().any(|l| l.starts_with(name) && l[name.len()..].trim_start().starts_with(value)),
            "a line `{name} {value}…` in: {}",
            created.stdout
        );
    }

    for (args, headers) in [
        (&["partner", "list"][..], &["ID", "NAME", "STATE", "CEILING"][..]),
        (&["scope", "list"], &["NAME", "DESCRIPTION"]),
        (&["role", "list"], &["NAME", "SCOPES"]),
        (&["client", "list"], &["ID", "PARTNER", "NAME", "STATE"]),
        (&["keys", "list"], &["KID", "ALG", "STATE"]),
        (&["audit"], &["ID", "TIME", "TYPE", "OUTCOME"]),
    ] {
        let run = run_command(&cli, args);
        let first = run.ok().lines().next().unwrap_or_default().to_string();
        let columns: Vec<&str> = first.split_whitespace().collect();
        for header in headers {
            assert!(columns.contains(header), "{args:?}: header {header} missing from {first:?}");
        }
        assert!(run.stdout.lines().count() >= 2, "{args:?}: rows under the header: {}", run.stdout);
    }

    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef partnergate"), ("fish", "complete -c partnergate")]
    {
        let run = run_command(&partnergate_binary(), &["completions", shell]);
        assert!(run.ok().contains(marker) && run.stdout.contains("bootstrap"), "{shell}: {}", run.stdout);
    }
    server.stop().await;
}

#[test]
fn every_option_and_argument_has_a_help_text() {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && !arg.is_hide_set() && arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(format!("{path} {} (command)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&partnergate::cli::Cli::command(), "partnergate", &mut missing);
    assert!(missing.is_empty(), "without a --help description: {missing:#?}");
}

/// The README promises a build with no system libraries: libpq and the OpenSSL it uses are compiled into the
/// binary, so the dynamic loader is asked for the C library only, never libpq, libssl or libcrypto.
#[test]
fn the_binary_links_no_libpq_or_openssl() {
    let binary = env!("CARGO_BIN_EXE_partnergate");
    // ldd comes with the C library's tools (Debian's libc-bin), which every machine that builds this has.
    let out = std::process::Command::new("ldd").arg(binary).output().expect("ldd runs");
    assert!(out.status.success(), "ldd {binary}: {}", String::from_utf8_lossy(&out.stderr));
    let libraries = String::from_utf8_lossy(&out.stdout);
    for system_library in ["libpq", "libssl", "libcrypto"] {
        assert!(!libraries.contains(system_library), "the binary links {system_library}:\n{libraries}");
    }
    // The assertion above means something only if ldd lists the libraries it does link.
    assert!(libraries.contains("libc.so"), "ldd listed no C library:\n{libraries}");
}

/// `GET /` tells a newcomer where to go (the console, the metadata document, the docs), as JSON for a program
/// and as a small page for a browser, with the security headers of every route; the startup log says where the
/// console is and how to make the first admin client, and says "listening on" once.
#[actix_web::test]
async fn the_root_and_the_startup_log_point_a_newcomer_to_the_console_and_the_first_admin() {
    let db = TestDatabase::new();
    let dir = tempfile::tempdir().unwrap();
    let mut env = partnergate_binary();
    env.env("PARTNERGATE_DATABASE_URL", &db.url).env("PARTNERGATE_KEYS_DIR", dir.path().join("keys"));
    let server = ServeProcess::start(&env, dir.path()).await;
    let http = reqwest::Client::new();

    let reply = Reply::from(http.get(server.url("/")).send().await.unwrap()).await;
    let links = reply.expect_json(200);
    assert_eq!(links["console"], "/console", "{links}");
    assert_eq!(links["metadata"], "/.well-known/oauth-authorization-server", "{links}");
    assert_eq!(links["admin_api"], "/admin/v1/openapi.json", "{links}");
    assert!(links["docs"].as_str().is_some_and(|d| d.contains("README.md")), "{links}");
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    let page = Reply::from(http.get(server.url("/")).header("accept", "text/html").send().await.unwrap()).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"), "{}", page.dump());
    assert!(page.header("content-security-policy").contains("default-src 'none'"));
    assert_eq!(page.header("x-frame-options"), "DENY");
    for link in ["href=\"/console\"", "href=\"/.well-known/oauth-authorization-server\"", "README.md"] {
        assert!(page.text.contains(link), "{link} in {}", page.text);
    }

    let log = server.log_text();
    assert_eq!(log.matches("listening on").count(), 1, "{log}");
    assert!(log.contains(&server.url("/console")), "the log names the console: {log}");
    assert!(log.contains("partnergate admin bootstrap"), "the log says how to make the first admin: {log}");
    drop(server);
}

/// With `--json`, a failed command prints its error as JSON (`{"error": "..."}` on stderr), whether the
/// command failed or its arguments were refused; without it, the text stays as it was.
#[actix_web::test]
async fn json_mode_prints_errors_as_json() {
    let server = TestServer::start().await;
    let cli = server.cli();
    for args in [
        &["--json", "client", "show", "pgc_nobody"][..],
        &["--json", "partner", "create"],
        &["client", "--json", "frobnicate"],
    ] {
        let run = run_command(&cli, args);
        let stderr = run.failed().to_string();
        let error: serde_json::Value =
            serde_json::from_str(&stderr).unwrap_or_else(|err| panic!("{args:?}: not JSON ({err}): {stderr}"));
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{args:?}: {error}");
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    let text = run_command(&cli, &["client", "show", "pgc_nobody"]);
    assert!(text.failed().starts_with("error: "), "{}", text.stderr);
    server.stop().await;
}

/// Output into a pipe whose reader has gone (`partnergate ... | head`) ends the command quietly: no "Broken
/// pipe" message, no panic, exit status 0.
#[actix_web::test]
async fn a_closed_pipe_ends_output_quietly() {
    let server = TestServer::start().await;
    ensure_catalog_scopes(&server, &["orders.read", "orders.write"]);
    for args in [&["scope", "list"][..], &["--json", "scope", "list"], &["completions", "bash"]] {
        let mut child = command_like(&server.cli())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run partnergate");
        // The reader closes before the command writes, as `head` does once it has its lines.
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("partnergate ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    }
    server.stop().await;
}

/// Every time the CLI prints carries its zone (RFC 3339 with `Z`), in text as in JSON.
#[actix_web::test]
async fn printed_times_carry_their_zone() {
    let server = TestServer::start().await;
    let created = server.seed("zoned").role(&["orders.read"]).create();
    let mut token = partnergate_binary();
    token
        .env("PARTNERGATE_URL", &server.base_url)
        .env("PARTNERGATE_CLIENT_ID", &created.client.id)
        .env("PARTNERGATE_CLIENT_SECRET", created.secret.secret.expose());
    let run = run_command_async(&token, &["token"]).await;
    let at = run.ok().lines().find_map(|line| line.strip_prefix("expires_at: ")).map(str::to_string);
    assert!(
        at.as_deref().is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z')),
        "`token` names its expiry with its zone: {}",
        run.stdout
    );
    let cli = server.cli();
    for (args, prefix) in [
        (vec!["client", "revoke-tokens", created.client.id.as_str()], "issued until "),
        (vec!["partner", "revoke-tokens", "zoned"], "issued until "),
    ] {
        let run = run_command(&cli, &args);
        let at = run.ok().trim().rsplit(prefix).next().unwrap().to_string();
        assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok() && at.ends_with('Z'), "{args:?}: {}", run.stdout);
        let mut json_args = vec!["--json"];
        json_args.extend(&args);
        let at = run_command(&cli, &json_args).json()["tokens_revoked_before"].as_str().unwrap().to_string();
        assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok() && at.ends_with('Z'), "{json_args:?}: {at}");
    }
    server.stop().await;
}

/// A key-encryption key is never committed, whichever keys directory it sits in.
#[test]
fn git_ignores_a_key_encryption_key_in_any_keys_directory() {
    let repo = env!("CARGO_MANIFEST_DIR");
    for path in ["keys/key-encryption-key", "deploy/keys/key-encryption-key", "keys-prod/key-encryption-key"] {
        let status = std::process::Command::new("git")
            .args(["-C", repo, "check-ignore", "--quiet", "--no-index", path])
            .status()
            .expect("git runs (the test needs the git work tree)");
        assert!(status.success(), "{path} is not ignored by git");
    }
}
