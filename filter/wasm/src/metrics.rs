//! Metrics through proxy-wasm `define_metric`: Envoy shows them as `wasmcustom.<name>` in
//! `/stats` and plainly as `<name>` in `/stats/prometheus`. Each VM defines a metric on first use
//! (defining the same name again returns the same stat).

use std::cell::RefCell;
use std::collections::HashMap;

use crate::abi;

/// proxy-wasm metric kinds.
#[derive(Clone, Copy)]
enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

thread_local! {
    /// Metric ids by kind and name; looked up by `&str`, so a known metric costs no allocation.
    static IDS: RefCell<[HashMap<String, u32>; 3]> = RefCell::new(Default::default());
}

fn id(name: &str, kind: MetricType) -> Option<u32> {
    let slot = kind as usize;
    IDS.with(|ids| {
        if let Some(id) = ids.borrow().get(slot).and_then(|m| m.get(name)) {
            return Some(*id);
        }
        let id = abi::define_metric(kind as u32, name).ok()?;
        if let Some(m) = ids.borrow_mut().get_mut(slot) {
            m.insert(name.to_string(), id);
        }
        Some(id)
    })
}

pub fn count(name: &str) {
    if let Some(id) = id(name, MetricType::Counter) {
        let _ = abi::increment_metric(id, 1);
    }
}

pub fn gauge(name: &str, value: u64) {
    if let Some(id) = id(name, MetricType::Gauge) {
        let _ = abi::record_metric(id, value);
    }
}

pub fn histogram(name: &str, value: u64) {
    if let Some(id) = id(name, MetricType::Histogram) {
        let _ = abi::record_metric(id, value);
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
