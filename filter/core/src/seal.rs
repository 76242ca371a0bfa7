//! Authenticated encryption of cookie values: ChaCha20-Poly1305 (RFC 8439) with a random 96-bit
//! nonce and the cookie's name as associated data, so a value cannot be moved to another
//! cookie. ChaCha20 rather than AES-GCM because Wasm has no AES instructions: in software it is
//! several times faster, and this runs on every signed-in request.
//! Format: base64url( version(1) || nonce(12) || ciphertext+tag ).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

use crate::env::{Entropy, EntropyError};
use crate::secret::AeadKey;

const VERSION: u8 = 2;
const NONCE_LEN: usize = 12;

/// Why a sealed value did not open. Callers treat every variant as "no such cookie".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    NotBase64,
    TooShort,
    UnknownVersion,
    /// Wrong key, wrong cookie name, or a changed byte.
    Forged,
}

/// A ready cipher for one derived key (built once at configure time).
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn new(key: &AeadKey) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(&key.0.into()),
        }
    }

    pub fn seal(
        &self,
        plaintext: &[u8],
        context: &str,
        rng: &mut dyn Entropy,
    ) -> Result<String, EntropyError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce)?;
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            // Encryption fails only for messages over 256 GiB.
            .map_err(|_| EntropyError)?;
        let mut out = Vec::with_capacity(ciphertext.len().saturating_add(1 + NONCE_LEN));
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, value: &str, context: &str) -> Result<Vec<u8>, OpenError> {
        let raw = URL_SAFE_NO_PAD
            .decode(value.as_bytes())
            .map_err(|_| OpenError::NotBase64)?;
        let (version, rest) = raw.split_first().ok_or(OpenError::TooShort)?;
        if *version != VERSION {
            return Err(OpenError::UnknownVersion);
        }
        if rest.len() < NONCE_LEN + 16 {
            return Err(OpenError::TooShort);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::SeededEntropy;
    use crate::secret::CookieSecret;

    fn sealer(byte: u8) -> Sealer {
        let secret = CookieSecret::from_base64(
            &base64::engine::general_purpose::STANDARD.encode([byte; 32]),
        );
        match secret {
            Ok(s) => Sealer::new(&s.derive("test")),
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn round_trips_and_rejects_every_flipped_byte() {
        let s = sealer(1);
        let mut rng = SeededEntropy(1);
        let sealed = s.seal(b"hello", "_oauth2_proxy", &mut rng);
        let sealed = sealed.unwrap_or_default();
        assert_eq!(
            s.open(&sealed, "_oauth2_proxy").ok(),
            Some(b"hello".to_vec())
        );
        let raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap_or_default();
        for i in 0..raw.len() {
            let mut tampered = raw.clone();
            if let Some(b) = tampered.get_mut(i) {
                *b ^= 0x01;
            }
            let t = URL_SAFE_NO_PAD.encode(&tampered);
            assert!(s.open(&t, "_oauth2_proxy").is_err(), "byte {i}");
        }
    }

    #[test]
    fn other_key_or_other_cookie_name_does_not_open() {
        let mut rng = SeededEntropy(2);
        let sealed = sealer(1).seal(b"x", "a", &mut rng).unwrap_or_default();
        assert_eq!(sealer(2).open(&sealed, "a"), Err(OpenError::Forged));
        assert_eq!(sealer(1).open(&sealed, "b"), Err(OpenError::Forged));
        assert_eq!(sealer(1).open("", "a"), Err(OpenError::TooShort));
        assert_eq!(sealer(1).open("!!", "a"), Err(OpenError::NotBase64));
    }

    #[test]
    fn nonces_differ_between_seals() {
        let s = sealer(1);
        let mut rng = SeededEntropy(3);
        let a = s.seal(b"same", "c", &mut rng).unwrap_or_default();
        let b = s.seal(b"same", "c", &mut rng).unwrap_or_default();
        assert_ne!(a, b);
    }
}
