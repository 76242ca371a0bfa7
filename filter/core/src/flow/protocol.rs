//! The one protocol between the core and its host. `Gate::decide` (a request) and `Gate::tick`
//! (background work) return decisions; a decision that needs the IdP is a `Call` with the
//! continuation that takes its answer, and `Gate::resume` continues it. The host carries out
//! decisions and never knows which step comes next.

use super::bearer::PendingBearer;
use super::callback::PendingLogin;
use super::par::PendingPar;
use super::refresh::PendingRefresh;
use super::userinfo::PendingUserInfo;
use super::{Gate, LoginError, Outcome, Response};
use crate::callout::{CallOut, CallResult};
use crate::env::{Env, Note};
use crate::headers::HeaderPlan;
use crate::provider::{Fetch, Providers};

/// What to do next.
#[derive(Debug)]
pub enum Decision {
    /// Go upstream with this header plan.
    Forward(Forward),
    /// Answer locally.
    Respond(Response),
    /// Make this call-out, then `Gate::resume` its continuation with the answer (or with
    /// `CallResult::failed()` when the host could not make it).
    Call(Call),
    /// Nothing more to do (background work that is complete).
    Done,
}

/// A request that goes upstream.
#[derive(Debug)]
pub struct Forward {
    pub plan: HeaderPlan,
    pub outcome: Outcome,
    /// The user id, for the log line.
    pub user: Option<String>,
    /// `Set-Cookie` values for the upstream's response (a refreshed or re-issued session).
    pub set_cookies: Vec<String>,
    /// The provider whose rules decided (0: `default`), for metrics and the log line.
    pub provider: usize,
}

/// A call-out and what continues when it answers.
#[derive(Debug)]
pub struct Call {
    pub call: CallOut,
    pub then: Pending,
}

/// Every continuation: what waits for a call-out's answer.
#[derive(Debug)]
pub enum Pending {
    /// A login's code exchange at the token endpoint.
    CodeExchange(Box<PendingLogin>),
    /// A login whose ID token names an unknown key, waiting for its provider's JWKS.
    LoginKeys(Box<PendingLogin>),
    /// A session refresh at the token endpoint.
    Refresh(Box<PendingRefresh>),
    /// A bearer token that names an unknown key, waiting for the JWKS of provider `usize`.
    BearerKeys(usize, Box<PendingBearer>),
    /// Provider metadata fetched in the background, for provider `usize`.
    Metadata(usize, Fetch),
    /// A login's pushed authorization request (RFC 9126).
    Par(Box<PendingPar>),
    /// A login or refresh whose ID token lacks claims, asking the UserInfo endpoint.
    UserInfo(Box<PendingUserInfo>),
}

impl Pending {
    /// The provider it is for (0: `default`); a metadata fetch is for the first provider that
    /// uses the issuer.
    pub fn provider(&self, providers: &Providers) -> usize {
        match self {
            Self::CodeExchange(p) | Self::LoginKeys(p) => p.app(),
            Self::Refresh(p) => p.app(),
            Self::BearerKeys(_, p) => p.app(),
            Self::Par(p) => p.app,
            Self::UserInfo(p) => p.app(),
            Self::Metadata(loader, _) => providers.owner(*loader),
        }
    }

    /// The IdP endpoint the call-out goes to, for metrics.
    pub fn endpoint(&self) -> &'static str {
        match self {
            Self::CodeExchange(_) | Self::Refresh(_) => "token",
            Self::Par(_) => "par",
            Self::UserInfo(_) => "userinfo",
            Self::LoginKeys(_) | Self::BearerKeys(..) | Self::Metadata(_, Fetch::Jwks) => "jwks",
            Self::Metadata(_, Fetch::Discovery) => "discovery",
        }
    }
}

impl Decision {
    /// The same decision, counted as `outcome` when it goes upstream (a refresh's result).
    pub(crate) fn with_outcome(self, outcome: Outcome) -> Self {
        match self {
            Self::Forward(f) => Self::Forward(Forward { outcome, ..f }),
            other => other,
        }
    }

    /// A login started because a session ended (`e`): counted as the session's end.
    pub(crate) fn restarting(self, e: LoginError) -> Self {
        match self {
            Self::Respond(r) if r.status == 302 => Self::Respond(Response {
                outcome: Outcome::SessionEnded(e),
                ..r
            }),
            Self::Call(Call {
                call,
                then: Pending::Par(mut p),
            }) => {
                p.outcome = Outcome::SessionEnded(e);
                Self::Call(Call {
                    call,
                    then: Pending::Par(p),
                })
            }
            other => other,
        }
    }

    /// The same decision, also setting or clearing these cookies in its reply (now, or when
    /// its pushed authorization request answers).
    pub(crate) fn with_cookies(self, cookies: Vec<String>) -> Self {
        match self {
            Self::Respond(r) => Self::Respond(r.with_cookies(cookies)),
            Self::Forward(mut f) => {
                f.set_cookies.extend(cookies);
                Self::Forward(f)
            }
            Self::Call(Call {
                call,
                then: Pending::Par(mut p),
            }) => {
                p.other_cookies.extend(cookies);
                Self::Call(Call {
                    call,
                    then: Pending::Par(p),
                })
            }
            other => other,
        }
    }

    /// The same decision, counted for provider `index`.
    pub(crate) fn of(self, index: usize) -> Self {
        match self {
            Self::Forward(f) => Self::Forward(Forward {
                provider: index,
                ..f
            }),
            Self::Respond(r) => Self::Respond(r.of(index)),
            other => other,
        }
    }
}

impl Gate {
    /// Continues what waited for a call-out.
    pub fn resume(&self, pending: Pending, result: CallResult<'_>, env: &mut Env<'_>) -> Decision {
        match pending {
            Pending::CodeExchange(p) => {
                let app = p.app();
                self.code_exchanged(*p, result, env).of(app)
            }
            Pending::LoginKeys(p) => {
                let app = p.app();
                let loader = env.providers.main_loader(app).unwrap_or(0);
                self.take_keys(loader, result, env);
                self.complete_login(*p, env).of(app)
            }
            Pending::Refresh(p) => {
                let app = p.app();
                self.resume_refresh(*p, result, env).of(app)
            }
            Pending::BearerKeys(loader, p) => {
                let app = p.app();
                self.take_keys(loader, result, env);
                self.resume_bearer(*p, env).of(app)
            }
            Pending::Par(p) => {
                let app = p.app;
                self.pushed(*p, result, env).of(app)
            }
            Pending::UserInfo(p) => {
                let app = p.app();
                self.resume_userinfo(*p, result, env).of(app)
            }
            Pending::Metadata(loader, fetch) => self.metadata(loader, fetch, result, env),
        }
    }

    /// The background fetches due now: discovery and JWKS, each once per Envoy (a lease in
    /// shared data), refreshed on their schedule and retried with backoff.
    pub fn tick(&self, env: &mut Env<'_>) -> Vec<Call> {
        env.providers
            .due(env.now, env.store)
            .into_iter()
            .map(|(loader, fetch, call)| Call {
                call,
                then: Pending::Metadata(loader, fetch),
            })
            .collect()
    }

    /// A fetched provider document: taken, published to the other workers, noted for the
    /// log; a loaded discovery document is followed at once by the JWKS.
    fn metadata(
        &self,
        index: usize,
        fetch: Fetch,
        result: CallResult<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        let Some(loader) = env.providers.loader(index) else {
            return Decision::Done;
        };
        let loaded = loader.on_response(fetch, result, env.now, env.store);
        let next = match loaded {
            Ok(crate::provider::Loaded::Discovery) => loader.poll(env.now, env.store),
            _ => None,
        };
        env.notes.push(Note {
            issuer: loader.issuer().to_string(),
            fetch,
            result: loaded,
        });
        match next {
            Some((fetch, call)) => Decision::Call(Call {
                call,
                then: Pending::Metadata(index, fetch),
            }),
            None => Decision::Done,
        }
    }

    /// A refetched JWKS for provider `index` (after an unknown `kid`).
    pub(super) fn take_keys(&self, index: usize, result: CallResult<'_>, env: &mut Env<'_>) {
        if let Some(loader) = env.providers.loader(index) {
            let loaded = loader.on_response(Fetch::Jwks, result, env.now, env.store);
            env.notes.push(Note {
                issuer: loader.issuer().to_string(),
                fetch: Fetch::Jwks,
                result: loaded,
            });
        }
    }

    /// A JWKS call-out for provider `index` after an unknown `kid`, unless the gateway made one
    /// a moment ago (then the keys in shared data are as new as they get, and are adopted).
    pub(super) fn refetch_keys(&self, index: usize, env: &mut Env<'_>) -> Option<CallOut> {
        let loader = env.providers.loader(index)?;
        let call = loader.refetch_for_unknown_kid(env.now, env.store);
        if call.is_none() {
            loader.adopt(env.store);
        }
        call
    }
}
