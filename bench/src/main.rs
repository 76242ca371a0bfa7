//! envoy-bench: one Envoy per configuration (`--concurrency 1`) in front of the same upstream,
//! driven by wrk, rounds interleaved; Envoy's CPU per request from /proc, latency under load and
//! one at a time, RSS; a Markdown table and a JSON file in target/bench/. `--quick` runs every
//! configuration briefly (the test suite does, to prove each starts and authenticates as
//! intended; it never asserts numbers).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use e2e::echo::Echo;
use e2e::envoy::{free_port, Envoy, Plugin};
use e2e::procs::Proc;
use e2e::tools;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.bench.test";
const CLIENT_ID: &str = "bench-client";
const COOKIE_SECRET: &str = "YmVuY2gtY29va2llLXNlY3JldC0zMi1ieXRlcy1vayE=";
const HMAC_SECRET: &str = "bench-hmac-secret-for-envoy-oauth2-filter";

/// What one configuration is and how a request to it authenticates.
struct Setup {
    name: &'static str,
    label: &'static str,
    filters: Vec<Value>,
    clusters: Vec<Value>,
    secrets: Vec<Value>,
    /// Headers of the measured request (besides Host).
    headers: Vec<(String, String)>,
    path: &'static str,
    /// Expected status; with 200 the upstream must see `x-auth-request-user` when `identity`.
    status: u16,
    identity: bool,
    /// Status of the same request without credentials (`None`: not checked).
    unauthenticated: Option<u16>,
    side: Option<Proc>,
}

fn cluster(name: &str, port: u16) -> Value {
    json!({"name": name, "type": "STATIC", "connect_timeout": "2s",
           "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
               {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}})
}

fn bootstrap(port: u16, app: u16, s: &Setup) -> Value {
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

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Keys {
    rsa: RS256KeyPair,
    jwks: String,
}

fn keys() -> Keys {
    let rsa = RS256KeyPair::from_pem(include_str!("../../filter/core/testdata/rsa-test-key.pem"))
        .map(|k| k.with_key_id("bench"))
        .unwrap_or_else(|e| panic!("key: {e}"));
    let c = rsa.public_key().to_components();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)}]})
    .to_string();
    Keys { rsa, jwks }
}

fn token(k: &Keys, aud: &str, jti: usize) -> String {
    let claims = Claims::with_custom_claims(
        json!({"email": "alice@example.com", "groups": ["admins", "everyone"], "preferred_username": "alice"}),
        Duration::from_secs(3600),
    )
    .with_issuer(ISSUER)
    .with_audience(aud)
    .with_subject("00u-alice")
    .with_jwt_id(jti.to_string());
    k.rsa.sign(claims).unwrap_or_else(|e| panic!("sign: {e}"))
}

/// A static HTTP server for the JWKS (the only thing the filters fetch).
fn serve_jwks(jwks: String) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}", jwks.len(), jwks);
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    port
}

fn oidc_gate_config(idp: u16) -> Value {
    json!({
        "oidc_issuer_url": ISSUER, "client_id": CLIENT_ID, "client_secret": "bench",
        "cookie_secret": COOKIE_SECRET, "cookie_secure": false,
        "skip_oidc_discovery": true,
        "login_url": format!("http://127.0.0.1:{idp}/authorize"),
        "redeem_url": format!("http://127.0.0.1:{idp}/token"),
        "oidc_jwks_url": format!("http://127.0.0.1:{idp}/jwks"),
        "idp_cluster": "idp",
        "set_xauthrequest": true, "set_authorization_header": true,
        "skip_jwt_bearer_tokens": true,
        "extra_jwt_issuers": [format!("{ISSUER}=api://default")],
        "api_routes": ["^/api/"],
    })
}

/// A session cookie minted with the filter's own codec.
fn session_cookie(config: &Value, id_token: String) -> String {
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
        created_at: t,
        expires_at: t + 3600,
        refreshed_at: t,
        tokens_expire_at: Some(t + 3600),
        id_token: Some(oidc_gate_core::secret::IdToken::new(id_token)),
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

/// Cookies Envoy's OAuth2 filter accepts as signed in (shared/notes/envoy-peers.md): an HMAC
/// over `domain\nexpires\naccess\nid\nrefresh` and the access token AES-256-CBC encrypted.
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

fn jwt_authn(jwks: &str, cache: bool) -> Value {
    let mut provider = json!({"issuer": ISSUER, "audiences": ["api://default"], "local_jwks": {"inline_string": jwks}, "forward": true});
    if cache {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 100});
    }
    json!({"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"bench": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]}})
}

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

fn setups(k: &Keys, idp: u16, listen: &BTreeMap<&str, u16>) -> Vec<Setup> {
    let gate_wasm = tools::wasm_module();
    let config = oidc_gate_config(idp);
    let bearer = format!("Bearer {}", token(k, "api://default", 0));
    let html = ("accept".to_string(), "text/html".to_string());
    let base = |name, label| Setup {
        name,
        label,
        filters: vec![],
        clusters: vec![],
        secrets: vec![],
        headers: vec![],
        path: "/",
        status: 200,
        identity: false,
        unauthenticated: None,
        side: None,
    };
    let (auth_proc, auth_port) = authorizer();
    vec![
        base("baseline", "1. no authentication"),
        Setup {
            filters: vec![wasm_filter(config.clone(), gate_wasm.clone())],
            clusters: vec![cluster("idp", idp)],
            headers: vec![
                html.clone(),
                (
                    "cookie".into(),
                    session_cookie(&config, token(k, CLIENT_ID, 1)),
                ),
            ],
            identity: true,
            unauthenticated: Some(302),
            ..base(
                "oidc-gate-session",
                "2. oidc-gate, signed-in browser (session cookie)",
            )
        },
        Setup {
            filters: vec![wasm_filter(config.clone(), gate_wasm.clone())],
            clusters: vec![cluster("idp", idp)],
            headers: vec![("authorization".into(), bearer.clone())],
            path: "/api/items",
            identity: true,
            unauthenticated: Some(401),
            ..base(
                "oidc-gate-bearer",
                "3. oidc-gate, bearer JWT RS256 (verified-token cache)",
            )
        },
        Setup {
            filters: vec![
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
                    "auth_scopes": ["openid"]}}}),
            ],
            clusters: vec![cluster("idp", idp)],
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
            path: "/api/items",
            unauthenticated: Some(401),
            ..base("jwt-authn", "5. Envoy jwt_authn RS256")
        },
        Setup {
            filters: vec![
                json!({"name": "envoy.filters.http.ext_authz", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                "http_service": {
                    "server_uri": {"uri": format!("http://127.0.0.1:{auth_port}"), "cluster": "authorizer", "timeout": "1s"},
                    "authorization_response": {"allowed_upstream_headers": {"patterns": [{"prefix": "x-auth-request-"}]}}}}}),
            ],
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
            filters: vec![wasm_filter(config.clone(), gate_wasm.clone())],
            clusters: vec![cluster("idp", idp)],
            headers: vec![html.clone()],
            status: 302,
            ..base(
                "oidc-gate-redirect",
                "7. oidc-gate, no session: 302 to the IdP",
            )
        },
        Setup {
            filters: vec![wasm_filter(json!({}), tools::trivial_filter_module())],
            ..base("trivial-wasm", "8. trivial Rust Wasm filter (floor)")
        },
        Setup {
            filters: vec![jwt_authn(&k.jwks, true)],
            headers: vec![("authorization".into(), bearer)],
            path: "/api/items",
            unauthenticated: Some(401),
            ..base(
                "jwt-authn-cache",
                "9. Envoy jwt_authn RS256 with jwt_cache_config",
            )
        },
    ]
}

#[derive(Default, Clone, Debug)]
struct Run {
    rps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    requests: u64,
    cpu_us_per_request: f64,
    side_cpu_us_per_request: f64,
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// wrk's duration text ("1.23ms", "850.00us", "1.10s") in microseconds.
fn micros(text: &str) -> f64 {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        (t, 1.0)
    };
    num.parse::<f64>().unwrap_or(0.0) * scale
}

fn wrk(
    url: &str,
    headers: &[(String, String)],
    connections: u32,
    secs: f64,
    script: Option<&PathBuf>,
    pid: u32,
    side: Option<u32>,
) -> Run {
    let wrk = tools::wrk();
    let mut cmd = Command::new(wrk);
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{}s", secs.max(1.0) as u64),
        "--latency",
    ]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(url);
    let (before, side_before) = (cpu_ticks(pid), side.map(cpu_ticks).unwrap_or(0));
    let out = cmd.output().expect("run wrk");
    let (after, side_after) = (cpu_ticks(pid), side.map(cpu_ticks).unwrap_or(0));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut run = Run::default();
    for line in text.lines() {
        let l = line.trim();
        let mut it = l.split_whitespace();
        match (it.next(), it.next()) {
            (Some("50%"), Some(v)) => run.p50 = micros(v),
            (Some("90%"), Some(v)) => run.p90 = micros(v),
            (Some("99%"), Some(v)) => run.p99 = micros(v),
            (Some("Requests/sec:"), Some(v)) => run.rps = v.parse().unwrap_or(0.0),
            _ => {}
        }
        if l.contains(" requests in ") {
            run.requests = l
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    let tick_us = 1_000_000.0 / 100.0;
    if run.requests > 0 {
        run.cpu_us_per_request = (after - before) as f64 * tick_us / run.requests as f64;
        run.side_cpu_us_per_request =
            (side_after - side_before) as f64 * tick_us / run.requests as f64;
    }
    run
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One request with the setup's headers, and one without credentials: as intended?
fn check(s: &Setup, port: u16) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let send = |headers: &[(String, String)]| {
        let mut r = agent.get(&format!("http://127.0.0.1:{port}{}", s.path));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        match r.call() {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    };
    let (status, body) = send(&s.headers);
    if status != s.status {
        return Err(format!(
            "{}: expected {}, got {status}: {body:.300}",
            s.name, s.status
        ));
    }
    if s.identity && !body.contains("x-auth-request-user") {
        return Err(format!(
            "{}: no identity reached the upstream: {body:.300}",
            s.name
        ));
    }
    if let Some(expected) = s.unauthenticated {
        let bare: Vec<(String, String)> = s
            .headers
            .iter()
            .filter(|(k, _)| k == "accept")
            .cloned()
            .collect();
        let (status, _) = send(&bare);
        if status != expected {
            return Err(format!(
                "{}: without credentials expected {expected}, got {status}",
                s.name
            ));
        }
    }
    Ok(())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, load_secs, serial_secs) = if quick { (1, 1.0, 1.0) } else { (3, 5.0, 3.0) };
    let k = keys();
    let idp = serve_jwks(k.jwks.clone());
    let echo = Echo::start();
    let names = [
        "baseline",
        "oidc-gate-session",
        "oidc-gate-bearer",
        "envoy-oauth2",
        "jwt-authn",
        "ext-authz",
        "oidc-gate-redirect",
        "trivial-wasm",
        "jwt-authn-cache",
    ];
    let listen: BTreeMap<&str, u16> = names.iter().map(|n| (*n, free_port())).collect();
    let mut setups = setups(&k, idp, &listen);

    // Start every Envoy once; note start-to-ready.
    let mut envoys: Vec<(Envoy, f64)> = Vec::new();
    for s in &setups {
        let port = listen[s.name];
        let started = Instant::now();
        // Istio runs proxies with the wasm logger at warning.
        let config = bootstrap(port, echo.port, s);
        let e = Envoy::start_with_log(&format!("bench-{}", s.name), &config, 1, &[], "warning")
            .unwrap_or_else(|e| panic!("{e}"));
        envoys.push((e, started.elapsed().as_secs_f64()));
    }
    // Let the filters load their keys, then check each authenticates as intended.
    let mut failures = Vec::new();
    for (s, (e, _)) in setups.iter().zip(&envoys) {
        let mut result = Err(String::new());
        for _ in 0..50 {
            result = check(s, e.port);
            if result.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        if let Err(msg) = result {
            failures.push(msg);
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("check failed: {f}");
        }
        std::process::exit(1);
    }

    // First verification of a bearer token: every request a new token (cache misses).
    let distinct = if quick { 300 } else { 3000 };
    let tokens: Vec<String> = (0..distinct)
        .map(|i| token(&k, "api://default", 10 + i))
        .collect();
    let script = tools::artifacts_dir().join("bench-distinct-tokens.lua");
    let lua = format!(
        "tokens = {{{}}}\ni = 0\nrequest = function()\n  i = i % #tokens + 1\n  return wrk.format(nil, nil, {{[\"Authorization\"] = \"Bearer \" .. tokens[i]}})\nend\n",
        tokens.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(",")
    );
    std::fs::write(&script, lua).expect("lua");

    let mut load: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    let mut serial: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    let mut first_verification = Vec::new();
    for round in 0..rounds {
        for (s, (e, _)) in setups.iter().zip(&envoys) {
            let url = format!("http://127.0.0.1:{}{}", e.port, s.path);
            let pid = e.proc.pid();
            let side = s.side.as_ref().map(Proc::pid);
            eprintln!("round {}/{rounds}: {}", round + 1, s.name);
            load.entry(s.name)
                .or_default()
                .push(wrk(&url, &s.headers, 16, load_secs, None, pid, side));
            serial.entry(s.name).or_default().push(wrk(
                &url,
                &s.headers,
                1,
                serial_secs,
                None,
                pid,
                side,
            ));
            if s.name == "oidc-gate-bearer" {
                first_verification.push(wrk(&url, &[], 1, serial_secs, Some(&script), pid, None));
            }
        }
    }

    let base_cpu = median(
        load["baseline"]
            .iter()
            .map(|r| r.cpu_us_per_request)
            .collect(),
    );
    let base_p50 = median(serial["baseline"].iter().map(|r| r.p50).collect());
    let base_rss = rss_mib(envoys[0].0.proc.pid());
    let mut rows = Vec::new();
    let mut table = String::from("| configuration | req/s | p50 / p90 / p99 under load (µs) | p50 one at a time (µs) | Envoy CPU per request (µs) | added CPU (µs) | side process CPU (µs) | Envoy RSS (MiB) | CPU ratio to baseline |\n|---|---|---|---|---|---|---|---|---|\n");
    for (s, (e, _)) in setups.iter_mut().zip(&envoys) {
        let l = &load[s.name];
        let m = |f: fn(&Run) -> f64, v: &Vec<Run>| median(v.iter().map(f).collect());
        let cpu = m(|r| r.cpu_us_per_request, l);
        let side = m(|r| r.side_cpu_us_per_request, l);
        let row = json!({
            "name": s.name, "label": s.label,
            "requests_per_second": m(|r| r.rps, l),
            "p50_us": m(|r| r.p50, l), "p90_us": m(|r| r.p90, l), "p99_us": m(|r| r.p99, l),
            "serial_p50_us": m(|r| r.p50, &serial[s.name]),
            "serial_added_p50_us": m(|r| r.p50, &serial[s.name]) - base_p50,
            "envoy_cpu_us_per_request": cpu,
            "added_cpu_us_per_request": cpu - base_cpu,
            "side_cpu_us_per_request": side,
            "rss_mib": rss_mib(e.proc.pid()),
            "cpu_ratio_to_baseline": if base_cpu > 0.0 { cpu / base_cpu } else { 0.0 },
        });
        table.push_str(&format!(
            "| {} | {:.0} | {:.0} / {:.0} / {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |\n",
            s.label, row["requests_per_second"].as_f64().unwrap_or(0.0), row["p50_us"].as_f64().unwrap_or(0.0),
            row["p90_us"].as_f64().unwrap_or(0.0), row["p99_us"].as_f64().unwrap_or(0.0), row["serial_p50_us"].as_f64().unwrap_or(0.0),
            cpu, cpu - base_cpu, side, row["rss_mib"].as_f64().unwrap_or(0.0), row["cpu_ratio_to_baseline"].as_f64().unwrap_or(0.0)
        ));
        rows.push(row);
    }
    let fv = median(
        first_verification
            .iter()
            .map(|r| r.cpu_us_per_request)
            .collect(),
    );
    let fv_p50 = median(first_verification.iter().map(|r| r.p50).collect());
    let wasm = std::fs::read(tools::wasm_module()).unwrap_or_default();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let _ = e.write_all(&wasm);
        e.finish().map(|v| v.len()).unwrap_or(0)
    };
    let start_base = envoys[0].1;
    let start_gate = envoys[1].1;
    let mut extra = String::new();
    extra.push_str(&format!("\n- oidc-gate bearer token, first verification (every request a new token, no cache): {fv:.0} µs Envoy CPU per request, p50 {fv_p50:.0} µs one at a time\n"));
    extra.push_str(&format!(
        "- `oidc_gate.wasm`: {} bytes ({} gzipped)\n",
        wasm.len(),
        gz
    ));
    extra.push_str(&format!("- Envoy start to ready: {start_base:.2} s without a filter, {start_gate:.2} s with oidc-gate\n"));
    extra.push_str(&format!("- baseline Envoy RSS {base_rss:.1} MiB; rounds: {rounds}, {load_secs} s under load (16 connections) and {serial_secs} s one at a time per configuration per round, interleaved\n"));
    let out_dir = tools::target_dir().join("bench");
    let _ = std::fs::create_dir_all(&out_dir);
    let report = json!({"quick": quick, "rows": rows, "bearer_first_verification_cpu_us": fv, "bearer_first_verification_p50_us": fv_p50,
                        "wasm_bytes": wasm.len(), "wasm_gzip_bytes": gz, "start_to_ready_s": {"baseline": start_base, "oidc_gate": start_gate}});
    let _ = std::fs::write(
        out_dir.join("results.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    let md = format!("{table}{extra}");
    let _ = std::fs::write(out_dir.join("results.md"), &md);
    println!("{md}");
    println!("written: {}", out_dir.display());
}
