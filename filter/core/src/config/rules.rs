//! Who may pass where: the top-level authorization rules (`email_domains`, `allowed_emails`,
//! `allowed_groups`, `allowed_claims`, `allowed_roles`), the `policies` by host and path (compiled in `policy`), the routes that
//! need no login or get 401 instead of a redirect, and where redirects may go.

use serde::Deserialize;

use super::Check;
use crate::claim_rules::{compile_claims, compile_roles, RawClaimRule};
use crate::policy::{Policies, RawPolicy, Rules};
use crate::redirect::Whitelist;
use crate::routes::{RouteError, Routes};

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawRules {
    email_domains: Option<Vec<String>>,
    allowed_groups: Option<Vec<String>>,
    allowed_emails: Option<Vec<String>>,
    allowed_claims: Option<Vec<RawClaimRule>>,
    allowed_roles: Option<Vec<String>>,
    policies: Option<Vec<RawPolicy>>,
    whitelist_domains: Option<Vec<String>>,
    api_routes: Option<Vec<String>>,
    skip_auth_routes: Option<Vec<String>>,
    optional_auth_routes: Option<Vec<String>>,
    skip_auth_preflight: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct RuleSettings {
    /// `policies` and the top-level `email_domains`, `allowed_emails`, `allowed_groups`.
    pub policies: Policies,
    pub whitelist: Whitelist,
    pub routes: Routes,
    /// CORS preflights pass without a session (OAuth2-Proxy's `skip_auth_preflight`).
    pub skip_auth_preflight: bool,
}

/// `providers`: the provider ids in order (`default` first), which policies may name.
pub(super) fn build(raw: RawRules, providers: &[&str], check: &mut Check) -> Option<RuleSettings> {
    let email_domains = match crate::policy::email_domains(
        raw.email_domains.unwrap_or_else(|| vec!["*".to_string()]),
    ) {
        Ok(d) => d,
        Err(e) => {
            check.fail("email_domains", e);
            Vec::new()
        }
    };
    let claims = compile_claims(raw.allowed_claims.unwrap_or_default(), "allowed_claims")
        .unwrap_or_else(|problems| {
            problems
                .into_iter()
                .for_each(|p| check.fail("allowed_claims", p));
            Vec::new()
        });
    let roles = compile_roles(raw.allowed_roles.unwrap_or_default(), "allowed_roles")
        .unwrap_or_else(|e| {
            check.fail("allowed_roles", e);
            None
        });
    let default_rules = Rules {
        allowed_emails: raw
            .allowed_emails
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .collect(),
        allowed_groups: raw.allowed_groups.unwrap_or_default(),
        claims,
        roles,
        ..Rules::domains(email_domains)
    };
    let policies = Policies::compile(raw.policies.unwrap_or_default(), default_rules, providers)
        .map_err(|problems| {
            for (i, p) in problems {
                check.fail(&format!("policies[{i}]"), p);
            }
        })
        .ok();
    let whitelist = Whitelist::parse(&raw.whitelist_domains.unwrap_or_default())
        .map_err(|e| check.fail("whitelist_domains", e))
        .unwrap_or_default();
    let routes = Routes::parse(
        raw.api_routes.unwrap_or_default(),
        raw.skip_auth_routes.unwrap_or_default(),
        raw.optional_auth_routes.unwrap_or_default(),
    )
    .map_err(|errors| {
        for e in errors {
            match e {
                RouteError::Api(r) => check.fail("api_routes", r),
                RouteError::SkipAuth(r) => check.fail("skip_auth_routes", r),
                RouteError::OptionalAuth(r) => check.fail("optional_auth_routes", r),
            }
        }
    })
    .ok();
    Some(RuleSettings {
        policies: policies?,
        whitelist,
        routes: routes?,
        skip_auth_preflight: raw.skip_auth_preflight.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, problems, with};
    use serde_json::json;

    #[test]
    fn each_invalid_rule_is_reported_with_its_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "skip_auth_routes",
                json!(["GET=^/public/("]),
                "not a valid regular expression",
            ),
            ("api_routes", json!(["("]), "not a valid regular expression"),
            ("email_domains", json!([]), "refuse everybody"),
            ("whitelist_domains", json!(["a:b"]), "invalid port"),
            (
                "allowed_claims",
                json!([{"claim": "roles", "any_of": ["a"], "all_of": ["b"]}]),
                "allowed_claims[0]: give either any_of or all_of",
            ),
            (
                "allowed_claims",
                json!([{"claim": "realm_access..roles", "any_of": ["a"]}]),
                "empty name between dots",
            ),
            ("allowed_roles", json!(["app:"]), "\"client:role\""),
        ];
        assert_each_refused(&cases);
    }

    #[test]
    fn a_bad_policy_is_named_by_its_index() {
        let ps = problems(&with(
            "policies",
            json!([{"hosts": ["a.example"]}, {"hosts": []}]),
        ));
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].0, "policies[1]");
        assert!(ps[0].1.contains("hosts is empty"), "{ps:?}");
        let ps = problems(&with(
            "policies",
            json!([{"hosts": ["a.example"], "bogus": 1}]),
        ));
        assert!(
            ps[0].0.starts_with("policies") && ps[0].1.contains("unknown field `bogus`"),
            "{ps:?}"
        );
    }
}
