//! Sessions that last, rotate and scale: refresh (and its coalescing across workers), several
//! workers sharing one fetch of the provider's documents, parallel logins, IdP outages, key and
//! secret rotation, sessions split over several cookies — with the real Envoy and provider.

use std::time::Duration;

use e2e::fault::{Fault, FaultProxy};
use e2e::idp::{ALICE, BOB};
use e2e::stack::COOKIE_SECRET;
use e2e::{Browser, Stack, StackOptions};
use serde_json::json;

fn cookie_header(b: &Browser, url: &str) -> String {
    b.cookies(url)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn four_workers_fetch_discovery_and_jwks_once() {
    let s = Stack::start(
        "fetchonce",
        StackOptions {
            concurrency: 4,
            ..StackOptions::default()
        },
    );
    // Let every worker's VM tick a few times.
    std::thread::sleep(Duration::from_millis(2500));
    let discovery = s.idp.count("GET", "/.well-known/openid-configuration");
    let jwks = s.idp.count("GET", "/v1/keys");
    assert_eq!(
        (discovery, jwks),
        (1, 1),
        "{:?}\n{}",
        s.idp.request_log(),
        s.envoy_log()
    );
    // And every worker can log users in.
    for _ in 0..4 {
        let mut b = Browser::new();
        b.signs_in(&s.url("/"), &ALICE);
    }
}

#[test]
fn refresh_updates_the_groups_and_claim_headers_from_the_provider() {
    let s = Stack::with_config(
        "refresh",
        json!({"cookie_refresh": "1s", "claim_headers": {"X-Groups-Claim": "groups"}}),
    );
    let mut b = Browser::new();
    let last = b
        .login(&s.url("/"), ALICE.username, ALICE.password)
        .pop()
        .expect("reply");
    assert_eq!(
        last.seen()
            .and_then(|x| x.header("x-auth-request-groups").map(str::to_string))
            .as_deref(),
        Some("admins,everyone")
    );
    let session = s
        .open_session(&cookie_header(&b, &s.url("/")))
        .expect("session");
    assert!(
        session.refresh_token.is_some(),
        "offline_access was requested and the refresh token kept"
    );
    s.idp
        .set_groups(ALICE.username, &["everyone".into(), "new-team".into()]);
    s.idp.clear_log();
    std::thread::sleep(Duration::from_millis(1200));
    let r = b.get(&s.url("/after"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.seen()
            .and_then(|x| x.header("x-auth-request-groups").map(str::to_string))
            .as_deref(),
        Some("everyone,new-team")
    );
    assert_eq!(
        r.seen()
            .and_then(|x| x.header("x-groups-claim").map(str::to_string))
            .as_deref(),
        Some("everyone,new-team"),
        "claim headers follow the refreshed ID token"
    );
    assert!(
        r.all("set-cookie")
            .iter()
            .any(|c| c.starts_with("_oauth2_proxy=")),
        "the refreshed session is re-issued"
    );
    assert_eq!(s.idp.count("POST", "/v1/token"), 1);
    assert!(s.envoy_log().contains("session_refreshed"));
}

#[test]
fn a_refresh_whose_id_token_names_another_user_ends_the_session() {
    let proxy = FaultProxy::start();
    let s = Stack::start(
        "forgedsub",
        StackOptions {
            config: json!({"cookie_refresh": "1s"}),
            fault: Some(proxy.clone()),
            ..StackOptions::default()
        },
    );
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    // The token endpoint now answers a refresh with a valid ID token for bob.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id_token = s.idp.sign(&json!({
        "iss": s.idp.issuer, "aud": e2e::idp::CLIENT_ID, "sub": "00u-bob",
        "iat": now, "exp": now + 600, "email": "bob@example.com", "email_verified": true,
    }));
    proxy.set(
        "/v1/token",
        Fault::Json(
            json!({"id_token": id_token, "refresh_token": "rt-bob", "expires_in": 600}).to_string(),
        ),
    );
    std::thread::sleep(Duration::from_millis(1200));
    let mut api = b.clone();
    api.extra = vec![("accept".into(), "application/json".into())];
    let r = api.get(&s.url("/after"));
    assert_eq!(r.status, 401, "{r:?}\n{}", s.envoy_log());
    assert!(r.seen().is_none(), "nobody's identity went upstream");
    assert!(r.body.contains("session_ended"), "{}", r.body);
    assert!(s.envoy_log().contains("another user"), "{}", s.envoy_log());
    assert!(
        !api.cookies(&s.url("/")).contains_key("_oauth2_proxy"),
        "the cookie is cleared"
    );
}

#[test]
fn a_refused_refresh_token_after_the_tokens_expired_ends_the_session() {
    let s = Stack::start(
        "invalidgrant",
        StackOptions {
            config: json!({"cookie_refresh": "1s"}),
            idp: json!({"access_token_ttl_s": 2, "id_token_ttl_s": 2}),
            ..StackOptions::default()
        },
    );
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let session = s
        .open_session(&cookie_header(&b, &s.url("/")))
        .expect("session");
    assert_eq!(
        s.idp.revoke(
            session
                .refresh_token
                .as_ref()
                .expect("refresh token")
                .expose()
        ),
        200
    );
    std::thread::sleep(Duration::from_millis(2600));
    let mut api = b.clone();
    api.extra = vec![("accept".into(), "application/json".into())];
    let r = api.get(&s.url("/data"));
    assert_eq!(r.status, 401, "{r:?}\n{}", s.envoy_log());
    let r = b.get(&s.url("/page"));
    assert_eq!(r.status, 302, "a browser is sent to sign in again: {r:?}");
    assert!(r.location().unwrap_or_default().contains("/v1/authorize"));
    assert!(
        !b.cookies(&s.url("/")).contains_key("_oauth2_proxy"),
        "the session cookie is cleared"
    );
    assert!(s.envoy_log().contains("session_ended"));
}

#[test]
fn twenty_parallel_requests_at_refresh_time_make_one_refresh_and_nobody_is_logged_out() {
    let s = Stack::start(
        "parallel",
        StackOptions {
            config: json!({"cookie_refresh": "1s"}),
            concurrency: 4,
            ..StackOptions::default()
        },
    );
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    s.idp.clear_log();
    std::thread::sleep(Duration::from_millis(1200));
    let url = s.url("/burst");
    let replies: Vec<e2e::Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let jar = b.jar.clone();
                let url = url.clone();
                scope.spawn(move || {
                    let mut tab = Browser::new();
                    tab.jar = jar;
                    tab.get(&url)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.seen()
                .and_then(|x| x.header("x-auth-request-user").map(str::to_string))
                .as_deref(),
            Some("00u-alice")
        );
    }
    assert_eq!(
        s.idp.count("POST", "/v1/token"),
        1,
        "{:?}",
        s.idp.request_log()
    );
    // The browser keeps the re-issued cookie; it and the old one both still work.
    let renewed: Vec<&e2e::Reply> = replies
        .iter()
        .filter(|r| {
            r.all("set-cookie")
                .iter()
                .any(|c| c.starts_with("_oauth2_proxy="))
        })
        .collect();
    assert_eq!(renewed.len(), 1);
    assert_eq!(b.get(&s.url("/old-cookie")).status, 200);
    for c in renewed[0].all("set-cookie") {
        let (name, value) = c
            .split(';')
            .next()
            .and_then(|p| p.split_once('='))
            .expect("cookie");
        b.set_cookie(&url, name, value);
    }
    assert_eq!(b.get(&s.url("/new-cookie")).status, 200);
}

#[test]
fn two_tabs_logging_in_at_once_both_complete() {
    let s = Stack::start("twotabs", StackOptions::default());
    let mut b = Browser::new();
    let first = b.get(&s.url("/one"));
    let second = b.get(&s.url("/two"));
    let flows = b
        .cookies(&s.url("/"))
        .keys()
        .filter(|k| k.ends_with("_csrf"))
        .count();
    assert_eq!(flows, 2, "one login-state cookie per flow");
    // The second tab signs in first; then the first tab finishes (the IdP session is reused).
    let hops = b.follow(&second.location().expect("to idp"), 10);
    let form = hops.last().expect("form").url.clone();
    let mut after = vec![b.sign_in(&form, ALICE.username, ALICE.password)];
    while let Some(next) = after
        .last()
        .filter(|r| (300..400).contains(&r.status))
        .and_then(|r| r.location())
    {
        after.push(b.get(&next));
    }
    assert_eq!(
        after.last().and_then(|r| r.seen()).map(|x| x.path),
        Some("/two".into())
    );
    let hops = b.follow(&first.location().expect("to idp"), 10);
    assert_eq!(
        hops.last().and_then(|r| r.seen()).map(|x| x.path),
        Some("/one".into()),
        "{hops:#?}"
    );
    assert_eq!(
        b.cookies(&s.url("/"))
            .keys()
            .filter(|k| k.ends_with("_csrf"))
            .count(),
        0,
        "each flow cookie is removed"
    );
}

#[test]
fn with_the_idp_down_signed_in_users_keep_working_and_new_logins_get_503() {
    let mut s = Stack::start("idpdown", StackOptions::default());
    let mut alice = Browser::new();
    alice.signs_in(&s.url("/"), &ALICE);
    // Bob gets as far as the IdP's redirect back with a code, then the IdP goes away.
    let mut bob = Browser::new();
    let callback = bob.login_until_callback(&s.url("/"), BOB.username, BOB.password);
    s.idp.stop();
    assert_eq!(alice.get(&s.url("/still")).status, 200);
    let r = bob.get(&callback);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(
        r.body.contains("identity provider is unavailable"),
        "{}",
        r.body
    );
    assert!(r.seen().is_none());
}

#[test]
fn keys_rotated_at_the_provider_keep_users_signed_in_and_new_logins_verify_first_time() {
    let s = Stack::start("keyrotation", StackOptions::default());
    let mut alice = Browser::new();
    alice.signs_in(&s.url("/"), &ALICE);
    s.idp.rotate_keys(false);
    s.idp.clear_log();
    assert_eq!(alice.get(&s.url("/still")).status, 200);
    let mut bob = Browser::new();
    let last = bob
        .login(&s.url("/new"), BOB.username, BOB.password)
        .pop()
        .expect("reply");
    assert_eq!(last.status, 200, "{last:?}\n{}", s.envoy_log());
    assert_eq!(
        s.idp.count("GET", "/v1/keys"),
        1,
        "the JWKS was refetched for the unknown kid"
    );
}

#[test]
fn a_session_with_fifty_groups_and_all_tokens_round_trips_through_chromium() {
    let s = Stack::with_config(
        "biggroups",
        json!({"cookie_refresh": "1h", "set_authorization_header": true, "pass_access_token": true}),
    );
    let groups: Vec<String> = (0..50)
        .map(|i| format!("okta-group-with-a-realistic-long-name-{i:02}"))
        .collect();
    s.idp.set_groups(ALICE.username, &groups);
    let shot = e2e::tools::artifacts_dir().join("browser-fifty-groups.png");
    let result =
        e2e::tools::chromium_login(&s.url("/groups"), ALICE.username, ALICE.password, &shot);
    let text = result["text"].as_str().unwrap_or("");
    assert!(
        text.contains(&groups.join(",")),
        "all 50 groups reached the app"
    );
    assert!(text.contains("\"authorization\",\"Bearer ey"), "{text}");
    let names: Vec<&str> = result["cookies"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"_oauth2_proxy_0") && names.contains(&"_oauth2_proxy_1"),
        "split: {names:?}"
    );
    assert!(!names.contains(&"_oauth2_proxy"), "{names:?}");
}

#[test]
fn a_rolled_cookie_secret_logs_nobody_out_and_other_secrets_are_refused() {
    const NEW_SECRET: &str = "bmV3LXNlY3JldC1mb3ItdGhlLXJvbGxvdXQtMzJieXQ=";
    let s = Stack::start(
        "secretroll",
        StackOptions {
            envoys: 2,
            per_envoy: vec![
                json!({}),
                json!({"cookie_secret_env": null, "cookie_secret": NEW_SECRET, "cookie_secret_previous": COOKIE_SECRET}),
            ],
            ..StackOptions::default()
        },
    );
    let (old, new) = (&s.envoys[0], &s.envoys[1]);
    let mut b = Browser::new();
    b.signs_in(&old.url("/"), &ALICE);
    // The Envoy with the new secret accepts the old cookie and re-issues it.
    let r = b.get(&new.url("/rolled"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r
        .all("set-cookie")
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=")));
    let r = b.get(&new.url("/again"));
    assert_eq!(r.status, 200);
    assert!(r.all("set-cookie").is_empty(), "nothing left to re-issue");
    // The old Envoy does not know the new secret.
    assert_eq!(
        Browser::api()
            .send(
                "GET",
                &old.url("/"),
                &[("cookie", &cookie_header(&b, &old.url("/")))],
                None
            )
            .status,
        401
    );
}
