//! ID-token verification timed in a loop, for the Wasm engine the filter runs in: built for
//! `wasm32-wasip1` it runs under node's WASI (V8, the engine Envoy embeds), natively it runs as is.
//!
//! ```text
//! cargo build --release --target wasm32-wasip1 -p oidc-gate-core --example verify_bench
//! node bench/wasm-verify/run.mjs target/wasm32-wasip1/release/examples/verify_bench.wasm [N]
//! cargo run --release -p oidc-gate-core --example verify_bench -- [N]
//! ```
//!
//! Every verification is a token's first sight: `verify_id_token` has no cache. The first call is
//! reported apart (it pays one-time costs such as V8's tier-up and lazily built tables).

// A measuring tool, not request handling: a bad fixture should stop the run loudly.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::hint::black_box;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use oidc_gate_core::jwt::{verify_id_token, Algorithm, IdTokenCheck, KeySet};

const ISSUER: &str = "https://dev-123456.okta.com/oauth2/default";
const NOW: u64 = 1_800_000_000;
/// A fixed P-256 private scalar, so that runs are comparable.
const EC_SCALAR: [u8; 32] = [
    0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a, 0x79, 0x88, 0x97, 0xa6, 0xb5, 0xc4, 0xd3, 0xe2, 0xf1, 0x00,
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0x01,
];

fn claims() -> JWTClaims<NoCustomClaims> {
    let mut c = Claims::create(Duration::from_secs(3600))
        .with_issuer(ISSUER)
        .with_audience("0oa1")
        .with_subject("00u1")
        .with_nonce("n");
    c.issued_at = Some(Duration::from_secs(NOW));
    c.expires_at = Some(Duration::from_secs(NOW + 3600));
    c.invalid_before = None;
    c
}

/// Batches per measurement: the machine may be shared, so the fastest batch is reported beside
/// the median one.
const BATCHES: u32 = 10;

/// Microseconds per call of `f`: the first call alone, then (after one batch to warm up) the
/// fastest and the median of `BATCHES` batches of `n / BATCHES` calls.
fn time(n: u32, mut f: impl FnMut() -> bool) -> [f64; 3] {
    let t = Instant::now();
    assert!(f(), "the first call failed");
    let first = t.elapsed().as_secs_f64() * 1e6;
    let per_batch = (n / BATCHES).max(1);
    // One batch untimed, so that V8 has compiled the hot functions with its optimizing tier.
    for _ in 0..per_batch {
        assert!(black_box(f()));
    }
    let mut batches: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                assert!(black_box(f()));
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(per_batch)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    [first, batches[0], batches[batches.len() / 2]]
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let rsa = RS256KeyPair::from_pem(include_str!("../testdata/rsa-test-key.pem"))
        .expect("RSA test key")
        .with_key_id("r");
    let ec = ES256KeyPair::from_bytes(&EC_SCALAR)
        .expect("P-256 scalar")
        .with_key_id("e");
    let c = rsa.public_key().to_components();
    let point = ec.public_key().public_key().to_bytes_uncompressed();
    let (x, y) = point[1..].split_at(32);
    let ec384 = ES384KeyPair::generate().with_key_id("e384");
    let point384 = ec384.public_key().public_key().to_bytes_uncompressed();
    let (x384, y384) = point384[1..].split_at(48);
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let jwks = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "r", "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)},
        {"kty": "EC", "crv": "P-256", "kid": "e", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)},
        {"kty": "EC", "crv": "P-384", "kid": "e384", "x": URL_SAFE_NO_PAD.encode(x384), "y": URL_SAFE_NO_PAD.encode(y384)},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode(ed.public_key().to_bytes())},
    ]})
    .to_string();
    let rs = rsa.sign(claims()).expect("RS256 token");
    let es = ec.sign(claims()).expect("ES256 token");
    let es384 = ec384.sign(claims()).expect("ES384 token");
    let eddsa = ed.sign(claims()).expect("EdDSA token");
    let check = IdTokenCheck {
        issuer: ISSUER,
        client_id: "0oa1",
        nonce: Some("n"),
        allowed: &[
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ],
        now: NOW,
        skew_secs: 60,
        bearer: false,
    };

    let keys = KeySet::parse(jwks.as_bytes()).expect("JWKS");
    println!("µs per operation, n={n}: first call, then fastest / median of {BATCHES} batches");
    let report = |name: &str, [first, fastest, median]: [f64; 3]| {
        println!("{name:<26} first {first:>9.1}   fastest {fastest:>8.1}   median {median:>8.1}");
    };
    report(
        "ID token verify RS256",
        time(n, || verify_id_token(black_box(&rs), &keys, &check).is_ok()),
    );
    report(
        "ID token verify ES256",
        time(n, || verify_id_token(black_box(&es), &keys, &check).is_ok()),
    );
    report(
        "ID token verify ES384",
        time(n, || {
            verify_id_token(black_box(&es384), &keys, &check).is_ok()
        }),
    );
    report(
        "ID token verify EdDSA",
        time(n, || {
            verify_id_token(black_box(&eddsa), &keys, &check).is_ok()
        }),
    );
    report(
        "JWKS parse (4 keys)",
        time(n, || KeySet::parse(black_box(jwks.as_bytes())).is_ok()),
    );
}
