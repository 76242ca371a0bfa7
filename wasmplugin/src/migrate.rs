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
        "allowed-role" | "allowed-roles" => ("allowed_roles", List),
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
        "profile-url" => ("profile_url", Text),
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

/// One OAuth2-Proxy deployment among several behind the same gateway: its values file and the
/// hosts it served.
pub struct App<'a> {
    /// What notes call it and its provider id comes from: the values file's stem.
    pub name: &'a str,
    pub values_yaml: &'a str,
    pub hosts: Vec<String>,
}

/// The authorization options a policy carries per host.
const RULE_OPTIONS: [&str; 4] = [
    "email_domains",
    "allowed_emails",
    "allowed_groups",
    "allowed_roles",
];
const DEFAULT_PROVIDER: &str = "default";
const MAX_ID_LEN: usize = 32;

/// What a rule option means when it is not set, written out so that a policy does not inherit
/// the first app's top-level value instead.
fn rule_default(option: &str) -> Value {
    match option {
        "email_domains" => json!(["*"]),
        _ => json!([]),
    }
}

/// A provider id from an app's name: lower case, a-z 0-9 and '-', starting with a letter, at
/// most 32 characters, not one of `taken` (`-2`, `-3`… are added); "default" is refused.
fn provider_id(name: &str, taken: &[String]) -> Result<String, String> {
    let mut id = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && id.ends_with('-')) {
            id.push(c);
        }
    }
    let mut id = id.trim_matches('-').to_string();
    if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        id = if id.is_empty() {
            "app".into()
        } else {
            format!("app-{id}")
        };
    }
    if id == DEFAULT_PROVIDER {
        return Err(format!(
            "{name}: \"{DEFAULT_PROVIDER}\" is the first file's provider; rename this file"
        ));
    }
    let cut = |s: &str, len: usize| {
        let head: String = s.chars().take(len).collect();
        head.trim_end_matches('-').to_string()
    };
    let base = cut(&id, MAX_ID_LEN);
    let mut candidate = base.clone();
    let mut n = 1u32;
    while taken.contains(&candidate) {
        n = n.saturating_add(1);
        let suffix = format!("-{n}");
        candidate = format!(
            "{}{suffix}",
            cut(&base, MAX_ID_LEN.saturating_sub(suffix.len()))
        );
    }
    Ok(candidate)
}

/// The environment variable of a provider entry's client secret: `OIDC_CLIENT_SECRET_<ID>`.
fn client_secret_env(id: &str) -> String {
    format!(
        "{CLIENT_SECRET_ENV}_{}",
        id.to_ascii_uppercase().replace('-', "_")
    )
}

fn policy(hosts: &[String], provider: Option<&str>, rules: Map<String, Value>) -> Value {
    let mut p = rules;
    p.insert("hosts".into(), json!(hosts));
    if let Some(id) = provider {
        p.insert("provider".into(), json!(id));
    }
    Value::Object(p)
}

fn one(app: &App<'_>) -> Result<(Map<String, Value>, Migration), String> {
    let mut m = migrate(app.values_yaml).map_err(|e| format!("{}: {e}", app.name))?;
    let config = match std::mem::take(&mut m.config) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    m.notes = m
        .notes
        .into_iter()
        .map(|n| format!("{}: {n}", app.name))
        .collect();
    Ok((config, m))
}

/// Several OAuth2-Proxy values files (one per app) into one configuration. The first file
/// gives the top level: the provider `default` and the options every app shares (cookies,
/// headers, routes). Each further file becomes an entry of `providers` with its provider and
/// client options and its client secret in `OIDC_CLIENT_SECRET_<ID>`. Each file's hosts become
/// a policy naming its provider and carrying its `email_domains`, `allowed_emails` and
/// `allowed_groups`. A later file's shared option that the first file does not match is noted.
pub fn migrate_apps(apps: &[App<'_>]) -> Result<Migration, String> {
    let Some((first, rest)) = apps.split_first() else {
        return Err("no values file to migrate".into());
    };
    check_hosts(apps)?;
    let (first_config, out) = one(first)?;
    let first_rules: Map<String, Value> = first_config
        .iter()
        .filter(|(k, _)| RULE_OPTIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut merge = Merge {
        first_name: first.name,
        top: first_config.clone(),
        first_config,
        entry_names: oidc_gate_core::config::provider_option_names(),
        out,
    };
    let mut policies = Vec::new();
    if !first.hosts.is_empty() {
        policies.push(policy(&first.hosts, None, first_rules.clone()));
    }
    let mut providers = Vec::new();
    let mut ids = vec![DEFAULT_PROVIDER.to_string()];
    for app in rest {
        let id = provider_id(app.name, &ids)?;
        ids.push(id.clone());
        let (entry, mut rules) = merge.later(app, &id)?;
        for option in RULE_OPTIONS {
            if first_rules.contains_key(option) && !rules.contains_key(option) {
                rules.insert(option.into(), rule_default(option));
            }
        }
        providers.push(Value::Object(entry));
        policies.push(policy(&app.hosts, Some(&id), rules));
    }
    let Merge {
        mut top, mut out, ..
    } = merge;
    if !providers.is_empty() {
        top.insert("providers".into(), Value::Array(providers));
    }
    if !policies.is_empty() {
        top.insert("policies".into(), Value::Array(policies));
    }
    out.config = Value::Object(top);
    Ok(out)
}

/// With several apps each names its hosts, and a host belongs to one app.
fn check_hosts(apps: &[App<'_>]) -> Result<(), String> {
    if apps.len() > 1 {
        if let Some(app) = apps.iter().find(|a| a.hosts.is_empty()) {
            return Err(format!(
                "{}: give the hosts it serves (VALUES=host1,host2): with several apps, the host picks the provider",
                app.name
            ));
        }
    }
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for app in apps {
        for host in &app.hosts {
            let host = host.trim();
            if let Some((_, other)) = seen.iter().find(|(h, _)| h.eq_ignore_ascii_case(host)) {
                return Err(format!(
                    "{host} is given for both {other} and {}: a host has one provider",
                    app.name
                ));
            }
            seen.push((host, app.name));
        }
    }
    Ok(())
}

/// Options by name: a configuration's top level, a `providers` entry, a policy's rules.
type Options = Map<String, Value>;

/// The configuration being built from the first file, and what later files are compared with.
struct Merge<'a> {
    first_name: &'a str,
    first_config: Map<String, Value>,
    /// The top level: the first file's options (and a later file's cookie secret if it has none).
    top: Map<String, Value>,
    entry_names: Vec<&'static str>,
    out: Migration,
}

impl Merge<'_> {
    /// A later app: its `providers` entry and its rules, for its policy. Its notes, its client
    /// secret and the notes about its shared options go to `out`.
    fn later(&mut self, app: &App<'_>, id: &str) -> Result<(Options, Options), String> {
        let (config, m) = one(app)?;
        self.out.notes.extend(m.notes);
        let env = client_secret_env(id);
        let mut entry = Map::new();
        entry.insert("id".into(), json!(id));
        let mut rules = Map::new();
        for (option, value) in &config {
            if option == "client_secret_env" {
                entry.insert(option.clone(), json!(env));
            } else if self.entry_names.contains(&option.as_str()) {
                entry.insert(option.clone(), value.clone());
            } else if RULE_OPTIONS.contains(&option.as_str()) {
                rules.insert(option.clone(), value.clone());
            } else if option != "cookie_secret_env" {
                self.shared_option(app.name, option, value);
            }
        }
        let unset: Vec<String> = self
            .first_config
            .keys()
            .filter(|o| self.is_shared(o) && !config.contains_key(*o))
            .cloned()
            .collect();
        for option in unset {
            self.out.notes.push(format!(
                "{}: {option} is not set here, but applies to every app behind the filter; {}'s value applies here too",
                app.name, self.first_name
            ));
        }
        for (var, value) in m.secrets {
            if var == CLIENT_SECRET_ENV {
                self.out.secrets.push((env.clone(), value));
            } else if var == COOKIE_SECRET_ENV {
                self.cookie_secret(app.name, var, value);
            }
        }
        Ok((entry, rules))
    }

    /// An option the top level holds for every provider.
    fn is_shared(&self, option: &str) -> bool {
        !self.entry_names.contains(&option)
            && !RULE_OPTIONS.contains(&option)
            && option != "cookie_secret_env"
    }

    /// A later file's shared option: the first file's value stays.
    fn shared_option(&mut self, name: &str, option: &str, value: &Value) {
        let note = match self.first_config.get(option) {
            Some(kept) if kept == value => return,
            Some(_) => format!("kept {}'s value", self.first_name),
            None => "left out".into(),
        };
        self.out.notes.push(format!(
            "{name}: {option} applies to every app behind the filter; {note}"
        ));
    }

    /// One cookie secret serves every app: the first file's, else the first later file's.
    fn cookie_secret(&mut self, name: &str, var: String, value: String) {
        if self.top.contains_key("cookie_secret_env") {
            self.out.notes.push(format!(
                "{name}: cookieSecret dropped: one cookie secret ({COOKIE_SECRET_ENV}) serves every app behind the filter"
            ));
        } else {
            self.top
                .insert("cookie_secret_env".into(), json!(COOKIE_SECRET_ENV));
            self.out.secrets.push((var, value));
            self.out.notes.push(format!(
                "{name}: cookieSecret kept as the one cookie secret ({COOKIE_SECRET_ENV}) of every app: {} has none",
                self.first_name
            ));
        }
    }
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

    fn shared_example() -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oauth2-proxy-values.yaml"
        );
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A second app's values: its own Okta application, group and session settings.
    const FINANCE: &str = r#"
config:
  clientID: 0oafinance000000000
  clientSecret: finance-client-secret
  cookieSecret: ZmluYW5jZS1jb29raWUtc2VjcmV0LTMyLWJ5dGVzISE=
extraArgs:
  provider: oidc
  oidc-issuer-url: https://dev-123456.okta.com/oauth2/finance
  allowed-group: finance
  allowed-role: billing:viewer
  cookie-refresh: 30m
  cookie-secure: true
  cookie-samesite: strict
  cookie-name: _oauth2_proxy_istio_ingressgateway
  skip-auth-route: GET=^/healthz$
"#;

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn two_apps_become_two_providers_bound_by_policies_and_validate() {
        let grafana = shared_example();
        let apps = [
            App {
                name: "grafana",
                values_yaml: &grafana,
                hosts: hosts(&["grafana.example.com"]),
            },
            App {
                name: "Finance_App",
                values_yaml: FINANCE,
                hosts: hosts(&["finance.example.com", "pay.example.com"]),
            },
        ];
        let m = migrate_apps(&apps).unwrap();
        let c = &m.config;
        // The first file is the top level, as `migrate` gives it.
        assert_eq!(c["client_id"], "0oa1b2c3d4e5f6g7h8i9");
        assert_eq!(c["client_secret_env"], CLIENT_SECRET_ENV);
        assert_eq!(c["cookie_secret_env"], COOKIE_SECRET_ENV);
        assert_eq!(c["allowed_groups"], json!(["admins"]));
        assert_eq!(c["cookie_samesite"], "lax");
        assert_eq!(
            c["providers"],
            json!([{
                "id": "finance-app",
                "oidc_issuer_url": "https://dev-123456.okta.com/oauth2/finance",
                "client_id": "0oafinance000000000",
                "client_secret_env": "OIDC_CLIENT_SECRET_FINANCE_APP",
                "cookie_refresh": "30m",
            }])
        );
        assert_eq!(
            c["policies"],
            json!([
                {"hosts": ["grafana.example.com"], "allowed_groups": ["admins"], "email_domains": ["*"]},
                // The top level's email_domains are written out rather than inherited.
                {"hosts": ["finance.example.com", "pay.example.com"], "provider": "finance-app",
                 "allowed_groups": ["finance"], "allowed_roles": ["billing:viewer"], "email_domains": ["*"]},
            ])
        );
        let mut names: Vec<&str> = m.secrets.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "OIDC_CLIENT_SECRET",
                "OIDC_CLIENT_SECRET_FINANCE_APP",
                "OIDC_COOKIE_SECRET"
            ]
        );
        assert!(m.secrets.contains(&(
            "OIDC_CLIENT_SECRET_FINANCE_APP".into(),
            "finance-client-secret".into()
        )));
        assert!(!m
            .secrets
            .iter()
            .any(|(_, v)| v.starts_with("ZmluYW5jZS1jb29r")));
        let has = |text: &str| m.notes.iter().any(|n| n == text);
        for note in [
            "Finance_App: cookie_samesite applies to every app behind the filter; kept grafana's value",
            "Finance_App: skip_auth_routes applies to every app behind the filter; left out",
            "Finance_App: set_authorization_header is not set here, but applies to every app behind the filter; grafana's value applies here too",
            "Finance_App: provider: not needed — oidc-gate speaks OpenID Connect to any provider: no provider type to choose",
            "grafana: upstream: not needed — the gateway routes to the app; oidc-gate only decides",
        ] {
            assert!(has(note), "{note}\n{:#?}", m.notes);
        }
        assert!(
            m.notes
                .iter()
                .any(|n| n.starts_with("Finance_App: cookieSecret dropped")),
            "{:#?}",
            m.notes
        );
        // Equal values are not noted.
        assert!(!m
            .notes
            .iter()
            .any(|n| n.contains("cookie_secure") || n.contains("cookie_name")));
        assert!(
            crate::validate::check(c).is_empty(),
            "{:?}",
            crate::validate::check(c)
        );
    }

    #[test]
    fn with_several_apps_each_needs_hosts_and_a_host_has_one_app() {
        let grafana = shared_example();
        let mut apps = vec![
            App {
                name: "grafana",
                values_yaml: &grafana,
                hosts: hosts(&["grafana.example.com"]),
            },
            App {
                name: "finance",
                values_yaml: FINANCE,
                hosts: Vec::new(),
            },
        ];
        let e = migrate_apps(&apps).err().unwrap_or_default();
        assert!(e.starts_with("finance: give the hosts"), "{e}");
        apps[1].hosts = hosts(&["Grafana.example.com"]);
        let e = migrate_apps(&apps).err().unwrap_or_default();
        assert!(e.contains("given for both grafana and finance"), "{e}");
        apps[1].name = "default";
        apps[1].hosts = hosts(&["finance.example.com"]);
        let e = migrate_apps(&apps).err().unwrap_or_default();
        assert!(e.contains("rename"), "{e}");
        assert!(migrate_apps(&[]).is_err());
        // One app alone: its hosts, if given, make one policy; it may leave them out.
        let alone = migrate_apps(&apps[..1]).unwrap();
        assert_eq!(
            alone.config["policies"],
            json!([{"hosts": ["grafana.example.com"], "allowed_groups": ["admins"], "email_domains": ["*"]}])
        );
        apps[0].hosts.clear();
        let alone = migrate_apps(&apps[..1]).unwrap();
        assert!(alone.config.get("policies").is_none() && alone.config.get("providers").is_none());
    }

    #[test]
    fn provider_ids_are_sanitised_and_made_unique() {
        let taken = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let none = taken(&["default"]);
        assert_eq!(provider_id("Finance App", &none).unwrap(), "finance-app");
        assert_eq!(
            provider_id("--my__values..v2--", &none).unwrap(),
            "my-values-v2"
        );
        assert_eq!(provider_id("2fa", &none).unwrap(), "app-2fa");
        assert_eq!(provider_id("__", &none).unwrap(), "app");
        assert!(provider_id("Default", &none).is_err());
        let long = "a".repeat(40);
        assert_eq!(provider_id(&long, &none).unwrap(), "a".repeat(32));
        let t = taken(&["default", &"a".repeat(32), "values", "values-2"]);
        assert_eq!(
            provider_id(&long, &t).unwrap(),
            format!("{}-2", "a".repeat(30))
        );
        assert_eq!(provider_id("values", &t).unwrap(), "values-3");
        for id in ["finance-app", "my-values-v2", "app-2fa", "values-3"] {
            assert!(id.len() <= 32 && id.starts_with(|c: char| c.is_ascii_lowercase()));
        }
    }
}
