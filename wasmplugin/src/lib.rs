//! oidc-gate-wasmplugin: what runs next to Istio rather than in Envoy. Each module is one
//! command of `oidc-gate-ctl`; all of them read the configuration with the filter's own parser.

pub mod image;
pub mod migrate;
pub mod render;
pub mod validate;

/// A 32-byte base64 value standing in for secrets that live in the gateway's environment, so
/// the rest of a configuration can be checked offline.
pub const PLACEHOLDER_SECRET: &str = "cGxhY2Vob2xkZXItZm9yLWEtMzItYnl0ZS1zZWNyZXQ=";
