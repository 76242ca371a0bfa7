//! Where a redirect may go after login or sign-out (`rd`, the original URL): a path on the
//! request's own host, that host as an absolute URL, or a `whitelist_domains` entry, as in
//! OAuth2-Proxy. Anything else falls back to `/`.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// Lower case, without a leading dot.
    domain: String,
    /// `.example.com`: the domain and its subdomains.
    subdomains: bool,
    /// `None`: the default port only; `Some(None)`: any port (`:*`); `Some(Some(p))`: port `p`.
    port: Option<Option<u16>>,
}

/// The compiled `whitelist_domains`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whitelist {
    entries: Vec<Allowed>,
}

impl Whitelist {
    /// Entries are `example.com`, `.example.com` (with subdomains), and either with `:port` or
    /// `:*`.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut out = Vec::new();
        for raw in entries {
            let e = raw.trim().to_ascii_lowercase();
            let (host, port) = match e.rsplit_once(':') {
                Some((h, "*")) => (h, Some(None)),
                Some((h, p)) => match p.parse::<u16>() {
                    Ok(p) => (h, Some(Some(p))),
                    Err(_) => return Err(format!("{raw:?} has an invalid port")),
                },
                None => (e.as_str(), None),
            };
            let (domain, subdomains) = match host.strip_prefix('.') {
                Some(d) => (d, true),
                None => (host, false),
            };
            if domain.is_empty()
                || !domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(format!("{raw:?} is not a domain (\"example.com\", \".example.com\", optionally with \":port\" or \":*\")"));
            }
            out.push(Allowed {
                domain: domain.to_string(),
                subdomains,
                port,
            });
        }
        Ok(Self { entries: out })
    }

    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        self.entries.iter().any(|a| {
            let host_ok =
                host == a.domain || (a.subdomains && host.ends_with(&format!(".{}", a.domain)));
            let port_ok = match a.port {
                None => port.is_none(),
                Some(None) => true,
                Some(Some(p)) => port == Some(p),
            };
            host_ok && port_ok
        })
    }

    /// The safe target for `target` on a request to `authority`; `/` when it is not allowed.
    pub fn target(&self, target: &str, authority: &str) -> String {
        self.checked(target, authority)
            .unwrap_or_else(|| "/".to_string())
    }

    fn checked(&self, target: &str, authority: &str) -> Option<String> {
        if target.is_empty()
            || target
                .chars()
                .any(|c| c.is_control() || c == '\\' || c.is_whitespace())
        {
            return None;
        }
        if target.starts_with('/') {
            let lower = target.to_ascii_lowercase();
            // `//host` and `/\host` leave the site; encoded forms may be decoded by some hop.
            let leaves =
                target.starts_with("//") || lower.starts_with("/%2f") || lower.starts_with("/%5c");
            return (!leaves).then(|| target.to_string());
        }
        let url = Url::parse(target).ok()?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        let own = authority.to_ascii_lowercase();
        let same_host = match url.port() {
            Some(p) => own == format!("{host}:{p}"),
            None => own == host,
        };
        (same_host || self.allows(&host, url.port())).then(|| url.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wl() -> Whitelist {
        Whitelist::parse(&[
            ".example.com".into(),
            "partner.org:8443".into(),
            "dev.local:*".into(),
        ])
        .unwrap_or_default()
    }

    #[test]
    fn hostile_and_legitimate_targets() {
        let own = "app.example.net";
        let cases: &[(&str, &str)] = &[
            // Legitimate.
            ("/", "/"),
            ("/dashboard?tab=1#x", "/dashboard?tab=1#x"),
            ("/a/b/../c", "/a/b/../c"),
            ("https://app.example.net/x", "https://app.example.net/x"),
            ("http://app.example.net/x", "http://app.example.net/x"),
            ("https://example.com/", "https://example.com/"),
            (
                "https://wiki.example.com/page",
                "https://wiki.example.com/page",
            ),
            ("https://a.b.example.com/", "https://a.b.example.com/"),
            ("https://partner.org:8443/cb", "https://partner.org:8443/cb"),
            ("http://dev.local:3000/", "http://dev.local:3000/"),
            ("https://dev.local/", "https://dev.local/"),
            // Hostile.
            ("https://evil.example/", "/"),
            ("//evil.example", "/"),
            ("///evil.example", "/"),
            ("/\\evil.example", "/"),
            ("\\\\evil.example", "/"),
            ("/%2F%2Fevil.example", "/"),
            ("/%2fevil.example", "/"),
            ("/%5cevil.example", "/"),
            ("javascript:alert(1)", "/"),
            ("JaVaScRiPt:alert(1)", "/"),
            ("data:text/html,<script>", "/"),
            ("https:evil.example", "/"),
            ("https://app.example.net@evil.example/", "/"),
            ("https://user:pw@app.example.net/", "/"),
            ("https://evilexample.com/", "/"),
            ("https://example.com.evil.io/", "/"),
            ("https://partner.org/", "/"),
            ("https://partner.org:9443/", "/"),
            ("https://app.example.net:8443/", "/"),
            (" /x", "/"),
            ("/x\r\nSet-Cookie: a=b", "/"),
            ("ftp://app.example.net/", "/"),
            ("", "/"),
            ("evil.example", "/"),
            ("\t//evil.example", "/"),
        ];
        assert!(cases.len() >= 30);
        for (target, expected) in cases {
            assert_eq!(wl().target(target, own), *expected, "{target:?}");
        }
    }

    #[test]
    fn own_host_with_a_port_must_match_the_port() {
        let w = Whitelist::default();
        assert_eq!(
            w.target("http://localhost:8080/x", "localhost:8080"),
            "http://localhost:8080/x"
        );
        assert_eq!(w.target("http://localhost:9090/x", "localhost:8080"), "/");
        assert_eq!(w.target("http://localhost/x", "localhost:8080"), "/");
    }

    #[test]
    fn invalid_entries_are_refused() {
        assert!(Whitelist::parse(&["a.example:port".into()]).is_err());
        assert!(Whitelist::parse(&["*.example.com".into()]).is_err());
        assert!(Whitelist::parse(&["".into()]).is_err());
    }

    #[test]
    fn hosts_are_ascii_only() {
        // `url` runs with its ASCII-only IDNA back end (`idna_adapter` 1.0, pinned in
        // Cargo.toml): a Unicode host is refused even on a whitelisted domain; its Punycode
        // form passes.
        let own = "app.example.net";
        assert_eq!(wl().target("https://bücher.example.com/", own), "/");
        assert_eq!(wl().target("https://b%C3%BCcher.example.com/", own), "/");
        assert_eq!(
            wl().target("https://xn--bcher-kva.example.com/", own),
            "https://xn--bcher-kva.example.com/"
        );
    }
}
