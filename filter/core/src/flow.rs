//! The request decisions of the browser login flow: a request head, the clock and randomness go
//! in; a `Decision` comes out (forward with a header plan, answer locally, or exchange a code
//! at the token endpoint and then call `Gate::finish_login`).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use url::form_urlencoded;

use crate::callout::{CallOut, CallResult, MAX_RESPONSE_BODY};
use crate::config::{ClientAuthMethod, Config};
use crate::cookies::{clear_cookie, domain_for, set_cookie, RequestCookies};
use crate::env::{Entropy, UnixTime};
use crate::headers::{plan_anonymous, plan_identity, CookieRewrite, HeaderPlan};
use crate::identity::Identity;
use crate::jwt::{verify_id_token, IdTokenCheck, VerifyError};
use crate::login::{LoginCookies, LoginState, LoginStateError, LOGIN_TTL};
use crate::pages::{self, Page};
use crate::policy::{authorize, Denial};
use crate::provider::Provider;
use crate::routes::path_only;
use crate::seal::Sealer;
use crate::session::{Session, SessionCodec, SessionError};

/// Clock difference allowed with the IdP when checking token times.
pub const CLOCK_SKEW_SECS: u64 = 60;
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

/// Why a login did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// The IdP redirected back with `error=` (its code, reduced to safe characters).
    IdpError(String),
    MissingCode,
    MissingState,
    LoginState(LoginStateError),
    /// The callback's `iss` (RFC 9207) names another issuer: a mix-up attempt.
    IssuerMismatch,
    IdpUnreachable,
    /// The token endpoint refused the code (HTTP status, OAuth error code).
    ExchangeRefused(u16, String),
    TokenResponseInvalid,
    IdToken(VerifyError),
    EmailUnverified,
}

impl LoginError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::IdpError(_) => "idp_error",
            Self::MissingCode => "callback_missing_code",
            Self::MissingState => "callback_missing_state",
            Self::LoginState(LoginStateError::Missing) => "login_state_missing",
            Self::LoginState(LoginStateError::Unreadable) => "login_state_unreadable",
            Self::LoginState(LoginStateError::Expired) => "login_state_expired",
            Self::LoginState(LoginStateError::StateMismatch) => "state_mismatch",
            Self::IssuerMismatch => "callback_iss_mismatch",
            Self::IdpUnreachable => "idp_unreachable",
            Self::ExchangeRefused(..) => "code_exchange_refused",
            Self::TokenResponseInvalid => "token_response_invalid",
            Self::IdToken(e) => e.code(),
            Self::EmailUnverified => "email_unverified",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::IdpError(e) if e == "access_denied" => 403,
            Self::IdpError(_) => 502,
            Self::MissingCode | Self::MissingState => 400,
            Self::LoginState(_) | Self::IssuerMismatch | Self::EmailUnverified => 403,
            Self::IdToken(VerifyError::NonceMismatch) => 403,
            Self::IdpUnreachable => 503,
            Self::ExchangeRefused(s, _) if *s < 500 => 403,
            Self::ExchangeRefused(..) | Self::TokenResponseInvalid | Self::IdToken(_) => 502,
        }
    }

    /// What the user is told: enough to act on, nothing secret.
    fn message(&self) -> &'static str {
        match self {
            Self::IdpError(e) if e == "access_denied" => "The identity provider denied the sign-in.",
            Self::IdpError(_) => "The identity provider returned an error.",
            Self::MissingCode | Self::MissingState => "The sign-in response is incomplete.",
            Self::LoginState(LoginStateError::Expired) => "The sign-in took too long. Please try again.",
            Self::LoginState(_) | Self::IssuerMismatch => {
                "This sign-in was not started in this browser, or was already used. Please try again."
            }
            Self::IdpUnreachable => "The identity provider is unavailable. Please try again in a moment.",
            Self::ExchangeRefused(..) => "The identity provider did not accept the sign-in. Please try again.",
            Self::TokenResponseInvalid | Self::IdToken(_) => {
                "The identity provider's answer could not be verified."
            }
            Self::EmailUnverified => "Your email address is not verified at the identity provider.",
        }
    }
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdpError(e) => write!(f, "the IdP returned error={e}"),
            Self::ExchangeRefused(s, e) => write!(f, "the token endpoint answered {s} {e}"),
            Self::IdToken(e) => write!(f, "ID token refused: {e}"),
            other => f.write_str(other.message()),
        }
    }
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

/// A code exchange waiting for the token endpoint's answer. Moved into `finish_login`, so it is
/// handled once.
#[derive(Debug)]
pub struct PendingLogin {
    login: LoginState,
    login_cookie: String,
    host: String,
    /// Session cookie parts the browser has now, to delete those the new session does not use.
    old_session_cookies: Vec<String>,
    api: bool,
    request_id: Option<String>,
}

#[derive(Debug)]
pub enum Decision {
    Forward {
        plan: HeaderPlan,
        outcome: Outcome,
        user: Option<String>,
    },
    Respond(Response),
    Redeem {
        call: CallOut,
        pending: Box<PendingLogin>,
    },
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
}

/// Keeps an IdP-supplied error code printable and short.
fn safe_code(raw: &str) -> String {
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
        let session_key = config.cookie.secret.derive("session");
        let login_key = config.cookie.secret.derive("login");
        let sessions = SessionCodec::new(Sealer::new(&session_key), config.cookie.name.clone());
        let logins = LoginCookies::new(Sealer::new(&login_key), &config.cookie.name);
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
            };
        }
        if self.config.routes.skips_auth(req.method, req.path) {
            return Decision::Forward {
                plan: plan_anonymous(&self.config, rewrite),
                outcome: Outcome::Public,
                user: None,
            };
        }
        match self.sessions.decode(&cookies, now) {
            Ok(session) => match authorize(&self.config, &session.email, &session.groups) {
                Ok(()) => Decision::Forward {
                    plan: plan_identity(&self.config, &session, rewrite),
                    outcome: Outcome::Authenticated,
                    user: Some(session.user),
                },
                Err(denial) => Decision::Respond(self.denied(req, &session, denial)),
            },
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

    fn redirect_uri(&self, req: &Request<'_>) -> Option<String> {
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
    fn start_login(
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
                .append_pair("scope", &self.config.scope)
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

    fn callback(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
    ) -> Decision {
        let query = req.path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let (mut code, mut state, mut error, mut iss) = (None, None, None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()).take(32) {
            let slot = match k.as_ref() {
                "code" => &mut code,
                "state" => &mut state,
                "error" => &mut error,
                "iss" => &mut iss,
                _ => continue,
            };
            slot.get_or_insert(v.into_owned());
        }
        let fail = |e: LoginError, flow_cookie: Option<&str>| {
            let mut r = self.login_failed(req, e);
            if let Some(name) = flow_cookie {
                let domain = domain_for(&self.config.cookie, req.authority);
                r.headers.push((
                    "set-cookie".into(),
                    clear_cookie(&self.config.cookie, name, domain),
                ));
            }
            Decision::Respond(r)
        };
        let Some(state) = state else {
            return fail(LoginError::MissingState, None);
        };
        let flow_cookie = self.logins.cookie_name(&state);
        let flow_cookie = cookies.get(&flow_cookie).map(|_| flow_cookie);
        if let Some(e) = error {
            return fail(LoginError::IdpError(safe_code(&e)), flow_cookie.as_deref());
        }
        let Some(code) = code else {
            return fail(LoginError::MissingCode, flow_cookie.as_deref());
        };
        let (login_cookie, login) = match self.logins.take(cookies, &state, now) {
            Ok(found) => found,
            Err(e) => return fail(LoginError::LoginState(e), flow_cookie.as_deref()),
        };
        if iss.is_some_and(|i| i != self.config.issuer) {
            return fail(LoginError::IssuerMismatch, Some(&login_cookie));
        }
        let Some(provider) = provider else {
            return Decision::Respond(self.not_ready(req));
        };
        let Some(redirect_uri) = self.redirect_uri(req) else {
            return Decision::Respond(self.error(
                req,
                400,
                "Bad Request",
                "The request's host is not valid.",
                Outcome::BadRequest,
            ));
        };
        let call = self.token_request(provider, &code, &redirect_uri, &login);
        Decision::Redeem {
            call,
            pending: Box::new(PendingLogin {
                login,
                login_cookie,
                host: req.authority.to_string(),
                old_session_cookies: self.sessions.present(cookies).map(str::to_string).collect(),
                api: self.is_api(req),
                request_id: req.request_id.map(str::to_string),
            }),
        }
    }

    /// The authorization-code grant (RFC 6749 §4.1.3) with the PKCE verifier (RFC 7636 §4.5).
    fn token_request(
        &self,
        provider: &Provider,
        code: &str,
        redirect_uri: &str,
        login: &LoginState,
    ) -> CallOut {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri);
        if let Some(v) = &login.pkce_verifier {
            form.append_pair("code_verifier", v.as_str());
        }
        let mut extra = Vec::new();
        match self.config.client_auth_method {
            ClientAuthMethod::Basic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and
                // base64-encoded.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!(
                    "{}:{}",
                    enc(&self.config.client_id),
                    enc(self.config.client_secret.expose())
                );
                extra.push((
                    "authorization".to_string(),
                    format!("Basic {}", STANDARD.encode(pair)),
                ));
            }
            ClientAuthMethod::Post => {
                form.append_pair("client_id", &self.config.client_id)
                    .append_pair("client_secret", self.config.client_secret.expose());
            }
        }
        CallOut::post_form(
            &provider.token_endpoint,
            self.config.idp_timeout,
            form.finish(),
            extra,
        )
    }

    /// Completes a login with the token endpoint's answer: verify, seal the session, go back.
    pub fn finish_login(
        &self,
        pending: PendingLogin,
        result: CallResult<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Response {
        let req = Request {
            authority: &pending.host,
            request_id: pending.request_id.as_deref(),
            accept: (!pending.api).then_some("text/html"),
            ..Request::default()
        };
        let session = match self.redeem(&pending, result, provider, now) {
            Ok(s) => s,
            Err(e) => {
                let mut r = self.login_failed(&req, e);
                let domain = domain_for(&self.config.cookie, &pending.host);
                r.headers.push((
                    "set-cookie".into(),
                    clear_cookie(&self.config.cookie, &pending.login_cookie, domain),
                ));
                return r;
            }
        };
        let Ok(parts) = self.sessions.encode(&session, rng) else {
            return self.no_entropy(&req);
        };
        let domain = domain_for(&self.config.cookie, &pending.host);
        let cookie = &self.config.cookie;
        let mut headers = vec![
            ("location".to_string(), pending.login.return_to.clone()),
            ("cache-control".to_string(), "no-store".to_string()),
        ];
        for (name, value) in &parts {
            headers.push((
                "set-cookie".into(),
                set_cookie(cookie, name, value, cookie.expire, domain),
            ));
        }
        for old in &pending.old_session_cookies {
            if !parts.iter().any(|(n, _)| n == old) {
                headers.push(("set-cookie".into(), clear_cookie(cookie, old, domain)));
            }
        }
        headers.push((
            "set-cookie".into(),
            clear_cookie(cookie, &pending.login_cookie, domain),
        ));
        Response {
            status: 302,
            headers,
            body: String::new(),
            outcome: Outcome::LoginCompleted,
        }
    }

    fn redeem(
        &self,
        pending: &PendingLogin,
        result: CallResult<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        let status = result.status.ok_or(LoginError::IdpUnreachable)?;
        if result.body.len() > MAX_RESPONSE_BODY {
            return Err(LoginError::TokenResponseInvalid);
        }
        if status != 200 {
            let code = serde_json::from_slice::<OAuthError>(result.body)
                .map(|e| safe_code(&e.error))
                .unwrap_or_default();
            return Err(LoginError::ExchangeRefused(status, code));
        }
        let tokens: TokenResponse =
            serde_json::from_slice(result.body).map_err(|_| LoginError::TokenResponseInvalid)?;
        let id_token = tokens.id_token.ok_or(LoginError::TokenResponseInvalid)?;
        let provider = provider.ok_or(LoginError::IdpUnreachable)?;
        let claims = verify_id_token(
            &id_token,
            &provider.keys,
            &IdTokenCheck {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce: Some(pending.login.nonce.as_str()),
                allowed: &provider.algorithms,
                now,
                skew_secs: CLOCK_SKEW_SECS,
            },
        )
        .map_err(LoginError::IdToken)?;
        let id = Identity::from_claims(&claims.subject, &claims.other, &self.config.claims);
        if id.email_verified == Some(false) && !self.config.allow_unverified_email {
            return Err(LoginError::EmailUnverified);
        }
        Ok(Session {
            user: id.user,
            email: id.email,
            groups: id.groups,
            preferred_username: id.preferred_username,
            created_at: now,
            expires_at: now + self.config.cookie.expire.as_secs(),
            id_token: self.config.set_authorization_header.then_some(id_token),
            access_token: if self.config.pass_access_token {
                tokens.access_token
            } else {
                None
            },
            refresh_token: None,
        })
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

    fn denied(&self, req: &Request<'_>, session: &Session, denial: Denial) -> Response {
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

    fn login_failed(&self, req: &Request<'_>, e: LoginError) -> Response {
        let start = format!("{}/start", self.config.proxy_prefix);
        let status = e.status();
        let page = Page {
            status,
            title: if status == 503 {
                "Service Unavailable"
            } else {
                "Sign-in Failed"
            },
            message: e.message(),
            retry_url: Some(&start),
            ..Page::default()
        };
        let mut r = self.respond(req, page, Outcome::LoginFailed(e));
        if status == 503 {
            r.headers
                .push(("retry-after".into(), RETRY_AFTER_SECS.into()));
        }
        r
    }

    fn not_ready(&self, req: &Request<'_>) -> Response {
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

    fn no_entropy(&self, req: &Request<'_>) -> Response {
        self.error(
            req,
            500,
            "Internal Error",
            "The gateway could not start a secure sign-in.",
            Outcome::NoEntropy,
        )
    }

    fn error(
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
    fn respond<'a>(&self, req: &Request<'a>, mut page: Page<'a>, outcome: Outcome) -> Response {
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
#[path = "flow_tests.rs"]
mod tests;
