//! Claim paths: `oidc_email_claim`, `oidc_groups_claim`, `user_id_claim`, `claim_headers` and
//! `allowed_claims` name a claim at the top level of a token (`email`, or a namespaced
//! `https://example.com/roles`, whose dots are part of its name) or nested in objects with dots
//! (`realm_access.roles`, `resource_access.app.roles`); and what a claim's value counts as when
//! a rule compares it.

use serde_json::{Map, Value};

/// The most nested levels a path may name.
const MAX_SEGMENTS: usize = 16;
/// The longest path accepted.
const MAX_PATH: usize = 256;

/// A claim name or a dotted path into nested claims, as configured.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClaimPath(String);

impl ClaimPath {
    /// A path: non-empty segments separated by single dots.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err(
                "is empty; name a claim, or a dotted path such as \"realm_access.roles\"".into(),
            );
        }
        let segments = text.split('.').count();
        if text.len() > MAX_PATH || segments > MAX_SEGMENTS {
            return Err(format!(
                "{text:?} must be a claim name or a dotted path of at most {MAX_SEGMENTS} names"
            ));
        }
        if text.split('.').any(str::is_empty) {
            return Err(format!(
                "{text:?} has an empty name between dots (write \"realm_access.roles\")"
            ));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The claim's value in a token's claims. At each level the longest name that is present
    /// wins: the whole rest of the path first (a namespaced claim such as
    /// `https://example.com/roles` is one name), then shorter names that hold an object.
    pub fn find<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        find_in(claims, &self.0, MAX_SEGMENTS)
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn find_in<'a>(obj: &'a Map<String, Value>, path: &str, depth: usize) -> Option<&'a Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let depth = depth.checked_sub(1)?;
    path.rmatch_indices('.').find_map(|(i, _)| {
        let (head, tail) = (path.get(..i)?, path.get(i.checked_add(1)?..)?);
        match obj.get(head) {
            Some(Value::Object(inner)) => find_in(inner, tail, depth),
            _ => None,
        }
    })
}

/// A claim's value as the strings a rule compares: a string, a number or a boolean as its text;
/// a list as its strings, numbers and booleans (other items ignored); anything else as nothing.
pub fn strings(value: &Value) -> Vec<String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().filter_map(scalar).collect(),
        other => scalar(other).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(s: &str) -> ClaimPath {
        ClaimPath::parse(s).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn token() -> Map<String, Value> {
        json!({
            "email": "a@x.io",
            "realm_access": {"roles": ["admin", "user"]},
            "resource_access": {"my.app": {"roles": ["editor"]}, "other": {"roles": "viewer"}},
            "https://example.com/roles": ["ns-role"],
            "https://example.com": {"team": "core"},
            "flat.name": "flat",
            "level": 3
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn paths_find_top_level_nested_namespaced_and_dotted_names() {
        let t = token();
        let at = |p: &str| path(p).find(&t).cloned();
        assert_eq!(at("email"), Some(json!("a@x.io")));
        assert_eq!(at("realm_access.roles"), Some(json!(["admin", "user"])));
        assert_eq!(at("resource_access.my.app.roles"), Some(json!(["editor"])));
        assert_eq!(at("https://example.com/roles"), Some(json!(["ns-role"])));
        assert_eq!(at("https://example.com.team"), Some(json!("core")));
        assert_eq!(at("flat.name"), Some(json!("flat")));
        assert_eq!(at("realm_access.missing"), None);
        assert_eq!(at("email.domain"), None, "a string has no members");
        assert_eq!(at("level.x"), None);
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", ".roles", "realm_access.", "a..b"] {
            assert!(ClaimPath::parse(bad).is_err(), "{bad:?}");
        }
        let deep = vec!["a"; MAX_SEGMENTS + 1].join(".");
        assert!(ClaimPath::parse(&deep).is_err());
        assert!(ClaimPath::parse(&"x".repeat(MAX_PATH + 1)).is_err());
    }

    #[test]
    fn values_count_as_strings() {
        assert_eq!(strings(&json!("a")), vec!["a"]);
        assert_eq!(
            strings(&json!(["a", 1, true, {}, ["x"]])),
            vec!["a", "1", "true"]
        );
        assert_eq!(strings(&json!(7)), vec!["7"]);
        assert!(strings(&json!({"a": "b"})).is_empty());
        assert!(strings(&json!(null)).is_empty());
    }
}
