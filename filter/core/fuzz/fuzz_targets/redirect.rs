#![no_main]
//! Any redirect target: the validator answers a local path, the request's host or a
//! whitelisted host — nothing else.
use libfuzzer_sys::fuzz_target;
use oidc_gate_core::redirect::Whitelist;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else { return };
    let Ok(w) = Whitelist::parse(&[".example.com".to_string()]) else { return };
    let out = w.target(target, "app.example.net");
    if out.starts_with('/') {
        assert!(!out.starts_with("//") && !out.contains('\\'), "{out:?}");
    } else {
        let url = url::Url::parse(&out).expect("absolute targets are URLs");
        let host = url.host_str().unwrap_or("");
        assert!(host == "app.example.net" || host == "example.com" || host.ends_with(".example.com"), "{out:?}");
    }
});
