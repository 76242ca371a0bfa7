//! Rules on any claim: `allowed_claims` (`{claim, any_of}` / `{claim, all_of}`, every rule must
//! hold) and OAuth2-Proxy's `allowed_roles` (Keycloak's realm roles, and `client:role` for a
//! client's roles), at the top level and in policies. A rule is checked against the values the
//! session or bearer token recorded for its claim paths, on every request.

use std::sync::Arc;

use serde::Deserialize;

use crate::claims::ClaimPath;
use crate::identity::RuleClaims;

/// Where Keycloak puts realm roles and a client's roles (`resource_access.<client>.roles`).
const REALM_ROLES: &str = "realm_access.roles";

/// An `allowed_claims` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawClaimRule {
    /// A claim name or dotted path (`realm_access.roles`).
    claim: String,
    /// The claim must hold at least one of these values.
    #[serde(default)]
    any_of: Option<Vec<String>>,
    /// The claim must hold every one of these values.
    #[serde(default)]
    all_of: Option<Vec<String>>,
}

/// One compiled rule: values wanted at claim paths, one of them or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// Where it is configured (`allowed_claims[0]`, `policies[2].allowed_roles`): what a
    /// denial names, never the claim's values.
    pub name: Arc<str>,
    all: bool,
    wants: Vec<(ClaimPath, String)>,
}

impl ClaimRule {
    /// Whether the recorded values satisfy the rule. A string claim counts as a list of one.
    pub fn holds(&self, values: &RuleClaims) -> bool {
        let has = |(path, want): &(ClaimPath, String)| {
            values
                .get(path.as_str())
                .is_some_and(|got| got.iter().any(|g| g == want))
        };
        match self.all {
            true => self.wants.iter().all(has),
            false => self.wants.iter().any(has),
        }
    }

    /// The claim paths the rule reads.
    pub fn paths(&self) -> impl Iterator<Item = &ClaimPath> {
        self.wants.iter().map(|(p, _)| p)
    }
}

/// `allowed_claims` at `at` (`allowed_claims` or `policies[i].allowed_claims`): the rules, or
/// each problem.
pub fn compile_claims(raw: Vec<RawClaimRule>, at: &str) -> Result<Vec<ClaimRule>, Vec<String>> {
    let mut problems = Vec::new();
    let mut rules = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let name = format!("{at}[{i}]");
        let path = ClaimPath::parse(&r.claim).map_err(|e| format!("{name}: claim {e}"));
        let (all, values) = match (r.any_of, r.all_of) {
            (Some(v), None) => (false, v),
            (None, Some(v)) => (true, v),
            _ => {
                problems.push(format!("{name}: give either any_of or all_of (one list)"));
                continue;
            }
        };
        match path {
            Err(e) => problems.push(e),
            Ok(_) if values.is_empty() || values.iter().any(String::is_empty) => problems.push(
                format!("{name}: the list of values is empty or holds an empty value"),
            ),
            Ok(path) => rules.push(ClaimRule {
                name: name.into(),
                all,
                wants: values.into_iter().map(|v| (path.clone(), v)).collect(),
            }),
        }
    }
    match problems.is_empty() {
        true => Ok(rules),
        false => Err(problems),
    }
}

/// `allowed_roles` at `at`: one of the roles is needed; `role` is a realm role
/// (`realm_access.roles`), `client:role` a role of that client (`resource_access.client.roles`),
/// as OAuth2-Proxy's Keycloak provider reads them. An empty list is no rule.
pub fn compile_roles(roles: Vec<String>, at: &str) -> Result<Option<ClaimRule>, String> {
    let mut wants = Vec::new();
    for role in roles {
        let (path, value) = match role.split_once(':') {
            Some((client, r)) if !client.is_empty() && !r.is_empty() => {
                (format!("resource_access.{client}.roles"), r.to_string())
            }
            None if !role.is_empty() => (REALM_ROLES.to_string(), role),
            _ => return Err(format!("{role:?} must be \"role\" or \"client:role\"")),
        };
        wants.push((ClaimPath::parse(&path)?, value));
    }
    Ok((!wants.is_empty()).then(|| ClaimRule {
        name: at.into(),
        all: false,
        wants,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: serde_json::Value) -> RuleClaims {
        serde_json::from_value(v).unwrap_or_default()
    }

    fn raw(v: serde_json::Value) -> Vec<RawClaimRule> {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn any_of_needs_one_value_and_all_of_every_value() {
        let rules = compile_claims(
            raw(json!([
                {"claim": "realm_access.roles", "any_of": ["admin", "ops"]},
                {"claim": "tier", "all_of": ["gold", "eu"]}
            ])),
            "allowed_claims",
        )
        .unwrap_or_default();
        let (any, all) = (&rules[0], &rules[1]);
        assert_eq!(
            (&*any.name, &*all.name),
            ("allowed_claims[0]", "allowed_claims[1]")
        );
        let got =
            claims(json!({"realm_access.roles": ["user", "ops"], "tier": ["eu", "gold", "x"]}));
        assert!(any.holds(&got) && all.holds(&got));
        let got = claims(json!({"realm_access.roles": ["user"], "tier": ["gold"]}));
        assert!(!any.holds(&got) && !all.holds(&got));
        assert!(
            !any.holds(&RuleClaims::new()),
            "a missing claim holds nothing"
        );
    }

    #[test]
    fn roles_are_realm_roles_or_client_roles() {
        let rule = compile_roles(
            vec!["admin".into(), "my.app:editor".into()],
            "allowed_roles",
        );
        let Ok(Some(rule)) = rule else {
            unreachable!("{rule:?}")
        };
        let realm = claims(json!({"realm_access.roles": ["admin"]}));
        let client = claims(json!({"resource_access.my.app.roles": ["editor"]}));
        let other = claims(
            json!({"realm_access.roles": ["editor"], "resource_access.my.app.roles": ["admin"]}),
        );
        assert!(rule.holds(&realm) && rule.holds(&client) && !rule.holds(&other));
        assert_eq!(compile_roles(Vec::new(), "allowed_roles"), Ok(None));
        for bad in ["", ":x", "app:"] {
            assert!(compile_roles(vec![bad.into()], "r").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_rules_are_refused_with_their_index() {
        let bad = json!([
            {"claim": "roles", "any_of": ["a"], "all_of": ["b"]},
            {"claim": "roles"},
            {"claim": "a..b", "any_of": ["x"]},
            {"claim": "roles", "any_of": []},
            {"claim": "roles", "all_of": [""]}
        ]);
        let Err(problems) = compile_claims(raw(bad), "policies[1].allowed_claims") else {
            unreachable!()
        };
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].starts_with("policies[1].allowed_claims[0]: give either"));
        assert!(
            problems[2].contains("empty name between dots"),
            "{problems:?}"
        );
        let unknown = serde_json::from_value::<Vec<RawClaimRule>>(
            json!([{"claim": "roles", "none_of": ["a"]}]),
        );
        assert!(unknown.is_err());
    }
}
