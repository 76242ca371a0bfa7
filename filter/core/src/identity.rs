//! Turning verified token claims into the identity the session or a bearer token carries: the
//! configured claims (`user_id_claim`, `oidc_email_claim`, `oidc_groups_claim`, each a name or a
//! dotted path), the values `claim_headers` sends and those `allowed_claims` rules compare.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::claims::{strings, ClaimPath};
use crate::config::ClaimNames;

/// The values of the claims the authorization rules read, by path (`allowed_claims`,
/// `allowed_roles`). A path the rules read that is missing from the token is recorded as no
/// values, so a session can tell "no such claim" from "not recorded".
pub type RuleClaims = BTreeMap<String, Vec<String>>;

/// The identity of a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub email: String,
    pub email_verified: Option<bool>,
    pub groups: Vec<String>,
    pub preferred_username: String,
}

fn string_claim(claims: &Map<String, Value>, subject: &str, name: &ClaimPath) -> Option<String> {
    if name.as_str() == "sub" {
        return Some(subject.to_string());
    }
    match name.find(claims)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `email_verified` is a boolean, though some providers send the string "true"/"false".
fn bool_claim(claims: &Map<String, Value>, name: &str) -> Option<bool> {
    match claims.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => Some(false),
    }
}

/// Groups come as a list of strings, or (some providers) one string.
fn groups_claim(claims: &Map<String, Value>, name: &ClaimPath) -> Vec<String> {
    match name.find(claims) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl Identity {
    pub fn from_claims(subject: &str, claims: &Map<String, Value>, names: &ClaimNames) -> Self {
        let email = string_claim(claims, subject, &names.email).unwrap_or_default();
        Self {
            user: string_claim(claims, subject, &names.user_id)
                .unwrap_or_else(|| subject.to_string()),
            email,
            email_verified: bool_claim(claims, "email_verified"),
            groups: groups_claim(claims, &names.groups),
            preferred_username: match claims.get("preferred_username") {
                Some(Value::String(s)) => s.clone(),
                _ => String::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> ClaimPath {
        ClaimPath::parse(p).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn names() -> ClaimNames {
        ClaimNames {
            email: path("email"),
            groups: path("groups"),
            user_id: path("sub"),
            userinfo: crate::config::UserInfoMode::WhenMissing,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reads_the_configured_claims() {
        let c = claims(
            json!({"email": "a@x.io", "email_verified": true, "groups": ["g1", 7, "g2"], "preferred_username": "a"}),
        );
        let id = Identity::from_claims("00u1", &c, &names());
        assert_eq!(id.user, "00u1");
        assert_eq!(id.email, "a@x.io");
        assert_eq!(id.email_verified, Some(true));
        assert_eq!(id.groups, vec!["g1", "g2"]);
        assert_eq!(id.preferred_username, "a");
        let custom = ClaimNames {
            email: path("upn"),
            groups: path("roles"),
            user_id: path("email"),
            userinfo: crate::config::UserInfoMode::WhenMissing,
        };
        let c = claims(json!({"upn": "b@x.io", "email": "e@x.io", "roles": "admin"}));
        let id = Identity::from_claims("00u2", &c, &custom);
        assert_eq!((id.user.as_str(), id.email.as_str()), ("e@x.io", "b@x.io"));
        assert_eq!(id.groups, vec!["admin"]);
    }

    #[test]
    fn email_verified_forms() {
        let v = |x: Value| {
            Identity::from_claims("s", &claims(json!({"email_verified": x})), &names())
                .email_verified
        };
        assert_eq!(v(json!(false)), Some(false));
        assert_eq!(v(json!("false")), Some(false));
        assert_eq!(v(json!("TRUE")), Some(true));
        assert_eq!(v(json!(0)), Some(false));
        assert_eq!(
            Identity::from_claims("s", &Map::new(), &names()).email_verified,
            None
        );
    }
}

/// The values of the claims named in `claim_headers`, rendered for a header: strings as they
/// are, numbers and booleans as text, lists of strings joined with commas. Other shapes are left
/// out. Kept by the claim's path as configured.
pub fn claim_values<'a>(
    claims: &Map<String, Value>,
    subject: &str,
    names: impl Iterator<Item = &'a ClaimPath>,
) -> BTreeMap<String, String> {
    names
        .filter_map(|name| {
            let value = match (name.as_str(), name.find(claims)) {
                ("sub", _) => subject.to_string(),
                (_, Some(Value::String(s))) => s.clone(),
                (_, Some(Value::Number(n))) => n.to_string(),
                (_, Some(Value::Bool(b))) => b.to_string(),
                (_, Some(Value::Array(items))) => {
                    let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                    strings?.join(",")
                }
                _ => return None,
            };
            Some((name.as_str().to_string(), value))
        })
        .collect()
}

/// What the configuration reads from a verified token: the identity's claims, the claims
/// `claim_headers` sends and the claims the authorization rules read.
#[derive(Debug, Clone, Copy)]
pub struct ClaimReading<'a> {
    pub names: &'a ClaimNames,
    pub headers: &'a [(String, ClaimPath)],
    pub rules: &'a [ClaimPath],
}

impl<'a> ClaimReading<'a> {
    /// Every claim path read from a token (`sub` aside, which is the token's subject).
    pub fn paths(&self) -> impl Iterator<Item = &'a ClaimPath> + 'a {
        let names = self.names;
        [&names.email, &names.groups, &names.user_id]
            .into_iter()
            .chain(self.headers.iter().map(|(_, p)| p))
            .chain(self.rules)
            .filter(|p| p.as_str() != "sub")
    }

    /// The header values and rule values of a token's claims.
    pub fn values(
        &self,
        subject: &str,
        claims: &Map<String, Value>,
    ) -> (BTreeMap<String, String>, RuleClaims) {
        (
            claim_values(claims, subject, self.headers.iter().map(|(_, c)| c)),
            rule_values(claims, subject, self.rules.iter()),
        )
    }
}

/// The values of the claims the authorization rules read (`sub` is the subject).
pub fn rule_values<'a>(
    claims: &Map<String, Value>,
    subject: &str,
    paths: impl Iterator<Item = &'a ClaimPath>,
) -> RuleClaims {
    paths
        .map(|p| {
            let values = match (p.as_str(), p.find(claims)) {
                ("sub", _) => vec![subject.to_string()],
                (_, Some(v)) => strings(v),
                (_, None) => Vec::new(),
            };
            (p.as_str().to_string(), values)
        })
        .collect()
}

#[cfg(test)]
mod claim_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_values_render_scalars_and_string_lists() {
        let c = json!({"team": "core", "level": 3, "admin": true, "roles": ["a", "b"], "mixed": ["a", 1], "obj": {}});
        let c = c.as_object().cloned().unwrap_or_default();
        let paths: Vec<ClaimPath> = [
            "team", "level", "admin", "roles", "mixed", "obj", "missing", "sub",
        ]
        .iter()
        .filter_map(|p| ClaimPath::parse(p).ok())
        .collect();
        let v = claim_values(&c, "00u1", paths.iter());
        let expected: Vec<(&str, &str)> = vec![
            ("admin", "true"),
            ("level", "3"),
            ("roles", "a,b"),
            ("sub", "00u1"),
            ("team", "core"),
        ];
        assert_eq!(
            v.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
            expected
        );
    }
}
