//! Session refresh (`cookie_refresh`, as OAuth2-Proxy): a session older than that, holding a
//! refresh token, is refreshed at the token endpoint before its request goes on. One request per
//! session refreshes at a time across the workers of an Envoy (a lease in shared data), because
//! IdPs such as Okta rotate refresh tokens and a second use of the old one fails; the others go
//! on with the session they have.

use std::time::Duration;

use url::form_urlencoded;

use super::callback::{parse_token_response, LoginError};
use super::{Decision, Forwarding, Gate, Origin, Outcome, Request, Response};
use crate::callout::{CallOut, CallResult};
use crate::cookies::{clear_cookie, domain_for, RequestCookies};
use crate::env::{Entropy, UnixTime};
use crate::jwt::VerifyError;
use crate::policy::Access;
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
    origin: Origin,
    old_session_cookies: Vec<String>,
    ctx: Forwarding,
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
        ctx: Forwarding,
        fallback: Decision,
    ) -> Decision {
        let Some(token) = session.refresh_token.as_ref() else {
            return fallback;
        };
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", token.expose());
        let call: CallOut = self.token_call(provider, form);
        // The lease names the session and its generation (when it was last refreshed): requests
        // still carrying the cookie just refreshed stay off, the new cookie may refresh again.
        let slot = session
            .id
            .bytes()
            .chain(session.refreshed_at.to_le_bytes())
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % LEASE_SLOTS;
        Decision::Refresh {
            call,
            pending: Box::new(PendingRefresh {
                lease_key: format!("oidc-gate/v1/{}/refresh/{slot}", self.config.cookie.name),
                old_session_cookies: self.sessions.present(cookies).map(str::to_string).collect(),
                origin: self.origin(req),
                ctx,
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
        let hold = millis(self.config.idp_timeout).saturating_add(1_000);
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
        match self.refreshed(&pending, result, provider, now) {
            Ok(session) => {
                settle(
                    store,
                    &pending.lease_key,
                    now_ms,
                    true,
                    millis(REFRESH_SETTLE),
                );
                self.go_on_refreshed(pending, session, rng)
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
                pending.fallback.with_outcome(Outcome::RefreshDeferred(e))
            }
        }
    }

    /// The session the token endpoint's answer gives: its ID token verified (no nonce on
    /// refresh, OIDC Core §12.2; everything else as at login) and for the same user.
    fn refreshed(
        &self,
        pending: &PendingRefresh,
        result: CallResult<'_>,
        provider: Option<&Provider>,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        let tokens = parse_token_response(result)?;
        let claims = match tokens.id_token.as_ref() {
            Some(id_token) => {
                let provider = provider.ok_or(LoginError::IdpUnreachable)?;
                let claims = self
                    .verify(id_token.expose(), provider, None, now)
                    .map_err(LoginError::IdToken)?;
                Some((id_token, claims))
            }
            None => None,
        };
        let verified = claims.as_ref().map(|(t, c)| (*t, c));
        self.refreshed_session(&pending.session, &tokens, verified, now)
    }

    /// The request goes on with the refreshed session, judged by its rules again (a user
    /// removed from a group loses access here), and the new cookie on the response.
    fn go_on_refreshed(
        &self,
        pending: PendingRefresh,
        session: Session,
        rng: &mut dyn Entropy,
    ) -> Decision {
        let req = pending.origin.request();
        let Ok(set_cookies) =
            self.session_cookies(&session, &pending.old_session_cookies, req.authority, rng)
        else {
            return Decision::Respond(self.no_entropy(&req));
        };
        let rules = match self.access(req.method, req.authority, req.path) {
            Access::Rules(rules) => rules,
            Access::Public => return *pending.fallback,
        };
        self.admit(&req, &session, &rules, pending.ctx, set_cookies)
            .with_outcome(Outcome::Refreshed)
    }

    /// The IdP refused the refresh token (`invalid_grant`) or the new tokens are not acceptable.
    /// A refused token while the session's tokens are still valid may have been rotated by
    /// another replica a moment ago: the session stays until its tokens expire.
    fn session_must_end(&self, e: &LoginError, session: &Session, now: UnixTime) -> bool {
        let tokens_valid = session.tokens_expire_at.is_some_and(|t| t > now);
        match e {
            LoginError::ExchangeRefused(_, code) if code == "invalid_grant" => !tokens_valid,
            LoginError::EmailUnverified | LoginError::SubjectChanged => true,
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
        let req = pending.origin.request();
        let mut r = if pending.origin.api {
            self.error(
                &req,
                401,
                "Unauthorized",
                "Your session has ended. Sign in again.",
                Outcome::SessionEnded(e),
            )
        } else {
            let return_to = self.return_target(&pending.origin.path, &pending.origin.host);
            let mut r = self.start_login(
                &req,
                &RequestCookies::default(),
                return_to,
                provider,
                now,
                rng,
            );
            if r.status == 302 {
                r.outcome = Outcome::SessionEnded(e);
            }
            r
        };
        let domain = domain_for(&self.config.cookie, &pending.origin.host);
        for name in &pending.old_session_cookies {
            r.headers.push((
                "set-cookie".into(),
                clear_cookie(&self.config.cookie, name, domain),
            ));
        }
        r
    }
}
