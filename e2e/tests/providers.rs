//! One filter, many apps, each with its own client (issue 13) — through the real Envoy and the
//! real OpenID provider: two apps on two hosts (`localhost` and `127.0.0.1`, the same gateway
//! port) with two clients; two issuers where one is down; `private_key_jwt` logins and
//! refreshes; pushed authorization requests.

use std::time::Duration;

use e2e::echo::Echo;
use e2e::envoy::{bootstrap, free_port, Envoy, Plugin};
use e2e::idp::{self, Idp, ALICE};
use e2e::stack::COOKIE_SECRET;
use e2e::{Browser, Stack, StackOptions};
use oidc_gate_core::client_key::{ClientKey, KeyAlg};
use serde_json::{json, Value};

const FINANCE_CLIENT: &str = "0oa-finance";
const FINANCE_SECRET: &str = "finance-secret";

/// The provider's client for the default app (on `localhost`), as the harness registers it.
fn default_client(port: u16) -> Value {
    json!({"client_id": idp::CLIENT_ID, "client_secret": idp::CLIENT_SECRET,
           "redirect_uris": [format!("http://localhost:{port}/oauth2/callback")],
           "token_endpoint_auth_method": "client_secret_basic",
           "grant_types": ["authorization_code", "refresh_token"]})
}

/// The finance app's own client, for `127.0.0.1`.
fn finance_client(port: u16) -> Value {
    json!({"client_id": FINANCE_CLIENT, "client_secret": FINANCE_SECRET,
           "redirect_uris": [format!("http://127.0.0.1:{port}/oauth2/callback")],
           "token_endpoint_auth_method": "client_secret_basic",
           "grant_types": ["authorization_code", "refresh_token"]})
}

fn finance_url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// The default app on `localhost`, the `finance` provider (another client of the same issuer)
/// on `127.0.0.1`; bearer tokens accepted on both.
fn two_apps(name: &str) -> (Stack, u16) {
    let port = free_port();
    let s = Stack::start(
        name,
        StackOptions {
            ports: Some(vec![port]),
            idp: json!({"clients": [default_client(port), finance_client(port)]}),
            config: json!({
                "skip_jwt_bearer_tokens": true,
                "set_authorization_header": true,
                "providers": [{"id": "finance", "oidc_issuer_url": "{issuer}", "client_id": FINANCE_CLIENT,
                               "client_secret": FINANCE_SECRET, "skip_jwt_bearer_tokens": true,
                               "idp_timeout": "3s"}],
                "policies": [{"hosts": ["127.0.0.1"], "provider": "finance"}],
            }),
            ..StackOptions::default()
        },
    );
    (s, port)
}

#[test]
fn each_app_logs_in_with_its_own_client_and_the_second_passes_with_the_idp_session() {
    let (s, port) = two_apps("twoapps");
    let mut b = Browser::new();
    let seen = b.signs_in(&s.url("/"), &ALICE);
    assert_eq!(seen.header("x-auth-request-user"), Some("00u-alice"));

    // The other app: its own client at the IdP, which already knows the user.
    let first = b.get(&finance_url(port, "/ledger"));
    assert_eq!(first.status, 302, "{first:?}");
    let to_idp = first.location().unwrap_or_default();
    assert!(
        to_idp.contains(&format!("client_id={FINANCE_CLIENT}")),
        "{to_idp}"
    );
    let hops = b.follow(&finance_url(port, "/ledger"), 12);
    let last = hops.last().expect("a reply");
    assert_eq!(last.status, 200, "{hops:#?}");
    let seen = last.seen().expect("the finance app answered");
    assert_eq!(seen.header("x-auth-request-user"), Some("00u-alice"));
    let cookies = b.cookies(&finance_url(port, "/"));
    assert!(
        cookies.contains_key("_oauth2_proxy_finance"),
        "{:?}",
        cookies.keys()
    );
    assert!(!cookies.contains_key("_oauth2_proxy"));
}

#[test]
fn a_session_cookie_of_one_app_is_refused_on_the_other() {
    let (s, port) = two_apps("crosscookie");
    let mut b = Browser::new();
    b.signs_in(&s.url("/"), &ALICE);
    let session = b.cookies(&s.url("/"))["_oauth2_proxy"].clone();
    // The same cookie value under both names on the finance host: neither opens there.
    let mut thief = Browser::new();
    for name in ["_oauth2_proxy", "_oauth2_proxy_finance"] {
        thief.set_cookie(&finance_url(port, "/"), name, &session);
    }
    let r = thief.get(&finance_url(port, "/ledger"));
    assert_eq!(r.status, 302, "{r:?}");
    assert!(r.seen().is_none(), "nothing reached the app");
    // And the cookie still works where it belongs.
    assert_eq!(b.get(&s.url("/")).status, 200);
}

#[test]
fn a_bearer_token_of_one_apps_client_is_refused_on_the_other() {
    let (s, port) = two_apps("crossbearer");
    let mut b = Browser::new();
    let seen = b.signs_in(&s.url("/"), &ALICE);
    // The default client's ID token, as the app received it (set_authorization_header).
    let bearer = seen
        .header("authorization")
        .expect("the ID token reached the app")
        .to_string();
    let mut api = Browser::api();
    let here = api.send("GET", &s.url("/api"), &[("authorization", &bearer)], None);
    assert_eq!(here.status, 200, "{here:?}");
    let there = api.send(
        "GET",
        &finance_url(port, "/api"),
        &[("authorization", &bearer)],
        None,
    );
    assert_eq!(there.status, 401, "{there:?}");
    assert!(there.seen().is_none());
    assert!(
        s.envoy_log().contains("provider=finance"),
        "log lines name the provider"
    );
}

#[test]
fn when_one_providers_issuer_is_down_only_its_hosts_answer_503() {
    let port = free_port();
    let mut partner = Idp::start(
        "partner",
        &[finance_url(port, "/oauth2/callback")],
        &[],
        &json!({}),
    );
    let partner_issuer = partner.issuer.clone();
    let partner_port = partner.port;
    partner.stop();
    let idp = Idp::start(
        "mainidp",
        &[format!("http://localhost:{port}/oauth2/callback")],
        &[],
        &json!({}),
    );
    let echo = Echo::start();
    let plugin = Plugin::new(json!({
        "oidc_issuer_url": idp.issuer, "client_id": idp::CLIENT_ID, "client_secret": idp::CLIENT_SECRET,
        "cookie_secret": COOKIE_SECRET, "cookie_secure": false, "idp_timeout": "2s",
        "providers": [{"id": "partner", "oidc_issuer_url": partner_issuer, "client_id": idp::CLIENT_ID,
                       "client_secret": idp::CLIENT_SECRET, "idp_timeout": "2s"}],
        "policies": [{"hosts": ["127.0.0.1"], "provider": "partner"}],
    }));
    let clusters = [
        (format!("outbound|{}||127.0.0.1", idp.port), idp.port),
        (format!("outbound|{partner_port}||127.0.0.1"), partner_port),
    ];
    let envoy = Envoy::start(
        "onedown",
        &bootstrap(port, echo.port, &plugin, &clusters),
        1,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    envoy.wait_provider_loaded();
    let mut b = Browser::new();
    b.signs_in(&envoy.url("/"), &ALICE);
    let down = b.send(
        "GET",
        &finance_url(port, "/"),
        &[("accept", "text/html")],
        None,
    );
    assert_eq!(down.status, 503, "{down:?}");
    assert_eq!(
        b.get(&envoy.url("/again")).status,
        200,
        "the other hosts go on"
    );
}

/// A stack whose default client authenticates with `private_key_jwt`: the provider holds
/// `registered`'s public JWK, the filter signs with `used`.
fn key_stack(name: &str, registered: &ClientKey, used: &ClientKey) -> Stack {
    let port = free_port();
    let mut client = default_client(port);
    client["token_endpoint_auth_method"] = json!("private_key_jwt");
    client["jwks"] = json!({"keys": [registered.public_jwk()]});
    if let Some(m) = client.as_object_mut() {
        m.remove("client_secret");
    }
    Stack::start(
        name,
        StackOptions {
            ports: Some(vec![port]),
            idp: json!({"clients": [client]}),
            config: json!({
                "client_secret_env": null,
                "client_auth_method": "private_key_jwt",
                "client_private_key": used.private_pem().expect("pem"),
                "cookie_refresh": "1s",
            }),
            ..StackOptions::default()
        },
    )
}

#[test]
fn private_key_jwt_logs_in_and_refreshes_with_rs256_and_es256_keys() {
    for alg in [KeyAlg::Rs256, KeyAlg::Es256] {
        let key = ClientKey::generate(alg).expect("key");
        let s = key_stack(&format!("pkjwt-{}", alg.name()), &key, &key);
        let mut b = Browser::new();
        b.signs_in(&s.url("/"), &ALICE);
        s.idp.clear_log();
        std::thread::sleep(Duration::from_millis(1200));
        let r = b.get(&s.url("/later"));
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(s.idp.count("POST", "/v1/token"), 1, "{}", alg.name());
        assert!(
            s.envoy_log().contains("session_refreshed"),
            "{}: {}",
            alg.name(),
            s.envoy_log()
        );
    }
}

#[test]
fn the_provider_refuses_a_login_signed_with_a_key_it_does_not_hold() {
    let registered = ClientKey::generate(KeyAlg::Es256).expect("key");
    let other = ClientKey::generate(KeyAlg::Es256).expect("key");
    let s = key_stack("pkjwt-wrong", &registered, &other);
    let mut b = Browser::new();
    let hops = b.login(&s.url("/"), ALICE.username, ALICE.password);
    let last = hops.last().expect("a reply");
    assert_eq!(last.status, 403, "{hops:#?}");
    assert!(last.seen().is_none());
    assert!(
        s.envoy_log().contains("code_exchange_refused"),
        "{}",
        s.envoy_log()
    );
}

#[test]
fn a_login_through_par_sends_the_browser_with_only_client_id_and_request_uri() {
    let s = Stack::with_config("par", json!({"pushed_authorization_requests": true}));
    // The harness's readiness check made a login (and a push) already.
    s.idp.clear_log();
    let mut b = Browser::new();
    let first = b.get(&s.url("/deep/link?x=1"));
    assert_eq!(first.status, 302, "{first:?}");
    let location = url::Url::parse(&first.location().unwrap_or_default()).expect("a URL");
    let mut keys: Vec<String> = location
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    keys.sort();
    assert_eq!(keys, ["client_id", "request_uri"], "{location}");
    assert_eq!(s.idp.count("POST", "/v1/par"), 1);
    let seen = b.signs_in(&s.url("/deep/link?x=1"), &ALICE);
    assert_eq!(seen.header("x-auth-request-user"), Some("00u-alice"));
}

/// An OAuth2-Proxy values file as the seed's layout has it, for one app's client.
fn values_file(client_id: &str, secret: &str, group: &str) -> String {
    format!(
        "config:\n  clientID: {client_id}\n  clientSecret: {secret}\n  cookieSecret: {COOKIE_SECRET}\n  configFile: false\n\
         extraArgs:\n  provider: oidc\n  cookie-secure: false\n  cookie-refresh: 1h\n  email-domain: \"*\"\n  \
         upstream: static://200\n  oidc-issuer-url: \"{{issuer}}\"\n  allowed-group: {group}\n"
    )
}

#[test]
fn two_migrated_values_files_log_in_on_each_apps_host_with_its_client() {
    use oidc_gate_wasmplugin::migrate::{migrate_apps, App};
    let port = free_port();
    let (wiki, finance) = (
        values_file(idp::CLIENT_ID, idp::CLIENT_SECRET, "everyone"),
        values_file(FINANCE_CLIENT, FINANCE_SECRET, "admins"),
    );
    let m = migrate_apps(&[
        App {
            name: "wiki",
            values_yaml: &wiki,
            hosts: vec!["localhost".into()],
        },
        App {
            name: "finance",
            values_yaml: &finance,
            hosts: vec!["127.0.0.1".into()],
        },
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.config["providers"][0]["id"], "finance");
    let s = Stack::start(
        "migrated",
        StackOptions {
            ports: Some(vec![port]),
            idp: json!({"clients": [default_client(port), finance_client(port)]}),
            config: m.config.clone(),
            plugin_env: m.secrets.clone(),
            ..StackOptions::default()
        },
    );
    let mut b = Browser::new();
    let seen = b.signs_in(&s.url("/"), &idp::BOB);
    assert_eq!(seen.header("x-auth-request-user"), Some("00u-bob"));
    let hops = b.follow(&finance_url(port, "/"), 12);
    assert_eq!(
        hops.last().map(|r| r.status),
        Some(403),
        "bob is not in admins there"
    );
    assert!(hops.iter().any(|r| r
        .location()
        .is_some_and(|l| l.contains(&format!("client_id={FINANCE_CLIENT}")))));
    let mut alice = Browser::new();
    alice.signs_in(&finance_url(port, "/"), &ALICE);
}
