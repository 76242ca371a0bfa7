//! Secret values as types that never print: the client secret, the cookie keys, the one-time
//! values of a login (state, nonce, PKCE verifier) and the IdP's tokens.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The OAuth client secret. `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(value: String) -> Self {
        Self(value)
    }
    /// The secret itself, for the token request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// Why a cookie secret was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieSecretError {
    NotBase64,
    WrongLength(usize),
}

impl fmt::Display for CookieSecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBase64 => f.write_str(
                "is not base64; generate one with `openssl rand -base64 32` (32 random bytes)",
            ),
            Self::WrongLength(n) => write!(
                f,
                "decodes to {n} bytes but must be 32 random bytes in base64; generate one with `openssl rand -base64 32`"
            ),
        }
    }
}

/// 32 secret bytes from `cookie_secret`, from which the cookie keys are derived.
#[derive(Clone)]
pub struct CookieSecret([u8; 32]);

impl CookieSecret {
    /// Accepts standard or URL-safe base64, padded or not, of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CookieSecretError> {
        let text = text.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .ok_or(CookieSecretError::NotBase64)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CookieSecretError::WrongLength(bytes.len()))?;
        Ok(Self(key))
    }

    /// A key for one purpose (session, login state): HKDF-SHA256 with the purpose as info, so a
    /// value sealed for one purpose never opens as another.
    pub fn derive(&self, purpose: &str) -> AeadKey {
        let hk = Hkdf::<Sha256>::new(Some(b"oidc-gate/v1"), &self.0);
        let mut okm = [0u8; 32];
        // HKDF-SHA256 can always expand to 32 bytes (the limit is 255 * 32).
        if hk.expand(purpose.as_bytes(), &mut okm).is_err() {
            okm = [0u8; 32];
        }
        AeadKey(okm)
    }
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret([redacted])")
    }
}

/// A derived 256-bit AEAD key.
#[derive(Clone)]
pub struct AeadKey(pub(crate) [u8; 32]);

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey([redacted])")
    }
}

/// A random one-time value of a login flow (state, nonce or PKCE verifier): 32 random bytes,
/// base64url without padding (43 characters, as RFC 7636 §4.1 asks of a verifier).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct OneTimeValue(String);

impl OneTimeValue {
    pub fn from_random(bytes: &[u8; 32]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison with a value that came from outside.
    pub fn matches(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for OneTimeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A token from the IdP, or a bearer token from a client: a credential that never prints.
macro_rules! token_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The token itself, for the header or call-out that carries it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }
    };
}

token_type!(
    /// An ID token (a JWT the IdP signed for this client).
    IdToken
);
token_type!(
    /// An OAuth access token.
    AccessToken
);
token_type!(
    /// An OAuth refresh token.
    RefreshToken
);
token_type!(
    /// A bearer token a client presented, kept while its issuer's keys are refetched.
    BearerToken
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = ClientSecret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let c = CookieSecret::from_base64(&STANDARD.encode([7u8; 32]));
        assert!(c.is_ok());
        let v = OneTimeValue::from_random(&[1u8; 32]);
        assert!(!format!("{v:?}").contains(v.as_str()));
        let t = IdToken::new("eyJ.secret.sig");
        assert!(!format!("{t:?}").contains("secret"));
        assert!(!format!("{:?}", RefreshToken::new("rt-123")).contains("rt-123"));
    }

    #[test]
    fn cookie_secret_must_be_32_bytes_of_base64() {
        assert!(CookieSecret::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(CookieSecret::from_base64(&URL_SAFE_NO_PAD.encode([0xffu8; 32])).is_ok());
        assert_eq!(
            CookieSecret::from_base64(&STANDARD.encode([1u8; 16])).err(),
            Some(CookieSecretError::WrongLength(16))
        );
        assert_eq!(
            CookieSecret::from_base64("not base64 at all!").err(),
            Some(CookieSecretError::NotBase64)
        );
        // A 32-character ASCII string is not 32 bytes of base64-decoded key material.
        assert!(CookieSecret::from_base64("0123456789abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let c = CookieSecret::from_base64(&STANDARD.encode([9u8; 32])).ok();
        let c = c.as_ref();
        let a = c.map(|c| c.derive("session").0);
        let b = c.map(|c| c.derive("login").0);
        assert_ne!(a, b);
    }

    #[test]
    fn one_time_values_compare() {
        let v = OneTimeValue::from_random(&[3u8; 32]);
        assert_eq!(v.as_str().len(), 43);
        assert!(v.matches(v.as_str()));
        assert!(!v.matches("other"));
    }
}
