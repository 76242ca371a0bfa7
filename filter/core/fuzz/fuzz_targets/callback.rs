#![no_main]
//! Any request to the filter's endpoints (callback query, sign-out rd, start rd): a decision,
//! never a panic, and no redirect off the site.
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use oidc_gate_core::{Decision, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    for endpoint in ["/oauth2/callback", "/oauth2/sign_out", "/oauth2/start", "/public/x", "/app"] {
        let path = format!("{endpoint}?{query}");
        let req = Request { method: "GET", authority: "app.example.com", path: &path, accept: Some("text/html"), authorization: Some(query), ..Request::default() };
        if let Decision::Respond(r) = common::decide(&req) {
            if endpoint == "/oauth2/sign_out" {
                let location = r.headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.as_str()).unwrap_or("/");
                let local = location.starts_with('/') && !location.starts_with("//") && !location.starts_with("/\\");
                let whitelisted = location.starts_with("https://") || location.starts_with("http://");
                assert!(local || whitelisted, "sign-out redirected to {location:?}");
            }
        }
    }
});
