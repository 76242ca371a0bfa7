//! `migrate`: an OAuth2-Proxy Helm values file (`config` and `extraArgs`) to an oidc-gate
//! configuration, with a note for every option that has no equivalent or is no longer needed.
//! Secrets move out of the configuration into environment variables, which the WasmPlugin's
//! `vmConfig.env` fills from a Kubernetes Secret.

use serde_json::{json, Map, Value};

pub const CLIENT_SECRET_ENV: &str = "OIDC_CLIENT_SECRET";
pub const COOKIE_SECRET_ENV: &str = "OIDC_COOKIE_SECRET";

#[derive(Debug, Default)]
pub struct Migration {
    pub config: Value,
    /// Environment variables to put in a Secret: (name, value).
    pub secrets: Vec<(String, String)>,
    pub notes: Vec<String>,
}

#[derive(Clone, Copy)]
enum Shape {
    Bool,
    Text,
    List,
}

/// OAuth2-Proxy flag → (oidc-gate option, shape).
fn option_for(flag: &str) -> Option<(&'static str, Shape)> {
    use Shape::*;
    Some(match flag {
        "oidc-issuer-url" => ("oidc_issuer_url", Text),
        "client-id" => ("client_id", Text),
        "redirect-url" => ("redirect_url", Text),
        "proxy-prefix" => ("proxy_prefix", Text),
        "scope" => ("scope", Text),
        "code-challenge-method" => ("code_challenge_method", Text),
        "cookie-name" => ("cookie_name", Text),
        "cookie-domain" | "cookie-domains" => ("cookie_domains", List),
        "cookie-path" => ("cookie_path", Text),
        "cookie-secure" => ("cookie_secure", Bool),
        "cookie-httponly" => ("cookie_httponly", Bool),
        "cookie-samesite" => ("cookie_samesite", Text),
        "cookie-expire" => ("cookie_expire", Text),
        "cookie-refresh" => ("cookie_refresh", Text),
        "email-domain" | "email-domains" => ("email_domains", List),
        "allowed-group" | "allowed-groups" => ("allowed_groups", List),
        "oidc-email-claim" => ("oidc_email_claim", Text),
        "oidc-groups-claim" => ("oidc_groups_claim", Text),
        "user-id-claim" => ("user_id_claim", Text),
        "insecure-oidc-allow-unverified-email" => ("insecure_oidc_allow_unverified_email", Bool),
        "set-xauthrequest" => ("set_xauthrequest", Bool),
        "pass-access-token" => ("pass_access_token", Bool),
        "set-authorization-header" => ("set_authorization_header", Bool),
        "pass-user-headers" => ("pass_user_headers", Bool),
        "prefer-email-to-user" => ("prefer_email_to_user", Bool),
        "api-route" | "api-routes" => ("api_routes", List),
        "skip-auth-route" | "skip-auth-routes" => ("skip_auth_routes", List),
        "whitelist-domain" | "whitelist-domains" => ("whitelist_domains", List),
        "skip-jwt-bearer-tokens" => ("skip_jwt_bearer_tokens", Bool),
        "extra-jwt-issuers" => ("extra_jwt_issuers", List),
        "skip-oidc-discovery" => ("skip_oidc_discovery", Bool),
        "login-url" => ("login_url", Text),
        "redeem-url" => ("redeem_url", Text),
        "oidc-jwks-url" => ("oidc_jwks_url", Text),
        "prompt" => ("prompt", Text),
        "acr-values" => ("acr_values", Text),
        _ => return None,
    })
}

/// Flags that describe OAuth2-Proxy as a separate server: not needed inside the gateway.
fn not_needed(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "http-address" | "https-address" | "metrics-address" => {
            "oidc-gate listens nowhere: it runs inside the gateway's Envoy"
        }
        "upstream" | "upstreams" => "the gateway routes to the app; oidc-gate only decides",
        "reverse-proxy" => "the gateway is the reverse proxy",
        "skip-provider-button" => {
            "oidc-gate always goes straight to the IdP (there is no sign-in button page)"
        }
        "provider" => "oidc-gate speaks OpenID Connect to any provider: no provider type to choose",
        "silence-ping-logging" | "request-logging" | "auth-logging" | "standard-logging" => {
            "logging is Envoy's (the wasm logger)"
        }
        _ => return None,
    })
}

fn value_as(shape: Shape, v: &Value) -> Option<Value> {
    match (shape, v) {
        (Shape::Bool, Value::Bool(b)) => Some(json!(b)),
        (Shape::Bool, Value::String(s)) => s.parse::<bool>().ok().map(Value::Bool),
        (Shape::Text, Value::String(s)) => Some(json!(s)),
        (Shape::Text, Value::Number(n)) => Some(json!(n.to_string())),
        (Shape::List, Value::Array(a)) => Some(json!(a
            .iter()
            .filter_map(|x| x.as_str())
            .collect::<Vec<_>>())),
        (Shape::List, Value::String(s)) => {
            Some(json!(s.split(',').map(str::trim).collect::<Vec<_>>()))
        }
        _ => None,
    }
}

pub fn migrate(values_yaml: &str) -> Result<Migration, String> {
    let values: Value = serde_yaml::from_str(values_yaml).map_err(|e| format!("not YAML: {e}"))?;
    let mut out = Map::new();
    let mut m = Migration::default();
    let config = &values["config"];
    if let Some(id) = config["clientID"].as_str() {
        out.insert("client_id".into(), json!(id));
    }
    if let Some(secret) = config["clientSecret"].as_str() {
        out.insert("client_secret_env".into(), json!(CLIENT_SECRET_ENV));
        m.secrets.push((CLIENT_SECRET_ENV.into(), secret.into()));
    }
    if let Some(secret) = config["cookieSecret"].as_str() {
        out.insert("cookie_secret_env".into(), json!(COOKIE_SECRET_ENV));
        m.secrets.push((COOKIE_SECRET_ENV.into(), secret.into()));
    }
    if config.get("configFile").is_some_and(|c| !c.is_boolean()) {
        m.notes.push(
            "config.configFile: translate its options by hand (same names, snake_case)".into(),
        );
    }
    if let Some(args) = values["extraArgs"].as_object() {
        for (flag, v) in args {
            if let Some((option, shape)) = option_for(flag) {
                match value_as(shape, v) {
                    Some(converted) => {
                        out.insert(option.into(), converted);
                    }
                    None => m.notes.push(format!(
                        "{flag}: the value {v} could not be read as {option}"
                    )),
                }
            } else if let Some(why) = not_needed(flag) {
                m.notes.push(format!("{flag}: not needed — {why}"));
            } else {
                m.notes
                    .push(format!("{flag}: no oidc-gate equivalent; left out"));
            }
        }
    }
    m.config = Value::Object(out);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_example_migrates_and_validates() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oauth2-proxy-values.yaml"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let m = migrate(&text).unwrap_or_default();
        let c = &m.config;
        assert_eq!(
            c["oidc_issuer_url"],
            "https://dev-123456.okta.com/oauth2/default"
        );
        assert_eq!(c["client_id"], "0oa1b2c3d4e5f6g7h8i9");
        assert_eq!(c["client_secret_env"], CLIENT_SECRET_ENV);
        assert_eq!(c["cookie_refresh"], "1h");
        assert_eq!(c["cookie_expire"], "4h");
        assert_eq!(c["cookie_name"], "_oauth2_proxy_istio_ingressgateway");
        assert_eq!(c["allowed_groups"], json!(["admins"]));
        assert_eq!(c["email_domains"], json!(["*"]));
        assert_eq!(c["set_authorization_header"], true);
        assert!(
            c.get("client_secret").is_none(),
            "secrets stay out of pluginConfig"
        );
        assert_eq!(m.secrets.len(), 2);
        for flag in [
            "http-address",
            "upstream",
            "skip-provider-button",
            "provider",
        ] {
            assert!(
                m.notes.iter().any(|n| n.starts_with(flag)),
                "{flag}: {:?}",
                m.notes
            );
        }
        assert!(
            crate::validate::check(c).is_empty(),
            "{:?}",
            crate::validate::check(c)
        );
    }
}
