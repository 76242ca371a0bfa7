//! `api_routes`, `skip_auth_routes` and `optional_auth_routes`: regular expressions on the
//! request path (without the
//! query), compiled once; and the readings of a path, what different upstream servers make of
//! the same bytes. A skip rule must hold for every reading, so `/public/../admin`,
//! `/public/%2e%2e/admin` or `/public/..;/admin` cannot borrow a public route's exemption.

use std::borrow::Cow;

use regex_lite::Regex;

/// One bad route, by option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    Api(String),
    SkipAuth(String),
    OptionalAuth(String),
}

#[derive(Debug, Clone)]
struct SkipRoute {
    method: Option<String>,
    path: Regex,
}

#[derive(Debug, Clone, Default)]
pub struct Routes {
    api: Vec<Regex>,
    skip_auth: Vec<SkipRoute>,
    /// Where a request without a valid session passes anonymously instead of logging in.
    optional_auth: Vec<SkipRoute>,
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("{pattern:?} is not a valid regular expression: {e}"))
}

impl Routes {
    /// `skip_auth` and `optional_auth` entries are `"<regex>"` or `"<METHOD>=<regex>"`, as
    /// OAuth2-Proxy's `skip_auth_routes`.
    pub fn parse(
        api: Vec<String>,
        skip_auth: Vec<String>,
        optional_auth: Vec<String>,
    ) -> Result<Self, Vec<RouteError>> {
        let mut errors = Vec::new();
        let api = api
            .iter()
            .filter_map(|p| compile(p).map_err(|e| errors.push(RouteError::Api(e))).ok())
            .collect();
        let skip_auth = method_routes(&skip_auth, RouteError::SkipAuth, &mut errors);
        let optional_auth = method_routes(&optional_auth, RouteError::OptionalAuth, &mut errors);
        if errors.is_empty() {
            Ok(Self {
                api,
                skip_auth,
                optional_auth,
            })
        } else {
            Err(errors)
        }
    }

    /// Whether any optional-login rule is configured (most configurations have none: their
    /// requests skip the readings).
    pub fn has_optional_auth(&self) -> bool {
        !self.optional_auth.is_empty()
    }

    /// Whether an optional-login rule holds for this reading of a path.
    pub fn optional_auth(&self, method: &str, reading: &str) -> bool {
        self.optional_auth
            .iter()
            .any(|r| r.method.as_deref().is_none_or(|m| m == method) && r.path.is_match(reading))
    }

    pub fn is_api(&self, path: &str) -> bool {
        let path = path_only(path);
        self.api.iter().any(|r| r.is_match(path))
    }

    /// Whether a skip rule exempts this reading of a path (see `readings`).
    pub fn skips_auth(&self, method: &str, reading: &str) -> bool {
        self.skip_auth
            .iter()
            .any(|r| r.method.as_deref().is_none_or(|m| m == method) && r.path.is_match(reading))
    }
}

/// `"<regex>"` or `"<METHOD>=<regex>"` entries, compiled; each bad one is an error of its option.
fn method_routes(
    entries: &[String],
    error: fn(String) -> RouteError,
    errors: &mut Vec<RouteError>,
) -> Vec<SkipRoute> {
    entries
        .iter()
        .filter_map(|entry| {
            let (method, pattern) = match entry.split_once('=') {
                Some((m, p)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
                    (Some(m.to_string()), p)
                }
                _ => (None, entry.as_str()),
            };
            compile(pattern)
                .map(|path| SkipRoute { method, path })
                .map_err(|e| errors.push(error(e)))
                .ok()
        })
        .collect()
}

/// The path without query or fragment.
pub fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Whether servers may read the path as another one: percent-escapes, backslashes, `;`
/// parameters, doubled slashes, dot segments.
fn needs_reading(path: &str) -> bool {
    path.contains(['%', '\\', ';'])
        || path.contains("//")
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// What the servers behind a gateway may make of a path (without query): the path as sent; the
/// path percent-decoded with `\` as `/`, `//` collapsed and dot segments resolved (how most
/// servers route); and the same with each segment's `;parameters` cut first (Tomcat, Jetty,
/// Spring: `/public/..;/admin` is `/admin` there). A plain path has one reading, itself.
pub fn readings(path: &str) -> Vec<Cow<'_, str>> {
    let mut out = vec![Cow::Borrowed(path)];
    if !needs_reading(path) {
        return out;
    }
    for reading in [normalize(path, false), normalize(path, true)] {
        if !out.iter().any(|r| *r == reading) {
            out.push(Cow::Owned(reading));
        }
    }
    out
}

/// A path percent-decoded (bytes that are not UTF-8 become U+FFFD), `\` read as `/`, dot
/// segments resolved, empty segments dropped; with `strip_params`, `;…` cut from each segment
/// before decoding.
fn normalize(path: &str, strip_params: bool) -> String {
    let slashed = path.replace('\\', "/");
    let cut: Vec<&str> = slashed
        .split('/')
        .map(|seg| match strip_params {
            true => seg.split(';').next().unwrap_or_default(),
            false => seg,
        })
        .collect();
    let decoded = percent_decode(&cut.join("/")).replace('\\', "/");
    let mut stack: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let directory = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out = String::with_capacity(decoded.len());
    for seg in &stack {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || (directory && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let escaped = tail
            .split_first_chunk::<2>()
            .filter(|_| b == b'%')
            .and_then(|(hex, after)| {
                let hex = std::str::from_utf8(hex).ok()?;
                Some((u8::from_str_radix(hex, 16).ok()?, after))
            });
        match escaped {
            Some((decoded, after)) => {
                out.push(decoded);
                rest = after;
            }
            None => {
                out.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(api: &[&str], skip: &[&str]) -> Routes {
        let r = Routes::parse(
            api.iter().map(|s| s.to_string()).collect(),
            skip.iter().map(|s| s.to_string()).collect(),
            Vec::new(),
        );
        r.unwrap_or_default()
    }

    /// Whether every reading of `path` is exempt, as the policy check asks.
    fn skips(r: &Routes, method: &str, path: &str) -> bool {
        readings(path_only(path))
            .iter()
            .all(|p| r.skips_auth(method, p))
    }

    #[test]
    fn skip_auth_with_and_without_method() {
        let r = routes(&[], &["^/healthz$", "GET=^/public/"]);
        assert!(skips(&r, "GET", "/healthz"));
        assert!(skips(&r, "POST", "/healthz"));
        assert!(skips(&r, "GET", "/public/a.css?v=1"));
        assert!(!skips(&r, "POST", "/public/a.css"));
        assert!(!skips(&r, "GET", "/healthz/x"));
        assert!(!skips(&r, "GET", "/admin?/public/"));
        assert!(
            skips(&r, "GET", "/public/app;jsessionid=1"),
            "a Java session id stays public"
        );
    }

    #[test]
    fn path_tricks_never_skip_auth() {
        let r = routes(&[], &["^/public/"]);
        for p in [
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public/%2E%2E/admin",
            "/public/.%2e/admin",
            "/public/..%2fadmin",
            "/public//../admin",
            "/public/..\\admin",
            "/public/..;/admin",
            "/public/..;x=1/admin",
            "/public;/../admin",
            "/public/%2e%2e;/admin",
            "/public/x/..%5c..%5cadmin",
            "/%70ublic/../admin",
        ] {
            assert!(!skips(&r, "GET", p), "{p}");
        }
    }

    #[test]
    fn readings_are_what_servers_route_on() {
        let cases: &[(&str, &[&str])] = &[
            ("/app", &["/app"]),
            ("/a/b/", &["/a/b/"]),
            (
                "/public/..;/admin",
                &["/public/..;/admin", "/public/..;/admin", "/admin"],
            ),
            ("/a/%2e%2e/b", &["/a/%2e%2e/b", "/b"]),
            ("/a//b/./c/", &["/a//b/./c/", "/a/b/c/"]),
            ("/a\\..\\b", &["/a\\..\\b", "/b"]),
            ("/x;v=1/y", &["/x;v=1/y", "/x;v=1/y", "/x/y"]),
            ("/caf%e9", &["/caf%e9", "/caf\u{fffd}"]),
            ("/..", &["/..", "/"]),
        ];
        for (path, expected) in cases {
            let got: Vec<String> = readings(path).into_iter().map(|c| c.into_owned()).collect();
            let mut want: Vec<String> = Vec::new();
            for e in expected.iter() {
                if !want.iter().any(|w| w == e) {
                    want.push(e.to_string());
                }
            }
            assert_eq!(got, want, "{path}");
        }
    }

    #[test]
    fn api_routes_match_path_only() {
        let r = routes(&["^/api/"], &[]);
        assert!(r.is_api("/api/v1?x=1"));
        assert!(!r.is_api("/app?next=/api/"));
    }

    #[test]
    fn invalid_patterns_are_all_reported() {
        let e = Routes::parse(
            vec!["(".into()],
            vec!["GET=[".into(), "ok".into()],
            vec!["(".into()],
        )
        .err();
        assert_eq!(e.map(|e| e.len()), Some(3));
    }
}
