//! Session refresh (`cookie_refresh`, as OAuth2-Proxy): a session older than that, holding a
//! refresh token, is refreshed at the token endpoint before its request goes on. One request per
//! session refreshes at a time across the workers of an Envoy (a lease in shared data), because
//! IdPs such as Okta rotate refresh tokens and a second use of the old one fails; the others go
//! on with the session they have.

use std::time::Duration;

use url::form_urlencoded;

use super::callback::{parse_token_response, LoginError};
use super::{Decision, Gate, Outcome, Request, Response};
use crate::callout::{CallOut, CallResult};
use crate::cookies::{clear_cookie, domain_for, RequestCookies};
use crate::env::{Entropy, UnixTime};
use crate::headers::CookieRewrite;
use crate::identity::Identity;
use crate::jwt::VerifyError;
use crate::provider::Provider;
use crate::session::Session;
use crate::shared::{claim, settle, Claim, SharedStore};

/// After a refresh, other requests of the session keep the session they carry this long (their
/// responses race the one that sets the new cookie).
pub const REFRESH_SETTLE: Duration = Duration::from_secs(60);
/// After a failed refresh (IdP down, slow or refusing), the next attempt waits this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// Leases are spread over this many shared-data keys (a bounded set, whatever the sessions).
const LEASE_SLOTS: u32 = 4096;

/// A refresh that this request may carry out, and what to do instead.
#[derive(Debug)]
pub struct PendingRefresh {
    session: Session,
    /// The request as it would go on without a refresh.
    fallback: Box<Decision>,
    lease_key: String,
    host: String,
    scheme: String,
    path: String,
    old_session_cookies: Vec<String>,
    rewrite: CookieRewrite,
    api: bool,
    request_id: Option<String>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Gate {
    /// Whether the session is due for a refresh.
    pub(super) fn refresh_due(&self, session: &Session, now: UnixTime) -> bool {
        let every = self.config.cookie.refresh.as_secs();
        every > 0
            && session.refresh_token.is_some()
            && now >= session.refreshed_at.saturating_add(every)
    }

    pub(super) fn refresh_decision(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        session: Session,
        provider: &Provider,
        rewrite: CookieRewrite,
        fallback: Decision,
    ) -> Decision {
        let Some(token) = session.refresh_token.as_deref() else {
            return fallback;
        };
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", token);
        let call: CallOut = self.token_call(provider, form);
        let slot = session
            .id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % LEASE_SLOTS;
        Decision::Refresh {
            call,
            pending: Box::new(PendingRefresh {
                lease_key: format!("oidc-gate/v1/{}/refresh/{slot}", self.config.cookie.name),
                old_session_cookies: self.sessions.present(cookies).map(str::to_string).collect(),
                host: req.authority.to_string(),
                scheme: req.scheme.to_string(),
                path: req.path.to_string(),
                api: self.is_api(req),
                request_id: req.request_id.map(str::to_string),
                rewrite,
                session,
                fallback: Box::new(fallback),
            }),
        }
    }

    /// Whether this request refreshes the session: no other request is refreshing it and it was
    /// not refreshed a moment ago. Otherwise use `skip_refresh`.
    pub fn claim_refresh(
        &self,
        pending: &PendingRefresh,
        now_ms: u64,
        store: &mut dyn SharedStore,
    ) -> bool {
        let hold = millis(self.config.idp_timeout) + 1_000;
        claim(store, &pending.lease_key, now_ms, hold) == Claim::Won
    }

    /// The request goes on with the session it has.
    pub fn skip_refresh(&self, pending: PendingRefresh) -> Decision {
        *pending.fallback
    }

    /// Takes the token endpoint's answer to a refresh.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_refresh(
        &self,
        pending: PendingRefresh,
        result: CallResult<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
        now_ms: u64,
        rng: &mut dyn Entropy,
        store: &mut dyn SharedStore,
    ) -> Decision {
        let refreshed = parse_token_response(result).and_then(|tokens| {
            let mut s = pending.session.clone();
            if let Some(id_token) = tokens.id_token.as_deref() {
                // No nonce on refresh (OIDC Core §12.2); everything else as at login.
                let provider = provider.ok_or(LoginError::IdpUnreachable)?;
                let claims = self
                    .verify(id_token, provider, None, now)
                    .map_err(LoginError::IdToken)?;
                let id = Identity::from_claims(&claims.subject, &claims.other, &self.config.claims);
                if id.email_verified == Some(false) && !self.config.allow_unverified_email {
                    return Err(LoginError::EmailUnverified);
                }
                (s.user, s.email, s.groups, s.preferred_username) =
                    (id.user, id.email, id.groups, id.preferred_username);
                s.tokens_expire_at = Some(claims.expires_at);
                if self.config.set_authorization_header || self.config.sign_out_at_idp {
                    s.id_token = Some(id_token.to_string());
                }
            }
            if let Some(expires_in) = tokens.expires_in {
                s.tokens_expire_at = Some(now + expires_in);
            }
            if self.config.pass_access_token && tokens.access_token.is_some() {
                s.access_token = tokens.access_token;
            }
            if tokens.refresh_token.is_some() {
                s.refresh_token = tokens.refresh_token;
            }
            s.refreshed_at = now;
            Ok(s)
        });
        match refreshed {
            Ok(session) => {
                settle(
                    store,
                    &pending.lease_key,
                    now_ms,
                    true,
                    millis(REFRESH_SETTLE),
                );
                let Ok(set_cookies) = self.session_cookies(
                    &session,
                    &pending.old_session_cookies,
                    &pending.host,
                    rng,
                ) else {
                    return Decision::Respond(self.no_entropy(&pending.request()));
                };
                match self.rules_for(&pending.host, &pending.path) {
                    Some(rules) => {
                        match self.admit(
                            &pending.request(),
                            &session,
                            rules,
                            pending.rewrite.clone(),
                            set_cookies,
                        ) {
                            Decision::Forward {
                                plan,
                                user,
                                set_cookies,
                                ..
                            } => Decision::Forward {
                                plan,
                                outcome: Outcome::Refreshed,
                                user,
                                set_cookies,
                            },
                            other => other,
                        }
                    }
                    None => *pending.fallback,
                }
            }
            Err(e) if self.session_must_end(&e, &pending.session, now) => {
                settle(store, &pending.lease_key, now_ms, false, 0);
                Decision::Respond(self.end_session(&pending, e, provider, now, rng))
            }
            Err(e) => {
                settle(
                    store,
                    &pending.lease_key,
                    now_ms,
                    false,
                    millis(RETRY_AFTER_FAILURE),
                );
                match *pending.fallback {
                    Decision::Forward {
                        plan,
                        user,
                        set_cookies,
                        ..
                    } => Decision::Forward {
                        plan,
                        outcome: Outcome::RefreshDeferred(e),
                        user,
                        set_cookies,
                    },
                    other => other,
                }
            }
        }
    }

    /// The IdP refused the refresh token (`invalid_grant`) or the new tokens are not acceptable.
    /// A refused token while the session's tokens are still valid may have been rotated by
    /// another replica a moment ago: the session stays until its tokens expire.
    fn session_must_end(&self, e: &LoginError, session: &Session, now: UnixTime) -> bool {
        let tokens_valid = session.tokens_expire_at.is_some_and(|t| t > now);
        match e {
            LoginError::ExchangeRefused(_, code) if code == "invalid_grant" => !tokens_valid,
            LoginError::EmailUnverified => true,
            LoginError::IdToken(VerifyError::UnknownKey) => false,
            LoginError::IdToken(_) => true,
            _ => false,
        }
    }

    /// The session is over: its cookies are cleared; a browser starts a new login, a program
    /// gets 401.
    fn end_session(
        &self,
        pending: &PendingRefresh,
        e: LoginError,
        provider: Option<&Provider>,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Response {
        let req = pending.request();
        let mut r = if pending.api {
            self.error(
                &req,
                401,
                "Unauthorized",
                "Your session has ended. Sign in again.",
                Outcome::SessionEnded(e),
            )
        } else {
            let mut r = self.start_login(
                &req,
                &RequestCookies::default(),
                pending.path.clone(),
                provider,
                now,
                rng,
            );
            if r.status == 302 {
                r.outcome = Outcome::SessionEnded(e);
            }
            r
        };
        let domain = domain_for(&self.config.cookie, &pending.host);
        for name in &pending.old_session_cookies {
            r.headers.push((
                "set-cookie".into(),
                clear_cookie(&self.config.cookie, name, domain),
            ));
        }
        r
    }
}

impl PendingRefresh {
    fn request(&self) -> Request<'_> {
        Request {
            method: "GET",
            scheme: &self.scheme,
            authority: &self.host,
            path: &self.path,
            request_id: self.request_id.as_deref(),
            accept: (!self.api).then_some("text/html"),
            ..Request::default()
        }
    }
}
