//! A signed-in request's work in the core, timed in a loop, for the Wasm engine the filter runs
//! in: built for `wasm32-wasip1` it runs under node's WASI (V8, the engine Envoy embeds), natively
//! it runs as is. The parts: reading the head from the host's header-map bytes, the whole
//! decision with the session cache (a hit), and without it (decrypt and parse each time).
//!
//! ```text
//! cargo build --release --target wasm32-wasip1 -p oidc-gate-core --example decide_bench
//! node bench/wasm-verify/run.mjs target/wasm32-wasip1/release/examples/decide_bench.wasm [N]
//! cargo run --release -p oidc-gate-core --example decide_bench -- [N]
//! ```

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

use oidc_gate_core::session::Session;
use oidc_gate_core::shared::MemoryStore;
use oidc_gate_core::{
    pairs, Config, Decision, Entropy, EntropyError, Env, Gate, Head, Now, Providers,
};

const NOW: u64 = 1_800_000_000;

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

/// The benchmark's oidc-gate configuration (default options), with this session cache size.
fn gate(cache: usize) -> Gate {
    let config = serde_json::json!({
        "oidc_issuer_url": "https://issuer.bench.test", "client_id": "bench-client",
        "client_secret": "bench", "cookie_secret": "YmVuY2gtY29va2llLXNlY3JldC0zMi1ieXRlcy1vayE=",
        "cookie_secure": false, "session_cache_size": cache,
    });
    Gate::new(Config::parse(config.to_string().as_bytes(), &|_| None).unwrap())
}

fn session() -> Session {
    Session {
        id: "bench".into(),
        user: "00u-alice".into(),
        sub: "00u-alice".into(),
        email: "alice@example.com".into(),
        groups: vec!["admins".into(), "everyone".into()],
        preferred_username: "alice".into(),
        claims: Default::default(),
        rule_claims: Default::default(),
        created_at: NOW,
        expires_at: NOW + 3600,
        refreshed_at: NOW,
        active_at: NOW,
        tokens_expire_at: Some(NOW + 3600),
        id_token: None,
        access_token: None,
        refresh_token: None,
    }
}

/// Times `f` over `n` runs after one warm-up run; µs per run.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut rng = Counter(1);
    let cached = gate(1024);
    let uncached = gate(0);
    let parts = cached.sessions().encode(&session(), &mut rng).unwrap();
    let cookie = parts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    // What wrk sends through Envoy, as the host's header map (Envoy adds the rest).
    let map = pairs::serialize(&[
        (":authority", "127.0.0.1:10000"),
        (":path", "/"),
        (":method", "GET"),
        (":scheme", "http"),
        ("accept", "text/html"),
        ("cookie", cookie.as_str()),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "6f0e8d2c-3b1a-4c5d-9e7f-0a1b2c3d4e5f"),
    ]);
    let mut providers = Providers::new(&cached.config);
    let mut store = MemoryStore::default();
    let mut decide = |gate: &Gate| {
        let head = Head::parse(black_box(&map)).unwrap();
        let req = head.request().unwrap();
        let mut env = Env::new(Now::from_secs(NOW), &mut rng, &mut store, &mut providers);
        assert!(matches!(gate.decide(&req, &mut env), Decision::Forward(_)));
    };
    // A first pass lets V8 tier up every function measured; the second is reported.
    for _ in 0..2 {
        measure(n, &map, &mut decide, &cached, &uncached);
    }
}

fn measure(n: u32, map: &[u8], decide: &mut impl FnMut(&Gate), cached: &Gate, uncached: &Gate) {
    let head = time(n, || {
        let head = Head::parse(black_box(map)).unwrap();
        black_box(head.request().is_ok());
    });
    let hit = time(n, || decide(cached));
    let miss = time(n, || decide(uncached));
    println!("read the head from the header map: {head:.2} µs");
    println!("signed-in decision, head included, session cache hit: {hit:.2} µs");
    println!("signed-in decision, head included, session cache off: {miss:.2} µs");
}
