//! The example and rendered manifests against Istio's real CRD schemas (tests/crds), the
//! configuration schema kept in step with the Rust types, and the README's option table with
//! the schema.

use std::path::{Path, PathBuf};

use oidc_gate_wasmplugin::render::{self, Kind, Options};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn yaml_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The `openAPIV3Schema` of a CRD file in tests/crds (Istio 1.30.3's, see SOURCE.md), by kind.
fn crd_validator(kind: &str) -> jsonschema::Validator {
    let file = match kind {
        "WasmPlugin" => "wasmplugin-crd.yaml",
        "TrafficExtension" => "trafficextension-crd.yaml",
        "ServiceEntry" => "serviceentry-crd.yaml",
        "DestinationRule" => "destinationrule-crd.yaml",
        other => panic!("no CRD for {other}"),
    };
    let path = root().join("tests/crds").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let crd = yaml_docs(&text).remove(0);
    let versions = crd["spec"]["versions"].as_array().expect("versions");
    // The storage version (v1 for networking, v1alpha1 for extensions).
    let version = versions
        .iter()
        .find(|v| v["storage"] == true)
        .expect("a storage version");
    jsonschema::validator_for(&version["schema"]["openAPIV3Schema"]).expect("a schema")
}

fn assert_valid(doc: &Value) {
    let kind = doc["kind"].as_str().expect("kind");
    let errors: Vec<String> = crd_validator(kind)
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{kind} {}: {errors:#?}",
        doc["metadata"]["name"]
    );
}

#[test]
fn the_crd_validator_rejects_what_istio_would() {
    let bad: Value = serde_json::json!({
        "apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin",
        "metadata": {"name": "x"},
        "spec": {"url": "oci://r/x", "failStrategy": "FAIL_SOMETIMES", "phase": "AUTHN", "sha256": "nothex"}
    });
    let errors = crd_validator("WasmPlugin").iter_errors(&bad).count();
    assert!(errors >= 2, "{errors}");
}

#[test]
fn example_manifests_validate_against_istios_crds() {
    let dir = root().join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        for doc in yaml_docs(&std::fs::read_to_string(&path).expect("read")) {
            if let Some("WasmPlugin" | "TrafficExtension" | "ServiceEntry" | "DestinationRule") =
                doc["kind"].as_str()
            {
                assert_valid(&doc);
                checked += 1;
            }
            if doc["kind"] == "WasmPlugin" || doc["kind"] == "TrafficExtension" {
                let config = oidc_gate_wasmplugin::validate::plugin_config(
                    &serde_json::to_string(&doc).expect("json"),
                )
                .expect("config");
                assert!(
                    config.is_object() && oidc_gate_wasmplugin::validate::check(&config).is_empty(),
                    "{path:?}"
                );
            }
        }
    }
    assert!(checked >= 6, "{checked}");
}

#[test]
fn rendered_manifests_validate_for_both_kinds_and_several_idps() {
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/okta-gateway.json")).expect("read"),
    )
    .expect("json");
    let mut multi = config.clone();
    multi["skip_jwt_bearer_tokens"] = true.into();
    multi["extra_jwt_issuers"] =
        serde_json::json!(["https://login.partner.example:8443/tenant=api://partner"]);
    for (config, kind) in [
        (&config, Kind::WasmPlugin),
        (&config, Kind::TrafficExtension),
        (&multi, Kind::WasmPlugin),
    ] {
        let options = Options {
            kind,
            image: "127.0.0.1:5000/oidc-gate:1".into(),
            sha256: Some("0".repeat(64)),
            ..Options::default()
        };
        let docs = render::render(config, &options).expect("render").docs;
        for d in &docs {
            assert_valid(d);
        }
    }
    let docs = render::render(
        &multi,
        &Options {
            image: "r/x:1".into(),
            ..Options::default()
        },
    )
    .expect("render")
    .docs;
    let hosts: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "ServiceEntry")
        .filter_map(|d| d["spec"]["hosts"][0].as_str())
        .collect();
    assert_eq!(hosts, vec!["dev-123456.okta.com", "login.partner.example"]);
}

/// The spec-level CEL rules of a CRD (`x-kubernetes-validations`), which the JSON Schema
/// validator does not evaluate.
fn crd_spec_rules(kind: &str) -> Vec<String> {
    let file = match kind {
        "WasmPlugin" => "wasmplugin-crd.yaml",
        "TrafficExtension" => "trafficextension-crd.yaml",
        other => panic!("no CRD for {other}"),
    };
    let text = std::fs::read_to_string(root().join("tests/crds").join(file)).expect("read");
    let crd = yaml_docs(&text).remove(0);
    let version = crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["storage"] == true)
        .expect("a storage version")
        .clone();
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
        .as_array()
        .expect("spec rules")
        .iter()
        .filter_map(|r| r["rule"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn rendered_target_refs_manifests_validate_for_both_kinds() {
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/okta-gateway.json")).expect("read"),
    )
    .expect("json");
    let targets: Vec<render::TargetRef> = [
        "Gateway/public",
        "GatewayClass/istio",
        "Service/reviews",
        "ServiceEntry/partner-api",
    ]
    .iter()
    .map(|t| t.parse().expect("target"))
    .collect();
    for kind in [Kind::WasmPlugin, Kind::TrafficExtension] {
        let options = Options {
            kind,
            image: "127.0.0.1:5000/oidc-gate:1".into(),
            sha256: Some("0".repeat(64)),
            namespace: "apps".into(),
            target_refs: targets.clone(),
            ..Options::default()
        };
        let docs = render::render(&config, &options).expect("render").docs;
        for d in &docs {
            assert_valid(d);
        }
        let spec = &docs[0]["spec"];
        assert_eq!(spec["targetRefs"].as_array().map(Vec::len), Some(4));
        // The CEL rule the schema validator skips: selector and targetRefs exclude each other.
        let kind_name = docs[0]["kind"].as_str().expect("kind");
        let rules = crd_spec_rules(kind_name);
        assert!(
            rules
                .iter()
                .any(|r| r.contains("has(self.selector)") && r.contains("has(self.targetRefs)")),
            "{kind_name}: {rules:?}"
        );
        assert!(spec.get("selector").is_none(), "{spec}");
        assert!(spec.get("targetRef").is_none(), "{spec}");
    }
    // The schema does check targetRefs items: a kind with a space and a missing name fail.
    let mut bad = render::render(
        &config,
        &Options {
            image: "r/x:1".into(),
            target_refs: targets,
            ..Options::default()
        },
    )
    .expect("render")
    .docs
    .remove(0);
    bad["spec"]["targetRefs"] = serde_json::json!([{"group": "x", "kind": "Gate way"}]);
    assert!(crd_validator("WasmPlugin").iter_errors(&bad).count() >= 2);
}

#[test]
fn the_shipped_config_schema_is_the_one_the_types_generate() {
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("config.schema.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(shipped, oidc_gate_core::config::json_schema(), "run: cargo run -p oidc-gate-wasmplugin --bin oidc-gate-ctl -- schema > wasmplugin/config.schema.json");
    // And the example configuration conforms to it.
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/okta-gateway.json")).expect("read"),
    )
    .expect("json");
    assert!(jsonschema::is_valid(&shipped, &example));
    assert!(!jsonschema::is_valid(
        &shipped,
        &serde_json::json!({"cookie_secure": "yes"})
    ));
    assert!(!jsonschema::is_valid(
        &shipped,
        &serde_json::json!({"no_such_option": 1})
    ));
}

#[test]
fn the_readme_option_table_lists_exactly_the_schemas_options() {
    let readme = std::fs::read_to_string(root().join("../README.md")).expect("README");
    let section = readme
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section");
    let table = section.split("\n## ").next().unwrap_or("");
    let mut in_readme: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or("");
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    in_readme.sort();
    let schema = oidc_gate_core::config::json_schema();
    let mut in_schema: Vec<String> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    in_schema.sort();
    assert_eq!(in_readme, in_schema);
}

#[test]
fn the_grafana_dashboard_queries_metrics_the_filter_defines() {
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("grafana-dashboard.json")).expect("read"),
    )
    .expect("json");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10);
    let names = [
        "oidc_gate_login_started",
        "oidc_gate_login_completed",
        "oidc_gate_session_accepted",
        "oidc_gate_bearer_accepted",
        "oidc_gate_refresh_succeeded",
        "oidc_gate_jwks_age_seconds",
        "oidc_gate_idp_latency_ms_token_bucket",
    ];
    for name in names {
        assert!(
            exprs.iter().any(|e| e.contains(name)),
            "{name} is not on the dashboard"
        );
    }
    // Every family the filter counts by reason is on the dashboard.
    for family in [
        "oidc_gate_login_failed_",
        "oidc_gate_session_rejected_",
        "oidc_gate_access_denied_",
        "oidc_gate_bearer_rejected_",
        "oidc_gate_idp_failures_",
    ] {
        assert!(exprs.iter().any(|e| e.contains(family)), "{family}");
    }
}
