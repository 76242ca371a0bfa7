//! The way to the app: who may pass where (every reading of the path), a request with a session
//! (forwarded with its identity, refreshed first when due, or 403), and requests that pass
//! without one. Spoofed identity headers and the filter's own cookies never go upstream.

use std::rc::Rc;

use super::{App, Decision, Forward, Forwarding, Gate, Outcome, Request, Response};
use crate::cookies::{clear_cookie, domain_for, set_cookie, RequestCookies};
use crate::env::{Entropy, EntropyError, Env};
use crate::headers::{plan_anonymous, plan_identity, CookieRewrite};
use crate::policy::{Access, RuleSet, Subject};
use crate::routes::{path_only, readings};
use crate::session::{Session, SessionError};

impl Gate {
    /// Who may pass: public when every reading of the path is public (a `skip_auth` policy or a
    /// `skip_auth_routes` rule), else the rules of every place a reading falls under.
    pub(crate) fn access(&self, method: &str, authority: &str, path: &str) -> Access<'_> {
        let routes = &self.config.rules.routes;
        let readings = readings(path_only(path));
        let judged: Vec<(&str, bool)> = readings
            .iter()
            .map(|r| (r.as_ref(), routes.skips_auth(method, r)))
            .collect();
        self.config.rules.policies.access(authority, &judged)
    }

    /// Whether the path is an `optional_auth_routes` one in every reading (as a skip rule must
    /// be, so no reading of it can borrow the exemption from login).
    pub(super) fn optional_route(&self, method: &str, path: &str) -> bool {
        let routes = &self.config.rules.routes;
        routes.has_optional_auth()
            && readings(path_only(path))
                .iter()
                .all(|r| routes.optional_auth(method, r))
    }

    /// On an optional-login route: what would have asked for a login (a redirect to the IdP,
    /// a 401, a 403 of the rules, a refused bearer token) passes without identity instead;
    /// identity headers are stripped as on any anonymous request.
    pub(super) fn or_anonymous(&self, d: Decision, ctx: Forwarding) -> Decision {
        let asks_for_login = |o: &Outcome| {
            matches!(
                o,
                Outcome::LoginStarted
                    | Outcome::Unauthenticated(_)
                    | Outcome::Denied(_)
                    | Outcome::BearerRejected(_)
            )
        };
        match d {
            Decision::Respond(r) if asks_for_login(&r.outcome) => {
                self.anonymous(ctx, Outcome::Optional)
            }
            // A login through PAR starts with a call-out.
            Decision::Call(super::Call {
                then: super::Pending::Par(_),
                ..
            }) => self.anonymous(ctx, Outcome::Optional),
            other => other,
        }
    }

    /// How the request is cleaned before it goes upstream.
    pub(super) fn forwarding(&self, req: &Request<'_>, cookies: &RequestCookies<'_>) -> Forwarding {
        let ours = |n: &str| self.owns_cookie(n);
        let rewrite = if !cookies.any_name(ours) {
            CookieRewrite::Keep
        } else {
            match cookies.header_without(ours) {
                Some(rest) => CookieRewrite::Replace(rest),
                None => CookieRewrite::Remove,
            }
        };
        Forwarding {
            strip: self.removals.strip(req.header_names),
            rewrite,
        }
    }

    /// A request that goes on without an identity: spoofed identity headers still go.
    pub(super) fn anonymous(&self, ctx: Forwarding, outcome: Outcome) -> Decision {
        Decision::Forward(Forward {
            plan: plan_anonymous(&self.removals, &ctx.strip, ctx.rewrite),
            outcome,
            user: None,
            set_cookies: Vec::new(),
            provider: 0,
        })
    }

    /// A request under `rules` that is not public and carries no bearer token: its session
    /// goes on (refreshed first when due), or a browser starts a login and a program gets 401.
    pub(super) fn with_session(
        &self,
        app: &App,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        rules: &RuleSet<'_>,
        ctx: Forwarding,
        env: &mut Env<'_>,
    ) -> Decision {
        let policies = &self.config.rules.policies;
        let opened = match app.sessions.decode(cookies, env.now.secs()) {
            Ok(o) if !policies.records_every_claim(&o.session.rule_claims) => {
                Err(SessionError::Outdated)
            }
            other => other,
        };
        let opened = match opened {
            Ok(opened) => opened,
            Err(why) if self.is_api(req) => {
                return Decision::Respond(self.reply(req, Outcome::Unauthenticated(why)))
            }
            Err(_) => {
                let return_to = self.return_target(req.path, req.authority);
                return self.start_login(app, req, cookies, (return_to, None), env);
            }
        };
        let mut session = opened.session;
        // Read with a previous cookie_secret: re-issued with the current one. Its recorded
        // activity a step old (`session_idle_timeout`): re-issued with this request's time.
        let mut set_cookies = Vec::new();
        let touch = app.sessions.touch_due(&session, env.now.secs());
        if opened.stale_key || touch {
            if touch {
                Rc::make_mut(&mut session).active_at = env.now.secs();
            }
            let old: Vec<String> = app.sessions.present(cookies).map(str::to_string).collect();
            match self.session_cookies(app, &session, &old, req.authority, env.rng) {
                Ok(c) => set_cookies = c,
                Err(EntropyError) => return Decision::Respond(self.reply(req, Outcome::NoEntropy)),
            }
        }
        if Self::refresh_due(app, &session, env.now.secs()) {
            let fallback = self.admit(req, &session, rules, ctx.clone(), set_cookies);
            let session = Rc::unwrap_or_clone(session);
            return self.refresh(app, (req, cookies), session, ctx, fallback, env);
        }
        self.admit(req, &session, rules, ctx, set_cookies)
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
        let subject = Subject {
            email: &session.email,
            groups: &session.groups,
            claims: &session.rule_claims,
        };
        match rules.authorize(&subject) {
            Ok(()) => Decision::Forward(Forward {
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
                provider: 0,
            }),
            Err(denial) => {
                let r = self.denied(req, session, denial);
                Decision::Respond(r.with_cookies(set_cookies))
            }
        }
    }

    /// 403 for a signed-in user the rules refuse, saying who is signed in (the session stays).
    fn denied(
        &self,
        req: &Request<'_>,
        session: &Session,
        denial: crate::policy::Denial,
    ) -> Response {
        let who = if session.email.is_empty() {
            &session.user
        } else {
            &session.email
        };
        self.reply_as(req, Outcome::Denied(denial), Some(who))
    }

    /// `Set-Cookie` values that store `session`, and delete the parts in `old` it no longer uses
    /// (a session that shrank, or went from split to whole).
    pub(crate) fn session_cookies(
        &self,
        app: &App,
        session: &Session,
        old: &[String],
        host: &str,
        rng: &mut dyn Entropy,
    ) -> Result<Vec<String>, EntropyError> {
        let parts = app.sessions.encode(session, rng)?;
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

    /// `Set-Cookie` values that delete these cookies on `host`.
    pub(crate) fn clear_cookies<'a>(
        &'a self,
        names: impl IntoIterator<Item = &'a str> + 'a,
        host: &str,
    ) -> impl Iterator<Item = String> + 'a {
        let domain = domain_for(&self.config.cookie, host).map(str::to_string);
        names
            .into_iter()
            .map(move |n| clear_cookie(&self.config.cookie, n, domain.as_deref()))
    }
}
