//! The benchmark's quick mode: every configuration starts, authenticates as intended (checked by
//! envoy-bench itself before it measures: identity at the upstream where there should be, 302 or
//! 401 without credentials) and lands in the table. Numbers are never asserted here.

use std::process::Command;

#[test]
fn every_configuration_starts_authenticates_and_lands_in_the_table() {
    let out = Command::new(env!("CARGO_BIN_EXE_envoy-bench"))
        .arg("--quick")
        .output()
        .expect("run envoy-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for label in [
        "1. no authentication",
        "2. oidc-gate, signed-in browser",
        "2b. oidc-gate, signed in, session cache off",
        "3. oidc-gate, bearer JWT RS256",
        "4. Envoy OAuth2 filter",
        "5. Envoy jwt_authn RS256",
        "6. ext_authz HTTP hop",
        "7. oidc-gate, new login step 1",
        "7b. oidc-gate, new login step 2: callback",
        "8. trivial Rust Wasm filter",
        "8b. trivial Wasm filter making oidc-gate's host calls",
        "9. Envoy jwt_authn RS256 with jwt_cache_config",
        "bearer token RS256, first sight",
        "bearer token ES256, first sight",
        "RSS at four workers",
        "Targets:",
    ] {
        assert!(stdout.contains(label), "{label} missing:\n{stdout}");
    }
}
