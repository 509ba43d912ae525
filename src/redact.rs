//! Redaction by shape: the one function every record goes through before it is stored, answered or logged
//! (audit rows, OAuth `error_description`, admin problem messages, log lines, CLI errors). Callers put into
//! ids, paths, parameter names and JSON fields whatever they have at hand, secrets and tokens included; what
//! looks like one never leaves the process (ARCHITECTURE.md, Credentials).

use std::borrow::Cow;

use crate::credentials::SECRET_PREFIX;

/// What a credential is replaced with.
pub const REDACTED: &str = "<redacted: looks like a credential>";
/// What a database password is replaced with.
pub const PASSWORD: &str = "***";

/// Shortest run of base62 after `pgs_` that counts as a secret: a truncated secret is still one.
const MIN_SECRET_BODY: usize = 20;
/// Shortest `eyJ...` word with a dot that counts as a token: a header alone is about 20 characters.
const MIN_JWS_LEN: usize = 16;

/// Whether `text` holds a client secret or a compact JWS anywhere.
pub fn has_credential(text: &str) -> bool {
    matches!(credentials(text), Cow::Owned(_))
}

/// `text` with every client secret (`pgs_` and at least 20 base62 characters) and every compact JWS (a word
/// of base64url and dots that starts with `eyJ`, the encoding of `{"`, and has a dot) replaced by
/// [`REDACTED`]. Percent-escapes of unreserved characters are decoded first, so that `pgs_%41...` in a path
/// is recognised too.
pub fn credentials(text: &str) -> Cow<'_, str> {
    let decoded = decode_unreserved(text);
    if !(decoded.contains(SECRET_PREFIX) || decoded.contains("eyJ")) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(decoded.len());
    let mut changed = false;
    let mut rest: &str = &decoded;
    while !rest.is_empty() {
        let word_len = rest.bytes().take_while(|b| is_token_byte(*b)).count();
        if word_len == 0 {
            let next = rest.chars().next().expect("rest is not empty");
            out.push(next);
            rest = &rest[next.len_utf8()..];
            continue;
        }
        let (word, tail) = rest.split_at(word_len);
        changed |= redact_word(word, &mut out);
        rest = tail;
    }
    if changed || matches!(decoded, Cow::Owned(_)) {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Appends `word` (base64url characters and dots) to `out` with its credentials replaced; true if any was.
fn redact_word(word: &str, out: &mut String) -> bool {
    if word.starts_with("eyJ") && word.contains('.') && word.len() >= MIN_JWS_LEN {
        out.push_str(REDACTED);
        return true;
    }
    let mut changed = false;
    let mut rest = word;
    while let Some(at) = rest.find(SECRET_PREFIX) {
        let body = rest[at + SECRET_PREFIX.len()..].bytes().take_while(u8::is_ascii_alphanumeric).count();
        if body >= MIN_SECRET_BODY {
            out.push_str(&rest[..at]);
            out.push_str(REDACTED);
            rest = &rest[at + SECRET_PREFIX.len() + body..];
            changed = true;
        } else {
            out.push_str(&rest[..at + SECRET_PREFIX.len()]);
            rest = &rest[at + SECRET_PREFIX.len()..];
        }
    }
    out.push_str(rest);
    changed
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
}

/// Decodes `%XX` where XX is an unreserved character (RFC 3986 2.3): equivalent text, as a reader would see it.
fn decode_unreserved(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let decoded = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = decoded.filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b)) {
                out.push(b as char);
                i += 3;
                continue;
            }
        }
        let ch = text[i..].chars().next().expect("index on a char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    Cow::Owned(out)
}

/// `text` with database passwords replaced by [`PASSWORD`]: the password of a URL's user info
/// (`postgres://user:pw@host`), a `password=` query parameter, and a `password=` key of a key=value DSN
/// (`host=db password=pw`, quoted values included).
pub fn database(text: &str) -> Cow<'_, str> {
    let userinfo = redact_userinfo(text);
    let lower = userinfo.to_ascii_lowercase();
    if !lower.contains("password=") {
        return userinfo;
    }
    let mut out = String::with_capacity(userinfo.len());
    let mut last = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("password=") {
        let key = search + found;
        let preceded_ok = key == 0 || matches!(lower.as_bytes()[key - 1], b'?' | b'&' | b' ' | b'\t' | b'\n' | b'"');
        let value_start = key + "password=".len();
        search = value_start;
        if !preceded_ok {
            continue;
        }
        let value_end = dsn_value_end(&userinfo, value_start);
        out.push_str(&userinfo[last..value_start]);
        out.push_str(PASSWORD);
        last = value_end;
        search = value_end.max(value_start);
    }
    out.push_str(&userinfo[last..]);
    Cow::Owned(out)
}

/// The end of a `password=` value: a quoted DSN value runs to its closing quote (`\'` escapes one), an
/// unquoted one to the next space, `&`, `"` or end.
fn dsn_value_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    if bytes.get(start) == Some(&b'\'') {
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'\'' => return i + 1,
                _ => i += 1,
            }
        }
        return bytes.len();
    }
    start + text[start..].find(|c: char| c.is_whitespace() || c == '&' || c == '"').unwrap_or(text.len() - start)
}

/// Every `scheme://user:password@` in `text` with the password replaced.
fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(scheme_end) = rest.find("://") {
        let authority_start = scheme_end + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        // The authority ends at the first '/', '?', '#' or space; its user info at its last '@'.
        let authority_len =
            after.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace()).unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|colon| (colon, at))) {
            Some((colon, at)) => {
                out.push_str(&authority[..colon + 1]);
                out.push_str(PASSWORD);
                out.push_str(&authority[at..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Both: what a log line or an error message printed for an operator goes through.
pub fn all(text: &str) -> String {
    database(&credentials(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    #[test]
    fn secrets_and_tokens_are_replaced_where_they_stand() {
        let secret = crate::credentials::ClientSecret::generate().expose().to_string();
        assert_eq!(credentials(&format!("secret {secret} not found")), format!("secret {REDACTED} not found"));
        assert_eq!(
            credentials(&format!("/clients/x/secrets/{secret}?a=1")),
            format!("/clients/x/secrets/{REDACTED}?a=1")
        );
        assert_eq!(
            credentials(&format!("unknown field `{JWS}`, expected")),
            format!("unknown field `{REDACTED}`, expected")
        );
        assert_eq!(credentials(&format!("Bearer {JWS}")), format!("Bearer {REDACTED}"));
        assert_eq!(credentials(&format!("x{}", &secret[..30])), format!("x{REDACTED}"), "a truncated secret too");
        let encoded = format!("/s/pgs_%41{}", &secret[5..]);
        assert_eq!(credentials(&encoded), format!("/s/{REDACTED}"), "percent-encoded");
        assert!(has_credential(&format!("a={secret}")) && !has_credential("pgs_short and eyJ alone"));
    }

    #[test]
    fn ordinary_text_is_kept() {
        for text in ["partner-sync/1.2.3 (linux; pgs_ok)", "req-1.2:3", "100%", "a%2Fb", "orders.read eyJ", "日本語 ü"]
        {
            assert_eq!(credentials(text), text);
        }
    }

    #[test]
    fn database_passwords_are_replaced() {
        assert_eq!(database("postgres://bob:hunter2@db/x"), "postgres://bob:***@db/x");
        assert_eq!(database("postgresql://bob:hun@ter2@db:5/x"), "postgresql://bob:***@db:5/x");
        assert_eq!(database("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(
            database("postgres://bob@db/x?sslmode=require&password=hunter2"),
            "postgres://bob@db/x?sslmode=require&password=***"
        );
        assert_eq!(database("host=db user=bob password=hunter2 dbname=x"), "host=db user=bob password=*** dbname=x");
        assert_eq!(database("host=db PASSWORD='hun ter\\'2' dbname=x"), "host=db PASSWORD=*** dbname=x");
        assert_eq!(database("error in \"host=db password=pw\": refused"), "error in \"host=db password=***\": refused");
        assert_eq!(database("no_password=kept"), "no_password=kept");
        assert_eq!(all("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }
}
