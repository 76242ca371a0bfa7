//! The host as the filter uses it: every call returns a `Result` and reads bytes (see `abi`),
//! plus the clock and randomness handed to the core.

use std::time::Duration;

use oidc_gate_core::callout::MAX_RESPONSE_BODY;
use oidc_gate_core::{pairs, CallOut, CallResult, Entropy, EntropyError, Now, SharedStore};
use proxy_wasm::hostcalls;

use crate::abi::{self, HostStatus};

/// Randomness from WASI `random_get` (the host's BoringSSL `RAND_bytes`).
pub struct WasiEntropy;

impl Entropy for WasiEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EntropyError> {
        getrandom::fill(buf).map_err(|_| EntropyError)
    }
}

/// The host's wall clock. A host that cannot tell the time gets epoch 0, under which every
/// session and token is expired: closed, not open.
pub fn now() -> Now {
    Now::since_epoch(Duration::from_nanos(abi::now_nanos().unwrap_or(0)))
}

pub fn now_millis() -> u64 {
    now().millis()
}

/// Dispatches a call-out through the SDK, whose dispatcher routes the answer to this context.
pub fn dispatch(call: &CallOut) -> Result<u32, String> {
    let headers: Vec<(&str, &str)> = call
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = (!call.body.is_empty()).then_some(call.body.as_slice());
    hostcalls::dispatch_http_call(&call.cluster, headers, body, vec![], call.timeout)
        .map_err(|status| format!("{status:?}"))
}

/// A call-out's answer: its `:status` (`None` when the call failed) and its body, read only
/// when it is at most `MAX_RESPONSE_BODY` bytes (`oversized` otherwise).
pub struct CallAnswer {
    pub status: Option<u16>,
    pub body: Vec<u8>,
    pub oversized: bool,
}

impl CallAnswer {
    /// The answer as the core takes it.
    pub fn result(&self) -> CallResult<'_> {
        match (self.status, self.oversized) {
            (Some(s), true) => CallResult::too_large(s),
            (Some(s), false) => CallResult::status(s, &self.body),
            (None, _) => CallResult::failed(),
        }
    }
}

pub fn call_answer(body_size: usize) -> CallAnswer {
    let status = abi::header_value(abi::CALL_RESPONSE_HEADERS, b":status")
        .ok()
        .flatten()
        .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok());
    let oversized = body_size > MAX_RESPONSE_BODY;
    let body = if oversized {
        Vec::new()
    } else {
        abi::buffer(abi::CALL_RESPONSE_BODY, MAX_RESPONSE_BODY).unwrap_or_default()
    };
    CallAnswer {
        status,
        body,
        oversized,
    }
}

/// The request's headers as the host serializes them.
pub fn request_header_map() -> Result<Vec<u8>, HostStatus> {
    abi::header_map(abi::REQUEST_HEADERS)
}

pub fn set_request_header(name: &str, value: &[u8]) -> Result<(), HostStatus> {
    abi::replace_header(abi::REQUEST_HEADERS, name.as_bytes(), value)
}

pub fn remove_request_header(name: &str) -> Result<(), HostStatus> {
    abi::remove_header(abi::REQUEST_HEADERS, name.as_bytes())
}

pub fn add_response_header(name: &str, value: &str) -> Result<(), HostStatus> {
    abi::add_header(abi::RESPONSE_HEADERS, name.as_bytes(), value.as_bytes())
}

pub fn send_response(status: u16, headers: &[(&str, &str)], body: &str) -> Result<(), HostStatus> {
    abi::send_local_response(
        u32::from(status),
        &pairs::serialize(headers),
        body.as_bytes(),
    )
}

pub fn resume_request() -> Result<(), HostStatus> {
    abi::resume_request()
}

/// The plugin configuration; only answered inside `on_configure`.
pub fn plugin_configuration() -> Vec<u8> {
    abi::buffer(abi::PLUGIN_CONFIGURATION, usize::MAX).unwrap_or_default()
}

/// proxy-wasm shared data: one store for every VM of this Envoy.
pub struct HostShared;

impl SharedStore for HostShared {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::shared_get(key).ok().flatten()
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        abi::shared_set(key, value, cas.unwrap_or(0)).is_ok()
    }
}
