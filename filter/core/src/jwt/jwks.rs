//! The provider's JSON Web Key Set, decoded once into verification keys. Keys this filter cannot
//! use (other key types or curves, `use: enc`, broken members) are skipped, not fatal
//! (RFC 7517 §5); a set with no usable key at all is an error.

use std::fmt;
use std::marker::PhantomData;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde::Deserialize;

use super::es256::Es256PublicKey;
use super::rsa::{Hash, Padding, RsaPublicKey};

/// The asymmetric JWS algorithms the filter verifies. Symmetric (`HS*`) and `none` are absent by
/// construction: the token's header can never make the filter use a shared secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Algorithm {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// Why a key set was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    NotJson,
    NoUsableKey { skipped: usize },
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson => f.write_str("the JWKS is not a JSON object with a \"keys\" array"),
            Self::NoUsableKey { skipped } => write!(
                f,
                "the JWKS has no RSA, P-256, P-384 or Ed25519 signing key ({skipped} keys skipped)"
            ),
        }
    }
}

/// A public key, decoded and prepared once when the JWKS is read. An RSA key serves every RS/PS
/// algorithm the key allows; the one used is chosen per token.
#[derive(Clone)]
enum PublicKey {
    Rsa(RsaPublicKey),
    P256(Es256PublicKey),
    P384(ES384PublicKey),
    Ed25519(Ed25519PublicKey),
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The JWK's own `alg`, when it pins one.
    alg: Option<Algorithm>,
    key: PublicKey,
}

impl Key {
    fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        use Algorithm::*;
        matches!(
            (&self.key, alg),
            (
                PublicKey::Rsa(_),
                RS256 | RS384 | RS512 | PS256 | PS384 | PS512
            ) | (PublicKey::P256(_), ES256)
                | (PublicKey::P384(_), ES384)
                | (PublicKey::Ed25519(_), EdDSA)
        )
    }
}

/// The usable keys of a JWKS.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
    skipped: usize,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self
            .keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("-"))
            .collect();
        f.debug_struct("KeySet")
            .field("kids", &kids)
            .field("skipped", &self.skipped)
            .finish()
    }
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

fn b64(field: &Option<String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(field.as_deref()?.trim_end_matches('='))
        .ok()
}

fn decode_key(raw: RawJwk) -> Option<Key> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(name) => Some(Algorithm::from_name(name)?),
    };
    let key = match (raw.kty.as_str(), raw.crv.as_deref()) {
        // Moduli under 2048 bits, over 4096 bits or even, and exponents other than 65537 are
        // refused here (jwt-simple's policy, see `rsa`).
        ("RSA", _) => PublicKey::Rsa(RsaPublicKey::from_components(&b64(&raw.n)?, &b64(&raw.e)?)?),
        ("EC", Some("P-256")) => PublicKey::P256(Es256PublicKey::from_sec1(&sec1(&raw)?)?),
        ("EC", Some("P-384")) => PublicKey::P384(ES384PublicKey::from_bytes(&sec1(&raw)?).ok()?),
        ("OKP", Some("Ed25519")) => {
            PublicKey::Ed25519(Ed25519PublicKey::from_bytes(&b64(&raw.x)?).ok()?)
        }
        _ => return None,
    };
    Some(Key {
        kid: raw.kid,
        alg,
        key,
    })
}

/// The uncompressed SEC1 point `04 || x || y`.
fn sec1(raw: &RawJwk) -> Option<Vec<u8>> {
    let (x, y) = (b64(&raw.x)?, b64(&raw.y)?);
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Some(point)
}

impl KeySet {
    pub fn parse(body: &[u8]) -> Result<Self, JwksError> {
        let raw: RawJwks = serde_json::from_slice(body).map_err(|_| JwksError::NotJson)?;
        let total = raw.keys.len();
        let keys: Vec<Key> = raw
            .keys
            .into_iter()
            .filter_map(|v| {
                serde_json::from_value::<RawJwk>(v)
                    .ok()
                    .and_then(decode_key)
            })
            .collect();
        let skipped = total.saturating_sub(keys.len());
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey { skipped });
        }
        Ok(Self { keys, skipped })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many keys of the document were not usable.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Whether a key with this `kid` is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Candidate keys for a token: by `kid` when the token names one, otherwise every key that
    /// fits the algorithm.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = Verifier<'a>> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)) && k.fits(alg))
            .map(move |k| Verifier { key: &k.key, alg })
    }
}

/// A key paired with the algorithm it verifies with.
pub(crate) struct Verifier<'a> {
    key: &'a PublicKey,
    alg: Algorithm,
}

impl Verifier<'_> {
    pub(crate) fn verify<C: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<C>, jwt_simple::Error> {
        let o = Some(options);
        match (self.key, self.alg) {
            (PublicKey::Rsa(key), alg) => match alg {
                Algorithm::RS256 => Check::<Rs256>::new(key, token).verify_token(token, o),
                Algorithm::RS384 => Check::<Rs384>::new(key, token).verify_token(token, o),
                Algorithm::RS512 => Check::<Rs512>::new(key, token).verify_token(token, o),
                Algorithm::PS256 => Check::<Ps256>::new(key, token).verify_token(token, o),
                Algorithm::PS384 => Check::<Ps384>::new(key, token).verify_token(token, o),
                Algorithm::PS512 => Check::<Ps512>::new(key, token).verify_token(token, o),
                _ => Err(JWTError::AlgorithmMismatch.into()),
            },
            (PublicKey::P256(k), Algorithm::ES256) => {
                Check::<Es256>::new(k, token).verify_token(token, o)
            }
            (PublicKey::P384(k), Algorithm::ES384) => k.verify_token(token, o),
            (PublicKey::Ed25519(k), Algorithm::EdDSA) => k.verify_token(token, o),
            _ => Err(JWTError::AlgorithmMismatch.into()),
        }
    }
}

/// A JWS algorithm whose signature this crate checks itself (`rsa`, `es256`), at the type level
/// for `Check`.
trait Scheme {
    const NAME: &'static str;
    type Key;
    fn verify(key: &Self::Key, signing_input: &[u8], signature: &[u8]) -> bool;
}

macro_rules! rsa_schemes {
    ($($t:ident = $name:literal, $padding:ident, $hash:ident;)*) => {$(
        struct $t;
        impl Scheme for $t {
            const NAME: &'static str = $name;
            type Key = RsaPublicKey;
            fn verify(key: &RsaPublicKey, signing_input: &[u8], signature: &[u8]) -> bool {
                key.verify(Padding::$padding, Hash::$hash, signing_input, signature)
            }
        }
    )*};
}

rsa_schemes! {
    Rs256 = "RS256", Pkcs1v15, Sha256;
    Rs384 = "RS384", Pkcs1v15, Sha384;
    Rs512 = "RS512", Pkcs1v15, Sha512;
    Ps256 = "PS256", Pss, Sha256;
    Ps384 = "PS384", Pss, Sha384;
    Ps512 = "PS512", Pss, Sha512;
}

struct Es256;

impl Scheme for Es256 {
    const NAME: &'static str = "ES256";
    type Key = Es256PublicKey;
    fn verify(key: &Es256PublicKey, signing_input: &[u8], signature: &[u8]) -> bool {
        key.verify(signing_input, signature)
    }
}

/// jwt-simple still reads the token (size limits, header, `alg`, `crit`, `typ`, claims) and
/// checks `exp`/`nbf`/`iat`; only the signature check is ours (`Scheme`). jwt-simple's one public
/// way to put a check of the signing input inside its verification is its MAC trait: it compares
/// `authentication_tag(signing input)` with the token's decoded signature, in constant time.
/// `Check` answers with the token's own signature when, and only when, that signature verifies
/// under the key for the signing input it is given, and otherwise with bytes of another length,
/// so the comparison succeeds exactly for valid signatures. No MAC is ever computed: `mac_key` only
/// satisfies the trait (jwt-simple refuses a MAC key under 12 bytes before verifying). As for
/// MAC tokens, jwt-simple refuses a token whose header carries a `salt`.
struct Check<'a, A: Scheme> {
    key: &'a A::Key,
    /// The token's signature, decoded as jwt-simple decodes it; empty when it does not decode.
    signature: Vec<u8>,
    mac_key: HMACKey,
    metadata: Option<KeyMetadata>,
    key_id: Option<String>,
    scheme: PhantomData<A>,
}

impl<'a, A: Scheme> Check<'a, A> {
    fn new(key: &'a A::Key, token: &str) -> Self {
        let signature = token
            .rsplit('.')
            .next()
            .and_then(|s| Base64UrlSafeNoPadding::decode_to_vec(s, None).ok())
            .unwrap_or_default();
        Self {
            key,
            signature,
            mac_key: HMACKey::from_bytes(b"unused: the tag is a signature"),
            metadata: None,
            key_id: None,
            scheme: PhantomData,
        }
    }
}

impl<A: Scheme> MACLike for Check<'_, A> {
    fn jwt_alg_name() -> &'static str {
        A::NAME
    }

    fn key(&self) -> &HMACKey {
        &self.mac_key
    }

    fn key_id(&self) -> &Option<String> {
        &self.key_id
    }

    fn set_key_id(&mut self, key_id: String) {
        self.key_id = Some(key_id);
    }

    fn metadata(&self) -> &Option<KeyMetadata> {
        &self.metadata
    }

    fn attach_metadata(&mut self, _metadata: KeyMetadata) -> Result<(), jwt_simple::Error> {
        Err(JWTError::InvalidPublicKey.into())
    }

    fn authentication_tag(&self, signing_input: &[u8]) -> Vec<u8> {
        let valid =
            !self.signature.is_empty() && A::verify(self.key, signing_input, &self.signature);
        if valid {
            self.signature.clone()
        } else {
            // Never equal to the token's signature, whatever it is: one byte longer. (An empty
            // answer would equal an empty signature, and jwt-simple would accept the token.)
            vec![0; self.signature.len().saturating_add(1)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::verify::testing::TestIdp;

    #[test]
    fn skips_keys_it_cannot_use_and_keeps_the_rest() {
        let idp = TestIdp::new();
        let mut jwks: serde_json::Value = serde_json::from_str(&idp.jwks()).unwrap_or_default();
        if let Some(keys) = jwks["keys"].as_array_mut() {
            keys.push(serde_json::json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}));
            keys.push(serde_json::json!({"kty": "EC", "crv": "secp256k1", "kid": "k1", "x": "AA", "y": "AA"}));
            keys.push(serde_json::json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}));
            keys.push(serde_json::json!({"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}));
            keys.push(serde_json::json!({"kty": "RSA", "kid": "weird-alg", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB"}));
            keys.push(serde_json::json!("not an object"));
        }
        let set = KeySet::parse(jwks.to_string().as_bytes());
        let Ok(set) = set else {
            unreachable!("{set:?}")
        };
        assert_eq!(set.len(), 2, "{set:?}");
        assert_eq!(set.skipped(), 6);
        assert!(set.has_kid("rsa-1") && set.has_kid("ec-1"));
    }

    #[test]
    fn rsa_keys_under_2048_bits_or_without_exponent_65537_are_skipped() {
        let b64 = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        // An odd modulus of exactly `bits` bits.
        let n = |bits: usize| {
            let mut n = vec![0xc3u8; bits / 8];
            n[bits / 8 - 1] |= 1;
            n
        };
        let jwk = |kid: &str, n: &[u8], e: &[u8]| serde_json::json!({"kty": "RSA", "kid": kid, "n": b64(n), "e": b64(e)});
        let set = |keys: Vec<serde_json::Value>| {
            KeySet::parse(serde_json::json!({ "keys": keys }).to_string().as_bytes())
        };
        assert_eq!(
            set(vec![jwk("short", &n(1024), &[1, 0, 1])]).err(),
            Some(JwksError::NoUsableKey { skipped: 1 })
        );
        let keys = set(vec![
            jwk("1024", &n(1024), &[1, 0, 1]),
            jwk("2040", &n(2040), &[1, 0, 1]),
            jwk("e3", &n(2048), &[3]),
            jwk("8192", &n(8192), &[1, 0, 1]),
            jwk("2048", &n(2048), &[1, 0, 1]),
        ]);
        let Ok(keys) = keys else {
            unreachable!("{keys:?}")
        };
        assert_eq!((keys.len(), keys.skipped()), (1, 4));
        assert!(keys.has_kid("2048") && !keys.has_kid("1024") && !keys.has_kid("2040"));
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert_eq!(KeySet::parse(b"{}").err(), Some(JwksError::NotJson));
        assert_eq!(KeySet::parse(b"not json").err(), Some(JwksError::NotJson));
        assert_eq!(
            KeySet::parse(br#"{"keys":[{"kty":"oct","k":"AA"}]}"#).err(),
            Some(JwksError::NoUsableKey { skipped: 1 })
        );
    }

    #[test]
    fn keys_fit_only_their_family() {
        let idp = TestIdp::new();
        let set = KeySet::parse(idp.jwks().as_bytes()).unwrap_or_default();
        assert_eq!(set.candidates(None, Algorithm::RS256).count(), 1);
        assert_eq!(set.candidates(None, Algorithm::ES256).count(), 1);
        assert_eq!(set.candidates(Some("ec-1"), Algorithm::RS256).count(), 0);
        // rsa-1 pins alg RS256 in its JWK: it is not used for PS256.
        assert_eq!(set.candidates(Some("rsa-1"), Algorithm::PS256).count(), 0);
        assert_eq!(set.candidates(None, Algorithm::ES384).count(), 0);
    }
}
