//! One HTTP request: read the head as bytes, ask the core, carry out what it decides. The
//! call-outs of a login, a refresh or a key refetch are the core's business: this context only
//! makes them and hands their answers back.

use std::rc::Rc;

use log::warn;
use oidc_gate_core::{Call, CallResult, Decision, Forward, Gate, Head, Pending};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::host;
use crate::root::{self, with_env, SharedProviders};
use crate::waiting::Waiting;
use crate::{headers, logline};

pub struct Stream {
    gate: Rc<Gate>,
    providers: SharedProviders,
    waiting: Waiting,
    /// `Set-Cookie` values for the upstream's response (a refreshed or re-issued session).
    response_cookies: Vec<String>,
    line: logline::Line,
}

impl Stream {
    pub fn new(gate: Rc<Gate>, providers: SharedProviders) -> Self {
        Self {
            gate,
            providers,
            waiting: Waiting::default(),
            response_cookies: Vec::new(),
            line: logline::Line::default(),
        }
    }

    /// Carries out a decision; `Continue` or `Pause` for the headers callback.
    fn carry_out(&mut self, decision: Decision) -> Action {
        match decision {
            Decision::Forward(Forward {
                plan,
                outcome,
                user,
                set_cookies,
                provider,
            }) => {
                let provider = self.provider_label(provider);
                self.line.log(&outcome, None, user.as_deref(), provider);
                if headers::apply(&plan).is_ok() {
                    self.response_cookies = set_cookies;
                    return Action::Continue;
                }
                warn!(
                    "could not rewrite the request headers; refusing {}",
                    self.line
                );
                let _ = host::send_response(500, &[], "");
                Action::Pause
            }
            Decision::Respond(r) => {
                let provider = self.provider_label(r.provider);
                self.line.log(&r.outcome, Some(r.status), None, provider);
                if let Err(status) = host::send_response(r.status, &r.all_headers(), &r.body) {
                    warn!("could not send the local reply: {status:?}");
                }
                Action::Pause
            }
            Decision::Call(call) => self.call(call),
            Decision::Done => Action::Continue,
        }
    }

    /// A non-default provider's id, for metrics and the log line.
    fn provider_label(&self, index: usize) -> Option<&str> {
        (index != 0).then(|| self.gate.provider_id(index))
    }

    /// Makes a call-out and waits for it; when Envoy refuses it, continues as if it failed.
    fn call(&mut self, Call { call, then }: Call) -> Action {
        match self.waiting.dispatch(&call, then) {
            Ok(()) => Action::Pause,
            Err(then) => self.resume(then, CallResult::failed()),
        }
    }

    fn resume(&mut self, pending: Pending, result: CallResult<'_>) -> Action {
        let gate = self.gate.clone();
        let d = with_env(&self.providers, |env| gate.resume(pending, result, env));
        self.carry_out(d)
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let map = host::request_header_map().unwrap_or_default();
        let head = Head::parse(&map);
        let req = match head.as_ref().map_err(|e| *e).and_then(|h| h.request()) {
            Ok(req) => req,
            Err(e) => {
                warn!("bad_request id=- refusing a request: {e}");
                let r = self.gate.head_refused(e, None);
                return self.carry_out(Decision::Respond(r));
            }
        };
        let gate = self.gate.clone();
        let d = with_env(&self.providers, |env| gate.decide(&req, env));
        if logline::wanted(&d) {
            self.line = logline::Line::of(&req);
        }
        self.carry_out(d)
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
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let answer = host::call_answer(body_size);
        let gate = self.gate.clone();
        let providers = self.providers.clone();
        let label = |p: &Pending| root::call_label(&gate, p, &providers.borrow());
        let Some(pending) = self.waiting.answered(token, &answer, label) else {
            return;
        };
        let action = self.resume(pending, answer.result());
        if matches!(action, Action::Continue) {
            if let Err(status) = host::resume_request() {
                warn!("could not resume the request: {status:?}");
            }
        }
    }
}
