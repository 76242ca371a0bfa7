//! `optional_auth_routes` through the real Envoy: a page that is public but personalises when
//! the user is signed in.

use e2e::idp::ALICE;
use e2e::{Browser, Stack};
use serde_json::json;

#[test]
fn an_optional_route_passes_anonymous_visitors_without_identity_and_signed_in_ones_with_it() {
    let s = Stack::with_config("optional", json!({"optional_auth_routes": ["^/blog/"]}));
    let mut visitor = Browser::new();
    let spoofed = [
        ("accept", "text/html"),
        ("x-auth-request-user", "admin"),
        ("X_Auth_Request_Email", "admin@example.com"),
    ];
    let r = visitor.send("GET", &s.url("/blog/post"), &spoofed, None);
    assert_eq!(r.status, 200, "no login redirect: {r:?}");
    let seen = r.seen().expect("the app answered");
    for h in [
        "x-auth-request-user",
        "x_auth_request_email",
        "x-auth-request-email",
    ] {
        assert_eq!(seen.header(h), None, "{h} reached the app");
    }
    // Elsewhere the login is still required.
    assert_eq!(
        visitor
            .send("GET", &s.url("/admin"), &[("accept", "text/html")], None)
            .status,
        302
    );

    let mut alice = Browser::new();
    alice.signs_in(&s.url("/"), &ALICE);
    let r = alice.send("GET", &s.url("/blog/post"), &spoofed, None);
    assert_eq!(r.status, 200);
    let seen = r.seen().expect("the app answered");
    assert_eq!(seen.header("x-auth-request-user"), Some("00u-alice"));
    assert_eq!(seen.header("x-auth-request-email"), Some(ALICE.email));
    assert!(s.envoy_log().contains("optional_auth"));
}
