#![no_main]
//! Any plugin configuration: accepted or refused with problems, never a panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = oidc_gate_core::Config::parse(data, &|_| None);
});
