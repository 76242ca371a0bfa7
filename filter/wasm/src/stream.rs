//! One HTTP request: read the head, let the core decide, carry the decision out.

use std::rc::Rc;

use log::{debug, info, warn};
use oidc_gate_core::{
    CallResult, CookieRewrite, Decision, Gate, Outcome, PendingLogin, Request, Response,
};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host::{self, WasiEntropy};
use crate::root::ProviderSlot;

pub struct Stream {
    gate: Rc<Gate>,
    provider: ProviderSlot,
    pending: Option<(u32, Box<PendingLogin>)>,
    /// For log lines: host and path without the query (which may hold an authorization code).
    host: String,
    path: String,
}

impl Stream {
    pub fn new(gate: Rc<Gate>, provider: ProviderSlot) -> Self {
        Self {
            gate,
            provider,
            pending: None,
            host: String::new(),
            path: String::new(),
        }
    }

    fn log(&self, outcome: &Outcome, status: Option<u16>, user: Option<&str>) {
        let (host, path, code) = (&self.host, &self.path, outcome.code());
        let user = user.unwrap_or("-");
        match outcome {
            Outcome::LoginFailed(e) => {
                warn!("{code} host={host} path={path} status={status:?}: {e}")
            }
            Outcome::Denied(_)
            | Outcome::NotReady
            | Outcome::NoEntropy
            | Outcome::LoginCompleted => {
                info!("{code} host={host} path={path} user={user} status={status:?}")
            }
            _ => debug!("{code} host={host} path={path} user={user} status={status:?}"),
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
    fn forward(&self, plan: oidc_gate_core::HeaderPlan) -> Action {
        let mut ok = plan
            .remove
            .iter()
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
            return Action::Continue;
        }
        warn!(
            "could not rewrite the request headers; refusing host={} path={}",
            self.host, self.path
        );
        let _ = host::send_response(500, &[], "");
        Action::Pause
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let headers = host::request_headers();
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
            request_id: get("x-request-id"),
        };
        self.host = req.authority.to_string();
        self.path = oidc_gate_core::routes::path_only(req.path).to_string();
        let provider = self.provider.borrow().clone();
        let decision = self.gate.decide(
            &req,
            provider.as_deref(),
            host::now_secs(),
            &mut WasiEntropy,
        );
        match decision {
            Decision::Forward {
                plan,
                outcome,
                user,
            } => {
                self.log(&outcome, None, user.as_deref());
                self.forward(plan)
            }
            Decision::Respond(r) => self.respond(&r),
            Decision::Redeem { call, pending } => match host::dispatch(&call) {
                Ok(token) => {
                    self.pending = Some((token, pending));
                    Action::Pause
                }
                Err(status) => {
                    warn!(
                        "token endpoint call-out to cluster {:?} refused by Envoy: {status:?}",
                        call.cluster
                    );
                    let r = self.gate.finish_login(
                        *pending,
                        CallResult::failed(),
                        provider.as_deref(),
                        host::now_secs(),
                        &mut WasiEntropy,
                    );
                    self.respond(&r)
                }
            },
        }
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
        let Some((_, pending)) = self.pending.take_if(|(t, _)| *t == token) else {
            return;
        };
        let (status, body) = host::call_response(body_size);
        let provider = self.provider.borrow().clone();
        let r = self.gate.finish_login(
            *pending,
            CallResult {
                status,
                body: &body,
            },
            provider.as_deref(),
            host::now_secs(),
            &mut WasiEntropy,
        );
        self.respond(&r);
    }
}
