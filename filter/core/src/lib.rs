//! oidc-gate-core: everything oidc-gate decides, with no dependency on proxy-wasm. The host
//! (the Wasm adapter, the CLI, benchmarks) passes in requests, the clock and randomness, and
//! carries out the decisions that come back.

#![cfg_attr(test, allow(clippy::arithmetic_side_effects, clippy::too_many_lines))]

pub mod bearer;
pub mod cache;
pub mod callout;
pub mod claim_rules;
pub mod claims;
pub mod client_key;
pub mod config;
pub mod cookies;
pub mod duration;
pub mod env;
pub mod flow;
pub mod head;
pub mod headers;
pub mod identity;
pub mod jwt;
pub mod login;
pub mod pages;
pub mod pairs;
pub mod policy;
pub mod provider;
pub mod redirect;
pub mod routes;
pub mod seal;
pub mod secret;
pub mod session;
pub mod shared;

pub use callout::{CallOut, CallResult};
pub use config::{Config, ConfigError};
pub use env::{Entropy, EntropyError, Env, Note, Now, UnixTime};
pub use flow::{Call, Decision, Forward, Gate, Outcome, Pending, Request, Response};
pub use head::{Head, HeadError};
pub use headers::{CookieRewrite, HeaderPlan};
pub use provider::{Fetch, Keys, Loaded, Provider, ProviderError, ProviderLoader, Providers};
pub use shared::SharedStore;
