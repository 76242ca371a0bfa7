//! oidc-gate: the proxy-wasm adapter. It reads what Envoy gives, asks `oidc-gate-core` what to
//! do, and does it. No decision is made here.

mod host;
mod metrics;
mod root;
mod stream;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // Only registration here: the host allows few calls during VM start. The SDK's logger also
    // installs a panic hook that logs at critical level.
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(root::Root::default()));
}}
