//! The request decisions: a request head, the clock and randomness go in; a `Decision` comes out
//! (forward with a header plan, answer locally, exchange a code at the token endpoint, or refresh
//! the session first). The callback and the refresh have their own files.

mod callback;
mod refresh;

pub use callback::{LoginError, LoginStep, PendingLogin, CLOCK_SKEW_SECS};
pub use refresh::{PendingRefresh, REFRESH_SETTLE};

use url::form_urlencoded;

use crate::callout::CallOut;
use crate::config::Config;
use crate::cookies::{clear_cookie, domain_for, set_cookie, RequestCookies};
use crate::env::{Entropy, EntropyError, UnixTime};
use crate::headers::{plan_anonymous, plan_identity, CookieRewrite, HeaderPlan};
use crate::login::{LoginCookies, LoginState, LOGIN_TTL};
use crate::pages::{self, Page};
use crate::policy::{authorize, Denial};
use crate::provider::Provider;
use crate::routes::path_only;
use crate::seal::Sealer;
use crate::session::{Session, SessionCodec, SessionError};

/// How long a client is asked to wait while the provider metadata loads.
const RETRY_AFTER_SECS: &str = "5";

/// The request as the core sees it (borrowed from the host's header map).
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    /// `:path`, with the query.
    pub path: &'a str,
    pub cookie: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub x_requested_with: Option<&'a str>,
    pub sec_fetch_mode: Option<&'a str>,
    pub access_control_request_method: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// What a request came to: one value for the status, the log line and the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authenticated,
    Public,
    Preflight,
    LoginStarted,
    Unauthenticated(SessionError),
    Denied(Denial),
    NotReady,
    LoginCompleted,
    LoginFailed(LoginError),
    /// Forwarded with a refreshed session.
    Refreshed,
    /// Forwarded with the session it had: the refresh failed for now and is retried later.
    RefreshDeferred(LoginError),
    /// The refresh was refused for good: the session is over.
    SessionEnded(LoginError),
    SignedOut,
    NotFound,
    BadRequest,
    NoEntropy,
}

impl Outcome {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Public => "skip_auth",
            Self::Preflight => "cors_preflight",
            Self::LoginStarted => "login_started",
            Self::Unauthenticated(e) => e.code(),
            Self::Denied(d) => d.code(),
            Self::NotReady => "provider_not_ready",
            Self::LoginCompleted => "login_completed",
            Self::LoginFailed(e) => e.code(),
            Self::Refreshed => "session_refreshed",
            Self::RefreshDeferred(_) => "refresh_deferred",
            Self::SessionEnded(_) => "session_ended",
            Self::SignedOut => "signed_out",
            Self::NotFound => "not_found",
            Self::BadRequest => "bad_request",
            Self::NoEntropy => "no_entropy",
        }
    }
}

/// A local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Decision {
    /// Continue upstream with this header plan; add `set_cookies` to the upstream's response.
    Forward {
        plan: HeaderPlan,
        outcome: Outcome,
        user: Option<String>,
        set_cookies: Vec<String>,
    },
    Respond(Response),
    /// Call the token endpoint with the code, then `Gate::finish_login`.
    Redeem {
        call: CallOut,
        pending: Box<PendingLogin>,
    },
    /// If `Gate::claim_refresh` says so, call the token endpoint with the refresh token, then
    /// `Gate::finish_refresh`; otherwise `Gate::skip_refresh`.
    Refresh {
        call: CallOut,
        pending: Box<PendingRefresh>,
    },
}

/// Keeps an IdP-supplied error code printable and short.
pub(crate) fn safe_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

/// A relative path on this host (not `//host` nor `/\host`), or `None`.
pub fn local_path(target: &str) -> Option<&str> {
    let ok = target.starts_with('/')
        && !target.starts_with("//")
        && !target.starts_with("/\\")
        && !target.chars().any(|c| c.is_control() || c == '\\');
    ok.then_some(target)
}

/// An `:authority` that can be put in a URL: host characters and an optional port.
fn plausible_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority.len() <= 255
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// The configured filter: configuration plus the keys and codecs derived from it once.
#[derive(Debug)]
pub struct Gate {
    pub config: Config,
    sessions: SessionCodec,
    logins: LoginCookies,
}

impl Gate {
    pub fn new(config: Config) -> Self {
        let sealers = |purpose: &str| {
            let current = Sealer::new(&config.cookie.secret.derive(purpose));
            let previous = config
                .cookie
                .previous_secrets
                .iter()
                .map(|s| Sealer::new(&s.derive(purpose)))
                .collect::<Vec<_>>();
            (current, previous)
        };
        let (current, previous) = sealers("session");
        let sessions = SessionCodec::new(current, previous, config.cookie.name.clone());
        let (current, previous) = sealers("login");
        let logins = LoginCookies::new(current, previous, &config.cookie.name);
        Self {
            config,
            sessions,
            logins,
        }
    }

    pub fn sessions(&self) -> &SessionCodec {
        &self.sessions
    }

    /// Decides what to do with a request.
    pub fn decide(
        &self,
        req: &Request<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Decision {
        let cookies = RequestCookies::parse(req.cookie);
        let path = path_only(req.path);
        let prefix = self.config.proxy_prefix.as_str();
        if let Some(endpoint) = path
            .strip_prefix(prefix)
            .filter(|r| r.is_empty() || r.starts_with('/'))
        {
            return Decision::Respond(match endpoint {
                "/start" => self.start_from_endpoint(req, &cookies, provider, now, rng),
                "/callback" => return self.callback(req, &cookies, provider, now),
                "/sign_out" => self.sign_out(req, &cookies),
                _ => self.error(
                    req,
                    404,
                    "Not Found",
                    "There is nothing here.",
                    Outcome::NotFound,
                ),
            });
        }
        let rewrite = self.strip_own_cookies(&cookies);
        if req.method == "OPTIONS" && req.access_control_request_method.is_some() {
            return Decision::Forward {
                plan: plan_anonymous(&self.config, rewrite),
                outcome: Outcome::Preflight,
                user: None,
                set_cookies: Vec::new(),
            };
        }
        if self.config.routes.skips_auth(req.method, req.path) {
            return Decision::Forward {
                plan: plan_anonymous(&self.config, rewrite),
                outcome: Outcome::Public,
                user: None,
                set_cookies: Vec::new(),
            };
        }
        match self.sessions.decode(&cookies, now) {
            Ok(opened) => {
                let session = opened.session;
                // Read with a previous cookie_secret: re-issue it with the current one.
                let mut set_cookies = Vec::new();
                if opened.stale_key {
                    let old: Vec<String> = self
                        .sessions
                        .present(&cookies)
                        .map(str::to_string)
                        .collect();
                    match self.session_cookies(&session, &old, req.authority, rng) {
                        Ok(c) => set_cookies = c,
                        Err(EntropyError) => return Decision::Respond(self.no_entropy(req)),
                    }
                }
                let now_decision = match authorize(&self.config, &session.email, &session.groups) {
                    Ok(()) => Decision::Forward {
                        plan: plan_identity(&self.config, &session, rewrite.clone()),
                        outcome: Outcome::Authenticated,
                        user: Some(session.user.clone()),
                        set_cookies,
                    },
                    Err(denial) => {
                        let mut r = self.denied(req, &session, denial);
                        r.headers.extend(
                            set_cookies
                                .into_iter()
                                .map(|c| ("set-cookie".to_string(), c)),
                        );
                        Decision::Respond(r)
                    }
                };
                match provider {
                    Some(p) if self.refresh_due(&session, now) => {
                        self.refresh_decision(req, &cookies, session, p, rewrite, now_decision)
                    }
                    _ => now_decision,
                }
            }
            Err(why) if self.is_api(req) => Decision::Respond(self.error(
                req,
                401,
                "Unauthorized",
                "Sign in required.",
                Outcome::Unauthenticated(why),
            )),
            Err(_) => Decision::Respond(self.start_login(
                req,
                &cookies,
                req.path.to_string(),
                provider,
                now,
                rng,
            )),
        }
    }

    /// Whether the client is a program rather than a browser navigating: it gets 401, not a
    /// redirect.
    pub fn is_api(&self, req: &Request<'_>) -> bool {
        self.config.routes.is_api(req.path)
            || req
                .x_requested_with
                .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"))
            || req
                .sec_fetch_mode
                .is_some_and(|m| !m.eq_ignore_ascii_case("navigate"))
            || !req
                .accept
                .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
    }

    fn strip_own_cookies(&self, cookies: &RequestCookies<'_>) -> CookieRewrite {
        let ours = |n: &str| self.sessions.owns(n) || self.logins.owns(n);
        if !cookies.names().any(ours) {
            return CookieRewrite::Keep;
        }
        match cookies.header_without(ours) {
            Some(rest) => CookieRewrite::Replace(rest),
            None => CookieRewrite::Remove,
        }
    }

    /// `Set-Cookie` values that store `session`, and delete the parts in `old` it no longer uses
    /// (a session that shrank, or went from split to whole).
    pub(crate) fn session_cookies(
        &self,
        session: &Session,
        old: &[String],
        host: &str,
        rng: &mut dyn Entropy,
    ) -> Result<Vec<String>, EntropyError> {
        let parts = self.sessions.encode(session, rng)?;
        let domain = domain_for(&self.config.cookie, host);
        let c = &self.config.cookie;
        let mut out: Vec<String> = parts
            .iter()
            .map(|(n, v)| set_cookie(c, n, v, c.expire, domain))
            .collect();
        out.extend(
            old.iter()
                .filter(|o| !parts.iter().any(|(n, _)| n == *o))
                .map(|o| clear_cookie(c, o, domain)),
        );
        Ok(out)
    }

    pub(crate) fn redirect_uri(&self, req: &Request<'_>) -> Option<String> {
        if let Some(u) = &self.config.redirect_url {
            return Some(u.to_string());
        }
        if !plausible_authority(req.authority) {
            return None;
        }
        let scheme = if req.scheme == "http" {
            "http"
        } else {
            "https"
        };
        Some(format!(
            "{scheme}://{}{}",
            req.authority,
            self.config.callback_path()
        ))
    }

    /// The configured scope, plus `offline_access` when sessions are refreshed and the provider
    /// offers it (a refresh token is needed).
    fn scope(&self, provider: &Provider) -> String {
        let scope = &self.config.scope;
        let wants = !self.config.cookie.refresh.is_zero()
            && provider
                .scopes_supported
                .iter()
                .any(|s| s == "offline_access")
            && !scope.split(' ').any(|s| s == "offline_access");
        if wants {
            format!("{scope} offline_access")
        } else {
            scope.clone()
        }
    }

    fn start_from_endpoint(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Response {
        let rd = query_param(req.path, "rd");
        let return_to = rd
            .as_deref()
            .and_then(local_path)
            .unwrap_or("/")
            .to_string();
        self.start_login(req, cookies, return_to, provider, now, rng)
    }

    /// 302 to the authorization endpoint, with the flow's state in its own sealed cookie.
    pub(crate) fn start_login(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        return_to: String,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Response {
        let Some(provider) = provider else {
            return self.not_ready(req);
        };
        let Some(redirect_uri) = self.redirect_uri(req) else {
            return self.error(
                req,
                400,
                "Bad Request",
                "The request's host is not valid.",
                Outcome::BadRequest,
            );
        };
        let sealed = LoginState::new(return_to, self.config.pkce, now, rng)
            .and_then(|login| Ok((self.logins.seal(&login, rng)?, login)));
        let Ok(((cookie_name, cookie_value), login)) = sealed else {
            return self.no_entropy(req);
        };
        let mut url = provider.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", &self.scope(provider))
                .append_pair("state", login.state.as_str())
                .append_pair("nonce", login.nonce.as_str());
            if let Some(challenge) = login.code_challenge() {
                q.append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        let domain = domain_for(&self.config.cookie, req.authority);
        let mut headers = vec![
            ("location".to_string(), url.to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
            (
                "set-cookie".to_string(),
                set_cookie(
                    &self.config.cookie,
                    &cookie_name,
                    &cookie_value,
                    LOGIN_TTL,
                    domain,
                ),
            ),
        ];
        for old in self.logins.to_evict(cookies, now) {
            headers.push((
                "set-cookie".to_string(),
                clear_cookie(&self.config.cookie, &old, domain),
            ));
        }
        Response {
            status: 302,
            headers,
            body: String::new(),
            outcome: Outcome::LoginStarted,
        }
    }

    /// Clears the session (every part) and any login flows, then 302 to `rd` when it is a path
    /// on this host, else to `/`.
    fn sign_out(&self, req: &Request<'_>, cookies: &RequestCookies<'_>) -> Response {
        let rd = query_param(req.path, "rd");
        let target = rd.as_deref().and_then(local_path).unwrap_or("/");
        let domain = domain_for(&self.config.cookie, req.authority);
        let cookie = &self.config.cookie;
        let mut headers = vec![
            ("location".to_string(), target.to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
            (
                "set-cookie".to_string(),
                clear_cookie(cookie, self.sessions.name(), domain),
            ),
        ];
        for name in cookies.names() {
            if (self.sessions.owns(name) && name != self.sessions.name()) || self.logins.owns(name)
            {
                headers.push(("set-cookie".to_string(), clear_cookie(cookie, name, domain)));
            }
        }
        Response {
            status: 302,
            headers,
            body: String::new(),
            outcome: Outcome::SignedOut,
        }
    }

    pub(crate) fn denied(&self, req: &Request<'_>, session: &Session, denial: Denial) -> Response {
        let who = if session.email.is_empty() {
            &session.user
        } else {
            &session.email
        };
        let sign_out = format!("{}/sign_out", self.config.proxy_prefix);
        self.respond(
            req,
            Page {
                status: 403,
                title: "Forbidden",
                message: denial.message(),
                signed_in_as: Some(who),
                sign_out_url: Some(&sign_out),
                ..Page::default()
            },
            Outcome::Denied(denial),
        )
    }

    pub(crate) fn not_ready(&self, req: &Request<'_>) -> Response {
        let mut r = self.error(
            req,
            503,
            "Service Unavailable",
            "Sign-in is starting up: the identity provider's configuration is not loaded yet. Please try again in a moment.",
            Outcome::NotReady,
        );
        r.headers
            .push(("retry-after".into(), RETRY_AFTER_SECS.into()));
        r
    }

    pub(crate) fn no_entropy(&self, req: &Request<'_>) -> Response {
        self.error(
            req,
            500,
            "Internal Error",
            "The gateway could not start a secure sign-in.",
            Outcome::NoEntropy,
        )
    }

    pub(crate) fn error(
        &self,
        req: &Request<'_>,
        status: u16,
        title: &str,
        message: &str,
        outcome: Outcome,
    ) -> Response {
        self.respond(
            req,
            Page {
                status,
                title,
                message,
                ..Page::default()
            },
            outcome,
        )
    }

    /// A page for browsers, JSON for programs.
    pub(crate) fn respond<'a>(
        &self,
        req: &Request<'a>,
        mut page: Page<'a>,
        outcome: Outcome,
    ) -> Response {
        page.request_id = req.request_id;
        let (content_type, body) = if self.is_api(req) {
            (
                "application/json",
                pages::json(outcome.code(), page.message, req.request_id),
            )
        } else {
            ("text/html; charset=utf-8", pages::html(&page))
        };
        Response {
            status: page.status,
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body,
            outcome,
        }
    }
}

/// The first value of a query parameter, decoded.
fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .take(32)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests;
