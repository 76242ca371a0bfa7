//! `private_key_jwt`: the code exchange and every refresh authenticate with a fresh client
//! assertion signed by the configured key, never with a secret.

use super::*;
use crate::client_key::{ClientKey, KeyAlg, ASSERTION_TYPE};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ES256PublicKey, NoCustomClaims, VerificationOptions,
};

/// A world whose client authenticates with a new P-256 key; the key comes back for checking.
fn with_key(extra: serde_json::Value) -> (World, ClientKey) {
    let key = ClientKey::generate(KeyAlg::Es256).unwrap();
    let mut v = minimal();
    if let Some(m) = v.as_object_mut() {
        m.remove("client_secret");
        m.extend(extra.as_object().cloned().unwrap_or_default());
    }
    v["client_auth_method"] = json!("private_key_jwt");
    v["client_private_key"] = json!(key.private_pem().unwrap());
    (world_with(v), key)
}

/// The assertion of a token call, checked against the key's public JWK; its claims.
fn assertion(
    call: &CallOut,
    key: &ClientKey,
    now: UnixTime,
) -> jwt_simple::prelude::JWTClaims<NoCustomClaims> {
    assert!(call.headers.iter().all(|(k, _)| k != "authorization"));
    let form: HashMap<String, String> = form_urlencoded::parse(&call.body).into_owned().collect();
    assert_eq!(form["client_assertion_type"], ASSERTION_TYPE);
    assert_eq!(form["client_id"], CLIENT_ID);
    assert!(!form.contains_key("client_secret"));
    let jwk = key.public_jwk();
    let coord = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
    let point = [vec![4u8], coord("x"), coord("y")].concat();
    let public = ES256PublicKey::from_bytes(&point).unwrap();
    let opts = VerificationOptions {
        artificial_time: Some(jwt_simple::prelude::Duration::from_secs(now)),
        ..Default::default()
    };
    public
        .verify_token::<NoCustomClaims>(&form["client_assertion"], Some(opts))
        .unwrap()
}

#[test]
fn the_code_exchange_sends_a_client_assertion_for_the_token_endpoint_and_no_secret() {
    let (mut w, key) = with_key(json!({}));
    let q = w.start("/");
    let Ok((call, _)) = w.callback(&format!("code=x&state={}", q["state"])) else {
        unreachable!()
    };
    let claims = assertion(&call, &key, NOW);
    assert_eq!(claims.issuer.as_deref(), Some(CLIENT_ID));
    assert_eq!(claims.subject.as_deref(), Some(CLIENT_ID));
    let aud = claims.audiences.unwrap().into_set();
    assert_eq!(
        aud.into_iter().collect::<Vec<_>>(),
        vec!["https://dev-123456.okta.com/oauth2/default/v1/token".to_string()]
    );
    assert_eq!(claims.issued_at.unwrap().as_secs(), NOW);
    assert_eq!(claims.expires_at.unwrap().as_secs(), NOW + 300);
}

#[test]
fn each_refresh_signs_a_new_assertion_with_its_own_jti() {
    let (mut w, key) = with_key(json!({"cookie_refresh": "1h"}));
    w.login_with_refresh_token();
    let (call, _) = w.refresh_call(NOW + 3601);
    let first = assertion(&call, &key, NOW + 3601);
    let form: HashMap<String, String> = form_urlencoded::parse(&call.body).into_owned().collect();
    assert_eq!(form["grant_type"], "refresh_token");
    // A second session of the same client: its refresh has its own assertion.
    w.jar.clear();
    w.login_with_refresh_token();
    let (call, _) = w.refresh_call(NOW + 3601);
    let second = assertion(&call, &key, NOW + 3601);
    assert_ne!(first.jwt_id, second.jwt_id);
    assert!(first.jwt_id.is_some_and(|j| j.len() >= 32));
}
