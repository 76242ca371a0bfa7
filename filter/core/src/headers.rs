//! The header plan toward the upstream: every identity header the client sent is removed (Envoy
//! matches names case-insensitively), then the verified ones are set. The client's cookie header
//! loses the filter's own cookies.

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
    pub remove: Vec<&'static str>,
    pub set: Vec<(&'static str, String)>,
    pub cookie: CookieRewrite,
}

/// A header value from an IdP claim, with control characters (CR, LF, NUL, …) replaced so a
/// claim can never split or end a header.
fn header_value(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Headers removed for everyone: the identity set, and `authorization` when this filter sets it.
pub fn removed(config: &Config) -> Vec<&'static str> {
    let mut remove = IDENTITY_HEADERS.to_vec();
    if config.set_authorization_header {
        remove.push("authorization");
    }
    remove
}

/// The plan for a signed-in request.
pub fn plan_identity(config: &Config, session: &Session, cookie: CookieRewrite) -> HeaderPlan {
    let mut set = Vec::new();
    if config.set_xauthrequest {
        set.push(("x-auth-request-user", header_value(&session.user)));
        if !session.email.is_empty() {
            set.push(("x-auth-request-email", header_value(&session.email)));
        }
        if !session.groups.is_empty() {
            set.push((
                "x-auth-request-groups",
                header_value(&session.groups.join(",")),
            ));
        }
        if !session.preferred_username.is_empty() {
            set.push((
                "x-auth-request-preferred-username",
                header_value(&session.preferred_username),
            ));
        }
    }
    if config.pass_access_token {
        if let Some(at) = &session.access_token {
            set.push(("x-auth-request-access-token", header_value(at)));
        }
    }
    if config.set_authorization_header {
        if let Some(id) = &session.id_token {
            set.push(("authorization", format!("Bearer {}", header_value(id))));
        }
    }
    HeaderPlan {
        remove: removed(config),
        set,
        cookie,
    }
}

/// The plan for a request that passes without a session (public route, CORS preflight).
pub fn plan_anonymous(config: &Config, cookie: CookieRewrite) -> HeaderPlan {
    HeaderPlan {
        remove: removed(config),
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
        let plan = plan_identity(&cfg, &alice(0), CookieRewrite::Remove);
        for h in IDENTITY_HEADERS {
            assert!(plan.remove.contains(h), "{h}");
        }
        assert!(!plan.remove.contains(&"authorization"));
        assert_eq!(
            plan.set,
            vec![
                ("x-auth-request-user", "00u-alice".to_string()),
                ("x-auth-request-email", "alice@example.com".to_string()),
                ("x-auth-request-groups", "admins,everyone".to_string()),
                ("x-auth-request-preferred-username", "alice".to_string()),
            ]
        );
        let anon = plan_anonymous(&cfg, CookieRewrite::Keep);
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
        let plan = plan_identity(&cfg, &s, CookieRewrite::Keep);
        assert!(plan.remove.contains(&"authorization"));
        assert_eq!(
            plan.set,
            vec![
                ("x-auth-request-access-token", "acc".to_string()),
                ("authorization", "Bearer id.tok.en".to_string()),
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
        let plan = plan_identity(&cfg, &s, CookieRewrite::Keep);
        assert!(plan.set.iter().all(|(_, v)| !v.contains(['\r', '\n'])));
    }
}
