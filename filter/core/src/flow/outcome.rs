//! What a request came to, in one place: every outcome with its code (the log line's and the
//! metric's), its status, title and message when it is answered locally, and the one function
//! that renders such a reply, as a page for browsers or JSON for programs.

use std::borrow::Cow;
use std::fmt;

use super::{Gate, Request};
use crate::bearer::BearerError;
use crate::jwt::VerifyError;
use crate::login::LoginStateError;
use crate::pages::{self, Page};
use crate::policy::Denial;
use crate::session::SessionError;

/// How long a client is asked to wait when the IdP is not there yet.
const RETRY_AFTER_SECS: &str = "5";

/// What a request came to: one value for the status, the log line and the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authenticated,
    Public,
    Preflight,
    /// On an `optional_auth_routes` path, without a valid session: passed without identity.
    Optional,
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
    BadRequest(BadRequest),
    /// The host handed over a header list that does not parse.
    HostFault,
    NoEntropy,
}

/// What is wrong with a request the filter refuses with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// An `:authority` that cannot be put in a redirect URL.
    Host,
    /// A header the filter needs is not UTF-8, or appears twice where it must not.
    Headers,
    /// Readings of the path fall under places of different providers: which provider's
    /// session counts would depend on how the upstream reads the path.
    Path,
}

/// Why a login (or a refresh) did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// The IdP redirected back with `error=` (its code, reduced to safe characters).
    IdpError(String),
    MissingCode,
    MissingState,
    LoginState(LoginStateError),
    /// The callback's `iss` (RFC 9207) names another issuer: a mix-up attempt.
    IssuerMismatch,
    /// The provider says it sends `iss` (RFC 9207 §3) and this callback has none.
    IssuerMissing,
    IdpUnreachable,
    /// The token endpoint refused the code (HTTP status, OAuth error code).
    ExchangeRefused(u16, String),
    TokenResponseInvalid,
    IdToken(VerifyError),
    EmailUnverified,
    /// `acr_values` was asked for and the ID token's `acr` is none of them (OIDC Core §3.1.3.7
    /// step 12): the step-up did not happen.
    AcrNotSatisfied,
    /// A refresh returned an ID token for another user (OIDC Core §12.2).
    SubjectChanged,
    /// `pushed_authorization_requests` is on and the provider's discovery lists no
    /// `pushed_authorization_request_endpoint`.
    ParUnavailable,
    /// The PAR endpoint refused the request or answered without a `request_uri` (HTTP status,
    /// OAuth error code).
    ParRefused(u16, String),
    /// The UserInfo endpoint did not answer with JSON claims (unreachable, refused the access
    /// token, a signed answer).
    UserInfoFailed,
    /// The UserInfo endpoint answered for another `sub` than the ID token's (OIDC Core
    /// §5.3.2).
    UserInfoSubjectMismatch,
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
            Self::IssuerMissing => "callback_iss_missing",
            Self::IdpUnreachable => "idp_unreachable",
            Self::ExchangeRefused(..) => "code_exchange_refused",
            Self::TokenResponseInvalid => "token_response_invalid",
            Self::IdToken(e) => e.code(),
            Self::EmailUnverified => "email_unverified",
            Self::AcrNotSatisfied => "acr_not_satisfied",
            Self::SubjectChanged => "sub_changed",
            Self::ParUnavailable => "par_unavailable",
            Self::ParRefused(..) => "par_refused",
            Self::UserInfoFailed => "userinfo_failed",
            Self::UserInfoSubjectMismatch => "userinfo_sub_mismatch",
        }
    }

    pub fn status(&self) -> u16 {
        self.wording().status
    }

    /// Status and message of the page that says the login failed.
    fn wording(&self) -> Wording {
        let (status, message) = match self {
            Self::IdpError(e) if e == "access_denied" => (403, "The identity provider denied the sign-in."),
            Self::IdpError(_) => (502, "The identity provider returned an error."),
            Self::MissingCode | Self::MissingState => (400, "The sign-in response is incomplete."),
            Self::LoginState(LoginStateError::Expired) => (403, "The sign-in took too long. Please try again."),
            Self::LoginState(_) | Self::IssuerMismatch | Self::IssuerMissing => (403,
                "This sign-in was not started in this browser, or was already used. Please try again."),
            Self::AcrNotSatisfied => (403,
                "The sign-in did not use the authentication level this application requires (for example a second factor)."),
            Self::SubjectChanged | Self::UserInfoSubjectMismatch => (403, "The identity provider answered for another user. Please sign in again."),
            Self::UserInfoFailed => (502, "The identity provider's user information could not be read."),
            Self::EmailUnverified => (403, "Your email address is not verified at the identity provider."),
            Self::IdToken(VerifyError::NonceMismatch) => (403, "The identity provider's answer could not be verified."),
            Self::IdpUnreachable | Self::ParUnavailable | Self::ParRefused(..) => (503, "The identity provider is unavailable. Please try again in a moment."),
            Self::ExchangeRefused(s, _) if *s < 500 => (403, "The identity provider did not accept the sign-in. Please try again."),
            Self::ExchangeRefused(..) => (502, "The identity provider did not accept the sign-in. Please try again."),
            Self::TokenResponseInvalid | Self::IdToken(_) => (502, "The identity provider's answer could not be verified."),
        };
        let title = if status == 503 {
            "Service Unavailable"
        } else {
            "Sign-in Failed"
        };
        Wording {
            status,
            title,
            message,
        }
    }
}

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdpError(e) => write!(f, "the IdP returned error={e}"),
            Self::ExchangeRefused(s, e) => write!(f, "the token endpoint answered {s} {e}"),
            Self::ParRefused(s, e) => write!(f, "the PAR endpoint answered {s} {e}"),
            Self::ParUnavailable => f.write_str("pushed_authorization_requests is on but the provider's discovery document lists no pushed_authorization_request_endpoint"),
            Self::IdToken(e) => write!(f, "ID token refused: {e}"),
            other => f.write_str(other.wording().message),
        }
    }
}

impl Outcome {
    /// The counter this outcome increments (proxy-wasm metric, `wasmcustom.<name>` in Envoy).
    /// The family says what happened, the suffix why: the same value as the log line's code.
    /// The outcomes of every signed-in request are static names: no allocation per request.
    pub fn metric(&self) -> Cow<'static, str> {
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
            Self::Public | Self::Preflight | Self::Optional => "oidc_gate_passed_without_login",
            Self::NotReady
            | Self::NoEntropy
            | Self::BadRequest(_)
            | Self::HostFault
            | Self::NotFound => "oidc_gate_refused",
            Self::SignedOut | Self::UserInfo => "oidc_gate_endpoint",
        };
        format!("{family}_{}", self.reason()).into()
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
            Self::Optional => "optional_auth",
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
            Self::BadRequest(_) => "bad_request",
            Self::HostFault => "host_fault",
            Self::NoEntropy => "no_entropy",
        }
    }

    /// How a local reply for this outcome reads. Outcomes that go upstream are never answered
    /// locally; they read as an internal error should one be.
    fn wording(&self) -> Wording {
        let w = |status, title, message| Wording {
            status,
            title,
            message,
        };
        match self {
            Self::Unauthenticated(_) => w(401, "Unauthorized", "Sign in required."),
            Self::SessionEnded(_) => w(401, "Unauthorized", "Your session has ended. Sign in again."),
            Self::BearerRejected(_) => w(401, "Unauthorized", "The bearer token is not valid."),
            Self::Denied(Denial::EmailDomain) => w(403, "Forbidden", "Your email domain is not allowed to use this application."),
            Self::Denied(Denial::Email) => w(403, "Forbidden", "Your account is not allowed to use this application."),
            Self::Denied(Denial::Group) => w(403, "Forbidden", "You are not in a group that may use this application."),
            Self::Denied(Denial::Claim(_)) => w(403, "Forbidden", "Your account does not meet a rule of this application."),
            Self::NotReady => w(503, "Service Unavailable",
                "Sign-in is starting up: the identity provider's configuration is not loaded yet. Please try again in a moment."),
            Self::LoginFailed(e) => e.wording(),
            Self::NotFound => w(404, "Not Found", "There is nothing here."),
            Self::BadRequest(BadRequest::Host) => w(400, "Bad Request", "The request's host is not valid."),
            Self::BadRequest(BadRequest::Headers) => w(400, "Bad Request", "The request's headers are not valid."),
            Self::BadRequest(BadRequest::Path) => w(400, "Bad Request", "The request's path is ambiguous."),
            Self::HostFault => w(500, "Internal Error", "The gateway could not read the request."),
            Self::NoEntropy => w(500, "Internal Error", "The gateway could not start a secure sign-in."),
            _ => w(500, "Internal Error", "The gateway could not handle the request."),
        }
    }
}

/// Status, title and message of a local reply.
#[derive(Debug, Clone, Copy)]
struct Wording {
    status: u16,
    title: &'static str,
    message: &'static str,
}

/// A local reply. Cookies travel apart from the other headers, as on a forwarded request.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub outcome: Outcome,
    /// `Set-Cookie` values.
    pub set_cookies: Vec<String>,
    /// The provider whose host or login this answers (0: `default`), for metrics and the log.
    pub provider: usize,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cookies: Vec<&str> = self
            .set_cookies
            .iter()
            .map(|c| c.split('=').next().unwrap_or_default())
            .collect();
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("set_cookies", &cookies)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// A 302 to `location`, never cached.
    pub fn redirect(location: String, outcome: Outcome) -> Self {
        Self {
            status: 302,
            headers: vec![
                ("location".into(), location),
                ("cache-control".into(), "no-store".into()),
            ],
            body: String::new(),
            outcome,
            set_cookies: Vec::new(),
            provider: 0,
        }
    }

    /// The same reply, counted for provider `index`.
    pub fn of(self, provider: usize) -> Self {
        Self { provider, ..self }
    }

    /// The same reply, also setting or clearing these cookies.
    pub fn with_cookies(mut self, cookies: impl IntoIterator<Item = String>) -> Self {
        self.set_cookies.extend(cookies);
        self
    }

    /// The value of a header of the reply (`Set-Cookie` aside).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every header, `Set-Cookie` included, as the host sends them.
    pub fn all_headers(&self) -> Vec<(&str, &str)> {
        let cookies = self.set_cookies.iter().map(|c| ("set-cookie", c.as_str()));
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(cookies)
            .collect()
    }
}

impl Gate {
    /// The local reply for `outcome`: a page for browsers, JSON for programs.
    pub(crate) fn reply(&self, req: &Request<'_>, outcome: Outcome) -> Response {
        self.reply_as(req, outcome, None)
    }

    /// The local reply for `outcome`, saying who is signed in (a 403).
    pub(crate) fn reply_as(
        &self,
        req: &Request<'_>,
        outcome: Outcome,
        signed_in_as: Option<&str>,
    ) -> Response {
        let w = outcome.wording();
        // A claim rule is named (where it is configured), never the claim's values.
        let message = match &outcome {
            Outcome::Denied(Denial::Claim(rule)) => {
                Cow::Owned(format!("{} Rule: {rule}.", w.message))
            }
            _ => Cow::Borrowed(w.message),
        };
        let (start, sign_out) = (
            format!("{}/start", self.config.proxy_prefix()),
            format!("{}/sign_out", self.config.proxy_prefix()),
        );
        let page = Page {
            status: w.status,
            title: w.title,
            message: &message,
            signed_in_as,
            sign_out_url: signed_in_as.map(|_| sign_out.as_str()),
            retry_url: matches!(outcome, Outcome::LoginFailed(_)).then_some(start.as_str()),
            request_id: req.request_id,
        };
        let (content_type, body) = if self.is_api(req) {
            let json = pages::json(outcome.code(), &message, req.request_id);
            ("application/json", json)
        } else {
            ("text/html; charset=utf-8", pages::html(&page))
        };
        let mut headers = vec![
            ("content-type".into(), content_type.into()),
            ("cache-control".into(), "no-store".into()),
        ];
        if w.status == 503 {
            headers.push(("retry-after".into(), RETRY_AFTER_SECS.into()));
        }
        if matches!(outcome, Outcome::BearerRejected(_)) {
            let challenge = "Bearer error=\"invalid_token\"";
            headers.push(("www-authenticate".into(), challenge.into()));
        }
        Response {
            status: w.status,
            headers,
            body,
            outcome,
            set_cookies: Vec::new(),
            provider: 0,
        }
    }
}
