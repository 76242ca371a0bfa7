//! ID-token verification, following OpenID Connect Core §3.1.3.7. The token's header never
//! chooses the kind of key: only asymmetric algorithms that the provider advertises are tried,
//! with keys of the matching family.

use std::collections::HashSet;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{Duration as JwtDuration, JWTClaims, VerificationOptions};
use jwt_simple::JWTError;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::{Algorithm, KeySet};
use crate::env::UnixTime;

/// Why an ID token was refused. Each is a value for logs and metrics; none carries the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    Malformed,
    AlgorithmNone,
    SymmetricAlgorithm,
    UnsupportedAlgorithm,
    AlgorithmNotAllowed,
    /// No key with the token's `kid` (or none that fits its algorithm): the key set may be stale.
    UnknownKey,
    BadSignature,
    IssuerMismatch,
    AudienceMismatch,
    AuthorizedPartyMismatch,
    MissingSubject,
    MissingExpiry,
    MissingIssuedAt,
    Expired,
    NotYetValid,
    IssuedInFuture,
    NonceMismatch,
}

impl VerifyError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "token_malformed",
            Self::AlgorithmNone => "alg_none",
            Self::SymmetricAlgorithm => "alg_symmetric",
            Self::UnsupportedAlgorithm => "alg_unsupported",
            Self::AlgorithmNotAllowed => "alg_not_allowed",
            Self::UnknownKey => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::IssuerMismatch => "iss_mismatch",
            Self::AudienceMismatch => "aud_mismatch",
            Self::AuthorizedPartyMismatch => "azp_mismatch",
            Self::MissingSubject => "sub_missing",
            Self::MissingExpiry => "exp_missing",
            Self::MissingIssuedAt => "iat_missing",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "iat_in_future",
            Self::NonceMismatch => "nonce_mismatch",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "the token is not a well-formed JWS",
            Self::AlgorithmNone => "the token is unsigned (alg none)",
            Self::SymmetricAlgorithm => {
                "the token uses a symmetric (HS*) algorithm, which is never accepted"
            }
            Self::UnsupportedAlgorithm => "the token's algorithm is not supported",
            Self::AlgorithmNotAllowed => "the token's algorithm is not one the provider advertises",
            Self::UnknownKey => {
                "no key in the provider's JWKS matches the token's kid and algorithm"
            }
            Self::BadSignature => "the token's signature does not verify",
            Self::IssuerMismatch => "the token's iss is not the configured issuer",
            Self::AudienceMismatch => "the token's aud does not contain the client_id",
            Self::AuthorizedPartyMismatch => "the token's azp is not the client_id",
            Self::MissingSubject => "the token has no sub",
            Self::MissingExpiry => "the token has no exp",
            Self::MissingIssuedAt => "the token has no iat",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet (nbf)",
            Self::IssuedInFuture => "the token's iat is in the future",
            Self::NonceMismatch => "the token's nonce does not match this login",
        })
    }
}

/// What the token must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenCheck<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// `Some` at login (the nonce sent with the authorization request).
    pub nonce: Option<&'a str>,
    /// `id_token_signing_alg_values_supported` of the provider.
    pub allowed: &'a [Algorithm],
    pub now: UnixTime,
    /// Allowed clock difference with the provider, in seconds.
    pub skew_secs: u64,
    /// An access token presented as a bearer token rather than an ID token: `client_id` is then
    /// the expected audience, `azp` is not checked and `iat` may be absent.
    pub bearer: bool,
}

/// The verified claims of a token.
#[derive(Debug, Clone)]
pub struct Claims {
    pub subject: String,
    pub expires_at: UnixTime,
    pub issued_at: UnixTime,
    /// Every other claim (email, groups, …), by name.
    pub other: Map<String, Value>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Reads the unverified header, only to pick the algorithm family and key.
fn header(token: &str) -> Result<Header, VerifyError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| VerifyError::Malformed)?;
    let header: Header = serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)?;
    // RFC 7515 §4.1.11: a critical extension we do not implement makes the JWS invalid.
    if header.crit.is_some() {
        return Err(VerifyError::Malformed);
    }
    Ok(header)
}

fn from_jwt_error(e: &jwt_simple::Error) -> VerifyError {
    match e.downcast_ref::<JWTError>() {
        // RSA and ES256 signatures are checked through jwt-simple's MAC hook (`jwks::Check`).
        Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => {
            VerifyError::BadSignature
        }
        Some(JWTError::TokenHasExpired) => VerifyError::Expired,
        Some(JWTError::TokenNotValidYet) => VerifyError::NotYetValid,
        Some(JWTError::ClockDrift) => VerifyError::IssuedInFuture,
        Some(JWTError::AlgorithmMismatch) => VerifyError::AlgorithmNotAllowed,
        _ => VerifyError::Malformed,
    }
}

/// Verifies an ID token (OIDC Core §3.1.3.7) and returns its claims.
pub fn verify_id_token(
    token: &str,
    keys: &KeySet,
    check: &IdTokenCheck<'_>,
) -> Result<Claims, VerifyError> {
    let header = header(token)?;
    let alg = allowed_algorithm(&header.alg, check)?;
    let claims = signed_claims(token, keys, header.kid.as_deref(), alg, check)?;
    // Step 2: iss exactly the configured issuer.
    if claims.issuer.as_deref() != Some(check.issuer) {
        return Err(VerifyError::IssuerMismatch);
    }
    check_audience(&claims, check)?;
    let expires_at = claims
        .expires_at
        .ok_or(VerifyError::MissingExpiry)?
        .as_secs();
    let issued_at = match claims.issued_at {
        Some(t) => t.as_secs(),
        None if check.bearer => 0,
        None => return Err(VerifyError::MissingIssuedAt),
    };
    check_nonce(claims.nonce.as_deref(), check.nonce)?;
    let subject = claims
        .subject
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingSubject)?;
    Ok(Claims {
        subject,
        expires_at,
        issued_at,
        other: claims.custom,
    })
}

/// Step 6/7: the algorithm must be asymmetric and advertised by the provider.
fn allowed_algorithm(name: &str, check: &IdTokenCheck<'_>) -> Result<Algorithm, VerifyError> {
    let alg = match name {
        "none" | "None" | "NONE" => return Err(VerifyError::AlgorithmNone),
        a if a.starts_with("HS") => return Err(VerifyError::SymmetricAlgorithm),
        a => Algorithm::from_name(a).ok_or(VerifyError::UnsupportedAlgorithm)?,
    };
    if !check.allowed.contains(&alg) {
        return Err(VerifyError::AlgorithmNotAllowed);
    }
    Ok(alg)
}

/// The signature by one of the candidate keys, and exp/nbf/iat against the injected clock with
/// the skew allowance (steps 9, 10).
fn signed_claims(
    token: &str,
    keys: &KeySet,
    kid: Option<&str>,
    alg: Algorithm,
    check: &IdTokenCheck<'_>,
) -> Result<JWTClaims<Map<String, Value>>, VerifyError> {
    let options = || VerificationOptions {
        artificial_time: Some(JwtDuration::from_secs(check.now)),
        time_tolerance: Some(JwtDuration::from_secs(check.skew_secs)),
        ..VerificationOptions::default()
    };
    let mut result = Err(VerifyError::UnknownKey);
    for verifier in keys.candidates(kid, alg) {
        result = verifier
            .verify::<Map<String, Value>>(token, options())
            .map_err(|e| from_jwt_error(&e));
        if result.is_ok() {
            break;
        }
    }
    result
}

/// Step 3: aud contains client_id; step 4/5: with several audiences, azp must be the client
/// (an ID token's rule; a bearer access token's `azp` is another client's).
fn check_audience(
    claims: &JWTClaims<Map<String, Value>>,
    check: &IdTokenCheck<'_>,
) -> Result<(), VerifyError> {
    let audiences: HashSet<String> = claims
        .audiences
        .clone()
        .map(|a| a.into_set())
        .unwrap_or_default();
    if !audiences.contains(check.client_id) {
        return Err(VerifyError::AudienceMismatch);
    }
    let azp = claims.custom.get("azp").and_then(Value::as_str);
    if !check.bearer
        && (azp.is_some_and(|azp| azp != check.client_id) || (audiences.len() > 1 && azp.is_none()))
    {
        return Err(VerifyError::AuthorizedPartyMismatch);
    }
    Ok(())
}

/// Step 11: the nonce sent in the authentication request, compared in constant time.
fn check_nonce(got: Option<&str>, expected: Option<&str>) -> Result<(), VerifyError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let ok = got
        .is_some_and(|n| subtle::ConstantTimeEq::ct_eq(n.as_bytes(), expected.as_bytes()).into());
    if ok {
        Ok(())
    } else {
        Err(VerifyError::NonceMismatch)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A test identity provider that signs tokens with fixed keys.
    use super::*;
    use jwt_simple::prelude::*;
    use serde_json::json;

    pub const ISSUER: &str = "https://dev-123456.okta.com/oauth2/default";
    pub const CLIENT_ID: &str = "0oa1b2c3";
    pub const NOW: u64 = 1_800_000_000;

    pub struct TestIdp {
        pub rsa: RS256KeyPair,
        pub ec: ES256KeyPair,
    }

    impl TestIdp {
        pub fn new() -> Self {
            let pem = include_str!("../../testdata/rsa-test-key.pem");
            let rsa = RS256KeyPair::from_pem(pem).map(|k| k.with_key_id("rsa-1"));
            let Ok(rsa) = rsa else {
                unreachable!("test key")
            };
            let ec = ES256KeyPair::generate().with_key_id("ec-1");
            Self { rsa, ec }
        }

        pub fn jwks(&self) -> String {
            let c = self.rsa.public_key().to_components();
            let ec = self.ec.public_key().public_key().to_bytes_uncompressed();
            let (x, y) = ec.get(1..).unwrap_or_default().split_at(32);
            json!({"keys": [
                {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
                 "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)},
                {"kty": "EC", "kid": "ec-1", "use": "sig", "crv": "P-256",
                 "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)},
            ]})
            .to_string()
        }

        pub fn keys(&self) -> KeySet {
            KeySet::parse(self.jwks().as_bytes()).unwrap_or_default()
        }

        /// Standard claims for alice, valid at NOW, with `extra` merged in.
        pub fn claims(extra: serde_json::Value) -> JWTClaims<Map<String, Value>> {
            let mut custom = json!({
                "email": "alice@example.com", "email_verified": true,
                "groups": ["admins", "everyone"], "preferred_username": "alice",
            });
            if let (Some(c), Some(e)) = (custom.as_object_mut(), extra.as_object()) {
                for (k, v) in e {
                    c.insert(k.clone(), v.clone());
                }
            }
            let custom = custom.as_object().cloned().unwrap_or_default();
            let mut claims =
                jwt_simple::prelude::Claims::with_custom_claims(custom, Duration::from_secs(3600))
                    .with_issuer(ISSUER)
                    .with_audience(CLIENT_ID)
                    .with_subject("00u-alice")
                    .with_nonce("n-0S6_WzA2Mj");
            claims.issued_at = Some(Duration::from_secs(NOW - 10));
            claims.expires_at = Some(Duration::from_secs(NOW + 3600));
            claims.invalid_before = None;
            claims
        }

        pub fn rs256(&self, claims: JWTClaims<Map<String, Value>>) -> String {
            self.rsa.sign(claims).unwrap_or_default()
        }

        pub fn es256(&self, claims: JWTClaims<Map<String, Value>>) -> String {
            self.ec.sign(claims).unwrap_or_default()
        }
    }

    pub fn check() -> IdTokenCheck<'static> {
        IdTokenCheck {
            issuer: ISSUER,
            client_id: CLIENT_ID,
            nonce: Some("n-0S6_WzA2Mj"),
            allowed: &[Algorithm::RS256, Algorithm::ES256],
            now: NOW,
            skew_secs: 60,
            bearer: false,
        }
    }

    /// A token with the given header and payload and a junk signature.
    pub fn forge(header: serde_json::Value, payload: &serde_json::Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(b"sig")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use jwt_simple::prelude::{Duration, ECDSAP256KeyPairLike, HS256Key, MACLike};
    use serde_json::json;

    fn verify(token: &str) -> Result<Claims, VerifyError> {
        verify_id_token(token, &TestIdp::new().keys(), &check())
    }

    #[test]
    fn rs256_and_es256_tokens_verify() {
        let idp = TestIdp::new();
        let keys = idp.keys();
        for token in [
            idp.rs256(TestIdp::claims(json!({}))),
            idp.es256(TestIdp::claims(json!({}))),
        ] {
            let c = verify_id_token(&token, &keys, &check());
            let Ok(c) = c else { unreachable!("{c:?}") };
            assert_eq!(c.subject, "00u-alice");
            assert_eq!(c.other.get("email"), Some(&json!("alice@example.com")));
            assert_eq!(c.expires_at, NOW + 3600);
        }
    }

    #[test]
    fn token_without_kid_is_checked_against_keys_of_its_algorithm() {
        let idp = TestIdp::new();
        let pem = include_str!("../../testdata/rsa-test-key.pem");
        let no_kid = jwt_simple::prelude::RS256KeyPair::from_pem(pem).ok();
        let token = no_kid.and_then(|k| {
            use jwt_simple::prelude::RSAKeyPairLike;
            k.sign(TestIdp::claims(json!({}))).ok()
        });
        assert!(verify_id_token(&token.unwrap_or_default(), &idp.keys(), &check()).is_ok());
    }

    #[test]
    fn bad_signature_is_refused() {
        let idp = TestIdp::new();
        let token = idp.rs256(TestIdp::claims(json!({})));
        let (head, sig) = token.rsplit_once('.').unwrap_or_default();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        if let Some(b) = sig.first_mut() {
            *b ^= 1;
        }
        let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(
            verify_id_token(&forged, &idp.keys(), &check()).err(),
            Some(VerifyError::BadSignature)
        );
        // A changed payload with the original signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(json!({"sub": "00u-mallory"}).to_string());
        assert_eq!(
            verify(&parts.join(".")).err(),
            Some(VerifyError::BadSignature)
        );
    }

    #[test]
    fn a_token_without_a_signature_is_refused_for_every_algorithm() {
        let idp = TestIdp::new();
        let keys = idp.keys();
        for token in [
            idp.rs256(TestIdp::claims(json!({}))),
            idp.es256(TestIdp::claims(json!({}))),
        ] {
            // The signed header and payload, with the signature left out.
            let (unsigned, _) = token.rsplit_once('.').unwrap_or_default();
            for stripped in [
                format!("{unsigned}."),
                format!("{unsigned}.AA"),
                unsigned.to_string(),
            ] {
                assert!(
                    verify_id_token(&stripped, &keys, &check()).is_err(),
                    "{stripped}"
                );
            }
        }
    }

    /// A token's signature with one bit flipped.
    fn flip(token: &str, byte: usize) -> String {
        let (head, sig) = token.rsplit_once('.').unwrap_or_default();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        let i = byte.min(sig.len() - 1);
        sig[i] ^= 0x10;
        format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn a_flipped_signature_bit_is_refused_for_rs256_and_es256() {
        let idp = TestIdp::new();
        let keys = idp.keys();
        for token in [
            idp.rs256(TestIdp::claims(json!({}))),
            idp.es256(TestIdp::claims(json!({}))),
        ] {
            assert!(verify_id_token(&token, &keys, &check()).is_ok());
            for byte in [0, 17, 31, 32, 63, 128, usize::MAX] {
                assert_eq!(
                    verify_id_token(&flip(&token, byte), &keys, &check()).err(),
                    Some(VerifyError::BadSignature),
                    "byte {byte} of {token}"
                );
            }
        }
    }

    #[test]
    fn a_token_signed_by_another_key_with_the_same_kid_is_refused() {
        let idp = TestIdp::new();
        let keys = idp.keys();
        let pem = include_str!("../../testdata/rsa-test-key-2.pem");
        let rsa = jwt_simple::prelude::RS256KeyPair::from_pem(pem).map(|k| k.with_key_id("rsa-1"));
        let Ok(rsa) = rsa else { unreachable!() };
        let ec = jwt_simple::prelude::ES256KeyPair::generate().with_key_id("ec-1");
        let rs = {
            use jwt_simple::prelude::RSAKeyPairLike;
            rsa.sign(TestIdp::claims(json!({}))).unwrap_or_default()
        };
        let es = ec.sign(TestIdp::claims(json!({}))).unwrap_or_default();
        for token in [rs, es] {
            assert_eq!(
                verify_id_token(&token, &keys, &check()).err(),
                Some(VerifyError::BadSignature)
            );
        }
    }

    #[test]
    fn an_rs384_signature_presented_as_rs256_is_refused() {
        use crate::jwt::rsa::testing::{hex, RawSigner, SHA256_PREFIX, SHA384_PREFIX};
        use sha2::{Digest, Sha256, Sha384};
        let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"});
        let claims = serde_json::to_value(TestIdp::claims(json!({}))).unwrap_or_default();
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = RawSigner::from_pem(include_str!("../../testdata/rsa-test-key.pem"));
        let token = |prefix: &str, digest: &[u8]| {
            let sig = signer.sign_raw(&signer.pkcs1(&hex(prefix), digest));
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        };
        // The RS256 encoding, signed with the raw private key, verifies: the forgery below
        // differs only in its hash.
        assert!(verify(&token(SHA256_PREFIX, &Sha256::digest(&input))).is_ok());
        assert_eq!(
            verify(&token(SHA384_PREFIX, &Sha384::digest(&input))).err(),
            Some(VerifyError::BadSignature)
        );
    }

    #[test]
    fn ps256_tokens_verify_with_a_key_that_allows_them() {
        use jwt_simple::prelude::{PS256KeyPair, RSAKeyPairLike};
        let pem = include_str!("../../testdata/rsa-test-key.pem");
        let ps = PS256KeyPair::from_pem(pem).map(|k| k.with_key_id("rsa-any"));
        let Ok(ps) = ps else { unreachable!() };
        let c = ps.public_key().to_components();
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "rsa-any",
            "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)}]});
        let keys = KeySet::parse(jwks.to_string().as_bytes()).unwrap_or_default();
        let allowed = [Algorithm::PS256];
        let c = IdTokenCheck {
            allowed: &allowed,
            ..check()
        };
        let token = ps.sign(TestIdp::claims(json!({}))).unwrap_or_default();
        assert!(verify_id_token(&token, &keys, &c).is_ok());
        assert_eq!(
            verify_id_token(&flip(&token, 40), &keys, &c).err(),
            Some(VerifyError::BadSignature)
        );
    }

    #[test]
    fn unknown_kid_is_reported_as_such() {
        let idp = TestIdp::new();
        let other = TestIdp::new();
        let token = other
            .ec
            .with_key_id("ec-2")
            .sign(TestIdp::claims(json!({})))
            .unwrap_or_default();
        assert_eq!(
            verify_id_token(&token, &idp.keys(), &check()).err(),
            Some(VerifyError::UnknownKey)
        );
    }

    #[test]
    fn alg_none_and_hs256_are_refused_before_any_key_is_used() {
        let payload = json!({"iss": ISSUER, "aud": CLIENT_ID, "sub": "x", "exp": NOW + 60, "iat": NOW, "nonce": "n-0S6_WzA2Mj"});
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        assert_eq!(verify(&none).err(), Some(VerifyError::AlgorithmNone));
        // HS256 keyed with the RSA public key's bytes: the classic key-confusion attack.
        let idp = TestIdp::new();
        let pk = idp.rsa.public_key().to_pem().unwrap_or_default();
        let hs = HS256Key::from_bytes(pk.as_bytes()).with_key_id("rsa-1");
        let token = hs
            .authenticate(TestIdp::claims(json!({})))
            .unwrap_or_default();
        assert_eq!(verify(&token).err(), Some(VerifyError::SymmetricAlgorithm));
        assert_eq!(
            verify(&forge(json!({"alg": "XY999"}), &payload)).err(),
            Some(VerifyError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn algorithm_the_provider_does_not_advertise_is_refused() {
        let idp = TestIdp::new();
        let token = idp.es256(TestIdp::claims(json!({})));
        let c = IdTokenCheck {
            allowed: &[Algorithm::RS256],
            ..check()
        };
        assert_eq!(
            verify_id_token(&token, &idp.keys(), &c).err(),
            Some(VerifyError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn each_claim_rule_is_enforced() {
        let idp = TestIdp::new();
        let keys = idp.keys();
        let v = |c: jwt_simple::prelude::JWTClaims<Map<String, Value>>| {
            verify_id_token(&idp.rs256(c), &keys, &check()).err()
        };

        let c = TestIdp::claims(json!({})).with_issuer("https://evil.example/oauth2/default");
        assert_eq!(v(c), Some(VerifyError::IssuerMismatch));
        let c = TestIdp::claims(json!({})).with_audience("someone-else");
        assert_eq!(v(c), Some(VerifyError::AudienceMismatch));
        let mut c = TestIdp::claims(json!({"azp": "someone-else"}));
        c = c.with_audience(CLIENT_ID);
        assert_eq!(v(c), Some(VerifyError::AuthorizedPartyMismatch));
        let c = TestIdp::claims(json!({})).with_audiences(HashSet::from([CLIENT_ID, "api"]));
        assert_eq!(v(c), Some(VerifyError::AuthorizedPartyMismatch));
        let c = TestIdp::claims(json!({"azp": CLIENT_ID}))
            .with_audiences(HashSet::from([CLIENT_ID, "api"]));
        assert_eq!(v(c), None);
        let mut c = TestIdp::claims(json!({}));
        c.expires_at = Some(Duration::from_secs(NOW - 61));
        assert_eq!(v(c), Some(VerifyError::Expired));
        let mut c = TestIdp::claims(json!({}));
        c.expires_at = Some(Duration::from_secs(NOW - 30)); // within the skew allowance
        assert_eq!(v(c), None);
        let mut c = TestIdp::claims(json!({}));
        c.expires_at = None;
        assert_eq!(v(c), Some(VerifyError::MissingExpiry));
        let mut c = TestIdp::claims(json!({}));
        c.issued_at = None;
        assert_eq!(v(c), Some(VerifyError::MissingIssuedAt));
        let mut c = TestIdp::claims(json!({}));
        c.issued_at = Some(Duration::from_secs(NOW + 600));
        assert_eq!(v(c), Some(VerifyError::IssuedInFuture));
        let c = TestIdp::claims(json!({})).with_nonce("another-login");
        assert_eq!(v(c), Some(VerifyError::NonceMismatch));
        let mut c = TestIdp::claims(json!({}));
        c.nonce = None;
        assert_eq!(v(c), Some(VerifyError::NonceMismatch));
        let mut c = TestIdp::claims(json!({}));
        c.subject = None;
        assert_eq!(v(c), Some(VerifyError::MissingSubject));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for t in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            "eyJhbGciOiJSUzI1NiJ9..",
            "\u{0}.\u{1}.\u{2}",
        ] {
            assert!(verify(t).is_err(), "{t:?}");
        }
        let crit = forge(json!({"alg": "RS256", "crit": ["exp"]}), &json!({}));
        assert_eq!(verify(&crit).err(), Some(VerifyError::Malformed));
    }
}
