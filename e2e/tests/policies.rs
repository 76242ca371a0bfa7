//! One filter for many apps: per-host policies with one login across hosts, bearer tokens for
//! APIs, safe redirects, IdP logout, user info — with the real Envoy and provider.

use e2e::envoy::free_port;
use e2e::idp::{ALICE, BOB, CAROL};
use e2e::{Browser, Stack, StackOptions};
use serde_json::json;

fn status_at(b: &mut Browser, url: &str) -> u16 {
    b.get(url).status
}

#[test]
fn one_login_serves_several_hosts_each_with_its_own_rule() {
    let port = free_port();
    let auth = format!("http://auth.example.test:{port}/oauth2/callback");
    let _stack = Stack::start(
        "policies",
        StackOptions {
            ports: Some(vec![port]),
            redirect_uris: vec![auth.clone()],
            config: json!({
                "redirect_url": auth,
                "cookie_domains": [".example.test"],
                "whitelist_domains": [".example.test:*"],
                // First match wins: the public paths come before the host rules.
                "policies": [
                    {"hosts": ["*.example.test"], "path_prefix": "/public/", "skip_auth": true},
                    {"hosts": ["grafana.example.test"], "allowed_groups": ["admins"]},
                    {"hosts": ["wiki.example.test"], "email_domains": ["example.com"]},
                ],
                "claim_headers": {"X-WEBAUTH-USER": "preferred_username"},
            }),
            ..StackOptions::default()
        },
    );
    let grafana = |p: &str| format!("http://grafana.example.test:{port}{p}");
    let wiki = |p: &str| format!("http://wiki.example.test:{port}{p}");

    // Bob signs in at grafana (through the callback on auth.example.test) and is sent back there.
    let mut bob = Browser::new();
    let hops = bob.login(&grafana("/d/1"), BOB.username, BOB.password);
    let callback = hops
        .iter()
        .find(|r| r.url.contains("/oauth2/callback"))
        .expect("callback hop");
    assert!(
        callback.url.starts_with("http://auth.example.test:"),
        "{}",
        callback.url
    );
    assert_eq!(
        callback.location().as_deref(),
        Some(grafana("/d/1").as_str())
    );
    let last = hops.last().expect("reply");
    assert_eq!(last.status, 403, "bob is not an admin: {last:?}");
    // The same session serves wiki, where everyone at example.com may go.
    let r = bob.get(&wiki("/page"));
    assert_eq!(r.status, 200, "{r:?}");
    let seen = r.seen().expect("wiki reached");
    assert_eq!(seen.header("x-auth-request-email"), Some("bob@example.com"));
    assert_eq!(seen.header("x-webauth-user"), Some("bob"), "claim_headers");

    let mut alice = Browser::new();
    alice.signs_in(&wiki("/"), &ALICE);
    assert_eq!(
        (
            status_at(&mut alice, &grafana("/")),
            status_at(&mut alice, &wiki("/"))
        ),
        (200, 200)
    );
    let mut carol = Browser::new();
    carol.signs_in(&grafana("/"), &CAROL);
    assert_eq!(
        (
            status_at(&mut carol, &grafana("/")),
            status_at(&mut carol, &wiki("/"))
        ),
        (200, 403)
    );

    // Public paths need no login on any host; a spoofed claim header never passes.
    let mut anon = Browser::new();
    let r = anon.send(
        "GET",
        &grafana("/public/logo.png"),
        &[("x-webauth-user", "admin")],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r
        .seen()
        .expect("reached")
        .header("x-webauth-user")
        .is_none());

    // Redirect targets: own hosts and whitelisted ones, never others.
    let r = alice.get(&format!(
        "http://wiki.example.test:{port}/oauth2/sign_out?rd=https://evil.example/"
    ));
    assert_eq!(r.header("location"), Some("/"));
    let target = grafana("/after");
    let r = anon.get(&format!(
        "http://wiki.example.test:{port}/oauth2/sign_out?rd={target}"
    ));
    assert_eq!(r.header("location"), Some(target.as_str()));
    let mut fresh = Browser::new();
    let hops = fresh.login(
        &format!("http://wiki.example.test:{port}/oauth2/start?rd=https://evil.example/"),
        ALICE.username,
        ALICE.password,
    );
    let callback = hops
        .iter()
        .find(|r| r.url.contains("/oauth2/callback"))
        .expect("callback");
    assert_eq!(
        callback.header("location"),
        Some(wiki("/").as_str()),
        "rd=https://evil.example is ignored"
    );
}

#[test]
fn bearer_tokens_from_the_provider_work_on_api_paths_and_tampered_ones_get_401() {
    let s = Stack::with_config(
        "bearer",
        json!({
            "skip_jwt_bearer_tokens": true,
            // Okta's custom authorization server: the same issuer, access tokens for api://default.
            "extra_jwt_issuers": ["{issuer}=api://default"],
            "api_routes": ["^/api/"],
        }),
    );
    let token = s.idp.client_credentials_token();
    assert!(token.starts_with("ey"), "no token: {token}");
    let mut api = Browser::api();
    let auth = format!("Bearer {token}");
    for _ in 0..2 {
        // The second time from the verified-token cache.
        let r = api.send(
            "GET",
            &s.url("/api/items"),
            &[("authorization", &auth)],
            None,
        );
        assert_eq!(r.status, 200, "{r:?}\n{}", s.envoy_log());
        let seen = r.seen().expect("reached the API");
        assert_eq!(
            seen.header("x-auth-request-user"),
            Some(e2e::idp::API_CLIENT_ID)
        );
        assert_eq!(
            seen.header("authorization"),
            Some(auth.as_str()),
            "the API gets its token"
        );
    }
    // A changed payload with the original signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(&parts[1]).expect("b64")).expect("json");
    payload["sub"] = json!("00u-admin");
    parts[1] = b64.encode(payload.to_string());
    let tampered = parts.join(".");
    for bad in [tampered.as_str(), "not-a-jwt", "eyJhbGciOiJub25lIn0.e30."] {
        let r = api.send(
            "GET",
            &s.url("/api/items"),
            &[("authorization", &format!("Bearer {bad}"))],
            None,
        );
        assert_eq!(r.status, 401, "{bad}: {r:?}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
        assert!(r.seen().is_none());
    }
    assert!(s.envoy_log().contains("bearer_authenticated"));
}

#[test]
fn sign_out_at_the_idp_ends_the_idp_session_too() {
    let s = Stack::with_config("idplogout", json!({"sign_out_at_idp": true}));
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let info = b.send(
        "GET",
        &s.url("/oauth2/userinfo"),
        &[("accept", "application/json")],
        None,
    );
    let info: serde_json::Value = serde_json::from_str(&info.body).expect("userinfo JSON");
    assert_eq!(
        info,
        json!({"user": "00u-alice", "email": "alice@example.com", "groups": ["admins", "everyone"], "preferredUsername": "alice"})
    );
    let hops = b.follow(&s.url("/oauth2/sign_out?rd=/"), 6);
    let to_idp = hops[0].location().expect("to the IdP");
    assert!(
        to_idp.contains("/v1/logout?") && to_idp.contains("id_token_hint=ey"),
        "{to_idp}"
    );
    assert!(
        to_idp.contains(&format!(
            "post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A{}%2F",
            s.envoys[0].port
        )),
        "{to_idp}"
    );
    assert!(
        hops.iter().any(|r| r.url.starts_with(&s.url("/"))),
        "back at the app: {hops:#?}"
    );
    assert_eq!(
        Browser::api()
            .send("GET", &s.url("/oauth2/userinfo"), &[("cookie", "")], None)
            .status,
        401
    );
    // The IdP's session is gone too: the next login shows the sign-in form again.
    let again = b.follow(&s.url("/"), 10);
    assert!(
        again
            .last()
            .is_some_and(|r| r.body.contains("name=\"username\"")),
        "{again:#?}"
    );
}

#[test]
fn login_parameters_reach_the_authorize_request() {
    let s = Stack::with_config(
        "loginparams",
        json!({"prompt": "login", "acr_values": "urn:okta:loa:2fa:any", "login_url_parameters": {"idp": "0oa-upstream-idp"}}),
    );
    let mut b = Browser::new();
    let r = b.get(&s.url("/oauth2/start?rd=/x&login_hint=alice@example.com"));
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&r.location().expect("to idp"))
            .expect("url")
            .query_pairs()
            .into_owned()
            .collect();
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["acr_values"], "urn:okta:loa:2fa:any");
    assert_eq!(q["idp"], "0oa-upstream-idp");
    assert_eq!(q["login_hint"], "alice@example.com");
}
