//! oidc-gate: the proxy-wasm adapter. It reads what Envoy gives, asks `oidc-gate-core` what to
//! do, and does it. No decision is made here.

mod abi;
mod headers;
mod host;
mod logline;
mod metrics;
mod root;
mod stream;
mod waiting;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    // Only registration here: the host allows few calls during VM start.
    proxy_wasm::set_log_level(LogLevel::Info);
    // Replaces the SDK's hook, which logs the panic's message: that could hold request bytes.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let _ = abi::log(abi::LOG_CRITICAL, &format!("oidc-gate: internal error at {at}"));
    }));
    proxy_wasm::set_root_context(|_| Box::new(root::Root::default()));
}}
