# Maintainer recipes. The README's two commands work without `just`.

# Build the filter: target/wasm32-wasip1/release/oidc_gate.wasm
build:
    cargo build --release --target wasm32-wasip1 -p oidc-gate

# Every test: core unit tests and the end-to-end suite (real Envoy, IdP, Chromium).
test:
    cargo test --workspace

# Local demo: Envoy + oidc-gate + the local OpenID provider + the echo app.
demo:
    cargo run -p demo

# Formatting and lints, natively and for the Wasm target.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --target wasm32-wasip1 -p oidc-gate -p oidc-gate-core -- -D warnings

# The OCI image of the filter in a folder (compat variant; VARIANT=artifact for the other).
image out="target/oci-image" variant="compat": build
    cargo run -q -p oidc-gate-wasmplugin --bin oidc-gate-ctl -- image target/wasm32-wasip1/release/oidc_gate.wasm --out {{out}} --variant {{variant}}

# Push the image (credentials from ~/.docker/config.json); prints the digest for the WasmPlugin's sha256.
push ref variant="compat": build
    cargo run -q -p oidc-gate-wasmplugin --bin oidc-gate-ctl -- push target/wasm32-wasip1/release/oidc_gate.wasm {{ref}} --variant {{variant}}

# The WasmPlugin, ServiceEntry and DestinationRule for a configuration.
render config ref:
    cargo run -q -p oidc-gate-wasmplugin --bin oidc-gate-ctl -- render {{config}} --image {{ref}}
