//! The benchmark's stand-in IdP, in this process (its CPU is not Envoy's): discovery, a JWKS
//! with one RSA and one P-256 key, and a token endpoint that answers every code with the ID
//! token the benchmark set last. Also the tokens the bearer configurations send.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use oidc_gate_bench::http;
use serde_json::json;

pub const ISSUER: &str = "https://issuer.bench.test";
pub const CLIENT_ID: &str = "bench-client";
/// The audience of bearer tokens (Okta's default authorization server's).
pub const API_AUDIENCE: &str = "api://default";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub struct Keys {
    rsa: RS256KeyPair,
    ec: ES256KeyPair,
    pub jwks: String,
}

impl Keys {
    pub fn new() -> Self {
        let rsa =
            RS256KeyPair::from_pem(include_str!("../../filter/core/testdata/rsa-test-key.pem"))
                .map(|k| k.with_key_id("bench-rsa"))
                .unwrap_or_else(|e| panic!("key: {e}"));
        let ec = ES256KeyPair::generate().with_key_id("bench-ec");
        let c = rsa.public_key().to_components();
        let point = ec.public_key().public_key().to_bytes_uncompressed();
        let (x, y) = point.get(1..).unwrap_or_default().split_at(32);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "bench-rsa", "alg": "RS256", "use": "sig",
             "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)},
            {"kty": "EC", "crv": "P-256", "kid": "bench-ec", "alg": "ES256", "use": "sig",
             "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)},
        ]})
        .to_string();
        Self { rsa, ec, jwks }
    }

    fn claims(aud: &str, jti: usize, nonce: Option<&str>) -> JWTClaims<serde_json::Value> {
        let claims = Claims::with_custom_claims(
            json!({"email": "alice@example.com", "email_verified": true,
                   "groups": ["admins", "everyone"], "preferred_username": "alice"}),
            Duration::from_secs(3600),
        )
        .with_issuer(ISSUER)
        .with_audience(aud)
        .with_subject("00u-alice")
        .with_jwt_id(jti.to_string());
        match nonce {
            Some(n) => claims.with_nonce(n),
            None => claims,
        }
    }

    /// An RS256 token for `aud`; `jti` makes each distinct.
    pub fn rs256(&self, aud: &str, jti: usize) -> String {
        self.rsa
            .sign(Self::claims(aud, jti, None))
            .unwrap_or_else(|e| panic!("sign: {e}"))
    }

    pub fn es256(&self, aud: &str, jti: usize) -> String {
        self.ec
            .sign(Self::claims(aud, jti, None))
            .unwrap_or_else(|e| panic!("sign: {e}"))
    }

    /// The ID token of a login whose authorization request carried `nonce`.
    pub fn id_token(&self, nonce: &str) -> String {
        self.rsa
            .sign(Self::claims(CLIENT_ID, 0, Some(nonce)))
            .unwrap_or_else(|e| panic!("sign: {e}"))
    }
}

/// The running IdP: its port, and the ID token its token endpoint hands out.
pub struct Idp {
    pub port: u16,
    id_token: Arc<Mutex<String>>,
}

impl Idp {
    pub fn start(keys: &Keys) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the IdP");
        let port = listener.local_addr().expect("IdP address").port();
        let id_token = Arc::new(Mutex::new(String::new()));
        let (jwks, current) = (keys.jwks.clone(), id_token.clone());
        let discovery = json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}/authorize"),
            "token_endpoint": format!("{ISSUER}/token"),
            "jwks_uri": format!("{ISSUER}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        })
        .to_string();
        std::thread::spawn(move || {
            http::serve(listener, move |req| {
                let json = "application/json";
                match (req.method.as_str(), req.path.as_str()) {
                    ("GET", "/.well-known/openid-configuration") => {
                        http::response("200 OK", json, &discovery)
                    }
                    ("GET", "/jwks") => http::response("200 OK", json, &jwks),
                    ("POST", "/token") => {
                        let id_token = current.lock().map(|t| t.clone()).unwrap_or_default();
                        let body = json!({"access_token": "bench-access-token", "token_type": "Bearer",
                                          "expires_in": 3600, "id_token": id_token});
                        http::response("200 OK", json, &body.to_string())
                    }
                    _ => http::response("404 Not Found", "text/plain", "not found"),
                }
            })
        });
        Self { port, id_token }
    }

    /// What the token endpoint answers from now on.
    pub fn set_id_token(&self, token: String) {
        if let Ok(mut t) = self.id_token.lock() {
            *t = token;
        }
    }
}
