//! Thin ID tokens through the real Envoy: a provider set up to leave `groups` out of its ID
//! tokens (as Okta's org authorization server does); the groups arrive from its UserInfo
//! endpoint at login and after a refresh, and a UserInfo answer for another `sub` is refused.

use std::time::Duration;

use e2e::idp::{ALICE, BOB, CAROL};
use e2e::{Browser, Stack, StackOptions};
use serde_json::json;

fn thin_stack() -> Stack {
    Stack::start(
        "userinfo",
        StackOptions {
            config: json!({"allowed_groups": ["admins"], "cookie_refresh": "1s"}),
            // Opaque access tokens: the provider's UserInfo endpoint accepts them.
            idp: json!({"id_token_omits": ["groups"], "user_access_token_format": "opaque"}),
            ..StackOptions::default()
        },
    )
}

#[test]
fn groups_left_out_of_the_id_token_arrive_from_userinfo_and_a_foreign_sub_is_refused() {
    let s = thin_stack();
    let mut alice = Browser::new();
    let seen = alice.signs_in(&s.url("/"), &ALICE);
    assert_eq!(
        seen.header("x-auth-request-groups"),
        Some("admins,everyone")
    );
    assert!(
        s.idp.count("GET", "/v1/userinfo") >= 1,
        "UserInfo was asked"
    );

    let mut bob = Browser::new();
    let last = bob.login(&s.url("/"), BOB.username, BOB.password);
    assert_eq!(
        last.last().map(|r| r.status),
        Some(403),
        "bob is only in everyone"
    );

    // After a refresh, the groups come from UserInfo again.
    s.idp.set_groups(ALICE.username, &["everyone".into()]);
    std::thread::sleep(Duration::from_millis(1200));
    let r = alice.get(&s.url("/after"));
    assert_eq!(r.status, 403, "the refresh read the new groups: {r:?}");

    // A UserInfo answer for another user fails the login.
    s.idp.set_userinfo_sub(Some("00u-mallory"));
    let mut carol = Browser::new();
    let hops = carol.login(&s.url("/"), CAROL.username, CAROL.password);
    let last = hops.last().expect("a reply");
    assert_eq!(last.status, 403, "{hops:#?}");
    assert!(last.seen().is_none());
    assert!(s.envoy_log().contains("userinfo_sub_mismatch"));
    s.idp.set_userinfo_sub(None);
    let mut carol = Browser::new();
    carol.signs_in(&s.url("/"), &CAROL);
}
