//! The gateway-level JSON configuration: option names as OAuth2-Proxy's config file, parsed once
//! at configure time into typed values. The JSON is flat; each concern (the README's sections)
//! reads its own options into its own typed part, in its own file, and every problem of every
//! part is collected and reported with its key.

mod bearer;
mod claims;
mod client;
mod cookies;
mod headers;
mod login;
mod names;
mod provider;
mod providers;
mod rules;

pub use bearer::{BearerSettings, ExtraIssuer};
pub use claims::{ClaimNames, UserInfoMode};
pub use client::{ClientAuth, ClientSettings};
pub use cookies::{CookieSettings, SameSite};
pub use headers::HeaderSettings;
pub use login::LoginSettings;
pub use provider::{Endpoint, ProviderSettings, ProviderSource};
pub use providers::{ProviderConfig, DEFAULT_PROVIDER};
pub use rules::RuleSettings;

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use crate::duration::parse_go_duration;

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

/// The validated configuration, by concern. Everything the request path needs is parsed here.
#[derive(Debug, Clone)]
pub struct Config {
    /// `default` (the top level's provider options) first, then `providers` in order.
    pub providers: Vec<ProviderConfig>,
    pub cookie: CookieSettings,
    pub rules: RuleSettings,
    pub headers: HeaderSettings,
}

impl Config {
    /// The top level's provider.
    pub fn default_provider(&self) -> &ProviderConfig {
        // `build` never makes a configuration without it.
        #[allow(clippy::indexing_slicing)]
        &self.providers[0]
    }

    /// Where the filter answers, e.g. `/oauth2` (one prefix for every provider).
    pub fn proxy_prefix(&self) -> &str {
        &self.default_provider().client.proxy_prefix
    }

    /// The callback path, e.g. `/oauth2/callback`.
    pub fn callback_path(&self) -> String {
        self.default_provider().client.callback_path()
    }

    /// A provider by its position (policies and sessions name it so).
    pub fn provider(&self, index: usize) -> Option<&ProviderConfig> {
        self.providers.get(index)
    }
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// The VM's environment variables, for the `*_env` options.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Collects problems while the configuration is read.
pub(crate) struct Check {
    problems: Vec<Problem>,
    /// Put before every key: where in the object the options being read are.
    prefix: String,
}

impl Check {
    pub(crate) fn fail(&mut self, key: &str, rule: impl Into<String>) {
        self.problems.push(Problem {
            key: format!("{}{key}", self.prefix),
            rule: rule.into(),
        });
    }

    /// Runs `f` with every key it reports under `prefix` (e.g. `providers[1].`).
    pub(crate) fn within<R>(&mut self, prefix: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        let inner = format!("{}{prefix}", self.prefix);
        let outer = std::mem::replace(&mut self.prefix, inner);
        let out = f(self);
        self.prefix = outer;
        out
    }

    pub(crate) fn duration(
        &mut self,
        key: &str,
        value: Option<String>,
        default: Duration,
    ) -> Duration {
        match value {
            None => default,
            Some(v) => parse_go_duration(&v).unwrap_or_else(|e| {
                self.fail(key, format!("{v:?} {e}"));
                default
            }),
        }
    }

    pub(crate) fn absolute_url(&mut self, key: &str, value: &str) -> Option<Url> {
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

    pub(crate) fn endpoint(
        &mut self,
        key: &str,
        value: &str,
        cluster: Option<&str>,
    ) -> Option<Endpoint> {
        let url = self.absolute_url(key, value)?;
        Endpoint::new(url, cluster)
            .map_err(|e| self.fail(key, e))
            .ok()
    }

    /// A secret given inline or through an environment variable of the VM, exactly one of them.
    pub(crate) fn secret(
        &mut self,
        (key, inline): (&str, Option<String>),
        (env_key, env_name): (&str, Option<String>),
        env: EnvLookup<'_>,
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

/// The option names an entry of `providers` takes (`id` and the provider options).
pub fn provider_option_names() -> Vec<&'static str> {
    providers::entry_names()
}

/// Every option name this version understands, from the parts' types.
pub fn option_names() -> Vec<&'static str> {
    [
        names::fields::<provider::RawProvider>(),
        names::fields::<client::RawClient>(),
        names::fields::<cookies::RawCookies>(),
        names::fields::<rules::RawRules>(),
        names::fields::<headers::RawHeaders>(),
        names::fields::<login::RawLogin>(),
        names::fields::<claims::RawClaims>(),
        names::fields::<bearer::RawBearer>(),
        names::fields::<providers::RawRefresh>(),
        names::fields::<providers::RawProviders>(),
    ]
    .concat()
}

/// The whole configuration as written, for its JSON Schema: every part's options, flat.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[schemars(
    title = "oidc-gate configuration",
    description = "The WasmPlugin's pluginConfig. Option names follow OAuth2-Proxy's config file; durations are Go durations.",
    deny_unknown_fields
)]
#[allow(dead_code)]
struct RawConfig {
    #[serde(flatten)]
    provider: provider::RawProvider,
    #[serde(flatten)]
    client: client::RawClient,
    #[serde(flatten)]
    cookies: cookies::RawCookies,
    #[serde(flatten)]
    rules: rules::RawRules,
    #[serde(flatten)]
    headers: headers::RawHeaders,
    #[serde(flatten)]
    login: login::RawLogin,
    #[serde(flatten)]
    claims: claims::RawClaims,
    #[serde(flatten)]
    bearer: bearer::RawBearer,
    #[serde(flatten)]
    refresh: providers::RawRefresh,
    #[serde(flatten)]
    providers: providers::RawProviders,
}

/// The JSON Schema of the configuration, generated from the types the parser reads.
#[cfg(feature = "schema")]
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).unwrap_or_default()
}

/// One part's options read from the whole object (the other parts' keys are left alone); a
/// type error names its key and never echoes the value.
fn read_part<T: DeserializeOwned>(value: &serde_json::Value, check: &mut Check) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(part) => Some(part),
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

/// The JSON object, after every key was checked against the known option names.
fn read_object(json: &[u8], check: &mut Check) -> Option<serde_json::Value> {
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
    let known = option_names();
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let snake = key.replace('-', "_");
            let hint = if known.contains(&snake.as_str()) {
                format!("; the config-file name is {snake:?}")
            } else {
                String::new()
            };
            check.fail(key, format!("is not an oidc-gate option{hint}"));
        }
    }
    check.problems.is_empty().then_some(value)
}

impl Config {
    /// Parses the plugin configuration. `env` looks up the VM's environment variables, for the
    /// `*_env` options.
    pub fn parse(json: &[u8], env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let mut check = Check {
            problems: Vec::new(),
            prefix: String::new(),
        };
        let config = read_object(json, &mut check).and_then(|v| Self::build(&v, env, &mut check));
        match config {
            Some(c) if check.problems.is_empty() => Ok(c),
            _ => Err(ConfigError {
                problems: check.problems,
            }),
        }
    }

    /// Every part read and validated, in the README's order of sections: the default provider
    /// from the top level, then the shared parts, then the further providers.
    fn build(v: &serde_json::Value, env: EnvLookup<'_>, check: &mut Check) -> Option<Self> {
        // Each provider's `cookie_refresh` must be shorter than `cookie_expire` (whose own
        // problems the cookies part reports).
        let expire = v
            .get("cookie_expire")
            .and_then(|e| e.as_str())
            .and_then(|e| parse_go_duration(e).ok())
            .unwrap_or(cookies::DEFAULT_EXPIRE);
        let default = providers::build_one(DEFAULT_PROVIDER.into(), v, env, (expire, None), check);
        let cookies = read_part(v, check);
        let rules = read_part(v, check);
        let headers = read_part(v, check);
        let more = read_part(v, check);
        let cookie = cookies::build(cookies?, env, check);
        let prefix = default
            .as_ref()
            .map_or("/oauth2", |d| d.client.proxy_prefix.as_str());
        let (entries, ids) = providers::build_entries(more?, env, (expire, prefix), check);
        // Policies are checked against every id given, so an entry with a problem of its own
        // does not also make each policy naming it "unknown".
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rules = rules::build(rules?, &ids, check);
        let headers = headers::build(headers?, check);
        let mut all = vec![default?];
        all.extend(entries);
        Some(Self {
            providers: all,
            cookie: cookie?,
            rules: rules?,
            headers: headers?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
