//! The request decisions: a request head, the clock and randomness go in; a `Decision` comes out
//! (forward with a header plan, answer locally, exchange a code at the token endpoint, or refresh
//! the session first). The callback and the refresh have their own files.

mod bearer;
mod callback;
mod refresh;
mod tokens;

pub use bearer::PendingBearer;
pub use callback::{LoginError, LoginStep, PendingLogin, CLOCK_SKEW_SECS};
pub use refresh::{PendingRefresh, REFRESH_SETTLE};

use std::cell::RefCell;
use std::sync::Arc;

use url::form_urlencoded;

use crate::bearer::{bearer_token, BearerCache, BearerError};
use crate::callout::CallOut;
use crate::config::{Config, SameSite};
use crate::cookies::{clear_cookie, domain_for, set_cookie, set_cookie_samesite, RequestCookies};
use crate::env::{Entropy, EntropyError, UnixTime};
use crate::head::HeadError;
use crate::headers::{plan_anonymous, plan_identity, CookieRewrite, HeaderPlan};
use crate::headers::{Removals, Strip};
use crate::login::{LoginCookies, LoginState, LOGIN_TTL};
use crate::pages::{self, Page};
use crate::policy::{Access, Denial, RuleSet};
use crate::provider::Provider;
use crate::routes::{path_only, readings};
use crate::seal::Sealer;
use crate::session::{Session, SessionCodec, SessionError};

/// How long a client is asked to wait while the provider metadata loads.
const RETRY_AFTER_SECS: &str = "5";
/// The longest URL kept to return to after a login: longer deep links return to their path
/// without the query, or to `/` (the login-state cookie must stay under 4 KB).
const MAX_RETURN_URL: usize = 2048;

/// The request as the core sees it (borrowed from the host's header map; see `head`).
#[derive(Clone, Copy, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    /// `:path`, with the query.
    pub path: &'a str,
    /// Bytes: other apps' cookies need not be UTF-8.
    pub cookie: Option<&'a [u8]>,
    pub accept: Option<&'a str>,
    pub x_requested_with: Option<&'a str>,
    pub sec_fetch_mode: Option<&'a str>,
    pub access_control_request_method: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// Every header name the request has, to find spoofed identity headers.
    pub header_names: &'a [&'a [u8]],
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("authority", &self.authority)
            .field("path", &path_only(self.path))
            .field("cookie", &self.cookie.map(|_| "[redacted]"))
            .field("authorization", &self.authorization.map(|_| "[redacted]"))
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// What a continuation keeps of the request that started it: enough to answer it (page or
/// JSON, request id) and to judge it again (host, path). `Debug` leaves out the query, which
/// may hold an authorization code.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    method: String,
    scheme: String,
    host: String,
    path: String,
    api: bool,
    request_id: Option<String>,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &path_only(&self.path))
            .field("api", &self.api)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl Origin {
    pub(crate) fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            scheme: &self.scheme,
            authority: &self.host,
            path: &self.path,
            request_id: self.request_id.as_deref(),
            accept: (!self.api).then_some("text/html"),
            ..Request::default()
        }
    }
}

/// The providers' keys as loaded now: the main issuer's, and each `extra_jwt_issuers` entry's
/// (by index; `None` until loaded, or when it is the main issuer).
#[derive(Debug, Clone, Copy, Default)]
pub struct Keys<'a> {
    pub main: Option<&'a Provider>,
    pub extra: &'a [Option<Arc<Provider>>],
}

/// What a request came to: one value for the status, the log line and the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authenticated,
    Public,
    Preflight,
    LoginStarted,
    Unauthenticated(SessionError),
    /// A verified bearer token (`skip_jwt_bearer_tokens`).
    Bearer,
    BearerRejected(BearerError),
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
    UserInfo,
    NotFound,
    BadRequest,
    NoEntropy,
}

impl Outcome {
    /// The counter this outcome increments (proxy-wasm metric, `wasmcustom.<name>` in Envoy).
    /// The family says what happened, the suffix why: the same value as the log line's code.
    pub fn metric(&self) -> String {
        let family = match self {
            Self::LoginStarted => return "oidc_gate_login_started".into(),
            Self::LoginCompleted => return "oidc_gate_login_completed".into(),
            Self::Authenticated => return "oidc_gate_session_accepted".into(),
            Self::Bearer => return "oidc_gate_bearer_accepted".into(),
            Self::Refreshed => return "oidc_gate_refresh_succeeded".into(),
            Self::LoginFailed(_) => "oidc_gate_login_failed",
            Self::Unauthenticated(_) => "oidc_gate_session_rejected",
            Self::Denied(_) => "oidc_gate_access_denied",
            Self::BearerRejected(_) => "oidc_gate_bearer_rejected",
            Self::RefreshDeferred(_) => "oidc_gate_refresh_deferred",
            Self::SessionEnded(_) => "oidc_gate_refresh_ended_session",
            Self::Public | Self::Preflight => "oidc_gate_passed_without_login",
            Self::NotReady | Self::NoEntropy | Self::BadRequest | Self::NotFound => {
                "oidc_gate_refused"
            }
            Self::SignedOut | Self::UserInfo => "oidc_gate_endpoint",
        };
        format!("{family}_{}", self.reason())
    }

    /// Why, for the metric: a refresh's outcome counts by what the refresh came to.
    fn reason(&self) -> &'static str {
        match self {
            Self::RefreshDeferred(e) | Self::SessionEnded(e) => e.code(),
            other => other.code(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Public => "skip_auth",
            Self::Preflight => "cors_preflight",
            Self::LoginStarted => "login_started",
            Self::Unauthenticated(e) => e.code(),
            Self::Bearer => "bearer_authenticated",
            Self::BearerRejected(e) => e.code(),
            Self::Denied(d) => d.code(),
            Self::NotReady => "provider_not_ready",
            Self::LoginCompleted => "login_completed",
            Self::LoginFailed(e) => e.code(),
            Self::Refreshed => "session_refreshed",
            Self::RefreshDeferred(_) => "refresh_deferred",
            Self::SessionEnded(_) => "session_ended",
            Self::SignedOut => "signed_out",
            Self::UserInfo => "userinfo",
            Self::NotFound => "not_found",
            Self::BadRequest => "bad_request",
            Self::NoEntropy => "no_entropy",
        }
    }
}

/// A local reply. `Debug` shows cookie names, not their sealed values.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub outcome: Outcome,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| match k.as_str() {
                "set-cookie" => (k.as_str(), v.split('=').next().unwrap_or_default()),
                _ => (k.as_str(), v.as_str()),
            })
            .collect();
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
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
    /// A bearer token names a key the filter does not have: refetch the JWKS of issuer
    /// `loader` (0: the main issuer, `i + 1`: `extra_jwt_issuers[i]`; rate-limited), then
    /// `Gate::resume_bearer`.
    RefetchBearerKeys {
        loader: usize,
        pending: Box<PendingBearer>,
    },
}

impl Decision {
    /// The same decision, counted as `outcome` when it goes upstream (a refresh's result).
    pub(crate) fn with_outcome(self, outcome: Outcome) -> Self {
        match self {
            Self::Forward {
                plan,
                user,
                set_cookies,
                ..
            } => Self::Forward {
                plan,
                outcome,
                user,
                set_cookies,
            },
            other => other,
        }
    }
}

/// How a request that goes upstream is cleaned: the spoofable headers it carries and its
/// `Cookie` header without the filter's cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forwarding {
    pub(crate) strip: Strip,
    pub(crate) rewrite: CookieRewrite,
}

/// Keeps an IdP-supplied error code printable and short.
pub(crate) fn safe_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

/// A relative path on this host (not `//host` nor `/\host`), or `None`.
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
    removals: Removals,
    /// Verified bearer tokens of this VM.
    bearer_cache: RefCell<BearerCache>,
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
            removals: Removals::new(&config),
            config,
            sessions,
            logins,
            bearer_cache: RefCell::new(BearerCache::default()),
        }
    }

    pub fn sessions(&self) -> &SessionCodec {
        &self.sessions
    }

    /// Decides what to do with a request (main provider only; see `decide_with`).
    pub fn decide(
        &self,
        req: &Request<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Decision {
        self.decide_with(
            req,
            Keys {
                main: provider,
                extra: &[],
            },
            now,
            rng,
        )
    }

    /// Decides what to do with a request.
    pub fn decide_with(
        &self,
        req: &Request<'_>,
        keys: Keys<'_>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Decision {
        let provider = keys.main;
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
                "/sign_out" => self.sign_out(req, &cookies, provider, now),
                "/userinfo" => self.userinfo(req, &cookies, now),
                _ => self.error(
                    req,
                    404,
                    "Not Found",
                    "There is nothing here.",
                    Outcome::NotFound,
                ),
            });
        }
        let ctx = Forwarding {
            strip: self.removals.strip(req.header_names),
            rewrite: self.strip_own_cookies(&cookies),
        };
        if self.config.skip_auth_preflight
            && req.method == "OPTIONS"
            && req.access_control_request_method.is_some()
        {
            return self.anonymous(ctx, Outcome::Preflight);
        }
        let rules = match self.access(req.method, req.authority, req.path) {
            Access::Public => return self.anonymous(ctx, Outcome::Public),
            Access::Rules(r) => r,
        };
        if self.config.skip_jwt_bearer_tokens {
            if let Some(token) = bearer_token(req.authorization) {
                return self.bearer(req, token, &rules, keys, ctx, now);
            }
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
                match provider {
                    Some(p) if self.refresh_due(&session, now) => {
                        let fallback = self.admit(req, &session, &rules, ctx.clone(), set_cookies);
                        self.refresh_decision(req, &cookies, session, p, ctx, fallback)
                    }
                    _ => self.admit(req, &session, &rules, ctx, set_cookies),
                }
            }
            Err(why) if self.is_api(req) => Decision::Respond(self.error(
                req,
                401,
                "Unauthorized",
                "Sign in required.",
                Outcome::Unauthenticated(why),
            )),
            Err(_) => {
                let return_to = self.return_target(req.path, req.authority);
                Decision::Respond(self.start_login(req, &cookies, return_to, provider, now, rng))
            }
        }
    }

    /// A request that goes on without an identity: spoofed identity headers still go.
    fn anonymous(&self, ctx: Forwarding, outcome: Outcome) -> Decision {
        Decision::Forward {
            plan: plan_anonymous(&self.removals, &ctx.strip, ctx.rewrite),
            outcome,
            user: None,
            set_cookies: Vec::new(),
        }
    }

    /// Who may pass: public when every reading of the path is public (a `skip_auth` policy or a
    /// `skip_auth_routes` rule), else the rules of every place a reading falls under.
    pub(crate) fn access(&self, method: &str, authority: &str, path: &str) -> Access<'_> {
        let routes = &self.config.routes;
        let readings = readings(path_only(path));
        let judged: Vec<(&str, bool)> = readings
            .iter()
            .map(|r| (r.as_ref(), routes.skips_auth(method, r)))
            .collect();
        self.config.policies.access(authority, &judged)
    }

    /// A signed-in request under `rules`: forwarded with the identity, or 403 (session kept).
    pub(crate) fn admit(
        &self,
        req: &Request<'_>,
        session: &Session,
        rules: &RuleSet<'_>,
        ctx: Forwarding,
        set_cookies: Vec<String>,
    ) -> Decision {
        match rules.authorize(&session.email, &session.groups) {
            Ok(()) => Decision::Forward {
                plan: plan_identity(
                    &self.config,
                    &self.removals,
                    &ctx.strip,
                    session.into(),
                    ctx.rewrite,
                ),
                outcome: Outcome::Authenticated,
                user: Some(session.user.clone()),
                set_cookies,
            },
            Err(denial) => {
                let mut r = self.denied(req, session, denial);
                r.headers.extend(
                    set_cookies
                        .into_iter()
                        .map(|c| ("set-cookie".to_string(), c)),
                );
                Decision::Respond(r)
            }
        }
    }

    /// Where to send the browser after a login that `path` started: the same place when it is
    /// a safe local target (the `rd` rules) of reasonable length, else its path, else `/`.
    pub(crate) fn return_target(&self, path: &str, authority: &str) -> String {
        let target = self.config.whitelist.target(path, authority);
        if target.len() <= MAX_RETURN_URL {
            return target;
        }
        let without_query = path_only(&target);
        if without_query.len() <= MAX_RETURN_URL {
            without_query.to_string()
        } else {
            "/".to_string()
        }
    }

    /// `{proxy_prefix}/userinfo`: the signed-in user as JSON, as OAuth2-Proxy answers it.
    fn userinfo(&self, req: &Request<'_>, cookies: &RequestCookies<'_>, now: UnixTime) -> Response {
        match self.sessions.decode(cookies, now) {
            Ok(opened) => {
                let s = opened.session;
                let body = serde_json::json!({
                    "user": s.user,
                    "email": s.email,
                    "groups": s.groups,
                    "preferredUsername": s.preferred_username,
                });
                Response {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("cache-control".into(), "no-store".into()),
                    ],
                    body: body.to_string(),
                    outcome: Outcome::UserInfo,
                }
            }
            Err(why) => {
                let api = Request {
                    accept: Some("application/json"),
                    ..*req
                };
                self.error(
                    &api,
                    401,
                    "Unauthorized",
                    "Sign in required.",
                    Outcome::Unauthenticated(why),
                )
            }
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

    /// What a continuation keeps of `req`.
    pub(crate) fn origin(&self, req: &Request<'_>) -> Origin {
        Origin {
            method: req.method.to_string(),
            scheme: req.scheme.to_string(),
            host: req.authority.to_string(),
            path: req.path.to_string(),
            api: self.is_api(req),
            request_id: req.request_id.map(str::to_string),
        }
    }

    fn strip_own_cookies(&self, cookies: &RequestCookies<'_>) -> CookieRewrite {
        let ours = |n: &str| self.sessions.owns(n) || self.logins.owns(n);
        if !cookies.any_name(ours) {
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
        let rd = query_param(req.path, "rd").unwrap_or_default();
        let return_to = self.return_target(&rd, req.authority);
        let mut r = self.start_login(req, cookies, return_to, provider, now, rng);
        // login_hint passes through to the IdP (OIDC Core §3.1.2.1).
        if let Some(hint) = query_param(req.path, "login_hint").filter(|h| !h.is_empty()) {
            if let Some((_, location)) = r.headers.iter_mut().find(|(k, _)| k == "location") {
                if let Ok(mut url) = url::Url::parse(location) {
                    url.query_pairs_mut().append_pair("login_hint", &hint);
                    *location = url.to_string();
                }
            }
        }
        r
    }

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
        let return_to = self.absolute_if_elsewhere(req, return_to);
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
            if let Some(prompt) = &self.config.prompt {
                q.append_pair("prompt", prompt);
            }
            if let Some(acr) = &self.config.acr_values {
                q.append_pair("acr_values", acr);
            }
            for (k, v) in &self.config.login_url_parameters {
                q.append_pair(k, v);
            }
        }
        let domain = domain_for(&self.config.cookie, req.authority);
        let mut headers = vec![
            ("location".to_string(), url.to_string()),
            ("cache-control".to_string(), "no-store".to_string()),
            (
                "set-cookie".to_string(),
                set_cookie_samesite(
                    &self.config.cookie,
                    &cookie_name,
                    &cookie_value,
                    LOGIN_TTL,
                    domain,
                    login_samesite(self.config.cookie.samesite),
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
    /// A path on this host becomes an absolute URL when the callback lands on another host
    /// (a `redirect_url` elsewhere), so the browser comes back here after login.
    fn absolute_if_elsewhere(&self, req: &Request<'_>, return_to: String) -> String {
        let elsewhere = self.config.redirect_url.as_ref().is_some_and(|u| {
            let authority = match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
                None => u.host_str().unwrap_or("").to_string(),
            };
            !authority.eq_ignore_ascii_case(req.authority)
        });
        if elsewhere && return_to.starts_with('/') && plausible_authority(req.authority) {
            let scheme = if req.scheme == "http" {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{}{return_to}", req.authority)
        } else {
            return_to
        }
    }

    /// Clears the session (every part) and any login flows, then redirects to `rd` when it is
    /// allowed (own host or `whitelist_domains`), else to `/`; with `sign_out_at_idp`, by way
    /// of the IdP's `end_session_endpoint` (OpenID RP-Initiated Logout).
    fn sign_out(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
    ) -> Response {
        let rd = query_param(req.path, "rd").unwrap_or_default();
        let target = self.config.whitelist.target(&rd, req.authority);
        let mut location = target.clone();
        if self.config.sign_out_at_idp {
            if let Some(end) = provider.and_then(|p| p.end_session_endpoint.clone()) {
                location = self.end_session_url(end, req, cookies, &target, now);
            }
        }
        let domain = domain_for(&self.config.cookie, req.authority);
        let cookie = &self.config.cookie;
        let mut headers = vec![
            ("location".to_string(), location),
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

    /// The IdP's logout URL with `id_token_hint` (when the session kept the ID token),
    /// `client_id` and an absolute `post_logout_redirect_uri`.
    fn end_session_url(
        &self,
        mut end: url::Url,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        target: &str,
        now: UnixTime,
    ) -> String {
        let back = if target.starts_with('/') && plausible_authority(req.authority) {
            let scheme = if req.scheme == "http" {
                "http"
            } else {
                "https"
            };
            format!("{scheme}://{}{target}", req.authority)
        } else {
            target.to_string()
        };
        let hint = self
            .sessions
            .decode(cookies, now)
            .ok()
            .and_then(|o| o.session.id_token);
        {
            let mut q = end.query_pairs_mut();
            if let Some(h) = &hint {
                q.append_pair("id_token_hint", h.expose());
            }
            q.append_pair("client_id", &self.config.client_id);
            q.append_pair("post_logout_redirect_uri", &back);
        }
        end.to_string()
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

    /// A request whose head cannot be read (see `head`): 400, or 500 when the host's header
    /// list itself is broken. Nothing goes upstream.
    pub fn head_refused(&self, e: HeadError, request_id: Option<&str>) -> Response {
        let req = Request {
            request_id,
            ..Request::default()
        };
        match e {
            HeadError::Malformed => self.error(
                &req,
                500,
                "Internal Error",
                "The gateway could not read the request.",
                Outcome::BadRequest,
            ),
            HeadError::NotUtf8(_) | HeadError::Repeated(_) => self.error(
                &req,
                400,
                "Bad Request",
                "The request's headers are not valid.",
                Outcome::BadRequest,
            ),
        }
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

/// The login-state cookie must come back on the IdP's redirect, a cross-site navigation: `Lax`
/// when the session cookie is `Strict` (which that navigation would not carry).
fn login_samesite(session: SameSite) -> SameSite {
    match session {
        SameSite::Strict => SameSite::Lax,
        other => other,
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
