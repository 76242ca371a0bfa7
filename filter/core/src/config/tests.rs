//! The configuration as a whole: defaults, the option names, messages that name the key, and
//! what is required. Each part's own rules are tested beside it.

use super::*;
use serde_json::json;

pub const COOKIE_SECRET: &str = "8Lc3wVw0dY0m4m1v2F1ZcC0xN6r1yQn2cQ0b9d7y8Xo=";

pub fn minimal() -> serde_json::Value {
    json!({
        "oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default",
        "client_id": "0oa1b2c3",
        "client_secret": "s3cr3t",
        "cookie_secret": COOKIE_SECRET,
    })
}

pub fn parse(v: &serde_json::Value) -> Result<Config, ConfigError> {
    Config::parse(v.to_string().as_bytes(), &|_| None)
}

pub fn problems(v: &serde_json::Value) -> Vec<(String, String)> {
    match parse(v) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.into_iter().map(|p| (p.key, p.rule)).collect(),
    }
}

/// Each (key, value, words) case: the configuration with `key` set to `value` is refused with a
/// problem for `key` whose rule contains `words`.
pub fn assert_each_refused(cases: &[(&str, serde_json::Value, &str)]) {
    for (key, value, needle) in cases {
        let ps = problems(&with(key, value.clone()));
        assert!(
            ps.iter().any(|(k, r)| k == key && r.contains(needle)),
            "{key}={value}: {ps:?}"
        );
    }
}

pub fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
    let mut v = minimal();
    if let Some(m) = v.as_object_mut() {
        m.insert(key.to_string(), value);
    }
    v
}

#[test]
fn minimal_config_gets_oauth2_proxy_defaults() {
    let c = parse(&minimal());
    let Ok(c) = c else { unreachable!("{c:?}") };
    assert_eq!(c.default_provider().client.proxy_prefix, "/oauth2");
    assert_eq!(c.default_provider().client.scope, "openid email profile");
    assert!(c.default_provider().client.pkce);
    assert!(matches!(
        c.default_provider().client.auth,
        ClientAuth::SecretBasic(_)
    ));
    assert_eq!(c.cookie.name, "_oauth2_proxy");
    assert_eq!(c.cookie.path, "/");
    assert!(c.cookie.secure && c.cookie.httponly);
    assert_eq!(c.cookie.samesite, SameSite::Lax);
    assert_eq!(c.cookie.expire, Duration::from_secs(168 * 3600));
    assert_eq!(c.rules.policies.default_rules().email_domains, vec!["*"]);
    assert!(c.rules.policies.default_rules().allowed_groups.is_empty());
    assert!(!c.rules.skip_auth_preflight);
    assert!(
        !c.default_provider().bearer.skip_jwt_bearer_tokens
            && !c.default_provider().login.sign_out_at_idp
    );
    assert!(!c.headers.pass_user_headers);
    let claims = &c.default_provider().claims;
    assert_eq!(claims.email.as_str(), "email");
    assert_eq!(claims.groups.as_str(), "groups");
    assert_eq!(claims.user_id.as_str(), "sub");
    assert!(c.headers.set_xauthrequest);
    assert!(!c.headers.pass_access_token && !c.headers.set_authorization_header);
    assert_eq!(
        c.default_provider().provider.idp_timeout,
        Duration::from_secs(5)
    );
    let ProviderSource::Discovery(d) = &c.default_provider().provider.source else {
        unreachable!()
    };
    assert_eq!(d.cluster, "outbound|443||dev-123456.okta.com");
    assert_eq!(d.authority, "dev-123456.okta.com");
    assert_eq!(d.path, "/oauth2/default/.well-known/openid-configuration");
}

#[test]
fn the_option_names_come_from_the_parts_types_each_once() {
    let names = option_names();
    for name in [
        "oidc_issuer_url",
        "client_secret_env",
        "cookie_samesite",
        "policies",
        "claim_headers",
        "acr_values",
        "extra_jwt_issuers",
        "skip_auth_preflight",
    ] {
        assert!(names.contains(&name), "{name}");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "no option belongs to two parts");
    // Every name is accepted (null: left out), none reported as unknown.
    for name in &names {
        let ps = problems(&with(name, json!(null)));
        assert!(
            ps.iter()
                .all(|(_, rule)| !rule.contains("not an oidc-gate option")),
            "{name}: {ps:?}"
        );
    }
}

#[test]
fn unknown_key_is_named_with_a_hint() {
    assert_eq!(
        problems(&with("cookie-secure", json!(true))),
        vec![(
            "cookie-secure".to_string(),
            "is not an oidc-gate option; the config-file name is \"cookie_secure\"".to_string()
        )]
    );
    assert_eq!(problems(&with("bogus", json!(1)))[0].0, "bogus");
}

#[test]
fn wrong_type_names_the_key() {
    let ps = problems(&with("cookie_secure", json!("yes")));
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].0, "cookie_secure");
    assert!(ps[0].1.contains("expected a boolean"), "{ps:?}");
}

#[test]
fn a_type_error_never_echoes_the_value() {
    for (key, value) in [
        ("client_secret", json!(12345987)),
        ("cookie_secret", json!(["s3cr3t-in-a-list"])),
        ("cookie_secret_previous", json!({"k": "old-s3cr3t"})),
    ] {
        let v = with(key, value.clone());
        let msg = parse(&v).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(key), "{msg}");
        for needle in ["12345987", "s3cr3t-in-a-list", "old-s3cr3t"] {
            assert!(!msg.contains(needle), "{key}: {msg}");
        }
    }
}

#[test]
fn not_json_or_not_object_is_refused() {
    assert!(Config::parse(b"{", &|_| None).is_err());
    assert!(Config::parse(b"[]", &|_| None).is_err());
}

#[test]
fn required_options_are_all_reported_at_once() {
    let ps = problems(&json!({}));
    let keys: Vec<&str> = ps.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "oidc_issuer_url",
            "client_id",
            "client_secret",
            "cookie_secret"
        ]
    );
    let msg = parse(&json!({}))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        msg.starts_with("invalid oidc-gate configuration: oidc_issuer_url: is required"),
        "{msg}"
    );
}

#[test]
fn type_errors_of_several_parts_are_all_reported() {
    let mut v = with("cookie_secure", json!("yes"));
    v["skip_jwt_bearer_tokens"] = json!(1);
    let mut keys: Vec<String> = problems(&v).into_iter().map(|(k, _)| k).collect();
    keys.sort();
    assert_eq!(keys, vec!["cookie_secure", "skip_jwt_bearer_tokens"]);
}

#[test]
fn config_debug_never_shows_secrets() {
    let c = parse(&minimal());
    let text = format!("{c:?}");
    assert!(
        !text.contains("s3cr3t") && !text.contains(COOKIE_SECRET),
        "{text}"
    );
}
