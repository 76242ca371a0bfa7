//! The root context: configuration at `on_configure`, and the provider metadata (discovery,
//! JWKS) loaded on ticks through call-outs, shared with this VM's HTTP contexts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use oidc_gate_core::{CallResult, Config, Fetch, Gate, Loaded, ProviderError, ProviderLoader};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

use crate::abi;
use crate::host::{self, CallAnswer, HostShared};
use crate::metrics;
use crate::stream::Stream;

/// How often the root context checks whether a fetch is due (the loader decides).
const TICK: Duration = Duration::from_millis(500);

/// This VM's provider loader, shared by the root context (ticks) and the requests (which read
/// the provider and, on an unknown `kid`, refetch the JWKS).
pub type SharedLoader = Rc<RefCell<ProviderLoader>>;

#[derive(Default)]
pub struct Root {
    gate: Option<Rc<Gate>>,
    loader: Option<SharedLoader>,
    /// One per `extra_jwt_issuers` entry; `None` where it is the main issuer.
    extra: Vec<Option<SharedLoader>>,
    /// Call-outs in flight: which loader (0 = main, i + 1 = extra i), what, and since when (ms).
    calls: HashMap<u32, (usize, Fetch, u64)>,
}

/// The metric name of a provider document fetch.
pub fn endpoint_name(fetch: Fetch) -> &'static str {
    match fetch {
        Fetch::Discovery => "discovery",
        Fetch::Jwks => "jwks",
    }
}

/// Logs what a fetch of provider metadata came to.
pub fn log_loaded(fetch: Fetch, result: &Result<Loaded, ProviderError>) {
    match result {
        Ok(Loaded::Discovery) => info!("loaded the IdP's discovery document"),
        Ok(Loaded::Keys { count, skipped }) => {
            info!("loaded the IdP's JWKS: {count} usable keys, {skipped} skipped")
        }
        Err(e) => warn!("IdP {fetch:?} fetch failed, will retry: {e}"),
    }
}

pub fn log_refused_call(what: &str, cluster: &str, status: &str) {
    error!(
        "cannot call the IdP for {what}: Envoy refused the call-out to cluster {cluster:?} ({status}); define the cluster (Istio: a ServiceEntry for the IdP host) or set idp_cluster"
    );
}

impl Root {
    fn loaders(&self) -> Vec<(usize, SharedLoader)> {
        let main = self.loader.iter().map(|l| (0, l.clone()));
        let extra = self
            .extra
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.clone().map(|l| (i + 1, l)));
        main.chain(extra).collect()
    }

    fn fetch_due(&mut self) {
        let now = host::now_millis();
        for (index, loader) in self.loaders() {
            let Some((fetch, call)) = loader.borrow_mut().poll(now, &mut HostShared) else {
                continue;
            };
            match host::dispatch(&call) {
                Ok(token) => {
                    self.calls.insert(token, (index, fetch, now));
                }
                Err(status) => {
                    log_refused_call(&format!("{fetch:?}"), &call.cluster, &status);
                    let _ = loader.borrow_mut().on_response(
                        fetch,
                        CallResult::failed(),
                        now,
                        &mut HostShared,
                    );
                }
            }
        }
    }
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

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some((index, fetch, started)) = self.calls.remove(&token) else {
            return;
        };
        let Some(loader) = self
            .loaders()
            .into_iter()
            .find(|(i, _)| *i == index)
            .map(|(_, l)| l)
        else {
            return;
        };
        let CallAnswer {
            status,
            body,
            oversized,
        } = host::call_answer(body_size);
        metrics::idp_call(endpoint_name(fetch), started, host::now_millis(), status);
        let result = match (status, oversized) {
            (Some(s), true) => CallResult::too_large(s),
            (Some(s), false) => CallResult::status(s, &body),
            (None, _) => CallResult::failed(),
        };
        let loaded =
            loader
                .borrow_mut()
                .on_response(fetch, result, host::now_millis(), &mut HostShared);
        log_loaded(fetch, &loaded);
        if loaded == Ok(Loaded::Discovery) {
            // Fetch the keys at once rather than at the next tick.
            self.fetch_due();
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = abi::log_level() {
            proxy_wasm::set_log_level(log_level(level));
        }
        let raw = host::plugin_configuration();
        // A variable that is not UTF-8 counts as unset.
        let env = |name: &str| std::env::var(name).ok();
        let config = match Config::parse(&raw, &env) {
            Ok(c) => c,
            Err(e) => {
                // Logged at critical so it shows at Envoy's default log level.
                let _ = abi::log(abi::LOG_CRITICAL, &e.to_string());
                return false;
            }
        };
        self.loader = Some(Rc::new(RefCell::new(ProviderLoader::new(&config))));
        self.extra = config
            .extra_issuers
            .iter()
            .map(|e| {
                e.discovery.as_ref().map(|d| {
                    Rc::new(RefCell::new(ProviderLoader::for_issuer(
                        &e.issuer, d, &config,
                    )))
                })
            })
            .collect();
        self.gate = Some(Rc::new(Gate::new(config)));
        // Fetches start from ticks: on_configure also runs in a throw-away canary VM.
        abi::set_tick_period_ms(u32::try_from(TICK.as_millis()).unwrap_or(500)).is_ok()
    }

    fn on_tick(&mut self) {
        self.fetch_due();
        if let Some(at) = self
            .loader
            .as_ref()
            .and_then(|l| l.borrow().keys_fetched_at_ms())
        {
            metrics::gauge(
                "oidc_gate_jwks_age_seconds",
                host::now_millis().saturating_sub(at) / 1000,
            );
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let gate = self.gate.clone()?;
        let loader = self.loader.clone()?;
        Some(Box::new(Stream::new(gate, loader, self.extra.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
