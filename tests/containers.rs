//! The container files, checked without a container engine: every `PARTNERGATE_*` variable that
//! docker-compose.yml and the Dockerfile set is one the binary reads, and the commands they run (entry point,
//! health checks) are subcommands of the binary; the health command itself works against a real server.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;
use common::*;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).expect(name)
}

/// docker-compose.yml as JSON, through python3's yaml module (no YAML crate in the tree).
fn compose() -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-compose.yml"))
        .output()
        .expect("run python3");
    assert!(out.status.success(), "docker-compose.yml does not parse: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every environment variable the CLI definition names, in every subcommand, plus the KEK's own variable.
fn variables_read() -> BTreeSet<String> {
    fn walk(command: &clap::Command, into: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                into.insert(env.to_string_lossy().into_owned());
            }
        }
        command.get_subcommands().for_each(|sub| walk(sub, into));
    }
    let mut names = BTreeSet::from([partnergate::keys::kek::ENV_VALUE.to_string()]);
    walk(&partnergate::cli::Cli::command(), &mut names);
    names
}

/// The binary's subcommand path for `argv` (after the program name) must parse as far as its first option.
fn assert_subcommand(what: &str, argv: &[String]) {
    let mut command = partnergate::cli::Cli::command();
    let mut words = argv.iter().take_while(|word| !word.starts_with('-'));
    let first = words.next().unwrap_or_else(|| panic!("{what}: no subcommand in {argv:?}"));
    let mut current = command.find_subcommand_mut(first).unwrap_or_else(|| panic!("{what}: no subcommand {first}"));
    for word in words {
        if current.get_subcommands().next().is_none() {
            break;
        }
        current = current.find_subcommand_mut(word).unwrap_or_else(|| panic!("{what}: no subcommand {word}"));
    }
}

fn strings(value: &serde_json::Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// A Dockerfile instruction in exec form (`NAME ["a", "b"]`), after any options such as `--interval=10s`.
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .find(|line| line.starts_with(&format!("{instruction} ")))
        .unwrap_or_else(|| panic!("no {instruction} in the Dockerfile"));
    let json = &line[line.find('[').unwrap_or_else(|| panic!("{instruction} is not in exec form"))..];
    strings(&serde_json::from_str(json).unwrap())
}

#[test]
fn compose_sets_only_variables_the_server_reads_and_runs_real_commands() {
    let compose = compose();
    let read = variables_read();
    let services = compose["services"].as_object().unwrap();
    let server = &services["partnergate"];
    let environment = server["environment"].as_object().expect("partnergate's environment as a map");
    let named: Vec<&String> = environment.keys().filter(|name| name.starts_with("PARTNERGATE_")).collect();
    assert!(named.len() >= 3, "{named:?}");
    for name in named {
        assert!(
            read.contains(name),
            "docker-compose.yml sets {name}, which partnergate does not read; it reads {read:?}"
        );
    }
    assert_subcommand("compose command", &strings(&server["command"]));
    let health = strings(&server["healthcheck"]["test"]);
    assert_eq!((health[0].as_str(), health[1].as_str()), ("CMD", "partnergate"), "{health:?}");
    assert_subcommand("compose health check", &health[2..]);
    assert_eq!(services["postgres"]["healthcheck"]["test"][0], "CMD-SHELL");
    assert_eq!(
        server["depends_on"]["postgres"]["condition"], "service_healthy",
        "partnergate waits for a healthy database"
    );

    // The key-encryption key is a compose secret, and the variable points at where compose mounts it.
    let secret = strings(&server["secrets"])[0].clone();
    assert!(compose["secrets"][&secret]["file"].is_string(), "secret {secret} is declared with a file");
    assert_eq!(environment["PARTNERGATE_KEY_ENCRYPTION_KEY_FILE"], format!("/run/secrets/{secret}").as_str());
}

#[test]
fn the_image_runs_real_commands_as_a_non_root_user() {
    let dockerfile = repo_file("Dockerfile");
    let entry = exec_form(&dockerfile, "ENTRYPOINT");
    assert_eq!(entry, ["partnergate"]);
    assert_subcommand("CMD", &exec_form(&dockerfile, "CMD"));
    let health = exec_form(&dockerfile, "HEALTHCHECK");
    assert_eq!(health[0], "partnergate");
    assert_subcommand("HEALTHCHECK", &health[1..]);
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    let user = final_stage.lines().find_map(|line| line.strip_prefix("USER ")).expect("a USER in the final stage");
    assert!(!["root", "0"].contains(&user.trim()), "runs as {user}");
    let read = variables_read();
    for line in final_stage.lines().filter_map(|line| line.strip_prefix("ENV ")) {
        let name = line.split(['=', ' ']).next().unwrap();
        assert!(read.contains(name), "the Dockerfile sets {name}, which partnergate does not read");
    }
}

/// Runs the binary off the runtime: the in-process server must keep answering meanwhile.
async fn run_binary(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut command = partnergate_binary();
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

#[tokio::test]
async fn the_health_command_answers_for_a_running_server_and_fails_without_one() {
    let server = TestServer::start().await;
    let ready = run_binary(&["healthcheck", "--url", &server.url("")], &[]).await;
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    // From the bind address alone, as in the image.
    let port = server.url("").trim_end_matches('/').rsplit(':').next().unwrap().to_string();
    let from_bind = run_binary(&["healthcheck"], &[("PARTNERGATE_BIND", format!("0.0.0.0:{port}"))]).await;
    assert!(from_bind.status.success(), "{}", String::from_utf8_lossy(&from_bind.stderr));
    let closed = run_binary(&["healthcheck", "--url", &format!("http://127.0.0.1:{}", free_port())], &[]).await;
    assert_eq!(closed.status.code(), Some(1), "no server: exit 1");
}
