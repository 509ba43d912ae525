//! The process log: env_logger (`RUST_LOG`, default `info`) with every line passed through
//! [`crate::redact::all`], so that no secret, token or database password reaches a log, whichever module
//! (ours or a dependency's) wrote the line.

use std::io::Write;

/// The logger `main` installs; tests install the same one with their own target.
pub fn builder() -> env_logger::Builder {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.format(|buf, record| {
        let line = crate::redact::all(&record.args().to_string());
        writeln!(buf, "[{} {:<5} {}] {line}", buf.timestamp(), record.level(), record.target())
    });
    builder
}

pub fn init() {
    builder().init();
}
