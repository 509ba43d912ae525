//! The process log: env_logger (`RUST_LOG`, default `info`, actix-server's own lines from `warn`) with every
//! line passed through [`crate::redact::all`], so that no secret, token or database password reaches a log,
//! whichever module (ours or a dependency's) wrote the line. Structured fields (`log`'s key-values, as the
//! access log writes them) are redacted too, and written as `key=value` in text or as members of the line's
//! JSON object.
//!
//! Access lines (one per request, target [`crate::http::access_log::TARGET`]) reach stderr in batches, every
//! [`ACCESS_FLUSH_INTERVAL`] or 64 KiB, instead of with one `write(2)` each: measured with `perf`, the per-line
//! write was about a tenth of the server's CPU under JWKS load. Every other line is written at once, so an
//! access line may appear up to that interval after lines logged later; `main` flushes before it exits.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::kv::{self, VisitSource};

use crate::config::LogFormat;

/// The logger `main` installs; tests install the same one with their own target.
pub fn builder(format: LogFormat) -> env_logger::Builder {
    // actix-server's own start lines repeat the address the server's "listening on" line gives.
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,actix_server=warn"));
    match format {
        LogFormat::Text => builder.format(|buf, record| {
            // Messages quote callers' text too (ids, paths, error texts): one record is one line, whatever it holds.
            let mut line = escape(&crate::redact::all(&record.args().to_string())).into_owned();
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

/// How long an access line may wait in memory before it is written.
pub const ACCESS_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const ACCESS_BATCH_BYTES: usize = 64 * 1024;

/// Installs the process logger: [`builder`]'s, with access lines batched.
pub fn init(format: LogFormat) {
    let pending = Arc::new(Mutex::new(Vec::with_capacity(ACCESS_BATCH_BYTES)));
    let flusher = pending.clone();
    let started = std::thread::Builder::new().name("access-log".into()).spawn(move || loop {
        std::thread::sleep(ACCESS_FLUSH_INTERVAL);
        write_out(&flusher);
    });
    if started.is_err() {
        // No thread, no batching: every line is written as it comes.
        builder(format).init();
        return;
    }
    let others = builder(format).build();
    let access = builder(format)
        .target(env_logger::Target::Pipe(Box::new(BatchedStderr(pending.clone()))))
        // Our lines carry no colour codes: nothing to strip.
        .write_style(env_logger::WriteStyle::Always)
        .build();
    let max_level = others.filter().max(access.filter());
    if log::set_boxed_logger(Box::new(SplitLogger { access, others, pending })).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Access lines to the batching logger, the rest straight to stderr.
struct SplitLogger {
    access: env_logger::Logger,
    others: env_logger::Logger,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl log::Log for SplitLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.pick(metadata.target()).enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        self.pick(record.target()).log(record)
    }

    /// Writes the batched access lines now.
    fn flush(&self) {
        write_out(&self.pending);
    }
}

impl SplitLogger {
    fn pick(&self, target: &str) -> &env_logger::Logger {
        if target == crate::http::access_log::TARGET {
            &self.access
        } else {
            &self.others
        }
    }
}

/// env_logger's target for access lines: appends to the batch, writes it out once it is large.
struct BatchedStderr(Arc<Mutex<Vec<u8>>>);

impl Write for BatchedStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut pending = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            pending.extend_from_slice(bytes);
            pending.len() >= ACCESS_BATCH_BYTES
        };
        if full {
            write_out(&self.0);
        }
        Ok(bytes.len())
    }

    /// env_logger flushes after every line; the batch is written by size, by time and at exit instead.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_out(pending: &Mutex<Vec<u8>>) {
    let batch = std::mem::take(&mut *pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    if !batch.is_empty() {
        let _ = std::io::stderr().lock().write_all(&batch);
    }
}

/// Whether a character may not appear raw in a text log line: controls (C0, DEL, C1: a newline would start a
/// forged line, an escape sequence rewrite the terminal), the line and paragraph separators, and the bidi
/// controls that make a line read in another order.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `text` with every such character written as `\n`, `\r`, `\t` or `\u{..}`.
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out.into()
}

/// A field value as `key=value` text: escaped, and quoted (with `"` and `\` escaped inside) when it is empty or
/// holds whitespace, `=`, `"` or `\`, so that a caller's value cannot pass for more fields. An unquoted value's
/// backslashes are therefore always escapes.
fn field_value(value: &str) -> String {
    let plain = !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || matches!(c, '=' | '"' | '\\'));
    if plain {
        return escape(value).into_owned();
    }
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{}\"", escape(&quoted))
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    /// Written into the line in place: every request's access line has six fields. Numbers (the status, the
    /// latency) cannot hold a credential and skip the redaction.
    fn visit_pair(&mut self, key: kv::Key<'kvs>, value: kv::Value<'kvs>) -> Result<(), kv::Error> {
        use std::fmt::Write as _;
        let _ = if let Some(n) = value.to_u64() {
            write!(self.0, " {key}={n}")
        } else if let Some(x) = value.to_f64() {
            write!(self.0, " {key}={x}")
        } else {
            write!(self.0, " {key}={}", field_value(&crate::redact::all(&value.to_string())))
        };
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

#[cfg(test)]
mod tests {
    use log::kv::{Source, Value};

    use super::{escape, field_value, TextFields};

    #[test]
    fn caller_text_cannot_break_or_add_to_a_line() {
        assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(escape("a\nb\rc\td\0e\u{1b}[2K\u{7f}\u{85}"), r"a\nb\rc\td\u{0}e\u{1b}[2K\u{7f}\u{85}");
        assert_eq!(escape("x\u{2028}y\u{202e}z\u{2067}"), r"x\u{2028}y\u{202e}z\u{2067}");
        assert_eq!(field_value("pgc_abc"), "pgc_abc");
        assert_eq!(field_value("a\u{1b}b"), r"a\u{1b}b");
        assert_eq!(field_value("a\nb"), r#""a\nb""#);
        assert_eq!(field_value("x status=200"), r#""x status=200""#);
        assert_eq!(field_value(r#"q"\"#), r#""q\"\\""#);
        assert_eq!(field_value(""), r#""""#);
    }

    #[test]
    fn text_fields_keep_numbers_and_redact_text() {
        let secret = crate::credentials::ClientSecret::generate();
        let path = format!("/admin/v1/clients/{}", secret.expose());
        let fields: [(&str, Value); 3] = [
            ("status", Value::from(401u64)),
            ("latency_ms", Value::from(0.25f64)),
            ("path", Value::from(path.as_str())),
        ];
        let mut line = String::from("request");
        fields.visit(&mut TextFields(&mut line)).unwrap();
        assert_eq!(
            line,
            // The placeholder has spaces: the value is quoted.
            format!("request status=401 latency_ms=0.25 path=\"/admin/v1/clients/{}\"", crate::redact::REDACTED)
        );
    }
}
