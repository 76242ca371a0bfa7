//! The provider and its endpoints: `oidc_issuer_url` with discovery, or the endpoints by hand
//! (`skip_oidc_discovery`); the Envoy cluster call-outs go through; call-out timeout and JWKS
//! refresh period.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::Check;
use crate::duration::format_go_duration;

/// The longest call-out timeout accepted (a login or refresh waits that long at most).
const MAX_IDP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(super) struct RawProvider {
    oidc_issuer_url: Option<String>,
    skip_oidc_discovery: Option<bool>,
    login_url: Option<String>,
    redeem_url: Option<String>,
    oidc_jwks_url: Option<String>,
    profile_url: Option<String>,
    oidc_jwks_refresh: Option<String>,
    idp_cluster: Option<String>,
    idp_timeout: Option<String>,
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
pub struct ProviderSettings {
    pub issuer: String,
    pub source: ProviderSource,
    pub idp_cluster: Option<String>,
    pub idp_timeout: Duration,
    pub jwks_refresh: Duration,
    /// `profile_url`: the UserInfo endpoint, instead of discovery's `userinfo_endpoint`.
    pub profile_url: Option<Endpoint>,
}

pub(super) fn build(raw: RawProvider, check: &mut Check) -> Option<ProviderSettings> {
    let idp_cluster = raw.idp_cluster.clone().filter(|c| {
        if c.is_empty() {
            check.fail(
                "idp_cluster",
                "is empty; omit it to derive outbound|<port>||<host>",
            );
        }
        !c.is_empty()
    });
    let issuer = match raw.oidc_issuer_url.clone() {
        Some(i) => {
            check.absolute_url("oidc_issuer_url", &i);
            i
        }
        None => {
            check.fail("oidc_issuer_url", "is required");
            String::new()
        }
    };
    let source = if raw.skip_oidc_discovery.unwrap_or(false) {
        static_endpoints(&raw, idp_cluster.as_deref(), check)
    } else {
        discovery(&raw, &issuer, idp_cluster.as_deref(), check)
    };
    let profile_url = raw
        .profile_url
        .as_deref()
        .and_then(|u| check.endpoint("profile_url", u, idp_cluster.as_deref()));
    let (idp_timeout, jwks_refresh) = timing(raw, check);
    Some(ProviderSettings {
        issuer,
        source: source?,
        idp_cluster,
        idp_timeout,
        jwks_refresh,
        profile_url,
    })
}

/// `skip_oidc_discovery`: all three endpoints are needed.
fn static_endpoints(
    raw: &RawProvider,
    cluster: Option<&str>,
    check: &mut Check,
) -> Option<ProviderSource> {
    let mut get = |key: &str, v: &Option<String>| {
        v.clone().or_else(|| {
            check.fail(key, "is required when skip_oidc_discovery is true");
            None
        })
    };
    let login = get("login_url", &raw.login_url);
    let redeem = get("redeem_url", &raw.redeem_url);
    let jwks = get("oidc_jwks_url", &raw.oidc_jwks_url);
    let (l, r, j) = (login?, redeem?, jwks?);
    let a = check.absolute_url("login_url", &l);
    let t = check.endpoint("redeem_url", &r, cluster);
    let k = check.endpoint("oidc_jwks_url", &j, cluster);
    Some(ProviderSource::Static {
        authorization_endpoint: a?,
        token_endpoint: t?,
        jwks: k?,
    })
}

/// `{issuer}/.well-known/openid-configuration`; the endpoints by hand are refused here.
fn discovery(
    raw: &RawProvider,
    issuer: &str,
    cluster: Option<&str>,
    check: &mut Check,
) -> Option<ProviderSource> {
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
    if issuer.is_empty() {
        return None;
    }
    let well_known = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    check
        .endpoint("oidc_issuer_url", &well_known, cluster)
        .map(ProviderSource::Discovery)
}

/// The call-out timeout and the JWKS refresh period, each within its bounds.
fn timing(raw: RawProvider, check: &mut Check) -> (Duration, Duration) {
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
    (idp_timeout, jwks_refresh)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_each_refused, parse, problems, with};
    use super::*;
    use serde_json::json;

    #[test]
    fn each_invalid_provider_option_is_reported_with_its_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("oidc_issuer_url", json!("dev-123456.okta.com"), "not a URL"),
            ("idp_timeout", json!("0s"), "greater than 0"),
            ("idp_timeout", json!("10m"), "is longer than 1m"),
            ("oidc_jwks_refresh", json!("10s"), "too short"),
            ("idp_cluster", json!(""), "is empty"),
            (
                "login_url",
                json!("https://x/authorize"),
                "only used with skip_oidc_discovery",
            ),
        ];
        assert_each_refused(&cases);
    }

    #[test]
    fn static_endpoints_need_all_three_urls() {
        let ps = problems(&with("skip_oidc_discovery", json!(true)));
        let keys: Vec<&str> = ps.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["login_url", "redeem_url", "oidc_jwks_url"]);
        let mut v = with("skip_oidc_discovery", json!(true));
        v["login_url"] = json!("https://idp.example/authorize");
        v["redeem_url"] = json!("https://idp.example:8443/token?x=1");
        v["oidc_jwks_url"] = json!("https://idp.example/keys");
        let c = parse(&v).map(|c| c.default_provider().provider.source.clone());
        let Ok(ProviderSource::Static { token_endpoint, .. }) = c else {
            unreachable!("{c:?}")
        };
        assert_eq!(token_endpoint.cluster, "outbound|8443||idp.example");
        assert_eq!(token_endpoint.authority, "idp.example:8443");
        assert_eq!(token_endpoint.path, "/token?x=1");
    }

    #[test]
    fn idp_cluster_overrides_the_derived_name() {
        let c = parse(&with("idp_cluster", json!("okta")))
            .map(|c| c.default_provider().provider.source.clone());
        let Ok(ProviderSource::Discovery(d)) = c else {
            unreachable!()
        };
        assert_eq!(d.cluster, "okta");
    }
}
