#![no_main]
//! Any Cookie header bytes: the session decoder answers a session or an error, never panics.
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use oidc_gate_core::cookies::RequestCookies;

fuzz_target!(|data: &[u8]| {
    let cookies = RequestCookies::parse(Some(data));
    let _ = common::with_gate(|g| g.sessions().decode(&cookies, 1_800_000_000).is_ok());
    let _ = cookies.header_without(|n| n.starts_with("_oauth2_proxy"));
});
