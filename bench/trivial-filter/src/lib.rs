//! The floor cost of any Rust proxy-wasm filter in this Envoy: read one request header, add one.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_http_context(|_, _| Box::new(Trivial));
}}

struct Trivial;

impl Context for Trivial {}

impl HttpContext for Trivial {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let seen = self.get_http_request_header("cookie").is_some();
        self.set_http_request_header("x-trivial", Some(if seen { "1" } else { "0" }));
        Action::Continue
    }
}
