//! `render`: the Istio resources for a configuration — the WasmPlugin (or, for Istio 1.30+, the
//! TrafficExtension that supersedes it) for the ingress gateway (by `selector`) or for Gateway
//! API gateways and ambient waypoints (by `targetRefs`), and a ServiceEntry and
//! DestinationRule per IdP host, so the gateway reaches the IdP over TLS through the very
//! cluster names the filter derives (`outbound|<port>||<host>`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

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
    /// The Secret and a patch per Deployment, empty when nothing was inline.
    pub docs: Vec<Value>,
    /// The gateway Deployments the patches are for.
    pub deployments: Vec<String>,
}

/// What `render` writes: the plugin and IdP resources (never a secret), and the secrets it took
/// out of `pluginConfig`, to be written elsewhere.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub docs: Vec<Value>,
    pub secrets: MovedSecrets,
}

/// The kinds a WasmPlugin or TrafficExtension may target (Istio 1.30 `wasm.proto`,
/// `traffic_extension.proto`), with their API group.
pub const TARGET_KINDS: [(&str, &str); 4] = [
    ("Gateway", "gateway.networking.k8s.io"),
    ("GatewayClass", "gateway.networking.k8s.io"),
    ("Service", ""),
    ("ServiceEntry", "networking.istio.io"),
];

/// The most `targetRefs` the CRDs accept (`maxItems`).
pub const MAX_TARGET_REFS: usize = 16;

/// One `targetRefs` item, a PolicyTargetReference in the resource's own namespace (Istio refuses
/// cross-namespace references). Parsed from `<kind>/<name>`, e.g. `Gateway/public`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    pub group: String,
    pub kind: String,
    pub name: String,
}

impl TargetRef {
    pub fn to_json(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "name": self.name})
    }
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

fn accepted_kinds() -> String {
    TARGET_KINDS
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Kubernetes object name (RFC 1123 subdomain): what Gateway, Service and ServiceEntry names
/// are.
fn is_object_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl FromStr for TargetRef {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "expected <kind>/<name>, e.g. Gateway/public; kinds: {}",
                accepted_kinds()
            )
        };
        let parts: Vec<&str> = value.split('/').collect();
        let (kind, name) = match parts.as_slice() {
            [kind, name] => (*kind, *name),
            [_, _, _] => {
                return Err(format!(
                    "{value:?}: a target is in the resource's own namespace (Istio refuses cross-namespace references): give <kind>/<name> and the namespace with --namespace"
                ))
            }
            _ => return Err(format!("{value:?}: {}", usage())),
        };
        let Some((kind, group)) = TARGET_KINDS
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(kind))
        else {
            return Err(format!(
                "{value:?}: {kind:?} is not a kind a WasmPlugin or TrafficExtension can target; kinds: {}",
                accepted_kinds()
            ));
        };
        if !is_object_name(name) {
            return Err(format!(
                "{value:?}: {name:?} is not a Kubernetes object name (lowercase letters, digits, '-' and '.', at most 253); {}",
                usage()
            ));
        }
        Ok(Self {
            group: (*group).into(),
            kind: (*kind).into(),
            name: name.into(),
        })
    }
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
    /// The gateway pods' labels; unused when `target_refs` is not empty.
    pub selector: Vec<(String, String)>,
    /// The Gateway API gateways, waypoints or services the plugin attaches to, instead of
    /// `selector` (the CRDs allow one or the other).
    pub target_refs: Vec<TargetRef>,
    /// The app host; sets `redirect_url` when the configuration has none.
    pub host: Option<String>,
    /// The gateway Deployment whose environment carries moved secrets; `None`: derived from the
    /// target (see [`gateway_deployments`]).
    pub gateway: Option<String>,
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
            target_refs: Vec::new(),
            host: None,
            gateway: None,
        }
    }
}

/// The Deployment of the ingress gateway Istio's charts install.
pub const INGRESS_GATEWAY: &str = "istio-ingressgateway";

/// The Deployments whose `istio-proxy` environment carries moved secrets: `options.gateway` when
/// given; else the ingress gateway's for a `selector`; else, for `Gateway/<name>` targets, the
/// Deployment Istio creates for a Gateway of class `istio`, `<name>-istio` (a waypoint's, class
/// `istio-waypoint`, is `<name>`, and the `gateway.istio.io/name-override` annotation renames
/// either: then `gateway` must be given). Other targets have no Deployment of their own: `Err`.
pub fn gateway_deployments(options: &Options) -> Result<Vec<String>, String> {
    if let Some(g) = &options.gateway {
        return Ok(vec![g.clone()]);
    }
    if options.target_refs.is_empty() {
        return Ok(vec![INGRESS_GATEWAY.into()]);
    }
    let other: Vec<String> = options
        .target_refs
        .iter()
        .filter(|t| t.kind != "Gateway")
        .map(|t| t.to_string())
        .collect();
    if !other.is_empty() {
        return Err(format!(
            "no gateway Deployment follows from {}: give --gateway DEPLOYMENT (in namespace {}) for the environment that carries the moved secrets",
            other.join(", "),
            options.namespace
        ));
    }
    Ok(options
        .target_refs
        .iter()
        .map(|t| format!("{}-istio", t.name))
        .collect())
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
/// otherwise read the secrets. `Err` when there are secrets to move and no gateway Deployment to
/// carry them (see [`gateway_deployments`]).
pub fn move_secrets(config: &mut Value, options: &Options) -> Result<MovedSecrets, String> {
    let Some(map) = config.as_object_mut() else {
        return Ok(MovedSecrets::default());
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
        return Ok(MovedSecrets::default());
    }
    let deployments = gateway_deployments(options)?;
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
    let mut docs = vec![secret];
    docs.extend(deployments.iter().map(|d| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": d, "namespace": options.namespace},
            "spec": {"template": {"spec": {"containers": [{"name": "istio-proxy", "env": env}]}}},
        })
    }));
    Ok(MovedSecrets {
        moved: values.into_iter().map(|(k, var, _)| (k, var)).collect(),
        docs,
        deployments,
    })
}

/// The documents, in order: the plugin resource, then a ServiceEntry and DestinationRule per
/// IdP host and port; and the secrets moved out of `pluginConfig`. `Err` lists the
/// configuration's problems.
pub fn render(config: &Value, options: &Options) -> Result<Rendered, Vec<String>> {
    let mut config = config.clone();
    if options.target_refs.len() > MAX_TARGET_REFS {
        return Err(vec![format!(
            "targetRefs: {} targets, the CRDs accept at most {MAX_TARGET_REFS}",
            options.target_refs.len()
        )]);
    }
    let secrets = move_secrets(&mut config, options).map_err(|e| vec![e])?;
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

    // `selector` and `targetRefs` are mutually exclusive (the CRDs' CEL rule).
    let (attach_key, attach) = if options.target_refs.is_empty() {
        let labels: serde_json::Map<String, Value> = options
            .selector
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        ("selector", json!({ "matchLabels": labels }))
    } else {
        let mut refs: Vec<Value> = Vec::new();
        for t in &options.target_refs {
            let v = t.to_json();
            if !refs.contains(&v) {
                refs.push(v);
            }
        }
        ("targetRefs", Value::Array(refs))
    };
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
            let mut spec = json!({ attach_key: attach, "phase": "AUTHN" });
            if let (Some(s), Some(w)) = (spec.as_object_mut(), wasm.as_object()) {
                s.extend(w.clone());
            }
            json!({"apiVersion": "extensions.istio.io/v1alpha1", "kind": "WasmPlugin", "metadata": metadata, "spec": spec})
        }
        Kind::TrafficExtension => json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "kind": "TrafficExtension",
            "metadata": metadata,
            "spec": { attach_key: attach, "phase": "AUTHN", "wasm": wasm },
        }),
    };
    let mut docs = vec![plugin];
    // A plugin for a GatewayClass lives in the root namespace and applies to that class's
    // gateways in every namespace: they must all see the IdP's ServiceEntry.
    let export_to = if options.target_refs.iter().any(|t| t.kind == "GatewayClass") {
        "*"
    } else {
        "."
    };
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
                "exportTo": [export_to],
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
                    "exportTo": [export_to],
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

    fn target(s: &str) -> TargetRef {
        s.parse().unwrap_or_else(|e: String| unreachable!("{e}"))
    }

    fn inline_secrets() -> Value {
        let mut inline = okta();
        if let Some(m) = inline.as_object_mut() {
            m.remove("client_secret_env");
            m.insert("client_secret".into(), json!("cl13nt-s3cr3t"));
        }
        inline
    }

    #[test]
    fn target_refs_name_each_kind_with_its_group() {
        for (value, group, kind, name) in [
            (
                "Gateway/public",
                "gateway.networking.k8s.io",
                "Gateway",
                "public",
            ),
            (
                "GatewayClass/istio",
                "gateway.networking.k8s.io",
                "GatewayClass",
                "istio",
            ),
            ("Service/reviews", "", "Service", "reviews"),
            (
                "ServiceEntry/idp.example",
                "networking.istio.io",
                "ServiceEntry",
                "idp.example",
            ),
            // The kind as typed in any case is the kind Kubernetes spells.
            (
                "gateway/public",
                "gateway.networking.k8s.io",
                "Gateway",
                "public",
            ),
        ] {
            assert_eq!(
                target(value).to_json(),
                json!({"group": group, "kind": kind, "name": name}),
                "{value}"
            );
        }
    }

    #[test]
    fn with_target_refs_neither_resource_carries_a_selector() {
        for kind in [Kind::WasmPlugin, Kind::TrafficExtension] {
            let options = Options {
                kind,
                image: "r/x:1".into(),
                namespace: "apps".into(),
                target_refs: vec![target("Gateway/public"), target("Service/reviews")],
                ..Options::default()
            };
            let r = render(&okta(), &options).unwrap_or_else(|e| unreachable!("{e:?}"));
            let spec = &r.docs[0]["spec"];
            assert!(spec.get("selector").is_none(), "{spec}");
            assert_eq!(
                spec["targetRefs"],
                json!([
                    {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"},
                    {"group": "", "kind": "Service", "name": "reviews"},
                ])
            );
            assert_eq!(spec["phase"], "AUTHN");
            // Everything in the target's namespace, the IdP resources visible there only.
            for d in &r.docs {
                assert_eq!(d["metadata"]["namespace"], "apps");
            }
            assert_eq!(r.docs[1]["spec"]["exportTo"], json!(["."]));
        }
        // Without targets, the ingress gateway's selector and no targetRefs.
        let r = render(
            &okta(),
            &Options {
                image: "r/x:1".into(),
                ..Options::default()
            },
        )
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(
            r.docs[0]["spec"]["selector"],
            json!({"matchLabels": {"istio": "ingressgateway"}})
        );
        assert!(r.docs[0]["spec"].get("targetRefs").is_none());
    }

    #[test]
    fn a_repeated_target_is_rendered_once_and_more_than_the_crd_allows_are_refused() {
        let options = Options {
            image: "r/x:1".into(),
            target_refs: vec![target("Gateway/public"), target("Gateway/public")],
            ..Options::default()
        };
        let r = render(&okta(), &options).unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(
            r.docs[0]["spec"]["targetRefs"].as_array().map(Vec::len),
            Some(1)
        );
        let many = Options {
            target_refs: (0..=MAX_TARGET_REFS)
                .map(|i| target(&format!("Gateway/gw-{i}")))
                .collect(),
            ..options
        };
        let e = render(&okta(), &many).err().unwrap_or_default();
        assert!(e.iter().any(|l| l.contains("at most 16")), "{e:?}");
    }

    #[test]
    fn a_gateway_class_target_exports_the_idp_resources_to_every_namespace() {
        let options = Options {
            image: "r/x:1".into(),
            target_refs: vec![target("GatewayClass/istio")],
            ..Options::default()
        };
        let r = render(&okta(), &options).unwrap_or_else(|e| unreachable!("{e:?}"));
        for d in &r.docs[1..] {
            assert_eq!(d["spec"]["exportTo"], json!(["*"]), "{}", d["kind"]);
        }
    }

    #[test]
    fn bad_target_refs_are_refused_with_the_accepted_kinds() {
        for (value, says) in [
            ("Deployment/public", "\"Deployment\" is not a kind"),
            ("HTTPRoute/web", "\"HTTPRoute\" is not a kind"),
            ("Gateway", "expected <kind>/<name>"),
            ("Gateway/", "is not a Kubernetes object name"),
            ("/public", "\"\" is not a kind"),
            ("Gateway/Public", "is not a Kubernetes object name"),
            ("Gateway/pub lic", "is not a Kubernetes object name"),
            ("Gateway/-public", "is not a Kubernetes object name"),
            ("apps/Gateway/public", "cross-namespace"),
            ("a/b/c/d", "expected <kind>/<name>"),
        ] {
            let e = value
                .parse::<TargetRef>()
                .err()
                .unwrap_or_else(|| unreachable!("{value} accepted"));
            assert!(e.contains(says), "{value}: {e}");
            if !says.contains("cross-namespace") {
                assert!(
                    e.contains("Gateway, GatewayClass, Service, ServiceEntry"),
                    "{value}: {e}"
                );
            }
        }
        assert!(format!("Gateway/{}", "a".repeat(254))
            .parse::<TargetRef>()
            .is_err());
    }

    #[test]
    fn the_gateway_deployment_follows_the_target_unless_given() {
        let with = |targets: &[&str], gateway: Option<&str>| Options {
            image: "r/x:1".into(),
            target_refs: targets.iter().map(|t| target(t)).collect(),
            gateway: gateway.map(str::to_string),
            ..Options::default()
        };
        let deployments = |o: &Options| gateway_deployments(o).unwrap_or_default();
        assert_eq!(deployments(&with(&[], None)), vec!["istio-ingressgateway"]);
        // Istio names a Gateway's Deployment <name>-<class>; the class is `istio`.
        assert_eq!(
            deployments(&with(&["Gateway/public"], None)),
            vec!["public-istio"]
        );
        assert_eq!(
            deployments(&with(&["Gateway/public", "Gateway/internal"], None)),
            vec!["public-istio", "internal-istio"]
        );
        assert_eq!(
            deployments(&with(&["Gateway/waypoint"], Some("waypoint"))),
            vec!["waypoint"]
        );
        assert_eq!(
            deployments(&with(&["Service/reviews"], Some("waypoint"))),
            vec!["waypoint"]
        );
        let e = gateway_deployments(&with(&["Gateway/public", "Service/reviews"], None))
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("Service/reviews") && e.contains("--gateway"),
            "{e}"
        );

        // The patch carries the derived name, in the Gateway's namespace.
        let mut o = with(&["Gateway/public"], None);
        o.namespace = "apps".into();
        let r = render(&inline_secrets(), &o).unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(r.secrets.deployments, vec!["public-istio"]);
        let patch = &r.secrets.docs[1];
        assert_eq!(
            (
                &patch["kind"],
                &patch["metadata"]["name"],
                &patch["metadata"]["namespace"]
            ),
            (&json!("Deployment"), &json!("public-istio"), &json!("apps"))
        );
        assert_eq!(r.secrets.docs[0]["metadata"]["namespace"], "apps");
        // A waypoint's Service has no Deployment of its own: moving secrets needs --gateway,
        // nothing else does.
        let o = with(&["Service/reviews"], None);
        let e = render(&inline_secrets(), &o).err().unwrap_or_default();
        assert!(e.iter().any(|l| l.contains("--gateway")), "{e:?}");
        assert!(render(&okta(), &o).is_ok());
    }
}
