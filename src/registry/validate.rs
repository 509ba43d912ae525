//! Input rules shared by every registry entry point (CLI and admin API alike).

use super::RegistryError;

fn invalid(field: &'static str, message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid { field, message: message.into() }
}

/// Partner ids: lowercase slug, 2 to 63 characters, starting with a letter or digit (`acme`, `acme-eu`).
pub fn is_partner_id(id: &str) -> bool {
    (2..=63).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

const PARTNER_ID_RULE: &str = "partner ids are 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit";

pub fn partner_id(id: &str) -> Result<(), RegistryError> {
    if is_partner_id(id) {
        Ok(())
    } else {
        Err(invalid("id", PARTNER_ID_RULE))
    }
}

/// Client ids: 3 to 64 visible ASCII characters (generated `pgc_` ids and operator-chosen ones alike).
/// Characters such as `:` `+` `@` `%` are allowed (ids from other systems have them); clients form-encode them
/// in HTTP Basic (RFC 6749 2.3.1).
pub fn is_client_id(id: &str) -> bool {
    (3..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

pub fn client_id(id: &str) -> Result<(), RegistryError> {
    if is_client_id(id) {
        Ok(())
    } else {
        Err(invalid("client_id", "client ids are 3-64 visible ASCII characters, no spaces"))
    }
}

/// Every other stored key a caller may name (secret ids, signing key ids, listing cursors): 1 to 128 visible
/// ASCII characters, which each of them is.
pub fn is_key(value: &str) -> bool {
    (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

/// Audit event types: `client.create`, `token.request`, ...
pub fn is_event_type(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

pub fn is_scope_name(name: &str) -> bool {
    scope_name(name).is_ok()
}

pub fn is_role_name(name: &str) -> bool {
    role_name(name).is_ok()
}

/// A caller's id that reaches a lookup (a path segment, a CLI argument) and cannot name a `kind` is `NotFound`,
/// like an id that does not exist, and never reaches the database: PostgreSQL refuses NUL in text (a 500).
pub fn lookup(kind: &'static str, id: &str, valid: fn(&str) -> bool) -> Result<(), RegistryError> {
    if valid(id) {
        Ok(())
    } else {
        Err(super::not_found(kind, id))
    }
}

/// The same for an id in a body field or a query filter: there the caller made a mistake of form, `Invalid`.
pub fn filter(field: &'static str, value: Option<&str>, valid: fn(&str) -> bool) -> Result<(), RegistryError> {
    match value {
        Some(value) if !valid(value) => Err(invalid(field, format!("{value:?} is not a well-formed {field}"))),
        _ => Ok(()),
    }
}

/// Scope names: `resource.action`, dot-separated lowercase segments (`orders.read`, `authz.clients.write`).
pub fn scope_name(name: &str) -> Result<(), RegistryError> {
    let segment_ok = |s: &str| {
        s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    let segments: Vec<&str> = name.split('.').collect();
    if name.len() <= 128 && segments.len() >= 2 && segments.iter().all(|s| segment_ok(s)) {
        Ok(())
    } else {
        Err(invalid(
            "scope",
            format!("{name:?} is not a scope name of the form resource.action (lowercase, at most 128 characters)"),
        ))
    }
}

/// Role names: lowercase slug, 1 to 64 characters.
pub fn role_name(name: &str) -> Result<(), RegistryError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "role",
            format!("{name:?} is not a role name (1-64 of a-z, 0-9, '-', '_', starting with a letter)"),
        ))
    }
}

/// Client environment labels: free text within a slug's rules (1-32 of a-z, 0-9, '-', starting with a letter),
/// so that teams keep their own words (`qa`, `sandbox`, `prod-eu`) while a label stays one filterable token.
pub fn is_environment(value: &str) -> bool {
    (1..=32).contains(&value.len())
        && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub fn environment(value: Option<&str>) -> Result<(), RegistryError> {
    match value {
        Some(label) if !is_environment(label) => Err(invalid(
            "environment",
            "environments are 1-32 characters of a-z, 0-9 and '-', starting with a letter (e.g. production)",
        )),
        _ => Ok(()),
    }
}

/// Audiences: 1 to 512 visible ASCII characters, no spaces (usually an absolute URI).
pub fn audience(value: &str) -> Result<(), RegistryError> {
    if (1..=512).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid("audiences", format!("{value:?} is not an audience (1-512 visible ASCII characters)")))
    }
}

/// Human-readable names and descriptions: letters of any script, but no character that changes how the
/// rest of the text is shown without being seen itself (a bidi override U+202E makes `Acme<U+202E>gnp.exe` read
/// differently in a console, an audit viewer or a consent screen; a zero-width space makes two names look
/// the same).
pub fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), RegistryError> {
    let count = value.chars().count();
    if count < min || count > max {
        return Err(invalid(field, format!("must be {min} to {max} characters")));
    }
    if let Some(c) = value.chars().find(|&c| is_invisible(c)) {
        return Err(invalid(
            field,
            format!(
                "must not contain control, format or separator characters such as bidi overrides, zero-width \
                 characters, blank fillers or a BOM (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    // A required name of spaces alone reads as no name at all (and two such names look the same).
    if min > 0 && value.chars().all(char::is_whitespace) {
        return Err(invalid(field, "must not be blank (spaces only)"));
    }
    Ok(())
}

/// Control characters (Unicode category Cc), format characters (Cf: bidi embeddings, overrides and
/// isolates, zero-width space and joiners, word joiner, BOM, soft hyphen, tags...), the line and paragraph
/// separators (Zl, Zp), and the letters and marks that draw nothing although their category says otherwise
/// (Unicode's Default_Ignorable_Code_Point and the blank fillers: a name of U+3164 HANGUL FILLER or U+2800
/// BRAILLE PATTERN BLANK looks empty). The ranges are those of Unicode 15.1; the standard library has no
/// category lookup. Variation selectors stay allowed: emoji and ideographic variants need them.
fn is_invisible(c: char) -> bool {
    const BLANK: &[(u32, u32)] = &[
        (0x034F, 0x034F),   // COMBINING GRAPHEME JOINER
        (0x115F, 0x1160),   // HANGUL CHOSEONG / JUNGSEONG FILLER
        (0x17B4, 0x17B5),   // KHMER VOWEL INHERENT AQ / AA
        (0x2800, 0x2800),   // BRAILLE PATTERN BLANK
        (0x3164, 0x3164),   // HANGUL FILLER
        (0xFFA0, 0xFFA0),   // HALFWIDTH HANGUL FILLER
        (0x1D159, 0x1D159), // MUSICAL SYMBOL NULL NOTEHEAD
        (0xE0000, 0xE00FF), // tags and unassigned default-ignorables
    ];
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let code = u32::from(c);
    c.is_control() || FORMAT.iter().chain(BLANK).any(|&(low, high)| (low..=high).contains(&code))
}

pub fn token_lifetime(secs: Option<i32>, max: i64) -> Result<(), RegistryError> {
    match secs {
        Some(s) if s < 30 || i64::from(s) > max => {
            Err(invalid("token_lifetime_secs", format!("must be between 30 and {max} seconds")))
        }
        _ => Ok(()),
    }
}

/// Largest rate limit: beyond this a limit protects nothing, and a typo is likelier than intent.
pub const MAX_RATE_LIMIT_PER_MINUTE: i32 = 6_000_000;

pub fn rate_limit(per_minute: Option<i32>) -> Result<(), RegistryError> {
    match per_minute {
        Some(n) if !(1..=MAX_RATE_LIMIT_PER_MINUTE).contains(&n) => {
            Err(invalid("rate_limit_per_minute", format!("must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}")))
        }
        _ => Ok(()),
    }
}

/// For `Option<Option<T>>` fields of partial updates, with `#[serde(default, deserialize_with = ...)]`: an
/// absent field is `None` (keep), `null` is `Some(None)` (clear), a value is `Some(Some(v))`. Plain serde
/// reads `null` as `None`, which made clearing impossible.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Sorts and removes duplicates after checking each entry.
pub fn list(values: &[String], check: fn(&str) -> Result<(), RegistryError>) -> Result<Vec<String>, RegistryError> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        check(value)?;
        out.push(value.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(partner_id("acme-eu").is_ok());
        assert!(partner_id("Acme").is_err() && partner_id("a").is_err() && partner_id("-acme").is_err());
        assert!(scope_name("orders.read").is_ok() && scope_name("authz.clients.write").is_ok());
        assert!(scope_name("orders").is_err() && scope_name("orders.").is_err() && scope_name("Orders.read").is_err());
        assert!(role_name("inventory-feed").is_ok() && role_name("9x").is_err());
        assert!(audience("https://api.example.com").is_ok() && audience("a b").is_err() && audience("").is_err());
        for bad in ["", "\0", "acme\0", "ac\u{1}me", "acme\n", "\u{7f}", "acme\u{9b}"] {
            assert!(!is_partner_id(bad) && !is_client_id(bad) && !is_key(bad) && !is_event_type(bad), "{bad:?}");
            assert!(!is_scope_name(bad) && !is_role_name(bad), "{bad:?}");
            assert!(matches!(lookup("client", bad, is_client_id), Err(RegistryError::NotFound { .. })));
            assert!(matches!(filter("cursor", Some(bad), is_key), Err(RegistryError::Invalid { .. })));
        }
        assert!(is_client_id("pgc_0123456789abcdefghijABCD") && is_key("pgk_x") && is_event_type("token.request"));
        assert!(filter("cursor", None, is_key).is_ok());
        assert!(
            text("name", "ok", 1, 10).is_ok()
                && text("name", "", 1, 10).is_err()
                && text("name", "a\nb", 1, 10).is_err()
        );
    }

    #[test]
    fn invisible_characters_are_refused_and_every_script_accepted() {
        for bad in ["a\u{202E}b", "a\u{2066}b", "a\u{200B}b", "a\u{200D}b", "\u{FEFF}a", "a\u{2028}b", "a\u{2029}b"] {
            let err = text("name", bad, 1, 100).unwrap_err().to_string();
            assert!(err.contains("U+"), "{bad:?}: {err}");
        }
        for bad in ["a\u{00AD}b", "a\u{E0041}b", "a\u{7F}b", "a\u{85}b", "a\tb"] {
            assert!(text("name", bad, 1, 100).is_err(), "{bad:?}");
        }
        for bad in ["\u{3164}", "a\u{3164}b", "\u{2800}", "a\u{115F}", "\u{1160}", "\u{FFA0}", "a\u{034F}b", "\u{17B4}"]
        {
            assert!(text("name", bad, 1, 100).unwrap_err().to_string().contains("U+"), "{bad:?}");
        }
        for bad in ["a\u{17B5}", "a\u{1D159}", "a\u{E0000}", "a\u{180E}"] {
            assert!(text("name", bad, 1, 100).is_err(), "{bad:?}");
        }
        for blank in [" ", "\u{3000}", " \u{A0} ", "\u{2003}"] {
            assert!(text("name", blank, 1, 100).unwrap_err().to_string().contains("blank"), "{blank:?}");
        }
        assert!(text("description", "", 0, 100).is_ok() && text("name", "a b", 1, 100).is_ok());
        for good in [
            "⠁⠉⠍⠑",
            "주식회사 애크미",
            "❤\u{FE0F}",
            "葛\u{E0100}",
            "株式会社アクメ",
            "شركة أكمي",
            "Акме Трейдинг",
            "Ärger & Söhne",
            "ACME 🚀",
            "עברית",
            "एक्मे",
        ] {
            assert!(text("name", good, 1, 100).is_ok(), "{good}");
        }
    }
}
