//! The OpenID provider's metadata: discovery (OpenID Connect Discovery §4) and the JWKS, loaded
//! in the background with backoff. `ProviderLoader` decides what to fetch and when; the host
//! only carries out the call-outs it asks for.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::callout::{CallOut, CallResult};
use crate::config::{Config, Endpoint, ProviderSettings, ProviderSource};
use crate::env::Now;
use crate::jwt::{Algorithm, JwksError, KeySet};
use crate::shared::{claim, settle, Claim, SharedStore};

/// What the filter needs from the provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub authorization_endpoint: Url,
    pub token_endpoint: Endpoint,
    pub jwks_endpoint: Endpoint,
    pub end_session_endpoint: Option<Url>,
    /// RFC 9126's `pushed_authorization_request_endpoint`.
    pub par_endpoint: Option<Endpoint>,
    /// OIDC Core §5.3's UserInfo endpoint (`profile_url` without discovery).
    pub userinfo_endpoint: Option<Endpoint>,
    /// `id_token_signing_alg_values_supported` that this filter can verify.
    pub algorithms: Vec<Algorithm>,
    pub scopes_supported: Vec<String>,
    /// RFC 9207: the provider sends `iss` with every authorization response.
    pub iss_parameter_supported: bool,
    pub keys: KeySet,
}

/// Why provider metadata was not accepted. The loader keeps what it had and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    Unreachable,
    Status(u16),
    /// The answer was larger than `callout::MAX_RESPONSE_BODY` and was not read.
    TooLarge,
    DiscoveryNotJson,
    IssuerMismatch {
        discovered: String,
    },
    BadEndpoint(&'static str),
    NoSupportedAlgorithm,
    Jwks(JwksError),
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable => f.write_str("the IdP did not answer (connection failed, reset or timed out; check the ServiceEntry/DestinationRule or idp_cluster)"),
            Self::Status(s) => write!(f, "the IdP answered HTTP {s}"),
            Self::TooLarge => write!(
                f,
                "the IdP's answer is larger than {} KiB and was not read",
                crate::callout::MAX_RESPONSE_BODY / 1024
            ),
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
    pushed_authorization_request_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// Discovered endpoints, before the JWKS is loaded.
#[derive(Debug, Clone)]
struct Endpoints {
    authorization_endpoint: Url,
    token_endpoint: Endpoint,
    jwks_endpoint: Endpoint,
    end_session_endpoint: Option<Url>,
    par_endpoint: Option<Endpoint>,
    userinfo_endpoint: Option<Endpoint>,
    algorithms: Vec<Algorithm>,
    scopes_supported: Vec<String>,
    iss_parameter_supported: bool,
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
        par_endpoint: match d.pushed_authorization_request_endpoint {
            Some(e) => Some(endpoint("pushed_authorization_request_endpoint", &e)?),
            None => None,
        },
        userinfo_endpoint: match d.userinfo_endpoint {
            Some(e) => Some(endpoint("userinfo_endpoint", &e)?),
            None => None,
        },
        algorithms,
        scopes_supported: d.scopes_supported,
        iss_parameter_supported: d.authorization_response_iss_parameter_supported,
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
/// A token naming an unknown `kid` refetches the JWKS at most this often (per gateway).
pub const KID_MISS_INTERVAL: Duration = Duration::from_secs(30);

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Loads and refreshes the provider metadata for one VM. The documents are fetched by one VM of
/// the Envoy at a time (a lease in shared data) and published there; the others read them from
/// shared data, so N workers do not multiply the load on the IdP. Time is in milliseconds.
#[derive(Debug)]
pub struct ProviderLoader {
    issuer: String,
    source: ProviderSource,
    cluster: Option<String>,
    timeout: Duration,
    refresh: Duration,
    /// `profile_url`, which replaces the discovered UserInfo endpoint.
    profile: Option<Endpoint>,
    /// Shared-data key prefix, per issuer and metadata source.
    prefix: String,
    endpoints: Option<Endpoints>,
    provider: Option<Arc<Provider>>,
    /// Versions (cas) of the shared documents this VM has parsed.
    discovery_version: Option<u32>,
    jwks_version: Option<u32>,
    /// When the JWKS in use was fetched.
    jwks_fetched_ms: u64,
    failures: u32,
}

impl ProviderLoader {
    /// The issuer it loads the metadata of.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn new(settings: &ProviderSettings) -> Self {
        Self::with_source(&settings.issuer, settings.source.clone(), settings)
    }

    /// A loader for another issuer (`extra_jwt_issuers`), by its discovery document.
    pub fn for_issuer(issuer: &str, discovery: &Endpoint, settings: &ProviderSettings) -> Self {
        Self::with_source(
            issuer,
            ProviderSource::Discovery(discovery.clone()),
            settings,
        )
    }

    fn with_source(issuer: &str, source: ProviderSource, settings: &ProviderSettings) -> Self {
        let (endpoints, source_id) = match &source {
            ProviderSource::Static {
                authorization_endpoint,
                token_endpoint,
                jwks,
            } => (
                Some(Endpoints {
                    authorization_endpoint: authorization_endpoint.clone(),
                    token_endpoint: token_endpoint.clone(),
                    jwks_endpoint: jwks.clone(),
                    end_session_endpoint: None,
                    par_endpoint: None,
                    userinfo_endpoint: None,
                    // Without discovery, the common asymmetric algorithms are accepted.
                    algorithms: vec![Algorithm::RS256, Algorithm::ES256],
                    scopes_supported: Vec::new(),
                    iss_parameter_supported: false,
                }),
                jwks.url.to_string(),
            ),
            ProviderSource::Discovery(d) => (None, d.url.to_string()),
        };
        Self {
            issuer: issuer.to_string(),
            source,
            cluster: settings.idp_cluster.clone(),
            timeout: settings.idp_timeout,
            refresh: settings.jwks_refresh,
            profile: settings.profile_url.clone(),
            prefix: format!("oidc-gate/v1/{source_id}"),
            endpoints,
            provider: None,
            discovery_version: None,
            jwks_version: None,
            jwks_fetched_ms: 0,
            failures: 0,
        }
    }

    /// Adopts documents another VM already published, without fetching anything: a request
    /// that finds no provider yet calls this rather than wait for this VM's next tick.
    pub fn adopt(&mut self, store: &dyn SharedStore) {
        self.sync(store);
    }

    /// How long ago the key set in use was fetched (by any VM of this Envoy).
    pub fn keys_age(&self, now: Now) -> Option<Duration> {
        let age = now.millis().saturating_sub(self.jwks_fetched_ms);
        self.provider.as_ref().map(|_| Duration::from_millis(age))
    }

    /// The provider, once discovery and keys are loaded.
    pub fn provider(&self) -> Option<&Arc<Provider>> {
        self.provider.as_ref()
    }

    fn key(&self, what: &str) -> String {
        format!("{}/{what}", self.prefix)
    }

    /// Adopts documents another VM published.
    fn sync(&mut self, store: &dyn SharedStore) {
        if matches!(self.source, ProviderSource::Discovery(_)) {
            if let Some((body, version)) = store.get(&self.key("discovery")) {
                if self.discovery_version != Some(version) {
                    if let Ok(e) = parse_discovery(&body, &self.issuer, self.cluster.as_deref()) {
                        self.endpoints = Some(e);
                        self.discovery_version = Some(version);
                    }
                }
            }
        }
        if let Some((doc, version)) = store.get(&self.key("jwks")) {
            if self.jwks_version != Some(version) {
                if let Some((fetched, body)) = split_stamp(&doc) {
                    if self.install_keys(body).is_ok() {
                        self.jwks_version = Some(version);
                        self.jwks_fetched_ms = fetched;
                    }
                }
            }
        }
    }

    fn needed(&self, now: Now) -> Option<Fetch> {
        let now_ms = now.millis();
        match (&self.endpoints, &self.provider) {
            (None, _) => Some(Fetch::Discovery),
            (Some(_), None) => Some(Fetch::Jwks),
            (Some(_), Some(_))
                if now_ms >= self.jwks_fetched_ms.saturating_add(millis(self.refresh)) =>
            {
                Some(Fetch::Jwks)
            }
            _ => None,
        }
    }

    fn call(&self, fetch: Fetch) -> Option<CallOut> {
        let endpoint = match (fetch, &self.endpoints, &self.source) {
            (Fetch::Jwks, Some(e), _) => &e.jwks_endpoint,
            (Fetch::Discovery, _, ProviderSource::Discovery(d)) => d,
            _ => return None,
        };
        Some(CallOut::get(endpoint, self.timeout))
    }

    /// Called on every tick: adopts what other VMs published, and returns the call-out to make
    /// if a document is due and this VM won the lease to fetch it.
    pub fn poll(&mut self, now: Now, store: &mut dyn SharedStore) -> Option<(Fetch, CallOut)> {
        self.sync(store);
        let fetch = self.needed(now)?;
        let hold = self.timeout.saturating_add(Duration::from_secs(1));
        if claim(store, &self.key("lease"), now, hold) != Claim::Won {
            return None;
        }
        Some((fetch, self.call(fetch)?))
    }

    /// After an ID token named an unknown `kid`: a JWKS call-out now, unless the gateway did
    /// one within `KID_MISS_INTERVAL`.
    pub fn refetch_for_unknown_kid(
        &mut self,
        now: Now,
        store: &mut dyn SharedStore,
    ) -> Option<CallOut> {
        self.sync(store);
        match claim(store, &self.key("kid-miss"), now, KID_MISS_INTERVAL) {
            Claim::Won => self.call(Fetch::Jwks),
            Claim::Busy | Claim::Done => None,
        }
    }

    fn retry_delay(&mut self) -> Duration {
        let delay = FIRST_RETRY
            .saturating_mul(1u32 << self.failures.min(6))
            .min(MAX_RETRY);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Takes the answer to a call-out `poll` or `refetch_for_unknown_kid` asked for, and
    /// publishes what it loaded to the other VMs.
    pub fn on_response(
        &mut self,
        fetch: Fetch,
        result: CallResult<'_>,
        now: Now,
        store: &mut dyn SharedStore,
    ) -> Result<Loaded, ProviderError> {
        let outcome = self.apply(fetch, result, now, store);
        let lease = self.key("lease");
        match &outcome {
            // Discovery is followed at once by the JWKS, by whoever polls next.
            Ok(_) => {
                self.failures = 0;
                settle(store, &lease, now, false, Duration::ZERO);
            }
            // The whole gateway backs off together.
            Err(_) => {
                let delay = self.retry_delay();
                settle(store, &lease, now, false, delay);
            }
        }
        outcome
    }

    fn apply(
        &mut self,
        fetch: Fetch,
        result: CallResult<'_>,
        now: Now,
        store: &mut dyn SharedStore,
    ) -> Result<Loaded, ProviderError> {
        let body = result.ok_body()?;
        match fetch {
            Fetch::Discovery => {
                self.endpoints = Some(parse_discovery(
                    body,
                    &self.issuer,
                    self.cluster.as_deref(),
                )?);
                store.set(&self.key("discovery"), body, None);
                self.discovery_version = store.get(&self.key("discovery")).map(|(_, v)| v);
                Ok(Loaded::Discovery)
            }
            Fetch::Jwks => {
                let loaded = self.install_keys(body)?;
                let mut doc = now.millis().to_le_bytes().to_vec();
                doc.extend_from_slice(body);
                store.set(&self.key("jwks"), &doc, None);
                self.jwks_version = store.get(&self.key("jwks")).map(|(_, v)| v);
                self.jwks_fetched_ms = now.millis();
                Ok(loaded)
            }
        }
    }

    fn install_keys(&mut self, body: &[u8]) -> Result<Loaded, ProviderError> {
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
            par_endpoint: e.par_endpoint.clone(),
            userinfo_endpoint: self.profile.clone().or_else(|| e.userinfo_endpoint.clone()),
            algorithms: e.algorithms.clone(),
            scopes_supported: e.scopes_supported.clone(),
            iss_parameter_supported: e.iss_parameter_supported,
            keys,
        }));
        Ok(loaded)
    }
}

/// Every issuer this filter loads metadata of, by loader index: each provider's own issuer,
/// then its `extra_jwt_issuers` entries that have their own discovery (an entry with the
/// provider's issuer name shares its keys and has no loader).
#[derive(Debug)]
pub struct Providers {
    loaders: Vec<Option<ProviderLoader>>,
    /// By provider (its position in the configuration): the index of its own loader, and for
    /// each of its extra issuers the index of that one's loader.
    apps: Vec<AppLoaders>,
}

#[derive(Debug)]
struct AppLoaders {
    main: usize,
    extra: Vec<usize>,
}

/// The keys of one provider's issuers as loaded now (`None` until loaded, or for an extra
/// issuer that shares the provider's).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    pub main: Option<Arc<Provider>>,
    /// The loader of the provider's own issuer (to refetch its keys).
    pub main_loader: usize,
    pub extra: Vec<Option<Arc<Provider>>>,
    /// The loader of each extra issuer that has its own.
    pub extra_loaders: Vec<usize>,
}

impl Providers {
    pub fn new(config: &Config) -> Self {
        let mut loaders = Vec::new();
        let mut apps = Vec::new();
        for p in &config.providers {
            let main = loaders.len();
            loaders.push(Some(ProviderLoader::new(&p.provider)));
            let mut extra = Vec::new();
            for e in &p.bearer.extra_issuers {
                extra.push(loaders.len());
                loaders.push(
                    e.discovery
                        .as_ref()
                        .map(|d| ProviderLoader::for_issuer(&e.issuer, d, &p.provider)),
                );
            }
            apps.push(AppLoaders { main, extra });
        }
        Self { loaders, apps }
    }

    pub fn loader(&mut self, index: usize) -> Option<&mut ProviderLoader> {
        self.loaders.get_mut(index).and_then(Option::as_mut)
    }

    /// The first provider that uses loader `index` (its own issuer or an extra one).
    pub fn owner(&self, index: usize) -> usize {
        self.apps
            .iter()
            .position(|a| a.main == index || a.extra.contains(&index))
            .unwrap_or(0)
    }

    /// The loader index of provider `app`'s own issuer.
    pub fn main_loader(&self, app: usize) -> Option<usize> {
        self.apps.get(app).map(|a| a.main)
    }

    /// The loader index of provider `app`'s extra issuer `i`.
    pub fn extra_loader(&self, app: usize, i: usize) -> Option<usize> {
        self.apps.get(app).and_then(|a| a.extra.get(i)).copied()
    }

    /// Provider `app`'s metadata, adopting what another worker published if this one has none
    /// yet.
    pub fn main(&mut self, app: usize, store: &dyn SharedStore) -> Option<Arc<Provider>> {
        let index = self.main_loader(app)?;
        let loader = self.loader(index)?;
        if loader.provider().is_none() {
            loader.adopt(store);
        }
        loader.provider().cloned()
    }

    /// The keys of provider `app`'s issuers as loaded now.
    pub fn keys(&mut self, app: usize, store: &dyn SharedStore) -> Keys {
        let main = self.main(app, store);
        let extra_loaders = self
            .apps
            .get(app)
            .map(|a| a.extra.clone())
            .unwrap_or_default();
        let extra = extra_loaders
            .iter()
            .map(|&i| {
                self.loaders
                    .get(i)
                    .and_then(Option::as_ref)
                    .and_then(|l| l.provider().cloned())
            })
            .collect();
        Keys {
            main,
            main_loader: self.main_loader(app).unwrap_or(0),
            extra,
            extra_loaders,
        }
    }

    /// The fetches due now, each with the index of the loader it is for.
    pub fn due(&mut self, now: Now, store: &mut dyn SharedStore) -> Vec<(usize, Fetch, CallOut)> {
        let mut due = Vec::new();
        for (i, loader) in self.loaders.iter_mut().enumerate() {
            if let Some((fetch, call)) = loader.as_mut().and_then(|l| l.poll(now, store)) {
                due.push((i, fetch, call));
            }
        }
        due
    }

    /// How long ago the main provider's keys were fetched.
    pub fn keys_age(&self, now: Now) -> Option<Duration> {
        self.loaders.first()?.as_ref()?.keys_age(now)
    }

    /// How often the host should tick: often while a provider is still missing (so a gateway
    /// serves logins a few milliseconds after its metadata arrives, not half a second later),
    /// then rarely (refreshes are due in minutes).
    pub fn tick_period(&self) -> Duration {
        let loading = self
            .loaders
            .iter()
            .flatten()
            .any(|l| l.provider().is_none());
        if loading {
            TICK_WHILE_LOADING
        } else {
            TICK_WHEN_LOADED
        }
    }
}

/// The host's tick period while provider metadata is missing, and once it is loaded.
pub const TICK_WHILE_LOADING: Duration = Duration::from_millis(20);
pub const TICK_WHEN_LOADED: Duration = Duration::from_millis(500);

/// A published JWKS: 8 bytes of fetch time (ms, little endian), then the document.
fn split_stamp(doc: &[u8]) -> Option<(u64, &[u8])> {
    let (stamp, body) = doc.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*stamp), body))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::tests::{minimal, parse};
    use crate::jwt::verify::testing::{TestIdp, ISSUER};
    use crate::shared::MemoryStore;
    use serde_json::json;

    /// A time in milliseconds since the epoch.
    pub fn ms(t: u64) -> Now {
        Now::since_epoch(Duration::from_millis(t))
    }

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

    fn loader() -> ProviderLoader {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        ProviderLoader::new(&cfg.default_provider().provider)
    }

    /// Runs one VM's loader against the test IdP until it has keys.
    pub fn load(l: &mut ProviderLoader, store: &mut MemoryStore, idp: &TestIdp, now: u64) {
        load_with(l, store, &discovery_json(), &idp.jwks(), now);
    }

    /// Runs a loader until it has keys, with these documents.
    pub fn load_with(
        l: &mut ProviderLoader,
        store: &mut MemoryStore,
        discovery: &str,
        jwks: &str,
        now: u64,
    ) {
        while let Some((fetch, _)) = l.poll(ms(now), store) {
            let body = match fetch {
                Fetch::Discovery => discovery,
                Fetch::Jwks => jwks,
            };
            let _ = l.on_response(fetch, CallResult::ok(body.as_bytes()), ms(now), store);
        }
    }

    /// Every provider of a configuration, loaded from the test IdP (the same documents for
    /// every issuer).
    pub fn loaded_providers(
        cfg: &Config,
        store: &mut MemoryStore,
        discovery: &str,
        jwks: &str,
    ) -> Providers {
        let mut providers = Providers::new(cfg);
        for i in 0..providers.loaders.len() {
            if let Some(l) = providers.loader(i) {
                load_with(l, store, discovery, jwks, 0);
            }
        }
        providers
    }

    #[test]
    fn the_host_ticks_often_until_every_provider_is_loaded() {
        let Ok(cfg) = parse(&minimal()) else {
            unreachable!()
        };
        let mut store = MemoryStore::default();
        let idp = TestIdp::new();
        let mut providers = Providers::new(&cfg);
        assert_eq!(providers.tick_period(), TICK_WHILE_LOADING);
        if let Some(l) = providers.loader(0) {
            load(l, &mut store, &idp, 0);
        }
        assert_eq!(providers.tick_period(), TICK_WHEN_LOADED);
    }

    pub fn loaded(idp: &TestIdp) -> Arc<Provider> {
        let mut l = loader();
        load(&mut l, &mut MemoryStore::default(), idp, 0);
        l.provider()
            .cloned()
            .unwrap_or_else(|| unreachable!("provider not loaded"))
    }

    #[test]
    fn loads_discovery_then_keys_then_refreshes_keys() {
        let mut store = MemoryStore::default();
        let mut l = loader();
        let (fetch, call) = l.poll(ms(0), &mut store).unwrap_or_else(|| unreachable!());
        assert_eq!(fetch, Fetch::Discovery);
        assert_eq!(call.cluster, "outbound|443||dev-123456.okta.com");
        assert!(call.headers.contains(&(
            ":path".into(),
            "/oauth2/default/.well-known/openid-configuration".into()
        )));
        assert!(l.poll(ms(10), &mut store).is_none(), "one call at a time");
        assert_eq!(
            l.on_response(
                Fetch::Discovery,
                CallResult::ok(discovery_json().as_bytes()),
                ms(10),
                &mut store
            ),
            Ok(Loaded::Discovery)
        );
        let (fetch, call) = l.poll(ms(10), &mut store).unwrap_or_else(|| unreachable!());
        assert_eq!(fetch, Fetch::Jwks);
        assert!(call
            .headers
            .contains(&(":path".into(), "/oauth2/default/v1/keys".into())));
        let idp = TestIdp::new();
        assert_eq!(
            l.on_response(
                Fetch::Jwks,
                CallResult::ok(idp.jwks().as_bytes()),
                ms(20),
                &mut store
            ),
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
        assert!(l.poll(ms(20 + 3_599_000), &mut store).is_none());
        assert_eq!(
            l.poll(ms(20 + 3_600_000), &mut store).map(|(f, _)| f),
            Some(Fetch::Jwks)
        );
        // A failed refresh keeps the last good keys.
        let _ = l.on_response(Fetch::Jwks, CallResult::failed(), ms(3_600_030), &mut store);
        assert!(l.provider().is_some());
    }

    #[test]
    fn one_vm_fetches_and_the_others_adopt_what_it_published() {
        let mut store = MemoryStore::default();
        let idp = TestIdp::new();
        let mut workers: Vec<ProviderLoader> = (0..4).map(|_| loader()).collect();
        let mut fetches = 0;
        for t in (0..5_000).step_by(500) {
            for w in workers.iter_mut() {
                if let Some((fetch, _)) = w.poll(ms(t), &mut store) {
                    fetches += 1;
                    let body = if fetch == Fetch::Discovery {
                        discovery_json()
                    } else {
                        idp.jwks()
                    };
                    let _ =
                        w.on_response(fetch, CallResult::ok(body.as_bytes()), ms(t), &mut store);
                }
            }
        }
        assert_eq!(
            fetches, 2,
            "one discovery and one JWKS fetch for the whole gateway"
        );
        assert!(workers.iter().all(|w| w.provider().is_some()));
        // A VM that starts later finds them ready.
        let mut late = loader();
        assert!(late.poll(ms(5_000), &mut store).is_none());
        assert!(late.provider().is_some());
    }

    #[test]
    fn a_vm_adopts_published_documents_on_demand() {
        let mut store = MemoryStore::default();
        let idp = TestIdp::new();
        let mut a = loader();
        load(&mut a, &mut store, &idp, 0);
        let mut b = loader();
        assert!(b.provider().is_none());
        b.adopt(&store);
        assert!(b.provider().is_some());
    }

    #[test]
    fn failures_back_off_for_the_whole_gateway_and_nothing_half_loaded_is_served() {
        let mut store = MemoryStore::default();
        let mut l = loader();
        let mut other = loader();
        let mut t = 0;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let _ = l.poll(ms(t), &mut store).unwrap_or_else(|| unreachable!());
            assert_eq!(
                l.on_response(
                    Fetch::Discovery,
                    CallResult::status(503, b""),
                    ms(t),
                    &mut store
                ),
                Err(ProviderError::Status(503))
            );
            let start = t;
            assert!(
                other.poll(ms(t + 500), &mut store).is_none(),
                "the other VM waits too"
            );
            loop {
                t += 250;
                if l.poll(ms(t), &mut store).is_some() {
                    break;
                }
            }
            settle(&mut store, &l.key("lease"), ms(t), false, Duration::ZERO);
            waits.push(t - start);
        }
        assert!(waits.windows(2).all(|w| w[0] <= w[1]), "{waits:?}");
        assert!(*waits.last().unwrap_or(&0) >= 60_000, "{waits:?}");
        assert!(l.provider().is_none());
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited_per_gateway() {
        let mut store = MemoryStore::default();
        let idp = TestIdp::new();
        let mut a = loader();
        let mut b = loader();
        load(&mut a, &mut store, &idp, 0);
        assert!(a.refetch_for_unknown_kid(ms(1_000), &mut store).is_some());
        assert!(b.refetch_for_unknown_kid(ms(2_000), &mut store).is_none());
        assert!(a.refetch_for_unknown_kid(ms(30_999), &mut store).is_none());
        assert!(b.refetch_for_unknown_kid(ms(31_000), &mut store).is_some());
    }

    #[test]
    fn rotated_keys_published_by_one_vm_reach_the_others() {
        let mut store = MemoryStore::default();
        let (old, new) = (TestIdp::new(), TestIdp::new());
        let (mut a, mut b) = (loader(), loader());
        load(&mut a, &mut store, &old, 0);
        load(&mut b, &mut store, &old, 0);
        let call = a.refetch_for_unknown_kid(ms(1_000), &mut store);
        assert!(call.is_some());
        let _ = a.on_response(
            Fetch::Jwks,
            CallResult::ok(new.jwks().as_bytes()),
            ms(1_000),
            &mut store,
        );
        let _ = b.poll(ms(1_500), &mut store);
        let kid_of = |l: &ProviderLoader| format!("{:?}", l.provider().map(|p| p.keys.clone()));
        assert_eq!(kid_of(&a), kid_of(&b));
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
    fn an_unanswered_call_is_retried_after_its_lease_ends() {
        let mut store = MemoryStore::default();
        let mut l = loader();
        assert!(l.poll(ms(0), &mut store).is_some());
        assert!(l.poll(ms(5_000), &mut store).is_none());
        assert!(l.poll(ms(6_000), &mut store).is_some(), "timeout 5s + 1s");
    }

    #[test]
    fn static_endpoints_skip_discovery() {
        let mut v = minimal();
        v["skip_oidc_discovery"] = json!(true);
        v["login_url"] = json!("https://idp.example/authorize");
        v["redeem_url"] = json!("https://idp.example/token");
        v["oidc_jwks_url"] = json!("https://idp.example/keys");
        let Ok(cfg) = parse(&v) else { unreachable!() };
        let mut l = ProviderLoader::new(&cfg.default_provider().provider);
        let mut store = MemoryStore::default();
        assert_eq!(l.poll(ms(0), &mut store).map(|(f, _)| f), Some(Fetch::Jwks));
        let idp = TestIdp::new();
        assert!(l
            .on_response(
                Fetch::Jwks,
                CallResult::ok(idp.jwks().as_bytes()),
                ms(0),
                &mut store
            )
            .is_ok());
        assert!(l.provider().is_some());
    }
}
