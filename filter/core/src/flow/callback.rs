//! The callback: the state is checked against the flow's cookie, the code is exchanged at the
//! token endpoint, the ID token is verified and the session cookie is set. A token signed with a
//! key the filter has not seen yet waits for one JWKS refetch (`LoginStep::NeedKeys`).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use url::form_urlencoded;

use super::{safe_code, Decision, Gate, Origin, Outcome, Request, Response, RETRY_AFTER_SECS};
use crate::callout::{CallOut, CallResult};
use crate::config::{ClientAuthMethod, SameSite};
use crate::cookies::{clear_cookie, domain_for, RequestCookies};
use crate::env::{Entropy, EntropyError, UnixTime};
use crate::jwt::{verify_id_token, Claims, IdTokenCheck, VerifyError};
use crate::login::{LoginState, LoginStateError};
use crate::pages::{self, Page};
use crate::provider::Provider;
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::session::Session;

/// Clock difference allowed with the IdP when checking token times.
pub const CLOCK_SKEW_SECS: u64 = 60;

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
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::IdpError(e) if e == "access_denied" => 403,
            Self::IdpError(_) => 502,
            Self::MissingCode | Self::MissingState => 400,
            Self::LoginState(_)
            | Self::IssuerMismatch
            | Self::IssuerMissing
            | Self::EmailUnverified
            | Self::AcrNotSatisfied
            | Self::SubjectChanged => 403,
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
            Self::LoginState(_) | Self::IssuerMismatch | Self::IssuerMissing => {
                "This sign-in was not started in this browser, or was already used. Please try again."
            }
            Self::AcrNotSatisfied => {
                "The sign-in did not use the authentication level this application requires (for example a second factor)."
            }
            Self::SubjectChanged => "The identity provider answered for another user. Please sign in again.",
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

/// What the token endpoint returned (RFC 6749 §5.1). Tokens never print.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub id_token: Option<IdToken>,
    #[serde(default)]
    pub access_token: Option<AccessToken>,
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// Seconds; a value that is not a non-negative integer makes the answer invalid.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
}

/// A token endpoint answer: the tokens, or why there are none.
pub(crate) fn parse_token_response(result: CallResult<'_>) -> Result<TokenResponse, LoginError> {
    let status = result.status.ok_or(LoginError::IdpUnreachable)?;
    // Envoy answers a call-out it could not deliver with its own 502/503/504 (connect error,
    // reset, timeout); the IdP itself being down looks the same.
    if matches!(status, 502..=504) {
        return Err(LoginError::IdpUnreachable);
    }
    if result.oversized {
        return Err(LoginError::TokenResponseInvalid);
    }
    if status != 200 {
        let code = serde_json::from_slice::<OAuthError>(result.body)
            .map(|e| safe_code(&e.error))
            .unwrap_or_default();
        return Err(LoginError::ExchangeRefused(status, code));
    }
    serde_json::from_slice(result.body).map_err(|_| LoginError::TokenResponseInvalid)
}

/// A code exchange waiting for the token endpoint (then, maybe, for a JWKS refetch). Moved into
/// each step, so it is handled once.
#[derive(Debug)]
pub struct PendingLogin {
    login: LoginState,
    login_cookie: String,
    origin: Origin,
    /// Session cookie parts the browser has now, to delete those the new session does not use.
    old_session_cookies: Vec<String>,
    tokens: Option<TokenResponse>,
    keys_refetched: bool,
}

/// Where a login stands after the token endpoint answered.
#[derive(Debug)]
pub enum LoginStep {
    Done(Response),
    /// The ID token names a key the filter does not have: refetch the JWKS (rate-limited), then
    /// call `Gate::resume_login`.
    NeedKeys(Box<PendingLogin>),
}

impl Gate {
    pub(super) fn callback(
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
        let Some(provider) = provider else {
            return Decision::Respond(self.not_ready(req));
        };
        // RFC 9207: `iss` names the issuer that answered; a provider that sends it always does.
        match iss {
            Some(i) if i != self.config.issuer => {
                return fail(LoginError::IssuerMismatch, Some(&login_cookie))
            }
            None if provider.iss_parameter_supported => {
                return fail(LoginError::IssuerMissing, Some(&login_cookie))
            }
            _ => {}
        }
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
                origin: self.origin(req),
                old_session_cookies: self.sessions.present(cookies).map(str::to_string).collect(),
                tokens: None,
                keys_refetched: false,
            }),
        }
    }

    /// A form POST to the token endpoint with the client's authentication (RFC 6749 §2.3.1).
    pub(crate) fn token_call(
        &self,
        provider: &Provider,
        mut form: form_urlencoded::Serializer<'_, String>,
    ) -> CallOut {
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
        self.token_call(provider, form)
    }

    /// Verifies an ID token from this provider; `nonce` at login only.
    pub(crate) fn verify(
        &self,
        id_token: &str,
        provider: &Provider,
        nonce: Option<&str>,
        now: UnixTime,
    ) -> Result<Claims, VerifyError> {
        verify_id_token(
            id_token,
            &provider.keys,
            &IdTokenCheck {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce,
                allowed: &provider.algorithms,
                now,
                skew_secs: CLOCK_SKEW_SECS,
                bearer: false,
            },
        )
    }

    /// The claims `claim_headers` needs, kept in the session.
    pub(crate) fn claim_values(
        &self,
        claims: &Claims,
    ) -> std::collections::BTreeMap<String, String> {
        let names = self.config.claim_headers.iter().map(|(_, c)| c.as_str());
        crate::identity::claim_values(&claims.other, &claims.subject, names)
    }

    /// Takes the token endpoint's answer.
    pub fn finish_login(
        &self,
        mut pending: PendingLogin,
        result: CallResult<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> LoginStep {
        match parse_token_response(result) {
            Ok(tokens) => {
                pending.tokens = Some(tokens);
                self.resume_login(pending, provider, now, rng)
            }
            Err(e) => LoginStep::Done(self.login_error(&pending, e)),
        }
    }

    /// Verifies the tokens and completes the login: seal the session, go back where it started.
    pub fn resume_login(
        &self,
        mut pending: PendingLogin,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> LoginStep {
        let session = match self.login_session(&pending, provider, now, rng) {
            Ok(s) => s,
            Err(LoginError::IdToken(VerifyError::UnknownKey)) if !pending.keys_refetched => {
                pending.keys_refetched = true;
                return LoginStep::NeedKeys(Box::new(pending));
            }
            Err(e) => return LoginStep::Done(self.login_error(&pending, e)),
        };
        let host = &pending.origin.host;
        let mut r = self.back_to_the_app(&pending.login.return_to);
        match self.session_cookies(&session, &pending.old_session_cookies, host, rng) {
            Ok(cookies) => r
                .headers
                .extend(cookies.into_iter().map(|c| ("set-cookie".to_string(), c))),
            Err(EntropyError) => {
                return LoginStep::Done(self.no_entropy(&pending.origin.request()))
            }
        }
        let domain = domain_for(&self.config.cookie, host);
        r.headers.push((
            "set-cookie".into(),
            clear_cookie(&self.config.cookie, &pending.login_cookie, domain),
        ));
        LoginStep::Done(r)
    }

    /// The answer that sends the browser back where its login started: a 302, or, when the
    /// session cookie is `SameSite=Strict`, a tiny page that moves on by itself. Browsers hold
    /// back a `Strict` cookie on every hop of a redirect chain that began at the IdP's site; a
    /// navigation this page starts is same-site, so the app sees the new session.
    fn back_to_the_app(&self, return_to: &str) -> Response {
        let mut headers = vec![("cache-control".to_string(), "no-store".to_string())];
        if self.config.cookie.samesite != SameSite::Strict {
            headers.push(("location".to_string(), return_to.to_string()));
            return Response {
                status: 302,
                headers,
                body: String::new(),
                outcome: Outcome::LoginCompleted,
            };
        }
        // The callback URL holds the code: the next page must not get it as its Referer.
        headers.push(("referrer-policy".into(), "no-referrer".into()));
        headers.push(("content-type".into(), "text/html; charset=utf-8".into()));
        Response {
            status: 200,
            headers,
            body: pages::landing(return_to),
            outcome: Outcome::LoginCompleted,
        }
    }

    fn login_error(&self, pending: &PendingLogin, e: LoginError) -> Response {
        let mut r = self.login_failed(&pending.origin.request(), e);
        let domain = domain_for(&self.config.cookie, &pending.origin.host);
        r.headers.push((
            "set-cookie".into(),
            clear_cookie(&self.config.cookie, &pending.login_cookie, domain),
        ));
        r
    }

    /// The session a login's tokens give: the ID token verified with the login's nonce, the
    /// authentication level asked for, then the same rules as every refresh.
    fn login_session(
        &self,
        pending: &PendingLogin,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Result<Session, LoginError> {
        let tokens = pending
            .tokens
            .as_ref()
            .ok_or(LoginError::TokenResponseInvalid)?;
        let id_token = tokens
            .id_token
            .as_ref()
            .ok_or(LoginError::TokenResponseInvalid)?;
        let provider = provider.ok_or(LoginError::IdpUnreachable)?;
        let claims = self
            .verify(
                id_token.expose(),
                provider,
                Some(pending.login.nonce.as_str()),
                now,
            )
            .map_err(LoginError::IdToken)?;
        if let Some(wanted) = &self.config.acr_values {
            let acr = claims.other.get("acr").and_then(|v| v.as_str());
            if !acr.is_some_and(|a| wanted.split_whitespace().any(|w| w == a)) {
                return Err(LoginError::AcrNotSatisfied);
            }
        }
        self.new_session(tokens, id_token, &claims, now, rng)
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
}
