//! The gateway-level JSON configuration: option names as OAuth2-Proxy's config file, parsed once
//! at configure time into typed values. Every problem is collected and reported with its key.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::duration::{format_go_duration, parse_go_duration};
use crate::policy::{Policies, RawPolicy, Rules};
use crate::redirect::Whitelist;
use crate::routes::{RouteError, Routes};
use crate::secret::{ClientSecret, CookieSecret};

/// One thing wrong with the configuration, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub rule: String,
}

/// Every problem found in a configuration; the filter refuses to start with any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid oidc-gate configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", p.key, p.rule)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The raw JSON, as written by the user. Every field is optional here; `Config::parse` applies
/// the defaults and the rules.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(
        title = "oidc-gate configuration",
        description = "The WasmPlugin's pluginConfig. Option names follow OAuth2-Proxy's config file; durations are Go durations."
    )
)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    oidc_issuer_url: Option<String>,
    skip_oidc_discovery: Option<bool>,
    login_url: Option<String>,
    redeem_url: Option<String>,
    oidc_jwks_url: Option<String>,
    oidc_jwks_refresh: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    client_auth_method: Option<String>,
    cookie_secret: Option<String>,
    cookie_secret_env: Option<String>,
    cookie_secret_previous: Option<OneOrMany>,
    cookie_secret_previous_env: Option<OneOrMany>,
    cookie_refresh: Option<String>,
    redirect_url: Option<String>,
    proxy_prefix: Option<String>,
    scope: Option<String>,
    code_challenge_method: Option<String>,
    cookie_name: Option<String>,
    cookie_domains: Option<Vec<String>>,
    cookie_path: Option<String>,
    cookie_secure: Option<bool>,
    cookie_httponly: Option<bool>,
    cookie_samesite: Option<String>,
    cookie_expire: Option<String>,
    email_domains: Option<Vec<String>>,
    allowed_groups: Option<Vec<String>>,
    allowed_emails: Option<Vec<String>>,
    policies: Option<Vec<RawPolicy>>,
    whitelist_domains: Option<Vec<String>>,
    skip_jwt_bearer_tokens: Option<bool>,
    extra_jwt_issuers: Option<Vec<String>>,
    sign_out_at_idp: Option<bool>,
    pass_user_headers: Option<bool>,
    prefer_email_to_user: Option<bool>,
    claim_headers: Option<BTreeMap<String, String>>,
    prompt: Option<String>,
    acr_values: Option<String>,
    login_url_parameters: Option<BTreeMap<String, String>>,
    oidc_email_claim: Option<String>,
    oidc_groups_claim: Option<String>,
    user_id_claim: Option<String>,
    insecure_oidc_allow_unverified_email: Option<bool>,
    set_xauthrequest: Option<bool>,
    pass_access_token: Option<bool>,
    set_authorization_header: Option<bool>,
    api_routes: Option<Vec<String>>,
    skip_auth_routes: Option<Vec<String>>,
    skip_auth_preflight: Option<bool>,
    idp_cluster: Option<String>,
    idp_timeout: Option<String>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// The longest call-out timeout accepted (a login or refresh waits that long at most).
const MAX_IDP_TIMEOUT: Duration = Duration::from_secs(60);

/// The option names this version understands (kept beside `RawConfig`; a unit test checks both
/// agree).
pub const OPTION_NAMES: &[&str] = &[
    "oidc_issuer_url",
    "skip_oidc_discovery",
    "login_url",
    "redeem_url",
    "oidc_jwks_url",
    "oidc_jwks_refresh",
    "client_id",
    "client_secret",
    "client_secret_env",
    "client_auth_method",
    "cookie_secret",
    "cookie_secret_env",
    "cookie_secret_previous",
    "cookie_secret_previous_env",
    "cookie_refresh",
    "redirect_url",
    "proxy_prefix",
    "scope",
    "code_challenge_method",
    "cookie_name",
    "cookie_domains",
    "cookie_path",
    "cookie_secure",
    "cookie_httponly",
    "cookie_samesite",
    "cookie_expire",
    "email_domains",
    "allowed_groups",
    "allowed_emails",
    "policies",
    "whitelist_domains",
    "skip_jwt_bearer_tokens",
    "extra_jwt_issuers",
    "sign_out_at_idp",
    "pass_user_headers",
    "prefer_email_to_user",
    "claim_headers",
    "prompt",
    "acr_values",
    "login_url_parameters",
    "oidc_email_claim",
    "oidc_groups_claim",
    "user_id_claim",
    "insecure_oidc_allow_unverified_email",
    "set_xauthrequest",
    "pass_access_token",
    "set_authorization_header",
    "api_routes",
    "skip_auth_routes",
    "skip_auth_preflight",
    "idp_cluster",
    "idp_timeout",
];

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1, OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    Basic,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn attribute(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}

/// An IdP URL and where the filter sends a call-out for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: Url,
    /// The Envoy cluster: `idp_cluster`, or Istio's name for a ServiceEntry host.
    pub cluster: String,
    /// `:authority` of the call-out (the real host name, which TLS origination uses for SNI).
    pub authority: String,
    /// `:path` of the call-out, with the query.
    pub path: String,
}

impl Endpoint {
    /// `cluster` overrides the derived `outbound|<port>||<host>` name.
    pub fn new(url: Url, cluster: Option<&str>) -> Result<Self, String> {
        let host = url
            .host_str()
            .ok_or_else(|| format!("{url} has no host"))?
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{url} has no port"))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let cluster = cluster
            .map(str::to_string)
            .unwrap_or_else(|| format!("outbound|{port}||{host}"));
        Ok(Self {
            url,
            cluster,
            authority,
            path,
        })
    }
}

/// Where the provider's metadata comes from.
// Built once at configure time; its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSource {
    /// `{issuer}/.well-known/openid-configuration`.
    Discovery(Endpoint),
    /// `skip_oidc_discovery`: the endpoints are configured.
    Static {
        authorization_endpoint: Url,
        token_endpoint: Endpoint,
        jwks: Endpoint,
    },
}

#[derive(Debug, Clone)]
pub struct CookieSettings {
    pub name: String,
    pub domains: Vec<String>,
    pub path: String,
    pub secure: bool,
    pub httponly: bool,
    pub samesite: SameSite,
    pub expire: Duration,
    /// 0: sessions are never refreshed.
    pub refresh: Duration,
    pub secret: CookieSecret,
    /// Secrets that still open cookies (rotation); sessions they open are re-issued.
    pub previous_secrets: Vec<CookieSecret>,
}

/// A further issuer of bearer tokens (`extra_jwt_issuers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraIssuer {
    pub issuer: String,
    pub audience: String,
    /// Its discovery document; `None` when it is the main issuer (same keys).
    pub discovery: Option<Endpoint>,
}

/// Which claims carry the identity.
#[derive(Debug, Clone)]
pub struct ClaimNames {
    pub email: String,
    pub groups: String,
    pub user_id: String,
}

/// The validated configuration. Everything the request path needs is parsed here.
#[derive(Debug, Clone)]
pub struct Config {
    pub issuer: String,
    pub provider: ProviderSource,
    pub idp_cluster: Option<String>,
    pub idp_timeout: Duration,
    pub jwks_refresh: Duration,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub client_auth_method: ClientAuthMethod,
    pub redirect_url: Option<Url>,
    pub proxy_prefix: String,
    pub scope: String,
    pub pkce: bool,
    pub cookie: CookieSettings,
    /// `policies` and the top-level `email_domains`, `allowed_emails`, `allowed_groups`.
    pub policies: Policies,
    pub whitelist: Whitelist,
    pub skip_jwt_bearer_tokens: bool,
    pub extra_issuers: Vec<ExtraIssuer>,
    pub sign_out_at_idp: bool,
    pub pass_user_headers: bool,
    pub prefer_email_to_user: bool,
    /// (header name in lower case, claim name).
    pub claim_headers: Vec<(String, String)>,
    pub prompt: Option<String>,
    pub acr_values: Option<String>,
    pub login_url_parameters: Vec<(String, String)>,
    pub claims: ClaimNames,
    pub allow_unverified_email: bool,
    pub set_xauthrequest: bool,
    pub pass_access_token: bool,
    pub set_authorization_header: bool,
    pub routes: Routes,
    /// CORS preflights pass without a session (OAuth2-Proxy's `skip_auth_preflight`).
    pub skip_auth_preflight: bool,
}

/// Collects problems while the configuration is read.
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn fail(&mut self, key: &str, rule: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            rule: rule.into(),
        });
    }

    fn duration(&mut self, key: &str, value: Option<String>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(v) => parse_go_duration(&v).unwrap_or_else(|e| {
                self.fail(key, format!("{v:?} {e}"));
                default
            }),
        }
    }

    fn absolute_url(&mut self, key: &str, value: &str) -> Option<Url> {
        match Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            Ok(_) => {
                self.fail(key, format!("{value:?} must be an absolute http(s) URL"));
                None
            }
            Err(e) => {
                self.fail(key, format!("{value:?} is not a URL ({e})"));
                None
            }
        }
    }

    fn endpoint(&mut self, key: &str, value: &str, cluster: Option<&str>) -> Option<Endpoint> {
        let url = self.absolute_url(key, value)?;
        Endpoint::new(url, cluster)
            .map_err(|e| self.fail(key, e))
            .ok()
    }

    /// A secret given inline or through an environment variable of the VM, exactly one of them.
    fn secret(
        &mut self,
        key: &str,
        inline: Option<String>,
        env_key: &str,
        env_name: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        match (inline, env_name) {
            (Some(_), Some(_)) => {
                self.fail(key, format!("set {key} or {env_key}, not both"));
                None
            }
            (Some(v), None) if v.is_empty() => {
                self.fail(key, "is empty");
                None
            }
            (Some(v), None) => Some(v),
            (None, Some(name)) => match env(&name) {
                Some(v) if !v.is_empty() => Some(v),
                _ => {
                    self.fail(
                        env_key,
                        format!(
                            "environment variable {name:?} is not set or empty in the Wasm VM (give it in the WasmPlugin's vmConfig.env)"
                        ),
                    );
                    None
                }
            },
            (None, None) => {
                self.fail(key, format!("is required (or {env_key})"));
                None
            }
        }
    }
}

/// The JSON Schema of the configuration, generated from the types the parser reads.
#[cfg(feature = "schema")]
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).unwrap_or_default()
}

impl Config {
    /// Parses the plugin configuration. `env` looks up the VM's environment variables, for the
    /// `*_env` options.
    pub fn parse(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut check = Check {
            problems: Vec::new(),
        };
        let raw = read_raw(json, &mut check);
        let config = raw.and_then(|raw| build(raw, env, &mut check));
        match config {
            Some(c) if check.problems.is_empty() => Ok(c),
            _ => Err(ConfigError {
                problems: check.problems,
            }),
        }
    }

    /// The authorization endpoint callback path, e.g. `/oauth2/callback`.
    pub fn callback_path(&self) -> String {
        format!("{}/callback", self.proxy_prefix)
    }
}

fn read_raw(json: &[u8], check: &mut Check) -> Option<RawConfig> {
    let value: serde_json::Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            check.fail("(configuration)", format!("is not valid JSON: {e}"));
            return None;
        }
    };
    let Some(map) = value.as_object() else {
        check.fail("(configuration)", "must be a JSON object");
        return None;
    };
    for key in map.keys() {
        if !OPTION_NAMES.contains(&key.as_str()) {
            let snake = key.replace('-', "_");
            let hint = if OPTION_NAMES.contains(&snake.as_str()) {
                format!("; the config-file name is {snake:?}")
            } else {
                String::new()
            };
            check.fail(key, format!("is not an oidc-gate option{hint}"));
        }
    }
    if !check.problems.is_empty() {
        return None;
    }
    match serde_path_to_error::deserialize::<_, RawConfig>(value) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let key = e.path().to_string();
            check.fail(&key, without_value(&e.into_inner().to_string()));
            None
        }
    }
}

/// A type error without the value that caused it: `client_secret: 12345` (unquoted in YAML)
/// must not print the secret in the refusal.
fn without_value(message: &str) -> String {
    let shape = if message.starts_with("invalid type:") {
        "has the wrong type"
    } else if message.starts_with("invalid value:") || message.starts_with("invalid length") {
        "has an invalid value"
    } else {
        return message.to_string();
    };
    match message.split_once(", expected ") {
        Some((_, expected)) => format!("{shape}: expected {expected}"),
        None => shape.to_string(),
    }
}

/// RFC 6265bis §4.1.3: browsers drop a `__Secure-` cookie without `Secure`, and a `__Host-`
/// one with a `Domain` or a path other than `/`. The prefixes are matched in any case, as
/// browsers now do.
fn cookie_prefix_rules(
    check: &mut Check,
    name: &str,
    secure: bool,
    domains: &[String],
    path: &str,
) {
    let starts = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let host = starts("__Host-");
    if (host || starts("__Secure-")) && !secure {
        check.fail(
            "cookie_name",
            format!("{name:?} has a __Secure-/__Host- prefix, which needs cookie_secure: true"),
        );
    }
    if host && !domains.is_empty() {
        check.fail(
            "cookie_name",
            format!("{name:?} has the __Host- prefix, which allows no cookie_domains"),
        );
    }
    if host && path != "/" {
        check.fail(
            "cookie_name",
            format!("{name:?} has the __Host- prefix, which needs cookie_path \"/\""),
        );
    }
}

fn build(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    check: &mut Check,
) -> Option<Config> {
    let idp_cluster = raw.idp_cluster.filter(|c| {
        if c.is_empty() {
            check.fail(
                "idp_cluster",
                "is empty; omit it to derive outbound|<port>||<host>",
            );
        }
        !c.is_empty()
    });
    let cluster = idp_cluster.as_deref();

    let issuer = match raw.oidc_issuer_url {
        Some(i) => {
            check.absolute_url("oidc_issuer_url", &i);
            i
        }
        None => {
            check.fail("oidc_issuer_url", "is required");
            String::new()
        }
    };
    let provider = if raw.skip_oidc_discovery.unwrap_or(false) {
        let mut get = |key: &str, v: Option<String>| {
            v.or_else(|| {
                check.fail(key, "is required when skip_oidc_discovery is true");
                None
            })
        };
        let login = get("login_url", raw.login_url);
        let redeem = get("redeem_url", raw.redeem_url);
        let jwks = get("oidc_jwks_url", raw.oidc_jwks_url);
        match (login, redeem, jwks) {
            (Some(l), Some(r), Some(j)) => {
                let a = check.absolute_url("login_url", &l);
                let t = check.endpoint("redeem_url", &r, cluster);
                let k = check.endpoint("oidc_jwks_url", &j, cluster);
                match (a, t, k) {
                    (Some(a), Some(t), Some(k)) => Some(ProviderSource::Static {
                        authorization_endpoint: a,
                        token_endpoint: t,
                        jwks: k,
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    } else {
        for (key, v) in [
            ("login_url", &raw.login_url),
            ("redeem_url", &raw.redeem_url),
            ("oidc_jwks_url", &raw.oidc_jwks_url),
        ] {
            if v.is_some() {
                check.fail(
                    key,
                    "is only used with skip_oidc_discovery: true (discovery provides it)",
                );
            }
        }
        let well_known = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        if issuer.is_empty() {
            None
        } else {
            check
                .endpoint("oidc_issuer_url", &well_known, cluster)
                .map(ProviderSource::Discovery)
        }
    };

    let client_id = raw.client_id.unwrap_or_default();
    if client_id.is_empty() {
        check.fail("client_id", "is required");
    }
    let client_secret = check.secret(
        "client_secret",
        raw.client_secret,
        "client_secret_env",
        raw.client_secret_env,
        env,
    );
    let client_auth_method = match raw.client_auth_method.as_deref() {
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
    let cookie_secret = check
        .secret(
            "cookie_secret",
            raw.cookie_secret,
            "cookie_secret_env",
            raw.cookie_secret_env,
            env,
        )
        .and_then(|s| {
            CookieSecret::from_base64(&s)
                .map_err(|e| check.fail("cookie_secret", e.to_string()))
                .ok()
        });

    let mut previous_secrets = Vec::new();
    for s in raw
        .cookie_secret_previous
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
    {
        match CookieSecret::from_base64(&s) {
            Ok(k) => previous_secrets.push(k),
            Err(e) => check.fail("cookie_secret_previous", e.to_string()),
        }
    }
    for name in raw
        .cookie_secret_previous_env
        .map(OneOrMany::into_vec)
        .unwrap_or_default()
    {
        match env(&name).map(|v| CookieSecret::from_base64(&v)) {
            Some(Ok(k)) => previous_secrets.push(k),
            Some(Err(e)) => check.fail("cookie_secret_previous_env", format!("{name:?} {e}")),
            None => check.fail(
                "cookie_secret_previous_env",
                format!("environment variable {name:?} is not set in the Wasm VM (give it in the WasmPlugin's vmConfig.env)"),
            ),
        }
    }

    let redirect_url = raw
        .redirect_url
        .and_then(|r| check.absolute_url("redirect_url", &r));
    let proxy_prefix = raw.proxy_prefix.unwrap_or_else(|| "/oauth2".to_string());
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

    let cookie_name = raw
        .cookie_name
        .unwrap_or_else(|| "_oauth2_proxy".to_string());
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        check.fail(
            "cookie_name",
            format!(
                "{cookie_name:?} must be non-empty and use only letters, digits, '_', '-' and '.'"
            ),
        );
    }
    let cookie_domains = raw.cookie_domains.unwrap_or_default();
    for d in &cookie_domains {
        if d.trim_start_matches('.').is_empty() || d.contains([';', ' ', '/', ':']) {
            check.fail("cookie_domains", format!("{d:?} is not a domain"));
        }
    }
    let cookie_path = raw.cookie_path.unwrap_or_else(|| "/".to_string());
    if !cookie_path.starts_with('/') || cookie_path.contains(';') {
        check.fail(
            "cookie_path",
            format!("{cookie_path:?} must start with '/'"),
        );
    }
    let cookie_secure = raw.cookie_secure.unwrap_or(true);
    cookie_prefix_rules(
        check,
        &cookie_name,
        cookie_secure,
        &cookie_domains,
        &cookie_path,
    );
    let samesite = match raw
        .cookie_samesite
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => {
            if !cookie_secure {
                check.fail(
                    "cookie_samesite",
                    "\"none\" requires cookie_secure: true (browsers drop such cookies otherwise)",
                );
            }
            SameSite::None
        }
        Some(other) => {
            check.fail(
                "cookie_samesite",
                format!("{other:?} must be \"lax\", \"strict\" or \"none\""),
            );
            SameSite::Lax
        }
    };
    let cookie_expire = check.duration(
        "cookie_expire",
        raw.cookie_expire,
        Duration::from_secs(168 * 3600),
    );
    if cookie_expire.is_zero() {
        check.fail("cookie_expire", "must be greater than 0");
    }
    let cookie_refresh = check.duration("cookie_refresh", raw.cookie_refresh, Duration::ZERO);
    if !cookie_refresh.is_zero() && cookie_refresh >= cookie_expire {
        check.fail(
            "cookie_refresh",
            format!(
                "{} must be less than cookie_expire ({})",
                format_go_duration(cookie_refresh),
                format_go_duration(cookie_expire)
            ),
        );
    }

    let email_domains = match crate::policy::email_domains(
        raw.email_domains.unwrap_or_else(|| vec!["*".to_string()]),
    ) {
        Ok(d) => d,
        Err(e) => {
            check.fail("email_domains", e);
            Vec::new()
        }
    };
    let default_rules = Rules {
        email_domains,
        allowed_emails: raw
            .allowed_emails
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.trim().to_ascii_lowercase())
            .collect(),
        allowed_groups: raw.allowed_groups.unwrap_or_default(),
    };
    let policies = Policies::compile(raw.policies.unwrap_or_default(), default_rules)
        .map_err(|problems| {
            for (i, p) in problems {
                check.fail(&format!("policies[{i}]"), p);
            }
        })
        .ok();
    let whitelist = Whitelist::parse(&raw.whitelist_domains.unwrap_or_default())
        .map_err(|e| check.fail("whitelist_domains", e))
        .unwrap_or_default();
    let mut extra_issuers = Vec::new();
    for entry in raw.extra_jwt_issuers.unwrap_or_default() {
        let Some((iss, aud)) = entry
            .split_once('=')
            .filter(|(i, a)| !i.is_empty() && !a.is_empty())
        else {
            check.fail(
                "extra_jwt_issuers",
                format!("{entry:?} must be \"issuer=audience\""),
            );
            continue;
        };
        let discovery = if iss == issuer {
            None
        } else {
            let url = format!(
                "{}/.well-known/openid-configuration",
                iss.trim_end_matches('/')
            );
            check.endpoint("extra_jwt_issuers", &url, cluster)
        };
        extra_issuers.push(ExtraIssuer {
            issuer: iss.to_string(),
            audience: aud.to_string(),
            discovery,
        });
    }
    let skip_jwt_bearer_tokens = raw.skip_jwt_bearer_tokens.unwrap_or(false);
    if !extra_issuers.is_empty() && !skip_jwt_bearer_tokens {
        check.fail(
            "extra_jwt_issuers",
            "is only used with skip_jwt_bearer_tokens: true",
        );
    }
    let mut claim_headers = Vec::new();
    for (header, claim) in raw.claim_headers.unwrap_or_default() {
        let h = header.to_ascii_lowercase();
        let token = !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let reserved = matches!(
            h.as_str(),
            "host" | "cookie" | "content-length" | "transfer-encoding" | "connection"
        ) || h.starts_with(':');
        if !token || reserved || claim.is_empty() {
            check.fail("claim_headers", format!("{header:?}: {claim:?} must map a header name (not {h:?} reserved by HTTP) to a claim name"));
        } else {
            claim_headers.push((h, claim));
        }
    }
    let mut login_url_parameters = Vec::new();
    const RESERVED: &[&str] = &[
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ];
    for (k, v) in raw.login_url_parameters.unwrap_or_default() {
        if RESERVED.contains(&k.as_str()) || k.is_empty() {
            check.fail(
                "login_url_parameters",
                format!("{k:?} is set by the filter itself and cannot be overridden"),
            );
        } else {
            login_url_parameters.push((k, v));
        }
    }
    let claim = |check: &mut Check, key: &str, v: Option<String>, default: &str| {
        let v = v.unwrap_or_else(|| default.to_string());
        if v.is_empty() {
            check.fail(key, "is empty");
        }
        v
    };
    let claims = ClaimNames {
        email: claim(check, "oidc_email_claim", raw.oidc_email_claim, "email"),
        groups: claim(check, "oidc_groups_claim", raw.oidc_groups_claim, "groups"),
        user_id: claim(check, "user_id_claim", raw.user_id_claim, "sub"),
    };

    let routes = Routes::parse(
        raw.api_routes.unwrap_or_default(),
        raw.skip_auth_routes.unwrap_or_default(),
    )
    .map_err(|errors| {
        for e in errors {
            match e {
                RouteError::Api(r) => check.fail("api_routes", r),
                RouteError::SkipAuth(r) => check.fail("skip_auth_routes", r),
            }
        }
    })
    .ok();

    let idp_timeout = check.duration("idp_timeout", raw.idp_timeout, Duration::from_secs(5));
    if idp_timeout.is_zero() {
        // Envoy treats a zero call-out timeout as "wait forever".
        check.fail("idp_timeout", "must be greater than 0");
    } else if idp_timeout > MAX_IDP_TIMEOUT {
        check.fail(
            "idp_timeout",
            format!(
                "{} is longer than {}: a request waits that long for the IdP",
                format_go_duration(idp_timeout),
                format_go_duration(MAX_IDP_TIMEOUT)
            ),
        );
    }
    let jwks_refresh = check.duration(
        "oidc_jwks_refresh",
        raw.oidc_jwks_refresh,
        Duration::from_secs(3600),
    );
    if jwks_refresh < Duration::from_secs(30) {
        check.fail(
            "oidc_jwks_refresh",
            format!(
                "{} is too short; use 30s or more",
                format_go_duration(jwks_refresh)
            ),
        );
    }

    Some(Config {
        issuer,
        provider: provider?,
        idp_cluster,
        idp_timeout,
        jwks_refresh,
        client_id,
        client_secret: ClientSecret::new(client_secret?),
        client_auth_method,
        redirect_url,
        proxy_prefix,
        scope,
        pkce,
        cookie: CookieSettings {
            name: cookie_name,
            domains: cookie_domains,
            path: cookie_path,
            secure: cookie_secure,
            httponly: raw.cookie_httponly.unwrap_or(true),
            samesite,
            expire: cookie_expire,
            refresh: cookie_refresh,
            secret: cookie_secret?,
            previous_secrets,
        },
        policies: policies?,
        whitelist,
        skip_jwt_bearer_tokens,
        extra_issuers,
        sign_out_at_idp: raw.sign_out_at_idp.unwrap_or(false),
        pass_user_headers: raw.pass_user_headers.unwrap_or(false),
        prefer_email_to_user: raw.prefer_email_to_user.unwrap_or(false),
        claim_headers,
        prompt: raw.prompt.filter(|p| !p.is_empty()),
        acr_values: raw.acr_values.filter(|a| !a.is_empty()),
        login_url_parameters,
        claims,
        allow_unverified_email: raw.insecure_oidc_allow_unverified_email.unwrap_or(false),
        set_xauthrequest: raw.set_xauthrequest.unwrap_or(true),
        pass_access_token: raw.pass_access_token.unwrap_or(false),
        set_authorization_header: raw.set_authorization_header.unwrap_or(false),
        routes: routes?,
        skip_auth_preflight: raw.skip_auth_preflight.unwrap_or(false),
    })
}

#[cfg(test)]
pub(crate) mod tests {
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

    fn problems(v: &serde_json::Value) -> Vec<(String, String)> {
        match parse(v) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems.into_iter().map(|p| (p.key, p.rule)).collect(),
        }
    }

    fn with(key: &str, value: serde_json::Value) -> serde_json::Value {
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
        assert_eq!(c.proxy_prefix, "/oauth2");
        assert_eq!(c.scope, "openid email profile");
        assert!(c.pkce);
        assert_eq!(c.cookie.name, "_oauth2_proxy");
        assert_eq!(c.cookie.path, "/");
        assert!(c.cookie.secure && c.cookie.httponly);
        assert_eq!(c.cookie.samesite, SameSite::Lax);
        assert_eq!(c.cookie.expire, Duration::from_secs(168 * 3600));
        assert_eq!(c.policies.default_rules().email_domains, vec!["*"]);
        assert!(c.policies.default_rules().allowed_groups.is_empty());
        assert!(!c.skip_jwt_bearer_tokens && !c.sign_out_at_idp && !c.pass_user_headers);
        assert_eq!(c.claims.email, "email");
        assert_eq!(c.claims.groups, "groups");
        assert_eq!(c.claims.user_id, "sub");
        assert!(c.set_xauthrequest && !c.pass_access_token && !c.set_authorization_header);
        assert_eq!(c.idp_timeout, Duration::from_secs(5));
        assert_eq!(c.client_auth_method, ClientAuthMethod::Basic);
        let ProviderSource::Discovery(d) = &c.provider else {
            unreachable!()
        };
        assert_eq!(d.cluster, "outbound|443||dev-123456.okta.com");
        assert_eq!(d.authority, "dev-123456.okta.com");
        assert_eq!(d.path, "/oauth2/default/.well-known/openid-configuration");
    }

    #[test]
    fn every_option_name_is_accepted() {
        // Keeps OPTION_NAMES and RawConfig in step: a name RawConfig lacks fails to deserialize.
        for name in OPTION_NAMES {
            let ps = problems(&with(name, json!(null)));
            assert!(
                ps.iter()
                    .all(|(_, rule)| !rule.contains("not an oidc-gate option")
                        && !rule.contains("unknown field")),
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
    fn cookie_name_prefixes_follow_their_rules() {
        let cfg = |extra: serde_json::Value| {
            let mut v = minimal();
            if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            problems(&v)
        };
        assert!(cfg(json!({"cookie_name": "__Host-session"})).is_empty());
        assert!(
            cfg(json!({"cookie_name": "__Secure-s", "cookie_domains": [".example.com"]}))
                .is_empty()
        );
        let cases = [
            (
                json!({"cookie_name": "__Host-s", "cookie_domains": [".example.com"]}),
                "allows no cookie_domains",
            ),
            (
                json!({"cookie_name": "__host-s", "cookie_path": "/app"}),
                "needs cookie_path \"/\"",
            ),
            (
                json!({"cookie_name": "__Secure-s", "cookie_secure": false}),
                "needs cookie_secure: true",
            ),
            (
                json!({"cookie_name": "__Host-s", "cookie_secure": false}),
                "needs cookie_secure: true",
            ),
        ];
        for (extra, needle) in cases {
            let ps = cfg(extra.clone());
            assert!(
                ps.iter()
                    .any(|(k, r)| k == "cookie_name" && r.contains(needle)),
                "{extra}: {ps:?}"
            );
        }
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
    fn each_invalid_value_is_reported_with_its_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("cookie_expire", json!("7d"), "unknown unit"),
            ("cookie_expire", json!("0"), "greater than 0"),
            ("idp_timeout", json!("0s"), "greater than 0"),
            (
                "cookie_samesite",
                json!("sometimes"),
                "\"lax\", \"strict\" or \"none\"",
            ),
            (
                "cookie_secret",
                json!("c2hvcnQ="),
                "must be 32 random bytes",
            ),
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
            ("oidc_issuer_url", json!("dev-123456.okta.com"), "not a URL"),
            (
                "skip_auth_routes",
                json!(["GET=^/public/("]),
                "not a valid regular expression",
            ),
            ("api_routes", json!(["("]), "not a valid regular expression"),
            ("email_domains", json!([]), "refuse everybody"),
            ("cookie_name", json!("a;b"), "must be non-empty"),
            ("idp_timeout", json!("10m"), "is longer than 1m"),
            (
                "login_url",
                json!("https://x/authorize"),
                "only used with skip_oidc_discovery",
            ),
            (
                "cookie_refresh",
                json!("168h"),
                "must be less than cookie_expire (168h)",
            ),
            (
                "cookie_secret_previous",
                json!(["c2hvcnQ="]),
                "must be 32 random bytes",
            ),
            (
                "cookie_secret_previous_env",
                json!("UNSET_VAR"),
                "is not set in the Wasm VM",
            ),
            ("whitelist_domains", json!(["a:b"]), "invalid port"),
            (
                "extra_jwt_issuers",
                json!(["no-audience"]),
                "must be \"issuer=audience\"",
            ),
            (
                "claim_headers",
                json!({"Host": "email"}),
                "reserved by HTTP",
            ),
            (
                "login_url_parameters",
                json!({"state": "x"}),
                "cannot be overridden",
            ),
        ];
        for (key, value, needle) in cases {
            let ps = problems(&with(key, value.clone()));
            assert!(
                ps.iter().any(|(k, r)| k == key && r.contains(needle)),
                "{key}={value}: {ps:?}"
            );
        }
        let ps = problems(&with(
            "policies",
            json!([{"hosts": ["a.example"]}, {"hosts": []}]),
        ));
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].0, "policies[1]");
        assert!(ps[0].1.contains("hosts is empty"), "{ps:?}");
        let ps = problems(&with(
            "policies",
            json!([{"hosts": ["a.example"], "bogus": 1}]),
        ));
        assert!(
            ps[0].0.starts_with("policies") && ps[0].1.contains("unknown field `bogus`"),
            "{ps:?}"
        );
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
            c.map(|c| c.client_secret.expose().to_string()).ok(),
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
    fn previous_cookie_secrets_are_one_or_a_list_inline_or_from_the_environment() {
        let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let one = parse(&with("cookie_secret_previous", json!(other)));
        assert_eq!(one.map(|c| c.cookie.previous_secrets.len()).ok(), Some(1));
        let mut v = with("cookie_secret_previous", json!([other, COOKIE_SECRET]));
        v["cookie_secret_previous_env"] = json!(["OLD"]);
        v["cookie_refresh"] = json!("1h");
        let env = |k: &str| (k == "OLD").then(|| other.to_string());
        let c = Config::parse(v.to_string().as_bytes(), &env);
        assert_eq!(
            c.as_ref().map(|c| c.cookie.previous_secrets.len()).ok(),
            Some(3)
        );
        assert_eq!(
            c.map(|c| c.cookie.refresh).ok(),
            Some(Duration::from_secs(3600))
        );
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

    #[test]
    fn static_endpoints_need_all_three_urls() {
        let ps = problems(&with("skip_oidc_discovery", json!(true)));
        let keys: Vec<&str> = ps.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["login_url", "redeem_url", "oidc_jwks_url"]);
        let mut v = with("skip_oidc_discovery", json!(true));
        if let Some(m) = v.as_object_mut() {
            m.insert("login_url".into(), json!("https://idp.example/authorize"));
            m.insert(
                "redeem_url".into(),
                json!("https://idp.example:8443/token?x=1"),
            );
            m.insert("oidc_jwks_url".into(), json!("https://idp.example/keys"));
        }
        let c = parse(&v);
        let Ok(Config {
            provider: ProviderSource::Static { token_endpoint, .. },
            ..
        }) = c
        else {
            unreachable!("{c:?}")
        };
        assert_eq!(token_endpoint.cluster, "outbound|8443||idp.example");
        assert_eq!(token_endpoint.authority, "idp.example:8443");
        assert_eq!(token_endpoint.path, "/token?x=1");
    }

    #[test]
    fn idp_cluster_overrides_the_derived_name() {
        let c = parse(&with("idp_cluster", json!("okta")));
        let Ok(Config {
            provider: ProviderSource::Discovery(d),
            ..
        }) = c
        else {
            unreachable!()
        };
        assert_eq!(d.cluster, "okta");
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
}
