//! The local OpenID provider (`e2e/idp/server.js`, oidc-provider), configured like an Okta
//! authorization server, with test users in two groups.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::procs::Proc;
use crate::tools;

pub const CLIENT_ID: &str = "0oa-oidc-gate";
/// Characters that RFC 6749 §2.3.1 form-encoding must handle.
pub const CLIENT_SECRET: &str = "gate-secret-with-&-and-+";
pub const API_CLIENT_ID: &str = "0oa-api-client";
pub const API_CLIENT_SECRET: &str = "api-secret";

/// A test user.
pub struct User {
    pub username: &'static str,
    pub password: &'static str,
    pub email: &'static str,
    pub groups: &'static [&'static str],
}

pub const ALICE: User = User {
    username: "alice",
    password: "alice-pw",
    email: "alice@example.com",
    groups: &["admins", "everyone"],
};
pub const BOB: User = User {
    username: "bob",
    password: "bob-pw",
    email: "bob@example.com",
    groups: &["everyone"],
};
pub const CAROL: User = User {
    username: "carol",
    password: "carol-pw",
    email: "carol@partner.org",
    groups: &["admins"],
};
/// A user whose email the provider has not verified.
pub const DAVE: User = User {
    username: "dave",
    password: "dave-pw",
    email: "dave@example.com",
    groups: &["everyone"],
};
pub const USERS: [&User; 4] = [&ALICE, &BOB, &CAROL, &DAVE];

pub struct Idp {
    pub issuer: String,
    pub port: u16,
    proc: Proc,
}

impl Idp {
    /// Starts the provider; `redirect_uris` are those of the oidc-gate client.
    /// `extra` is merged into the provider's configuration (token lifetimes and such).
    pub fn start(
        name: &str,
        redirect_uris: &[String],
        post_logout: &[String],
        extra: &Value,
    ) -> Self {
        let dir = tools::idp_dir();
        let users: Vec<Value> = USERS
            .iter()
            .map(|u| {
                json!({"username": u.username, "password": u.password, "sub": format!("00u-{}", u.username),
                       "email": u.email, "email_verified": u.username != DAVE.username,
                       "preferred_username": u.username, "name": u.username, "groups": u.groups})
            })
            .collect();
        let config = json!({
            "port": 0,
            "issuer_path": "/oauth2/default",
            "clients": [
                {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris,
                 "token_endpoint_auth_method": "client_secret_basic", "id_token_signed_response_alg": "RS256",
                 "grant_types": ["authorization_code", "refresh_token"], "post_logout_redirect_uris": post_logout},
                {"client_id": API_CLIENT_ID, "client_secret": API_CLIENT_SECRET, "grant_types": ["client_credentials"],
                 "token_endpoint_auth_method": "client_secret_basic"}
            ],
            "users": users,
        });
        let config = crate::stack::merged(config, extra);
        let artifacts = tools::artifacts_dir();
        let config_path = artifacts.join(format!("{name}-idp.json"));
        std::fs::write(&config_path, config.to_string()).expect("write idp config");
        // A node that has not said READY within 30 s is stopped and started again (seen once
        // under heavy load: it hung before listening); its log is kept beside the next one.
        let mut attempt = 0;
        let (issuer, proc) = loop {
            attempt += 1;
            let mut cmd = Command::new("node");
            cmd.current_dir(&dir).arg("server.js").arg(&config_path);
            let log = artifacts.join(format!("{name}-idp-{attempt}.log"));
            let mut proc =
                Proc::spawn(&format!("{name}-idp"), cmd, &log, true).expect("start the IdP (node)");
            let stdout = proc.child().stdout.take().expect("idp stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(issuer) = line.strip_prefix("READY ") {
                        let _ = tx.send(issuer.to_string());
                    }
                }
            });
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(issuer) => break (issuer, proc),
                Err(_) if attempt < 3 => {
                    eprintln!(
                        "the IdP did not start (attempt {attempt}), retrying:\n{}",
                        proc.log_text()
                    );
                    proc.stop();
                }
                Err(_) => panic!(
                    "the IdP did not start after {attempt} attempts:\n{}",
                    proc.log_text()
                ),
            }
        };
        let port = url::Url::parse(&issuer)
            .ok()
            .and_then(|u| u.port())
            .expect("issuer port");
        Self { issuer, port, proc }
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let req = ureq::request(method, &url);
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        resp.ok()
            .and_then(|r| r.into_json().ok())
            .unwrap_or(Value::Null)
    }

    /// The paths of the requests the IdP has served.
    pub fn request_log(&self) -> Vec<String> {
        self.admin("GET", "/__test/log", None)
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["path"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn clear_log(&self) {
        self.admin("POST", "/__test/log/clear", Some(json!({})));
    }

    /// How many requests the provider served for paths ending in `suffix` (and `method`).
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.admin("GET", "/__test/log", None)
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| {
                        e["method"] == method
                            && e["path"].as_str().is_some_and(|p| p.ends_with(suffix))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// Changes a user's groups for tokens issued from now on.
    pub fn set_groups(&self, username: &str, groups: &[String]) {
        self.admin(
            "POST",
            "/__test/groups",
            Some(json!({"username": username, "groups": groups})),
        );
    }

    /// The user's Keycloak-style roles (`realm_access.roles` in its tokens from now on).
    pub fn set_roles(&self, username: &str, roles: &[&str]) {
        self.admin(
            "POST",
            "/__test/groups",
            Some(json!({"username": username, "roles": roles})),
        );
    }

    /// Makes the userinfo endpoint answer for `sub` (`None`: for the token's user again).
    pub fn set_userinfo_sub(&self, sub: Option<&str>) {
        self.admin("POST", "/__test/userinfo-sub", Some(json!({ "sub": sub })));
    }

    /// A JWT with `claims`, signed with the provider's current key (what a broken provider
    /// could send).
    pub fn sign(&self, claims: &Value) -> String {
        self.admin("POST", "/__test/sign", Some(claims.clone()))["jwt"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// New signing keys (new kids); the old ones stay published unless `keep_old` is false.
    pub fn rotate_keys(&self, keep_old: bool) -> Value {
        self.admin(
            "POST",
            "/__test/rotate-keys",
            Some(json!({"keep_old": keep_old})),
        )
    }

    /// Revokes a refresh token at the provider (RFC 7009), as the oidc-gate client.
    pub fn revoke(&self, refresh_token: &str) -> u16 {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            url::form_urlencoded::byte_serialize(CLIENT_ID.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect::<String>()
        ));
        let r = ureq::post(&format!("{}/v1/revoke", self.issuer))
            .set("authorization", &format!("Basic {basic}"))
            .send_form(&[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ]);
        match r {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(_) => 0,
        }
    }

    /// An access token for the API client (client-credentials grant): a JWT for `api://default`.
    pub fn client_credentials_token(&self) -> String {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{API_CLIENT_ID}:{API_CLIENT_SECRET}"));
        let r = ureq::post(&format!("{}/v1/token", self.issuer))
            .set("authorization", &format!("Basic {basic}"))
            .send_form(&[("grant_type", "client_credentials"), ("scope", "api:read")]);
        let v: Value = r
            .ok()
            .and_then(|r| r.into_json().ok())
            .unwrap_or(Value::Null);
        v["access_token"].as_str().unwrap_or_default().to_string()
    }

    pub fn stop(&mut self) {
        self.proc.stop();
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }
}
