//! `validate`: a configuration (JSON) or a WasmPlugin / TrafficExtension (YAML, its
//! `pluginConfig`), checked with the filter's own parser.

use oidc_gate_core::config::Problem;
use oidc_gate_core::Config;
use serde::Deserialize;
use serde_json::Value;

use std::collections::BTreeMap;

use crate::offline_env;

/// The configuration in a file's text: a JSON object, or the `pluginConfig` of a WasmPlugin or
/// TrafficExtension document (YAML).
pub fn plugin_config(text: &str) -> Result<Value, String> {
    // YAML is a superset of JSON: one parser reads both.
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(text)
        .map(Value::deserialize)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("neither JSON nor YAML: {e}"))?;
    for doc in &docs {
        match doc["kind"].as_str() {
            Some("WasmPlugin") => return Ok(doc["spec"]["pluginConfig"].clone()),
            Some("TrafficExtension") => return Ok(doc["spec"]["wasm"]["pluginConfig"].clone()),
            Some(_) => {}
            None if doc.is_object() => return Ok(doc.clone()),
            None => {}
        }
    }
    Err("no configuration object, WasmPlugin or TrafficExtension found".into())
}

/// Every problem of a configuration. Secrets named by `*_env` options come from the gateway's
/// environment and are not checked here.
pub fn check(config: &Value) -> Vec<Problem> {
    let env = offline_env(config, BTreeMap::new());
    match Config::parse(config.to_string().as_bytes(), &env) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default",
            "client_id": "0oa1",
            "client_secret_env": "OIDC_CLIENT_SECRET",
            "cookie_secret_env": "OIDC_COOKIE_SECRET",
        })
    }

    #[test]
    fn a_table_of_broken_configurations_prints_the_expected_messages() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "oidc_issuer_url: is required"),
            (json!({"client_secret_env": null}), "client_secret: is required (or client_secret_env)"),
            (json!({"cookie-secure": true}), "cookie-secure: is not an oidc-gate option; the config-file name is \"cookie_secure\""),
            (json!({"cookie_secure": "yes"}), "cookie_secure: has the wrong type: expected a boolean"),
            (json!({"cookie_expire": "7d"}), "cookie_expire: \"7d\" has unknown unit \"d\""),
            (json!({"cookie_samesite": "loose"}), "cookie_samesite: \"loose\" must be \"lax\", \"strict\" or \"none\""),
            (json!({"skip_auth_routes": ["GET=^/x("]}), "skip_auth_routes: \"^/x(\" is not a valid regular expression"),
            (json!({"policies": [{"hosts": []}]}), "policies[0]: hosts is empty"),
            (json!({"cookie_secret_env": null, "cookie_secret": "short"}), "cookie_secret: "),
            (json!({"session_idle_timeout": "500ms"}), "session_idle_timeout: must be 0 (off) or at least 1s"),
            (json!({"allowed_claims": [{"claim": "roles"}]}), "allowed_claims: allowed_claims[0]: give either any_of or all_of"),
            (json!({"policies": [{"hosts": ["a.example"], "allowed_claims": [{"claim": "a..b", "any_of": ["x"]}]}]}), "policies[0]: policies[0].allowed_claims[0]: claim \"a..b\" has an empty name"),
            (json!({"allowed_roles": [":admin"]}), "allowed_roles: \":admin\" must be"),
            (json!({"oidc_groups_claim": "realm_access..roles"}), "oidc_groups_claim: \"realm_access..roles\" has an empty name"),
            (json!({"oidc_userinfo": "sometimes"}), "oidc_userinfo: \"sometimes\" must be"),
        ];
        for (overrides, expected) in cases {
            let mut config = minimal();
            for (k, v) in overrides.as_object().cloned().unwrap_or_default() {
                if v.is_null() {
                    config.as_object_mut().map(|m| m.remove(&k));
                } else {
                    config[k] = v;
                }
            }
            if overrides.as_object().is_some_and(|o| o.is_empty()) {
                config = json!({});
            }
            let lines: Vec<String> = check(&config)
                .iter()
                .map(|p| format!("{}: {}", p.key, p.rule))
                .collect();
            assert!(
                lines.iter().any(|l| l.starts_with(expected)),
                "{expected}\n{lines:#?}"
            );
        }
        assert!(check(&minimal()).is_empty());
        let mut full = minimal();
        for (k, v) in json!({
            "session_idle_timeout": "15m",
            "oidc_groups_claim": "realm_access.roles",
            "claim_headers": {"X-Tenant": "org.tenant"},
            "allowed_claims": [{"claim": "resource_access.app.roles", "all_of": ["a", "b"]}],
            "allowed_roles": ["admin", "app:editor"],
            "oidc_userinfo": "always",
            "profile_url": "https://dev-123456.okta.com/oauth2/default/v1/userinfo",
            "policies": [{"hosts": ["a.example"], "allowed_roles": ["ops"]}],
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
        {
            full[k] = v;
        }
        assert_eq!(check(&full).len(), 0, "{:?}", check(&full));
    }

    #[test]
    fn the_plugin_config_of_a_wasmplugin_or_traffic_extension_is_found() {
        let wp = "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nspec:\n  url: oci://x\n  pluginConfig:\n    client_id: abc\n";
        assert_eq!(
            plugin_config(wp).ok().map(|v| v["client_id"].clone()),
            Some(json!("abc"))
        );
        let te = "---\nkind: ServiceEntry\n---\nkind: TrafficExtension\nspec:\n  wasm:\n    pluginConfig:\n      client_id: def\n";
        assert_eq!(
            plugin_config(te).ok().map(|v| v["client_id"].clone()),
            Some(json!("def"))
        );
        assert!(plugin_config("kind: Deployment\n").is_err());
    }
}
