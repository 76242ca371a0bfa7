//! `render`: the Istio resources for a configuration — the WasmPlugin (or, for Istio 1.30+, the
//! TrafficExtension that supersedes it) for the ingress gateway, and a ServiceEntry and
//! DestinationRule per IdP host, so the gateway reaches the IdP over TLS through the very
//! cluster names the filter derives (`outbound|<port>||<host>`).

use std::collections::BTreeMap;

use oidc_gate_core::config::{Endpoint, ProviderSource};
use oidc_gate_core::Config;
use serde_json::{json, Value};

use crate::offline_env;

/// Which resource carries the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    WasmPlugin,
    TrafficExtension,
}

/// Secrets found inline in a configuration, moved to environment variables of the gateway:
/// the Kubernetes resources that carry them (a Secret, and the gateway Deployment's env).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MovedSecrets {
    /// (configuration key, environment variable) for each value moved.
    pub moved: Vec<(String, String)>,
    /// The Secret and the Deployment patch, empty when nothing was inline.
    pub docs: Vec<Value>,
}

/// What `render` writes: the plugin and IdP resources (never a secret), and the secrets it took
/// out of `pluginConfig`, to be written elsewhere.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub docs: Vec<Value>,
    pub secrets: MovedSecrets,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub kind: Kind,
    /// Without `oci://`; with a tag or `@sha256:` digest.
    pub image: String,
    /// The manifest digest (hex), when known: Istio checks the pulled image against it.
    pub sha256: Option<String>,
    pub namespace: String,
    pub name: String,
    /// The gateway pods' labels.
    pub selector: Vec<(String, String)>,
    /// The app host; sets `redirect_url` when the configuration has none.
    pub host: Option<String>,
    /// The gateway Deployment whose environment carries moved secrets.
    pub gateway: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kind: Kind::WasmPlugin,
            image: String::new(),
            sha256: None,
            namespace: "istio-system".into(),
            name: "oidc-gate".into(),
            selector: vec![("istio".into(), "ingressgateway".into())],
            host: None,
            gateway: "istio-ingressgateway".into(),
        }
    }
}

/// The IdP endpoints the filter will call, as the filter itself derives them.
pub fn idp_endpoints(config: &Config) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for p in &config.providers {
        match &p.provider.source {
            ProviderSource::Discovery(d) => out.push(d.clone()),
            ProviderSource::Static {
                token_endpoint,
                jwks,
                ..
            } => {
                out.push(token_endpoint.clone());
                out.push(jwks.clone());
            }
        }
        out.extend(
            p.bearer
                .extra_issuers
                .iter()
                .filter_map(|e| e.discovery.clone()),
        );
    }
    out
}

/// The environment variables the configuration reads (top level and every provider).
fn env_names(config: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let objects = std::iter::once(config).chain(
        config["providers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    for object in objects {
        for key in ENV_KEYS {
            match &object[key] {
                Value::String(s) => names.push(s.clone()),
                Value::Array(a) => {
                    names.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)))
                }
                _ => {}
            }
        }
    }
    names
}

/// The options that name an environment variable of the VM.
const ENV_KEYS: &[&str] = &[
    "client_secret_env",
    "client_private_key_env",
    "cookie_secret_env",
    "cookie_secret_previous_env",
];

/// The secrets a provider entry may hold inline, each moved to `<key>_env`.
const PROVIDER_SECRETS: &[&str] = &["client_secret", "client_private_key"];

/// The variable an inline secret moves to.
fn variable(key: &str, index: Option<usize>) -> String {
    let base = format!("OIDC_{}", key.to_ascii_uppercase());
    match index {
        Some(i) => format!("{base}_{}", i + 1),
        None => base,
    }
}

/// Takes inline secrets out of `config` and names environment variables instead, as the
/// `*_env` options read them: anyone who can read a WasmPlugin or an Envoy config dump would
/// otherwise read the secrets.
pub fn move_secrets(config: &mut Value, options: &Options) -> MovedSecrets {
    let Some(map) = config.as_object_mut() else {
        return MovedSecrets::default();
    };
    let mut values: Vec<(String, String, String)> = Vec::new();
    for key in ["client_secret", "client_private_key", "cookie_secret"] {
        if let Some(Value::String(v)) = map.remove(key) {
            let var = variable(key, None);
            map.insert(format!("{key}_env"), json!(var));
            values.push((key.to_string(), var, v));
        }
    }
    // Each provider's: `OIDC_CLIENT_SECRET_<ID>`.
    for entry in map
        .get_mut("providers")
        .and_then(Value::as_array_mut)
        .map(|a| a.iter_mut())
        .into_iter()
        .flatten()
    {
        let id = entry["id"].as_str().unwrap_or_default().to_string();
        let Some(entry) = entry.as_object_mut() else {
            continue;
        };
        for key in PROVIDER_SECRETS {
            if let Some(Value::String(v)) = entry.remove(*key) {
                let var = format!(
                    "{}_{}",
                    variable(key, None),
                    id.replace('-', "_").to_ascii_uppercase()
                );
                entry.insert(format!("{key}_env"), json!(var));
                values.push((format!("providers.{id}.{key}"), var, v));
            }
        }
    }
    let previous = match map.remove("cookie_secret_previous") {
        Some(Value::String(v)) => vec![v],
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if !previous.is_empty() {
        let mut names: Vec<Value> = match map.remove("cookie_secret_previous_env") {
            Some(Value::String(s)) => vec![json!(s)],
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        for (i, v) in previous.into_iter().enumerate() {
            let var = variable("cookie_secret_previous", Some(i));
            names.push(json!(var));
            values.push(("cookie_secret_previous".into(), var, v));
        }
        map.insert("cookie_secret_previous_env".into(), Value::Array(names));
    }
    if values.is_empty() {
        return MovedSecrets::default();
    }
    let name = &options.name;
    let data: serde_json::Map<String, Value> = values
        .iter()
        .map(|(_, var, v)| (var.clone(), json!(v)))
        .collect();
    let env: Vec<Value> = values
        .iter()
        .map(|(_, var, _)| json!({"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": var}}}))
        .collect();
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": options.namespace},
        "type": "Opaque",
        "stringData": data,
    });
    let patch = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": options.gateway, "namespace": options.namespace},
        "spec": {"template": {"spec": {"containers": [{"name": "istio-proxy", "env": env}]}}},
    });
    MovedSecrets {
        moved: values.into_iter().map(|(k, var, _)| (k, var)).collect(),
        docs: vec![secret, patch],
    }
}

/// The documents, in order: the plugin resource, then a ServiceEntry and DestinationRule per
/// IdP host and port; and the secrets moved out of `pluginConfig`. `Err` lists the
/// configuration's problems.
pub fn render(config: &Value, options: &Options) -> Result<Rendered, Vec<String>> {
    let mut config = config.clone();
    let secrets = move_secrets(&mut config, options);
    if let (Some(host), true) = (&options.host, config.get("redirect_url").is_none()) {
        let prefix = config["proxy_prefix"]
            .as_str()
            .unwrap_or("/oauth2")
            .to_string();
        config["redirect_url"] = json!(format!("https://{host}{prefix}/callback"));
    }
    let moved: BTreeMap<String, String> = secrets
        .docs
        .first()
        .and_then(|s| s["stringData"].as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let env = offline_env(&config, moved);
    let parsed = Config::parse(config.to_string().as_bytes(), &env).map_err(|e| {
        e.problems
            .iter()
            .map(|p| format!("{}: {}", p.key, p.rule))
            .collect::<Vec<_>>()
    })?;

    let selector: serde_json::Map<String, Value> = options
        .selector
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let env: Vec<Value> = env_names(&config)
        .into_iter()
        .map(|name| json!({"name": name, "valueFrom": "HOST"}))
        .collect();
    // A VM that traps is replaced (Envoy's FAIL_RELOAD); requests fail closed meanwhile.
    let mut wasm = json!({
        "url": format!("oci://{}", options.image.trim_start_matches("oci://")),
        "imagePullPolicy": "IfNotPresent",
        "failStrategy": "FAIL_RELOAD",
        "pluginConfig": config,
    });
    if let Some(sha) = &options.sha256 {
        wasm["sha256"] = json!(sha.trim_start_matches("sha256:"));
    }
    if !env.is_empty() {
        wasm["vmConfig"] = json!({"env": env});
    }
    let metadata = json!({"name": options.name, "namespace": options.namespace});
    // Gateway listeners are CLIENT: `match.mode: SERVER` would never apply, so no match at all.
    let plugin = match options.kind {
        Kind::WasmPlugin => {
            let mut spec = json!({"selector": {"matchLabels": selector}, "phase": "AUTHN"});
            if let (Some(s), Some(w)) = (spec.as_object_mut(), wasm.as_object()) {
                s.extend(w.clone());
            }
            json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": metadata, "spec": spec})
        }
        Kind::TrafficExtension => json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "kind": "TrafficExtension",
            "metadata": metadata,
            "spec": {"selector": {"matchLabels": selector}, "phase": "AUTHN", "wasm": wasm},
        }),
    };
    let mut docs = vec![plugin];
    let mut seen = Vec::new();
    for e in idp_endpoints(&parsed) {
        let (Some(host), Some(port)) = (
            e.url.host_str().map(str::to_string),
            e.url.port_or_known_default(),
        ) else {
            continue;
        };
        if seen.contains(&(host.clone(), port)) {
            continue;
        }
        seen.push((host.clone(), port));
        let tls = e.url.scheme() == "https";
        let name = format!("{}-{}", options.name, host.replace('.', "-"));
        let protocol = if tls { "HTTPS" } else { "HTTP" };
        docs.push(json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": name, "namespace": options.namespace},
            "spec": {
                "hosts": [host],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": [{"number": port, "name": format!("{}-{port}", protocol.to_ascii_lowercase()), "protocol": protocol}],
                "exportTo": ["."],
            }
        }));
        if tls {
            docs.push(json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": name, "namespace": options.namespace},
                "spec": {
                    "host": host,
                    "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": host}},
                    "exportTo": ["."],
                }
            }));
        }
    }
    Ok(Rendered { docs, secrets })
}

/// Multi-document YAML.
pub fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_yaml::to_string(d).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PLACEHOLDER_SECRET;

    fn okta() -> Value {
        json!({
            "oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default",
            "client_id": "0oa1b2c3d4e5f6g7h8i9",
            "client_secret_env": "OIDC_CLIENT_SECRET",
            "cookie_secret_env": "OIDC_COOKIE_SECRET",
        })
    }

    #[test]
    fn renders_the_plugin_and_the_idp_resources_with_the_filters_cluster_name() {
        let options = Options {
            image: "registry.example.com/oidc-gate:0.1.0".into(),
            host: Some("app.example.com".into()),
            ..Options::default()
        };
        let docs = render(&okta(), &options)
            .map(|r| r.docs)
            .unwrap_or_default();
        assert_eq!(docs.len(), 3);
        let wp = &docs[0];
        assert_eq!(wp["spec"]["phase"], "AUTHN");
        assert_eq!(wp["spec"]["failStrategy"], "FAIL_RELOAD");
        assert_eq!(
            wp["spec"]["url"],
            "oci://registry.example.com/oidc-gate:0.1.0"
        );
        assert!(wp["spec"].get("match").is_none());
        assert_eq!(
            wp["spec"]["vmConfig"]["env"],
            json!([{"name": "OIDC_CLIENT_SECRET", "valueFrom": "HOST"}, {"name": "OIDC_COOKIE_SECRET", "valueFrom": "HOST"}])
        );
        assert_eq!(
            wp["spec"]["pluginConfig"]["redirect_url"],
            "https://app.example.com/oauth2/callback"
        );
        let se = &docs[1];
        assert_eq!(
            (
                se["spec"]["hosts"][0].as_str(),
                se["spec"]["ports"][0]["number"].as_u64()
            ),
            (Some("dev-123456.okta.com"), Some(443))
        );
        assert_eq!(docs[2]["spec"]["trafficPolicy"]["tls"]["mode"], "SIMPLE");
        // The cluster Istio builds for that ServiceEntry is the one the filter calls.
        let env = |_: &str| Some(PLACEHOLDER_SECRET.to_string());
        let parsed = Config::parse(okta().to_string().as_bytes(), &env)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let istio_cluster = format!(
            "outbound|{}||{}",
            se["spec"]["ports"][0]["number"],
            se["spec"]["hosts"][0].as_str().unwrap_or("")
        );
        assert_eq!(idp_endpoints(&parsed)[0].cluster, istio_cluster);
    }

    #[test]
    fn traffic_extension_carries_the_same_wasm_block() {
        let options = Options {
            kind: Kind::TrafficExtension,
            image: "r/x:1".into(),
            sha256: Some("ab".repeat(32)),
            ..Options::default()
        };
        let docs = render(&okta(), &options)
            .map(|r| r.docs)
            .unwrap_or_default();
        assert_eq!(docs[0]["kind"], "TrafficExtension");
        assert_eq!(docs[0]["spec"]["wasm"]["sha256"], "ab".repeat(32));
        assert_eq!(docs[0]["spec"]["wasm"]["failStrategy"], "FAIL_RELOAD");
    }

    #[test]
    fn inline_secrets_never_reach_the_plugin_resource() {
        let mut inline = okta();
        if let Some(m) = inline.as_object_mut() {
            m.remove("client_secret_env");
            m.remove("cookie_secret_env");
            m.insert("client_secret".into(), json!("cl13nt-s3cr3t"));
            m.insert("cookie_secret".into(), json!(PLACEHOLDER_SECRET));
            m.insert(
                "cookie_secret_previous".into(),
                json!(["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]),
            );
        }
        let options = Options {
            image: "r/x:1".into(),
            ..Options::default()
        };
        let r = render(&inline, &options).unwrap_or_else(|e| unreachable!("{e:?}"));
        let plugin = to_yaml(&r.docs);
        for secret in [
            "cl13nt-s3cr3t",
            PLACEHOLDER_SECRET,
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(!plugin.contains(secret), "{plugin}");
        }
        let spec = &r.docs[0]["spec"];
        assert_eq!(
            spec["pluginConfig"]["client_secret_env"],
            "OIDC_CLIENT_SECRET"
        );
        assert_eq!(
            spec["pluginConfig"]["cookie_secret_previous_env"],
            json!(["OIDC_COOKIE_SECRET_PREVIOUS_1"])
        );
        assert_eq!(
            spec["vmConfig"]["env"],
            json!([
                {"name": "OIDC_CLIENT_SECRET", "valueFrom": "HOST"},
                {"name": "OIDC_COOKIE_SECRET", "valueFrom": "HOST"},
                {"name": "OIDC_COOKIE_SECRET_PREVIOUS_1", "valueFrom": "HOST"},
            ])
        );
        let secret = &r.secrets.docs[0];
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["stringData"]["OIDC_CLIENT_SECRET"], "cl13nt-s3cr3t");
        let patch = &r.secrets.docs[1];
        assert_eq!(patch["metadata"]["name"], "istio-ingressgateway");
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]
                ["secretKeyRef"],
            json!({"name": "oidc-gate", "key": "OIDC_CLIENT_SECRET"})
        );
        // Already in the environment: nothing to move.
        assert!(render(&okta(), &options)
            .map(|r| r.secrets.docs.is_empty())
            .unwrap_or(false));
    }

    #[test]
    fn an_inline_private_key_of_any_provider_moves_to_the_secret() {
        use oidc_gate_core::client_key::{ClientKey, KeyAlg};
        let pem = ClientKey::generate(KeyAlg::Es256)
            .ok()
            .and_then(|k| k.private_pem())
            .unwrap_or_default();
        let mut config = okta();
        config["providers"] = json!([{"id": "finance", "oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default",
            "client_id": "0oa-fin", "client_auth_method": "private_key_jwt", "client_private_key": pem}]);
        config["policies"] = json!([{"hosts": ["finance.example.com"], "provider": "finance"}]);
        let options = Options {
            image: "r/x:1".into(),
            ..Options::default()
        };
        let r = render(&config, &options).unwrap_or_else(|e| unreachable!("{e:?}"));
        assert!(!to_yaml(&r.docs).contains("PRIVATE KEY"));
        let entry = &r.docs[0]["spec"]["pluginConfig"]["providers"][0];
        assert_eq!(
            entry["client_private_key_env"],
            "OIDC_CLIENT_PRIVATE_KEY_FINANCE"
        );
        let secret = &r.secrets.docs[0];
        assert_eq!(
            secret["stringData"]["OIDC_CLIENT_PRIVATE_KEY_FINANCE"],
            json!(pem)
        );
    }

    #[test]
    fn an_invalid_configuration_renders_nothing() {
        let bad = json!({"client_id": "x"});
        let e = render(&bad, &Options::default()).err().unwrap_or_default();
        assert!(e.iter().any(|l| l.starts_with("oidc_issuer_url")), "{e:?}");
    }
}
