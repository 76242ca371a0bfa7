//! `oidc_userinfo`: an ID token without the claims the configuration reads is completed from
//! the UserInfo endpoint, at login and after a refresh, for the same `sub` only.

use super::*;

fn header_of<'a>(call: &'a CallOut, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The test IdP's discovery, with a UserInfo endpoint.
fn discovery_with_userinfo() -> String {
    let mut d: serde_json::Value = serde_json::from_str(&discovery_json()).unwrap_or_default();
    d["userinfo_endpoint"] = json!(format!("{ISSUER}/v1/userinfo"));
    d.to_string()
}

fn thin_world(extra: serde_json::Value) -> World {
    let mut v = minimal();
    v["allowed_groups"] = json!(["admins"]);
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    world_with_discovery(v, &discovery_with_userinfo())
}

impl World {
    /// An ID token without `groups`, as Okta's org authorization server sends it.
    fn thin_id_token(&self, nonce: Option<&str>, now: UnixTime) -> String {
        let mut claims = TestIdp::claims(json!({}));
        claims.custom.remove("groups");
        claims.nonce = nonce.map(str::to_string);
        claims.issued_at = Some(jwt_simple::prelude::Duration::from_secs(now));
        claims.expires_at = Some(jwt_simple::prelude::Duration::from_secs(now + 3600));
        self.idp.rs256(claims)
    }

    /// A login whose token answer has a thin ID token: what the code exchange decides.
    fn thin_login(&mut self) -> Decision {
        let q = self.start("/");
        let Ok((_, pending)) = self.callback(&format!("code=c&state={}", q["state"])) else {
            unreachable!()
        };
        let body = json!({"id_token": self.thin_id_token(Some(&q["nonce"]), NOW), "access_token": "at-ui", "refresh_token": "rt-1"});
        let body = body.to_string();
        self.resume(
            Pending::CodeExchange(pending),
            CallResult::ok(body.as_bytes()),
            NOW,
        )
    }

    /// A thin login completed by UserInfo with the `admins` group.
    fn thin_signed_in(&mut self) {
        let d = self.thin_login();
        let info = json!({"sub": "00u-alice", "groups": ["admins"]});
        let r = reply(self.userinfo_answers(d, 200, info, NOW));
        assert_eq!(r.status, 302, "{r:?}");
    }

    /// UserInfo answers `body`; the reply is stored.
    fn userinfo_answers(
        &mut self,
        d: Decision,
        status: u16,
        body: serde_json::Value,
        now: UnixTime,
    ) -> Decision {
        let Decision::Call(Call {
            call,
            then: pending @ Pending::UserInfo(_),
        }) = d
        else {
            unreachable!("expected a UserInfo call: {d:?}")
        };
        assert_eq!(header_of(&call, ":method"), Some("GET"));
        assert_eq!(
            header_of(&call, ":path"),
            Some("/oauth2/default/v1/userinfo")
        );
        assert_eq!(header_of(&call, "authorization"), Some("Bearer at-ui"));
        let body = body.to_string();
        let d = self.resume(pending, CallResult::status(status, body.as_bytes()), now);
        match &d {
            Decision::Respond(r) => self.store(r),
            Decision::Forward(f) => self.keep_cookies(&f.set_cookies.clone()),
            _ => {}
        }
        d
    }
}

#[test]
fn groups_missing_from_the_id_token_come_from_userinfo_at_login() {
    let mut w = thin_world(json!({}));
    let d = w.thin_login();
    let r = reply(w.userinfo_answers(
        d,
        200,
        json!({"sub": "00u-alice", "groups": ["admins"]}),
        NOW,
    ));
    assert_eq!(
        (r.status, r.outcome.clone()),
        (302, Outcome::LoginCompleted)
    );
    let Forward { plan, .. } = forward(w.get("/", HTML));
    assert_eq!(plan.value("x-auth-request-groups"), Some("admins"));
}

#[test]
fn a_userinfo_answer_for_another_sub_or_a_failed_one_fails_the_login() {
    for (status, body, code, page) in [
        (
            200,
            json!({"sub": "00u-mallory", "groups": ["admins"]}),
            "userinfo_sub_mismatch",
            403,
        ),
        (
            200,
            json!({"groups": ["admins"]}),
            "userinfo_sub_mismatch",
            403,
        ),
        (
            401,
            json!({"error": "invalid_token"}),
            "userinfo_failed",
            502,
        ),
    ] {
        let mut w = thin_world(json!({}));
        let d = w.thin_login();
        let r = reply(w.userinfo_answers(d, status, body, NOW));
        assert_eq!((r.status, r.outcome.code()), (page, code));
        assert!(!w.jar.contains_key("_oauth2_proxy"), "no session");
    }
}

#[test]
fn never_makes_no_call_and_a_complete_id_token_needs_none() {
    let mut w = thin_world(json!({"oidc_userinfo": "never"}));
    let r = reply(w.thin_login());
    assert_eq!(r.status, 302, "signed in with the ID token's claims");
    w.store(&r);
    let r = w.respond("/", HTML);
    assert_eq!(r.status, 403, "no groups: allowed_groups denies");

    let mut w = thin_world(json!({}));
    let r = w.login("/", json!({}));
    assert_eq!(
        r.status, 302,
        "the ID token has every claim read: no UserInfo call"
    );

    let mut w = world_with(minimal());
    let r = reply(w.thin_login());
    assert_eq!(r.status, 302, "no userinfo_endpoint: the login goes on");
}

#[test]
fn always_asks_userinfo_and_its_values_win_for_the_claims_read() {
    let mut w = thin_world(json!({"oidc_userinfo": "always"}));
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let body = json!({"id_token": w.id_token(&q["nonce"], json!({})), "access_token": "at-ui"});
    let body = body.to_string();
    let d = w.resume(
        Pending::CodeExchange(pending),
        CallResult::ok(body.as_bytes()),
        NOW,
    );
    let info =
        json!({"sub": "00u-alice", "groups": ["admins", "fresh"], "email": "alice@new.example"});
    assert_eq!(reply(w.userinfo_answers(d, 200, info, NOW)).status, 302);
    let Forward { plan, .. } = forward(w.get("/", HTML));
    assert_eq!(plan.value("x-auth-request-groups"), Some("admins,fresh"));
    assert_eq!(
        plan.value("x-auth-request-email"),
        Some("alice@new.example")
    );
}

#[test]
fn after_a_refresh_userinfo_updates_the_groups_and_a_foreign_sub_ends_the_session() {
    let mut v = minimal();
    v["cookie_refresh"] = json!("1h");
    v["allowed_groups"] = json!(["admins"]);
    let mut w = world_with_discovery(v, &discovery_with_userinfo());
    w.thin_signed_in();
    let t = NOW + 3600;
    let refresh = |w: &mut World, t: UnixTime| {
        let (_, pending) = w.refresh_call(t);
        let body = json!({"id_token": w.thin_id_token(None, t), "access_token": "at-ui", "refresh_token": "rt-2"});
        let body = body.to_string();
        w.resume(
            Pending::Refresh(pending),
            CallResult::ok(body.as_bytes()),
            t,
        )
    };
    // UserInfo down: the refresh is deferred, the session goes on as it was.
    let d = refresh(&mut w, t);
    let f = forward(w.userinfo_answers(d, 503, json!({}), t));
    assert_eq!(f.outcome.code(), "refresh_deferred");
    // The group is gone at the provider: the next refresh denies.
    let d = refresh(&mut w, t + 11);
    let r = reply(w.userinfo_answers(
        d,
        200,
        json!({"sub": "00u-alice", "groups": ["everyone"]}),
        t + 11,
    ));
    assert_eq!(r.status, 403);
    let d = refresh(&mut w, t + 3700);
    let r = reply(w.userinfo_answers(
        d,
        200,
        json!({"sub": "00u-mallory", "groups": ["admins"]}),
        t + 3700,
    ));
    assert_eq!(r.outcome.code(), "session_ended");
    assert!(
        !w.jar.contains_key("_oauth2_proxy"),
        "the session's cookies are cleared"
    );
}

#[test]
fn the_option_takes_only_its_three_values() {
    let mut v = minimal();
    v["oidc_userinfo"] = json!("sometimes");
    let problems = crate::config::tests::problems(&v);
    assert!(
        problems
            .iter()
            .any(|(k, m)| k == "oidc_userinfo" && m.contains("\"never\"")),
        "{problems:?}"
    );
}

#[test]
fn profile_url_names_the_userinfo_endpoint_as_oauth2_proxy_does() {
    let mut v = minimal();
    v["profile_url"] = json!("https://dev-123456.okta.com/oauth2/v1/userinfo");
    // The discovery document lists no UserInfo endpoint here: profile_url is the one asked.
    let mut w = world_with(v);
    let Decision::Call(Call {
        call,
        then: Pending::UserInfo(_),
    }) = w.thin_login()
    else {
        unreachable!("a UserInfo call")
    };
    assert_eq!(header_of(&call, ":path"), Some("/oauth2/v1/userinfo"));
    assert_eq!(call.cluster, "outbound|443||dev-123456.okta.com");
}

#[test]
fn the_refresh_lease_lasts_long_enough_for_the_userinfo_call_too() {
    // idp_timeout is 5 s: one call-out's lease lapses after 6 s, two call-outs' after 11 s.
    let mut v = minimal();
    v["cookie_refresh"] = json!("1h");
    let mut w = world_with_discovery(v.clone(), &discovery_with_userinfo());
    w.thin_signed_in();
    let t = NOW + 3600;
    let _refreshing = w.refresh_call(t);
    let d = w.decide_at("/", HTML, t + 7);
    assert!(
        matches!(d, Decision::Forward(_)),
        "no second refresh: {d:?}"
    );

    v["oidc_userinfo"] = json!("never");
    let mut w = world_with(v);
    w.login_with_refresh_token();
    let _refreshing = w.refresh_call(t);
    let _lapsed_so_refreshing_again = w.refresh_call(t + 7);
}
