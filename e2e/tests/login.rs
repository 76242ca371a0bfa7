//! The browser login flow through a real Envoy running oidc-gate against a real OpenID provider,
//! driven as a browser would (and, once, by a real Chromium: see `browser.rs`).

use e2e::envoy::{bootstrap, free_port, Envoy, Plugin};
use e2e::idp::{self, ALICE, BOB, CAROL};
use e2e::stack::{merged, COOKIE_SECRET};
use e2e::{Browser, Stack, StackOptions};
use serde_json::json;

/// The `state` of the login the last navigation started (from the authorize redirect).
fn authorize_params(reply: &e2e::Reply) -> std::collections::HashMap<String, String> {
    let loc = reply.location().expect("a redirect");
    url::Url::parse(&loc)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

#[test]
fn login_happy_path_reaches_the_app_with_identity_headers_and_logs_no_secret() {
    let s = Stack::with_config(
        "happy",
        json!({"set_authorization_header": true, "pass_access_token": true}),
    );
    let mut b = Browser::new();
    let hops = b.login(&s.url("/dashboard?tab=1"), ALICE.username, ALICE.password);
    let last = hops.last().expect("reply");
    assert_eq!(last.status, 200, "{hops:#?}\n{}", s.envoy_log());
    let seen = last.seen().expect("the echo app answered");
    assert_eq!(seen.path, "/dashboard?tab=1");
    assert_eq!(seen.all("x-auth-request-user"), vec!["00u-alice"]);
    assert_eq!(seen.all("x-auth-request-email"), vec!["alice@example.com"]);
    assert_eq!(seen.all("x-auth-request-groups"), vec!["admins,everyone"]);
    assert_eq!(seen.all("x-auth-request-preferred-username"), vec!["alice"]);
    let bearer = seen
        .header("authorization")
        .expect("authorization")
        .to_string();
    assert!(bearer.starts_with("Bearer ey"), "{bearer}");
    let access = seen
        .header("x-auth-request-access-token")
        .expect("access token")
        .to_string();
    assert!(
        seen.header("cookie").is_none(),
        "the session cookie is not forwarded: {seen:?}"
    );

    // The callback hop set the session cookie with the configured attributes.
    let callback = hops
        .iter()
        .find(|r| r.url.contains("/oauth2/callback"))
        .expect("callback hop");
    assert_eq!(callback.status, 302);
    let set = callback.all("set-cookie");
    let session = set
        .iter()
        .find(|c| c.starts_with("_oauth2_proxy="))
        .expect("session cookie");
    assert!(
        session.contains("; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax"),
        "{session}"
    );
    let session_value = session
        .split(';')
        .next()
        .unwrap_or("")
        .trim_start_matches("_oauth2_proxy=")
        .to_string();

    // Never a token, secret, cookie value or code in Envoy's log.
    let code = url::Url::parse(&callback.url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let log = s.envoy_log();
    assert!(log.contains("login_completed"), "{log}");
    for secret in [
        idp::CLIENT_SECRET,
        COOKIE_SECRET,
        &session_value,
        &bearer[7..],
        &access,
        &code,
    ] {
        assert!(!log.contains(secret), "Envoy's log contains a secret value");
    }
}

#[test]
fn group_not_allowed_gets_403_and_keeps_the_session() {
    let s = Stack::with_config("group", json!({"allowed_groups": ["admins"]}));
    let mut bob = Browser::new();
    let hops = bob.login(&s.url("/"), BOB.username, BOB.password);
    let last = hops.last().expect("reply");
    assert_eq!(last.status, 403, "{hops:#?}");
    assert!(
        last.body.contains("bob@example.com") && last.body.contains("not in a group"),
        "{}",
        last.body
    );
    assert!(last.seen().is_none(), "nothing reached the app");
    // Still signed in: the next request is 403 again, not a new login.
    assert_eq!(bob.get(&s.url("/other")).status, 403);
    let mut alice = Browser::new();
    alice.signs_in(&s.url("/"), &ALICE);
}

#[test]
fn email_domain_not_allowed_gets_403() {
    let s = Stack::with_config("domain", json!({"email_domains": ["example.com"]}));
    let mut carol = Browser::new();
    let last = carol
        .login(&s.url("/"), CAROL.username, CAROL.password)
        .pop()
        .expect("reply");
    assert_eq!(last.status, 403);
    assert!(
        last.body.contains("email domain is not allowed"),
        "{}",
        last.body
    );
    let mut bob = Browser::new();
    bob.signs_in(&s.url("/"), &BOB);
}

/// Whether a header the app saw reads, to a CGI/WSGI/PHP/Rack server, as one of the filter's.
fn reads_as(seen_name: &str, identity: &str) -> bool {
    seen_name.replace('_', "-").eq_ignore_ascii_case(identity)
}

#[test]
fn spoofed_identity_headers_are_removed_in_any_letter_case_and_with_underscores() {
    let s = Stack::with_config(
        "spoof",
        json!({
            "skip_auth_routes": ["^/public/"],
            "skip_auth_preflight": true,
            "claim_headers": {"X-WEBAUTH-USER": "preferred_username"},
        }),
    );
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let spoof = [
        ("X-Auth-Request-User", "root"),
        ("X-AUTH-REQUEST-EMAIL", "root@evil.example"),
        ("x-auth-request-groups", "admins"),
        ("X-Auth-Request-Preferred-Username", "root"),
        ("x-Auth-Request-Access-Token", "forged"),
        ("X-Forwarded-User", "root"),
        ("X-Forwarded-Email", "root@evil.example"),
        ("X-Forwarded-Groups", "admins"),
        // CGI, WSGI, PHP and Rack read these as the headers above (CVE-2025-64484).
        ("X_Auth_Request_User", "root"),
        ("x_auth_request_email", "root@evil.example"),
        ("X-Auth_Request-Groups", "admins"),
        ("X_Forwarded_User", "root"),
        ("X_WEBAUTH_USER", "root"),
    ];
    let r = b.send("GET", &s.url("/"), &spoof, None);
    let seen = r.seen().expect("reached the app");
    assert_eq!(seen.all("x-auth-request-user"), vec!["00u-alice"]);
    assert_eq!(seen.all("x-auth-request-email"), vec!["alice@example.com"]);
    assert_eq!(seen.all("x-auth-request-groups"), vec!["admins,everyone"]);
    assert_eq!(seen.all("x-auth-request-preferred-username"), vec!["alice"]);
    assert_eq!(seen.all("x-webauth-user"), vec!["alice"]);
    for h in [
        "x-auth-request-access-token",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
    ] {
        assert!(seen.all(h).is_empty(), "{h} reached the app: {seen:?}");
    }
    for (name, _) in &seen.headers {
        assert!(
            !name.contains('_'),
            "{name} reached the app, which reads it as an identity header: {seen:?}"
        );
    }
    // A public route and a preflight pass without login, and without the spoofed identity.
    let mut anon = Browser::new();
    let public = anon.send("GET", &s.url("/public/app.css"), &spoof, None);
    let mut preflight_headers = spoof.to_vec();
    preflight_headers.push(("access-control-request-method", "POST"));
    let preflight = anon.send("OPTIONS", &s.url("/api"), &preflight_headers, None);
    for r in [public, preflight] {
        let seen = r.seen().expect("reached the app without login");
        for (h, _) in spoof {
            assert!(
                seen.headers.iter().all(|(name, _)| !reads_as(name, h)),
                "{h} reached the app: {seen:?}"
            );
        }
    }
}

#[test]
fn tampered_or_foreign_session_cookie_starts_a_new_login() {
    let s = Stack::with_config("tamper", json!({}));
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let value = b.cookies(&s.url("/"))["_oauth2_proxy"].clone();
    let mut chars: Vec<char> = value.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    b.set_cookie(
        &s.url("/"),
        "_oauth2_proxy",
        &chars.into_iter().collect::<String>(),
    );
    let r = b.get(&s.url("/"));
    assert_eq!(r.status, 302, "{r:?}");
    assert!(r
        .location()
        .unwrap_or_default()
        .contains("/oauth2/default/v1/authorize"));
    // A cookie sealed by another deployment (another cookie_secret) is no session either.
    b.set_cookie(
        &s.url("/"),
        "_oauth2_proxy",
        "AWJhc2U2NHVybC1idXQtbm90LW91cnMtYXQtYWxsLWF0LWFsbA",
    );
    assert_eq!(
        Browser::api()
            .send(
                "GET",
                &s.url("/"),
                &[("cookie", "_oauth2_proxy=AWJhc2U2NHVybC1idXQtbm90LW91cnM")],
                None
            )
            .status,
        401
    );
    assert_eq!(b.get(&s.url("/")).status, 302);
}

#[test]
fn api_requests_get_401_json_instead_of_a_redirect() {
    let s = Stack::with_config("api", json!({"api_routes": ["^/api/"]}));
    let mut browser = Browser::new();
    let mut api = Browser::api();
    let cases = [
        api.get(&s.url("/page")),
        browser.get(&s.url("/api/items")),
        browser.send(
            "GET",
            &s.url("/page"),
            &[("x-requested-with", "XMLHttpRequest")],
            None,
        ),
        browser.send("GET", &s.url("/page"), &[("sec-fetch-mode", "cors")], None),
    ];
    for r in &cases {
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.body.contains("\"error\":\"no_session\""), "{}", r.body);
        assert!(r.header("location").is_none());
    }
    // A CORS preflight is a request like any other (OAuth2-Proxy's default)…
    let preflight = |b: &mut Browser, url: &str| {
        b.send(
            "OPTIONS",
            url,
            &[
                ("access-control-request-method", "POST"),
                ("origin", "http://x.example"),
                ("x_auth_request_user", "mallory"),
            ],
            None,
        )
    };
    let r = preflight(&mut browser, &s.url("/api/items"));
    assert_eq!(r.status, 401);
    assert!(r.seen().is_none());
    // …unless skip_auth_preflight lets it pass without login (spoofed identity still stripped).
    let open = Stack::with_config("preflight", json!({"skip_auth_preflight": true}));
    let r = preflight(&mut browser, &open.url("/api/items"));
    assert_eq!(r.status, 200);
    let seen = r.seen().expect("reached the app");
    assert_eq!(seen.method, "OPTIONS");
    assert!(seen.header("x_auth_request_user").is_none(), "{seen:?}");
}

#[test]
fn sign_out_clears_the_session_and_follows_only_local_rd() {
    let s = Stack::with_config("signout", json!({}));
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let r = b.get(&s.url("/oauth2/sign_out?rd=/goodbye"));
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/goodbye"));
    assert!(!b.cookies(&s.url("/")).contains_key("_oauth2_proxy"));
    let next = b.get(&s.url("/"));
    assert_eq!(next.status, 302, "signed out: a new login starts");
    // The IdP still has its own session (single sign-on), so the new login needs no form.
    let back = b.follow(&s.url("/"), 10);
    assert_eq!(back.last().map(|r| r.status), Some(200), "{back:#?}");
    let r = b.get(&s.url("/oauth2/sign_out?rd=https://evil.example/"));
    assert_eq!(r.header("location"), Some("/"));
}

#[test]
fn idp_error_on_callback_gives_an_error_page_and_nothing_upstream() {
    // The provider requires PKCE: with PKCE off it redirects back with error=invalid_request.
    let s = Stack::with_config("idperror", json!({"code_challenge_method": ""}));
    let mut b = Browser::new();
    let hops = b.follow(&s.url("/"), 10);
    let last = hops.last().expect("reply");
    assert!(
        hops.iter()
            .any(|r| r.url.contains("/oauth2/callback?error=")),
        "{hops:#?}"
    );
    assert_eq!(last.status, 502, "{last:?}");
    assert!(
        last.body.contains("Sign-in Failed") && last.body.contains("returned an error"),
        "{}",
        last.body
    );
    assert!(last.seen().is_none());
    assert!(
        !b.cookies(&s.url("/")).keys().any(|k| k.ends_with("_csrf")),
        "the flow cookie is cleared"
    );
    assert!(s.envoy_log().contains("idp_error"));
}

#[test]
fn replayed_or_foreign_callback_state_is_rejected() {
    let s = Stack::with_config("replay", json!({}));
    // A foreign state: the victim's callback URL opened in the attacker's browser.
    let mut victim = Browser::new();
    let hops = victim.login(&s.url("/"), ALICE.username, ALICE.password);
    let callback = hops
        .iter()
        .find(|r| r.url.contains("/oauth2/callback"))
        .expect("callback")
        .url
        .clone();
    let mut attacker = Browser::new();
    let r = attacker.get(&callback);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!attacker.cookies(&s.url("/")).contains_key("_oauth2_proxy"));
    // Replayed in the victim's own browser: the flow's state cookie is gone.
    let r = victim.get(&callback);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("already used"), "{}", r.body);
    // A state of a flow this browser started, with a code from elsewhere: the state matches
    // but the provider refuses the code (PKCE verifier and redirect are bound to the flow).
    let mut b = Browser::new();
    let start = b.get(&s.url("/"));
    let state = authorize_params(&start)["state"].clone();
    let iss = url::form_urlencoded::byte_serialize(s.idp.issuer.as_bytes()).collect::<String>();
    let r = b.get(&s.url(&format!(
        "/oauth2/callback?code=forged&state={state}&iss={iss}"
    )));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(s.envoy_log().contains("code_exchange_refused"));
    // The provider sends `iss` with every answer (RFC 9207): a callback without it is refused
    // before any code exchange.
    let start = b.get(&s.url("/"));
    let state = authorize_params(&start)["state"].clone();
    let r = b.get(&s.url(&format!("/oauth2/callback?code=x&state={state}")));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(s.envoy_log().contains("callback_iss_missing"));
}

#[test]
fn callback_answered_by_another_replica_completes_the_login() {
    // Two replicas with the same configuration; the IdP sends the browser to replica 0's URL.
    let s = Stack::start(
        "replica",
        StackOptions {
            envoys: 2,
            concurrency: 2,
            ..StackOptions::default()
        },
    );
    let mut b = Browser::new();
    let callback = b.login_until_callback(
        &s.envoys[0].url("/from-replica-0"),
        ALICE.username,
        ALICE.password,
    );
    // Deliver the callback to replica 1, as a load balancer might.
    let other = callback.replace(
        &format!(":{}/", s.envoys[0].port),
        &format!(":{}/", s.envoys[1].port),
    );
    let r = b.get(&other);
    assert_eq!(r.status, 302, "{r:?}\n{}", s.envoy_log());
    assert_eq!(r.header("location"), Some("/from-replica-0"));
    // The session works on both replicas.
    for e in &s.envoys {
        let r = b.get(&e.url("/check"));
        assert_eq!(
            r.seen()
                .and_then(|s| s.header("x-auth-request-email").map(str::to_string))
                .as_deref(),
            Some("alice@example.com")
        );
    }
}

#[test]
fn refused_configuration_stops_envoy_at_start_with_the_key_named() {
    let mut plugin = Plugin::new(json!({
        "oidc_issuer_url": "http://127.0.0.1:1/oauth2/default",
        "client_id": "x",
        "client_secret": "y",
        "cookie_secret": "dG9vLXNob3J0",
        "cookie_expire": "7d",
    }));
    plugin.env.clear();
    let cfg = bootstrap(free_port(), free_port(), &plugin, &[]);
    let err = Envoy::start("badconfig", &cfg, 1)
        .err()
        .expect("Envoy must refuse to start");
    assert!(
        err.contains("cookie_secret: decodes to 9 bytes but must be 32 random bytes"),
        "{err}"
    );
    assert!(
        err.contains("cookie_expire: \\\"7d\\\" has unknown unit")
            || err.contains("cookie_expire: \"7d\" has unknown unit"),
        "{err}"
    );
}

#[test]
fn until_the_provider_loads_navigations_get_503_and_nothing_passes() {
    // The IdP's cluster points at a port where nothing listens.
    let dead = free_port();
    let config = merged(
        json!({
            "oidc_issuer_url": format!("http://127.0.0.1:{dead}/oauth2/default"),
            "client_id": "x",
            "client_secret": "y",
            "cookie_secret": COOKIE_SECRET,
        }),
        &json!({}),
    );
    let echo = e2e::echo::Echo::start();
    let plugin = Plugin::new(config);
    let cfg = bootstrap(
        free_port(),
        echo.port,
        &plugin,
        &[(format!("outbound|{dead}||127.0.0.1"), dead)],
    );
    let envoy = Envoy::start("notready", &cfg, 1).expect("envoy starts");
    let mut b = Browser::new();
    let r = b.get(&envoy.url("/"));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.seen().is_none());
    assert_eq!(Browser::api().get(&envoy.url("/")).status, 401);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        envoy.log_text().contains("fetch failed, will retry"),
        "{}",
        envoy.log_text()
    );
}
