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
mod protocol;
mod refresh;
mod request;
mod signed_in;
mod tokens;

pub use bearer::PendingBearer;
pub use callback::PendingLogin;
pub use outcome::{BadRequest, LoginError, Outcome, Response};
pub use protocol::{Call, Decision, Forward, Pending};
pub use refresh::{PendingRefresh, REFRESH_SETTLE};
pub use request::Request;
pub use tokens::CLOCK_SKEW_SECS;

pub(crate) use request::Forwarding;

use std::cell::RefCell;

use crate::bearer::{bearer_token, BearerCache};
use crate::config::Config;
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

/// The configured filter: configuration plus the keys and codecs derived from it once.
#[derive(Debug)]
pub struct Gate {
    pub config: Config,
    sessions: SessionCodec,
    logins: LoginCookies,
    removals: Removals,
    /// Verified bearer tokens of this VM.
    bearer_cache: RefCell<BearerCache>,
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
        let (current, previous) = sealers("session");
        let sessions = SessionCodec::new(
            current,
            previous,
            config.cookie.name.clone(),
            config.cookie.session_cache_size,
        );
        let (current, previous) = sealers("login");
        let logins = LoginCookies::new(current, previous, &config.cookie.name);
        Self {
            removals: Removals::new(&config),
            config,
            sessions,
            logins,
            bearer_cache: RefCell::new(BearerCache::default()),
        }
    }

    pub fn sessions(&self) -> &SessionCodec {
        &self.sessions
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
        if self.config.bearer.skip_jwt_bearer_tokens {
            if let Some(token) = bearer_token(req.authorization) {
                return self.bearer(req, token, &rules, ctx, env);
            }
        }
        self.with_session(req, &cookies, &rules, ctx, env)
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
