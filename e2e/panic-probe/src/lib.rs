//! Test-only: panics (traps the VM) on a request with an `x-panic` header, so the e2e suite can
//! show what Envoy does with a failed Wasm filter: nothing passes upstream (`FAIL_CLOSED`), and
//! the VM is replaced (`FAIL_RELOAD`).

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_http_context(|_, _| Box::new(Probe));
}}

struct Probe;

impl Context for Probe {}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.get_http_request_header("x-panic").is_some() {
            panic!("panic-probe: a panic inside a filter");
        }
        Action::Continue
    }
}
