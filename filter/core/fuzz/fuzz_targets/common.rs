// Shared by the fuzz targets: one configured gate per thread, built once. Not every target
// uses every helper.
#![allow(dead_code)]
use std::cell::RefCell;

use oidc_gate_core::shared::MemoryStore;
use oidc_gate_core::{CallResult, Config, Decision, Env, Fetch, Gate, Now, Providers, Request};

thread_local! {
    static GATE: Gate = build();
}

/// Runs `f` with the gate (a `Gate` is per thread, as in a Wasm VM).
pub fn with_gate<R>(f: impl FnOnce(&Gate) -> R) -> R {
    GATE.with(f)
}

fn build() -> Gate {
    {
        let config = serde_json::json!({
            "oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default",
            "client_id": "0oa1",
            "client_secret": "s",
            "cookie_secret": "8Lc3wVw0dY0m4m1v2F1ZcC0xN6r1yQn2cQ0b9d7y8Xo=",
            "skip_auth_routes": ["GET=^/public/"],
            "whitelist_domains": [".example.com"],
            "skip_jwt_bearer_tokens": true,
        });
        match Config::parse(config.to_string().as_bytes(), &|_| None) {
            Ok(c) => Gate::new(c),
            Err(e) => panic!("fuzz configuration: {e}"),
        }
    }
}

const NOW: u64 = 1_800_000_000;
const DISCOVERY: &str = r#"{"issuer": "https://dev-123456.okta.com/oauth2/default",
  "authorization_endpoint": "https://dev-123456.okta.com/oauth2/default/v1/authorize",
  "token_endpoint": "https://dev-123456.okta.com/oauth2/default/v1/token",
  "jwks_uri": "https://dev-123456.okta.com/oauth2/default/v1/keys"}"#;
static JWKS: &str = include_str!("../seeds/jwks.json");

/// The gate's providers, loaded from the seed documents, so that a request can get as far as
/// a call-out.
fn loaded(g: &Gate, store: &mut MemoryStore) -> Providers {
    let mut providers = Providers::new(&g.config);
    let now = Now::from_secs(NOW);
    for i in 0..2 {
        let Some(loader) = providers.loader(i) else { continue };
        while let Some((fetch, _)) = loader.poll(now, store) {
            let body = match fetch {
                Fetch::Discovery => DISCOVERY,
                Fetch::Jwks => JWKS,
            };
            let _ = loader.on_response(fetch, CallResult::ok(body.as_bytes()), now, store);
        }
    }
    providers
}

thread_local! {
    /// The shared store and the loaded providers, built once per thread.
    static LOADED: RefCell<Option<(MemoryStore, Providers)>> = const { RefCell::new(None) };
}

/// The gate's decision on `req`, with the provider loaded.
pub fn decide(req: &Request<'_>) -> Decision {
    with_gate(|g| {
        LOADED.with(|cell| {
            let mut slot = cell.borrow_mut();
            let (store, providers) = slot.get_or_insert_with(|| {
                let mut store = MemoryStore::default();
                let providers = loaded(g, &mut store);
                (store, providers)
            });
            let mut rng = Counter(0);
            let mut env = Env::new(Now::from_secs(NOW), &mut rng, store, providers);
            g.decide(req, &mut env)
        })
    })
}

/// Deterministic randomness is enough to drive the code paths.
pub struct Counter(pub u8);

impl oidc_gate_core::Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), oidc_gate_core::EntropyError> {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        Ok(())
    }
}
