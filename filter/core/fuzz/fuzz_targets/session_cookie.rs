#![no_main]
//! Any Cookie header: the session decoder answers a session or an error, never panics.
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use oidc_gate_core::cookies::RequestCookies;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        let cookies = RequestCookies::parse(Some(header));
        let _ = common::with_gate(|g| g.sessions().decode(&cookies, 1_800_000_000).is_ok());
    }
});
