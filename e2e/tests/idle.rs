//! `session_idle_timeout` through the real Envoy: activity keeps a short-timeout session alive
//! past several timeouts with few `Set-Cookie`s; a pause as long as the timeout ends it.

use std::time::{Duration, Instant};

use e2e::idp::ALICE;
use e2e::{Browser, Stack};
use serde_json::json;

#[test]
fn activity_keeps_an_idle_timeout_session_alive_with_few_set_cookies_and_a_pause_ends_it() {
    // 20 s: the recorded activity is renewed at most every 2 s.
    let s = Stack::with_config("idle", json!({"session_idle_timeout": "20s"}));
    let mut alice = Browser::new();
    alice.signs_in(&s.url("/"), &ALICE);
    let html = [("accept", "text/html")];
    let start = Instant::now();
    let (mut requests, mut set_cookies) = (0usize, 0usize);
    // A request every 1.5 s for a minute: three timeouts long.
    while start.elapsed() < Duration::from_secs(60) && requests < 60 {
        let r = alice.send("GET", &s.url("/app"), &html, None);
        assert_eq!(r.status, 200, "at {:?}: {r:?}", start.elapsed());
        let seen = r.seen().expect("the app answered");
        assert_eq!(seen.header("x-auth-request-email"), Some(ALICE.email));
        set_cookies += r.all("set-cookie").len();
        requests += 1;
        std::thread::sleep(Duration::from_millis(1500));
    }
    assert!(requests >= 35, "only {requests} requests in a minute");
    // Renewed about every 2 s of a 60 s minute, not on every response.
    assert!(
        (15..=31).contains(&set_cookies),
        "{set_cookies} Set-Cookie headers over {requests} requests"
    );

    std::thread::sleep(Duration::from_secs(21));
    let api = alice.send(
        "GET",
        &s.url("/app"),
        &[("accept", "application/json")],
        None,
    );
    assert_eq!(api.status, 401, "{api:?}");
    assert!(api.seen().is_none());
    let page = alice.send("GET", &s.url("/app"), &html, None);
    assert_eq!(page.status, 302, "a browser signs in again: {page:?}");
    assert!(s.envoy_log().contains("session_idle"));
}
