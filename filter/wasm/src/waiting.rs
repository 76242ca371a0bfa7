//! The call-outs a context has in flight, each with what continues when it answers, and the
//! latency and failure metrics of each answer.

use oidc_gate_core::{CallOut, Pending};

use crate::host::{self, CallAnswer};
use crate::{metrics, root};

#[derive(Default)]
pub struct Waiting {
    /// (token, start in ms, continuation)
    calls: Vec<(u32, u64, Pending)>,
}

impl Waiting {
    /// Dispatches `call`; on a refusal (no such cluster, bad argument) it is logged and the
    /// continuation comes back, to be resumed as a failed call.
    pub fn dispatch(&mut self, call: &CallOut, then: Pending) -> Result<(), Pending> {
        match host::dispatch(call) {
            Ok(token) => {
                self.calls.push((token, host::now_millis(), then));
                Ok(())
            }
            Err(status) => {
                root::log_refused_call(then.endpoint(), &call.cluster, &status);
                Err(then)
            }
        }
    }

    /// The continuation waiting for call-out `token`, with its metrics recorded under the
    /// name of its provider (`provider` gives it: `None` for `default`).
    pub fn answered(
        &mut self,
        token: u32,
        answer: &CallAnswer,
        provider: impl FnOnce(&Pending) -> Option<String>,
    ) -> Option<Pending> {
        let i = self.calls.iter().position(|(t, ..)| *t == token)?;
        let (_, started, pending) = self.calls.swap_remove(i);
        let endpoint = match provider(&pending) {
            None => pending.endpoint().to_string(),
            Some(p) => format!("{}_provider_{p}", pending.endpoint()),
        };
        metrics::idp_call(&endpoint, started, host::now_millis(), answer.status);
        Some(pending)
    }
}
