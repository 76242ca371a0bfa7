//! `private_key_jwt` (OIDC Core §9, RFC 7523 §3): the client's private key, read once at
//! configure time, its `kid` (RFC 7638 thumbprint unless configured), its public JWK for the
//! IdP, and the signed client assertion sent with each code exchange and refresh.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{
    Audiences, ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair, JWTClaims,
    NoCustomClaims, RS256KeyPair, RSAKeyPairLike,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::env::UnixTime;

/// How long an assertion is valid: RFC 7523 wants it short; Okta refuses more than an hour.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);
/// `client_assertion_type` for a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signing algorithm, named by the key's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    Rs256,
    Es256,
}

impl KeyAlg {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

/// Why a private key was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Neither an RSA (2048–4096 bits) nor a P-256 key in PEM (PKCS#8).
    Unreadable,
    /// A `kid` that cannot go into a JWT header as is.
    BadKid,
    /// The host had no randomness for a new key.
    NoEntropy,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unreadable => "is not a PKCS#8 PEM private key (\"-----BEGIN PRIVATE KEY-----\") of RSA 2048–4096 bits or P-256; create one with `oidc-gate-ctl keygen`",
            Self::BadKid => "must be 1–128 printable ASCII characters",
            Self::NoEntropy => "could not be generated: no randomness",
        })
    }
}

// Held once per configured key, behind an `Arc`: the sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Pair {
    Rs256(RS256KeyPair),
    Es256(ES256KeyPair),
}

/// A client's private key with its `kid`. Cheap to clone; `Debug` shows the algorithm and the
/// `kid`, never the key.
#[derive(Clone)]
pub struct ClientKey {
    pair: Arc<Pair>,
    kid: String,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientKey({}, kid={:?}, [redacted])",
            self.alg().name(),
            self.kid
        )
    }
}

impl ClientKey {
    /// Reads a PKCS#8 PEM key (P-256 or RSA); `kid` defaults to the key's RFC 7638 thumbprint,
    /// which is what `oidc-gate-ctl keygen` prints.
    pub fn from_pem(pem: &str, kid: Option<&str>) -> Result<Self, KeyError> {
        let pem = pem.trim();
        let pair = match ES256KeyPair::from_pem(pem) {
            Ok(k) => Pair::Es256(k),
            Err(_) => Pair::Rs256(RS256KeyPair::from_pem(pem).map_err(|_| KeyError::Unreadable)?),
        };
        Self::with_pair(pair, kid)
    }

    /// A new key: P-256 for ES256, 2048-bit RSA for RS256.
    pub fn generate(alg: KeyAlg) -> Result<Self, KeyError> {
        let pair = match alg {
            KeyAlg::Es256 => Pair::Es256(ES256KeyPair::generate()),
            KeyAlg::Rs256 => {
                Pair::Rs256(RS256KeyPair::generate(2048).map_err(|_| KeyError::NoEntropy)?)
            }
        };
        Self::with_pair(pair, None)
    }

    fn with_pair(pair: Pair, kid: Option<&str>) -> Result<Self, KeyError> {
        let jwk = public_members(&pair).ok_or(KeyError::Unreadable)?;
        let kid = match kid {
            Some(k)
                if k.is_empty() || k.len() > 128 || !k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                return Err(KeyError::BadKid)
            }
            Some(k) => k.to_string(),
            None => thumbprint(&jwk),
        };
        let pair = match pair {
            Pair::Es256(k) => Pair::Es256(k.with_key_id(&kid)),
            Pair::Rs256(k) => Pair::Rs256(k.with_key_id(&kid)),
        };
        Ok(Self {
            pair: Arc::new(pair),
            kid,
        })
    }

    pub fn alg(&self) -> KeyAlg {
        match *self.pair {
            Pair::Rs256(_) => KeyAlg::Rs256,
            Pair::Es256(_) => KeyAlg::Es256,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 PEM (for `keygen`).
    pub fn private_pem(&self) -> Option<String> {
        match &*self.pair {
            Pair::Rs256(k) => k.to_pem().ok(),
            Pair::Es256(k) => k.to_pem().ok(),
        }
    }

    /// The public JWK to register at the IdP: `kty`, the key, `kid`, `alg`, `use: sig`.
    pub fn public_jwk(&self) -> serde_json::Value {
        let mut jwk = public_members(&self.pair).unwrap_or_default();
        if let Some(m) = jwk.as_object_mut() {
            m.insert("kid".into(), json!(self.kid));
            m.insert("alg".into(), json!(self.alg().name()));
            m.insert("use".into(), json!("sig"));
        }
        jwk
    }

    /// A client assertion: `iss` = `sub` = `client_id`, `aud` = the token endpoint, a unique
    /// `jti`, `iat` now and `exp` five minutes on.
    pub fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        jti: &str,
        now: UnixTime,
    ) -> Option<String> {
        let iat = Duration::from_secs(now);
        let claims = JWTClaims::<NoCustomClaims> {
            issued_at: Some(iat.into()),
            expires_at: Some(iat.saturating_add(ASSERTION_LIFETIME).into()),
            invalid_before: None,
            issuer: Some(client_id.to_string()),
            subject: Some(client_id.to_string()),
            audiences: Some(Audiences::AsString(token_endpoint.to_string())),
            jwt_id: Some(jti.to_string()),
            nonce: None,
            custom: NoCustomClaims {},
        };
        match &*self.pair {
            Pair::Rs256(k) => k.sign(claims).ok(),
            Pair::Es256(k) => k.sign(claims).ok(),
        }
    }
}

/// The required public members of the key's JWK, in RFC 7638's order (lexicographic).
fn public_members(pair: &Pair) -> Option<serde_json::Value> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    match pair {
        Pair::Es256(k) => {
            let point = k.public_key().public_key().to_bytes_uncompressed();
            let (x, y) = point.get(1..33).zip(point.get(33..65))?;
            Some(json!({"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)}))
        }
        Pair::Rs256(k) => {
            let c = k.public_key().to_components();
            let bits = c.n.len().checked_mul(8)?;
            (2048..=4096).contains(&bits).then_some(())?;
            Some(json!({"e": b64(&c.e), "kty": "RSA", "n": b64(&c.n)}))
        }
    }
}

/// RFC 7638: SHA-256 of the required members, in lexicographic order without whitespace.
fn thumbprint(members: &serde_json::Value) -> String {
    // serde_json's map keeps keys sorted, so `to_string` is the canonical form.
    URL_SAFE_NO_PAD.encode(Sha256::digest(members.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::{
        ES256PublicKey, RS256PublicKey, RSAPublicKeyLike, VerificationOptions,
    };

    #[test]
    fn an_es256_assertion_carries_what_rfc_7523_asks_and_verifies_with_the_public_jwk() {
        let key = ClientKey::generate(KeyAlg::Es256).unwrap();
        let pem = key.private_pem().unwrap();
        let again = ClientKey::from_pem(&pem, None).unwrap();
        assert_eq!(again.kid(), key.kid(), "the default kid is the thumbprint");
        let jwt = again
            .assertion("0oa1", "https://idp/token", "j-1", 1_700_000_000)
            .unwrap();
        let jwk = key.public_jwk();
        let point = [
            vec![4u8],
            URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
            URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap(),
        ]
        .concat();
        let public = ES256PublicKey::from_bytes(&point).unwrap();
        let opts = VerificationOptions {
            artificial_time: Some(Duration::from_secs(1_700_000_010).into()),
            ..Default::default()
        };
        let claims = public
            .verify_token::<NoCustomClaims>(&jwt, Some(opts))
            .unwrap();
        assert_eq!(claims.issuer.as_deref(), Some("0oa1"));
        assert_eq!(claims.subject.as_deref(), Some("0oa1"));
        assert_eq!(claims.jwt_id.as_deref(), Some("j-1"));
        let aud = claims.audiences.unwrap().into_set();
        assert!(aud.contains("https://idp/token"));
        let (iat, exp) = (claims.issued_at.unwrap(), claims.expires_at.unwrap());
        assert_eq!(exp.as_secs() - iat.as_secs(), 300);
        let header = jwt_simple::token::Token::decode_metadata(&jwt).unwrap();
        assert_eq!(header.algorithm(), "ES256");
        assert_eq!(header.key_id(), Some(key.kid()));
    }

    #[test]
    fn an_rs256_key_signs_with_its_configured_kid() {
        let key = ClientKey::generate(KeyAlg::Rs256).unwrap();
        let pem = key.private_pem().unwrap();
        let key = ClientKey::from_pem(&pem, Some("okta-key-1")).unwrap();
        assert_eq!(key.alg(), KeyAlg::Rs256);
        let jwt = key
            .assertion("c", "https://idp/token", "j", 1_700_000_000)
            .unwrap();
        let jwk = key.public_jwk();
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
        let public = RS256PublicKey::from_components(&n, &e).unwrap();
        let opts = VerificationOptions {
            artificial_time: Some(Duration::from_secs(1_700_000_000).into()),
            ..Default::default()
        };
        assert!(public
            .verify_token::<NoCustomClaims>(&jwt, Some(opts))
            .is_ok());
        let header = jwt_simple::token::Token::decode_metadata(&jwt).unwrap();
        assert_eq!(header.key_id(), Some("okta-key-1"));
    }

    #[test]
    fn the_thumbprint_is_rfc_7638s_example() {
        // RFC 7638 §3.1.
        let members = json!({"e": "AQAB", "kty": "RSA", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            thumbprint(&members),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn what_is_not_a_usable_private_key_is_refused_with_a_reason() {
        assert_eq!(
            ClientKey::from_pem("not a key", None).unwrap_err(),
            KeyError::Unreadable
        );
        let pem = ClientKey::generate(KeyAlg::Es256)
            .unwrap()
            .private_pem()
            .unwrap();
        assert_eq!(
            ClientKey::from_pem(&pem, Some("bad kid")).unwrap_err(),
            KeyError::BadKid
        );
        let debug = format!("{:?}", ClientKey::from_pem(&pem, None).unwrap());
        assert!(!debug.contains("PRIVATE"), "{debug}");
    }
}
