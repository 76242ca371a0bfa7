//! Bearer tokens (`skip_jwt_bearer_tokens`): a verified token (or one found in the cache) gets
//! the same rules and headers as a session, `email_verified` included. A token signed with a key
//! the filter has not seen yet waits for one rate-limited JWKS refetch, as a login does.

use super::protocol::{Call, Pending};
use super::request::Origin;
use super::{App, Decision, Forward, Forwarding, Gate, Outcome, Request};
use crate::bearer::{verify_bearer, BearerError, BearerIdentity, TrustedIssuer};
use crate::env::{Env, UnixTime};
use crate::headers::{plan_identity, Principal};
use crate::policy::{Access, RuleSet, Subject};
use crate::provider::Keys;
use crate::secret::BearerToken;

/// A bearer request waiting for its issuer's keys.
#[derive(Debug)]
pub struct PendingBearer {
    /// The provider of the request's host.
    app: usize,
    token: BearerToken,
    origin: Origin,
    ctx: Forwarding,
}

impl PendingBearer {
    pub(super) fn app(&self) -> usize {
        self.app
    }
}

impl Gate {
    /// The issuers a bearer token may come from on `app`'s hosts (its own client's tokens and
    /// its `extra_jwt_issuers`, never another provider's), with the loader that holds each
    /// one's keys.
    fn trusted<'a>(&self, app: &'a App, keys: &'a Keys) -> Vec<TrustedIssuer<'a>> {
        let mut issuers = vec![TrustedIssuer {
            issuer: &app.cfg.provider.issuer,
            audience: &app.cfg.client.id,
            provider: keys.main.as_deref(),
            loader: keys.main_loader,
        }];
        for (i, extra) in app.cfg.bearer.extra_issuers.iter().enumerate() {
            let (provider, loader) = match &extra.discovery {
                None => (keys.main.as_deref(), keys.main_loader),
                Some(_) => (
                    keys.extra.get(i).and_then(|p| p.as_deref()),
                    keys.extra_loaders
                        .get(i)
                        .copied()
                        .unwrap_or(keys.main_loader),
                ),
            };
            issuers.push(TrustedIssuer {
                issuer: &extra.issuer,
                audience: &extra.audience,
                provider,
                loader,
            });
        }
        issuers
    }

    /// Verifies a token (or finds it in the cache) and checks what a login checks of an ID
    /// token's identity: `email_verified`.
    fn verified_bearer(
        &self,
        app: &App,
        token: &str,
        keys: &Keys,
        now: UnixTime,
    ) -> Result<BearerIdentity, BearerError> {
        let cached = app
            .bearer_cache
            .try_borrow_mut()
            .ok()
            .and_then(|mut c| c.get(token, now));
        if let Some(id) = cached {
            return Ok(id);
        }
        let reading = self.claim_reading(app);
        let id = verify_bearer(token, &self.trusted(app, keys), &reading, now)?;
        if id.email_verified == Some(false) && !self.config.headers.allow_unverified_email {
            return Err(BearerError::EmailUnverified);
        }
        if let Ok(mut cache) = app.bearer_cache.try_borrow_mut() {
            cache.insert(token, id.clone());
        }
        Ok(id)
    }

    /// A request with `Authorization: Bearer <JWT>`. A key the filter has not seen is worth
    /// one JWKS refetch of the provider that would hold it.
    pub(super) fn bearer(
        &self,
        app: &App,
        req: &Request<'_>,
        token: &str,
        rules: &RuleSet<'_>,
        ctx: Forwarding,
        env: &mut Env<'_>,
    ) -> Decision {
        let keys = env.providers.keys(app.index, env.store);
        match self.verified_bearer(app, token, &keys, env.now.secs()) {
            Err(BearerError::UnknownKey { loader }) => {
                let pending = PendingBearer {
                    app: app.index,
                    token: BearerToken::new(token),
                    origin: self.origin(req),
                    ctx,
                };
                match self.refetch_keys(loader, env) {
                    Some(call) => Decision::Call(Call {
                        call,
                        then: Pending::BearerKeys(loader, Box::new(pending)),
                    }),
                    None => self.resume_bearer(pending, env),
                }
            }
            verified => self.bearer_outcome(req, verified, rules, ctx),
        }
    }

    /// After the refetch (or when none was allowed): the token with the keys there are now.
    pub(super) fn resume_bearer(&self, pending: PendingBearer, env: &mut Env<'_>) -> Decision {
        let req = pending.origin.request();
        // The same request judged again: the same access as when it was decided.
        let rules = match self.access(req.method, req.authority, req.path) {
            Access::Public => return self.anonymous(pending.ctx, Outcome::Public),
            Access::Rules(r) => r,
        };
        let app = self.app(pending.app);
        let keys = env.providers.keys(app.index, env.store);
        let verified = self.verified_bearer(app, pending.token.expose(), &keys, env.now.secs());
        self.bearer_outcome(&req, verified, &rules, pending.ctx)
    }

    /// A verified token goes upstream with its identity when the rules allow it.
    fn bearer_outcome(
        &self,
        req: &Request<'_>,
        verified: Result<BearerIdentity, BearerError>,
        rules: &RuleSet<'_>,
        ctx: Forwarding,
    ) -> Decision {
        let id = match verified {
            Ok(id) => id,
            Err(BearerError::NotReady) => {
                return Decision::Respond(self.reply(req, Outcome::NotReady))
            }
            Err(e) => return Decision::Respond(self.reply(req, Outcome::BearerRejected(e))),
        };
        let subject = Subject {
            email: &id.email,
            groups: &id.groups,
            claims: &id.rule_claims,
        };
        if let Err(denial) = rules.authorize(&subject) {
            return Decision::Respond(self.reply(req, Outcome::Denied(denial)));
        }
        let who = Principal {
            user: &id.user,
            email: &id.email,
            groups: &id.groups,
            preferred_username: &id.preferred_username,
            claims: &id.claims,
            id_token: None,
            access_token: None,
            bearer: true,
        };
        Decision::Forward(Forward {
            plan: plan_identity(&self.config, &self.removals, &ctx.strip, who, ctx.rewrite),
            outcome: Outcome::Bearer,
            user: Some(id.user.clone()),
            set_cookies: Vec::new(),
            provider: 0,
        })
    }
}
