//! Session refresh (`cookie_refresh`, as OAuth2-Proxy): a session older than that, holding a
//! refresh token, is refreshed at the token endpoint before its request goes on. One request per
//! session refreshes at a time across the workers of an Envoy (a lease in shared data), because
//! IdPs such as Okta rotate refresh tokens and a second use of the old one fails; the others go
//! on with the session they have.

use std::time::Duration;

use url::form_urlencoded;

use super::protocol::{Call, Pending};
use super::request::Origin;
use super::tokens::{parse_token_response, TokenResponse};
use super::userinfo::PendingUserInfo;
use super::{App, Decision, Forwarding, Gate, LoginError, Outcome, Request};
use crate::callout::CallResult;
use crate::config::UserInfoMode;
use crate::cookies::RequestCookies;
use crate::env::{Env, UnixTime};
use crate::jwt::{Claims, VerifyError};
use crate::policy::Access;
use crate::session::Session;
use crate::shared::{claim, settle, Claim};

/// After a refresh, other requests of the session keep the session they carry this long (their
/// responses race the one that sets the new cookie).
pub const REFRESH_SETTLE: Duration = Duration::from_secs(60);
/// After a failed refresh (IdP down, slow or refusing), the next attempt waits this long.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// Leases are spread over this many shared-data keys (a bounded set, whatever the sessions).
const LEASE_SLOTS: u32 = 4096;

/// A refresh under way, and what the request does if it cannot complete.
#[derive(Debug)]
pub struct PendingRefresh {
    /// The provider whose session it is.
    app: usize,
    session: Session,
    /// The request as it would go on without a refresh.
    fallback: Box<Decision>,
    lease_key: String,
    origin: Origin,
    old_session_cookies: Vec<String>,
    ctx: Forwarding,
}

impl PendingRefresh {
    pub(super) fn app(&self) -> usize {
        self.app
    }
}

impl Gate {
    /// Whether the session is due for a refresh.
    pub(super) fn refresh_due(app: &App, session: &Session, now: UnixTime) -> bool {
        let every = app.cfg.refresh.as_secs();
        every > 0
            && session.refresh_token.is_some()
            && now >= session.refreshed_at.saturating_add(every)
    }

    /// The lease that names the session and its generation (when it was last refreshed):
    /// requests still carrying the cookie just refreshed stay off, the new cookie may refresh
    /// again after `cookie_refresh`.
    fn lease_key(&self, app: &App, session: &Session) -> String {
        let slot = session
            .id
            .bytes()
            .chain(session.refreshed_at.to_le_bytes())
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % LEASE_SLOTS;
        format!("oidc-gate/v1/{}/refresh/{slot}", app.sessions.name())
    }

    /// A session due for refresh: the refresh call-out when this request holds the lease (no
    /// other request of the session refreshes it, and it was not refreshed a moment ago);
    /// otherwise the request goes on with the session it has (`fallback`).
    pub(super) fn refresh(
        &self,
        app: &App,
        (req, cookies): (&Request<'_>, &RequestCookies<'_>),
        session: Session,
        ctx: Forwarding,
        fallback: Decision,
        env: &mut Env<'_>,
    ) -> Decision {
        let (Some(token), Some(provider)) = (
            session.refresh_token.as_ref(),
            env.providers.main(app.index, env.store),
        ) else {
            return fallback;
        };
        let lease_key = self.lease_key(app, &session);
        // Long enough for the token call-out and, when the claims may need it, UserInfo's.
        let calls = match app.cfg.claims.userinfo {
            UserInfoMode::Never => 1,
            UserInfoMode::WhenMissing | UserInfoMode::Always => 2,
        };
        let hold = app
            .cfg
            .provider
            .idp_timeout
            .saturating_mul(calls)
            .saturating_add(Duration::from_secs(1));
        if claim(env.store, &lease_key, env.now, hold) != Claim::Won {
            return fallback;
        }
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", token.expose());
        let Some(call) = self.token_call(app, &provider, form, env) else {
            return fallback;
        };
        let pending = PendingRefresh {
            app: app.index,
            lease_key,
            old_session_cookies: app.sessions.present(cookies).map(str::to_string).collect(),
            origin: self.origin(req),
            ctx,
            session,
            fallback: Box::new(fallback),
        };
        Decision::Call(Call {
            call,
            then: Pending::Refresh(Box::new(pending)),
        })
    }

    /// The token endpoint answered a refresh. On an optional-login route, a user the refreshed
    /// session no longer admits goes on without identity.
    pub(super) fn resume_refresh(
        &self,
        pending: PendingRefresh,
        result: CallResult<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        let optional = self.optional_ctx(&pending);
        let d = self.refreshed(pending, result, env);
        self.or_optional(d, optional)
    }

    fn optional_ctx(&self, pending: &PendingRefresh) -> Option<Forwarding> {
        let origin = &pending.origin;
        self.optional_route(&origin.method, &origin.path)
            .then(|| pending.ctx.clone())
    }

    fn or_optional(&self, d: Decision, optional: Option<Forwarding>) -> Decision {
        match optional {
            Some(ctx) => self.or_anonymous(d, ctx),
            None => d,
        }
    }

    /// The refreshed session, or UserInfo first when the new ID token lacks claims.
    fn refreshed(
        &self,
        pending: PendingRefresh,
        result: CallResult<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        let (pending, tokens, claims) = match self.refresh_answer(&pending, result, env) {
            Err(e) => return self.settle_refresh(pending, Err(e), env),
            Ok((tokens, None)) => (pending, tokens, None),
            Ok((tokens, Some(claims))) => {
                let app = self.app(pending.app);
                if let Some(call) = self.userinfo_call(app, &tokens, &claims, env) {
                    return Decision::Call(Call {
                        call,
                        then: PendingUserInfo::refresh(pending, tokens, claims),
                    });
                }
                (pending, tokens, Some(claims))
            }
        };
        let session = self.refreshed_identity(&pending, &tokens, claims.as_ref(), env.now.secs());
        self.settle_refresh(pending, session, env)
    }

    /// UserInfo answered after a refresh (`merged`: its claims are in `claims`). A failed
    /// UserInfo fails the refresh: nothing new is taken without the claims it should carry.
    pub(super) fn refreshed_with(
        &self,
        pending: PendingRefresh,
        tokens: TokenResponse,
        claims: Claims,
        merged: Result<(), LoginError>,
        env: &mut Env<'_>,
    ) -> Decision {
        let optional = self.optional_ctx(&pending);
        let now = env.now.secs();
        let session =
            merged.and_then(|()| self.refreshed_identity(&pending, &tokens, Some(&claims), now));
        let d = self.settle_refresh(pending, session, env);
        self.or_optional(d, optional)
    }

    /// Settles the lease with the refresh's result: the request goes on with the new session,
    /// or the session ends, or (IdP down, slow or failing) it goes on as it was.
    fn settle_refresh(
        &self,
        pending: PendingRefresh,
        session: Result<Session, LoginError>,
        env: &mut Env<'_>,
    ) -> Decision {
        match session {
            Ok(session) => {
                settle(env.store, &pending.lease_key, env.now, true, REFRESH_SETTLE);
                self.go_on_refreshed(pending, session, env)
            }
            Err(e) if self.session_must_end(&e, &pending.session, env.now.secs()) => {
                settle(
                    env.store,
                    &pending.lease_key,
                    env.now,
                    false,
                    Duration::ZERO,
                );
                self.end_session(&pending, e, env)
            }
            Err(e) => {
                let retry = RETRY_AFTER_FAILURE;
                settle(env.store, &pending.lease_key, env.now, false, retry);
                pending.fallback.with_outcome(Outcome::RefreshDeferred(e))
            }
        }
    }

    /// The token endpoint's answer to a refresh, with its ID token's claims verified (no nonce
    /// on refresh, OIDC Core §12.2; everything else as at login).
    fn refresh_answer(
        &self,
        pending: &PendingRefresh,
        result: CallResult<'_>,
        env: &mut Env<'_>,
    ) -> Result<(TokenResponse, Option<Claims>), LoginError> {
        let tokens = parse_token_response(result)?;
        let app = self.app(pending.app);
        let claims = match tokens.id_token.as_ref() {
            Some(id_token) => {
                let provider = env
                    .providers
                    .main(app.index, env.store)
                    .ok_or(LoginError::IdpUnreachable)?;
                let claims = self
                    .verify(app, id_token.expose(), &provider, None, env.now.secs())
                    .map_err(LoginError::IdToken)?;
                Some(claims)
            }
            None => None,
        };
        Ok((tokens, claims))
    }

    /// The session the refresh gives, for the same user.
    fn refreshed_identity(
        &self,
        pending: &PendingRefresh,
        tokens: &TokenResponse,
        claims: Option<&Claims>,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        let verified = tokens.id_token.as_ref().zip(claims);
        let app = self.app(pending.app);
        self.refreshed_session(app, &pending.session, tokens, verified, now)
    }

    /// The request goes on with the refreshed session, judged by its rules again (a user
    /// removed from a group loses access here), and the new cookie on the response.
    fn go_on_refreshed(
        &self,
        pending: PendingRefresh,
        session: Session,
        env: &mut Env<'_>,
    ) -> Decision {
        let req = pending.origin.request();
        let Ok(set_cookies) = self.session_cookies(
            self.app(pending.app),
            &session,
            &pending.old_session_cookies,
            req.authority,
            env.rng,
        ) else {
            return Decision::Respond(self.reply(&req, Outcome::NoEntropy));
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
            LoginError::EmailUnverified
            | LoginError::SubjectChanged
            | LoginError::UserInfoSubjectMismatch => true,
            LoginError::IdToken(VerifyError::UnknownKey) => false,
            LoginError::IdToken(_) => true,
            _ => false,
        }
    }

    /// The session is over: its cookies are cleared; a browser starts a new login, a program
    /// gets 401.
    fn end_session(&self, pending: &PendingRefresh, e: LoginError, env: &mut Env<'_>) -> Decision {
        let req = pending.origin.request();
        let old = pending.old_session_cookies.iter().map(String::as_str);
        let cleared: Vec<String> = self.clear_cookies(old, &pending.origin.host).collect();
        // On an optional-login route the request goes on without identity, as without a session.
        if self.optional_route(&pending.origin.method, &pending.origin.path) {
            let ctx = pending.ctx.clone();
            return self.anonymous(ctx, Outcome::Optional).with_cookies(cleared);
        }
        if pending.origin.api {
            let r = self.reply(&req, Outcome::SessionEnded(e));
            return Decision::Respond(r.with_cookies(cleared));
        }
        let return_to = self.return_target(&pending.origin.path, &pending.origin.host);
        let app = self.app(pending.app);
        let none = RequestCookies::default();
        self.start_login(app, &req, &none, (return_to, None), env)
            .restarting(e)
            .with_cookies(cleared)
    }
}
