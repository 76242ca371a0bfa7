//! Per-request cost of the core's operations, natively: the signed-in path (cookie decode and
//! header plan), cookie encode, JWKS parse, ID-token verification (RS256, ES256). `cargo bench -p
//! oidc-gate-core`. Inside Envoy's V8 the same code runs several times slower: for verification,
//! `filter/core/examples/verify_bench.rs` measures it in V8 (node's WASI).

// Benchmark setup, not request handling: a bad fixture should stop the run loudly.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::too_many_lines,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_simple::prelude::*;
use oidc_gate_core::cookies::RequestCookies;
use oidc_gate_core::jwt::{verify_id_token, Algorithm, IdTokenCheck, KeySet};
use oidc_gate_core::secret::IdToken;
use oidc_gate_core::session::Session;
use oidc_gate_core::shared::MemoryStore;
use oidc_gate_core::{Config, Decision, Entropy, EntropyError, Env, Gate, Now, Providers, Request};

struct Counter(u64);
impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EntropyError> {
        for b in buf {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
            *b = (self.0 >> 33) as u8;
        }
        Ok(())
    }
}

const ISSUER: &str = "https://dev-123456.okta.com/oauth2/default";
const NOW: u64 = 1_800_000_000;

fn gate() -> Gate {
    let config = serde_json::json!({
        "oidc_issuer_url": ISSUER, "client_id": "0oa1", "client_secret": "s",
        "cookie_secret": "8Lc3wVw0dY0m4m1v2F1ZcC0xN6r1yQn2cQ0b9d7y8Xo=",
        "set_authorization_header": true, "allowed_groups": ["admins"],
    });
    match Config::parse(config.to_string().as_bytes(), &|_| None) {
        Ok(c) => Gate::new(c),
        Err(e) => panic!("{e}"),
    }
}

/// The header names of a typical browser request.
const HEADER_NAMES: &[&[u8]] = &[
    b":authority",
    b":path",
    b":method",
    b":scheme",
    b"user-agent",
    b"accept",
    b"accept-language",
    b"accept-encoding",
    b"cookie",
    b"referer",
    b"sec-fetch-mode",
    b"x-request-id",
];

fn session() -> Session {
    Session {
        id: "sid".into(),
        user: "00u1abcdefghijklmnop".into(),
        sub: "00u1abcdefghijklmnop".into(),
        email: "alice@example.com".into(),
        groups: vec!["admins".into(), "everyone".into(), "grafana-editors".into()],
        preferred_username: "alice".into(),
        claims: Default::default(),
        rule_claims: Default::default(),
        created_at: NOW,
        expires_at: NOW + 3600,
        refreshed_at: NOW,
        active_at: NOW,
        tokens_expire_at: Some(NOW + 3600),
        id_token: Some(IdToken::new(
            "eyJhbGciOiJSUzI1NiJ9.".to_string() + &"x".repeat(800) + ".sig",
        )),
        access_token: None,
        refresh_token: None,
    }
}

fn bench(c: &mut Criterion) {
    let gate = gate();
    let s = session();
    let mut rng = Counter(1);
    let parts = gate.sessions().encode(&s, &mut rng).unwrap_or_default();
    let cookie = parts
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let cookie = format!("other=1; {cookie}; theme=dark");

    c.bench_function("session cookie decode + verify", |b| {
        b.iter(|| {
            let cookies = RequestCookies::parse(Some(black_box(cookie.as_bytes())));
            black_box(gate.sessions().decode(&cookies, NOW).is_ok())
        })
    });
    c.bench_function("session cookie encode", |b| {
        b.iter(|| black_box(gate.sessions().encode(black_box(&s), &mut rng).is_ok()))
    });
    let req = Request {
        method: "GET",
        scheme: "https",
        authority: "app.example.com",
        path: "/dashboard?x=1",
        cookie: Some(cookie.as_bytes()),
        accept: Some("text/html"),
        header_names: HEADER_NAMES,
        ..Request::default()
    };
    let removals = oidc_gate_core::headers::Removals::new(&gate.config);
    let strip = removals.strip(HEADER_NAMES);
    c.bench_function("header planning", |b| {
        b.iter(|| {
            black_box(oidc_gate_core::headers::plan_identity(
                &gate.config,
                &removals,
                &strip,
                black_box(&s).into(),
                oidc_gate_core::CookieRewrite::Remove,
            ))
        })
    });
    let mut providers = Providers::new(&gate.config);
    let mut store = MemoryStore::default();
    c.bench_function(
        "signed-in request: decide (decode, authorize, header plan)",
        |b| {
            b.iter(|| {
                let mut env = Env::new(Now::from_secs(NOW), &mut rng, &mut store, &mut providers);
                black_box(matches!(
                    gate.decide(black_box(&req), &mut env),
                    Decision::Forward(_)
                ))
            })
        },
    );

    let rsa = RS256KeyPair::from_pem(include_str!("../testdata/rsa-test-key.pem"))
        .map(|k| k.with_key_id("r"));
    let Ok(rsa) = rsa else { panic!("key") };
    let ec = ES256KeyPair::generate().with_key_id("e");
    let n = rsa.public_key().to_components();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let point = ec.public_key().public_key().to_bytes_uncompressed();
    let (x, y) = point[1..].split_at(32);
    let jwks = serde_json::json!({"keys": [
        {"kty": "RSA", "kid": "r", "n": b64.encode(&n.n), "e": b64.encode(&n.e)},
        {"kty": "EC", "crv": "P-256", "kid": "e", "x": b64.encode(x), "y": b64.encode(y)},
    ]});
    let jwks = jwks.to_string();
    // Reading the key set prepares each key once (RSA: its Montgomery parameters).
    c.bench_function("JWKS parse (RSA 2048 + P-256)", |b| {
        b.iter(|| black_box(KeySet::parse(black_box(jwks.as_bytes())).is_ok()))
    });
    let keys = KeySet::parse(jwks.as_bytes()).unwrap_or_default();
    let claims = || {
        let mut c = Claims::create(Duration::from_secs(3600))
            .with_issuer(ISSUER)
            .with_audience("0oa1")
            .with_subject("00u1")
            .with_nonce("n");
        c.issued_at = Some(Duration::from_secs(NOW));
        c.expires_at = Some(Duration::from_secs(NOW + 3600));
        c.invalid_before = None;
        c
    };
    let rs = rsa.sign(claims()).unwrap_or_default();
    let es = ec.sign(claims()).unwrap_or_default();
    let check = IdTokenCheck {
        issuer: ISSUER,
        client_id: "0oa1",
        nonce: Some("n"),
        allowed: &[Algorithm::RS256, Algorithm::ES256],
        now: NOW,
        skew_secs: 60,
        bearer: false,
    };
    // A token's first sight: no verified-token cache is involved.
    c.bench_function("ID token verify RS256", |b| {
        b.iter(|| black_box(verify_id_token(black_box(&rs), &keys, &check).is_ok()))
    });
    c.bench_function("ID token verify ES256", |b| {
        b.iter(|| black_box(verify_id_token(black_box(&es), &keys, &check).is_ok()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
