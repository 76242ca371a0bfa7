//! The cookies: the secret they are sealed with (and previous ones while it rolls), their name,
//! domains, path and attributes, the session's lifetime. (How often a session is refreshed is
//! each provider's: `providers`.)

use std::time::Duration;

use serde::Deserialize;

use super::{Check, EnvLookup, OneOrMany};
use crate::secret::CookieSecret;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawCookies {
    cookie_secret: Option<String>,
    cookie_secret_env: Option<String>,
    cookie_secret_previous: Option<OneOrMany>,
    cookie_secret_previous_env: Option<OneOrMany>,
    cookie_name: Option<String>,
    cookie_domains: Option<Vec<String>>,
    cookie_path: Option<String>,
    cookie_secure: Option<bool>,
    cookie_httponly: Option<bool>,
    cookie_samesite: Option<String>,
    cookie_expire: Option<String>,
    session_idle_timeout: Option<String>,
    session_cache_size: Option<usize>,
}

/// `cookie_expire` when it is not set: a week, as OAuth2-Proxy.
pub(super) const DEFAULT_EXPIRE: Duration = Duration::from_secs(168 * 3600);

/// Opened sessions kept per VM (worker) unless `session_cache_size` says otherwise.
pub const DEFAULT_SESSION_CACHE: usize = 1024;
/// A bound on `session_cache_size`: each entry holds at most a few KiB.
const MAX_SESSION_CACHE: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn attribute(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub name: String,
    pub domains: Vec<String>,
    pub path: String,
    pub secure: bool,
    pub httponly: bool,
    pub samesite: SameSite,
    pub expire: Duration,
    /// `session_idle_timeout`: a session that carried no request for this long ends (`None`:
    /// off).
    pub idle_timeout: Option<Duration>,
    pub secret: CookieSecret,
    /// Secrets that still open cookies (rotation); sessions they open are re-issued.
    pub previous_secrets: Vec<CookieSecret>,
    /// Opened sessions each VM keeps (0: none).
    pub session_cache_size: usize,
}

pub(super) fn build(
    raw: RawCookies,
    env: EnvLookup<'_>,
    check: &mut Check,
) -> Option<CookieSettings> {
    let secret = check
        .secret(
            ("cookie_secret", raw.cookie_secret),
            ("cookie_secret_env", raw.cookie_secret_env),
            env,
        )
        .and_then(|s| {
            CookieSecret::from_base64(&s)
                .map_err(|e| check.fail("cookie_secret", e.to_string()))
                .ok()
        });
    let previous_secrets = previous(
        raw.cookie_secret_previous,
        raw.cookie_secret_previous_env,
        env,
        check,
    );
    let name = raw
        .cookie_name
        .unwrap_or_else(|| "_oauth2_proxy".to_string());
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        check.fail(
            "cookie_name",
            format!("{name:?} must be non-empty and use only letters, digits, '_', '-' and '.'"),
        );
    }
    let domains = raw.cookie_domains.unwrap_or_default();
    for d in &domains {
        if d.trim_start_matches('.').is_empty() || d.contains([';', ' ', '/', ':']) {
            check.fail("cookie_domains", format!("{d:?} is not a domain"));
        }
    }
    let path = raw.cookie_path.unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') || path.contains(';') {
        check.fail("cookie_path", format!("{path:?} must start with '/'"));
    }
    let secure = raw.cookie_secure.unwrap_or(true);
    prefix_rules(check, &name, secure, &domains, &path);
    let samesite = samesite(raw.cookie_samesite, secure, check);
    let expire = check.duration("cookie_expire", raw.cookie_expire, DEFAULT_EXPIRE);
    if expire.is_zero() {
        check.fail("cookie_expire", "must be greater than 0");
    }
    let session_cache_size = raw.session_cache_size.unwrap_or(DEFAULT_SESSION_CACHE);
    if session_cache_size > MAX_SESSION_CACHE {
        check.fail(
            "session_cache_size",
            format!("must be at most {MAX_SESSION_CACHE} (entries per worker)"),
        );
    }
    Some(CookieSettings {
        name,
        domains,
        path,
        secure,
        httponly: raw.cookie_httponly.unwrap_or(true),
        samesite,
        expire,
        idle_timeout: idle_timeout(raw.session_idle_timeout, check),
        secret: secret?,
        previous_secrets,
        session_cache_size,
    })
}

/// `cookie_secret_previous(_env)`: one secret or a list, inline or from the environment.
fn previous(
    inline: Option<OneOrMany>,
    from_env: Option<OneOrMany>,
    env: EnvLookup<'_>,
    check: &mut Check,
) -> Vec<CookieSecret> {
    let mut secrets = Vec::new();
    for s in inline.map(OneOrMany::into_vec).unwrap_or_default() {
        match CookieSecret::from_base64(&s) {
            Ok(k) => secrets.push(k),
            Err(e) => check.fail("cookie_secret_previous", e.to_string()),
        }
    }
    for name in from_env.map(OneOrMany::into_vec).unwrap_or_default() {
        match env(&name).map(|v| CookieSecret::from_base64(&v)) {
            Some(Ok(k)) => secrets.push(k),
            Some(Err(e)) => check.fail("cookie_secret_previous_env", format!("{name:?} {e}")),
            None => check.fail(
                "cookie_secret_previous_env",
                format!("environment variable {name:?} is not set in the Wasm VM (give it in the WasmPlugin's vmConfig.env)"),
            ),
        }
    }
    secrets
}

fn samesite(value: Option<String>, secure: bool, check: &mut Check) -> SameSite {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => {
            if !secure {
                check.fail(
                    "cookie_samesite",
                    "\"none\" requires cookie_secure: true (browsers drop such cookies otherwise)",
                );
            }
            SameSite::None
        }
        Some(other) => {
            check.fail(
                "cookie_samesite",
                format!("{other:?} must be \"lax\", \"strict\" or \"none\""),
            );
            SameSite::Lax
        }
    }
}

/// RFC 6265bis §4.1.3: browsers drop a `__Secure-` cookie without `Secure`, and a `__Host-`
/// one with a `Domain` or a path other than `/`. The prefixes are matched in any case, as
/// browsers now do.
fn prefix_rules(check: &mut Check, name: &str, secure: bool, domains: &[String], path: &str) {
    let starts = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let host = starts("__Host-");
    if (host || starts("__Secure-")) && !secure {
        check.fail(
            "cookie_name",
            format!("{name:?} has a __Secure-/__Host- prefix, which needs cookie_secure: true"),
        );
    }
    if host && !domains.is_empty() {
        check.fail(
            "cookie_name",
            format!("{name:?} has the __Host- prefix, which allows no cookie_domains"),
        );
    }
    if host && path != "/" {
        check.fail(
            "cookie_name",
            format!("{name:?} has the __Host- prefix, which needs cookie_path \"/\""),
        );
    }
}

/// `session_idle_timeout`: `None` when off (`0`, the default); at least a second.
fn idle_timeout(raw: Option<String>, check: &mut Check) -> Option<Duration> {
    let timeout = check.duration("session_idle_timeout", raw, Duration::ZERO);
    if !timeout.is_zero() && timeout < Duration::from_secs(1) {
        check.fail("session_idle_timeout", "must be 0 (off) or at least 1s");
    }
    (!timeout.is_zero()).then_some(timeout)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, minimal, parse, problems, with, COOKIE_SECRET};
    use super::super::Config;
    use serde_json::json;

    #[test]
    fn each_invalid_cookie_option_is_reported_with_its_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("cookie_expire", json!("7d"), "unknown unit"),
            ("cookie_expire", json!("0"), "greater than 0"),
            ("session_idle_timeout", json!("500ms"), "at least 1s"),
            ("session_idle_timeout", json!("15 minutes"), "unknown unit"),
            (
                "cookie_samesite",
                json!("sometimes"),
                "\"lax\", \"strict\" or \"none\"",
            ),
            (
                "cookie_secret",
                json!("c2hvcnQ="),
                "must be 32 random bytes",
            ),
            ("cookie_name", json!("a;b"), "must be non-empty"),
            (
                "cookie_secret_previous",
                json!(["c2hvcnQ="]),
                "must be 32 random bytes",
            ),
            (
                "cookie_secret_previous_env",
                json!("UNSET_VAR"),
                "is not set in the Wasm VM",
            ),
            ("cookie_domains", json!(["a/b"]), "is not a domain"),
            ("cookie_path", json!("app"), "must start with '/'"),
        ];
        assert_each_refused(&cases);
    }

    #[test]
    fn cookie_name_prefixes_follow_their_rules() {
        let cfg = |extra: serde_json::Value| {
            let mut v = minimal();
            if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            problems(&v)
        };
        assert!(cfg(json!({"cookie_name": "__Host-session"})).is_empty());
        assert!(
            cfg(json!({"cookie_name": "__Secure-s", "cookie_domains": [".example.com"]}))
                .is_empty()
        );
        let cases = [
            (
                json!({"cookie_name": "__Host-s", "cookie_domains": [".example.com"]}),
                "allows no cookie_domains",
            ),
            (
                json!({"cookie_name": "__host-s", "cookie_path": "/app"}),
                "needs cookie_path \"/\"",
            ),
            (
                json!({"cookie_name": "__Secure-s", "cookie_secure": false}),
                "needs cookie_secure: true",
            ),
            (
                json!({"cookie_name": "__Host-s", "cookie_secure": false}),
                "needs cookie_secure: true",
            ),
        ];
        for (extra, needle) in cases {
            let ps = cfg(extra.clone());
            assert!(
                ps.iter()
                    .any(|(k, r)| k == "cookie_name" && r.contains(needle)),
                "{extra}: {ps:?}"
            );
        }
    }

    #[test]
    fn previous_cookie_secrets_are_one_or_a_list_inline_or_from_the_environment() {
        let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let one = parse(&with("cookie_secret_previous", json!(other)));
        assert_eq!(one.map(|c| c.cookie.previous_secrets.len()).ok(), Some(1));
        let mut v = with("cookie_secret_previous", json!([other, COOKIE_SECRET]));
        v["cookie_secret_previous_env"] = json!(["OLD"]);
        let env = |k: &str| (k == "OLD").then(|| other.to_string());
        let c = Config::parse(v.to_string().as_bytes(), &env);
        assert_eq!(
            c.as_ref().map(|c| c.cookie.previous_secrets.len()).ok(),
            Some(3)
        );
    }
}
