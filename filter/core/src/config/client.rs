//! The OAuth client and its credential (a secret, or a private key for `private_key_jwt`), how
//! it authenticates at the token endpoint, where the IdP sends the browser back
//! (`redirect_url`, `proxy_prefix`), the scope and PKCE.

use serde::Deserialize;
use url::Url;

use super::{Check, EnvLookup};
use crate::client_key::ClientKey;
use crate::secret::ClientSecret;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawClient {
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    client_auth_method: Option<String>,
    client_private_key: Option<String>,
    client_private_key_env: Option<String>,
    client_private_key_id: Option<String>,
    redirect_url: Option<String>,
    proxy_prefix: Option<String>,
    scope: Option<String>,
    code_challenge_method: Option<String>,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1, OIDC Core §9), with
/// its credential.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret (the default).
    SecretBasic(ClientSecret),
    /// `client_secret_post`: id and secret in the form.
    SecretPost(ClientSecret),
    /// `private_key_jwt`: a JWT signed with the client's key (RFC 7523).
    PrivateKeyJwt(ClientKey),
}

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub id: String,
    pub auth: ClientAuth,
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

/// `top_prefix`: the top level's `proxy_prefix`, for an entry of `providers` (which cannot set
/// its own: the filter answers at one prefix).
pub(super) fn build(
    raw: RawClient,
    env: EnvLookup<'_>,
    top_prefix: Option<&str>,
    check: &mut Check,
) -> Option<ClientSettings> {
    let id = raw.client_id.clone().unwrap_or_default();
    if id.is_empty() {
        check.fail("client_id", "is required");
    }
    let auth = credential(&raw, env, check);
    let prefix = top_prefix.map(str::to_string).or(raw.proxy_prefix);
    let (redirect_url, proxy_prefix) = callback(raw.redirect_url, prefix, check);
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
        auth: auth?,
        redirect_url,
        proxy_prefix,
        scope,
        pkce,
    })
}

/// The credential `client_auth_method` asks for; the other kind's options are refused, so a
/// forgotten secret never lingers beside a key.
fn credential(raw: &RawClient, env: EnvLookup<'_>, check: &mut Check) -> Option<ClientAuth> {
    let secret_given = raw.client_secret.is_some() || raw.client_secret_env.is_some();
    let key_given = raw.client_private_key.is_some()
        || raw.client_private_key_env.is_some()
        || raw.client_private_key_id.is_some();
    let secret = |check: &mut Check| {
        if key_given {
            check.fail(
                "client_private_key",
                "is only used with client_auth_method \"private_key_jwt\"",
            );
        }
        check
            .secret(
                ("client_secret", raw.client_secret.clone()),
                ("client_secret_env", raw.client_secret_env.clone()),
                env,
            )
            .map(ClientSecret::new)
    };
    match raw.client_auth_method.as_deref() {
        None | Some("client_secret_basic") => secret(check).map(ClientAuth::SecretBasic),
        Some("client_secret_post") => secret(check).map(ClientAuth::SecretPost),
        Some("private_key_jwt") => {
            if secret_given {
                check.fail(
                    "client_secret",
                    "is not used with client_auth_method \"private_key_jwt\"; remove it",
                );
            }
            let pem = check.secret(
                ("client_private_key", raw.client_private_key.clone()),
                ("client_private_key_env", raw.client_private_key_env.clone()),
                env,
            )?;
            match ClientKey::from_pem(&pem, raw.client_private_key_id.as_deref()) {
                Ok(key) => Some(ClientAuth::PrivateKeyJwt(key)),
                Err(e @ crate::client_key::KeyError::BadKid) => {
                    check.fail("client_private_key_id", e.to_string());
                    None
                }
                Err(e) => {
                    check.fail("client_private_key", e.to_string());
                    None
                }
            }
        }
        Some("client_secret_jwt") => {
            check.fail(
                "client_auth_method",
                "\"client_secret_jwt\" is not supported: it signs with the shared secret, so it protects no more than client_secret_basic; use \"private_key_jwt\"",
            );
            None
        }
        Some(other) => {
            check.fail(
                "client_auth_method",
                format!("{other:?} is not supported; use \"client_secret_basic\" (default), \"client_secret_post\" or \"private_key_jwt\""),
            );
            None
        }
    }
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
    use super::ClientAuth;
    use crate::client_key::{ClientKey, KeyAlg};
    use serde_json::json;

    fn key_pem() -> String {
        ClientKey::generate(KeyAlg::Es256)
            .ok()
            .and_then(|k| k.private_pem())
            .unwrap_or_default()
    }

    /// `minimal()` with `private_key_jwt` and no secret.
    fn with_key(extra: serde_json::Value) -> serde_json::Value {
        let mut v = minimal();
        if let Some(m) = v.as_object_mut() {
            m.remove("client_secret");
            m.insert("client_auth_method".into(), json!("private_key_jwt"));
            if let Some(e) = extra.as_object() {
                m.extend(e.clone());
            }
        }
        v
    }

    #[test]
    fn private_key_jwt_reads_the_key_from_the_vm_environment_with_its_kid() {
        let v = with_key(json!({"client_private_key_env": "OIDC_CLIENT_KEY",
                                "client_private_key_id": "k1"}));
        let pem = key_pem();
        let env = |k: &str| (k == "OIDC_CLIENT_KEY").then(|| pem.clone());
        let c = Config::parse(v.to_string().as_bytes(), &env);
        let kid = c
            .ok()
            .and_then(|c| match &c.default_provider().client.auth {
                ClientAuth::PrivateKeyJwt(k) => Some(k.kid().to_string()),
                _ => None,
            });
        assert_eq!(kid.as_deref(), Some("k1"));
    }

    #[test]
    fn private_key_jwt_refuses_a_secret_beside_the_key_a_missing_key_and_a_bad_one() {
        let both = with_key(json!({"client_private_key": key_pem(), "client_secret": "s"}));
        assert_eq!(
            problems(&both),
            vec![(
                "client_secret".into(),
                "is not used with client_auth_method \"private_key_jwt\"; remove it".into()
            )]
        );
        let none = problems(&with_key(json!({})));
        assert_eq!(none.len(), 1);
        assert!(none[0].1.contains("is required"), "{none:?}");
        let bad = problems(&with_key(
            json!({"client_private_key": "-----BEGIN RSA-----"}),
        ));
        assert_eq!(bad.len(), 1);
        assert!(bad[0].1.contains("PKCS#8 PEM"), "{bad:?}");
    }

    #[test]
    fn each_invalid_client_option_is_reported_with_its_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "client_auth_method",
                json!("tls_client_auth"),
                "not supported",
            ),
            (
                "client_auth_method",
                json!("client_secret_jwt"),
                "use \"private_key_jwt\"",
            ),
            (
                "client_private_key",
                json!("-----BEGIN PRIVATE KEY-----"),
                "only used with client_auth_method \"private_key_jwt\"",
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
            c.ok()
                .and_then(|c| match &c.default_provider().client.auth {
                    ClientAuth::SecretBasic(s) => Some(s.expose().to_string()),
                    _ => None,
                }),
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
