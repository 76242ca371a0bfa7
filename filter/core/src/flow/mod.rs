//! What the filter decides, as one protocol (see `protocol`): a request head and the `Env` go
//! in; a `Decision` comes out: go upstream with a header plan, answer locally, or make a
//! call-out and continue with `Gate::resume` when it answers. Each step has its file: the way
//! to the app (`signed_in`), bearer tokens, starting a login, the endpoints, the callback,
//! refresh, the token endpoint and sessions (`tokens`), and the outcomes and their replies.

mod bearer;
mod callback;
mod endpoints;
mod login;
mod outcome;
mod par;
mod protocol;
mod refresh;
mod request;
mod signed_in;
mod tokens;
mod userinfo;

pub use bearer::PendingBearer;
pub use callback::PendingLogin;
pub use outcome::{BadRequest, LoginError, Outcome, Response};
pub use par::PendingPar;
pub use protocol::{Call, Decision, Forward, Pending};
pub use refresh::{PendingRefresh, REFRESH_SETTLE};
pub use request::Request;
pub use tokens::CLOCK_SKEW_SECS;
pub use userinfo::PendingUserInfo;

pub(crate) use request::Forwarding;

use std::cell::RefCell;

use crate::bearer::{bearer_token, BearerCache};
use crate::config::{Config, ProviderConfig};
use crate::cookies::RequestCookies;
use crate::env::Env;
use crate::head::HeadError;
use crate::headers::Removals;
use crate::login::LoginCookies;
use crate::policy::Access;
use crate::seal::Sealer;
use crate::session::SessionCodec;

/// Keeps an IdP-supplied error code printable and short.
pub(crate) fn safe_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

/// One provider as the flow uses it: its options and its session cookie.
#[derive(Debug)]
pub(crate) struct App {
    /// Its position in the configuration (0: `default`).
    pub(crate) index: usize,
    pub(crate) cfg: ProviderConfig,
    /// `cookie_name` for `default`, `<cookie_name>_<id>` for the others, each sealed with keys
    /// bound to the provider's id: a session never opens on another provider's hosts.
    pub(crate) sessions: SessionCodec,
    /// Bearer tokens verified for this provider's hosts, in this VM.
    pub(crate) bearer_cache: RefCell<BearerCache>,
}

/// The configured filter: configuration plus the keys and codecs derived from it once.
#[derive(Debug)]
pub struct Gate {
    pub config: Config,
    /// The default provider's, always there.
    default_app: App,
    /// The further providers', in order (index 1 onwards).
    more_apps: Vec<App>,
    logins: LoginCookies,
    removals: Removals,
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
        let mut apps = config.providers.iter().enumerate().map(|(index, p)| {
            // The default provider keeps the names and keys sessions had before `providers`.
            let (purpose, name) = if index == 0 {
                ("session".to_string(), config.cookie.name.clone())
            } else {
                (
                    format!("session:{}", p.id),
                    format!("{}_{}", config.cookie.name, p.id),
                )
            };
            let (current, previous) = sealers(&purpose);
            App {
                index,
                cfg: p.clone(),
                sessions: SessionCodec::new(
                    current,
                    previous,
                    name,
                    config.cookie.session_cache_size,
                )
                .with_idle_timeout(config.cookie.idle_timeout),
                bearer_cache: RefCell::new(BearerCache::default()),
            }
        });
        let default_app = apps.next().unwrap_or_else(|| {
            // `Config` always has the default provider; this arm is never taken.
            let (current, previous) = sealers("session");
            App {
                index: 0,
                cfg: config.default_provider().clone(),
                sessions: SessionCodec::new(current, previous, config.cookie.name.clone(), 0)
                    .with_idle_timeout(config.cookie.idle_timeout),
                bearer_cache: RefCell::new(BearerCache::default()),
            }
        });
        let more_apps = apps.collect();
        let (current, previous) = sealers("login");
        let logins = LoginCookies::new(current, previous, &config.cookie.name);
        Self {
            removals: Removals::new(&config),
            config,
            default_app,
            more_apps,
            logins,
        }
    }

    /// The default provider's session codec.
    pub fn sessions(&self) -> &SessionCodec {
        &self.default_app.sessions
    }

    /// Provider `index` (the default one for an index that is not there).
    pub(crate) fn app(&self, index: usize) -> &App {
        index
            .checked_sub(1)
            .and_then(|i| self.more_apps.get(i))
            .unwrap_or(&self.default_app)
    }

    /// Every provider, default first.
    pub(crate) fn apps(&self) -> impl Iterator<Item = &App> {
        std::iter::once(&self.default_app).chain(&self.more_apps)
    }

    /// The id of provider `index` (`default` for an index that is not there).
    pub fn provider_id(&self, index: usize) -> &str {
        &self.app(index).cfg.id
    }

    /// A provider by its id.
    pub(crate) fn app_by_id(&self, id: &str) -> Option<&App> {
        self.apps().find(|a| a.cfg.id == id)
    }

    /// Whether a cookie is the filter's own (any provider's session, or a login flow's).
    pub(crate) fn owns_cookie(&self, name: &str) -> bool {
        self.logins.owns(name) || self.apps().any(|a| a.sessions.owns(name))
    }

    /// Decides what to do with a request.
    pub fn decide(&self, req: &Request<'_>, env: &mut Env<'_>) -> Decision {
        let cookies = RequestCookies::parse(req.cookie);
        if let Some(endpoint) = self.endpoint(req.path) {
            return self.serve_endpoint(endpoint, req, &cookies, env);
        }
        let ctx = self.forwarding(req, &cookies);
        if self.config.rules.skip_auth_preflight
            && req.method == "OPTIONS"
            && req.access_control_request_method.is_some()
        {
            return self.anonymous(ctx, Outcome::Preflight);
        }
        let rules = match self.access(req.method, req.authority, req.path) {
            Access::Public => return self.anonymous(ctx, Outcome::Public),
            Access::Rules(r) => r,
        };
        let Some(app) = rules.provider().map(|p| self.app(p)) else {
            return Decision::Respond(self.reply(req, Outcome::BadRequest(BadRequest::Path)));
        };
        let optional = self
            .optional_route(req.method, req.path)
            .then(|| ctx.clone());
        let bearer =
            bearer_token(req.authorization).filter(|_| app.cfg.bearer.skip_jwt_bearer_tokens);
        let d = match bearer {
            Some(token) => self.bearer(app, req, token, &rules, ctx, env),
            None => self.with_session(app, req, &cookies, &rules, ctx, env),
        };
        match optional {
            Some(ctx) => self.or_anonymous(d, ctx),
            None => d,
        }
        .of(app.index)
    }

    /// A request whose head cannot be read (see `head`): 400, or 500 when the host's header
    /// list itself is broken. Nothing goes upstream.
    pub fn head_refused(&self, e: HeadError, request_id: Option<&str>) -> Response {
        let req = Request {
            request_id,
            ..Request::default()
        };
        let outcome = match e {
            HeadError::Malformed => Outcome::HostFault,
            HeadError::NotUtf8(_) | HeadError::Repeated(_) => {
                Outcome::BadRequest(BadRequest::Headers)
            }
        };
        self.reply(&req, outcome)
    }
}

#[cfg(test)]
mod tests;
