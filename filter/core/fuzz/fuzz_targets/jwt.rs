#![no_main]
//! Any token: the JWT parser and verifier answer an error for everything they did not sign.
use libfuzzer_sys::fuzz_target;
use oidc_gate_core::jwt::{verify_id_token, Algorithm, IdTokenCheck, KeySet};

static JWKS: &str = include_str!("../seeds/jwks.json");

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let Ok(keys) = KeySet::parse(JWKS.as_bytes()) else { return };
    let check = IdTokenCheck {
        issuer: "https://dev-123456.okta.com/oauth2/default",
        client_id: "0oa1",
        nonce: Some("n"),
        allowed: &[Algorithm::RS256, Algorithm::ES256],
        now: 1_800_000_000,
        skew_secs: 60,
        bearer: false,
    };
    if verify_id_token(token, &keys, &check).is_ok() {
        panic!("an unsigned or forged token verified");
    }
    // The JWKS parser, on the same bytes.
    let _ = KeySet::parse(data);
});
