//! Metrics through proxy-wasm `define_metric`: Envoy shows them as `wasmcustom.<name>` in
//! `/stats` and plainly as `<name>` in `/stats/prometheus`. Each VM defines a metric on first use
//! (defining the same name again returns the same stat).

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

thread_local! {
    static IDS: RefCell<HashMap<(String, u8), u32>> = RefCell::new(HashMap::new());
}

fn id(name: &str, kind: MetricType) -> Option<u32> {
    let key = (name.to_string(), kind as u8);
    IDS.with(|ids| {
        if let Some(id) = ids.borrow().get(&key) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(kind, name).ok()?;
        ids.borrow_mut().insert(key, id);
        Some(id)
    })
}

pub fn count(name: &str) {
    if let Some(id) = id(name, MetricType::Counter) {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

pub fn gauge(name: &str, value: u64) {
    if let Some(id) = id(name, MetricType::Gauge) {
        let _ = hostcalls::record_metric(id, value);
    }
}

pub fn histogram(name: &str, value: u64) {
    if let Some(id) = id(name, MetricType::Histogram) {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// A finished IdP call-out: its latency, and a failure count when it got no usable answer.
pub fn idp_call(endpoint: &str, started_ms: u64, now_ms: u64, status: Option<u16>) {
    histogram(
        &format!("oidc_gate_idp_latency_ms_{endpoint}"),
        now_ms.saturating_sub(started_ms),
    );
    match status {
        Some(s) if s < 500 => {}
        Some(_) => count(&format!("oidc_gate_idp_failures_{endpoint}_status_5xx")),
        None => count(&format!("oidc_gate_idp_failures_{endpoint}_unreachable")),
    }
}
