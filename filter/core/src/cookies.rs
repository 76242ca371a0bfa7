//! Reading the request's `Cookie` header and writing `Set-Cookie` values with the configured
//! attributes.

use std::time::Duration;

use crate::config::CookieSettings;

/// How many cookie pairs are read from one request; the rest are ignored (hostile headers).
const MAX_PAIRS: usize = 256;

/// The cookies of a request, in order.
#[derive(Debug, Default)]
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestCookies<'a> {
    pub fn parse(header: Option<&'a str>) -> Self {
        let pairs = header
            .unwrap_or("")
            .split(';')
            .filter_map(|p| {
                let (name, value) = p.split_once('=')?;
                let name = name.trim();
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                (!name.is_empty()).then_some((name, value))
            })
            .take(MAX_PAIRS)
            .collect();
        Self { pairs }
    }

    /// The first value of a cookie.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pairs.iter().map(|(n, _)| *n)
    }

    /// The header without the cookies `drop` selects: `None` when nothing is left.
    pub fn header_without(&self, drop: impl Fn(&str) -> bool) -> Option<String> {
        let kept: Vec<String> = self
            .pairs
            .iter()
            .filter(|(n, _)| !drop(n))
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        (!kept.is_empty()).then(|| kept.join("; "))
    }
}

/// The `Domain` attribute for a request host: the longest `cookie_domains` entry the host is in,
/// or none (a host-only cookie), as OAuth2-Proxy picks it.
pub fn domain_for<'c>(settings: &'c CookieSettings, host: &str) -> Option<&'c str> {
    let host = host_without_port(host).to_ascii_lowercase();
    settings
        .domains
        .iter()
        .filter(|d| {
            let bare = d.trim_start_matches('.').to_ascii_lowercase();
            host == bare || host.ends_with(&format!(".{bare}"))
        })
        .max_by_key(|d| d.len())
        .map(String::as_str)
}

/// The host part of an `:authority` (IPv6 literals keep their brackets).
pub fn host_without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// A `Set-Cookie` value with the configured attributes.
pub fn set_cookie(
    settings: &CookieSettings,
    name: &str,
    value: &str,
    max_age: Duration,
    domain: Option<&str>,
) -> String {
    let mut c = format!("{name}={value}; Path={}", settings.path);
    if let Some(d) = domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    c.push_str(&format!("; Max-Age={}", max_age.as_secs()));
    if settings.httponly {
        c.push_str("; HttpOnly");
    }
    if settings.secure {
        c.push_str("; Secure");
    }
    c.push_str("; SameSite=");
    c.push_str(settings.samesite.attribute());
    c
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(settings: &CookieSettings, name: &str, domain: Option<&str>) -> String {
    let mut c = set_cookie(settings, name, "", Duration::ZERO, domain);
    c.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{minimal, parse};
    use serde_json::json;

    #[test]
    fn parses_pairs_and_rewrites_without_ours() {
        let c = RequestCookies::parse(Some("a=1; _oauth2_proxy=xyz;b=\"2\" ; junk; =x"));
        assert_eq!(c.get("a"), Some("1"));
        assert_eq!(c.get("b"), Some("2"));
        assert_eq!(c.get("_oauth2_proxy"), Some("xyz"));
        assert_eq!(
            c.header_without(|n| n.starts_with("_oauth2_proxy")),
            Some("a=1; b=2".into())
        );
        assert_eq!(
            RequestCookies::parse(Some("_oauth2_proxy=1")).header_without(|_| true),
            None
        );
    }

    #[test]
    fn hostile_cookie_headers_are_bounded() {
        let many = (0..10_000)
            .map(|i| format!("c{i}=v"))
            .collect::<Vec<_>>()
            .join("; ");
        assert_eq!(
            RequestCookies::parse(Some(&many)).names().count(),
            MAX_PAIRS
        );
    }

    #[test]
    fn attributes_follow_the_options() {
        let mut v = minimal();
        v["cookie_domains"] = json!([".example.com", "apps.example.com"]);
        v["cookie_samesite"] = json!("strict");
        v["cookie_path"] = json!("/app");
        let Ok(cfg) = parse(&v) else { unreachable!() };
        let s = &cfg.cookie;
        assert_eq!(
            domain_for(s, "wiki.apps.example.com:443"),
            Some("apps.example.com")
        );
        assert_eq!(domain_for(s, "example.com"), Some(".example.com"));
        assert_eq!(domain_for(s, "example.org"), None);
        assert_eq!(domain_for(s, "badexample.com"), None);
        assert_eq!(
            set_cookie(s, "n", "v", Duration::from_secs(60), Some(".example.com")),
            "n=v; Path=/app; Domain=.example.com; Max-Age=60; HttpOnly; Secure; SameSite=Strict"
        );
        assert!(clear_cookie(s, "n", None)
            .contains("Max-Age=0; HttpOnly; Secure; SameSite=Strict; Expires=Thu, 01 Jan 1970"));
    }

    #[test]
    fn host_port_is_stripped() {
        assert_eq!(host_without_port("a.example:8443"), "a.example");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("a"), "a");
    }
}
