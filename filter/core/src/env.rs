//! What the core needs from its host and takes as arguments: the time, randomness, the shared
//! store and the provider metadata loaded so far, as one `Env` per call; and what it hands back
//! besides its decision: notes for the log.

use std::fmt;
use std::time::Duration;

use crate::provider::{Fetch, Loaded, ProviderError, Providers};
use crate::shared::SharedStore;

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

/// The time of one call into the core, since the Unix epoch. Seconds (token and cookie times)
/// and milliseconds (leases) are both read from it, so the two never travel side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Now(Duration);

impl Now {
    pub fn since_epoch(d: Duration) -> Self {
        Self(d)
    }

    pub fn from_secs(secs: UnixTime) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub fn secs(self) -> UnixTime {
        self.0.as_secs()
    }

    pub fn millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// A later time; saturates rather than wraps.
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d))
    }
}

/// Something the host should log that is not a request's decision: what a fetch of provider
/// metadata came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The issuer whose metadata it is.
    pub issuer: String,
    pub fetch: Fetch,
    pub result: Result<Loaded, ProviderError>,
}

/// Everything a call into the core reads or changes besides its arguments.
pub struct Env<'a> {
    pub now: Now,
    pub rng: &'a mut dyn Entropy,
    pub store: &'a mut dyn SharedStore,
    pub providers: &'a mut Providers,
    /// Filled by the core, drained and logged by the host.
    pub notes: Vec<Note>,
}

impl<'a> Env<'a> {
    pub fn new(
        now: Now,
        rng: &'a mut dyn Entropy,
        store: &'a mut dyn SharedStore,
        providers: &'a mut Providers,
    ) -> Self {
        Self {
            now,
            rng,
            store,
            providers,
            notes: Vec::new(),
        }
    }
}

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
