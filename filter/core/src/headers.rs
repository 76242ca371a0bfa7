//! The header plan toward the upstream: every identity header the client sent is removed, then
//! the verified ones are set. A name counts as an identity header in any letter case and with
//! `_` for `-` (`X_Auth_Request_User`), because CGI, WSGI, PHP and Rack servers read both
//! spellings as the same variable (OAuth2-Proxy's CVE-2025-64484). The client's cookie header
//! loses the filter's own cookies.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

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

/// Headers whose values are credentials: never shown by `Debug`.
const SECRET_HEADERS: &[&str] = &["authorization", "x-auth-request-access-token", "cookie"];

/// What happens to the request's `Cookie` header.
#[derive(Clone, PartialEq, Eq)]
pub enum CookieRewrite {
    Keep,
    Remove,
    /// The header without the filter's cookies (other cookies keep their bytes).
    Replace(Vec<u8>),
}

impl fmt::Debug for CookieRewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keep => f.write_str("Keep"),
            Self::Remove => f.write_str("Remove"),
            Self::Replace(v) => write!(f, "Replace([{} bytes redacted])", v.len()),
        }
    }
}

/// The headers to change before the request goes upstream.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderPlan {
    /// Names as the request has them: only headers that are present are removed.
    pub remove: Vec<String>,
    pub set: Vec<(Cow<'static, str>, String)>,
    pub cookie: CookieRewrite,
}

impl fmt::Debug for HeaderPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set: Vec<(&str, &str)> = self
            .set
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_HEADERS.contains(&k.as_ref()) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_ref(), shown)
            })
            .collect();
        f.debug_struct("HeaderPlan")
            .field("remove", &self.remove)
            .field("set", &set)
            .field("cookie", &self.cookie)
            .finish()
    }
}

impl HeaderPlan {
    /// Whether the plan removes this header (by the name the request has).
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

/// Whether a header name is `protected` (lower case, with `-`) read as an upstream server may
/// read it: in any letter case, with `_` for `-`.
fn same_variable(name: &[u8], protected: &str) -> bool {
    name.len() == protected.len()
        && name.iter().zip(protected.bytes()).all(|(n, p)| {
            let n = match n.to_ascii_lowercase() {
                b'_' => b'-',
                other => other,
            };
            n == p
        })
}

/// The headers a client may not send, computed once from the configuration: the identity set,
/// every `claim_headers` name, and `authorization` when this filter sets it (except on bearer
/// requests, which keep their own).
#[derive(Debug, Clone)]
pub struct Removals {
    protected: Vec<String>,
    authorization: bool,
}

/// The spoofable headers one request carries, found once while its head is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strip {
    /// Present names that read as identity or claim headers.
    names: Vec<String>,
    /// The request has an `Authorization` header.
    authorization: bool,
}

impl Removals {
    pub fn new(config: &Config) -> Self {
        let mut protected: Vec<String> = IDENTITY_HEADERS.iter().map(|h| h.to_string()).collect();
        protected.extend(
            config
                .headers
                .claim_headers
                .iter()
                .map(|(h, _)| h.replace('_', "-")),
        );
        Self {
            protected,
            authorization: config.headers.set_authorization_header,
        }
    }

    /// Which of the request's header names must go.
    pub fn strip(&self, names: &[&[u8]]) -> Strip {
        let mut strip = Strip::default();
        for name in names {
            if same_variable(name, "authorization") {
                strip.authorization = true;
            } else if self.protected.iter().any(|p| same_variable(name, p)) {
                // Identity names are ASCII, so a match is valid UTF-8.
                let name = String::from_utf8_lossy(name).into_owned();
                if !strip.names.contains(&name) {
                    strip.names.push(name);
                }
            }
        }
        strip
    }

    /// The names to remove: `bearer` requests keep their own `Authorization`.
    fn names(&self, strip: &Strip, bearer: bool) -> Vec<String> {
        let mut names = strip.names.clone();
        if self.authorization && strip.authorization && !bearer {
            names.push("authorization".into());
        }
        names
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
            id_token: s.id_token.as_ref().map(|t| t.expose()),
            access_token: s.access_token.as_ref().map(|t| t.expose()),
            bearer: false,
        }
    }
}

/// The plan for a signed-in request.
pub fn plan_identity(
    config: &Config,
    removals: &Removals,
    strip: &Strip,
    who: Principal<'_>,
    cookie: CookieRewrite,
) -> HeaderPlan {
    let mut set: Vec<(Cow<'static, str>, String)> = Vec::new();
    let mut put =
        |name: &'static str, value: &str| set.push((Cow::Borrowed(name), header_value(value)));
    let user = if config.headers.prefer_email_to_user && !who.email.is_empty() {
        who.email
    } else {
        who.user
    };
    let groups = who.groups.join(",");
    let headers = [
        (
            config.headers.set_xauthrequest,
            [
                "x-auth-request-user",
                "x-auth-request-email",
                "x-auth-request-groups",
                "x-auth-request-preferred-username",
            ],
        ),
        (
            config.headers.pass_user_headers,
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
    if config.headers.pass_access_token {
        if let Some(at) = who.access_token {
            put("x-auth-request-access-token", at);
        }
    }
    for (header, claim) in &config.headers.claim_headers {
        if let Some(v) = who.claims.get(claim.as_str()) {
            set.push((Cow::Owned(header.clone()), header_value(v)));
        }
    }
    if config.headers.set_authorization_header && !who.bearer {
        if let Some(id) = who.id_token {
            set.push((
                Cow::Borrowed("authorization"),
                format!("Bearer {}", header_value(id)),
            ));
        }
    }
    HeaderPlan {
        remove: removals.names(strip, who.bearer),
        set,
        cookie,
    }
}

/// The plan for a request that passes without a session (public route, CORS preflight).
pub fn plan_anonymous(removals: &Removals, strip: &Strip, cookie: CookieRewrite) -> HeaderPlan {
    HeaderPlan {
        remove: removals.names(strip, false),
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

    /// A request that spoofs every identity header, in the spellings servers read alike.
    fn spoofing(extra: &[&str]) -> Vec<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = IDENTITY_HEADERS
            .iter()
            .map(|h| h.as_bytes().to_vec())
            .collect();
        for odd in [
            "X_Auth_Request_User",
            "x_auth_request_email",
            "X-Auth_Request-Groups",
            "X_Forwarded_User",
        ] {
            names.push(odd.as_bytes().to_vec());
        }
        names.extend(extra.iter().map(|h| h.as_bytes().to_vec()));
        names.push(b"accept".to_vec());
        names.push(b"x-auth-request-userx".to_vec());
        names.push(b"\xff\xfe".to_vec());
        names
    }

    fn strip(cfg: &Config, names: &[Vec<u8>]) -> Strip {
        let names: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
        Removals::new(cfg).strip(&names)
    }

    #[test]
    fn identity_headers_in_any_spelling_are_removed_and_verified_ones_set() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let names = spoofing(&["authorization"]);
        let strip = strip(&cfg, &names);
        let plan = plan_identity(
            &cfg,
            &Removals::new(&cfg),
            &strip,
            (&alice(0)).into(),
            CookieRewrite::Remove,
        );
        for h in IDENTITY_HEADERS {
            assert!(plan.removes(h), "{h}");
        }
        for h in [
            "X_Auth_Request_User",
            "x_auth_request_email",
            "X-Auth_Request-Groups",
            "X_Forwarded_User",
        ] {
            assert!(plan.removes(h), "{h}");
        }
        assert!(
            !plan.removes("authorization"),
            "kept unless the filter sets it"
        );
        assert!(!plan.removes("accept") && !plan.removes("x-auth-request-userx"));
        assert_eq!(
            plan.pairs(),
            vec![
                ("x-auth-request-user", "00u-alice"),
                ("x-auth-request-email", "alice@example.com"),
                ("x-auth-request-groups", "admins,everyone"),
                ("x-auth-request-preferred-username", "alice"),
            ]
        );
        let anon = plan_anonymous(&Removals::new(&cfg), &strip, CookieRewrite::Keep);
        assert_eq!(anon.remove, plan.remove);
        assert!(anon.set.is_empty());
        let clean = super::tests::strip(&cfg, &[b"accept".to_vec()]);
        assert!(
            plan_anonymous(&Removals::new(&cfg), &clean, CookieRewrite::Keep)
                .remove
                .is_empty(),
            "nothing to remove when nothing was spoofed"
        );
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
        let strip = strip(&cfg, &spoofing(&["Authorization"]));
        let plan = plan_identity(
            &cfg,
            &Removals::new(&cfg),
            &strip,
            (&s).into(),
            CookieRewrite::Keep,
        );
        assert!(plan.removes("authorization"));
        assert_eq!(
            plan.pairs(),
            vec![
                ("x-auth-request-access-token", "acc"),
                ("authorization", "Bearer id.tok.en"),
            ]
        );
        let shown = format!("{plan:?}");
        assert!(
            !shown.contains("acc\"") && !shown.contains("id.tok.en"),
            "{shown}"
        );
    }

    #[test]
    fn claims_cannot_inject_header_lines() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let mut s = alice(0);
        s.preferred_username = "alice\r\nx-admin: 1".into();
        let plan = plan_identity(
            &cfg,
            &Removals::new(&cfg),
            &Strip::default(),
            (&s).into(),
            CookieRewrite::Keep,
        );
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
        let names: Vec<&[u8]> = vec![b"x-webauth-role", b"X_Team", b"x_webauth_role"];
        let strip = Removals::new(&cfg).strip(&names);
        let plan = plan_identity(
            &cfg,
            &Removals::new(&cfg),
            &strip,
            (&s).into(),
            CookieRewrite::Keep,
        );
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
            plan.removes("x-webauth-role")
                && plan.removes("X_Team")
                && plan.removes("x_webauth_role"),
            "claim headers are stripped from clients in every spelling"
        );
    }
}
