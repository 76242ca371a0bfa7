//! What the core needs from its host and takes as arguments: the time and randomness.

use std::fmt;

/// Randomness failed (the host's `random_get` refused). Requests that need it fail closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntropyError;

impl fmt::Display for EntropyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no randomness available from the host")
    }
}

/// A source of cryptographically secure random bytes.
pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EntropyError>;

    fn bytes32(&mut self) -> Result<[u8; 32], EntropyError> {
        let mut b = [0u8; 32];
        self.fill(&mut b)?;
        Ok(b)
    }
}

/// Seconds since the Unix epoch.
pub type UnixTime = u64;

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Deterministic randomness for tests: a counter run through SHA-256.
    pub struct SeededEntropy(pub u64);

    impl Entropy for SeededEntropy {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), EntropyError> {
            use sha2::{Digest, Sha256};
            for chunk in buf.chunks_mut(32) {
                self.0 += 1;
                let d = Sha256::digest(self.0.to_le_bytes());
                let n = chunk.len();
                chunk.copy_from_slice(d.get(..n).ok_or(EntropyError)?);
            }
            Ok(())
        }
    }

    pub struct NoEntropy;
    impl Entropy for NoEntropy {
        fn fill(&mut self, _buf: &mut [u8]) -> Result<(), EntropyError> {
            Err(EntropyError)
        }
    }
}
