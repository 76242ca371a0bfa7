#![no_main]
//! Any cookies and state: the login-state (CSRF) decoder never panics and never accepts a
//! state it did not seal.
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use oidc_gate_core::{Decision, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (cookie, state) = text.split_once('\n').unwrap_or((text, ""));
    let path = format!("/oauth2/callback?code=c&state={state}");
    let req = Request { method: "GET", authority: "app.example.com", path: &path, cookie: Some(cookie.as_bytes()), accept: Some("text/html"), ..Request::default() };
    let redeem = matches!(common::decide(&req), Decision::Call(_));
    if redeem {
        panic!("a forged login state was accepted");
    }
});
