//! The browser login flow through a real Envoy running oidc-gate against a real OpenID provider.

use e2e::idp::{ALICE, BOB, CAROL};
use e2e::{Browser, Stack, StackOptions};
use serde_json::json;

fn stack(name: &str, config: serde_json::Value) -> Stack {
    Stack::start(
        name,
        StackOptions {
            config,
            ..StackOptions::default()
        },
    )
}

#[test]
fn login_happy_path_reaches_the_app_with_identity_headers() {
    let s = stack("happy", json!({"set_authorization_header": true}));
    let mut b = Browser::new();
    let hops = b.login(&s.url("/dashboard?tab=1"), ALICE.username, ALICE.password);
    let last = hops.last().expect("reply");
    assert_eq!(last.status, 200, "{hops:#?}\n{}", s.envoy_log());
    let seen = last.seen().expect("the echo app answered");
    assert_eq!(seen.path, "/dashboard?tab=1");
    assert_eq!(seen.header("x-auth-request-user"), Some("00u-alice"));
    assert_eq!(
        seen.header("x-auth-request-email"),
        Some("alice@example.com")
    );
    assert_eq!(
        seen.header("x-auth-request-groups"),
        Some("admins,everyone")
    );
    assert_eq!(
        seen.header("x-auth-request-preferred-username"),
        Some("alice")
    );
    assert!(seen
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer ey")));
    assert!(
        seen.header("cookie").is_none(),
        "the session cookie is not forwarded: {seen:?}"
    );
    assert!(b.cookies(&s.url("/")).contains_key("_oauth2_proxy"));
}
