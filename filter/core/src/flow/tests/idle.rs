//! `session_idle_timeout`: activity keeps a session; a pause as long as the timeout ends it;
//! the cookie is re-issued only once its recorded activity is a step old.

use super::*;

/// A 100 s idle timeout: a step of 10 s.
fn idle() -> World {
    let mut v = minimal();
    v["session_idle_timeout"] = json!("100s");
    world_with(v)
}

#[test]
fn requests_within_the_timeout_keep_the_session_long_past_it_and_a_pause_ends_it() {
    let mut w = idle();
    w.login("/", json!({}));
    let mut reissued = 0;
    // A request every 30 s for 600 s: six timeouts.
    for t in (30..=600).step_by(30) {
        let f = forward(w.decide_at("/", HTML, NOW + t));
        assert_eq!(f.outcome, Outcome::Authenticated, "at +{t}");
        reissued += usize::from(!f.set_cookies.is_empty());
        w.keep_cookies(&f.set_cookies);
    }
    assert_eq!(
        reissued, 20,
        "each request came a step or more after the last record"
    );
    let api = reply(w.decide_at("/", "application/json", NOW + 700));
    assert_eq!(api.outcome, Outcome::Unauthenticated(SessionError::Idle));
    assert_eq!(api.status, 401);
    let browser = reply(w.decide_at("/", HTML, NOW + 700));
    assert_eq!(browser.outcome, Outcome::LoginStarted);
}

#[test]
fn an_active_session_is_reissued_at_most_once_a_step() {
    let mut w = idle();
    w.login("/", json!({}));
    let mut reissued = Vec::new();
    for t in 1..=60 {
        let f = forward(w.decide_at("/", HTML, NOW + t));
        if !f.set_cookies.is_empty() {
            reissued.push(t);
        }
        w.keep_cookies(&f.set_cookies);
    }
    assert_eq!(reissued, vec![10, 20, 30, 40, 50, 60]);
}

#[test]
fn a_stale_record_is_not_renewed_by_a_request_that_came_too_late() {
    let mut w = idle();
    w.login("/", json!({}));
    // Recorded at NOW; a request at +99 s still counts and renews it.
    let f = forward(w.decide_at("/", HTML, NOW + 99));
    assert!(!f.set_cookies.is_empty());
    // The browser did not keep the renewed cookie: the old record ends at +100 s.
    let r = reply(w.decide_at("/", "application/json", NOW + 100));
    assert_eq!(r.outcome, Outcome::Unauthenticated(SessionError::Idle));
}

#[test]
fn without_an_idle_timeout_an_active_session_gets_no_set_cookie() {
    let mut w = world();
    w.login("/", json!({}));
    for t in [10, 100, 1000, 10_000] {
        let f = forward(w.decide_at("/", HTML, NOW + t));
        assert!(f.set_cookies.is_empty(), "at +{t}");
    }
}

#[test]
fn a_refresh_counts_as_activity() {
    let mut v = minimal();
    v["session_idle_timeout"] = json!("90m");
    v["cookie_refresh"] = json!("1h");
    let mut w = world_with(v);
    w.login_with_refresh_token();
    let (_, pending) = w.refresh_call(NOW + 3600);
    let body = w.refresh_body(json!(["admins"]));
    let d = w.resume(
        Pending::Refresh(pending),
        CallResult::status(200, body.as_bytes()),
        NOW + 3600,
    );
    let f = forward(d);
    w.keep_cookies(&f.set_cookies);
    // More than 90 minutes after the login, half an hour after the refresh.
    let f = forward(w.decide_at("/", HTML, NOW + 5500));
    assert_eq!(f.outcome, Outcome::Authenticated);
}
