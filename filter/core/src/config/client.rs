//! The OAuth client and its secret, how it authenticates at the token endpoint, where the IdP
//! sends the browser back (`redirect_url`, `proxy_prefix`), the scope and PKCE.

use serde::Deserialize;
use url::Url;

use super::{Check, EnvLookup};
use crate::secret::ClientSecret;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawClient {
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    client_auth_method: Option<String>,
    redirect_url: Option<String>,
    proxy_prefix: Option<String>,
    scope: Option<String>,
    code_challenge_method: Option<String>,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1, OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    Basic,
    Post,
}

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub id: String,
    pub secret: ClientSecret,
    pub auth_method: ClientAuthMethod,
    pub redirect_url: Option<Url>,
    pub proxy_prefix: String,
    pub scope: String,
    pub pkce: bool,
}

impl ClientSettings {
    /// The authorization endpoint callback path, e.g. `/oauth2/callback`.
    pub fn callback_path(&self) -> String {
        format!("{}/callback", self.proxy_prefix)
    }
}

pub(super) fn build(
    raw: RawClient,
    env: EnvLookup<'_>,
    check: &mut Check,
) -> Option<ClientSettings> {
    let id = raw.client_id.unwrap_or_default();
    if id.is_empty() {
        check.fail("client_id", "is required");
    }
    let secret = check.secret(
        ("client_secret", raw.client_secret),
        ("client_secret_env", raw.client_secret_env),
        env,
    );
    let auth_method = match raw.client_auth_method.as_deref() {
        None | Some("client_secret_basic") => ClientAuthMethod::Basic,
        Some("client_secret_post") => ClientAuthMethod::Post,
        Some(other) => {
            check.fail(
                "client_auth_method",
                format!("{other:?} is not supported; use \"client_secret_basic\" or \"client_secret_post\""),
            );
            ClientAuthMethod::Basic
        }
    };
    let (redirect_url, proxy_prefix) = callback(raw.redirect_url, raw.proxy_prefix, check);
    let scope = raw
        .scope
        .unwrap_or_else(|| "openid email profile".to_string());
    if !scope.split(' ').any(|s| s == "openid") {
        check.fail("scope", format!("{scope:?} must include \"openid\""));
    }
    let pkce = match raw.code_challenge_method.as_deref() {
        None | Some("S256") => true,
        Some("") => false,
        Some(other) => {
            check.fail(
                "code_challenge_method",
                format!(
                    "{other:?} is not supported; use \"S256\" (default) or \"\" to turn PKCE off"
                ),
            );
            true
        }
    };
    Some(ClientSettings {
        id,
        secret: ClientSecret::new(secret?),
        auth_method,
        redirect_url,
        proxy_prefix,
        scope,
        pkce,
    })
}

/// Where the filter answers (`proxy_prefix`) and the callback URL, which must be under it.
fn callback(
    redirect_url: Option<String>,
    proxy_prefix: Option<String>,
    check: &mut Check,
) -> (Option<Url>, String) {
    let redirect_url = redirect_url.and_then(|r| check.absolute_url("redirect_url", &r));
    let proxy_prefix = proxy_prefix.unwrap_or_else(|| "/oauth2".to_string());
    if !proxy_prefix.starts_with('/')
        || proxy_prefix.ends_with('/')
        || proxy_prefix.contains(['?', '#', ' '])
    {
        check.fail(
            "proxy_prefix",
            format!("{proxy_prefix:?} must start with '/' and not end with '/' (e.g. \"/oauth2\")"),
        );
    }
    if let Some(r) = &redirect_url {
        if r.path() != format!("{proxy_prefix}/callback") {
            check.fail(
                "redirect_url",
                format!("path must be {proxy_prefix}/callback (proxy_prefix + /callback), the path the filter answers"),
            );
        }
    }
    (redirect_url, proxy_prefix)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, minimal, problems, with, COOKIE_SECRET};
    use super::super::Config;
    use serde_json::json;

    #[test]
    fn each_invalid_client_option_is_reported_with_its_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "client_auth_method",
                json!("private_key_jwt"),
                "not supported",
            ),
            ("code_challenge_method", json!("plain"), "not supported"),
            ("redirect_url", json!("/oauth2/callback"), "not a URL"),
            (
                "redirect_url",
                json!("https://app.example.com/cb"),
                "path must be /oauth2/callback",
            ),
            ("proxy_prefix", json!("oauth2/"), "must start with '/'"),
            ("scope", json!("email"), "must include \"openid\""),
            ("client_id", json!(""), "is required"),
            ("client_secret", json!(""), "is empty"),
        ];
        assert_each_refused(&cases);
    }

    #[test]
    fn secrets_come_from_the_vm_environment() {
        let mut v = minimal();
        if let Some(m) = v.as_object_mut() {
            m.remove("client_secret");
            m.remove("cookie_secret");
            m.insert("client_secret_env".into(), json!("OIDC_CLIENT_SECRET"));
            m.insert("cookie_secret_env".into(), json!("OIDC_COOKIE_SECRET"));
        }
        let env = |k: &str| match k {
            "OIDC_CLIENT_SECRET" => Some("from-env".to_string()),
            "OIDC_COOKIE_SECRET" => Some(COOKIE_SECRET.to_string()),
            _ => None,
        };
        let c = Config::parse(v.to_string().as_bytes(), &env);
        assert_eq!(
            c.map(|c| c.client.secret.expose().to_string()).ok(),
            Some("from-env".into())
        );
        let missing = Config::parse(v.to_string().as_bytes(), &|_| None);
        let msg = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.contains(
                "client_secret_env: environment variable \"OIDC_CLIENT_SECRET\" is not set"
            ),
            "{msg}"
        );
        assert!(msg.contains("cookie_secret_env"), "{msg}");
    }

    #[test]
    fn secret_and_env_together_is_refused() {
        let ps = problems(&with("client_secret_env", json!("X")));
        assert_eq!(
            ps,
            vec![(
                "client_secret".into(),
                "set client_secret or client_secret_env, not both".into()
            )]
        );
    }
}
