//! Hostile input, IdP faults and what operators see, through the real Envoy: every attack ends
//! in a clear error status with nothing passed upstream; IdP faults give login pages that say
//! so while signed-in users keep working; metrics and error pages are there to be seen.

use std::time::Duration;

use base64::Engine as _;
use e2e::fault::{Fault, FaultProxy};
use e2e::idp::{ALICE, BOB};
use e2e::{tools, Browser, Reply, Stack, StackOptions};
use serde_json::json;

fn b64(v: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn nothing_upstream(r: &Reply) {
    assert!(r.seen().is_none(), "reached the app: {r:?}");
}

#[test]
fn attacks_end_in_clear_errors_and_never_reach_the_app_unauthenticated() {
    let s = Stack::with_config(
        "attacks",
        json!({
            "skip_jwt_bearer_tokens": true,
            "extra_jwt_issuers": ["{issuer}=api://default"],
            "skip_auth_routes": ["GET=^/public/"],
        }),
    );
    let issuer = s.idp.issuer.clone();
    let mut api = Browser::api();
    let good = s.idp.client_credentials_token();
    let parts: Vec<&str> = good.split('.').collect();
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("b64"),
    )
    .expect("json");
    let kid = {
        let h: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[0])
                .expect("b64"),
        )
        .expect("json");
        h["kid"].as_str().unwrap_or_default().to_string()
    };
    let mut other_aud = payload.clone();
    other_aud["aud"] = json!("api://someone-else");
    let mut other_iss = payload.clone();
    other_iss["iss"] = json!("https://evil.example/oauth2/default");
    let bearer_attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&payload)),
        ),
        (
            "HS256 keyed with the public key",
            format!(
                "{}.{}.{}",
                b64(&json!({"alg": "HS256", "kid": kid})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "another audience, original signature",
            format!("{}.{}.{}", parts[0], b64(&other_aud), parts[2]),
        ),
        (
            "another issuer",
            format!("{}.{}.{}", parts[0], b64(&other_iss), parts[2]),
        ),
        ("signature cut", format!("{}.{}.", parts[0], parts[1])),
        ("not a JWT", "opaque-token-value".into()),
        ("huge", "a".repeat(20_000)),
    ];
    for (name, token) in &bearer_attacks {
        let r = api.send(
            "GET",
            &s.url("/api/data"),
            &[("authorization", &format!("Bearer {token}"))],
            None,
        );
        assert!(r.status == 401 || r.status == 431, "{name}: {}", r.status);
        nothing_upstream(&r);
    }
    // The genuine token passes; two Authorization headers never count as one good one.
    let ok = api.send(
        "GET",
        &s.url("/api/data"),
        &[("authorization", &format!("Bearer {good}"))],
        None,
    );
    assert_eq!(ok.status, 200);
    let dup_status = {
        use std::io::{Read, Write};
        let mut conn =
            std::net::TcpStream::connect(("127.0.0.1", s.envoys[0].port)).expect("connect");
        let request = format!(
            "GET /api/data HTTP/1.1\r\nhost: localhost\r\naccept: application/json\r\nauthorization: Bearer {good}\r\nauthorization: Bearer forged\r\nconnection: close\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        let _ = conn.read_to_string(&mut response);
        response.split_whitespace().nth(1).unwrap_or("").to_string()
    };
    assert!(
        dup_status == "401" || dup_status == "400",
        "duplicate Authorization: {dup_status}"
    );

    // Cookies: oversized, malformed, foreign.
    let mut b = Browser::new();
    for (name, cookie) in [
        (
            "malformed",
            "_oauth2_proxy=%%%; _oauth2_proxy_0=;;; =x".to_string(),
        ),
        (
            "foreign",
            "_oauth2_proxy=AXhhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh".to_string(),
        ),
        (
            "many parts",
            (0..40)
                .map(|i| format!("_oauth2_proxy_{i}=AAAA"))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ("oversized", format!("_oauth2_proxy={}", "A".repeat(70_000))),
    ] {
        let r = api.send("GET", &s.url("/"), &[("cookie", &cookie)], None);
        assert!(r.status == 401 || r.status == 431, "{name}: {}", r.status);
        nothing_upstream(&r);
    }
    // Path tricks against skip_auth_routes: only the real public path passes.
    for path in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "//public/../admin",
        "/admin?/public/",
        "/PUBLIC/x",
    ] {
        let r = api.get(&s.url(path));
        assert_eq!(r.status, 401, "{path}: {r:?}");
        nothing_upstream(&r);
    }
    assert_eq!(api.get(&s.url("/public/app.css")).status, 200);
    // A callback with a state from another browser, and with garbage.
    for q in [
        "code=x&state=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "code=&state=",
        "state=%00%ff",
        "error=%3Cscript%3E&state=x",
    ] {
        let r = b.get(&s.url(&format!("/oauth2/callback?{q}")));
        assert!(matches!(r.status, 400 | 403 | 502), "{q}: {}", r.status);
        assert!(!r.body.contains("<script>"));
        nothing_upstream(&r);
    }
    // Open redirects after sign-out.
    for rd in [
        "https://evil.example/",
        "//evil.example",
        "/%5Cevil.example",
        "javascript:alert(1)",
        "https://evil.example%40localhost/",
    ] {
        let r = b.get(&s.url(&format!(
            "/oauth2/sign_out?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        )));
        assert_eq!(r.header("location"), Some("/"), "{rd}");
    }
    let log = s.envoy_log();
    assert!(!log.contains(&good), "no token in the log");
    assert!(!log.contains("panicked"), "no panic");
    let _ = issuer;
}

#[test]
fn idp_faults_give_login_error_pages_while_signed_in_users_keep_working_and_recovery_is_automatic()
{
    let proxy = FaultProxy::start();
    let s = Stack::start(
        "faults",
        StackOptions {
            fault: Some(proxy.clone()),
            ..StackOptions::default()
        },
    );
    let mut alice = Browser::new();
    alice.signs_in(&s.url("/"), &ALICE);
    let cases = [
        (
            Fault::Delay(Duration::from_millis(3500)),
            503,
            "unavailable",
        ),
        (Fault::Drop, 503, "unavailable"),
        (Fault::Status500, 502, "did not accept"),
        (Fault::Garbage, 502, "could not be verified"),
        (Fault::Huge, 502, "could not be verified"),
    ];
    for (fault, status, words) in cases {
        let mut bob = Browser::new();
        let callback = bob.login_until_callback(&s.url("/"), "bob", "bob-pw");
        proxy.set("/v1/token", fault.clone());
        let r = bob.get(&callback);
        assert_eq!(r.status, status, "{fault:?}: {r:?}");
        assert!(r.body.contains(words), "{fault:?}: {}", r.body);
        nothing_upstream(&r);
        assert_eq!(alice.get(&s.url("/still-working")).status, 200, "{fault:?}");
        proxy.set("/v1/token", Fault::Pass);
    }
    // The IdP is back: logins work again without a restart.
    let mut bob = Browser::new();
    bob.signs_in(&s.url("/"), &BOB);
    let stats = ureq::get(&format!(
        "http://127.0.0.1:{}/stats/prometheus",
        s.envoys[0].admin_port
    ))
    .call()
    .expect("stats")
    .into_string()
    .expect("text");
    assert!(
        stats.contains("oidc_gate_login_failed_idp_unreachable"),
        "metrics by reason"
    );
    assert!(
        stats.contains("oidc_gate_idp_failures_token_"),
        "failures by endpoint"
    );
}

#[test]
fn jwks_and_discovery_unreachable_at_start_mean_503_until_the_idp_answers() {
    let proxy = FaultProxy::start();
    proxy.set("/.well-known/openid-configuration", Fault::Drop);
    let s = Stack::start(
        "startdown",
        StackOptions {
            fault: Some(proxy.clone()),
            no_wait: true,
            ..StackOptions::default()
        },
    );
    let mut b = Browser::new();
    std::thread::sleep(Duration::from_millis(1500));
    let r = b.get(&s.url("/"));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("5"));
    nothing_upstream(&r);
    // The same page as a browser shows it.
    let (chromium, driver) = tools::browser();
    let shot = tools::artifacts_dir().join("error-page-503.png");
    let out = std::process::Command::new("node")
        .current_dir(&driver)
        .arg("shot.mjs")
        .arg(s.url("/"))
        .arg(&shot)
        .arg(&chromium)
        .output()
        .expect("node");
    let page: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json");
    assert_eq!(page["status"], 503);
    assert!(
        page["text"].as_str().unwrap_or("").contains("Request ID"),
        "{page}"
    );
    // Discovery comes back but the JWKS is a 1 MiB answer (not read), then garbage: still 503.
    proxy.set("/.well-known/openid-configuration", Fault::Pass);
    proxy.set("/v1/keys", Fault::Huge);
    let mut refused_huge = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        if s.envoy_log()
            .contains("larger than 256 KiB and was not read")
        {
            refused_huge = true;
            break;
        }
    }
    assert!(refused_huge, "{}", s.envoy_log());
    assert_eq!(b.get(&s.url("/")).status, 503);
    proxy.set("/v1/keys", Fault::Garbage);
    std::thread::sleep(Duration::from_millis(4500));
    assert_eq!(b.get(&s.url("/")).status, 503);
    proxy.set("/v1/keys", Fault::Pass);
    let mut status = 0;
    for _ in 0..60 {
        status = b.get(&s.url("/")).status;
        if status == 302 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(status, 302, "recovered by itself:\n{}", s.envoy_log());
    assert!(s.envoy_log().contains("fetch failed, will retry"));
}

#[test]
fn operators_see_metrics_in_prometheus_and_clean_error_pages_in_a_browser() {
    let s = Stack::with_config("operators", json!({"allowed_groups": ["admins"]}));
    let mut alice = Browser::new();
    alice.signs_in(&s.url("/"), &ALICE);
    Browser::api().get(&s.url("/"));
    std::thread::sleep(Duration::from_millis(1200));
    let admin = format!("http://127.0.0.1:{}", s.envoys[0].admin_port);
    let prom = ureq::get(&format!("{admin}/stats/prometheus"))
        .call()
        .expect("stats")
        .into_string()
        .expect("text");
    for metric in [
        "oidc_gate_login_started",
        "oidc_gate_login_completed",
        "oidc_gate_session_accepted",
        "oidc_gate_session_rejected_no_session",
        "oidc_gate_idp_latency_ms_token",
        "oidc_gate_jwks_age_seconds",
    ] {
        assert!(
            prom.contains(metric),
            "{metric} missing from /stats/prometheus"
        );
    }
    let stats = ureq::get(&format!("{admin}/stats"))
        .call()
        .expect("stats")
        .into_string()
        .expect("text");
    assert!(stats.contains("wasmcustom.oidc_gate_login_completed"));
    // One log line per decision, with the request id and no secrets.
    let log = s.envoy_log();
    assert!(
        log.lines()
            .any(|l| l.contains("login_completed id=") && l.contains("status=302")),
        "{log}"
    );

    assert!(
        log.lines()
            .any(|l| l.contains("authenticated id=") && l.contains("user=00u-alice")),
        "{log}"
    );

    // The 403 page as a browser shows it.
    let shot = tools::artifacts_dir().join("error-page-403.png");
    let result = tools::chromium_login(&s.url("/grafana"), "bob", "bob-pw", &shot);
    assert_eq!(result["status"], 403);
    let text = result["text"].as_str().unwrap_or("");
    assert!(
        text.contains("not in a group")
            && text.contains("bob@example.com")
            && text.contains("Request ID"),
        "{text}"
    );
}

/// Starts Envoy with the test-only trapping module under `policy`.
fn trapping_envoy(name: &str, policy: &str) -> (e2e::envoy::Envoy, e2e::echo::Echo) {
    use e2e::envoy::{bootstrap, free_port, Envoy, Plugin};
    let echo = e2e::echo::Echo::start();
    let mut plugin = Plugin::new(json!({}));
    plugin.wasm = tools::panic_probe_module();
    plugin.failure_policy = policy.into();
    let cfg = bootstrap(free_port(), echo.port, &plugin, &[]);
    let envoy = Envoy::start(name, &cfg, 1).expect("envoy");
    (envoy, echo)
}

/// Sends the request that makes the probe trap; the reply, if any, must not come from the app.
fn trap(envoy: &e2e::envoy::Envoy) {
    let trapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut b = Browser::api();
        b.send("GET", &envoy.url("/boom"), &[("x-panic", "1")], None)
    }));
    if let Ok(r) = &trapped {
        assert!(r.status >= 500, "the trapping request: {r:?}");
        nothing_upstream(r);
    }
}

#[test]
fn a_filter_that_traps_under_fail_closed_lets_nothing_through() {
    let (envoy, _echo) = trapping_envoy("trap", "FAIL_CLOSED");
    let mut b = Browser::api();
    assert_eq!(
        b.get(&envoy.url("/before")).status,
        200,
        "the probe passes ordinary requests"
    );
    trap(&envoy);
    // The VM is dead for this worker: later requests get 503, never the upstream.
    let after = b.get(&envoy.url("/after"));
    assert_eq!(after.status, 503, "{after:?}");
    nothing_upstream(&after);
    assert!(envoy
        .log_text()
        .contains("panic-probe: a panic inside a filter"));
}

#[test]
fn a_filter_that_traps_under_fail_reload_is_replaced_and_the_gateway_recovers_by_itself() {
    let (envoy, _echo) = trapping_envoy("reload", "FAIL_RELOAD");
    let mut b = Browser::api();
    assert_eq!(b.get(&envoy.url("/before")).status, 200);
    trap(&envoy);
    // Until the VM is replaced (backoff from 1 s) requests fail closed; then they pass again.
    let mut statuses = Vec::new();
    for _ in 0..60 {
        let r = b.get(&envoy.url("/after"));
        statuses.push(r.status);
        if r.status == 200 {
            assert!(r.seen().is_some());
            break;
        }
        nothing_upstream(&r);
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        statuses.last(),
        Some(&200),
        "{statuses:?}\n{}",
        envoy.log_text()
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    // And it traps and recovers again: the replacement is a working filter.
    trap(&envoy);
    let recovered = (0..60).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        b.get(&envoy.url("/again")).status == 200
    });
    assert!(recovered, "{}", envoy.log_text());
}
