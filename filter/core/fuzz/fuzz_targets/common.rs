// Shared by the fuzz targets: one configured gate per thread, built once.
use oidc_gate_core::{Config, Gate};

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
