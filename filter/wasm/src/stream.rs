//! One HTTP request: read the head, let the core decide, carry the decision out (including the
//! call-outs of a login or a refresh, and cookies added to the upstream's response).

use std::rc::Rc;

use log::{debug, info, warn};
use oidc_gate_core::flow::{Keys, LoginStep, PendingRefresh};
use oidc_gate_core::{
    CallResult, CookieRewrite, Decision, Fetch, Gate, HeaderPlan, Outcome, PendingLogin, Request,
    Response,
};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host::{self, HostShared, WasiEntropy};
use crate::metrics;
use crate::root::{log_loaded, log_refused_call, SharedLoader};

/// What this request waits for (with the call-out's token and start time in ms).
enum Waiting {
    /// The token endpoint's answer to a code exchange.
    Token(u32, u64, Box<PendingLogin>),
    /// The JWKS, refetched because the ID token names an unknown key.
    Keys(u32, u64, Box<PendingLogin>),
    /// The token endpoint's answer to a refresh.
    Refresh(u32, u64, Box<PendingRefresh>),
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
    /// The names of the request's headers.
    present: Vec<String>,
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
            request_id: String::new(),
            present: Vec::new(),
        }
    }

    fn provider(&self) -> Option<std::sync::Arc<oidc_gate_core::Provider>> {
        let mut loader = self.loader.borrow_mut();
        if loader.provider().is_none() {
            // Another worker may have published it since this VM's last tick.
            loader.adopt(&HostShared);
        }
        loader.provider().cloned()
    }

    /// One line and one metric per decision.
    fn log(&self, outcome: &Outcome, status: Option<u16>, user: Option<&str>) {
        metrics::count(&outcome.metric());
        let (host, path, code) = (&self.host, &self.path, outcome.code());
        let id = &self.request_id;
        let user = user.unwrap_or("-");
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
        // Only headers the request has need a removal call, and a header the plan sets is
        // replaced anyway: host calls are the costly part of the hot path.
        let present = &self.present;
        let mut ok = plan
            .remove
            .iter()
            .filter(|h| present.iter().any(|p| p == *h) && plan.value(h).is_none())
            .all(|h| host::set_request_header(h, None).is_ok());
        ok &= plan
            .set
            .iter()
            .all(|(h, v)| host::set_request_header(h, Some(v)).is_ok());
        ok &= match &plan.cookie {
            CookieRewrite::Keep => true,
            CookieRewrite::Remove => host::set_request_header("cookie", None).is_ok(),
            CookieRewrite::Replace(c) => host::set_request_header("cookie", Some(c)).is_ok(),
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
            Decision::Redeem { call, pending } => match host::dispatch(&call) {
                Ok(token) => {
                    self.waiting = Some(Waiting::Token(token, host::now_millis(), pending));
                    Action::Pause
                }
                Err(status) => {
                    log_refused_call("the token endpoint", &call.cluster, status);
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
                match host::dispatch(&call) {
                    Ok(token) => {
                        self.waiting = Some(Waiting::Refresh(token, host::now_millis(), pending));
                        Action::Pause
                    }
                    Err(status) => {
                        log_refused_call("a refresh", &call.cluster, status);
                        let d = self.finish_refresh(*pending, CallResult::failed());
                        self.carry_out(d)
                    }
                }
            }
        }
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
                if let Some(call) = call {
                    match host::dispatch(&call) {
                        Ok(token) => {
                            self.waiting = Some(Waiting::Keys(token, host::now_millis(), pending));
                            return Action::Pause;
                        }
                        Err(status) => log_refused_call("the JWKS", &call.cluster, status),
                    }
                }
                // Refetched recently by someone: the key set in shared data is as new as it gets.
                let _ = self
                    .loader
                    .borrow_mut()
                    .poll(host::now_millis(), &mut HostShared);
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
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let headers = host::request_headers();
        // Envoy hands header names over in lower case.
        self.present = headers.iter().map(|(k, _)| k.clone()).collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        // HTTP/2 may split cookies over several headers (RFC 9113 §8.2.3).
        let cookies: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        let cookie = cookies.join("; ");
        let req = Request {
            method: get(":method").unwrap_or(""),
            scheme: get(":scheme").unwrap_or("https"),
            authority: get(":authority").unwrap_or(""),
            path: get(":path").unwrap_or(""),
            cookie: (!cookies.is_empty()).then_some(cookie.as_str()),
            accept: get("accept"),
            x_requested_with: get("x-requested-with"),
            sec_fetch_mode: get("sec-fetch-mode"),
            access_control_request_method: get("access-control-request-method"),
            authorization: get("authorization"),
            request_id: get("x-request-id"),
        };
        self.host = req.authority.to_string();
        self.request_id = req.request_id.unwrap_or("-").to_string();
        self.path = oidc_gate_core::routes::path_only(req.path).to_string();
        let provider = self.provider();
        let extra: Vec<_> = self
            .extra
            .iter()
            .map(|l| l.as_ref().and_then(|l| l.borrow().provider().cloned()))
            .collect();
        let keys = Keys {
            main: provider.as_deref(),
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
        let expected = match &self.waiting {
            Some(Waiting::Token(t, ..) | Waiting::Keys(t, ..) | Waiting::Refresh(t, ..)) => *t,
            None => return,
        };
        if expected != token {
            return;
        }
        let Some(waiting) = self.waiting.take() else {
            return;
        };
        let (status, body) = host::call_response(body_size);
        let result = CallResult {
            status,
            body: &body,
        };
        let (endpoint, started) = match &waiting {
            Waiting::Token(_, t, _) | Waiting::Refresh(_, t, _) => ("token", *t),
            Waiting::Keys(_, t, _) => ("jwks", *t),
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
                let loaded = self.loader.borrow_mut().on_response(
                    Fetch::Jwks,
                    result,
                    host::now_millis(),
                    &mut HostShared,
                );
                log_loaded(Fetch::Jwks, &loaded);
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
        };
        self.resume_with(action);
    }
}
