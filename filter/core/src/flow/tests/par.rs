//! Pushed authorization requests: the parameters go to the PAR endpoint with the client's
//! authentication; the browser gets only `client_id` and `request_uri`; a failed push is the
//! 503 page without a login-state cookie.

use super::*;

const PAR: &str = "https://dev-123456.okta.com/oauth2/default/v1/par";

/// A world whose provider lists a PAR endpoint and pushes, with `client_secret_post`.
fn pushing() -> World {
    let mut discovery: serde_json::Value =
        serde_json::from_str(&discovery_json()).unwrap_or_default();
    discovery["pushed_authorization_request_endpoint"] = json!(PAR);
    let mut v = minimal();
    v["pushed_authorization_requests"] = json!(true);
    v["client_auth_method"] = json!("client_secret_post");
    world_with_discovery(v, &discovery.to_string())
}

/// A navigation that must push; its call-out and continuation.
fn push(w: &mut World, path: &str) -> (CallOut, Pending) {
    match w.get(path, HTML) {
        Decision::Call(Call {
            call,
            then: then @ Pending::Par(_),
        }) => (call, then),
        other => unreachable!("{other:?}"),
    }
}

#[test]
fn the_authorization_parameters_are_pushed_and_the_browser_gets_only_the_request_uri() {
    let mut w = pushing();
    let (call, then) = push(&mut w, "/reports?q=1");
    let h: HashMap<&str, &str> = call
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(h[":method"], "POST");
    assert_eq!(h[":path"], "/oauth2/default/v1/par");
    let form: Vec<(String, String)> = form_urlencoded::parse(&call.body).into_owned().collect();
    let count = |k: &str| form.iter().filter(|(n, _)| n == k).count();
    assert_eq!(count("client_id"), 1, "client_id once: {form:?}");
    assert_eq!(count("client_secret"), 1);
    for k in [
        "response_type",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
    ] {
        assert_eq!(count(k), 1, "{k}");
    }
    let answer = json!({"request_uri": "urn:ietf:params:oauth:request_uri:abc", "expires_in": 60});
    let r = reply(w.resume(
        then,
        CallResult::status(201, answer.to_string().as_bytes()),
        NOW,
    ));
    assert_eq!(r.status, 302);
    assert_eq!(r.outcome, Outcome::LoginStarted);
    let q = query(header(&r, "location").unwrap_or_default());
    let mut keys: Vec<&str> = q.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["client_id", "request_uri"]);
    assert_eq!(q["request_uri"], "urn:ietf:params:oauth:request_uri:abc");
    assert!(
        set_cookies(&r).iter().any(|c| c.contains("_csrf=")),
        "the flow cookie is set"
    );
    // The login completes as any other: the state pushed is the one the callback brings.
    w.store(&r);
    let state = form
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone());
    let cb = format!("code=c&state={}", state.unwrap_or_default());
    assert!(w.callback(&cb).is_ok());
}

#[test]
fn a_failed_push_answers_503_and_sets_no_login_state() {
    for (status, body) in [
        (400, r#"{"error":"invalid_client"}"#),
        (201, "{}"),
        (201, r#"{"request_uri":""}"#),
    ] {
        let mut w = pushing();
        let (_, then) = push(&mut w, "/");
        let r = reply(w.resume(then, CallResult::status(status, body.as_bytes()), NOW));
        assert_eq!(r.status, 503, "{status} {body}");
        assert!(matches!(
            r.outcome,
            Outcome::LoginFailed(LoginError::ParRefused(..))
        ));
        assert!(
            set_cookies(&r).iter().all(|c| !c.contains("_csrf=")),
            "{r:?}"
        );
    }
    let mut w = pushing();
    let (_, then) = push(&mut w, "/");
    let r = reply(w.resume(then, CallResult::failed(), NOW));
    assert_eq!(r.status, 503);
}

#[test]
fn pushing_without_a_par_endpoint_in_discovery_answers_503_and_redirects_nowhere() {
    let mut v = minimal();
    v["pushed_authorization_requests"] = json!(true);
    let mut w = world_with(v);
    let r = w.respond("/", HTML);
    assert_eq!(r.status, 503);
    assert_eq!(r.outcome, Outcome::LoginFailed(LoginError::ParUnavailable));
    assert!(header(&r, "location").is_none());
}

#[test]
fn pushed_authorization_requests_need_discovery() {
    let mut v = minimal();
    v["pushed_authorization_requests"] = json!(true);
    v["skip_oidc_discovery"] = json!(true);
    v["login_url"] = json!("https://idp.example.com/authorize");
    v["redeem_url"] = json!("https://idp.example.com/token");
    v["oidc_jwks_url"] = json!("https://idp.example.com/keys");
    let ps = crate::config::tests::problems(&v);
    assert!(
        ps.iter()
            .any(|(k, r)| k == "pushed_authorization_requests" && r.contains("needs discovery")),
        "{ps:?}"
    );
}
