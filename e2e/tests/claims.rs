//! Rules on any claim through the real Envoy and the e2e provider: a nested Keycloak-style roles
//! claim (`realm_access.roles`) admits one user and denies another on one host, by session and
//! by bearer token, and a refresh that removes the role ends the access.

use std::time::Duration;

use e2e::idp::{ALICE, BOB};
use e2e::{Browser, Stack};
use serde_json::json;

#[test]
fn a_nested_roles_claim_admits_one_user_and_denies_another_by_session_bearer_and_refresh() {
    let s = Stack::with_config(
        "claims",
        json!({
            "allowed_claims": [{"claim": "realm_access.roles", "any_of": ["admin"]}],
            "oidc_groups_claim": "realm_access.roles",
            "cookie_refresh": "1s",
            "pass_access_token": true,
            "skip_jwt_bearer_tokens": true,
            "extra_jwt_issuers": ["{issuer}=api://default"],
            "api_routes": ["^/api/"],
        }),
    );
    s.idp.set_roles(ALICE.username, &["admin", "user"]);
    s.idp.set_roles(BOB.username, &["user", "auditor"]);

    let mut alice = Browser::new();
    let seen = alice.signs_in(&s.url("/"), &ALICE);
    assert_eq!(seen.header("x-auth-request-groups"), Some("admin,user"));
    let access_token = seen
        .header("x-auth-request-access-token")
        .expect("the access token is passed")
        .to_string();

    let mut bob = Browser::new();
    let hops = bob.login(&s.url("/"), BOB.username, BOB.password);
    let last = hops.last().expect("a reply");
    assert_eq!(last.status, 403, "{hops:#?}");
    assert!(last.seen().is_none(), "nothing reached the app");
    assert!(last.body.contains("allowed_claims[0]"), "{}", last.body);
    assert!(
        !last.body.contains("auditor"),
        "claim values stay off the page"
    );

    // Bearer tokens: alice's access token carries the role; the API client's does not.
    let mut api = Browser::api();
    let with = |t: &str| [("authorization", format!("Bearer {t}"))];
    let [(h, v)] = with(&access_token);
    let r = api.send("GET", &s.url("/api/items"), &[(h, v.as_str())], None);
    assert_eq!(r.status, 200, "{r:?}");
    let [(h, v)] = with(&s.idp.client_credentials_token());
    let r = api.send("GET", &s.url("/api/items"), &[(h, v.as_str())], None);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("claim_not_allowed"), "{}", r.body);

    // The role goes at the provider: the next refresh (cookie_refresh 1s) ends the access.
    s.idp.set_roles(ALICE.username, &["user"]);
    std::thread::sleep(Duration::from_millis(1200));
    let r = alice.get(&s.url("/after"));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.seen().is_none());
    let r = alice.get(&s.url("/again"));
    assert_eq!(
        r.status, 403,
        "the refreshed cookie keeps the new roles: {r:?}"
    );
    assert!(s.envoy_log().contains("claim_not_allowed"));
}
