//! Rules on any claim (`allowed_claims`, `allowed_roles`) and claim paths with dots: checked on
//! sessions and bearer tokens, on every request and after every refresh; a denial names the
//! rule, never the claim's values.

use super::checks::{access_token, with_refresh};
use super::*;

fn roles(list: &[&str]) -> serde_json::Value {
    json!({ "realm_access": { "roles": list } })
}

/// `allowed_claims` on the nested roles claim, refresh on, bearer tokens accepted.
fn admins_by_role() -> World {
    with_refresh(json!({
        "allowed_claims": [{"claim": "realm_access.roles", "any_of": ["admin"]}],
        "skip_jwt_bearer_tokens": true,
        "extra_jwt_issuers": [format!("{ISSUER}=api://default")],
    }))
}

impl World {
    /// A login whose ID token carries `extra` and a refresh token.
    fn login_with(&mut self, extra: serde_json::Value) {
        let q = self.start("/");
        let Ok((_, pending)) = self.callback(&format!("code=c&state={}", q["state"])) else {
            unreachable!()
        };
        let body = json!({"id_token": self.id_token(&q["nonce"], extra), "refresh_token": "rt-1"});
        assert_eq!(self.finish(pending, 200, &body.to_string()).status, 302);
    }
}

#[test]
fn a_nested_role_claim_admits_one_user_and_denies_another_naming_the_rule() {
    let mut w = admins_by_role();
    w.login_with(roles(&["admin", "user"]));
    let f = forward(w.decide_at("/", HTML, NOW + 1));
    assert_eq!(f.outcome, Outcome::Authenticated);

    let mut bob = admins_by_role();
    bob.login_with(roles(&["user", "secret-role"]));
    let r = reply(bob.decide_at("/", HTML, NOW + 1));
    assert_eq!(r.status, 403);
    assert_eq!(
        r.outcome,
        Outcome::Denied(Denial::Claim("allowed_claims[0]".into()))
    );
    assert_eq!(r.outcome.code(), "claim_not_allowed");
    assert!(r.body.contains("allowed_claims[0]"), "{}", r.body);
    assert!(
        !r.body.contains("secret-role"),
        "claim values stay off the page"
    );
    let api = reply(bob.decide_at("/", "application/json", NOW + 1));
    assert!(api.body.contains("\"claim_not_allowed\""), "{}", api.body);

    let mut nobody = admins_by_role();
    nobody.login_with(json!({}));
    assert_eq!(reply(nobody.decide_at("/", HTML, NOW + 1)).status, 403);
}

#[test]
fn a_refresh_that_removes_the_role_denies_the_next_request() {
    let mut w = admins_by_role();
    w.login_with(roles(&["admin"]));
    let d = w.refresh_at(NOW + 3600, roles(&["user"]));
    let r = reply(d);
    assert_eq!(
        r.outcome,
        Outcome::Denied(Denial::Claim("allowed_claims[0]".into()))
    );
    assert!(
        !r.set_cookies.is_empty(),
        "the refreshed session is kept, as on any denial"
    );
    w.store(&r);
    let r = reply(w.decide_at("/", HTML, NOW + 3601));
    assert_eq!(r.status, 403, "the refreshed cookie carries the new roles");
}

#[test]
fn a_bearer_token_is_held_to_the_same_claim_rules() {
    let mut w = admins_by_role();
    for (claims, allowed) in [(roles(&["admin"]), true), (roles(&["user"]), false)] {
        let auth = format!("Bearer {}", access_token(&w.idp, claims));
        let d = w.decide(&request("api.example.com", "/v1", "", Some(&auth)), NOW);
        match (d, allowed) {
            (Decision::Forward(f), true) => assert_eq!(f.outcome, Outcome::Bearer),
            (Decision::Respond(r), false) => {
                assert_eq!((r.status, r.outcome.code()), (403, "claim_not_allowed"))
            }
            (d, _) => unreachable!("{d:?}"),
        }
    }
}

#[test]
fn allowed_roles_reads_realm_and_client_roles_as_oauth2_proxy_keycloak_does() {
    let world = || {
        let mut v = minimal();
        v["allowed_roles"] = json!(["admin", "billing:viewer"]);
        world_with(v)
    };
    let client_role = json!({"resource_access": {"billing": {"roles": ["viewer"]}}});
    for (claims, status) in [
        (roles(&["admin"]), None),
        (client_role, None),
        (roles(&["viewer"]), Some(403)),
    ] {
        let mut w = world();
        let r = w.login("/", claims.clone());
        assert_eq!(r.status, 302);
        match w.get("/", HTML) {
            Decision::Forward(_) => assert_eq!(status, None, "{claims}"),
            Decision::Respond(r) => {
                assert_eq!(Some(r.status), status, "{claims}");
                assert!(r.body.contains("allowed_roles"));
            }
            d => unreachable!("{d:?}"),
        }
    }
}

#[test]
fn nested_paths_feed_groups_email_user_and_claim_headers() {
    let mut v = minimal();
    v["oidc_groups_claim"] = json!("realm_access.roles");
    v["oidc_email_claim"] = json!("profile.mail");
    v["user_id_claim"] = json!("profile.uid");
    v["claim_headers"] = json!({"X-Tenant": "org.tenant.id", "X-Ns": "https://example.com/team"});
    v["allowed_groups"] = json!(["admin"]);
    let mut w = world_with(v);
    let claims = json!({
        "realm_access": {"roles": ["admin"]},
        "profile": {"mail": "nested@example.com", "uid": "u-7"},
        "org": {"tenant": {"id": 42}},
        "https://example.com/team": "core",
    });
    w.login("/", claims);
    let Forward { plan, .. } = forward(w.get("/", HTML));
    assert_eq!(plan.value("x-auth-request-groups"), Some("admin"));
    assert_eq!(
        plan.value("x-auth-request-email"),
        Some("nested@example.com")
    );
    assert_eq!(plan.value("x-auth-request-user"), Some("u-7"));
    assert_eq!(plan.value("x-tenant"), Some("42"));
    assert_eq!(plan.value("x-ns"), Some("core"));
}

#[test]
fn a_session_from_before_a_new_claim_rule_signs_in_again_instead_of_being_denied() {
    let mut before = world();
    before.login("/", roles(&["admin"]));
    let mut after = admins_by_role();
    after.jar = before.jar.clone();
    let api = reply(after.decide_at("/", "application/json", NOW + 1));
    assert_eq!(
        api.outcome,
        Outcome::Unauthenticated(SessionError::Outdated)
    );
    let page = reply(after.decide_at("/", HTML, NOW + 1));
    assert_eq!(page.outcome, Outcome::LoginStarted);
}
