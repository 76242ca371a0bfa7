//! Whole-flow scenarios of the core: navigation → 302 → callback → token call-out → session
//! cookie → signed-in request → headers, and each way a step can fail.

use super::*;
use crate::callout::CallOut;
use crate::callout::CallResult;
use crate::config::tests::{minimal, parse};
use crate::env::testing::SeededEntropy;
use crate::env::{Env, Now, UnixTime};
use crate::headers::CookieRewrite;
use crate::jwt::verify::testing::{TestIdp, CLIENT_ID, ISSUER, NOW};
use crate::policy::Denial;
use crate::provider::tests::{discovery_json, loaded_providers};
use crate::provider::{Provider, Providers};
use crate::session::SessionError;
use crate::shared::MemoryStore;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jwt_simple::prelude::ECDSAP256KeyPairLike;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use url::form_urlencoded;

const HTML: &str = "text/html,application/xhtml+xml";

/// The header names of a request that spoofs identity headers, in spellings servers read alike.
const SPOOFED: &[&[u8]] = &[
    b"accept",
    b"x-auth-request-user",
    b"X_Auth_Request_Email",
    b"x_forwarded_user",
    b"cookie",
];

struct World {
    gate: Gate,
    idp: TestIdp,
    /// Loaded from the test IdP, publishing to `store`; `unloaded` has not fetched anything
    /// yet, and no other worker has published anything to its `empty` store.
    providers: Providers,
    store: MemoryStore,
    unloaded: Providers,
    empty: MemoryStore,
    rng: SeededEntropy,
    /// The browser's cookies.
    jar: HashMap<String, String>,
}

fn world_with(config: serde_json::Value) -> World {
    world_with_discovery(config, &discovery_json())
}

fn world_with_discovery(config: serde_json::Value, discovery: &str) -> World {
    let cfg = parse(&config);
    let Ok(cfg) = cfg else {
        unreachable!("{cfg:?}")
    };
    let idp = TestIdp::new();
    let mut store = MemoryStore::default();
    let providers = loaded_providers(&cfg, &mut store, discovery, &idp.jwks());
    World {
        unloaded: Providers::new(&cfg),
        empty: MemoryStore::default(),
        gate: Gate::new(cfg),
        idp,
        providers,
        store,
        rng: SeededEntropy(42),
        jar: HashMap::new(),
    }
}

fn world() -> World {
    world_with(minimal())
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.header(name)
}

fn set_cookies(r: &Response) -> Vec<&str> {
    r.set_cookies.iter().map(String::as_str).collect()
}

fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The reply a decision must be.
fn reply(d: Decision) -> Response {
    match d {
        Decision::Respond(r) => r,
        other => unreachable!("expected a local reply, got {other:?}"),
    }
}

/// The forward a decision must be.
fn forward(d: Decision) -> Forward {
    match d {
        Decision::Forward(f) => f,
        other => unreachable!("expected a forward, got {other:?}"),
    }
}

impl World {
    fn provider(&mut self) -> Arc<Provider> {
        self.providers
            .main(0, &self.store)
            .unwrap_or_else(|| unreachable!("loaded"))
    }

    /// Decides on `req` at `now` with the loaded providers.
    fn decide(&mut self, req: &Request<'_>, now: UnixTime) -> Decision {
        let mut env = Env::new(
            Now::from_secs(now),
            &mut self.rng,
            &mut self.store,
            &mut self.providers,
        );
        self.gate.decide(req, &mut env)
    }

    /// Decides on `req` at `now` before any provider metadata is loaded.
    fn decide_unloaded(&mut self, req: &Request<'_>, now: UnixTime) -> Decision {
        let mut env = Env::new(
            Now::from_secs(now),
            &mut self.rng,
            &mut self.empty,
            &mut self.unloaded,
        );
        self.gate.decide(req, &mut env)
    }

    /// Continues `pending` with a call-out's answer at `now`.
    fn resume(&mut self, pending: Pending, result: CallResult<'_>, now: UnixTime) -> Decision {
        let mut env = Env::new(
            Now::from_secs(now),
            &mut self.rng,
            &mut self.store,
            &mut self.providers,
        );
        self.gate.resume(pending, result, &mut env)
    }

    fn cookie_header(&self) -> String {
        let mut pairs: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.sort();
        pairs.join("; ")
    }

    fn store(&mut self, r: &Response) {
        self.keep_cookies(&r.set_cookies);
    }

    fn keep_cookies(&mut self, set_cookies: &[String]) {
        for c in set_cookies {
            let pair = c.split(';').next().unwrap_or("");
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if c.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn get(&mut self, path: &str, accept: &str) -> Decision {
        let cookie = self.cookie_header();
        let req = Request {
            method: "GET",
            scheme: "https",
            authority: "app.example.com",
            path,
            cookie: Some(cookie.as_bytes()),
            accept: Some(accept),
            header_names: SPOOFED,
            ..Request::default()
        };
        self.decide(&req, NOW)
    }

    fn respond(&mut self, path: &str, accept: &str) -> Response {
        reply(self.get(path, accept))
    }

    /// Navigates to `path` without a session and returns the authorize URL's query.
    fn start(&mut self, path: &str) -> HashMap<String, String> {
        let r = self.respond(path, HTML);
        assert_eq!(r.status, 302, "{r:?}");
        assert_eq!(r.outcome, Outcome::LoginStarted);
        self.store(&r);
        let location = header(&r, "location").unwrap_or_default().to_string();
        assert!(
            location.starts_with(&format!("{ISSUER}/v1/authorize?")),
            "{location}"
        );
        query(&location)
    }

    /// The callback up to the token call-out.
    #[allow(clippy::result_large_err)]
    fn callback(&mut self, query: &str) -> Result<(CallOut, Box<PendingLogin>), Response> {
        match self.get(&format!("/oauth2/callback?{query}"), HTML) {
            Decision::Call(Call {
                call,
                then: Pending::CodeExchange(pending),
            }) => Ok((call, pending)),
            Decision::Respond(r) => Err(r),
            other => unreachable!("{other:?}"),
        }
    }

    /// The token endpoint answers the code exchange; the login ends with a reply.
    fn finish(&mut self, pending: Box<PendingLogin>, status: u16, body: &str) -> Response {
        let result = CallResult::status(status, body.as_bytes());
        let r = reply(self.resume(Pending::CodeExchange(pending), result, NOW));
        self.store(&r);
        r
    }

    fn id_token(&self, nonce: &str, extra: serde_json::Value) -> String {
        self.idp.rs256(TestIdp::claims(extra).with_nonce(nonce))
    }

    /// A complete login; returns the final redirect.
    fn login(&mut self, path: &str, extra: serde_json::Value) -> Response {
        let q = self.start(path);
        let cb = format!("code=the-code&state={}", q["state"]);
        let Ok((_, pending)) = self.callback(&cb) else {
            unreachable!()
        };
        let body = json!({"id_token": self.id_token(&q["nonce"], extra), "access_token": "at-123", "token_type": "Bearer"});
        self.finish(pending, 200, &body.to_string())
    }
}

#[test]
fn navigation_without_session_redirects_to_the_idp_with_state_nonce_and_pkce() {
    let mut w = world();
    let q = w.start("/dashboard?tab=1");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], "https://app.example.com/oauth2/callback");
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"].len(), 43);
    assert_eq!(q["nonce"].len(), 43);
    assert_ne!(q["state"], q["nonce"]);
    assert_eq!(q["code_challenge"].len(), 43);
    let csrf: Vec<&String> = w.jar.keys().filter(|k| k.ends_with("_csrf")).collect();
    assert_eq!(csrf.len(), 1);
    assert!(csrf[0].starts_with("_oauth2_proxy_"));
}

#[test]
fn login_state_cookie_has_the_configured_attributes_and_15_minutes() {
    let mut w = world();
    let r = w.respond("/", HTML);
    let c = set_cookies(&r);
    assert_eq!(c.len(), 1);
    assert!(
        c[0].ends_with("; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax"),
        "{}",
        c[0]
    );
}

#[test]
fn full_login_sets_the_session_and_returns_to_the_original_url() {
    let mut w = world();
    let q = w.start("/dashboard?tab=1");
    let cb = format!("code=c0de&state={}&iss={}", q["state"], ISSUER);
    let Ok((call, pending)) = w.callback(&cb) else {
        unreachable!()
    };
    assert_eq!(call.cluster, "outbound|443||dev-123456.okta.com");
    let h: HashMap<&str, &str> = call
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(h[":method"], "POST");
    assert_eq!(h[":path"], "/oauth2/default/v1/token");
    assert_eq!(h[":authority"], "dev-123456.okta.com");
    assert_eq!(h["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(
        h["authorization"],
        format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:s3cr3t")))
    );
    let form: HashMap<String, String> = form_urlencoded::parse(&call.body).into_owned().collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "c0de");
    assert_eq!(
        form["redirect_uri"],
        "https://app.example.com/oauth2/callback"
    );
    assert_eq!(form["code_verifier"].len(), 43);
    assert!(!form.contains_key("client_secret"));

    let body = json!({"id_token": w.id_token(&q["nonce"], json!({})), "access_token": "at", "token_type": "Bearer"});
    let r = w.finish(pending, 200, &body.to_string());
    assert_eq!(r.status, 302);
    assert_eq!(r.outcome, Outcome::LoginCompleted);
    assert_eq!(header(&r, "location"), Some("/dashboard?tab=1"));
    let cookies = set_cookies(&r);
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=") && c.contains("Max-Age=604800")));
    assert!(
        w.jar.keys().all(|k| !k.ends_with("_csrf")),
        "the flow cookie is removed"
    );

    let Forward {
        plan,
        outcome,
        user,
        ..
    } = forward(w.get("/dashboard?tab=1", HTML));
    assert_eq!(outcome, Outcome::Authenticated);
    assert_eq!(user.as_deref(), Some("00u-alice"));
    assert!((plan.value("x-auth-request-email") == Some("alice@example.com")));
    assert!((plan.value("x-auth-request-groups") == Some("admins,everyone")));
    assert_eq!(
        plan.cookie,
        CookieRewrite::Remove,
        "the session cookie is not forwarded upstream"
    );
    for spoofed in ["X_Auth_Request_Email", "x_forwarded_user"] {
        assert!(plan.removes(spoofed), "{spoofed}");
    }
}

#[test]
fn client_secret_basic_form_encodes_before_base64_and_post_puts_it_in_the_body() {
    let mut v = minimal();
    v["client_secret"] = json!("se cret&+=/");
    let mut w = world_with(v.clone());
    let q = w.start("/");
    let Ok((call, _)) = w.callback(&format!("code=x&state={}", q["state"])) else {
        unreachable!()
    };
    let auth = call
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(
        auth,
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{CLIENT_ID}:se+cret%26%2B%3D%2F"))
        ))
    );

    v["client_auth_method"] = json!("client_secret_post");
    let mut w = world_with(v);
    let q = w.start("/");
    let Ok((call, _)) = w.callback(&format!("code=x&state={}", q["state"])) else {
        unreachable!()
    };
    assert!(call.headers.iter().all(|(k, _)| k != "authorization"));
    let form: HashMap<String, String> = form_urlencoded::parse(&call.body).into_owned().collect();
    assert_eq!(form["client_secret"], "se cret&+=/");
    assert_eq!(form["client_id"], CLIENT_ID);
}

#[test]
fn pkce_off_when_code_challenge_method_is_empty() {
    let mut v = minimal();
    v["code_challenge_method"] = json!("");
    let mut w = world_with(v);
    let q = w.start("/");
    assert!(!q.contains_key("code_challenge"));
    let Ok((call, _)) = w.callback(&format!("code=x&state={}", q["state"])) else {
        unreachable!()
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&call.body).into_owned().collect();
    assert!(!form.contains_key("code_verifier"));
}

#[test]
fn api_requests_get_401_json_never_a_redirect() {
    let mut v = minimal();
    v["api_routes"] = json!(["^/api/"]);
    let mut w = world_with(v);
    for (path, accept) in [
        ("/api/items", HTML),
        ("/page", "application/json"),
        ("/page", "*/*"),
    ] {
        let r = w.respond(path, accept);
        assert_eq!(r.status, 401, "{path} {accept}");
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert!(r.body.contains("\"error\":\"no_session\""), "{}", r.body);
    }
    let cookie = String::new();
    for (xrw, mode) in [
        (Some("XMLHttpRequest"), None),
        (None, Some("cors")),
        (None, Some("no-cors")),
    ] {
        let req = Request {
            method: "GET",
            authority: "app.example.com",
            path: "/page",
            accept: Some(HTML),
            cookie: Some(cookie.as_bytes()),
            x_requested_with: xrw,
            sec_fetch_mode: mode,
            ..Request::default()
        };
        let r = reply(w.decide(&req, NOW));
        assert_eq!(r.status, 401, "{xrw:?} {mode:?}");
    }
}

#[test]
fn skip_auth_routes_and_opted_in_preflights_pass_without_login_but_never_with_spoofed_identity() {
    let mut v = minimal();
    v["skip_auth_routes"] = json!(["^/healthz$", "GET=^/public/"]);
    v["skip_auth_preflight"] = json!(true);
    let mut w = world_with(v);
    let req = |method, path, acrm| Request {
        method,
        authority: "app.example.com",
        path,
        access_control_request_method: acrm,
        header_names: SPOOFED,
        ..Request::default()
    };
    for (r, expected) in [
        (req("OPTIONS", "/x", Some("POST")), Outcome::Preflight),
        (req("GET", "/healthz", None), Outcome::Public),
        (req("GET", "/public/app.css", None), Outcome::Public),
    ] {
        let Forward { plan, outcome, .. } = forward(w.decide_unloaded(&r, NOW));
        assert_eq!(outcome, expected);
        assert!(plan.set.is_empty());
        for spoofed in [
            "x-auth-request-user",
            "X_Auth_Request_Email",
            "x_forwarded_user",
        ] {
            assert!(plan.removes(spoofed), "{spoofed}");
        }
    }
    let r = reply(w.decide_unloaded(&req("POST", "/public/x", None), NOW));
    assert_eq!(r.status, 401);
    let r = reply(w.decide_unloaded(&req("OPTIONS", "/x", None), NOW));
    assert_eq!(
        r.status, 401,
        "OPTIONS without Access-Control-Request-Method is not a preflight"
    );
}

#[test]
fn preflights_need_a_session_unless_skip_auth_preflight() {
    let mut w = world();
    let preflight = Request {
        method: "OPTIONS",
        authority: "app.example.com",
        path: "/api/x",
        accept: Some("*/*"),
        sec_fetch_mode: Some("cors"),
        access_control_request_method: Some("POST"),
        ..Request::default()
    };
    let d = w.decide(&preflight, NOW);
    let r = reply(d);
    assert_eq!((r.status, r.outcome.code()), (401, "no_session"));
}

#[test]
fn group_and_email_domain_denials_are_403_and_keep_the_session() {
    let mut v = minimal();
    v["allowed_groups"] = json!(["admins"]);
    let mut w = world_with(v);
    let r = w.login(
        "/",
        json!({"groups": ["everyone"], "email": "bob@example.com"}),
    );
    assert_eq!(r.status, 302);
    let r = w.respond("/", HTML);
    assert_eq!(
        (r.status, &r.outcome),
        (403, &Outcome::Denied(Denial::Group))
    );
    assert!(r.body.contains("bob@example.com") && r.body.contains("/oauth2/sign_out"));
    assert!(set_cookies(&r).is_empty(), "the session is kept");

    let mut v = minimal();
    v["email_domains"] = json!(["corp.example"]);
    let mut w = world_with(v);
    w.login("/", json!({}));
    let r = w.respond("/", HTML);
    assert_eq!(
        (r.status, &r.outcome),
        (403, &Outcome::Denied(Denial::EmailDomain))
    );
}

#[test]
fn unverified_email_is_refused_unless_allowed() {
    let mut w = world();
    let r = w.login("/", json!({"email_verified": false}));
    assert_eq!((r.status, r.outcome.code()), (403, "email_unverified"));
    assert!(!w.jar.contains_key("_oauth2_proxy"));

    let mut v = minimal();
    v["insecure_oidc_allow_unverified_email"] = json!(true);
    let mut w = world_with(v);
    assert_eq!(w.login("/", json!({"email_verified": false})).status, 302);
}

#[test]
fn callback_rejections() {
    let mut w = world();
    let q = w.start("/");
    let state = q["state"].clone();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("error=access_denied&state={state}"),
            403,
            "idp_error",
        ),
        (
            format!("error=server_error&state={state}"),
            502,
            "idp_error",
        ),
        ("code=x".to_string(), 400, "callback_missing_state"),
        (format!("state={state}"), 400, "callback_missing_code"),
        (
            "code=x&state=another-browsers-state".to_string(),
            403,
            "login_state_missing",
        ),
        (
            format!("code=x&state={}X", state.get(..42).unwrap_or_default()),
            403,
            "state_mismatch",
        ),
        (
            format!("code=x&state={state}&iss=https://evil.example"),
            403,
            "callback_iss_mismatch",
        ),
    ];
    for (q, status, code) in cases {
        let saved = w.jar.clone();
        let r = w.callback(&q).err().unwrap_or_else(|| unreachable!("{q}"));
        assert_eq!((r.status, r.outcome.code()), (status, code), "{q}");
        assert!(r.body.contains("Sign-in Failed"), "{}", r.body);
        w.jar = saved;
    }
}

#[test]
fn expired_login_state_is_refused() {
    let mut w = world();
    let q = w.start("/");
    let cookie = w.cookie_header();
    let path = format!("/oauth2/callback?code=x&state={}", q["state"]);
    let req = Request {
        method: "GET",
        authority: "app.example.com",
        path: &path,
        cookie: Some(cookie.as_bytes()),
        accept: Some(HTML),
        ..Request::default()
    };
    let r = reply(w.decide(&req, NOW + 901));
    assert_eq!(r.outcome.code(), "login_state_expired");
}

#[test]
fn a_replayed_callback_finds_no_login_state() {
    let mut w = world();
    let q = w.start("/");
    let cb = format!("code=c&state={}", q["state"]);
    let Ok((_, pending)) = w.callback(&cb) else {
        unreachable!()
    };
    let body = json!({"id_token": w.id_token(&q["nonce"], json!({}))});
    assert_eq!(w.finish(pending, 200, &body.to_string()).status, 302);
    let r = w.callback(&cb).err().unwrap_or_else(|| unreachable!());
    assert_eq!((r.status, r.outcome.code()), (403, "login_state_missing"));
}

#[test]
fn token_endpoint_outcomes() {
    let cases: Vec<(Option<u16>, String, u16, &str)> = vec![
        (None, String::new(), 503, "idp_unreachable"),
        (
            Some(400),
            r#"{"error":"invalid_grant"}"#.into(),
            403,
            "code_exchange_refused",
        ),
        (
            Some(401),
            r#"{"error":"invalid_client"}"#.into(),
            403,
            "code_exchange_refused",
        ),
        (Some(500), "oops".into(), 502, "code_exchange_refused"),
        // Envoy's own answer when it cannot reach the IdP (connect error, timeout).
        (
            Some(503),
            "upstream connect error".into(),
            503,
            "idp_unreachable",
        ),
        (
            Some(504),
            "upstream request timeout".into(),
            503,
            "idp_unreachable",
        ),
        (Some(200), "not json".into(), 502, "token_response_invalid"),
        (
            Some(200),
            r#"{"access_token":"only"}"#.into(),
            502,
            "token_response_invalid",
        ),
        (
            Some(200),
            format!(r#"{{"id_token":"{}"}}"#, "x".repeat(300 * 1024)),
            502,
            "token_response_invalid",
        ),
    ];
    for (status, body, expected, code) in cases {
        let mut w = world();
        let q = w.start("/");
        let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
            unreachable!()
        };
        let result = match status {
            Some(s) => CallResult::status(s, body.as_bytes()),
            None => CallResult::failed(),
        };
        let r = reply(w.resume(Pending::CodeExchange(pending), result, NOW));
        assert_eq!(
            (r.status, r.outcome.code()),
            (expected, code),
            "{status:?} {body:.40}"
        );
        assert!(
            set_cookies(&r).iter().any(|c| c.contains("_csrf=;")),
            "the flow cookie is cleared"
        );
        assert!(set_cookies(&r)
            .iter()
            .all(|c| !c.starts_with("_oauth2_proxy=")));
    }
}

#[test]
fn id_token_from_another_login_fails_the_nonce_check() {
    let mut w = world();
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let body = json!({"id_token": w.id_token("some-other-nonce", json!({}))});
    let r = w.finish(pending, 200, &body.to_string());
    assert_eq!((r.status, r.outcome.code()), (403, "nonce_mismatch"));
}

#[test]
fn tampered_or_foreign_session_cookie_means_a_new_login() {
    let mut w = world();
    w.login("/", json!({}));
    let v = w.jar.get("_oauth2_proxy").cloned().unwrap_or_default();
    let flipped: String = v.chars().rev().collect();
    w.jar.insert("_oauth2_proxy".into(), flipped);
    let r = w.respond("/", HTML);
    assert_eq!(r.outcome, Outcome::LoginStarted);
    let r = w.respond("/", "application/json");
    assert_eq!(
        r.outcome,
        Outcome::Unauthenticated(SessionError::Unreadable)
    );
}

#[test]
fn sign_out_clears_every_part_and_only_follows_local_paths() {
    let mut w = world();
    w.login("/", json!({}));
    w.jar.insert("_oauth2_proxy_1".into(), "stale".into());
    w.jar
        .insert("_oauth2_proxy_abcdefgh_csrf".into(), "x".into());
    for (rd, target) in [
        ("/bye", "/bye"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("javascript:alert(1)", "/"),
    ] {
        let r = w.respond(&format!("/oauth2/sign_out?rd={rd}"), HTML);
        assert_eq!(r.status, 302);
        assert_eq!(header(&r, "location"), Some(target), "{rd}");
        let cleared: Vec<&str> = set_cookies(&r)
            .iter()
            .map(|c| c.split('=').next().unwrap_or(""))
            .collect();
        for name in [
            "_oauth2_proxy",
            "_oauth2_proxy_1",
            "_oauth2_proxy_abcdefgh_csrf",
        ] {
            assert!(cleared.contains(&name), "{name} in {cleared:?}");
        }
    }
}

#[test]
fn nothing_that_needs_the_idp_happens_before_the_provider_is_loaded() {
    let mut w = world();
    w.login("/", json!({}));
    let cookie = w.cookie_header();
    let req = |path, cookie| Request {
        method: "GET",
        authority: "app.example.com",
        path,
        cookie,
        accept: Some(HTML),
        ..Request::default()
    };
    // A signed-in user keeps working from the cookie.
    let d = w.decide_unloaded(&req("/", Some(cookie.as_bytes())), NOW);
    assert!(matches!(
        d,
        Decision::Forward(Forward {
            outcome: Outcome::Authenticated,
            ..
        })
    ));
    // A new login waits.
    let r = reply(w.decide_unloaded(&req("/", None), NOW));
    assert_eq!((r.status, header(&r, "retry-after")), (503, Some("5")));
}

#[test]
fn session_expires_with_cookie_expire() {
    let mut v = minimal();
    v["cookie_expire"] = json!("1h");
    let mut w = world_with(v);
    w.login("/", json!({}));
    let cookie = w.cookie_header();
    let req = Request {
        method: "GET",
        authority: "app.example.com",
        path: "/",
        cookie: Some(cookie.as_bytes()),
        accept: Some("application/json"),
        ..Request::default()
    };
    let d = w.decide_unloaded(&req, NOW + 3599);
    assert!(matches!(d, Decision::Forward(_)));
    let r = reply(w.decide_unloaded(&req, NOW + 3600));
    assert_eq!(r.outcome, Outcome::Unauthenticated(SessionError::Expired));
}

#[test]
fn tokens_are_kept_only_when_a_header_needs_them() {
    let mut w = world();
    w.login("/", json!({}));
    let session = w.gate.sessions().decode(
        &RequestCookies::parse(Some(w.cookie_header().as_bytes())),
        NOW,
    );
    let Ok(s) = session.map(|o| o.session) else {
        unreachable!()
    };
    assert!(s.id_token.is_none() && s.access_token.is_none() && s.refresh_token.is_none());

    let mut v = minimal();
    v["set_authorization_header"] = json!(true);
    v["pass_access_token"] = json!(true);
    let mut w = world_with(v);
    w.login("/", json!({}));
    let Forward { plan, .. } = forward(w.get("/", HTML));
    assert!(plan
        .set
        .iter()
        .any(|(k, v)| *k == "authorization" && v.starts_with("Bearer ey")));
    assert!((plan.value("x-auth-request-access-token") == Some("at-123")));
}

#[test]
fn redirect_uri_follows_the_request_or_the_configuration() {
    let mut w = world();
    let cookie = String::new();
    let req = Request {
        method: "GET",
        scheme: "http",
        authority: "localhost:8080",
        path: "/",
        cookie: Some(cookie.as_bytes()),
        accept: Some(HTML),
        ..Request::default()
    };
    let r = reply(w.decide(&req, NOW));
    assert_eq!(
        query(header(&r, "location").unwrap_or(""))["redirect_uri"],
        "http://localhost:8080/oauth2/callback"
    );
    let bad = Request {
        authority: "evil.example/x?",
        ..req
    };
    let r = reply(w.decide(&bad, NOW));
    assert_eq!(r.status, 400);

    let mut v = minimal();
    v["redirect_url"] = json!("https://auth.example.com/oauth2/callback");
    let mut w = world_with(v);
    let q = w.start("/");
    assert_eq!(
        q["redirect_uri"],
        "https://auth.example.com/oauth2/callback"
    );
}

#[test]
fn start_endpoint_honours_local_rd_only() {
    let mut w = world();
    for (rd, expected) in [
        ("/after", "/after"),
        ("https://evil.example", "/"),
        ("//evil.example", "/"),
    ] {
        let q = w.start(&format!("/oauth2/start?rd={rd}"));
        let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
            unreachable!()
        };
        let body = json!({"id_token": w.id_token(&q["nonce"], json!({}))});
        let r = w.finish(pending, 200, &body.to_string());
        assert_eq!(header(&r, "location"), Some(expected), "{rd}");
        w.jar.clear();
    }
}

#[test]
fn unknown_prefix_paths_are_404_and_the_prefix_boundary_is_respected() {
    let mut w = world();
    assert_eq!(w.respond("/oauth2/nope", HTML).status, 404);
    // /oauth2x is the app's, not the filter's.
    assert_eq!(w.respond("/oauth2x", HTML).outcome, Outcome::LoginStarted);
}

#[test]
fn many_parallel_logins_keep_at_most_three_flow_cookies() {
    let mut w = world();
    for _ in 0..6 {
        w.start("/");
    }
    assert!(w.jar.keys().filter(|k| k.ends_with("_csrf")).count() <= 3);
    // Two tabs: the first flow still completes after a second one started.
    let mut w = world();
    let first = w.start("/one");
    let second = w.start("/two");
    for (q, path) in [(first, "/one"), (second, "/two")] {
        let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
            unreachable!()
        };
        let body = json!({"id_token": w.id_token(&q["nonce"], json!({}))});
        assert_eq!(
            header(&w.finish(pending, 200, &body.to_string()), "location"),
            Some(path)
        );
    }
}

#[test]
fn no_randomness_fails_closed() {
    let mut w = world();
    let req = Request {
        method: "GET",
        authority: "app.example.com",
        path: "/",
        accept: Some(HTML),
        ..Request::default()
    };
    let mut no_entropy = crate::env::testing::NoEntropy;
    let mut env = Env::new(
        Now::from_secs(NOW),
        &mut no_entropy,
        &mut w.store,
        &mut w.providers,
    );
    let r = reply(w.gate.decide(&req, &mut env));
    assert_eq!((r.status, r.outcome.code()), (500, "no_entropy"));
}

// ---- refresh (cookie_refresh), coalescing, secret and key rotation ----

fn refreshing() -> World {
    let mut v = minimal();
    v["cookie_refresh"] = json!("1h");
    v["allowed_groups"] = json!(["admins"]);
    world_with(v)
}

impl World {
    fn decide_at(&mut self, path: &str, accept: &str, now: UnixTime) -> Decision {
        let cookie = self.cookie_header();
        let req = Request {
            method: "GET",
            scheme: "https",
            authority: "app.example.com",
            path,
            cookie: Some(cookie.as_bytes()),
            accept: Some(accept),
            header_names: SPOOFED,
            ..Request::default()
        };
        self.decide(&req, now)
    }

    fn login_with_refresh_token(&mut self) {
        let q = self.start("/");
        assert!(q["scope"].ends_with(" offline_access"), "{}", q["scope"]);
        let Ok((_, pending)) = self.callback(&format!("code=c&state={}", q["state"])) else {
            unreachable!()
        };
        let body = json!({"id_token": self.id_token(&q["nonce"], json!({})), "access_token": "at", "refresh_token": "rt-1", "expires_in": 7200});
        assert_eq!(self.finish(pending, 200, &body.to_string()).status, 302);
    }

    /// A decision at `now` that must be a refresh call-out (this request took the lease).
    fn refresh_call(&mut self, now: UnixTime) -> (CallOut, Box<PendingRefresh>) {
        match self.decide_at("/", HTML, now) {
            Decision::Call(Call {
                call,
                then: Pending::Refresh(pending),
            }) => (call, pending),
            other => unreachable!("expected a refresh at {now}: {other:?}"),
        }
    }

    fn refresh_body(&self, groups: serde_json::Value) -> String {
        let mut claims = TestIdp::claims(json!({ "groups": groups }));
        claims.nonce = None;
        claims.issued_at = Some(jwt_simple::prelude::Duration::from_secs(NOW + 3600));
        claims.expires_at = Some(jwt_simple::prelude::Duration::from_secs(NOW + 7200));
        json!({"id_token": self.idp.rs256(claims), "access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600}).to_string()
    }
}

#[test]
fn a_session_older_than_cookie_refresh_is_refreshed_with_its_refresh_token() {
    let mut w = refreshing();
    w.login_with_refresh_token();
    assert!(matches!(
        w.decide_at("/", HTML, NOW + 3599),
        Decision::Forward(_)
    ));
    let (call, pending) = w.refresh_call(NOW + 3600);
    let form: HashMap<String, String> = form_urlencoded::parse(&call.body).into_owned().collect();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "rt-1");
    assert!(call
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v.starts_with("Basic ")));
    let body = w.refresh_body(json!(["admins", "new-team"]));
    let d = w.resume(
        Pending::Refresh(pending),
        CallResult::ok(body.as_bytes()),
        NOW + 3600,
    );
    let Forward {
        plan,
        outcome,
        set_cookies,
        ..
    } = forward(d);
    assert_eq!(outcome, Outcome::Refreshed);
    assert!(
        (plan.value("x-auth-request-groups") == Some("admins,new-team")),
        "the new identity goes upstream"
    );
    assert!(set_cookies.iter().any(|c| c.starts_with("_oauth2_proxy=")));
    w.keep_cookies(&set_cookies);
    // The new session carries the rotated refresh token and starts a new refresh period.
    let opened = w.gate.sessions().decode(
        &RequestCookies::parse(Some(w.cookie_header().as_bytes())),
        NOW + 3600,
    );
    let Ok(s) = opened.map(|o| o.session) else {
        unreachable!()
    };
    assert_eq!(
        (
            s.refresh_token.as_ref().map(|t| t.expose()),
            s.refreshed_at,
            s.groups.len()
        ),
        (Some("rt-2"), NOW + 3600, 2)
    );
    assert!(matches!(
        w.decide_at("/", HTML, NOW + 3601),
        Decision::Forward(_)
    ));
}

#[test]
fn concurrent_requests_of_one_session_make_one_refresh_and_the_rest_go_on() {
    let mut w = refreshing();
    w.login_with_refresh_token();
    let mut pendings = Vec::new();
    for _ in 0..20 {
        match w.decide_at("/", HTML, NOW + 3600) {
            Decision::Call(Call {
                then: Pending::Refresh(pending),
                ..
            }) => pendings.push(pending),
            Decision::Forward(f) => assert_eq!(f.outcome, Outcome::Authenticated),
            other => unreachable!("{other:?}"),
        }
    }
    assert_eq!(pendings.len(), 1, "one request refreshes, the others go on");
    let body = w.refresh_body(json!(["admins"]));
    let pending = pendings.pop().unwrap_or_else(|| unreachable!());
    let _ = w.resume(
        Pending::Refresh(pending),
        CallResult::ok(body.as_bytes()),
        NOW + 3600,
    );
    // Late requests still carrying the old cookie do not refresh again for a while.
    let f = forward(w.decide_at("/", HTML, NOW + 3601));
    assert_eq!(f.outcome, Outcome::Authenticated);
}

#[test]
fn refresh_outcomes_invalid_grant_idp_down_and_lost_group() {
    let outcomes: Vec<(CallResult<'static>, u64, &str)> = vec![
        // Refused, and the tokens have expired: the session ends (browser → new login).
        (
            CallResult::status(400, br#"{"error":"invalid_grant"}"#),
            NOW + 7200,
            "session_ended",
        ),
        // Refused while the tokens are still valid (another replica may have rotated it): kept.
        (
            CallResult::status(400, br#"{"error":"invalid_grant"}"#),
            NOW + 3600,
            "refresh_deferred",
        ),
        // IdP down or failing: the session is used as it is, and retried later.
        (CallResult::failed(), NOW + 3600, "refresh_deferred"),
        (CallResult::status(503, b""), NOW + 3600, "refresh_deferred"),
        (
            CallResult::status(200, b"not json"),
            NOW + 3600,
            "refresh_deferred",
        ),
    ];
    for (result, now, code) in outcomes {
        let mut w = refreshing();
        w.login_with_refresh_token();
        let (_, pending) = w.refresh_call(now);
        match w.resume(Pending::Refresh(pending), result, now) {
            Decision::Forward(f) => assert_eq!(f.outcome.code(), code),
            Decision::Respond(r) => {
                assert_eq!(r.outcome.code(), code);
                assert_eq!(r.status, 302, "a browser signs in again");
                assert!(set_cookies(&r)
                    .iter()
                    .any(|c| c.starts_with("_oauth2_proxy=;") && c.contains("Max-Age=0")));
            }
            other => unreachable!("{other:?}"),
        }
        if code == "refresh_deferred" {
            let f = forward(w.decide_at("/", HTML, now + 5));
            assert_eq!(
                f.outcome,
                Outcome::Authenticated,
                "backs off after a failure"
            );
            let _ = w.refresh_call(now + 11);
        }
    }
    // A user removed from the allowed group loses access at the refresh.
    let mut w = refreshing();
    w.login_with_refresh_token();
    let (_, pending) = w.refresh_call(NOW + 3600);
    let body = w.refresh_body(json!(["everyone"]));
    let d = w.resume(
        Pending::Refresh(pending),
        CallResult::ok(body.as_bytes()),
        NOW + 3600,
    );
    let r = reply(d);
    assert_eq!((r.status, r.outcome.code()), (403, "group_not_allowed"));
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("_oauth2_proxy=")),
        "the refreshed session is kept"
    );
}

#[test]
fn api_request_whose_session_ended_gets_401_and_its_cookie_cleared() {
    let mut w = refreshing();
    w.login_with_refresh_token();
    let d = w.decide_at("/", "application/json", NOW + 7200);
    let Decision::Call(Call {
        then: Pending::Refresh(pending),
        ..
    }) = d
    else {
        unreachable!("{d:?}")
    };
    let d = w.resume(
        Pending::Refresh(pending),
        CallResult::status(400, br#"{"error":"invalid_grant"}"#),
        NOW + 7200,
    );
    let r = reply(d);
    assert_eq!((r.status, r.outcome.code()), (401, "session_ended"));
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=;")));
}

#[test]
fn without_cookie_refresh_no_refresh_token_is_kept_and_nothing_refreshes() {
    let mut w = world();
    let q = w.start("/");
    assert!(!q["scope"].contains("offline_access"));
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let body = json!({"id_token": w.id_token(&q["nonce"], json!({})), "refresh_token": "rt"});
    w.finish(pending, 200, &body.to_string());
    let s = w
        .gate
        .sessions()
        .decode(
            &RequestCookies::parse(Some(w.cookie_header().as_bytes())),
            NOW,
        )
        .map(|o| o.session);
    assert_eq!(s.map(|s| s.refresh_token.clone()), Ok(None));
    assert!(matches!(
        w.decide_at("/", HTML, NOW + 100_000),
        Decision::Forward(_)
    ));
}

#[test]
fn a_session_sealed_with_a_previous_secret_is_accepted_and_reissued() {
    let mut old = world();
    old.login("/", json!({}));
    let mut v = minimal();
    v["cookie_secret"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    v["cookie_secret_previous"] = json!(crate::config::tests::COOKIE_SECRET);
    let mut new = world_with(v);
    new.jar = old.jar.clone();
    let Forward {
        set_cookies,
        outcome,
        ..
    } = forward(new.get("/", HTML));
    assert_eq!(outcome, Outcome::Authenticated);
    assert!(
        set_cookies.iter().any(|c| c.starts_with("_oauth2_proxy=")),
        "re-issued with the new secret"
    );
    new.keep_cookies(&set_cookies);
    let Forward { set_cookies, .. } = forward(new.get("/", HTML));
    assert!(
        set_cookies.is_empty(),
        "current secret: nothing to re-issue"
    );
    // The old deployment does not accept the re-issued cookie; without the previous secret
    // neither does the new one accept the old.
    old.jar = new.jar.clone();
    assert_eq!(old.respond("/", HTML).outcome, Outcome::LoginStarted);
}

#[test]
fn a_login_state_started_before_a_secret_rotation_still_completes() {
    let mut old = world();
    let q = old.start("/after");
    let mut v = minimal();
    v["cookie_secret"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    v["cookie_secret_previous"] = json!([crate::config::tests::COOKIE_SECRET]);
    let mut new = world_with(v);
    new.jar = old.jar.clone();
    let Ok((_, pending)) = new.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let body = json!({"id_token": new.id_token(&q["nonce"], json!({}))});
    assert_eq!(
        header(&new.finish(pending, 200, &body.to_string()), "location"),
        Some("/after")
    );
}

#[test]
fn an_id_token_signed_with_a_new_key_waits_for_one_jwks_refetch() {
    let mut w = world();
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let rotated = TestIdp::new();
    let mut claims = TestIdp::claims(json!({}));
    claims.nonce = Some(q["nonce"].clone());
    // The refetched JWKS will have the new key.
    let jwks = rotated.jwks().replace("\"ec-1\"", "\"ec-rotated\"");
    let token = rotated.ec.with_key_id("ec-rotated").sign(claims);
    let body = json!({"id_token": token.unwrap_or_default()}).to_string();
    let d = w.resume(
        Pending::CodeExchange(pending),
        CallResult::ok(body.as_bytes()),
        NOW,
    );
    let Decision::Call(Call {
        call,
        then: then @ Pending::LoginKeys(_),
    }) = d
    else {
        unreachable!("{d:?}")
    };
    assert!(call
        .headers
        .contains(&(":path".into(), "/oauth2/default/v1/keys".into())));
    let r = reply(w.resume(then, CallResult::ok(jwks.as_bytes()), NOW));
    assert_eq!((r.status, r.outcome.code()), (302, "login_completed"));
    // Had the key still been unknown after the refetch, the login fails instead of looping.
    let mut w = world();
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let mut claims = TestIdp::claims(json!({}));
    claims.nonce = Some(q["nonce"].clone());
    let body = json!({"id_token": TestIdp::new().ec.with_key_id("nobody").sign(claims).unwrap_or_default()}).to_string();
    let d = w.resume(
        Pending::CodeExchange(pending),
        CallResult::ok(body.as_bytes()),
        NOW,
    );
    let Decision::Call(Call { then, .. }) = d else {
        unreachable!("{d:?}")
    };
    let jwks = w.idp.jwks();
    let r = reply(w.resume(then, CallResult::ok(jwks.as_bytes()), NOW));
    assert_eq!((r.status, r.outcome.code()), (502, "unknown_kid"));
    // A second unknown key within 30 s gets no refetch at all: refused at once.
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let mut claims = TestIdp::claims(json!({}));
    claims.nonce = Some(q["nonce"].clone());
    let body = json!({"id_token": TestIdp::new().ec.with_key_id("nobody-2").sign(claims).unwrap_or_default()}).to_string();
    let r = reply(w.resume(
        Pending::CodeExchange(pending),
        CallResult::ok(body.as_bytes()),
        NOW + 1,
    ));
    assert_eq!((r.status, r.outcome.code()), (502, "unknown_kid"));
}

#[test]
fn a_session_that_shrinks_deletes_the_parts_it_no_longer_uses() {
    let mut v = minimal();
    v["cookie_refresh"] = json!("1h");
    v["set_authorization_header"] = json!(true);
    let mut w = world_with(v);
    let q = w.start("/");
    let Ok((_, pending)) = w.callback(&format!("code=c&state={}", q["state"])) else {
        unreachable!()
    };
    let groups: Vec<String> = (0..50)
        .map(|i| format!("a-rather-long-group-name-number-{i:03}"))
        .collect();
    let body = json!({"id_token": w.id_token(&q["nonce"], json!({"groups": groups})), "refresh_token": "r".repeat(800), "expires_in": 3600});
    w.finish(pending, 200, &body.to_string());
    let parts: Vec<String> = w
        .jar
        .keys()
        .filter(|k| k.starts_with("_oauth2_proxy_") && !k.ends_with("_csrf"))
        .cloned()
        .collect();
    assert!(parts.len() >= 2, "{parts:?}");
    let Forward { plan, .. } = forward(w.decide_at("/", HTML, NOW + 1));
    assert!(plan
        .set
        .iter()
        .any(|(k, v)| *k == "x-auth-request-groups" && v.split(',').count() == 50));
    let (_, pending) = w.refresh_call(NOW + 3600);
    let body = w.refresh_body(json!(["admins"]));
    let Forward { set_cookies, .. } = forward(w.resume(
        Pending::Refresh(pending),
        CallResult::ok(body.as_bytes()),
        NOW + 3600,
    ));
    for part in &parts {
        assert!(
            set_cookies
                .iter()
                .any(|c| c.starts_with(&format!("{part}=;")) && c.contains("Max-Age=0")),
            "{part} deleted: {set_cookies:?}"
        );
    }
    assert!(set_cookies
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=") && !c.contains("Max-Age=0")));
}

// ---- many apps: policies, bearer tokens, redirects, IdP logout, userinfo ----

fn request<'a>(
    host: &'a str,
    path: &'a str,
    cookie: &'a str,
    authorization: Option<&'a str>,
) -> Request<'a> {
    Request {
        method: "GET",
        scheme: "https",
        authority: host,
        path,
        cookie: Some(cookie.as_bytes()),
        accept: Some(HTML),
        authorization,
        header_names: SPOOFED,
        ..Request::default()
    }
}

#[test]
fn a_session_is_judged_by_the_policy_of_the_host_it_visits() {
    let mut v = minimal();
    v["cookie_domains"] = json!([".example.test"]);
    v["policies"] = json!([
        {"hosts": ["grafana.example.test"], "allowed_groups": ["grafana-admins"]},
        {"hosts": ["status.example.test"], "skip_auth": true},
    ]);
    let mut w = world_with(v);
    w.login("/", json!({}));
    let cookie = w.cookie_header();
    let d = w.decide(&request("wiki.example.test", "/", &cookie, None), NOW);
    assert!(matches!(
        d,
        Decision::Forward(Forward {
            outcome: Outcome::Authenticated,
            ..
        })
    ));
    let r = reply(w.decide(&request("grafana.example.test", "/", &cookie, None), NOW));
    assert_eq!((r.status, r.outcome.code()), (403, "group_not_allowed"));
    let d = w.decide_unloaded(&request("status.example.test", "/", "", None), NOW);
    assert!(matches!(
        d,
        Decision::Forward(Forward {
            outcome: Outcome::Public,
            ..
        })
    ));
}

#[test]
fn a_path_servers_read_as_another_never_borrows_a_public_policy() {
    let mut v = minimal();
    v["policies"] = json!([
        {"hosts": ["app.example.com"], "path_prefix": "/public/", "skip_auth": true},
        {"hosts": ["app.example.com"], "path_prefix": "/admin", "allowed_groups": ["admins"]},
    ]);
    let mut w = world_with(v);
    for path in [
        "/public/../admin",
        "/public/..;/admin",
        "/public/%2e%2e/admin",
    ] {
        let r = reply(w.decide(&request("app.example.com", path, "", None), NOW));
        assert_eq!(r.outcome, Outcome::LoginStarted, "{path}");
    }
    let d = w.decide_unloaded(
        &request("app.example.com", "/public/a.css;v=2", "", None),
        NOW,
    );
    assert!(matches!(
        d,
        Decision::Forward(Forward {
            outcome: Outcome::Public,
            ..
        })
    ));
    // Signed in without the admins group: a path any server reads as /admin is refused.
    w.login("/", json!({"groups": ["everyone"]}));
    let cookie = w.cookie_header();
    for path in [
        "/admin/x",
        "/public/..;/admin",
        "/ADMIN/x",
        "/Admin;jsessionid=1",
    ] {
        let r = reply(w.decide(&request("app.example.com", path, &cookie, None), NOW));
        assert_eq!(
            (r.status, r.outcome.code()),
            (403, "group_not_allowed"),
            "{path}"
        );
    }
}

#[test]
fn bearer_tokens_pass_with_their_identity_or_get_401_invalid_token() {
    let mut v = minimal();
    v["skip_jwt_bearer_tokens"] = json!(true);
    v["extra_jwt_issuers"] = json!([format!("{ISSUER}=api://default")]);
    v["policies"] = json!([{"hosts": ["admin.example.com"], "allowed_groups": ["admins"]}]);
    let mut w = world_with(v);
    let mut claims =
        TestIdp::claims(json!({"groups": ["everyone"]})).with_audience("api://default");
    claims.nonce = None;
    let token = w.idp.rs256(claims);
    let auth = format!("Bearer {token}");
    for _ in 0..2 {
        let d = w.decide(&request("api.example.com", "/v1", "", Some(&auth)), NOW);
        let Forward { plan, outcome, .. } = forward(d);
        assert_eq!(outcome, Outcome::Bearer);
        assert_eq!(plan.value("x-auth-request-user"), Some("00u-alice"));
        assert!(!plan.removes("authorization"), "the API keeps its token");
    }
    let r = reply(w.decide(&request("admin.example.com", "/", "", Some(&auth)), NOW));
    assert_eq!(r.status, 403, "policies apply to bearer tokens too");
    // Past exp, even the cached verification does not count.
    let r = reply(w.decide(
        &request("api.example.com", "/v1", "", Some(&auth)),
        NOW + 3600 + 61,
    ));
    assert_eq!(r.status, 401);
    let r = reply(w.decide(
        &request("api.example.com", "/v1", "", Some("Bearer junk")),
        NOW,
    ));
    assert_eq!(
        (r.status, header(&r, "www-authenticate")),
        (401, Some("Bearer error=\"invalid_token\""))
    );
    // Without skip_jwt_bearer_tokens, a bearer header is no login.
    let mut plain = world();
    let r = reply(plain.decide(&request("api.example.com", "/v1", "", Some(&auth)), NOW));
    assert_eq!(r.outcome, Outcome::LoginStarted);
}

#[test]
fn userinfo_answers_the_session_as_oauth2_proxy_does() {
    let mut w = world();
    assert_eq!(w.respond("/oauth2/userinfo", HTML).status, 401);
    w.login("/", json!({}));
    let r = w.respond("/oauth2/userinfo", HTML);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    assert_eq!(
        v,
        json!({"user": "00u-alice", "email": "alice@example.com", "groups": ["admins", "everyone"], "preferredUsername": "alice"})
    );
}

#[test]
fn sign_out_at_idp_continues_to_the_end_session_endpoint_with_the_id_token_hint() {
    let mut v = minimal();
    v["sign_out_at_idp"] = json!(true);
    let mut w = world_with(v);
    w.login("/", json!({}));
    let r = w.respond("/oauth2/sign_out?rd=/bye", HTML);
    let location = header(&r, "location").unwrap_or_default();
    assert!(
        location.starts_with(&format!("{ISSUER}/v1/logout?id_token_hint=ey")),
        "{location}"
    );
    let q = query(location);
    assert_eq!(q["post_logout_redirect_uri"], "https://app.example.com/bye");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert!(set_cookies(&r)
        .iter()
        .any(|c| c.starts_with("_oauth2_proxy=;")));
}

#[test]
fn login_parameters_prompt_acr_values_login_hint_and_fixed_extras() {
    let mut v = minimal();
    v["prompt"] = json!("consent");
    v["acr_values"] = json!("phr");
    v["login_url_parameters"] = json!({"idp": "0oa-idp"});
    let mut w = world_with(v);
    let q = w.start("/oauth2/start?login_hint=bob%40example.com");
    assert_eq!(
        (
            q["prompt"].as_str(),
            q["acr_values"].as_str(),
            q["idp"].as_str()
        ),
        ("consent", "phr", "0oa-idp")
    );
    assert_eq!(q["login_hint"], "bob@example.com");
}

#[test]
fn rd_may_name_a_whitelisted_host_but_never_another() {
    let mut v = minimal();
    v["whitelist_domains"] = json!([".example.com"]);
    let mut w = world_with(v);
    let r = w.respond(
        "/oauth2/sign_out?rd=https%3A%2F%2Fwiki.example.com%2Fhome",
        HTML,
    );
    assert_eq!(
        header(&r, "location"),
        Some("https://wiki.example.com/home")
    );
    let r = w.respond("/oauth2/sign_out?rd=https%3A%2F%2Fevil.example%2F", HTML);
    assert_eq!(header(&r, "location"), Some("/"));
}

#[test]
fn the_metric_names_the_same_reason_as_the_log_code() {
    assert_eq!(Outcome::LoginStarted.metric(), "oidc_gate_login_started");
    assert_eq!(
        Outcome::LoginFailed(LoginError::IdpUnreachable).metric(),
        "oidc_gate_login_failed_idp_unreachable"
    );
    assert_eq!(
        Outcome::Unauthenticated(SessionError::Unreadable).metric(),
        "oidc_gate_session_rejected_session_unreadable"
    );
    assert_eq!(
        Outcome::Denied(Denial::Group).metric(),
        "oidc_gate_access_denied_group_not_allowed"
    );
    assert_eq!(
        Outcome::BearerRejected(crate::bearer::BearerError::Invalid(
            crate::jwt::VerifyError::AlgorithmNone
        ))
        .metric(),
        "oidc_gate_bearer_rejected_alg_none"
    );
    assert_eq!(
        Outcome::SessionEnded(LoginError::SubjectChanged).metric(),
        "oidc_gate_refresh_ended_session_sub_changed"
    );
    assert_eq!(
        Outcome::RefreshDeferred(LoginError::IdpUnreachable).metric(),
        "oidc_gate_refresh_deferred_idp_unreachable"
    );
}

mod checks;
mod claims;
mod client_keys;
mod idle;
mod optional;
mod par;
mod protocol;
mod providers;
mod userinfo;
