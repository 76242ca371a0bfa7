//! Who may pass where. `policies` pick rules by host and path prefix (first match wins, no match:
//! the top-level options); the rules (`email_domains`, `allowed_emails`, `allowed_groups`,
//! `allowed_claims`, `allowed_roles`) are checked on every request against the session or bearer
//! token, so a change applies at once.

use std::sync::Arc;

use serde::Deserialize;

use crate::claim_rules::{compile_claims, compile_roles, ClaimRule, RawClaimRule};
use crate::claims::ClaimPath;
use crate::cookies::host_without_port;
use crate::identity::RuleClaims;

/// Why a signed-in user is refused. The status is 403; the session is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    EmailDomain,
    Email,
    Group,
    /// An `allowed_claims` or `allowed_roles` rule, by where it is configured.
    Claim(Arc<str>),
}

impl Denial {
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmailDomain => "email_domain_not_allowed",
            Self::Email => "email_not_allowed",
            Self::Group => "group_not_allowed",
            Self::Claim(_) => "claim_not_allowed",
        }
    }
}

/// Who a rule is checked against: a session's or a bearer token's identity.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub email: &'a str,
    pub groups: &'a [String],
    /// The values of the claims the rules read.
    pub claims: &'a RuleClaims,
}

/// The rules of one place (a policy, or the top level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `*`, `example.com`, `*.example.com` / `.example.com` (lower case).
    pub email_domains: Vec<String>,
    /// When not empty, only these emails (lower case) pass; replaces the domain check.
    pub allowed_emails: Vec<String>,
    /// When not empty, one of these groups is needed.
    pub allowed_groups: Vec<String>,
    /// `allowed_claims`: each must hold.
    pub claims: Vec<ClaimRule>,
    /// `allowed_roles`: one of the roles is needed.
    pub roles: Option<ClaimRule>,
    /// The provider whose sessions and tokens count here (its position; 0: `default`).
    pub provider: usize,
}

/// `*` allows any email; `example.com` exactly that domain; `*.example.com` or `.example.com`
/// its subdomains. Comparison ignores case.
pub fn email_domain_allowed(domains: &[String], email: &str) -> bool {
    if domains.iter().any(|d| d == "*") {
        return true;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || domain.is_empty() {
        return false;
    }
    let domain = domain.to_ascii_lowercase();
    domains.iter().any(|allowed| {
        match allowed
            .strip_prefix("*.")
            .or_else(|| allowed.strip_prefix('.'))
        {
            Some(parent) => domain.ends_with(&format!(".{parent}")),
            None => domain == *allowed,
        }
    })
}

/// No `allowed_groups` allows everyone; otherwise one shared group is enough.
pub fn groups_allowed(allowed: &[String], groups: &[String]) -> bool {
    allowed.is_empty() || groups.iter().any(|g| allowed.contains(g))
}

impl Rules {
    /// Rules that only restrict email domains (`*`: anyone).
    pub fn domains(email_domains: Vec<String>) -> Self {
        Self {
            email_domains,
            allowed_emails: Vec::new(),
            allowed_groups: Vec::new(),
            claims: Vec::new(),
            roles: None,
            provider: 0,
        }
    }

    pub fn authorize(&self, who: &Subject<'_>) -> Result<(), Denial> {
        if self.allowed_emails.is_empty() {
            if !email_domain_allowed(&self.email_domains, who.email) {
                return Err(Denial::EmailDomain);
            }
        } else if !self
            .allowed_emails
            .iter()
            .any(|e| e.eq_ignore_ascii_case(who.email))
        {
            return Err(Denial::Email);
        }
        if !groups_allowed(&self.allowed_groups, who.groups) {
            return Err(Denial::Group);
        }
        match self
            .claims
            .iter()
            .chain(&self.roles)
            .find(|r| !r.holds(who.claims))
        {
            Some(failed) => Err(Denial::Claim(failed.name.clone())),
            None => Ok(()),
        }
    }

    fn claim_paths(&self) -> impl Iterator<Item = &ClaimPath> {
        self.claims
            .iter()
            .chain(&self.roles)
            .flat_map(|r| r.paths())
    }
}

/// What applies where a request lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access<'a> {
    /// `skip_auth: true`: public.
    Public,
    Rules(RuleSet<'a>),
}

/// The rules a request must satisfy: usually one place's, but every place a reading of its path
/// falls under when servers may read the path differently (see `routes::readings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet<'a> {
    first: &'a Rules,
    more: Vec<&'a Rules>,
}

impl<'a> RuleSet<'a> {
    pub fn one(rules: &'a Rules) -> Self {
        Self {
            first: rules,
            more: Vec::new(),
        }
    }

    fn add(&mut self, rules: &'a Rules) {
        let known =
            std::ptr::eq(self.first, rules) || self.more.iter().any(|r| std::ptr::eq(*r, rules));
        if !known {
            self.more.push(rules);
        }
    }

    /// The first denial among the places, or `Ok` when every one allows the user.
    pub fn authorize(&self, who: &Subject<'_>) -> Result<(), Denial> {
        std::iter::once(self.first)
            .chain(self.more.iter().copied())
            .try_for_each(|r| r.authorize(who))
    }

    /// The one provider of every place, or `None` when readings of the path fall under places
    /// of different providers (a request must never choose its provider by how it spells a path).
    pub fn provider(&self) -> Option<usize> {
        let p = self.first.provider;
        self.more.iter().all(|r| r.provider == p).then_some(p)
    }

    /// How many places' rules apply.
    pub fn len(&self) -> usize {
        self.more.len().saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A `policies` entry as written.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    hosts: Vec<String>,
    #[serde(default)]
    path_prefix: Option<String>,
    #[serde(default)]
    skip_auth: bool,
    #[serde(default)]
    email_domains: Option<Vec<String>>,
    #[serde(default)]
    allowed_emails: Option<Vec<String>>,
    #[serde(default)]
    allowed_groups: Option<Vec<String>>,
    /// Rules on any claim; each must hold (replaces the top-level `allowed_claims`).
    #[serde(default)]
    allowed_claims: Option<Vec<RawClaimRule>>,
    /// One of these Keycloak roles (`role`, `client:role`) is needed.
    #[serde(default)]
    allowed_roles: Option<Vec<String>>,
    /// The `id` of the provider whose sessions count here (default: `default`).
    #[serde(default)]
    provider: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Suffix(String),
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(h) => host == h,
            Self::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

#[derive(Debug, Clone)]
struct Policy {
    hosts: Vec<HostPattern>,
    path_prefix: Option<String>,
    skip_auth: bool,
    rules: Rules,
}

/// The compiled policies and the top-level rules.
#[derive(Debug, Clone)]
pub struct Policies {
    policies: Vec<Policy>,
    default: Rules,
    /// Every claim path a rule reads, each once: what sessions and bearer tokens record.
    claim_paths: Vec<ClaimPath>,
}

/// Normalizes email domains, and says which are invalid.
pub fn email_domains(list: Vec<String>) -> Result<Vec<String>, String> {
    let list: Vec<String> = list
        .into_iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if list.is_empty() {
        return Err(
            "is empty, which would refuse everybody; use [\"*\"] to allow any domain".into(),
        );
    }
    match list.iter().find(|d| d.is_empty() || d.contains('@')) {
        Some(bad) => Err(format!(
            "{bad:?} must be a domain such as \"example.com\", \"*.example.com\" or \"*\""
        )),
        None => Ok(list),
    }
}

/// A policy's `hosts`, each an exact name or a `*.domain` wildcard.
fn host_patterns(hosts: &[String], fail: &mut impl FnMut(String)) -> Vec<HostPattern> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    hosts
        .iter()
        .filter_map(|h| {
            let h = h.trim().to_ascii_lowercase();
            match h.strip_prefix("*.") {
                Some(rest) if valid(rest) => Some(HostPattern::Suffix(format!(".{rest}"))),
                None if valid(&h) => Some(HostPattern::Exact(h)),
                _ => {
                    fail(format!("hosts: {h:?} is not a host name or \"*.domain\" wildcard (no ports, no other wildcards)"));
                    None
                }
            }
        })
        .collect()
}

/// The position of the provider a policy names (0, `default`, when it names none).
fn provider_index(id: Option<&str>, providers: &[&str], fail: &mut impl FnMut(String)) -> usize {
    let Some(id) = id else { return 0 };
    providers.iter().position(|p| *p == id).unwrap_or_else(|| {
        fail(format!(
            "provider {id:?} is not a provider (known: {})",
            providers.join(", ")
        ));
        0
    })
}

impl Policy {
    /// One `policies` entry, at index `i`; fields it leaves out come from the top level.
    fn compile(
        i: usize,
        p: RawPolicy,
        default: &Rules,
        providers: &[&str],
        fail: &mut impl FnMut(String),
    ) -> Self {
        if p.hosts.is_empty() {
            fail(
                "hosts is empty; name at least one host (\"app.example.com\" or \"*.example.com\")"
                    .into(),
            );
        }
        let hosts = host_patterns(&p.hosts, fail);
        if let Some(prefix) = &p.path_prefix {
            if !prefix.starts_with('/') || prefix.contains(['?', '#']) {
                fail(format!(
                    "path_prefix {prefix:?} must start with '/' and hold no query"
                ));
            }
        }
        let rules_given = p.email_domains.is_some()
            || p.allowed_emails.is_some()
            || p.allowed_groups.is_some()
            || p.allowed_claims.is_some()
            || p.allowed_roles.is_some();
        if p.skip_auth && rules_given {
            fail("skip_auth: true makes the place public; remove email_domains, allowed_emails, allowed_groups, allowed_claims and allowed_roles, or skip_auth".into());
        }
        let provider = provider_index(p.provider.as_deref(), providers, fail);
        if p.skip_auth && p.provider.is_some() {
            fail("skip_auth: true makes the place public; a provider there is never asked".into());
        }
        let email_domains = match p.email_domains.map(email_domains) {
            None => default.email_domains.clone(),
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                fail(format!("email_domains {e}"));
                Vec::new()
            }
        };
        let claims = match p.allowed_claims {
            None => default.claims.clone(),
            Some(raw) => compile_claims(raw, &format!("policies[{i}].allowed_claims"))
                .unwrap_or_else(|problems| {
                    problems.into_iter().for_each(&mut *fail);
                    Vec::new()
                }),
        };
        let roles = match p.allowed_roles {
            None => default.roles.clone(),
            Some(raw) => compile_roles(raw, &format!("policies[{i}].allowed_roles"))
                .unwrap_or_else(|e| {
                    fail(format!("allowed_roles: {e}"));
                    None
                }),
        };
        Self {
            hosts,
            path_prefix: p.path_prefix,
            skip_auth: p.skip_auth,
            rules: Rules {
                email_domains,
                allowed_emails: p.allowed_emails.map_or_else(
                    || default.allowed_emails.clone(),
                    |v| {
                        v.into_iter()
                            .map(|e| e.trim().to_ascii_lowercase())
                            .collect()
                    },
                ),
                allowed_groups: p
                    .allowed_groups
                    .unwrap_or_else(|| default.allowed_groups.clone()),
                claims,
                roles,
                provider,
            },
        }
    }
}

impl Policies {
    /// Compiles `policies`; each problem is `(index, message)`. Fields a policy leaves out come
    /// from the top level.
    /// `providers` are the provider ids by position.
    pub fn compile(
        raw: Vec<RawPolicy>,
        default: Rules,
        providers: &[&str],
    ) -> Result<Self, Vec<(usize, String)>> {
        let mut problems = Vec::new();
        let mut policies = Vec::new();
        for (i, p) in raw.into_iter().enumerate() {
            let mut fail = |m: String| problems.push((i, m));
            policies.push(Policy::compile(i, p, &default, providers, &mut fail));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut claim_paths: Vec<ClaimPath> = std::iter::once(&default)
            .chain(policies.iter().map(|p| &p.rules))
            .flat_map(Rules::claim_paths)
            .cloned()
            .collect();
        claim_paths.sort();
        claim_paths.dedup();
        Ok(Self {
            policies,
            default,
            claim_paths,
        })
    }

    /// Every claim path a rule reads.
    pub fn claim_paths(&self) -> &[ClaimPath] {
        &self.claim_paths
    }

    /// Whether values recorded with a session hold every path the rules read now (a session
    /// from before a rule on a new claim was configured does not).
    pub fn records_every_claim(&self, recorded: &RuleClaims) -> bool {
        self.claim_paths
            .iter()
            .all(|p| recorded.contains_key(p.as_str()))
    }

    /// The provider at a host and path: the first policy that matches (exactly), else
    /// `default` (0). For the filter's endpoints, which create or clear sessions but admit
    /// nobody: who may pass is decided by `access`.
    pub fn provider_at(&self, authority: &str, path: &str) -> usize {
        let host = host_without_port(authority).to_ascii_lowercase();
        self.find(host.trim_end_matches('.'), path, true)
            .map_or(0, |p| p.rules.provider)
    }

    /// Whether any policy depends on the path.
    pub fn uses_paths(&self) -> bool {
        self.policies.iter().any(|p| p.path_prefix.is_some())
    }

    /// The policy a host and one reading of a path fall under: the first that matches, with
    /// path prefixes compared exactly (`exact`) or in any letter case (as IIS and other
    /// case-insensitive servers route).
    fn find(&self, host: &str, reading: &str, exact: bool) -> Option<&Policy> {
        self.policies.iter().find(|p| {
            p.hosts.iter().any(|h| h.matches(host))
                && p.path_prefix.as_deref().is_none_or(|prefix| {
                    let head = reading.get(..prefix.len());
                    match exact {
                        true => head == Some(prefix),
                        false => head.is_some_and(|h| h.eq_ignore_ascii_case(prefix)),
                    }
                })
        })
    }

    /// The access of a request to `authority`, given every reading of its path (without query;
    /// see `routes::readings`) and whether a skip route exempts each. Public only when every
    /// reading is public; otherwise the rules of every place a reading falls under.
    pub fn access(&self, authority: &str, readings: &[(&str, bool)]) -> Access<'_> {
        let host = host_without_port(authority).to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        let mut public = true;
        let mut rules: Option<RuleSet<'_>> = None;
        for (reading, skipped) in readings {
            let folds: &[bool] = if self.uses_paths() {
                &[true, false]
            } else {
                &[true]
            };
            for exact in folds {
                let found = self.find(host, reading, *exact);
                match found {
                    Some(p) if p.skip_auth => {}
                    other => {
                        let r = other.map_or(&self.default, |p| &p.rules);
                        match rules.as_mut() {
                            Some(set) => set.add(r),
                            None => rules = Some(RuleSet::one(r)),
                        }
                        // Case-folded matches only add rules; publicity is decided exactly.
                        if *exact && !skipped {
                            public = false;
                        }
                    }
                }
            }
        }
        match (public, rules) {
            (true, _) | (_, None) => Access::Public,
            (false, Some(set)) => Access::Rules(set),
        }
    }

    pub fn default_rules(&self) -> &Rules {
        &self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn rules(domains: &[&str], emails: &[&str], groups: &[&str]) -> Rules {
        Rules {
            allowed_emails: v(emails),
            allowed_groups: v(groups),
            ..Rules::domains(v(domains))
        }
    }

    fn compile(json: serde_json::Value) -> Result<Policies, Vec<(usize, String)>> {
        let raw: Vec<RawPolicy> = serde_json::from_value(json).unwrap_or_default();
        Policies::compile(raw, rules(&["*"], &[], &[]), &["default", "finance"])
    }

    #[test]
    fn email_domains_match_exactly_or_as_subdomains() {
        assert!(email_domain_allowed(&v(&["*"]), ""));
        let d = v(&["example.com", "*.corp.example"]);
        assert!(email_domain_allowed(&d, "alice@example.com"));
        assert!(email_domain_allowed(&d, "alice@EXAMPLE.com"));
        assert!(email_domain_allowed(&d, "bob@eu.corp.example"));
        assert!(!email_domain_allowed(&d, "bob@corp.example"));
        assert!(!email_domain_allowed(&d, "eve@example.com.evil.io"));
        assert!(!email_domain_allowed(&d, "eve@evilexample.com"));
        assert!(!email_domain_allowed(&d, "example.com"));
        assert!(!email_domain_allowed(&d, "@example.com"));
        assert!(!email_domain_allowed(&d, ""));
        assert!(email_domain_allowed(
            &v(&[".example.com"]),
            "a@x.example.com"
        ));
    }

    #[test]
    fn groups_need_one_in_common() {
        assert!(groups_allowed(&[], &[]));
        assert!(groups_allowed(&v(&["admins"]), &v(&["everyone", "admins"])));
        assert!(!groups_allowed(&v(&["admins"]), &v(&["everyone"])));
        assert!(!groups_allowed(&v(&["admins"]), &v(&["Admins"])));
        assert!(!groups_allowed(&v(&["admins"]), &[]));
    }

    fn who<'a>(email: &'a str, groups: &'a [String], claims: &'a RuleClaims) -> Subject<'a> {
        Subject {
            email,
            groups,
            claims,
        }
    }

    const NO_CLAIMS: &RuleClaims = &RuleClaims::new();

    #[test]
    fn allowed_emails_replace_the_domain_check() {
        let r = rules(&["*"], &["boss@example.com"], &[]);
        assert_eq!(
            r.authorize(&who("Boss@Example.com", &[], NO_CLAIMS)),
            Ok(())
        );
        assert_eq!(
            r.authorize(&who("alice@example.com", &[], NO_CLAIMS)),
            Err(Denial::Email)
        );
        let r = rules(&["example.com"], &[], &["admins"]);
        assert_eq!(
            r.authorize(&who("a@other.org", &v(&["admins"]), NO_CLAIMS)),
            Err(Denial::EmailDomain)
        );
        assert_eq!(
            r.authorize(&who("a@example.com", &v(&["users"]), NO_CLAIMS)),
            Err(Denial::Group)
        );
    }

    #[test]
    fn claim_rules_are_inherited_or_replaced_by_a_policy_and_a_denial_names_the_rule() {
        let top = compile_claims(
            serde_json::from_value(
                serde_json::json!([{"claim": "realm_access.roles", "any_of": ["staff"]}]),
            )
            .unwrap_or_default(),
            "allowed_claims",
        )
        .unwrap_or_default();
        let default = Rules {
            claims: top,
            ..rules(&["*"], &[], &[])
        };
        let p = Policies::compile(
            serde_json::from_value(serde_json::json!([
                {"hosts": ["admin.test"], "allowed_roles": ["admin", "app:owner"]},
                {"hosts": ["ops.test"], "allowed_claims": [{"claim": "tier", "all_of": ["gold"]}]},
                {"hosts": ["app.test"]},
            ]))
            .unwrap_or_default(),
            default,
            &["default"],
        )
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        let paths: Vec<&str> = p.claim_paths().iter().map(ClaimPath::as_str).collect();
        assert_eq!(
            paths,
            ["realm_access.roles", "resource_access.app.roles", "tier"]
        );
        let staff: RuleClaims = serde_json::from_value(serde_json::json!(
            {"realm_access.roles": ["staff"], "resource_access.app.roles": [], "tier": []}
        ))
        .unwrap_or_default();
        let verdict = |host: &str, claims: &RuleClaims| match access(&p, host, "/") {
            Access::Rules(set) => set.authorize(&who("a@x.io", &[], claims)),
            Access::Public => unreachable!(),
        };
        assert_eq!(verdict("app.test", &staff), Ok(()));
        assert_eq!(
            verdict("admin.test", &staff),
            Err(Denial::Claim("policies[0].allowed_roles".into()))
        );
        assert_eq!(
            verdict("ops.test", &staff),
            Err(Denial::Claim("policies[1].allowed_claims[0]".into()))
        );
        assert_eq!(
            verdict("app.test", NO_CLAIMS),
            Err(Denial::Claim("allowed_claims[0]".into()))
        );
        assert!(p.records_every_claim(&staff));
        assert!(!p.records_every_claim(NO_CLAIMS));
    }

    /// The access for a path read every way servers may read it, without skip routes.
    fn access<'p>(p: &'p Policies, host: &str, path: &str) -> Access<'p> {
        let readings = crate::routes::readings(path);
        let readings: Vec<(&str, bool)> = readings.iter().map(|r| (r.as_ref(), false)).collect();
        p.access(host, &readings)
    }

    /// The one place's rules an access names.
    fn only<'p>(a: Access<'p>) -> &'p Rules {
        match a {
            Access::Rules(set) if set.len() == 1 => set.first,
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn first_matching_policy_wins_by_host_wildcard_and_prefix() {
        let p = compile(serde_json::json!([
            {"hosts": ["grafana.example.test"], "path_prefix": "/public/", "skip_auth": true},
            {"hosts": ["grafana.example.test"], "allowed_groups": ["admins"]},
            {"hosts": ["*.example.test"], "email_domains": ["example.com"]},
            {"hosts": ["api.example.test"], "allowed_groups": ["never-reached"]},
        ]))
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(
            access(&p, "grafana.example.test:443", "/public/x.css"),
            Access::Public
        );
        let r = only(access(&p, "GRAFANA.example.test", "/d/1"));
        assert_eq!(r.allowed_groups, v(&["admins"]));
        assert_eq!(r.email_domains, v(&["*"]), "left out: the top level's");
        let r = only(access(&p, "wiki.example.test", "/"));
        assert_eq!(r.email_domains, v(&["example.com"]));
        let r = only(access(&p, "api.example.test", "/"));
        assert_eq!(
            r.email_domains,
            v(&["example.com"]),
            "the wildcard came first"
        );
        let r = only(access(&p, "example.test", "/"));
        assert_eq!(
            r,
            p.default_rules(),
            "*.example.test does not match example.test itself"
        );
        let r = only(access(&p, "evil-example.test", "/"));
        assert_eq!(r, p.default_rules());
        assert!(p.uses_paths());
    }

    #[test]
    fn a_path_servers_read_differently_gets_the_rules_of_every_reading() {
        let p = compile(serde_json::json!([
            {"hosts": ["app.test"], "path_prefix": "/public/", "skip_auth": true},
            {"hosts": ["app.test"], "path_prefix": "/admin", "allowed_groups": ["admins"]},
        ]))
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        let admin = |a: Access<'_>| match a {
            Access::Rules(set) => {
                set.authorize(&who("a@x.io", &v(&["everyone"]), NO_CLAIMS)) == Err(Denial::Group)
            }
            Access::Public => false,
        };
        for path in [
            "/admin/x",
            "/public/..;/admin",
            "/public/%2e%2e/admin",
            "/public/..%2fadmin",
            "/public/..\\admin",
            "/public/x/../../admin",
            "/ADMIN/x",
            "/Admin;jsessionid=1",
        ] {
            assert!(
                admin(access(&p, "app.test", path)),
                "{path} must need the admins group"
            );
        }
        assert_eq!(access(&p, "app.test", "/public/a;v=1"), Access::Public);
        assert_eq!(access(&p, "app.test", "/public/./a"), Access::Public);
        assert_ne!(
            access(&p, "app.test", "/PUBLIC/a"),
            Access::Public,
            "publicity is exact"
        );
        let rule_count = |path| match access(&p, "app.test", path) {
            Access::Rules(set) => set.len(),
            Access::Public => 0,
        };
        assert_eq!(rule_count("/public/..;/admin"), 1, "the admin policy's");
        assert_eq!(
            rule_count("/ADMIN/x"),
            2,
            "the top level's and the admin policy's"
        );
    }

    #[test]
    fn invalid_policies_are_refused_with_their_index() {
        let e = compile(serde_json::json!([
            {"hosts": []},
            {"hosts": ["a:8080", "*.*.x", "ok.example"]},
            {"hosts": ["a.example"], "path_prefix": "nope"},
            {"hosts": ["a.example"], "skip_auth": true, "allowed_groups": ["x"]},
            {"hosts": ["a.example"], "email_domains": []},
        ]))
        .err()
        .unwrap_or_default();
        let indexes: Vec<usize> = e.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, vec![0, 1, 1, 2, 3, 4], "{e:?}");
    }
}
