//! The configurations compared, each an Envoy bootstrap in front of the same upstream, with the
//! request that authenticates against it and what it must come to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use e2e::envoy::{free_port, Plugin};
use e2e::procs::Proc;
use e2e::tools;
use serde_json::{json, Value};

use crate::idp::{now, Idp, Keys, API_AUDIENCE, CLIENT_ID, ISSUER};

const COOKIE_SECRET: &str = "YmVuY2gtY29va2llLXNlY3JldC0zMi1ieXRlcy1vayE=";
const HMAC_SECRET: &str = "bench-hmac-secret-for-envoy-oauth2-filter";

/// What one configuration is and how a request to it authenticates.
pub struct Setup {
    pub name: &'static str,
    pub label: &'static str,
    pub filters: Vec<Value>,
    pub clusters: Vec<Value>,
    pub secrets: Vec<Value>,
    /// Headers of the measured request (besides Host).
    pub headers: Vec<(String, String)>,
    pub path: String,
    /// Expected status; with 200 the upstream must see `x-auth-request-user` when `identity`.
    pub status: u16,
    pub identity: bool,
    /// Status of the same request without credentials (`None`: not checked).
    pub unauthenticated: Option<u16>,
    /// A cookie the answer must set (`name=`), e.g. the session after a callback.
    pub sets_cookie: Option<&'static str>,
    pub side: Option<Proc>,
}

fn cluster(name: &str, port: u16) -> Value {
    json!({"name": name, "type": "STATIC", "connect_timeout": "2s",
           "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
               {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}})
}

pub fn bootstrap(port: u16, app: u16, s: &Setup) -> Value {
    let mut filters = s.filters.clone();
    filters.push(json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
    let mut clusters = vec![cluster("app", app)];
    clusters.extend(s.clusters.clone());
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{"name": "gateway", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "gateway", "normalize_path": true,
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]}]},
                    "http_filters": filters}}]}]}],
            "clusters": clusters,
            "secrets": s.secrets,
        }
    })
}

/// oidc-gate with default options (the four `X-Auth-Request-*` headers, no tokens kept), its
/// provider by discovery, bearer tokens of the API audience accepted on `/api/`.
pub fn oidc_gate_config() -> Value {
    json!({
        "oidc_issuer_url": ISSUER, "client_id": CLIENT_ID, "client_secret": "bench",
        "cookie_secret": COOKIE_SECRET, "cookie_secure": false,
        "idp_cluster": "idp",
        "skip_jwt_bearer_tokens": true,
        "extra_jwt_issuers": [format!("{ISSUER}={API_AUDIENCE}")],
        "api_routes": ["^/api/"],
    })
}

/// A session cookie minted with the filter's own codec.
fn session_cookie(config: &Value) -> String {
    let parsed = oidc_gate_core::Config::parse(config.to_string().as_bytes(), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let gate = oidc_gate_core::Gate::new(parsed);
    let t = now();
    let session = oidc_gate_core::session::Session {
        id: "bench".into(),
        user: "00u-alice".into(),
        sub: "00u-alice".into(),
        email: "alice@example.com".into(),
        groups: vec!["admins".into(), "everyone".into()],
        preferred_username: "alice".into(),
        claims: Default::default(),
        rule_claims: Default::default(),
        created_at: t,
        expires_at: t + 3600,
        refreshed_at: t,
        active_at: t,
        tokens_expire_at: Some(t + 3600),
        id_token: None,
        access_token: None,
        refresh_token: None,
    };
    struct Rng(u8);
    impl oidc_gate_core::Entropy for Rng {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), oidc_gate_core::EntropyError> {
            for b in buf {
                self.0 = self.0.wrapping_add(31);
                *b = self.0;
            }
            Ok(())
        }
    }
    let parts = gate
        .sessions()
        .encode(&session, &mut Rng(7))
        .unwrap_or_else(|_| panic!("encode"));
    parts
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Cookies Envoy's OAuth2 filter accepts as signed in: an HMAC over
/// `domain\nexpires\naccess\nid\nrefresh` and the access token AES-256-CBC encrypted.
fn oauth2_cookies(host: &str) -> String {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let expires = (now() + 3600).to_string();
    let access = "bench-access-token";
    let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_SECRET.as_bytes()).expect("hmac key");
    mac.update(format!("{host}\n{expires}\n{access}\n\n").as_bytes());
    let hmac = STANDARD.encode(mac.finalize().into_bytes());
    let key: [u8; 32] = Sha256::digest(HMAC_SECRET.as_bytes()).into();
    let iv = [7u8; 16];
    let ct = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(access.as_bytes());
    let mut blob = iv.to_vec();
    blob.extend(ct);
    format!(
        "OauthHMAC={hmac}; OauthExpires={expires}; BearerToken={}",
        URL_SAFE_NO_PAD.encode(blob)
    )
}

fn wasm_filter(config: Value, wasm: PathBuf) -> Value {
    let mut p = Plugin::new(config);
    p.wasm = wasm;
    p.http_filter()
}

fn envoy_oauth2(idp: u16) -> Value {
    json!({"name": "envoy.filters.http.oauth2", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2",
        "config": {
            "token_endpoint": {"cluster": "idp", "uri": format!("http://127.0.0.1:{idp}/token"), "timeout": "3s"},
            "authorization_endpoint": format!("http://127.0.0.1:{idp}/authorize"),
            "redirect_uri": "http://%REQ(:authority)%/callback",
            "redirect_path_matcher": {"path": {"exact": "/callback"}},
            "signout_path": {"path": {"exact": "/signout"}},
            "credentials": {"client_id": CLIENT_ID, "token_secret": {"name": "token"}, "hmac_secret": {"name": "hmac"}},
            "forward_bearer_token": true,
            "auth_scopes": ["openid"]}}})
}

fn jwt_authn(jwks: &str, cache: bool) -> Value {
    let mut provider = json!({"issuer": ISSUER, "audiences": [API_AUDIENCE], "local_jwks": {"inline_string": jwks}, "forward": true});
    if cache {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 100});
    }
    json!({"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"bench": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]}})
}

fn ext_authz(port: u16) -> Value {
    json!({"name": "envoy.filters.http.ext_authz", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "http_service": {
            "server_uri": {"uri": format!("http://127.0.0.1:{port}"), "cluster": "authorizer", "timeout": "1s"},
            "authorization_response": {"allowed_upstream_headers": {"patterns": [{"prefix": "x-auth-request-"}]}}}}})
}

/// The ext_authz authorizer, a process of its own (its CPU is reported beside Envoy's).
fn authorizer() -> (Proc, u16) {
    let port = free_port();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("authorizer")))
        .expect("authorizer binary");
    let mut cmd = Command::new(exe);
    cmd.arg(port.to_string());
    let proc = Proc::spawn(
        "bench-authorizer",
        cmd,
        &tools::artifacts_dir().join("bench-authorizer.log"),
        false,
    )
    .expect("authorizer");
    std::thread::sleep(std::time::Duration::from_millis(200));
    (proc, port)
}

pub fn all(k: &Keys, idp: &Idp, listen: &BTreeMap<&str, u16>) -> Vec<Setup> {
    let gate_wasm = tools::wasm_module();
    let config = oidc_gate_config();
    let mut no_cache = config.clone();
    no_cache["session_cache_size"] = json!(0);
    let gate = |config: &Value| wasm_filter(config.clone(), gate_wasm.clone());
    let bearer = format!("Bearer {}", k.rs256(API_AUDIENCE, 0));
    let html = ("accept".to_string(), "text/html".to_string());
    let session = vec![html.clone(), ("cookie".into(), session_cookie(&config))];
    let idp_cluster = vec![cluster("idp", idp.port)];
    let base = |name, label| Setup {
        name,
        label,
        filters: vec![],
        clusters: vec![],
        secrets: vec![],
        headers: vec![],
        path: "/".into(),
        status: 200,
        identity: false,
        unauthenticated: None,
        sets_cookie: None,
        side: None,
    };
    let (auth_proc, auth_port) = authorizer();
    vec![
        base("baseline", "1. no authentication"),
        Setup {
            filters: vec![gate(&config)],
            clusters: idp_cluster.clone(),
            headers: session.clone(),
            identity: true,
            unauthenticated: Some(302),
            ..base(
                "oidc-gate-session",
                "2. oidc-gate, signed-in browser (session cookie)",
            )
        },
        Setup {
            filters: vec![gate(&no_cache)],
            clusters: idp_cluster.clone(),
            headers: session,
            identity: true,
            ..base(
                "oidc-gate-session-uncached",
                "2b. oidc-gate, signed in, session cache off (decrypt + parse each request)",
            )
        },
        Setup {
            filters: vec![gate(&config)],
            clusters: idp_cluster.clone(),
            headers: vec![("authorization".into(), bearer.clone())],
            path: "/api/items".into(),
            identity: true,
            unauthenticated: Some(401),
            ..base(
                "oidc-gate-bearer",
                "3. oidc-gate, bearer JWT RS256 (verified-token cache)",
            )
        },
        Setup {
            filters: vec![envoy_oauth2(idp.port)],
            clusters: idp_cluster.clone(),
            secrets: vec![
                json!({"name": "token", "generic_secret": {"secret": {"inline_string": "bench-client-secret"}}}),
                json!({"name": "hmac", "generic_secret": {"secret": {"inline_string": HMAC_SECRET}}}),
            ],
            headers: vec![
                html.clone(),
                (
                    "cookie".into(),
                    oauth2_cookies(&format!("127.0.0.1:{}", listen["envoy-oauth2"])),
                ),
            ],
            unauthenticated: Some(302),
            ..base("envoy-oauth2", "4. Envoy OAuth2 filter (C++), signed in")
        },
        Setup {
            filters: vec![jwt_authn(&k.jwks, false)],
            headers: vec![("authorization".into(), bearer.clone())],
            path: "/api/items".into(),
            unauthenticated: Some(401),
            ..base("jwt-authn", "5. Envoy jwt_authn RS256")
        },
        Setup {
            filters: vec![ext_authz(auth_port)],
            clusters: vec![cluster("authorizer", auth_port)],
            headers: vec![html.clone()],
            identity: true,
            side: Some(auth_proc),
            ..base(
                "ext-authz",
                "6. ext_authz HTTP hop to a minimal authorizer (OAuth2-Proxy topology)",
            )
        },
        Setup {
            filters: vec![gate(&config)],
            clusters: idp_cluster.clone(),
            headers: vec![html.clone()],
            status: 302,
            ..base(
                "oidc-gate-redirect",
                "7. oidc-gate, new login step 1: 302 to the IdP",
            )
        },
        Setup {
            filters: vec![gate(&config)],
            clusters: idp_cluster,
            headers: vec![html],
            status: 302,
            ..base(
                "oidc-gate-callback",
                "7b. oidc-gate, new login step 2: callback (token call-out to a local IdP, RS256 ID token check, session cookie)",
            )
        },
        Setup {
            filters: vec![wasm_filter(json!({}), tools::trivial_filter_module())],
            ..base("trivial-wasm", "8. trivial Rust Wasm filter (floor)")
        },
        Setup {
            filters: vec![wasm_filter(
                json!({"host_calls": true}),
                tools::trivial_filter_module(),
            )],
            identity: true,
            ..base(
                "trivial-wasm-host-calls",
                "8b. trivial Wasm filter making oidc-gate's host calls (header map read, 4 headers and the cookie set, clock, counter)",
            )
        },
        Setup {
            filters: vec![jwt_authn(&k.jwks, true)],
            headers: vec![("authorization".into(), bearer)],
            path: "/api/items".into(),
            unauthenticated: Some(401),
            ..base(
                "jwt-authn-cache",
                "9. Envoy jwt_authn RS256 with jwt_cache_config",
            )
        },
    ]
}

/// The callback configuration's request: a login started on that Envoy (its state and login
/// cookie), the IdP set to answer with an ID token for its nonce. Replaying it is a complete
/// callback each time, as the filter keeps no server-side state of a login.
pub fn prepare_callback(s: &mut Setup, port: u16, idp: &Idp, keys: &Keys) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let r = agent
        .get(&format!("http://127.0.0.1:{port}/"))
        .set("accept", "text/html")
        .call()
        .map_err(|e| format!("start a login: {e}"))?;
    let location = r.header("location").unwrap_or_default().to_string();
    let cookie = r
        .all("set-cookie")
        .into_iter()
        .find(|c| c.contains("_csrf="))
        .and_then(|c| c.split(';').next())
        .ok_or("no login cookie")?
        .to_string();
    let query: BTreeMap<String, String> = url::Url::parse(&location)
        .map_err(|e| format!("{location}: {e}"))?
        .query_pairs()
        .into_owned()
        .collect();
    let (state, nonce) = (
        query.get("state").ok_or("no state")?,
        query.get("nonce").ok_or("no nonce")?,
    );
    idp.set_id_token(keys.id_token(nonce));
    s.path = format!("/oauth2/callback?code=bench-code&state={state}");
    s.headers.push(("cookie".into(), cookie));
    s.sets_cookie = Some("_oauth2_proxy=");
    Ok(())
}
