//! `api_routes` and `skip_auth_routes`: regular expressions on the request path (without the
//! query), compiled once. Paths with dot segments or encoded separators never match a skip rule,
//! so `/public/../admin` cannot borrow a public route's exemption.

use regex_lite::Regex;

/// One bad route, by option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    Api(String),
    SkipAuth(String),
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
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("{pattern:?} is not a valid regular expression: {e}"))
}

impl Routes {
    /// `skip_auth` entries are `"<regex>"` or `"<METHOD>=<regex>"`, as OAuth2-Proxy's.
    pub fn parse(api: Vec<String>, skip_auth: Vec<String>) -> Result<Self, Vec<RouteError>> {
        let mut errors = Vec::new();
        let api = api
            .iter()
            .filter_map(|p| compile(p).map_err(|e| errors.push(RouteError::Api(e))).ok())
            .collect();
        let skip_auth = skip_auth
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
                    .map_err(|e| errors.push(RouteError::SkipAuth(e)))
                    .ok()
            })
            .collect();
        if errors.is_empty() {
            Ok(Self { api, skip_auth })
        } else {
            Err(errors)
        }
    }

    pub fn is_api(&self, path: &str) -> bool {
        let path = path_only(path);
        self.api.iter().any(|r| r.is_match(path))
    }

    pub fn skips_auth(&self, method: &str, path: &str) -> bool {
        if self.skip_auth.is_empty() {
            return false;
        }
        let path = path_only(path);
        if is_ambiguous(path) {
            return false;
        }
        self.skip_auth
            .iter()
            .any(|r| r.method.as_deref().is_none_or(|m| m == method) && r.path.is_match(path))
    }
}

/// The path without query or fragment.
pub fn path_only(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// A path whose meaning depends on who normalizes it: dot segments, encoded dots or slashes,
/// backslashes, doubled slashes.
pub fn is_ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || path.contains('\\')
        || path.contains("//")
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(api: &[&str], skip: &[&str]) -> Routes {
        let r = Routes::parse(
            api.iter().map(|s| s.to_string()).collect(),
            skip.iter().map(|s| s.to_string()).collect(),
        );
        r.unwrap_or_default()
    }

    #[test]
    fn skip_auth_with_and_without_method() {
        let r = routes(&[], &["^/healthz$", "GET=^/public/"]);
        assert!(r.skips_auth("GET", "/healthz"));
        assert!(r.skips_auth("POST", "/healthz"));
        assert!(r.skips_auth("GET", "/public/a.css?v=1"));
        assert!(!r.skips_auth("POST", "/public/a.css"));
        assert!(!r.skips_auth("GET", "/healthz/x"));
        assert!(!r.skips_auth("GET", "/admin?/public/"));
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
            "/public/./x",
            "/public/..\\admin",
        ] {
            assert!(!r.skips_auth("GET", p), "{p}");
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
        let e = Routes::parse(vec!["(".into()], vec!["GET=[".into(), "ok".into()]).err();
        assert_eq!(e.map(|e| e.len()), Some(2));
    }
}
