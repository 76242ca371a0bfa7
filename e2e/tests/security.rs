//! What an attacker tries against a gateway, through the real Envoy: paths the upstream reads
//! as another, redirects off the site after a login, identity checks skipped on a side path,
//! a refresh that another user's token answers, a step-up removed from the authorize URL, keys
//! rotated a moment ago, cookies a browser holds twice, secrets in error messages.

use e2e::envoy::{bootstrap, free_port, Envoy, Plugin};
use e2e::idp::{ALICE, BOB, DAVE};
use e2e::{tools, Browser, Reply, Stack, StackOptions};
use serde_json::json;

fn nothing_upstream(r: &Reply) {
    assert!(r.seen().is_none(), "reached the app: {r:?}");
}

#[test]
fn a_path_the_upstream_reads_as_another_never_passes_as_public_nor_under_weaker_rules() {
    let s = Stack::with_config(
        "paths",
        json!({
            "skip_auth_routes": ["GET=^/public/"],
            "policies": [{"hosts": ["localhost"], "path_prefix": "/admin", "allowed_groups": ["admins"]}],
        }),
    );
    let mut api = Browser::api();
    for path in [
        "/public/..;/admin",
        "/public/..;x=1/admin",
        "/public/%2e%2e;/admin",
        "/public/..%2fadmin",
        "/public/x/..%5c..%5cadmin",
        "/public;/../admin",
    ] {
        let r = api.get(&s.url(path));
        assert_eq!(r.status, 401, "{path}: {r:?}");
        nothing_upstream(&r);
    }
    let r = api.get(&s.url("/public/app.css;v=1"));
    assert_eq!(
        r.status, 200,
        "a parameter alone keeps a public path public"
    );
    // Bob is signed in but not an admin: every spelling of /admin is refused.
    let mut bob = Browser::new();
    bob.signs_in(&s.url("/"), &BOB);
    for path in [
        "/admin/x",
        "/public/..;/admin",
        "/ADMIN/x",
        "/Admin;jsessionid=1",
    ] {
        let r = bob.get(&s.url(path));
        assert_eq!(r.status, 403, "{path}: {r:?}");
        nothing_upstream(&r);
    }
    assert_eq!(bob.get(&s.url("/wiki")).status, 200);
}

#[test]
fn after_a_login_the_browser_never_leaves_the_site_and_long_deep_links_still_log_in() {
    let s = Stack::with_config("returnto", json!({}));
    let mut b = Browser::new();
    let hops = b.login(&s.url("//evil.example/x"), ALICE.username, ALICE.password);
    for hop in &hops {
        let location = hop.header("location").unwrap_or("");
        assert!(
            !location.starts_with("//") && !location.contains("evil.example"),
            "{location}"
        );
    }
    let last = hops.last().expect("reply");
    assert_eq!((last.status, last.url.as_str()), (200, s.url("/").as_str()));
    let mut b = Browser::new();
    let deep = format!("/reports?filter={}", "x".repeat(3000));
    let hops = b.login(&s.url(&deep), ALICE.username, ALICE.password);
    let last = hops.last().expect("reply");
    assert_eq!(last.status, 200, "{last:?}");
    assert_eq!(last.seen().map(|s| s.path), Some("/reports".into()));
}

#[test]
fn a_bearer_token_for_an_unverified_email_is_refused_as_its_login_would_be() {
    // Replica 0 lets dave (email not verified) sign in, to hand out his access token; replica 1
    // runs the defaults.
    let bearer = json!({
        "skip_jwt_bearer_tokens": true,
        "extra_jwt_issuers": ["{issuer}=api://default"],
        "pass_access_token": true,
    });
    let ports = vec![free_port(), free_port()];
    let own_callback = format!("http://localhost:{}/oauth2/callback", ports[1]);
    let s = Stack::start(
        "unverified",
        StackOptions {
            config: bearer,
            envoys: 2,
            ports: Some(ports),
            per_envoy: vec![
                json!({"insecure_oidc_allow_unverified_email": true}),
                json!({"redirect_url": own_callback}),
            ],
            ..StackOptions::default()
        },
    );
    let mut dave = Browser::new();
    let last = dave
        .login(&s.envoys[0].url("/"), DAVE.username, DAVE.password)
        .pop()
        .expect("reply");
    let token = last
        .seen()
        .and_then(|s| s.header("x-auth-request-access-token").map(str::to_string))
        .expect("dave's access token");
    let auth = format!("Bearer {token}");
    let mut api = Browser::api();
    let r = api.send(
        "GET",
        &s.envoys[1].url("/api"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.body.contains("email_unverified"), "{}", r.body);
    nothing_upstream(&r);
    let r = api.send(
        "GET",
        &s.envoys[0].url("/api"),
        &[("authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200, "allowed where the option says so");
    // And dave's own login is refused by the defaults.
    let mut again = Browser::new();
    let last = again
        .login(&s.envoys[1].url("/"), DAVE.username, DAVE.password)
        .pop()
        .expect("reply");
    assert_eq!(last.status, 403);
    assert!(last.body.contains("not verified"), "{}", last.body);
}

#[test]
fn a_refreshed_session_refreshes_again_after_a_short_cookie_refresh() {
    let s = Stack::with_config("refresh2s", json!({"cookie_refresh": "2s"}));
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let token_calls = || s.idp.count("POST", "/v1/token");
    let after_login = token_calls();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = b.get(&s.url("/first"));
    assert_eq!(r.status, 200);
    assert_eq!(
        token_calls(),
        after_login + 1,
        "the first refresh reached the IdP"
    );
    std::thread::sleep(std::time::Duration::from_millis(2600));
    let r = b.get(&s.url("/second"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        token_calls(),
        after_login + 2,
        "the refreshed session refreshed again 2.6 s later\n{}",
        s.envoy_log()
    );
}

#[test]
fn removing_acr_values_from_the_authorize_url_does_not_skip_the_step_up() {
    let s = Stack::with_config("acr", json!({"acr_values": "urn:okta:loa:2fa:any"}));
    let mut b = Browser::new();
    let last = b
        .login(&s.url("/pay"), ALICE.username, ALICE.password)
        .pop()
        .expect("reply");
    assert_eq!(last.status, 200, "the IdP did the step-up");
    // The attacker's browser drops acr_values on its way to the IdP.
    let mut m = Browser::new();
    let start = m.get(&s.url("/pay"));
    let authorize = url::Url::parse(&start.location().expect("to the IdP")).expect("url");
    let mut stripped = authorize.clone();
    stripped
        .query_pairs_mut()
        .clear()
        .extend_pairs(authorize.query_pairs().filter(|(k, _)| k != "acr_values"));
    let last = m
        .login(stripped.as_str(), ALICE.username, ALICE.password)
        .pop()
        .expect("reply");
    assert_eq!(last.status, 403, "{last:?}");
    assert!(last.body.contains("authentication level"), "{}", last.body);
    nothing_upstream(&last);
    assert!(s.envoy_log().contains("acr_not_satisfied"));
}

#[test]
fn a_bearer_token_signed_with_a_key_rotated_a_moment_ago_passes_the_first_time() {
    let s = Stack::with_config(
        "bearerkid",
        json!({"skip_jwt_bearer_tokens": true, "extra_jwt_issuers": ["{issuer}=api://default"]}),
    );
    let mut api = Browser::api();
    let old = s.idp.client_credentials_token();
    let r = api.send(
        "GET",
        &s.url("/api"),
        &[("authorization", &format!("Bearer {old}"))],
        None,
    );
    assert_eq!(r.status, 200);
    s.idp.rotate_keys(true);
    let new = s.idp.client_credentials_token();
    let r = api.send(
        "GET",
        &s.url("/api"),
        &[("authorization", &format!("Bearer {new}"))],
        None,
    );
    assert_eq!(r.status, 200, "{r:?}\n{}", s.envoy_log());
    assert!(r.seen().is_some());
}

#[test]
fn a_browser_holding_two_cookies_of_the_sessions_name_stays_signed_in() {
    let s = Stack::with_config("twocookies", json!({}));
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let ours = b.cookies(&s.url("/"))["_oauth2_proxy"].clone();
    // An old OAuth2-Proxy's cookie on the parent domain, sent before or after ours.
    let foreign = "AXhhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh";
    for cookie in [
        format!("_oauth2_proxy={foreign}; _oauth2_proxy={ours}"),
        format!("_oauth2_proxy={ours}; _oauth2_proxy={foreign}"),
    ] {
        let r = b.send("GET", &s.url("/both"), &[("cookie", &cookie)], None);
        assert_eq!(r.status, 200, "{cookie}");
        let seen = r.seen().expect("reached the app");
        assert_eq!(seen.header("x-auth-request-user"), Some("00u-alice"));
        assert!(seen.header("cookie").is_none(), "neither goes upstream");
    }
}

#[test]
fn strict_samesite_and_host_prefixed_cookies_log_in_in_chromium_with_the_idp_on_another_site() {
    // The app is http://localhost:…, the IdP http://127.0.0.1:…: different sites.
    let s = Stack::with_config(
        "strict",
        json!({"cookie_samesite": "strict", "cookie_secure": true, "cookie_name": "__Host-oidc"}),
    );
    let shot = tools::artifacts_dir().join("strict-login.png");
    let result = tools::chromium_login(
        &s.url("/welcome?from=strict"),
        ALICE.username,
        ALICE.password,
        &shot,
    );
    assert_eq!(result["status"], 200, "{result}");
    assert!(
        result["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/welcome?from=strict"),
        "{result}"
    );
    let text = result["text"].as_str().unwrap_or("");
    assert!(
        text.contains("\"x-auth-request-email\",\"alice@example.com\""),
        "{text}"
    );
    let session = result["cookies"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "__Host-oidc"))
        .cloned()
        .expect("session cookie in the browser");
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(session["secure"], true);
}

#[test]
fn a_session_lifetime_near_gos_maximum_logs_in_and_stays_valid() {
    let s = Stack::with_config("maxexpire", json!({"cookie_expire": "2562047h"}));
    let mut b = Browser::new();
    let hops = b.login(&s.url("/"), ALICE.username, ALICE.password);
    assert_eq!(hops.last().map(|r| r.status), Some(200));
    assert_eq!(b.get(&s.url("/again")).status, 200);
}

#[test]
fn a_configuration_type_error_never_echoes_the_value() {
    let mut plugin = Plugin::new(json!({
        "oidc_issuer_url": "http://127.0.0.1:1/oauth2/default",
        "client_id": "x",
        // `client_secret: 12345987` unquoted in YAML.
        "client_secret": 12345987,
        "cookie_secret": "dG9vLXNob3J0",
    }));
    plugin.env.clear();
    let cfg = bootstrap(free_port(), free_port(), &plugin, &[]);
    let err = Envoy::start("typeerror", &cfg, 1)
        .err()
        .expect("Envoy must refuse to start");
    let refusal: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("invalid oidc-gate configuration"))
        .collect();
    assert!(
        refusal
            .iter()
            .any(|l| l.contains("client_secret: has the wrong type: expected a string")),
        "{err}"
    );
    assert!(
        refusal.iter().all(|l| !l.contains("12345987")),
        "{refusal:?}"
    );
}

#[test]
fn a_bearer_token_with_its_signature_stripped_or_swapped_is_refused() {
    let s = Stack::with_config(
        "nosig",
        json!({"skip_jwt_bearer_tokens": true, "extra_jwt_issuers": ["{issuer}=api://default"]}),
    );
    let token = s.idp.client_credentials_token();
    let other = s.idp.client_credentials_token();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let mut api = Browser::api();
    let mut send = |t: &str| {
        let auth = format!("Bearer {t}");
        api.send("GET", &s.url("/api"), &[("authorization", &auth)], None)
    };
    assert_eq!(send(&token).status, 200, "the token itself passes");
    let (head, payload) = (parts[0], parts[1]);
    let other_sig = other.rsplit('.').next().unwrap_or_default();
    for forged in [
        format!("{head}.{payload}."),
        format!("{head}.{payload}"),
        format!("{head}.{payload}.{other_sig}"),
        format!("{head}.{payload}.AA"),
    ] {
        let r = send(&forged);
        assert_eq!(r.status, 401, "{forged}: {r:?}");
        nothing_upstream(&r);
    }
}
