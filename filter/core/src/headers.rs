//! The header plan toward the upstream: every identity header the client sent is removed (Envoy
//! matches names case-insensitively), then the verified ones are set. The client's cookie header
//! loses the filter's own cookies.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::session::Session;

/// Identity headers this filter owns. Removed from every request, signed in or not, so a client
/// can never spoof them.
pub const IDENTITY_HEADERS: &[&str] = &[
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
    "x-auth-request-access-token",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
];

/// What happens to the request's `Cookie` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieRewrite {
    Keep,
    Remove,
    Replace(String),
}

/// The headers to change before the request goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPlan {
    /// Shared, computed once from the configuration.
    pub remove: Arc<[String]>,
    pub set: Vec<(Cow<'static, str>, String)>,
    pub cookie: CookieRewrite,
}

impl HeaderPlan {
    /// Whether the plan removes this header.
    pub fn removes(&self, name: &str) -> bool {
        self.remove.iter().any(|h| h == name)
    }

    /// The value the plan sets for a header.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.set
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The headers set, as pairs.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.set
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect()
    }
}

/// A header value from an IdP claim, with control characters (CR, LF, NUL, …) replaced so a
/// claim can never split or end a header.
fn header_value(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The headers removed from requests, computed once: the identity set and every
/// `claim_headers` name; `authorization` too when this filter sets it, except on bearer
/// requests, which keep their own.
#[derive(Debug, Clone)]
pub struct Removals {
    all: Arc<[String]>,
    bearer: Arc<[String]>,
}

impl Removals {
    pub fn new(config: &Config) -> Self {
        let mut bearer: Vec<String> = IDENTITY_HEADERS.iter().map(|h| h.to_string()).collect();
        bearer.extend(config.claim_headers.iter().map(|(h, _)| h.clone()));
        let mut all = bearer.clone();
        if config.set_authorization_header {
            all.push("authorization".into());
        }
        Self {
            all: all.into(),
            bearer: bearer.into(),
        }
    }
}

/// Who the request is from, as the headers need it: a session or a verified bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    pub user: &'a str,
    pub email: &'a str,
    pub groups: &'a [String],
    pub preferred_username: &'a str,
    pub claims: &'a BTreeMap<String, String>,
    pub id_token: Option<&'a str>,
    pub access_token: Option<&'a str>,
    /// A bearer request keeps its own `Authorization` header.
    pub bearer: bool,
}

impl<'a> From<&'a Session> for Principal<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            user: &s.user,
            email: &s.email,
            groups: &s.groups,
            preferred_username: &s.preferred_username,
            claims: &s.claims,
            id_token: s.id_token.as_deref(),
            access_token: s.access_token.as_deref(),
            bearer: false,
        }
    }
}

/// The plan for a signed-in request.
pub fn plan_identity(
    config: &Config,
    removals: &Removals,
    who: Principal<'_>,
    cookie: CookieRewrite,
) -> HeaderPlan {
    let mut set: Vec<(Cow<'static, str>, String)> = Vec::new();
    let mut put =
        |name: &'static str, value: &str| set.push((Cow::Borrowed(name), header_value(value)));
    let user = if config.prefer_email_to_user && !who.email.is_empty() {
        who.email
    } else {
        who.user
    };
    let groups = who.groups.join(",");
    let headers = [
        (
            config.set_xauthrequest,
            [
                "x-auth-request-user",
                "x-auth-request-email",
                "x-auth-request-groups",
                "x-auth-request-preferred-username",
            ],
        ),
        (
            config.pass_user_headers,
            [
                "x-forwarded-user",
                "x-forwarded-email",
                "x-forwarded-groups",
                "x-forwarded-preferred-username",
            ],
        ),
    ];
    for (on, [user_h, email_h, groups_h, username_h]) in headers {
        if !on {
            continue;
        }
        put(user_h, user);
        for (name, value) in [
            (email_h, who.email),
            (groups_h, groups.as_str()),
            (username_h, who.preferred_username),
        ] {
            if !value.is_empty() {
                put(name, value);
            }
        }
    }
    if config.pass_access_token {
        if let Some(at) = who.access_token {
            put("x-auth-request-access-token", at);
        }
    }
    for (header, claim) in &config.claim_headers {
        if let Some(v) = who.claims.get(claim) {
            set.push((Cow::Owned(header.clone()), header_value(v)));
        }
    }
    let remove = if who.bearer {
        removals.bearer.clone()
    } else {
        if config.set_authorization_header {
            if let Some(id) = who.id_token {
                set.push((
                    Cow::Borrowed("authorization"),
                    format!("Bearer {}", header_value(id)),
                ));
            }
        }
        removals.all.clone()
    };
    HeaderPlan {
        remove,
        set,
        cookie,
    }
}

/// The plan for a request that passes without a session (public route, CORS preflight).
pub fn plan_anonymous(removals: &Removals, cookie: CookieRewrite) -> HeaderPlan {
    HeaderPlan {
        remove: removals.all.clone(),
        set: Vec::new(),
        cookie,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{minimal, parse};
    use crate::session::tests::alice;
    use serde_json::json;

    #[test]
    fn identity_headers_are_always_removed_and_verified_ones_set() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let plan = plan_identity(
            &cfg,
            &Removals::new(&cfg),
            (&alice(0)).into(),
            CookieRewrite::Remove,
        );
        for h in IDENTITY_HEADERS {
            assert!(plan.removes(h), "{h}");
        }
        assert!(!plan.removes("authorization"));
        assert_eq!(
            plan.pairs(),
            vec![
                ("x-auth-request-user", "00u-alice"),
                ("x-auth-request-email", "alice@example.com"),
                ("x-auth-request-groups", "admins,everyone"),
                ("x-auth-request-preferred-username", "alice"),
            ]
        );
        let anon = plan_anonymous(&Removals::new(&cfg), CookieRewrite::Keep);
        assert_eq!(anon.remove, plan.remove);
        assert!(anon.set.is_empty());
    }

    #[test]
    fn tokens_only_when_asked() {
        let mut v = minimal();
        v["set_xauthrequest"] = json!(false);
        v["pass_access_token"] = json!(true);
        v["set_authorization_header"] = json!(true);
        let Ok(cfg) = parse(&v) else { unreachable!() };
        let mut s = alice(0);
        s.id_token = Some("id.tok.en".into());
        s.access_token = Some("acc".into());
        let plan = plan_identity(&cfg, &Removals::new(&cfg), (&s).into(), CookieRewrite::Keep);
        assert!(plan.removes("authorization"));
        assert_eq!(
            plan.pairs(),
            vec![
                ("x-auth-request-access-token", "acc"),
                ("authorization", "Bearer id.tok.en"),
            ]
        );
    }

    #[test]
    fn claims_cannot_inject_header_lines() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let mut s = alice(0);
        s.preferred_username = "alice\r\nx-admin: 1".into();
        let plan = plan_identity(&cfg, &Removals::new(&cfg), (&s).into(), CookieRewrite::Keep);
        assert!(plan.set.iter().all(|(_, v)| !v.contains(['\r', '\n'])));
    }
}

#[cfg(test)]
mod claim_header_tests {
    use super::*;
    use crate::config::tests::{minimal, parse};
    use crate::session::tests::alice;
    use serde_json::json;

    #[test]
    fn user_headers_claim_headers_and_prefer_email() {
        let mut v = minimal();
        v["pass_user_headers"] = json!(true);
        v["prefer_email_to_user"] = json!(true);
        v["claim_headers"] = json!({"X-WEBAUTH-ROLE": "role", "X-Team": "team"});
        let Ok(cfg) = parse(&v) else { unreachable!() };
        let mut s = alice(0);
        s.claims.insert("role".into(), "Admin".into());
        let plan = plan_identity(&cfg, &Removals::new(&cfg), (&s).into(), CookieRewrite::Keep);
        let get = |h: &str| plan.value(h);
        assert_eq!(get("x-auth-request-user"), Some("alice@example.com"));
        assert_eq!(get("x-forwarded-user"), Some("alice@example.com"));
        assert_eq!(get("x-forwarded-groups"), Some("admins,everyone"));
        assert_eq!(get("x-webauth-role"), Some("Admin"));
        assert_eq!(
            get("x-team"),
            None,
            "a claim the token did not have sets nothing"
        );
        assert!(
            plan.removes("x-webauth-role") && plan.removes("x-team"),
            "claim headers are stripped from clients"
        );
    }
}
