//! One HTTP request: read the head as bytes, let the core decide, carry the decision out
//! (including the call-outs of a login, a refresh or a bearer token's key refetch, and cookies
//! added to the upstream's response).

use std::rc::Rc;
use std::sync::Arc;

use log::{debug, info, warn};
use oidc_gate_core::flow::{Keys, LoginStep, PendingRefresh};
use oidc_gate_core::head::for_log;
use oidc_gate_core::{
    CallResult, CookieRewrite, Decision, Fetch, Gate, Head, HeaderPlan, Outcome, PendingBearer,
    PendingLogin, Provider, Response,
};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host::{self, CallAnswer, HostShared, WasiEntropy};
use crate::metrics;
use crate::root::{log_loaded, log_refused_call, SharedLoader};

/// How much of a host or path a log line shows.
const LOG_FIELD_MAX: usize = 200;

/// What this request waits for (with the call-out's token and start time in ms).
enum Waiting {
    /// The token endpoint's answer to a code exchange.
    Token(u32, u64, Box<PendingLogin>),
    /// The JWKS, refetched because the ID token names an unknown key.
    Keys(u32, u64, Box<PendingLogin>),
    /// The token endpoint's answer to a refresh.
    Refresh(u32, u64, Box<PendingRefresh>),
    /// The JWKS of loader `usize`, refetched because a bearer token names an unknown key.
    BearerKeys(u32, u64, usize, Box<PendingBearer>),
}

impl Waiting {
    fn token(&self) -> u32 {
        match self {
            Self::Token(t, ..)
            | Self::Keys(t, ..)
            | Self::Refresh(t, ..)
            | Self::BearerKeys(t, ..) => *t,
        }
    }
}

pub struct Stream {
    gate: Rc<Gate>,
    loader: SharedLoader,
    extra: Vec<Option<SharedLoader>>,
    waiting: Option<Waiting>,
    /// `Set-Cookie` values for the upstream's response (a refreshed or re-issued session).
    response_cookies: Vec<String>,
    /// For log lines: host and path without the query (which may hold an authorization code).
    host: String,
    path: String,
    request_id: String,
}

impl Stream {
    pub fn new(gate: Rc<Gate>, loader: SharedLoader, extra: Vec<Option<SharedLoader>>) -> Self {
        Self {
            gate,
            loader,
            extra,
            waiting: None,
            response_cookies: Vec::new(),
            host: String::new(),
            path: String::new(),
            request_id: "-".into(),
        }
    }

    fn provider(&self) -> Option<Arc<Provider>> {
        let mut loader = self.loader.borrow_mut();
        if loader.provider().is_none() {
            // Another worker may have published it since this VM's last tick.
            loader.adopt(&HostShared);
        }
        loader.provider().cloned()
    }

    /// The keys of the `extra_jwt_issuers` loaders, as loaded now.
    fn extra_providers(&self) -> Vec<Option<Arc<Provider>>> {
        self.extra
            .iter()
            .map(|l| l.as_ref().and_then(|l| l.borrow().provider().cloned()))
            .collect()
    }

    /// Loader 0 is the main issuer's, `i + 1` the `extra_jwt_issuers` entry `i`'s.
    fn loader_at(&self, index: usize) -> Option<SharedLoader> {
        match index.checked_sub(1) {
            None => Some(self.loader.clone()),
            Some(i) => self.extra.get(i).cloned().flatten(),
        }
    }

    /// One line and one metric per decision.
    fn log(&self, outcome: &Outcome, status: Option<u16>, user: Option<&str>) {
        metrics::count(&outcome.metric());
        let (host, path, code) = (&self.host, &self.path, outcome.code());
        let id = &self.request_id;
        let user = for_log(user.unwrap_or("-"), LOG_FIELD_MAX);
        let status = status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "upstream".into());
        match outcome {
            Outcome::LoginFailed(e) | Outcome::RefreshDeferred(e) | Outcome::SessionEnded(e) => {
                warn!("{code} id={id} host={host} path={path} user={user} status={status}: {e}")
            }
            Outcome::Denied(_)
            | Outcome::NotReady
            | Outcome::NoEntropy
            | Outcome::LoginCompleted
            | Outcome::Refreshed => {
                info!("{code} id={id} host={host} path={path} user={user} status={status}")
            }
            _ => debug!("{code} id={id} host={host} path={path} user={user} status={status}"),
        }
    }

    fn respond(&self, r: &Response) -> Action {
        self.log(&r.outcome, Some(r.status), None);
        if let Err(status) = host::send_response(r.status, &r.headers, &r.body) {
            warn!("could not send the local reply: {status:?}");
        }
        Action::Pause
    }

    /// Applies the header plan; if the host refuses a change, the request is answered 500
    /// rather than forwarded half-rewritten.
    fn forward(&mut self, plan: HeaderPlan, set_cookies: Vec<String>) -> Action {
        // A header the plan sets is replaced anyway: host calls are the costly part.
        let mut ok = plan
            .remove
            .iter()
            .filter(|h| plan.value(h).is_none())
            .all(|h| host::remove_request_header(h).is_ok());
        ok &= plan
            .set
            .iter()
            .all(|(h, v)| host::set_request_header(h, v.as_bytes()).is_ok());
        ok &= match &plan.cookie {
            CookieRewrite::Keep => true,
            CookieRewrite::Remove => host::remove_request_header("cookie").is_ok(),
            CookieRewrite::Replace(c) => host::set_request_header("cookie", c).is_ok(),
        };
        if ok {
            self.response_cookies = set_cookies;
            return Action::Continue;
        }
        warn!(
            "could not rewrite the request headers; refusing host={} path={}",
            self.host, self.path
        );
        let _ = host::send_response(500, &[], "");
        Action::Pause
    }

    /// Dispatches a call-out and remembers what waits for it; `None` when Envoy refused it.
    fn call(&mut self, call: &oidc_gate_core::CallOut, what: &str) -> Option<(u32, u64)> {
        match host::dispatch(call) {
            Ok(token) => Some((token, host::now_millis())),
            Err(status) => {
                log_refused_call(what, &call.cluster, &status);
                None
            }
        }
    }

    /// Carries out a decision; `Continue` or `Pause` for the headers callback.
    fn carry_out(&mut self, decision: Decision) -> Action {
        match decision {
            Decision::Forward {
                plan,
                outcome,
                user,
                set_cookies,
            } => {
                self.log(&outcome, None, user.as_deref());
                self.forward(plan, set_cookies)
            }
            Decision::Respond(r) => self.respond(&r),
            Decision::Redeem { call, pending } => match self.call(&call, "the token endpoint") {
                Some((token, at)) => {
                    self.waiting = Some(Waiting::Token(token, at, pending));
                    Action::Pause
                }
                None => {
                    let step = self.gate.finish_login(
                        *pending,
                        CallResult::failed(),
                        self.provider().as_deref(),
                        host::now_secs(),
                        &mut WasiEntropy,
                    );
                    self.login_step(step)
                }
            },
            Decision::Refresh { call, pending } => {
                if !self
                    .gate
                    .claim_refresh(&pending, host::now_millis(), &mut HostShared)
                {
                    let fallback = self.gate.skip_refresh(*pending);
                    return self.carry_out(fallback);
                }
                match self.call(&call, "a refresh") {
                    Some((token, at)) => {
                        self.waiting = Some(Waiting::Refresh(token, at, pending));
                        Action::Pause
                    }
                    None => {
                        let d = self.finish_refresh(*pending, CallResult::failed());
                        self.carry_out(d)
                    }
                }
            }
            Decision::RefetchBearerKeys { loader, pending } => {
                let call = self.loader_at(loader).and_then(|l| {
                    l.borrow_mut()
                        .refetch_for_unknown_kid(host::now_millis(), &mut HostShared)
                });
                if let Some((token, at)) = call.and_then(|c| self.call(&c, "the JWKS")) {
                    self.waiting = Some(Waiting::BearerKeys(token, at, loader, pending));
                    return Action::Pause;
                }
                // Refetched a moment ago by someone: the keys in shared data are the newest.
                self.resume_bearer(loader, *pending)
            }
        }
    }

    fn resume_bearer(&mut self, loader: usize, pending: PendingBearer) -> Action {
        if let Some(l) = self.loader_at(loader) {
            l.borrow_mut().adopt(&HostShared);
        }
        let (main, extra) = (self.provider(), self.extra_providers());
        let keys = Keys {
            main: main.as_deref(),
            extra: &extra,
        };
        let d = self.gate.resume_bearer(pending, keys, host::now_secs());
        self.carry_out(d)
    }

    fn finish_refresh(&self, pending: PendingRefresh, result: CallResult<'_>) -> Decision {
        self.gate.finish_refresh(
            pending,
            result,
            self.provider().as_deref(),
            host::now_secs(),
            host::now_millis(),
            &mut WasiEntropy,
            &mut HostShared,
        )
    }

    fn login_step(&mut self, step: LoginStep) -> Action {
        match step {
            LoginStep::Done(r) => self.respond(&r),
            LoginStep::NeedKeys(pending) => {
                let call = self
                    .loader
                    .borrow_mut()
                    .refetch_for_unknown_kid(host::now_millis(), &mut HostShared);
                if let Some((token, at)) = call.and_then(|c| self.call(&c, "the JWKS")) {
                    self.waiting = Some(Waiting::Keys(token, at, pending));
                    return Action::Pause;
                }
                // Refetched recently by someone: the key set in shared data is as new as it gets.
                self.loader.borrow_mut().adopt(&HostShared);
                let step = self.gate.resume_login(
                    *pending,
                    self.provider().as_deref(),
                    host::now_secs(),
                    &mut WasiEntropy,
                );
                self.login_step(step)
            }
        }
    }

    /// After a pause: a decision that continues resumes the request.
    fn resume_with(&mut self, action: Action) {
        if matches!(action, Action::Continue) {
            if let Err(status) = host::resume_request() {
                warn!("could not resume the request: {status:?}");
            }
        }
    }

    /// Takes a refetched JWKS into loader `index` and logs what it came to.
    fn take_keys(&self, index: usize, result: CallResult<'_>) {
        if let Some(loader) = self.loader_at(index) {
            let loaded = loader.borrow_mut().on_response(
                Fetch::Jwks,
                result,
                host::now_millis(),
                &mut HostShared,
            );
            log_loaded(Fetch::Jwks, &loaded);
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let map = host::request_header_map().unwrap_or_default();
        let head = Head::parse(&map);
        let req = head.as_ref().map_err(|e| *e).and_then(|h| h.request());
        let req = match req {
            Ok(req) => req,
            Err(e) => {
                warn!("bad_request id=- refusing a request: {e}");
                return self.respond(&self.gate.head_refused(e, None));
            }
        };
        self.host = for_log(req.authority, LOG_FIELD_MAX);
        self.path = for_log(oidc_gate_core::routes::path_only(req.path), LOG_FIELD_MAX);
        self.request_id = for_log(req.request_id.unwrap_or("-"), LOG_FIELD_MAX);
        let (main, extra) = (self.provider(), self.extra_providers());
        let keys = Keys {
            main: main.as_deref(),
            extra: &extra,
        };
        let decision = self
            .gate
            .decide_with(&req, keys, host::now_secs(), &mut WasiEntropy);
        self.carry_out(decision)
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        for c in std::mem::take(&mut self.response_cookies) {
            if let Err(status) = host::add_response_header("set-cookie", &c) {
                warn!("could not add the session cookie to the response: {status:?}");
            }
        }
        Action::Continue
    }
}

impl Context for Stream {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if self.waiting.as_ref().map(Waiting::token) != Some(token) {
            return;
        }
        let Some(waiting) = self.waiting.take() else {
            return;
        };
        let CallAnswer {
            status,
            body,
            oversized,
        } = host::call_answer(body_size);
        let result = match (status, oversized) {
            (Some(s), true) => CallResult::too_large(s),
            (Some(s), false) => CallResult::status(s, &body),
            (None, _) => CallResult::failed(),
        };
        let (endpoint, started) = match &waiting {
            Waiting::Token(_, t, _) | Waiting::Refresh(_, t, _) => ("token", *t),
            Waiting::Keys(_, t, _) | Waiting::BearerKeys(_, t, ..) => ("jwks", *t),
        };
        metrics::idp_call(endpoint, started, host::now_millis(), status);
        let action = match waiting {
            Waiting::Token(_, _, pending) => {
                let step = self.gate.finish_login(
                    *pending,
                    result,
                    self.provider().as_deref(),
                    host::now_secs(),
                    &mut WasiEntropy,
                );
                self.login_step(step)
            }
            Waiting::Keys(_, _, pending) => {
                self.take_keys(0, result);
                let step = self.gate.resume_login(
                    *pending,
                    self.provider().as_deref(),
                    host::now_secs(),
                    &mut WasiEntropy,
                );
                self.login_step(step)
            }
            Waiting::Refresh(_, _, pending) => {
                let d = self.finish_refresh(*pending, result);
                self.carry_out(d)
            }
            Waiting::BearerKeys(_, _, loader, pending) => {
                self.take_keys(loader, result);
                self.resume_bearer(loader, *pending)
            }
        };
        self.resume_with(action);
    }
}
