//! Shipping to Istio, as far as it runs without a cluster: the OCI image pushed to a real
//! registry (with and without auth) and read back by Istio's fetcher rules and by skopeo; a
//! rendered WasmPlugin turned into Envoy configuration the way istiod does, loading the pulled
//! module, logging in with its secrets only in the environment; OAuth2-Proxy values migrated.

use std::process::Command;

use e2e::envoy::{free_port, Plugin};
use e2e::idp::{self, ALICE};
use e2e::registry::Registry;
use e2e::stack::COOKIE_SECRET;
use e2e::{tools, Browser, Stack, StackOptions};
use oidc_gate_wasmplugin::image::RegistryAuth;
use oidc_gate_wasmplugin::image::{self, sha256_hex, Variant, OCI_LAYER_GZIP, OCI_MANIFEST};
use oidc_gate_wasmplugin::{migrate, render, validate};
use serde_json::json;

fn skopeo(args: &[&str]) -> (bool, String) {
    let (_, skopeo) = tools::registry_tools();
    let out = Command::new(skopeo).args(args).output().expect("skopeo");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_pushed_image_is_what_istio_and_skopeo_read_back_with_and_without_auth() {
    let wasm = std::fs::read(tools::wasm_module()).expect("wasm");
    let hash = bcrypt::hash("push-secret", 4).expect("bcrypt");
    for with_auth in [false, true] {
        let registry = if with_auth {
            Registry::start(
                "reg-auth",
                Some(("pusher", "push-secret", &format!("pusher:{hash}"))),
            )
        } else {
            Registry::start("reg-open", None)
        };
        let host = registry.host();
        let auth = match &registry.credentials {
            Some((u, p)) => {
                // Credentials come from a docker config.json, as the CLI reads them.
                let dir = tools::artifacts_dir().join("docker-config");
                std::fs::create_dir_all(&dir).expect("dir");
                let token = base64_encode(&format!("{u}:{p}"));
                std::fs::write(
                    dir.join("config.json"),
                    json!({"auths": {host.clone(): {"auth": token}}}).to_string(),
                )
                .expect("write");
                std::env::set_var("DOCKER_CONFIG", &dir);
                image::docker_auth(&host)
            }
            None => RegistryAuth::Anonymous,
        };
        for variant in [Variant::Compat, Variant::Artifact] {
            let tag = if variant == Variant::Compat {
                "compat"
            } else {
                "artifact"
            };
            let reference = format!("{host}/platform/oidc-gate:{tag}");
            let built = image::build(&wasm, variant).expect("image");
            if with_auth {
                assert!(
                    image::push(&built, &reference, &RegistryAuth::Anonymous, true).is_err(),
                    "anonymous push must be refused"
                );
            }
            let digest =
                image::push(&built, &reference, &auth, true).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                digest.starts_with("sha256:") && digest.len() == 71,
                "{digest}"
            );
            // Pull back by digest; the manifest's own hash is the printed digest (the WasmPlugin's sha256).
            let pulled = image::pull(&format!("{host}/platform/oidc-gate@{digest}"), &auth, true)
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                format!("sha256:{}", sha256_hex(&pulled.manifest_bytes)),
                digest
            );
            assert_eq!(
                pulled.media_type, OCI_MANIFEST,
                "a single-platform image, no index"
            );
            let manifest: serde_json::Value =
                serde_json::from_slice(&pulled.manifest_bytes).expect("json");
            if variant == Variant::Compat {
                assert_eq!(
                    manifest["layers"]
                        .as_array()
                        .and_then(|l| l.last())
                        .map(|l| l["mediaType"].clone()),
                    Some(json!(OCI_LAYER_GZIP))
                );
                assert_eq!(
                    manifest["annotations"]["module.wasm.image/variant"],
                    "compat"
                );
            } else {
                assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(2));
            }
            let module = image::istio_module(&pulled).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                module == wasm,
                "the module Istio would load is byte-identical to the built .wasm"
            );

            // Another client reads it too.
            let src = format!("docker://{host}/platform/oidc-gate@{digest}");
            let creds = registry
                .credentials
                .as_ref()
                .map(|(u, p)| format!("{u}:{p}"));
            let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
            if let Some(c) = &creds {
                args.extend(["--creds", c.as_str()]);
            }
            args.push(&src);
            let (ok, out) = skopeo(&args);
            assert!(ok, "{out}");
            assert_eq!(
                format!("sha256:{}", sha256_hex(out.trim_end().as_bytes())),
                digest,
                "skopeo sees the same manifest: {out}"
            );
            let dest = tools::artifacts_dir().join(format!("skopeo-{tag}-{with_auth}"));
            let _ = std::fs::remove_dir_all(&dest);
            let dest_arg = format!("dir:{}", dest.display());
            let mut args = vec!["copy", "--src-tls-verify=false"];
            if let Some(c) = &creds {
                args.extend(["--src-creds", c.as_str()]);
            }
            args.extend([src.as_str(), dest_arg.as_str()]);
            let (ok, out) = skopeo(&args);
            assert!(ok, "{out}");
            let layer = manifest["layers"][0]["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:")
                .to_string();
            assert!(dest.join(&layer).exists(), "skopeo copied the layer");
        }
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn a_rendered_wasmplugin_loads_the_pulled_module_and_logs_in_with_secrets_only_in_the_environment()
{
    // The configuration holds its secrets inline, as a first draft would: render moves them into
    // a Kubernetes Secret that the gateway takes as environment variables.
    let registry = Registry::start("reg-render", None);
    let wasm = std::fs::read(tools::wasm_module()).expect("wasm");
    let reference = format!("{}/platform/oidc-gate:0.1.0", registry.host());
    let digest = image::push(
        &image::build(&wasm, Variant::Compat).expect("image"),
        &reference,
        &RegistryAuth::Anonymous,
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let idp_port = free_port();
    let config = json!({
        "oidc_issuer_url": format!("http://127.0.0.1:{idp_port}/oauth2/default"),
        "client_id": idp::CLIENT_ID,
        "client_secret": idp::CLIENT_SECRET,
        "cookie_secret": COOKIE_SECRET,
        "cookie_secure": false,
        "set_authorization_header": true,
    });
    let options = render::Options {
        image: reference.clone(),
        sha256: Some(digest.clone()),
        ..render::Options::default()
    };
    let rendered = render::render(&config, &options).unwrap_or_else(|e| panic!("{e:?}"));
    let wasmplugin = rendered.docs[0].clone();
    let text = render::to_yaml(&rendered.docs);
    assert!(
        !text.contains(idp::CLIENT_SECRET) && !text.contains(COOKIE_SECRET),
        "no secret in the plugin resource"
    );
    assert_eq!(wasmplugin["spec"]["failStrategy"], "FAIL_RELOAD");
    // The kubelet: the gateway's environment from the Secret, as the Deployment patch says.
    let secret = &rendered.secrets.docs[0]["stringData"];
    let env: Vec<(String, String)> = rendered.secrets.docs[1]["spec"]["template"]["spec"]
        ["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let key = e["valueFrom"]["secretKeyRef"]["key"].as_str().expect("key");
            let name = e["name"].as_str().expect("name").to_string();
            (name, secret[key].as_str().expect("value").to_string())
        })
        .collect();

    // The agent: pull the url, check the sha256 against the manifest digest, take the module.
    let url = wasmplugin["spec"]["url"]
        .as_str()
        .expect("url")
        .trim_start_matches("oci://")
        .to_string();
    let pulled =
        image::pull(&url, &RegistryAuth::Anonymous, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sha256_hex(&pulled.manifest_bytes),
        wasmplugin["spec"]["sha256"].as_str().expect("sha256")
    );
    let module = image::istio_module(&pulled).unwrap_or_else(|e| panic!("{e}"));
    let path = tools::artifacts_dir().join("pulled-oidc_gate.wasm");
    std::fs::write(&path, module).expect("write module");

    let plugin = Plugin::from_istio(&wasmplugin, path);
    assert_eq!(
        plugin.host_env_keys,
        vec!["OIDC_CLIENT_SECRET", "OIDC_COOKIE_SECRET"]
    );
    let s = Stack::start(
        "rendered",
        StackOptions {
            plugin: Some(plugin),
            envoy_env: env,
            idp: json!({"port": idp_port}),
            ..StackOptions::default()
        },
    );
    let bootstrap = std::fs::read_to_string(tools::artifacts_dir().join("rendered-0-envoy.json"))
        .expect("bootstrap");
    assert!(
        !bootstrap.contains(idp::CLIENT_SECRET) && !bootstrap.contains(COOKIE_SECRET),
        "secrets only in the environment"
    );
    let mut b = Browser::new();
    let last = b
        .login(&s.url("/rendered"), ALICE.username, ALICE.password)
        .pop()
        .expect("reply");
    assert_eq!(last.status, 200, "{last:?}\n{}", s.envoy_log());
    let seen = last.seen().expect("app");
    assert_eq!(
        seen.header("x-auth-request-email"),
        Some("alice@example.com")
    );
    assert!(seen
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer ey")));
}

#[test]
fn migrated_oauth2_proxy_values_validate_and_log_in() {
    let values = std::fs::read_to_string(
        tools::workspace_root().join("wasmplugin/tests/oauth2-proxy-values.yaml"),
    )
    .expect("values");
    let m = migrate::migrate(&values).expect("migrate");
    assert!(
        validate::check(&m.config).is_empty(),
        "{:?}",
        validate::check(&m.config)
    );
    // The Okta org and its client are this test's IdP; every other migrated option is kept.
    let mut config = m.config.clone();
    for key in [
        "oidc_issuer_url",
        "client_id",
        "client_secret_env",
        "cookie_secret_env",
    ] {
        config.as_object_mut().map(|o| o.remove(key));
    }
    let s = Stack::start(
        "migrated",
        StackOptions {
            config,
            ..StackOptions::default()
        },
    );
    let mut b = Browser::new();
    let last = b
        .login(&s.url("/"), ALICE.username, ALICE.password)
        .pop()
        .expect("reply");
    assert_eq!(last.status, 200, "{last:?}");
    assert!(
        b.cookies(&s.url("/"))
            .contains_key("_oauth2_proxy_istio_ingressgateway"),
        "the migrated cookie_name"
    );
    assert!(
        last.seen()
            .and_then(|x| x.header("authorization").map(str::to_string))
            .is_some(),
        "set_authorization_header"
    );
    let mut bob = Browser::new();
    assert_eq!(
        bob.login(&s.url("/"), e2e::idp::BOB.username, e2e::idp::BOB.password)
            .last()
            .map(|r| r.status),
        Some(403),
        "allowed_group: admins"
    );
}
