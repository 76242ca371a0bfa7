//! The root context: configuration at `on_configure`, and the provider metadata (discovery,
//! JWKS) loaded on ticks through call-outs, shared with this VM's HTTP contexts.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use log::{error, info, warn};
use oidc_gate_core::{CallResult, Config, Fetch, Gate, Loaded, Provider, ProviderLoader};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use crate::host;
use crate::stream::Stream;

/// How often the root context checks whether a fetch is due (the loader decides).
const TICK: Duration = Duration::from_millis(500);

/// The provider as last loaded, read by every request of this VM (one per worker thread).
pub type ProviderSlot = Rc<RefCell<Option<Arc<Provider>>>>;

#[derive(Default)]
pub struct Root {
    gate: Option<Rc<Gate>>,
    loader: Option<ProviderLoader>,
    provider: ProviderSlot,
    calls: HashMap<u32, Fetch>,
}

impl Root {
    fn fetch_due(&mut self) {
        let Some(loader) = self.loader.as_mut() else {
            return;
        };
        let now = host::now_millis();
        let Some((fetch, call)) = loader.poll(now) else {
            return;
        };
        match host::dispatch(&call) {
            Ok(token) => {
                self.calls.insert(token, fetch);
            }
            Err(status) => {
                error!(
                    "cannot call the IdP for {fetch:?}: Envoy refused the call-out to cluster {:?} ({status:?}); define the cluster (Istio: a ServiceEntry for the IdP host) or set idp_cluster",
                    call.cluster
                );
                let _ = loader.on_response(fetch, CallResult::failed(), now);
            }
        }
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
        let Some(fetch) = self.calls.remove(&token) else {
            return;
        };
        let Some(loader) = self.loader.as_mut() else {
            return;
        };
        let (status, body) = host::call_response(body_size);
        let result = CallResult {
            status,
            body: &body,
        };
        match loader.on_response(fetch, result, host::now_millis()) {
            Ok(Loaded::Discovery) => {
                info!("loaded the IdP's discovery document");
                // Fetch the keys at once rather than at the next tick.
                self.fetch_due();
            }
            Ok(Loaded::Keys { count, skipped }) => {
                info!("loaded the IdP's JWKS: {count} usable keys, {skipped} skipped");
                *self.provider.borrow_mut() = loader.provider().cloned();
            }
            Err(e) => warn!("IdP {fetch:?} fetch failed, will retry: {e}"),
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Ok(level) = hostcalls::get_log_level() {
            proxy_wasm::set_log_level(level);
        }
        let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        let config = match Config::parse(&raw, &env) {
            Ok(c) => c,
            Err(e) => {
                // Logged at critical so it shows at Envoy's default log level.
                let _ = hostcalls::log(LogLevel::Critical, &e.to_string());
                return false;
            }
        };
        self.loader = Some(ProviderLoader::new(&config));
        self.gate = Some(Rc::new(Gate::new(config)));
        // Fetches start from ticks: on_configure also runs in a throw-away canary VM.
        hostcalls::set_tick_period(TICK).is_ok()
    }

    fn on_tick(&mut self) {
        self.fetch_due();
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let gate = self.gate.clone()?;
        Some(Box::new(Stream::new(gate, self.provider.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
