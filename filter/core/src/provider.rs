//! The OpenID provider's metadata: discovery (OpenID Connect Discovery §4) and the JWKS, loaded
//! in the background with backoff. `ProviderLoader` decides what to fetch and when; the host
//! only carries out the call-outs it asks for.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::callout::{CallOut, CallResult};
use crate::config::{Config, Endpoint, ProviderSource};
use crate::jwt::{Algorithm, JwksError, KeySet};

/// What the filter needs from the provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub authorization_endpoint: Url,
    pub token_endpoint: Endpoint,
    pub jwks_endpoint: Endpoint,
    pub end_session_endpoint: Option<Url>,
    /// `id_token_signing_alg_values_supported` that this filter can verify.
    pub algorithms: Vec<Algorithm>,
    pub scopes_supported: Vec<String>,
    pub keys: KeySet,
}

/// Why provider metadata was not accepted. The loader keeps what it had and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    Unreachable,
    Status(u16),
    DiscoveryNotJson,
    IssuerMismatch { discovered: String },
    BadEndpoint(&'static str),
    NoSupportedAlgorithm,
    Jwks(JwksError),
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("the IdP did not answer (connection failed, reset or timed out; check the ServiceEntry/DestinationRule or idp_cluster)"),
            Self::Status(s) => write!(f, "the IdP answered HTTP {s}"),
            Self::DiscoveryNotJson => f.write_str("the discovery document is not the expected JSON"),
            Self::IssuerMismatch { discovered } => write!(
                f,
                "the discovery document's issuer {discovered:?} is not oidc_issuer_url exactly (OpenID Discovery §4.3; check the trailing slash)"
            ),
            Self::BadEndpoint(name) => write!(f, "the discovery document's {name} is missing or not an absolute URL"),
            Self::NoSupportedAlgorithm => f.write_str(
                "the provider advertises no ID-token signing algorithm this filter verifies (RS*, PS*, ES256, ES384, EdDSA)",
            ),
            Self::Jwks(e) => e.fmt(f),
        }
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

/// Discovered endpoints, before the JWKS is loaded.
#[derive(Debug, Clone)]
struct Endpoints {
    authorization_endpoint: Url,
    token_endpoint: Endpoint,
    jwks_endpoint: Endpoint,
    end_session_endpoint: Option<Url>,
    algorithms: Vec<Algorithm>,
    scopes_supported: Vec<String>,
}

fn absolute(name: &'static str, value: &str) -> Result<Url, ProviderError> {
    Url::parse(value)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or(ProviderError::BadEndpoint(name))
}

fn parse_discovery(
    body: &[u8],
    issuer: &str,
    cluster: Option<&str>,
) -> Result<Endpoints, ProviderError> {
    let d: Discovery = serde_json::from_slice(body).map_err(|_| ProviderError::DiscoveryNotJson)?;
    if d.issuer != issuer {
        return Err(ProviderError::IssuerMismatch {
            discovered: d.issuer,
        });
    }
    let endpoint = |name: &'static str, v: &str| {
        Endpoint::new(absolute(name, v)?, cluster).map_err(|_| ProviderError::BadEndpoint(name))
    };
    // OpenID Discovery §3: RS256 is the default when the provider does not list algorithms.
    let advertised = d
        .id_token_signing_alg_values_supported
        .unwrap_or_else(|| vec!["RS256".to_string()]);
    let algorithms: Vec<Algorithm> = advertised
        .iter()
        .filter_map(|a| Algorithm::from_name(a))
        .collect();
    if algorithms.is_empty() {
        return Err(ProviderError::NoSupportedAlgorithm);
    }
    Ok(Endpoints {
        authorization_endpoint: absolute("authorization_endpoint", &d.authorization_endpoint)?,
        token_endpoint: endpoint("token_endpoint", &d.token_endpoint)?,
        jwks_endpoint: endpoint("jwks_uri", &d.jwks_uri)?,
        end_session_endpoint: d
            .end_session_endpoint
            .and_then(|e| absolute("end_session_endpoint", &e).ok()),
        algorithms,
        scopes_supported: d.scopes_supported,
    })
}

/// Which document a call-out fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Discovery,
    Jwks,
}

/// What a completed fetch changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    Discovery,
    Keys { count: usize, skipped: usize },
}

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Loads and refreshes the provider metadata. Time is in milliseconds of any monotonic clock.
#[derive(Debug)]
pub struct ProviderLoader {
    issuer: String,
    source: ProviderSource,
    cluster: Option<String>,
    timeout: Duration,
    refresh: Duration,
    endpoints: Option<Endpoints>,
    provider: Option<Arc<Provider>>,
    in_flight: Option<(Fetch, u64)>,
    next_at: u64,
    failures: u32,
}

impl ProviderLoader {
    pub fn new(config: &Config) -> Self {
        let endpoints = match &config.provider {
            ProviderSource::Static {
                authorization_endpoint,
                token_endpoint,
                jwks,
            } => Some(Endpoints {
                authorization_endpoint: authorization_endpoint.clone(),
                token_endpoint: token_endpoint.clone(),
                jwks_endpoint: jwks.clone(),
                end_session_endpoint: None,
                // Without discovery, the common asymmetric algorithms are accepted.
                algorithms: vec![Algorithm::RS256, Algorithm::ES256],
                scopes_supported: Vec::new(),
            }),
            ProviderSource::Discovery(_) => None,
        };
        Self {
            issuer: config.issuer.clone(),
            source: config.provider.clone(),
            cluster: config.idp_cluster.clone(),
            timeout: config.idp_timeout,
            refresh: config.jwks_refresh,
            endpoints,
            provider: None,
            in_flight: None,
            next_at: 0,
            failures: 0,
        }
    }

    /// The provider, once discovery and keys are loaded.
    pub fn provider(&self) -> Option<&Arc<Provider>> {
        self.provider.as_ref()
    }

    /// The next call-out to make now, if one is due and none is in flight.
    pub fn poll(&mut self, now_ms: u64) -> Option<(Fetch, CallOut)> {
        if let Some((_, deadline)) = self.in_flight {
            if now_ms < deadline {
                return None;
            }
            // The answer never came back: count it as a failure and go on.
            self.in_flight = None;
            self.fail(now_ms);
        }
        if now_ms < self.next_at {
            return None;
        }
        let (fetch, endpoint) = match (&self.endpoints, &self.source) {
            (Some(e), _) => (Fetch::Jwks, &e.jwks_endpoint),
            (None, ProviderSource::Discovery(d)) => (Fetch::Discovery, d),
            (None, ProviderSource::Static { jwks, .. }) => (Fetch::Jwks, jwks),
        };
        let call = CallOut::get(endpoint, self.timeout);
        let deadline = now_ms + self.timeout.as_millis() as u64 + 1_000;
        self.in_flight = Some((fetch, deadline));
        Some((fetch, call))
    }

    fn fail(&mut self, now_ms: u64) {
        let delay = FIRST_RETRY
            .saturating_mul(1u32 << self.failures.min(6))
            .min(MAX_RETRY);
        self.failures = self.failures.saturating_add(1);
        self.next_at = now_ms + delay.as_millis() as u64;
    }

    /// Takes the answer to the call-out `poll` asked for.
    pub fn on_response(
        &mut self,
        fetch: Fetch,
        result: CallResult<'_>,
        now_ms: u64,
    ) -> Result<Loaded, ProviderError> {
        if self.in_flight.map(|(f, _)| f) == Some(fetch) {
            self.in_flight = None;
        }
        let outcome = self.apply(fetch, result);
        match &outcome {
            Ok(Loaded::Discovery) => {
                self.failures = 0;
                self.next_at = now_ms;
            }
            Ok(Loaded::Keys { .. }) => {
                self.failures = 0;
                self.next_at = now_ms + self.refresh.as_millis() as u64;
            }
            Err(_) => self.fail(now_ms),
        }
        outcome
    }

    fn apply(&mut self, fetch: Fetch, result: CallResult<'_>) -> Result<Loaded, ProviderError> {
        let body = result.ok_body()?;
        match fetch {
            Fetch::Discovery => {
                self.endpoints = Some(parse_discovery(
                    body,
                    &self.issuer,
                    self.cluster.as_deref(),
                )?);
                Ok(Loaded::Discovery)
            }
            Fetch::Jwks => {
                let keys = KeySet::parse(body).map_err(ProviderError::Jwks)?;
                let e = self
                    .endpoints
                    .as_ref()
                    .ok_or(ProviderError::DiscoveryNotJson)?;
                let loaded = Loaded::Keys {
                    count: keys.len(),
                    skipped: keys.skipped(),
                };
                self.provider = Some(Arc::new(Provider {
                    authorization_endpoint: e.authorization_endpoint.clone(),
                    token_endpoint: e.token_endpoint.clone(),
                    jwks_endpoint: e.jwks_endpoint.clone(),
                    end_session_endpoint: e.end_session_endpoint.clone(),
                    algorithms: e.algorithms.clone(),
                    scopes_supported: e.scopes_supported.clone(),
                    keys,
                }));
                Ok(loaded)
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::tests::{minimal, parse};
    use crate::jwt::verify::testing::{TestIdp, ISSUER};
    use serde_json::json;

    pub fn discovery_json() -> String {
        json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}/v1/authorize"),
            "token_endpoint": format!("{ISSUER}/v1/token"),
            "jwks_uri": format!("{ISSUER}/v1/keys"),
            "end_session_endpoint": format!("{ISSUER}/v1/logout"),
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
            "scopes_supported": ["openid", "email", "profile", "offline_access", "groups"],
        })
        .to_string()
    }

    pub fn loaded(idp: &TestIdp) -> Arc<Provider> {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let mut l = ProviderLoader::new(&cfg);
        let _ = l.poll(0);
        let _ = l.on_response(
            Fetch::Discovery,
            CallResult::ok(discovery_json().as_bytes()),
            0,
        );
        let _ = l.poll(0);
        let _ = l.on_response(Fetch::Jwks, CallResult::ok(idp.jwks().as_bytes()), 0);
        l.provider()
            .cloned()
            .unwrap_or_else(|| unreachable!("provider not loaded"))
    }

    #[test]
    fn loads_discovery_then_keys_then_refreshes_keys() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let mut l = ProviderLoader::new(&cfg);
        let (fetch, call) = l.poll(0).unwrap_or_else(|| unreachable!());
        assert_eq!(fetch, Fetch::Discovery);
        assert_eq!(call.cluster, "outbound|443||dev-123456.okta.com");
        assert!(call.headers.contains(&(
            ":path".into(),
            "/oauth2/default/.well-known/openid-configuration".into()
        )));
        assert!(l.poll(10).is_none(), "one call at a time");
        assert_eq!(
            l.on_response(
                Fetch::Discovery,
                CallResult::ok(discovery_json().as_bytes()),
                10
            ),
            Ok(Loaded::Discovery)
        );
        let (fetch, call) = l.poll(10).unwrap_or_else(|| unreachable!());
        assert_eq!(fetch, Fetch::Jwks);
        assert!(call
            .headers
            .contains(&(":path".into(), "/oauth2/default/v1/keys".into())));
        let idp = TestIdp::new();
        assert_eq!(
            l.on_response(Fetch::Jwks, CallResult::ok(idp.jwks().as_bytes()), 20),
            Ok(Loaded::Keys {
                count: 2,
                skipped: 0
            })
        );
        let p = l.provider().cloned().unwrap_or_else(|| unreachable!());
        assert_eq!(
            p.algorithms,
            vec![Algorithm::RS256, Algorithm::ES256],
            "HS256 is never taken from discovery"
        );
        assert_eq!(p.token_endpoint.path, "/oauth2/default/v1/token");
        assert!(l.poll(20 + 3_599_000).is_none());
        assert_eq!(l.poll(20 + 3_600_000).map(|(f, _)| f), Some(Fetch::Jwks));
        // A failed refresh keeps the last good keys.
        let _ = l.on_response(Fetch::Jwks, CallResult::failed(), 3_600_030);
        assert!(l.provider().is_some());
    }

    #[test]
    fn failures_back_off_and_nothing_half_loaded_is_served() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let mut l = ProviderLoader::new(&cfg);
        let mut t = 0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let _ = l.poll(t).unwrap_or_else(|| unreachable!());
            assert_eq!(
                l.on_response(Fetch::Discovery, CallResult::status(503, b""), t),
                Err(ProviderError::Status(503))
            );
            let start = t;
            while l.poll(t).is_none() {
                t += 250;
            }
            l.in_flight = None;
            waits.push(t - start);
        }
        assert_eq!(
            waits,
            vec![1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
        );
        assert!(l.provider().is_none());
    }

    #[test]
    fn discovery_must_name_the_configured_issuer_exactly() {
        let doc = discovery_json().replace(
            "\"issuer\":\"https://dev-123456.okta.com/oauth2/default\"",
            "\"issuer\":\"https://dev-123456.okta.com/oauth2/default/\"",
        );
        let r = parse_discovery(doc.as_bytes(), ISSUER, None);
        assert!(
            matches!(r, Err(ProviderError::IssuerMismatch { .. })),
            "{r:?}"
        );
        assert_eq!(
            parse_discovery(b"<html>", ISSUER, None).err(),
            Some(ProviderError::DiscoveryNotJson)
        );
        let hs_only = discovery_json().replace("[\"RS256\",\"ES256\",\"HS256\"]", "[\"HS256\"]");
        assert_eq!(
            parse_discovery(hs_only.as_bytes(), ISSUER, None).err(),
            Some(ProviderError::NoSupportedAlgorithm)
        );
        let relative = discovery_json().replace(&format!("\"{ISSUER}/v1/token\""), "\"/v1/token\"");
        assert_eq!(
            parse_discovery(relative.as_bytes(), ISSUER, None).err(),
            Some(ProviderError::BadEndpoint("token_endpoint"))
        );
    }

    #[test]
    fn an_unanswered_call_is_retried() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let mut l = ProviderLoader::new(&cfg);
        assert!(l.poll(0).is_some());
        assert!(l.poll(5_000).is_none());
        // Past the timeout plus a second, the call is written off and retried after backoff.
        assert!(l.poll(6_001).is_none());
        assert!(l.poll(7_001).is_some());
    }

    #[test]
    fn static_endpoints_skip_discovery() {
        let mut v = minimal();
        v["skip_oidc_discovery"] = json!(true);
        v["login_url"] = json!("https://idp.example/authorize");
        v["redeem_url"] = json!("https://idp.example/token");
        v["oidc_jwks_url"] = json!("https://idp.example/keys");
        let Ok(cfg) = parse(&v) else { unreachable!() };
        let mut l = ProviderLoader::new(&cfg);
        assert_eq!(l.poll(0).map(|(f, _)| f), Some(Fetch::Jwks));
        let idp = TestIdp::new();
        assert!(l
            .on_response(Fetch::Jwks, CallResult::ok(idp.jwks().as_bytes()), 0)
            .is_ok());
        assert!(l.provider().is_some());
    }
}
