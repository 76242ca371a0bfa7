//! The floor cost of any Rust proxy-wasm filter in this Envoy: read one request header, add one.
//! With `{"host_calls": true}` as its configuration it makes the host calls oidc-gate makes on a
//! signed-in request instead (read the header map once, set the four identity headers and the
//! cookie, read the clock, count), so the benchmark can tell host calls from oidc-gate's own work.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(Root { counter: None }));
}}

struct Root {
    /// The counter to increment per request: `Some` when making oidc-gate's host calls.
    counter: Option<u32>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        if config.windows(10).any(|w| w == b"host_calls") {
            self.counter = hostcalls::define_metric(MetricType::Counter, "trivial_requests").ok();
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Trivial {
            counter: self.counter,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Trivial {
    counter: Option<u32>,
}

impl Context for Trivial {}

impl HttpContext for Trivial {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(counter) = self.counter else {
            let seen = self.get_http_request_header("cookie").is_some();
            self.set_http_request_header("x-trivial", Some(if seen { "1" } else { "0" }));
            return Action::Continue;
        };
        let map = self.get_http_request_headers_bytes();
        let _ = self.get_current_time();
        for (name, value) in [
            ("x-auth-request-user", "00u-alice"),
            ("x-auth-request-email", "alice@example.com"),
            ("x-auth-request-groups", "admins,everyone"),
            ("x-auth-request-preferred-username", "alice"),
        ] {
            self.set_http_request_header(name, Some(value));
        }
        // oidc-gate keeps its session cookie from the upstream.
        if map.iter().any(|(k, _)| k == "cookie") {
            self.set_http_request_header("cookie", None);
        }
        let _ = hostcalls::increment_metric(counter, 1);
        Action::Continue
    }
}
