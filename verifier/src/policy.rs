//! Which scopes each route needs: method + route pattern (as the framework matched it, e.g. `/orders/{id}`)
//! → scopes, all of them required.

use std::collections::HashMap;

/// What a route asks of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// No token needed (health checks and the like).
    Public,
    /// A valid token holding every one of these scopes (none: any valid token).
    Scopes(Vec<String>),
    /// A valid token, and then refused: deny by default for a route without a rule.
    Denied,
}

/// A table of rules. Routes the framework did not match (no route pattern: the application's 404) need a
/// valid token and nothing more, so that an anonymous caller cannot map which routes exist.
#[derive(Debug, Clone, Default)]
pub struct RoutePolicy {
    /// Pattern → (upper-case method, requirement).
    rules: HashMap<String, Vec<(String, Requirement)>>,
    deny_by_default: bool,
}

impl RoutePolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// `method` (`GET`, `POST`, ...) on `pattern` needs all of `scopes` (empty: any valid token).
    pub fn route<I, S>(self, method: &str, pattern: &str, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes = scopes.into_iter().map(Into::into).collect();
        self.insert(method, pattern, Requirement::Scopes(scopes))
    }

    /// `method` on `pattern` needs no token at all.
    pub fn public(self, method: &str, pattern: &str) -> Self {
        self.insert(method, pattern, Requirement::Public)
    }

    fn insert(mut self, method: &str, pattern: &str, requirement: Requirement) -> Self {
        let method = method.to_ascii_uppercase();
        let rules = self.rules.entry(pattern.to_string()).or_default();
        rules.retain(|(m, _)| *m != method);
        rules.push((method, requirement));
        self
    }

    /// A matched route without a rule is refused (`403 insufficient_scope`) instead of allowed to any valid
    /// token.
    pub fn deny_by_default(mut self, deny: bool) -> Self {
        self.deny_by_default = deny;
        self
    }

    /// The requirement of a request to `method` on the matched `pattern` (`None`: no route matched).
    pub fn requirement(&self, method: &str, pattern: Option<&str>) -> &Requirement {
        static ANY_TOKEN: Requirement = Requirement::Scopes(Vec::new());
        let Some(pattern) = pattern else { return &ANY_TOKEN };
        let found = self
            .rules
            .get(pattern)
            .and_then(|rules| rules.iter().find(|(m, _)| m.eq_ignore_ascii_case(method)))
            .map(|(_, requirement)| requirement);
        match found {
            Some(requirement) => requirement,
            None if self.deny_by_default => &Requirement::Denied,
            None => &ANY_TOKEN,
        }
    }

    /// The scopes of `requirement` that `held` lacks (empty: allowed).
    pub fn missing<'a>(requirement: &'a Requirement, held: &[String]) -> Vec<&'a str> {
        match requirement {
            Requirement::Scopes(needed) => {
                needed.iter().filter(|s| !held.contains(s)).map(String::as_str).collect()
            }
            Requirement::Public | Requirement::Denied => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_scope_of_a_rule_is_required() {
        let policy = RoutePolicy::new().route("POST", "/orders/{id}", ["orders.write", "orders.read"]);
        let need = policy.requirement("post", Some("/orders/{id}"));
        assert_eq!(RoutePolicy::missing(need, &held(&["orders.read", "orders.write"])), Vec::<&str>::new());
        assert_eq!(RoutePolicy::missing(need, &held(&["orders.read"])), vec!["orders.write"]);
        assert_eq!(RoutePolicy::missing(need, &[]), vec!["orders.write", "orders.read"]);
    }

    #[test]
    fn methods_are_distinct_and_unruled_routes_follow_the_default() {
        let open = RoutePolicy::new().route("GET", "/orders", ["orders.read"]).public("GET", "/health");
        assert_eq!(open.requirement("GET", Some("/health")), &Requirement::Public);
        assert_eq!(open.requirement("DELETE", Some("/orders")), &Requirement::Scopes(vec![]));
        assert_eq!(open.requirement("GET", None), &Requirement::Scopes(vec![]));
        let closed = open.deny_by_default(true);
        assert_eq!(closed.requirement("DELETE", Some("/orders")), &Requirement::Denied);
        assert_eq!(closed.requirement("GET", Some("/orders")), &Requirement::Scopes(held(&["orders.read"])));
        // No route matched: a valid token, then the application's own 404.
        assert_eq!(closed.requirement("GET", None), &Requirement::Scopes(vec![]));
    }
}
