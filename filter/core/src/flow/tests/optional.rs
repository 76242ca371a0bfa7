//! `optional_auth_routes`: pages that are public but personalise when the user is signed in.

use super::*;

fn optional() -> World {
    let mut v = minimal();
    v["optional_auth_routes"] = json!(["^/blog/"]);
    v["allowed_groups"] = json!(["admins"]);
    world_with(v)
}

#[test]
fn without_a_session_an_optional_route_passes_anonymously_with_identity_headers_stripped() {
    let mut w = optional();
    let Forward {
        plan,
        outcome,
        user,
        ..
    } = forward(w.get("/blog/post-1", HTML));
    assert_eq!(outcome, Outcome::Optional);
    assert_eq!(user, None);
    assert_eq!(plan.value("x-auth-request-user"), None);
    for spoofed in [
        "x-auth-request-user",
        "X_Auth_Request_Email",
        "x_forwarded_user",
    ] {
        assert!(plan.removes(spoofed), "{spoofed}");
    }
    // An API client too: no 401.
    assert!(matches!(
        w.get("/blog/feed", "application/json"),
        Decision::Forward(_)
    ));
    // Other paths still log in.
    assert_eq!(w.respond("/admin", HTML).status, 302);
}

#[test]
fn signed_in_an_optional_route_gets_the_identity_and_a_denied_user_passes_without_it() {
    let mut w = optional();
    assert_eq!(w.login("/", json!({})).status, 302);
    let Forward { plan, outcome, .. } = forward(w.get("/blog/post-1", HTML));
    assert_eq!(outcome, Outcome::Authenticated);
    assert_eq!(plan.value("x-auth-request-user"), Some("00u-alice"));

    let mut bob = optional();
    assert_eq!(bob.login("/", json!({"groups": ["everyone"]})).status, 302);
    assert_eq!(bob.respond("/admin", HTML).status, 403);
    let Forward { plan, outcome, .. } = forward(bob.get("/blog/post-1", HTML));
    assert_eq!(
        outcome,
        Outcome::Optional,
        "not allowed here: anonymous, not 403"
    );
    assert_eq!(plan.value("x-auth-request-user"), None);
}

#[test]
fn a_path_that_only_some_servers_read_as_optional_still_asks_for_a_login() {
    let mut w = optional();
    for path in ["/blog/..;/admin", "/blog/%2e%2e/admin", "/blog/../admin"] {
        let r = w.respond(path, HTML);
        assert_eq!(r.status, 302, "{path}");
    }
}

#[test]
fn a_bad_optional_route_is_reported_with_its_key() {
    let ps = crate::config::tests::problems(&{
        let mut v = minimal();
        v["optional_auth_routes"] = json!(["GET=("]);
        v
    });
    assert!(
        ps.iter().any(|(k, _)| k == "optional_auth_routes"),
        "{ps:?}"
    );
}

#[test]
fn on_an_optional_route_a_session_ended_or_denied_at_its_refresh_passes_anonymously() {
    let with = |extra: serde_json::Value| {
        let mut v = minimal();
        v["optional_auth_routes"] = json!(["^/blog/"]);
        v["cookie_refresh"] = json!("1h");
        v["allowed_groups"] = json!(["admins"]);
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        world_with(v)
    };
    // The refresh a request to the optional route makes.
    let refresh_on_blog = |w: &mut World, now: UnixTime| match w.decide_at("/blog/x", HTML, now) {
        Decision::Call(Call {
            then: Pending::Refresh(p),
            ..
        }) => p,
        other => unreachable!("{other:?}"),
    };
    // Refused for good: the dead session's cookies are cleared, no login starts.
    let mut w = with(json!({}));
    w.login_with_refresh_token();
    let pending = refresh_on_blog(&mut w, NOW + 7200);
    let refused = CallResult::status(400, br#"{"error":"invalid_grant"}"#);
    let Decision::Forward(f) = w.resume(Pending::Refresh(pending), refused, NOW + 7200) else {
        unreachable!()
    };
    assert_eq!(f.outcome, Outcome::Optional);
    assert!(f
        .set_cookies
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=;")));
    // Refreshed without the group: anonymous, not 403.
    let mut w = with(json!({}));
    w.login_with_refresh_token();
    let pending = refresh_on_blog(&mut w, NOW + 3600);
    let body = w.refresh_body(json!(["everyone"]));
    let d = w.resume(
        Pending::Refresh(pending),
        CallResult::ok(body.as_bytes()),
        NOW + 3600,
    );
    let Decision::Forward(f) = d else {
        unreachable!("{d:?}")
    };
    assert_eq!(f.outcome, Outcome::Optional);
    assert_eq!(f.plan.value("x-auth-request-user"), None);
}
