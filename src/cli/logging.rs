//! The process log: env_logger (`RUST_LOG`, default `info`) with every line passed through
//! [`crate::redact::all`], so that no secret, token or database password reaches a log, whichever module
//! (ours or a dependency's) wrote the line. Structured fields (`log`'s key-values, as the access log writes
//! them) are redacted too, and written as `key=value` in text or as members of the line's JSON object.

use std::io::Write;

use log::kv::{self, VisitSource};

use crate::config::LogFormat;

/// The logger `main` installs; tests install the same one with their own target.
pub fn builder(format: LogFormat) -> env_logger::Builder {
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Text => builder.format(|buf, record| {
            let mut line = crate::redact::all(&record.args().to_string());
            let _ = record.key_values().visit(&mut TextFields(&mut line));
            writeln!(buf, "[{} {:<5} {}] {line}", buf.timestamp(), record.level(), record.target())
        }),
        LogFormat::Json => builder.format(|buf, record| {
            let mut line = serde_json::Map::new();
            line.insert("ts".into(), buf.timestamp_micros().to_string().into());
            line.insert("level".into(), record.level().as_str().into());
            line.insert("target".into(), record.target().into());
            line.insert("message".into(), crate::redact::all(&record.args().to_string()).into());
            let _ = record.key_values().visit(&mut JsonFields(&mut line));
            writeln!(buf, "{}", serde_json::Value::Object(line))
        }),
    };
    builder
}

pub fn init(format: LogFormat) {
    builder(format).init();
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        self.0.push_str(&format!(" {key}={}", crate::redact::all(&value.to_string())));
        Ok(())
    }
}

struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        // Numbers stay numbers; everything else is redacted text.
        let json = if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else if let Some(x) = value.to_f64() {
            x.into()
        } else {
            crate::redact::all(&value.to_string()).into()
        };
        self.0.insert(key.to_string(), json);
        Ok(())
    }
}
