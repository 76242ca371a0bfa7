//! Providers per host. The top-level provider options form the provider `default`; `providers`
//! lists more, each an object with the same options (the provider and its endpoints, the
//! client and its secret or key, the login parameters, the claim names, bearer issuers,
//! `cookie_refresh`) under its own `id`, so that each app keeps its own Okta application. An
//! entry inherits nothing from the top level: its options have their usual defaults. A policy
//! names its provider; a host without one uses `default`.

use std::time::Duration;

use serde::Deserialize;

use super::{
    bearer, claims, client, login, names, provider, read_part, BearerSettings, Check, ClaimNames,
    ClientSettings, EnvLookup, LoginSettings, ProviderSettings, ProviderSource,
};
use crate::duration::format_go_duration;

/// The id of the provider the top-level options form.
pub const DEFAULT_PROVIDER: &str = "default";
/// More providers than an ingress gateway has apps is a mistake, and each costs call-outs.
const MAX_PROVIDERS: usize = 64;

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawProviders {
    /// More providers, each `{"id": ..., <provider options>}`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<RawEntry>>"))]
    providers: Option<Vec<serde_json::Value>>,
}

/// How often a provider's sessions are refreshed.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawRefresh {
    cookie_refresh: Option<String>,
}

/// An entry of `providers` as written, for the JSON Schema: every per-provider part, flat.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[schemars(deny_unknown_fields, transform = without_proxy_prefix)]
#[allow(dead_code)]
struct RawEntry {
    id: String,
    #[serde(flatten)]
    provider: provider::RawProvider,
    #[serde(flatten)]
    client: client::RawClient,
    #[serde(flatten)]
    login: login::RawLogin,
    #[serde(flatten)]
    claims: claims::RawClaims,
    #[serde(flatten)]
    bearer: bearer::RawBearer,
    #[serde(flatten)]
    refresh: RawRefresh,
}

/// An entry cannot set `proxy_prefix` (the filter answers at one prefix), though its client
/// part has it.
#[cfg(feature = "schema")]
fn without_proxy_prefix(schema: &mut schemars::Schema) {
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.remove("proxy_prefix");
    }
}

/// One provider: who the IdP is, the client the filter is there, and what its logins ask.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// `default` for the top level's, else the entry's `id`.
    pub id: String,
    pub provider: ProviderSettings,
    pub client: ClientSettings,
    pub login: LoginSettings,
    pub bearer: BearerSettings,
    pub claims: ClaimNames,
    /// How often sessions are refreshed; 0: never.
    pub refresh: Duration,
}

impl ProviderConfig {
    pub fn is_default(&self) -> bool {
        self.id == DEFAULT_PROVIDER
    }
}

/// The option names an entry of `providers` takes: `proxy_prefix` stays at the top level.
pub(super) fn entry_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = [
        names::fields::<provider::RawProvider>(),
        names::fields::<client::RawClient>(),
        names::fields::<login::RawLogin>(),
        names::fields::<claims::RawClaims>(),
        names::fields::<bearer::RawBearer>(),
        names::fields::<RawRefresh>(),
    ]
    .concat();
    names.retain(|n| *n != "proxy_prefix");
    names.push("id");
    names
}

/// The per-provider options of `v` (the top level, or an entry), validated.
pub(super) fn build_one(
    id: String,
    v: &serde_json::Value,
    env: EnvLookup<'_>,
    (expire, top_prefix): (Duration, Option<&str>),
    check: &mut Check,
) -> Option<ProviderConfig> {
    let provider = read_part(v, check);
    let client = read_part(v, check);
    let login = read_part(v, check);
    let claims = read_part(v, check);
    let bearer = read_part(v, check);
    let refresh: Option<RawRefresh> = read_part(v, check);
    let provider = provider::build(provider?, check);
    let client = client::build(client?, env, top_prefix, check);
    let login = login::build(login?, check);
    let claims = claims::build(claims?, check);
    let bearer = bearer::build(bearer?, provider.as_ref(), check);
    let refresh = refresh_period(refresh?.cookie_refresh, expire, check);
    let (provider, login) = (provider?, login?);
    if login.pushed_authorization_requests
        && matches!(provider.source, ProviderSource::Static { .. })
    {
        check.fail(
            "pushed_authorization_requests",
            "needs discovery (the PAR endpoint is read from it); remove skip_oidc_discovery",
        );
    }
    Some(ProviderConfig {
        id,
        provider,
        client: client?,
        login,
        bearer: bearer?,
        claims: claims?,
        refresh,
    })
}

/// `cookie_refresh`, which must be shorter than `cookie_expire`.
fn refresh_period(value: Option<String>, expire: Duration, check: &mut Check) -> Duration {
    let refresh = check.duration("cookie_refresh", value, Duration::ZERO);
    if !refresh.is_zero() && refresh >= expire {
        check.fail(
            "cookie_refresh",
            format!(
                "{} must be less than cookie_expire ({})",
                format_go_duration(refresh),
                format_go_duration(expire)
            ),
        );
    }
    refresh
}

/// The entries of `providers`, each checked against the names an entry takes and read under
/// its own key (`providers[1].client_id`); with every id given (`default` first), built or not.
pub(super) fn build_entries(
    raw: RawProviders,
    env: EnvLookup<'_>,
    (expire, top_prefix): (Duration, &str),
    check: &mut Check,
) -> (Vec<ProviderConfig>, Vec<String>) {
    let entries = raw.providers.unwrap_or_default();
    if entries.len() > MAX_PROVIDERS {
        check.fail(
            "providers",
            format!("lists more than {MAX_PROVIDERS} providers"),
        );
        return (Vec::new(), vec![DEFAULT_PROVIDER.to_string()]);
    }
    let known = entry_names();
    let mut ids = vec![DEFAULT_PROVIDER.to_string()];
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        check.within(&format!("providers[{i}]."), |check| {
            let Some(id) = entry_id(entry, &known, &ids, check) else {
                return;
            };
            ids.push(id.clone());
            if let Some(p) = build_one(id, entry, env, (expire, Some(top_prefix)), check) {
                out.push(p);
            }
        });
    }
    (out, ids)
}

/// An entry's `id` after its keys were checked: a name that can end a cookie name and cannot
/// be read as a part number of another cookie (it starts with a letter), used once.
fn entry_id(
    entry: &serde_json::Value,
    known: &[&str],
    taken: &[String],
    check: &mut Check,
) -> Option<String> {
    let Some(map) = entry.as_object() else {
        check.fail(
            "(entry)",
            "must be an object with an \"id\" and provider options",
        );
        return None;
    };
    let mut keys_ok = true;
    for key in map.keys() {
        if key == "proxy_prefix" {
            check.fail(
                key,
                "is set once, at the top level (the filter answers at one prefix)",
            );
            keys_ok = false;
        } else if !known.contains(&key.as_str()) {
            check.fail(key, "is not an option of a provider");
            keys_ok = false;
        }
    }
    let id = map.get("id").and_then(|v| v.as_str()).unwrap_or_default();
    let valid = id.len() <= 32
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        check.fail(
            "id",
            format!("{id:?} must start with a lower-case letter and hold only a-z, 0-9 and '-' (at most 32)"),
        );
        return None;
    }
    if taken.iter().any(|t| t == id) {
        check.fail(
            "id",
            format!("{id:?} is used twice (\"default\" is the top level's)"),
        );
        return None;
    }
    keys_ok.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{minimal, parse, problems};
    use super::*;
    use serde_json::json;

    fn with_providers(entries: serde_json::Value) -> serde_json::Value {
        let mut v = minimal();
        v["providers"] = entries;
        v
    }

    fn finance() -> serde_json::Value {
        json!({"id": "finance", "oidc_issuer_url": "https://finance.okta.example/oauth2/default",
               "client_id": "0oa-finance", "client_secret": "f1n", "cookie_refresh": "1h"})
    }

    #[test]
    fn the_top_level_is_the_default_provider_and_entries_follow_in_order() {
        let c = parse(&with_providers(json!([finance()])));
        let Ok(c) = c else { unreachable!("{c:?}") };
        let ids: Vec<&str> = c.providers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["default", "finance"]);
        assert_eq!(c.providers[1].client.id, "0oa-finance");
        assert_eq!(c.providers[1].refresh, Duration::from_secs(3600));
        assert_eq!(
            c.providers[0].refresh,
            Duration::ZERO,
            "nothing is inherited"
        );
        assert_eq!(c.providers[1].client.proxy_prefix, "/oauth2");
    }

    #[test]
    fn an_entrys_problems_are_named_under_its_index() {
        let mut bad = finance();
        bad["client_secret"] = json!(null);
        bad["scope"] = json!("email");
        bad["cookie_domains"] = json!([".example.com"]);
        bad["proxy_prefix"] = json!("/auth");
        let ps = problems(&with_providers(json!([finance(), bad])));
        let keys: Vec<&str> = ps.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"providers[1].cookie_domains"), "{ps:?}");
        assert!(keys.contains(&"providers[1].proxy_prefix"), "{ps:?}");
        let mut bad = finance();
        bad["id"] = json!("payroll");
        bad["scope"] = json!("email");
        bad["client_secret"] = json!(null);
        let ps = problems(&with_providers(json!([bad])));
        let keys: Vec<&str> = ps.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["providers[0].client_secret", "providers[0].scope"],
            "{ps:?}"
        );
    }

    #[test]
    fn ids_are_cookie_safe_distinct_and_never_a_part_number() {
        for id in [
            json!("2"),
            json!("Finance"),
            json!("a_b"),
            json!(""),
            json!(null),
            json!("default"),
        ] {
            let mut e = finance();
            e["id"] = id.clone();
            let ps = problems(&with_providers(json!([e])));
            assert!(
                ps.iter().any(|(k, _)| k == "providers[0].id"),
                "{id}: {ps:?}"
            );
        }
        let ps = problems(&with_providers(json!([finance(), finance()])));
        assert!(
            ps.iter()
                .any(|(k, r)| k == "providers[1].id" && r.contains("used twice")),
            "{ps:?}"
        );
    }
}
