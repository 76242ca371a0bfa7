//! Reading the request's `Cookie` header and writing `Set-Cookie` values with the configured
//! attributes.

use std::time::Duration;

use crate::config::{CookieSettings, SameSite};

/// How many cookies are looked up by name in one request; later ones are still stripped when
/// they are the filter's own, but never read (hostile headers).
const MAX_PAIRS: usize = 256;

/// The cookies of a request, in order, as bytes: a `Cookie` header may carry bytes that are not
/// UTF-8 (other apps' cookies), and those are passed on untouched.
#[derive(Debug, Default)]
pub struct RequestCookies<'a> {
    /// Each `name=value` segment, trimmed, with its name.
    segments: Vec<(&'a [u8], &'a [u8])>,
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e.saturating_add(1));
    b.get(start..end).unwrap_or_default()
}

impl<'a> RequestCookies<'a> {
    pub fn parse(header: Option<&'a [u8]>) -> Self {
        let segments = header
            .unwrap_or_default()
            .split(|b| *b == b';')
            .map(trim)
            .filter(|seg| !seg.is_empty())
            .map(|seg| {
                let name = seg.split(|b| *b == b'=').next().unwrap_or_default();
                (trim(name), seg)
            })
            .collect();
        Self { segments }
    }

    /// Named cookies: (name, value without quotes), both UTF-8, the first `MAX_PAIRS` only.
    fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.segments
            .iter()
            .take(MAX_PAIRS)
            .filter_map(|(name, seg)| {
                let value = seg.splitn(2, |b| *b == b'=').nth(1)?;
                let value = trim(value);
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                let name = std::str::from_utf8(name).ok().filter(|n| !n.is_empty())?;
                Some((name, std::str::from_utf8(value).ok()?))
            })
    }

    /// The first value of a cookie.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.get_all(name).next()
    }

    /// Every value of a cookie, in order (a parent domain's cookie of the same name, say).
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.pairs()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.pairs().map(|(n, _)| n)
    }

    /// The header without the cookies `drop` selects (among all of them, however many):
    /// `None` when nothing is left. Other cookies keep their bytes.
    pub fn header_without(&self, drop: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for (name, seg) in &self.segments {
            if std::str::from_utf8(name).is_ok_and(&drop) {
                continue;
            }
            if !out.is_empty() {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(seg);
        }
        (!out.is_empty()).then_some(out)
    }

    /// Whether any cookie, read or not, has a name `drop` selects.
    pub fn any_name(&self, select: impl Fn(&str) -> bool) -> bool {
        self.segments
            .iter()
            .any(|(name, _)| std::str::from_utf8(name).is_ok_and(&select))
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
    set_cookie_samesite(settings, name, value, max_age, domain, settings.samesite)
}

/// A `Set-Cookie` value with the configured attributes but its own `SameSite`.
pub fn set_cookie_samesite(
    settings: &CookieSettings,
    name: &str,
    value: &str,
    max_age: Duration,
    domain: Option<&str>,
    samesite: SameSite,
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
    c.push_str(samesite.attribute());
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
        let c = RequestCookies::parse(Some(b"a=1; _oauth2_proxy=xyz;b=\"2\" ; junk; =x"));
        assert_eq!(c.get("a"), Some("1"));
        assert_eq!(c.get("b"), Some("2"));
        assert_eq!(c.get("_oauth2_proxy"), Some("xyz"));
        assert_eq!(
            c.header_without(|n| n.starts_with("_oauth2_proxy")),
            Some(b"a=1; b=\"2\"; junk; =x".to_vec()),
            "the other cookies go on as they came"
        );
        assert_eq!(
            RequestCookies::parse(Some(b"_oauth2_proxy=1")).header_without(|_| true),
            None
        );
    }

    #[test]
    fn hostile_cookie_headers_are_bounded() {
        let many = (0..10_000)
            .map(|i| format!("c{i}=v"))
            .collect::<Vec<_>>()
            .join("; ");
        let jar = RequestCookies::parse(Some(many.as_bytes()));
        assert_eq!(jar.names().count(), MAX_PAIRS);
        assert!(
            jar.any_name(|n| n == "c9999"),
            "a cookie past the lookup bound is still found for stripping"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_through_and_never_match() {
        let header = b"app=caf\xe9; _oauth2_proxy=abc; \xff\xfe=x";
        let jar = RequestCookies::parse(Some(header));
        assert_eq!(jar.get("_oauth2_proxy"), Some("abc"));
        assert_eq!(
            jar.get("app"),
            None,
            "a value that is not UTF-8 is never read"
        );
        assert_eq!(
            jar.header_without(|n| n == "_oauth2_proxy"),
            Some(b"app=caf\xe9; \xff\xfe=x".to_vec())
        );
    }

    #[test]
    fn every_cookie_of_one_name_is_a_candidate() {
        let jar = RequestCookies::parse(Some(b"s=parent; t=1; s=host"));
        assert_eq!(jar.get_all("s").collect::<Vec<_>>(), vec!["parent", "host"]);
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
