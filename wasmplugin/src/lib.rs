//! oidc-gate-wasmplugin: what runs next to Istio rather than in Envoy. Each module is one
//! command of `oidc-gate-ctl`; all of them read the configuration with the filter's own parser.

pub mod image;
pub mod migrate;
pub mod render;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use oidc_gate_core::client_key::{ClientKey, KeyAlg};
use serde_json::Value;

/// A 32-byte base64 value standing in for secrets that live in the gateway's environment, so
/// the rest of a configuration can be checked offline.
pub const PLACEHOLDER_SECRET: &str = "cGxhY2Vob2xkZXItZm9yLWEtMzItYnl0ZS1zZWNyZXQ=";

/// A private key standing in for one that lives in the gateway's environment.
fn placeholder_key() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        ClientKey::generate(KeyAlg::Es256)
            .ok()
            .and_then(|k| k.private_pem())
            .unwrap_or_default()
    })
}

/// The environment a configuration is checked offline with: `known` values (secrets just
/// moved out of it) as they are, a placeholder key for the variables `client_private_key_env`
/// names (at the top or in `providers`), the placeholder secret for the rest.
pub fn offline_env(
    config: &Value,
    known: BTreeMap<String, String>,
) -> impl Fn(&str) -> Option<String> {
    let entries = config["providers"].as_array().cloned().unwrap_or_default();
    let keys: Vec<String> = std::iter::once(config)
        .chain(&entries)
        .filter_map(|o| o["client_private_key_env"].as_str().map(str::to_string))
        .collect();
    move |name: &str| {
        Some(match known.get(name) {
            Some(v) => v.clone(),
            None if keys.iter().any(|k| k == name) => placeholder_key().to_string(),
            None => PLACEHOLDER_SECRET.to_string(),
        })
    }
}
