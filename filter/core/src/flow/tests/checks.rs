//! Every path checks what the login checks: refresh, bearer tokens, the callback's `iss` and
//! `acr`, where the browser goes back to, and the cookies that make it work on every setting.

use super::*;

impl World {
    /// A refresh answer whose ID token is valid at `now` and carries `extra` claims.
    fn refresh_body_at(&self, now: UnixTime, extra: serde_json::Value) -> String {
        let mut claims = TestIdp::claims(extra);
        claims.nonce = None;
        claims.issued_at = Some(jwt_simple::prelude::Duration::from_secs(now));
        claims.expires_at = Some(jwt_simple::prelude::Duration::from_secs(now + 3600));
        json!({"id_token": self.idp.rs256(claims), "access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600}).to_string()
    }

    /// Carries a refresh due at `now` through to its decision, keeping the cookies it sets.
    pub(super) fn refresh_at(&mut self, now: UnixTime, extra: serde_json::Value) -> Decision {
        let (_, pending) = self.refresh_call(now);
        let body = self.refresh_body_at(now, extra);
        let d = self.resume(
            Pending::Refresh(pending),
            CallResult::ok(body.as_bytes()),
            now,
        );
        if let Decision::Forward(f) = &d {
            let cookies = f.set_cookies.clone();
            self.keep_cookies(&cookies);
        }
        d
    }
}

pub(super) fn with_refresh(extra: serde_json::Value) -> World {
    let mut v = minimal();
    v["cookie_refresh"] = json!("1h");
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    world_with(v)
}

#[test]
fn a_refresh_that_answers_for_another_user_ends_the_session() {
    let mut w = with_refresh(json!({}));
    w.login_with_refresh_token();
    let d = w.refresh_at(NOW + 3600, json!({}));
    assert!(matches!(d, Decision::Forward(_)), "same sub: {d:?}");
    let (_, pending) = w.refresh_call(NOW + 7200);
    let mut claims = TestIdp::claims(json!({})).with_subject("00u-mallory");
    claims.nonce = None;
    claims.issued_at = Some(jwt_simple::prelude::Duration::from_secs(NOW + 7200));
    claims.expires_at = Some(jwt_simple::prelude::Duration::from_secs(NOW + 9000));
    let body = json!({"id_token": w.idp.rs256(claims), "refresh_token": "rt-3"}).to_string();
    let d = w.resume(
        Pending::Refresh(pending),
        CallResult::ok(body.as_bytes()),
        NOW + 7200,
    );
    let r = reply(d);
    assert_eq!(r.outcome.code(), "session_ended");
    assert!(matches!(
        r.outcome,
        Outcome::SessionEnded(LoginError::SubjectChanged)
    ));
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=;") && c.contains("Max-Age=0")));
}

#[test]
fn claim_headers_follow_the_refreshed_id_token() {
    let mut w = with_refresh(json!({"claim_headers": {"X-Team": "team"}}));
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let body = json!({"id_token": w.id_token(&q["nonce"], json!({"team": "blue"})), "refresh_token": "rt-1"});
    assert_eq!(w.finish(pending, 200, &body.to_string()).status, 302);
    let Forward { plan, .. } = forward(w.decide_at("/", HTML, NOW + 10));
    assert_eq!(plan.value("x-team"), Some("blue"));
    let d = w.refresh_at(NOW + 3600, json!({"team": "red"}));
    let Forward { plan, .. } = forward(d);
    assert_eq!(plan.value("x-team"), Some("red"));
    let Forward { plan, .. } = forward(w.decide_at("/", HTML, NOW + 3601));
    assert_eq!(plan.value("x-team"), Some("red"), "kept in the new cookie");
}

#[test]
fn a_refreshed_session_refreshes_again_after_cookie_refresh_even_when_that_is_short() {
    let mut w = with_refresh(json!({"cookie_refresh": "2s"}));
    w.login_with_refresh_token();
    let before = w.jar.clone();
    assert!(matches!(
        w.refresh_at(NOW + 2, json!({})),
        Decision::Forward(_)
    ));
    // The old cookie, still in flight on another request, does not refresh again: it goes on.
    let after = std::mem::replace(&mut w.jar, before);
    let f = forward(w.decide_at("/", HTML, NOW + 3));
    assert_eq!(f.outcome, Outcome::Authenticated);
    // The new cookie refreshes once its own period is over, within the 60 s settle window.
    w.jar = after;
    assert!(matches!(
        w.refresh_at(NOW + 5, json!({})),
        Decision::Forward(_)
    ));
}

#[test]
fn a_login_without_the_asked_acr_fails_with_a_clear_page() {
    let mut v = minimal();
    v["acr_values"] = json!("urn:okta:loa:2fa:any phr");
    let mut w = world_with(v);
    let r = w.login("/", json!({"acr": "urn:okta:loa:1fa:pwd"}));
    assert_eq!((r.status, r.outcome.code()), (403, "acr_not_satisfied"));
    assert!(r.body.contains("authentication level"), "{}", r.body);
    let r = w.login("/", json!({}));
    assert_eq!(r.outcome.code(), "acr_not_satisfied", "no acr at all");
    let r = w.login("/", json!({"acr": "phr"}));
    assert_eq!((r.status, r.outcome), (302, Outcome::LoginCompleted));
}

#[test]
fn a_provider_that_always_sends_iss_must_send_it() {
    let discovery = discovery_json().replace(
        "\"issuer\":",
        "\"authorization_response_iss_parameter_supported\":true,\"issuer\":",
    );
    let mut w = world_with_discovery(minimal(), &discovery);
    assert!(w.provider().iss_parameter_supported);
    let q = w.start("/");
    let r = w
        .callback(&format!("code=c&state={}", q["state"]))
        .err()
        .unwrap_or_else(|| unreachable!("a callback without iss went on"));
    assert_eq!((r.status, r.outcome.code()), (403, "callback_iss_missing"));
    let q = w.start("/");
    let iss: String = form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect();
    assert!(w
        .callback(&format!("code=c&state={}&iss={iss}", q["state"]))
        .is_ok());
}

fn bearer_world() -> World {
    let mut v = minimal();
    v["skip_jwt_bearer_tokens"] = json!(true);
    v["extra_jwt_issuers"] = json!([format!("{ISSUER}=api://default")]);
    world_with(v)
}

pub(super) fn access_token(idp: &TestIdp, extra: serde_json::Value) -> String {
    let mut claims = TestIdp::claims(extra).with_audience("api://default");
    claims.nonce = None;
    idp.rs256(claims)
}

#[test]
fn a_bearer_token_with_an_unverified_email_is_refused_as_a_login_would_be() {
    let mut w = bearer_world();
    let auth = format!(
        "Bearer {}",
        access_token(&w.idp, json!({"email_verified": false}))
    );
    let r = reply(w.decide(&request("api.example.com", "/v1", "", Some(&auth)), NOW));
    assert_eq!((r.status, r.outcome.code()), (401, "email_unverified"));
    let mut v = minimal();
    v["skip_jwt_bearer_tokens"] = json!(true);
    v["extra_jwt_issuers"] = json!([format!("{ISSUER}=api://default")]);
    v["insecure_oidc_allow_unverified_email"] = json!(true);
    let mut lax = world_with(v);
    let auth = format!(
        "Bearer {}",
        access_token(&lax.idp, json!({"email_verified": false}))
    );
    let d = lax.decide(&request("api.example.com", "/v1", "", Some(&auth)), NOW);
    assert!(matches!(d, Decision::Forward(_)), "{d:?}");
}

#[test]
fn a_bearer_token_signed_with_a_new_key_waits_for_one_refetch() {
    let mut w = bearer_world();
    let rotated = TestIdp::new();
    let rotated_key: serde_json::Value = serde_json::from_str(&rotated.jwks()).unwrap_or_default();
    let mut claims = TestIdp::claims(json!({})).with_audience("api://default");
    claims.nonce = None;
    let token = rotated
        .ec
        .with_key_id("ec-rotated")
        .sign(claims)
        .unwrap_or_default();
    let auth = format!("Bearer {token}");
    let d = w.decide(&request("api.example.com", "/v1", "", Some(&auth)), NOW);
    let Decision::Call(Call {
        call,
        then: Pending::BearerKeys(loader, pending),
    }) = d
    else {
        unreachable!("{d:?}")
    };
    assert_eq!(loader, 0);
    assert!(call
        .headers
        .contains(&(":path".into(), "/oauth2/default/v1/keys".into())));
    assert!(
        !format!("{pending:?}").contains(&token),
        "the token never prints"
    );
    // The refetched set has the new key.
    let mut jwks: serde_json::Value = serde_json::from_str(&w.idp.jwks()).unwrap_or_default();
    if let (Some(keys), Some(new)) = (jwks["keys"].as_array_mut(), rotated_key["keys"].get(1)) {
        let mut new = new.clone();
        new["kid"] = json!("ec-rotated");
        keys.push(new);
    }
    let jwks = jwks.to_string();
    let d = w.resume(
        Pending::BearerKeys(loader, pending),
        CallResult::ok(jwks.as_bytes()),
        NOW,
    );
    let Forward { outcome, plan, .. } = forward(d);
    assert_eq!(outcome, Outcome::Bearer);
    assert_eq!(plan.value("x-auth-request-user"), Some("00u-alice"));
    // Another unknown key a moment later: no second refetch (30 s per gateway), refused.
    let mut claims = TestIdp::claims(json!({"team": "x"})).with_audience("api://default");
    claims.nonce = None;
    let other = TestIdp::new()
        .ec
        .with_key_id("ec-unknown")
        .sign(claims)
        .unwrap_or_default();
    let auth = format!("Bearer {other}");
    let r = reply(w.decide(&request("api.example.com", "/v2", "", Some(&auth)), NOW + 1));
    assert_eq!((r.status, r.outcome.code()), (401, "unknown_kid"));
}

#[test]
fn strict_session_cookies_land_with_a_page_and_the_login_state_is_lax() {
    let mut v = minimal();
    v["cookie_samesite"] = json!("strict");
    let mut w = world_with(v);
    let r = w.respond("/report?q=1", HTML);
    assert!(
        set_cookies(&r).iter().all(|c| c.ends_with("SameSite=Lax")),
        "the login state must come back on the IdP's cross-site redirect: {r:?}"
    );
    w.store(&r);
    let q = query(header(&r, "location").unwrap_or_default());
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let body = json!({"id_token": w.id_token(&q["nonce"], json!({}))});
    let r = w.finish(pending, 200, &body.to_string());
    assert_eq!((r.status, &r.outcome), (200, &Outcome::LoginCompleted));
    assert!(header(&r, "location").is_none());
    assert!(
        r.body.contains("content=\"0;url=/report?q=1\""),
        "{}",
        r.body
    );
    assert_eq!(header(&r, "referrer-policy"), Some("no-referrer"));
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=") && c.ends_with("SameSite=Strict")));
}

#[test]
fn the_url_kept_for_after_the_login_never_leaves_the_site_and_long_links_still_log_in() {
    let cases: Vec<(String, String)> = vec![
        ("//evil.example/x".into(), "/".into()),
        ("/\\evil.example/x".into(), "/".into()),
        ("/%2F%2Fevil.example".into(), "/".into()),
        ("/ok?next=1".into(), "/ok?next=1".into()),
        (format!("/deep?q={}", "a".repeat(3000)), "/deep".into()),
        (format!("/{}", "p".repeat(3000)), "/".into()),
    ];
    for (path, expected) in cases {
        let mut w = world();
        let r = w.login(&path, json!({}));
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(header(&r, "location"), Some(expected.as_str()), "{path}");
    }
}

#[test]
fn continuations_and_decisions_never_print_a_secret() {
    let mut w = world();
    let q = w.start("/");
    let Ok((call, pending)) = w.callback(&format!("code=the-secret-code&state={}", q["state"]))
    else {
        unreachable!()
    };
    let shown = format!("{call:?} {pending:?}");
    for secret in ["the-secret-code", "s3cr3t", q["state"].as_str()] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    let body = json!({"id_token": w.id_token(&q["nonce"], json!({})), "access_token": "at-secret", "refresh_token": "rt-secret"});
    let tokens =
        super::super::tokens::parse_token_response(CallResult::ok(body.to_string().as_bytes()));
    let shown = format!("{tokens:?}");
    assert!(!shown.contains("at-secret") && !shown.contains("rt-secret") && !shown.contains("eyJ"));
}
