# Maintainer recipes. The README's two commands work without `just`.

# Build the filter: target/wasm32-wasip1/release/oidc_gate.wasm (adds the Rust target first:
# rustup does not always install a toolchain file's targets by itself).
build:
    rustup target add wasm32-wasip1
    cargo build --release --target wasm32-wasip1 -p oidc-gate

# Every test: core unit tests and the end-to-end suite (real Envoy, IdP, Chromium).
test:
    cargo test --workspace

# Local demo: Envoy + oidc-gate + the local OpenID provider + the echo app.
demo:
    cargo run -p demo

# Formatting and lints, natively and for the Wasm target.
lint:
    rustup target add wasm32-wasip1
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

# Soak: signed-in traffic plus new logins for SECONDS (default 300), Envoy RSS reported.
soak seconds="300":
    SOAK_SECONDS={{seconds}} cargo test -p e2e --test soak -- --nocapture

# Fuzz every target of the core for SECONDS each (libFuzzer via cargo-fuzz on stable).
fuzz seconds="60":
    cargo install cargo-fuzz --locked
    cd filter/core/fuzz && for t in session_cookie login_state jwt callback config redirect head; do RUSTC_BOOTSTRAP=1 cargo fuzz run $t corpus/$t -- -max_total_time={{seconds}} || exit 1; done

# The side-by-side Envoy benchmark (release build; a full run takes a few minutes).
bench:
    cargo build --release -p oidc-gate-bench
    ./target/release/envoy-bench
    cargo bench -p oidc-gate-core --bench core

# A token's first verification (RS256, ES256) and a JWKS parse timed in V8 (node's WASI, the
# engine Envoy embeds), then natively; N verifications each.
bench-verify n="1000":
    rustup target add wasm32-wasip1
    cargo build --release --target wasm32-wasip1 -p oidc-gate-core --example verify_bench
    node bench/wasm-verify/run.mjs target/wasm32-wasip1/release/examples/verify_bench.wasm {{n}}
    cargo run --release -q -p oidc-gate-core --example verify_bench -- {{n}}
