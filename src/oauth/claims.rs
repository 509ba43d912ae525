//! RFC 9068 access token claims.

use serde::{Deserialize, Serialize};

/// `aud` is a string for one audience and an array for several (RFC 7519 section 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut audiences: Vec<String>) -> Self {
        if audiences.len() == 1 {
            Audience::One(audiences.remove(0))
        } else {
            Audience::Many(audiences)
        }
    }

    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }

    pub fn joined(&self) -> String {
        match self {
            Audience::One(one) => one.clone(),
            Audience::Many(many) => many.join(" "),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: Audience,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub scope: String,
    pub partner_id: String,
    /// The secret the token was obtained with (an id, never the secret): a token obtained with a secret after
    /// its revocation, by an instance that had not heard of it yet, is refused wherever tokens are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_serializes_as_string_or_array() {
        assert_eq!(serde_json::to_value(Audience::from_list(vec!["a".into()])).unwrap(), serde_json::json!("a"));
        assert_eq!(
            serde_json::to_value(Audience::from_list(vec!["a".into(), "b".into()])).unwrap(),
            serde_json::json!(["a", "b"])
        );
    }

    #[test]
    fn claims_have_the_rfc9068_names() {
        let claims = AccessTokenClaims {
            iss: "https://issuer".into(),
            sub: "pgc_x".into(),
            client_id: "pgc_x".into(),
            aud: Audience::One("https://api".into()),
            iat: 10,
            nbf: 10,
            exp: 610,
            jti: "j".into(),
            scope: "a.read b.write".into(),
            partner_id: "acme".into(),
            secret_id: None,
        };
        let value = serde_json::to_value(&claims).unwrap();
        for name in ["iss", "sub", "client_id", "aud", "iat", "nbf", "exp", "jti", "scope", "partner_id"] {
            assert!(value.get(name).is_some(), "missing {name}");
        }
        assert_eq!(claims.scopes().collect::<Vec<_>>(), ["a.read", "b.write"]);
    }
}
