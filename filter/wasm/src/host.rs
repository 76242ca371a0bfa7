//! Result-returning wrappers over the host calls the filter uses, plus the clock and randomness
//! handed to the core.

use std::time::{Duration, UNIX_EPOCH};

use oidc_gate_core::{CallOut, Entropy, EntropyError, SharedStore, UnixTime};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

/// Randomness from WASI `random_get` (the host's BoringSSL `RAND_bytes`).
pub struct WasiEntropy;

impl Entropy for WasiEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EntropyError> {
        getrandom::fill(buf).map_err(|_| EntropyError)
    }
}

/// The host's wall clock, since the Unix epoch. A host that cannot tell the time gets epoch 0,
/// under which every session and token is expired: closed, not open.
pub fn now() -> Duration {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
}

pub fn now_secs() -> UnixTime {
    now().as_secs()
}

pub fn now_millis() -> u64 {
    u64::try_from(now().as_millis()).unwrap_or(u64::MAX)
}

pub fn dispatch(call: &CallOut) -> Result<u32, Status> {
    let headers: Vec<(&str, &str)> = call
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = (!call.body.is_empty()).then_some(call.body.as_slice());
    hostcalls::dispatch_http_call(&call.cluster, headers, body, vec![], call.timeout)
}

/// The `:status` and body of a call-out's answer; `None` status when the call failed.
pub fn call_response(body_size: usize) -> (Option<u16>, Vec<u8>) {
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse().ok());
    let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
        .ok()
        .flatten()
        .unwrap_or_default();
    (status, body)
}

pub fn request_headers() -> Vec<(String, String)> {
    hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default()
}

pub fn set_request_header(name: &str, value: Option<&str>) -> Result<(), Status> {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value)
}

pub fn send_response(status: u16, headers: &[(String, String)], body: &str) -> Result<(), Status> {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = (!body.is_empty()).then_some(body.as_bytes());
    hostcalls::send_http_response(u32::from(status), headers, body)
}

/// proxy-wasm shared data: one store for every VM of this Envoy.
pub struct HostShared;

impl SharedStore for HostShared {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), Some(cas))) => Some((value, cas)),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

pub fn add_response_header(name: &str, value: &str) -> Result<(), Status> {
    hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value)
}

pub fn resume_request() -> Result<(), Status> {
    hostcalls::resume_http_request()
}
