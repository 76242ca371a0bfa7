//! The root context: the configuration at `on_configure`, and the provider metadata (discovery,
//! JWKS) fetched on ticks through the core's call-out protocol and shared with this VM's HTTP
//! contexts.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use oidc_gate_core::head::for_log;
use oidc_gate_core::provider::TICK_WHILE_LOADING;
use oidc_gate_core::{
    Call, CallResult, Config, Decision, Env, Gate, Loaded, Note, Pending, Providers,
};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::abi;
use crate::host::{self, HostShared, WasiEntropy};
use crate::metrics;
use crate::stream::Stream;
use crate::waiting::Waiting;

/// This VM's provider metadata, shared by the root context (ticks) and the requests (which
/// read keys and, on an unknown `kid`, refetch them).
pub type SharedProviders = Rc<RefCell<Providers>>;

/// Runs `f` with an environment of this VM (clock, randomness, shared data, providers), then
/// logs the notes the core left.
pub fn with_env<R>(providers: &SharedProviders, f: impl FnOnce(&mut Env<'_>) -> R) -> R {
    let mut providers = providers.borrow_mut();
    let (mut rng, mut store) = (WasiEntropy, HostShared);
    let mut env = Env::new(host::now(), &mut rng, &mut store, &mut providers);
    let out = f(&mut env);
    env.notes.iter().for_each(log_note);
    out
}

/// The provider id a call-out's metrics carry: `None` for `default`.
pub fn call_label(gate: &Gate, pending: &Pending, providers: &Providers) -> Option<String> {
    let index = pending.provider(providers);
    (index != 0).then(|| gate.provider_id(index).to_string())
}

fn log_note(note: &Note) {
    let issuer = for_log(&note.issuer, 200);
    match &note.result {
        Ok(Loaded::Discovery) => info!("loaded the discovery document of {issuer}"),
        Ok(Loaded::Keys { count, skipped }) => {
            info!("loaded the JWKS of {issuer}: {count} usable keys, {skipped} skipped")
        }
        Err(e) => warn!("{issuer}: {:?} fetch failed, will retry: {e}", note.fetch),
    }
}

pub fn log_refused_call(endpoint: &str, cluster: &str, status: &str) {
    error!(
        "cannot call the IdP's {endpoint} endpoint: Envoy refused the call-out to cluster {cluster:?} ({status}); define the cluster (Istio: a ServiceEntry for the IdP host) or set idp_cluster"
    );
}

/// The SDK's level for the host's (0 trace … 5 critical).
fn log_level(level: u32) -> LogLevel {
    match level {
        0 => LogLevel::Trace,
        1 => LogLevel::Debug,
        2 => LogLevel::Info,
        3 => LogLevel::Warn,
        4 => LogLevel::Error,
        _ => LogLevel::Critical,
    }
}

#[derive(Default)]
pub struct Root {
    gate: Option<Rc<Gate>>,
    providers: Option<SharedProviders>,
    waiting: Waiting,
    /// The tick period asked of the host.
    tick: Duration,
}

impl Root {
    /// Asks the host for ticks every `period`; false when it refuses.
    fn set_tick(&mut self, period: Duration) -> bool {
        self.tick = period;
        abi::set_tick_period_ms(u32::try_from(period.as_millis()).unwrap_or(u32::MAX)).is_ok()
    }

    /// Makes the call-outs the core asks for; one that Envoy refuses is answered as failed.
    fn call_all(&mut self, calls: Vec<Call>) {
        let (Some(gate), Some(providers)) = (self.gate.clone(), self.providers.clone()) else {
            return;
        };
        let mut queue = calls;
        while let Some(Call { call, then }) = queue.pop() {
            if let Err(then) = self.waiting.dispatch(&call, then) {
                let next = with_env(&providers, |env| {
                    gate.resume(then, CallResult::failed(), env)
                });
                if let Decision::Call(c) = next {
                    queue.push(c);
                }
            }
        }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let answer = host::call_answer(body_size);
        let (Some(gate), Some(providers)) = (self.gate.clone(), self.providers.clone()) else {
            return;
        };
        let label = |p: &Pending| call_label(&gate, p, &providers.borrow());
        let Some(pending) = self.waiting.answered(token, &answer, label) else {
            return;
        };
        let next = with_env(&providers, |env| gate.resume(pending, answer.result(), env));
        if let Decision::Call(c) = next {
            self.call_all(vec![c]);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = abi::log_level() {
            proxy_wasm::set_log_level(log_level(level));
        }
        // A variable that is not UTF-8 counts as unset.
        let env = |name: &str| std::env::var(name).ok();
        let config = match Config::parse(&host::plugin_configuration(), &env) {
            Ok(c) => c,
            Err(e) => {
                // Logged at critical so it shows at Envoy's default log level.
                let _ = abi::log(abi::LOG_CRITICAL, &e.to_string());
                return false;
            }
        };
        self.providers = Some(Rc::new(RefCell::new(Providers::new(&config))));
        self.gate = Some(Rc::new(Gate::new(config)));
        // Fetches start from ticks: on_configure also runs in a throw-away canary VM.
        self.set_tick(TICK_WHILE_LOADING)
    }

    fn on_tick(&mut self) {
        let (Some(gate), Some(providers)) = (self.gate.clone(), self.providers.clone()) else {
            return;
        };
        let calls = with_env(&providers, |env| gate.tick(env));
        self.call_all(calls);
        let period = providers.borrow().tick_period();
        if period != self.tick {
            self.set_tick(period);
        }
        let age = providers.borrow().keys_age(host::now());
        if let Some(age) = age {
            metrics::gauge("oidc_gate_jwks_age_seconds", age.as_secs());
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let gate = self.gate.clone()?;
        let providers = self.providers.clone()?;
        Some(Box::new(Stream::new(gate, providers)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
