#![no_main]
//! Any bytes as the host's serialized header map, and any header names and values serialized
//! properly (obs-text, control bytes, odd names): reading the head and deciding on it gives a
//! decision or a refusal, never a panic, and never forwards a spoofed identity header.
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use oidc_gate_core::headers::IDENTITY_HEADERS;
use oidc_gate_core::{pairs, Decision, Forward, Head};

/// Splits the input into header pairs at 0xff bytes: name, value, name, value, …
fn as_pairs(data: &[u8]) -> Vec<u8> {
    let fields: Vec<&[u8]> = data.split(|b| *b == 0xff).collect();
    let pairs: Vec<(&[u8], &[u8])> = fields
        .chunks(2)
        .map(|c| (c[0], c.get(1).copied().unwrap_or_default()))
        .collect();
    pairs::serialize(&pairs)
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let map = if mode % 2 == 0 { rest.to_vec() } else { as_pairs(rest) };
    let Ok(head) = Head::parse(&map) else { return };
    let Ok(req) = head.request() else { return };
    let decision = common::decide(&req);
    if let Decision::Forward(Forward { plan, .. }) = decision {
        for name in req.header_names {
            let as_sent = String::from_utf8_lossy(name);
            let spelled = as_sent.replace('_', "-").to_ascii_lowercase();
            if IDENTITY_HEADERS.contains(&spelled.as_str()) {
                let replaced = as_sent == spelled && plan.value(&spelled).is_some();
                assert!(plan.removes(&as_sent) || replaced, "{as_sent} would reach the app");
            }
        }
    }
});
