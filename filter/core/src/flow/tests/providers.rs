//! Providers per host: each app's own client, sessions that never cross providers, bearer
//! tokens of one client refused on another's hosts, sign-out per provider, metadata per provider.

use super::*;

const FINANCE_HOST: &str = "finance.example.com";
const FINANCE_CLIENT: &str = "0oa-finance";

/// The default provider on every host but `finance.example.com`, whose policy names the
/// provider `finance`: the same Okta org (issuer), another application (client).
fn two_apps(extra: serde_json::Value) -> World {
    let mut v = minimal();
    v["providers"] = json!([{"id": "finance", "oidc_issuer_url": ISSUER, "client_id": FINANCE_CLIENT,
                             "client_secret": "f1n-s3cr3t"}]);
    v["policies"] = json!([{"hosts": [FINANCE_HOST], "provider": "finance"}]);
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    world_with(v)
}

impl World {
    /// A navigation to `host` with the browser's cookies.
    fn visit(&mut self, host: &str, path: &str) -> Decision {
        let cookie = self.cookie_header();
        self.decide(&request(host, path, &cookie, None), NOW)
    }

    /// A whole login on `host` whose ID token is for `aud`; the callback's final reply.
    fn login_on(&mut self, host: &str, aud: &str) -> (CallOut, Response) {
        let r = reply(self.visit(host, "/"));
        assert_eq!(r.status, 302, "{r:?}");
        self.store(&r);
        let q = query(header(&r, "location").unwrap_or_default());
        let path = format!("/oauth2/callback?code=c&state={}", q["state"]);
        let (call, pending) = match self.visit(host, &path) {
            Decision::Call(Call {
                call,
                then: Pending::CodeExchange(p),
            }) => (call, p),
            other => unreachable!("{other:?}"),
        };
        let claims = TestIdp::claims(json!({}))
            .with_audience(aud)
            .with_nonce(&q["nonce"]);
        let body = json!({"id_token": self.idp.rs256(claims), "token_type": "Bearer"});
        let r = self.finish(pending, 200, &body.to_string());
        (call, r)
    }
}

#[test]
fn each_host_logs_in_with_its_own_client_and_gets_its_own_session_cookie() {
    let mut w = two_apps(json!({}));
    let r = reply(w.visit(FINANCE_HOST, "/ledger"));
    let q = query(header(&r, "location").unwrap_or_default());
    assert_eq!(q["client_id"], FINANCE_CLIENT);
    w.jar.clear();
    let (call, r) = w.login_on(FINANCE_HOST, FINANCE_CLIENT);
    assert_eq!(r.status, 302, "{r:?}");
    let basic = call
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let decoded = STANDARD
        .decode(basic.trim_start_matches("Basic "))
        .unwrap_or_default();
    assert_eq!(String::from_utf8_lossy(&decoded), "0oa-finance:f1n-s3cr3t");
    assert!(
        w.jar.contains_key("_oauth2_proxy_finance"),
        "{:?}",
        w.jar.keys()
    );
    assert!(!w.jar.contains_key("_oauth2_proxy"));
    let Forward { plan, .. } = forward(w.visit(FINANCE_HOST, "/ledger"));
    assert_eq!(plan.value("x-auth-request-user"), Some("00u-alice"));
}

#[test]
fn an_id_token_for_the_other_client_fails_the_login() {
    let mut w = two_apps(json!({}));
    let (_, r) = w.login_on(FINANCE_HOST, CLIENT_ID);
    assert_eq!(r.outcome.code(), "aud_mismatch", "{r:?}");
    assert!(!w.jar.contains_key("_oauth2_proxy_finance"));
}

#[test]
fn a_session_never_opens_on_another_providers_hosts() {
    let mut w = two_apps(json!({}));
    let (_, r) = w.login_on("app.example.com", CLIENT_ID);
    assert_eq!(r.status, 302);
    assert!(matches!(
        w.visit("app.example.com", "/"),
        Decision::Forward(_)
    ));
    // The default provider's session is no session on finance: a login with finance's client.
    let r = reply(w.visit(FINANCE_HOST, "/"));
    assert_eq!((r.status, r.outcome.code()), (302, "login_started"));
    // Nor is its value under finance's cookie name, sealed with the same cookie_secret.
    let value = w.jar.get("_oauth2_proxy").cloned().unwrap_or_default();
    let forged = format!("_oauth2_proxy_finance={value}");
    let d = w.decide(&request(FINANCE_HOST, "/", &forged, None), NOW);
    assert_eq!(reply(d).outcome.code(), "login_started");
}

#[test]
fn a_bearer_token_of_another_apps_client_is_refused() {
    let mut w = two_apps(json!({"skip_jwt_bearer_tokens": true}));
    // The top level's skip_jwt_bearer_tokens is the default provider's; finance has its own.
    let token_for = |w: &World, aud: &str| {
        let mut claims = TestIdp::claims(json!({})).with_audience(aud);
        claims.nonce = None;
        format!("Bearer {}", w.idp.rs256(claims))
    };
    let default_token = token_for(&w, CLIENT_ID);
    let d = w.decide(
        &request("app.example.com", "/v1", "", Some(&default_token)),
        NOW,
    );
    assert_eq!(forward(d).outcome, Outcome::Bearer);
    let d = w.decide(&request(FINANCE_HOST, "/v1", "", Some(&default_token)), NOW);
    assert_eq!(
        reply(d).status,
        302,
        "finance takes no bearer tokens: a browser logs in"
    );

    let mut w = two_apps(json!({}));
    w.gate = {
        let mut v = minimal();
        v["skip_jwt_bearer_tokens"] = json!(true);
        v["providers"] = json!([{"id": "finance", "oidc_issuer_url": ISSUER, "client_id": FINANCE_CLIENT,
                                 "client_secret": "f", "skip_jwt_bearer_tokens": true}]);
        v["policies"] = json!([{"hosts": [FINANCE_HOST], "provider": "finance"}]);
        let Ok(cfg) = parse(&v) else { unreachable!() };
        w.providers = loaded_providers(&cfg, &mut w.store, &discovery_json(), &w.idp.jwks());
        Gate::new(cfg)
    };
    let default_token = token_for(&w, CLIENT_ID);
    let finance_token = token_for(&w, FINANCE_CLIENT);
    let d = w.decide(&request(FINANCE_HOST, "/v1", "", Some(&default_token)), NOW);
    assert_eq!(reply(d).outcome.code(), "aud_mismatch");
    let d = w.decide(&request(FINANCE_HOST, "/v1", "", Some(&finance_token)), NOW);
    assert_eq!(forward(d).outcome, Outcome::Bearer);
    // And the finance token, verified and cached on finance, is still refused on app.
    let d = w.decide(
        &request("app.example.com", "/v1", "", Some(&finance_token)),
        NOW,
    );
    assert_eq!(reply(d).outcome.code(), "aud_mismatch");
}

#[test]
fn sign_out_clears_the_hosts_provider_and_all_true_clears_every_one() {
    let mut w = two_apps(json!({}));
    w.login_on("app.example.com", CLIENT_ID);
    w.login_on(FINANCE_HOST, FINANCE_CLIENT);
    let cleared = |r: &Response| -> Vec<String> {
        set_cookies(r)
            .iter()
            .filter(|c| c.contains("Max-Age=0"))
            .filter_map(|c| c.split('=').next().map(str::to_string))
            .collect()
    };
    let r = reply(w.visit(FINANCE_HOST, "/oauth2/sign_out"));
    assert_eq!(cleared(&r), ["_oauth2_proxy_finance"]);
    let r = reply(w.visit(FINANCE_HOST, "/oauth2/sign_out?all=true"));
    let mut names = cleared(&r);
    names.sort();
    assert_eq!(names, ["_oauth2_proxy", "_oauth2_proxy_finance"]);
}

#[test]
fn a_provider_whose_metadata_is_missing_makes_only_its_hosts_wait() {
    let mut w = two_apps(json!({}));
    // Only the default provider's loader has its documents.
    let Ok(cfg) = parse(&{
        let mut v = minimal();
        v["providers"] = json!([{"id": "finance", "oidc_issuer_url": "https://finance.okta.example/oauth2/default",
                                 "client_id": FINANCE_CLIENT, "client_secret": "f"}]);
        v["policies"] = json!([{"hosts": [FINANCE_HOST], "provider": "finance"}]);
        v
    }) else {
        unreachable!()
    };
    w.providers = loaded_providers(&cfg, &mut w.store, &discovery_json(), &w.idp.jwks());
    w.gate = Gate::new(cfg);
    assert_eq!(reply(w.visit(FINANCE_HOST, "/")).status, 503);
    assert_eq!(reply(w.visit("app.example.com", "/")).status, 302);
}

#[test]
fn a_path_whose_readings_fall_under_two_providers_is_refused() {
    let mut v = minimal();
    v["providers"] = json!([{"id": "finance", "oidc_issuer_url": ISSUER, "client_id": FINANCE_CLIENT,
                             "client_secret": "f"}]);
    v["policies"] =
        json!([{"hosts": ["app.example.com"], "path_prefix": "/ledger/", "provider": "finance"}]);
    let mut w = world_with(v);
    for path in ["/x/..;/ledger/", "/LEDGER/a", "/x/%2e%2e/ledger/a"] {
        let r = reply(w.visit("app.example.com", path));
        assert_eq!((r.status, r.outcome.code()), (400, "bad_request"), "{path}");
    }
    let r = reply(w.visit("app.example.com", "/ledger/a"));
    assert_eq!(
        query(header(&r, "location").unwrap_or_default())["client_id"],
        FINANCE_CLIENT
    );
}

#[test]
fn a_configuration_without_providers_keeps_its_cookie_name_and_keys() {
    // A session sealed by a filter before `providers` existed opens as before.
    let mut w = world();
    let cookies = w
        .gate
        .sessions()
        .encode(&crate::session::tests::alice(NOW), &mut SeededEntropy(1))
        .unwrap_or_default();
    assert_eq!(cookies[0].0, "_oauth2_proxy");
    w.jar.extend(cookies);
    assert!(matches!(
        w.visit("app.example.com", "/"),
        Decision::Forward(_)
    ));
}

#[test]
fn decisions_name_the_provider_they_were_made_for_so_metrics_and_logs_can() {
    let mut w = two_apps(json!({}));
    let r = reply(w.visit(FINANCE_HOST, "/ledger"));
    assert_eq!(w.gate.provider_id(r.provider), "finance");
    let (_, landing) = w.login_on(FINANCE_HOST, FINANCE_CLIENT);
    assert_eq!(w.gate.provider_id(landing.provider), "finance");
    let f = forward(w.visit(FINANCE_HOST, "/ledger"));
    assert_eq!(w.gate.provider_id(f.provider), "finance");
    let other = reply(w.visit("app.example.com", "/"));
    assert_eq!(other.provider, 0);
    assert_eq!(w.gate.provider_id(0), "default");
}
