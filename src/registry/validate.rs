//! Input rules shared by every registry entry point (CLI and admin API alike).

use super::RegistryError;

fn invalid(field: &'static str, message: impl Into<String>) -> RegistryError {
    RegistryError::Invalid { field, message: message.into() }
}

/// Partner ids: lowercase slug, 2 to 63 characters, starting with a letter or digit (`acme`, `acme-eu`).
pub fn partner_id(id: &str) -> Result<(), RegistryError> {
    let ok = (2..=63).contains(&id.len())
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid("id", "partner ids are 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit"))
    }
}

/// Operator-chosen client ids: 3 to 64 visible ASCII characters. Characters such as `:` `+` `@` `%` are
/// allowed (ids from other systems have them); clients form-encode them in HTTP Basic (RFC 6749 2.3.1).
pub fn client_id(id: &str) -> Result<(), RegistryError> {
    if (3..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid("client_id", "client ids are 3-64 visible ASCII characters, no spaces"))
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

/// Audiences: 1 to 512 visible ASCII characters, no spaces (usually an absolute URI).
pub fn audience(value: &str) -> Result<(), RegistryError> {
    if (1..=512).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(invalid("audiences", format!("{value:?} is not an audience (1-512 visible ASCII characters)")))
    }
}

/// Human-readable names and descriptions.
pub fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), RegistryError> {
    let count = value.chars().count();
    if count < min || count > max {
        return Err(invalid(field, format!("must be {min} to {max} characters")));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

pub fn token_lifetime(secs: Option<i32>, max: i64) -> Result<(), RegistryError> {
    match secs {
        Some(s) if s < 30 || i64::from(s) > max => {
            Err(invalid("token_lifetime_secs", format!("must be between 30 and {max} seconds")))
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
        assert!(
            text("name", "ok", 1, 10).is_ok()
                && text("name", "", 1, 10).is_err()
                && text("name", "a\nb", 1, 10).is_err()
        );
    }
}
