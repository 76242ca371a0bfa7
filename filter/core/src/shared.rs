//! What the Wasm VMs of one Envoy share: proxy-wasm shared data, a process-wide key-value store
//! with compare-and-swap. The core uses it through `SharedStore`, for short leases (one worker
//! fetches the JWKS, one request refreshes a session) and for documents fetched once.

use std::collections::HashMap;
use std::time::Duration;

use crate::env::Now;

/// The host's shared key-value store.
pub trait SharedStore {
    /// The value and its version (cas), if the key exists.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes when `cas` is the current version (`None`: unconditionally); `false` when another
    /// writer came first or the host refused.
    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// A lease: `holder` may act until `until_ms`; `done` records that the work was done then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub until_ms: u64,
    pub done: bool,
}

impl Lease {
    fn encode(self) -> Vec<u8> {
        format!(
            "{}:{}",
            if self.done { "done" } else { "busy" },
            self.until_ms
        )
        .into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (state, until) = text.split_once(':')?;
        Some(Self {
            until_ms: until.parse().ok()?,
            done: state == "done",
        })
    }
}

/// What a lease attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the lease now and should do the work.
    Won,
    /// Someone else is doing it.
    Busy,
    /// It was done recently; nothing to do until the lease ends.
    Done,
}

/// Takes the lease at `key` for `hold` unless someone holds it or it was done recently.
/// Every write after the first is a compare-and-swap, so of two racing claimants one wins.
pub fn claim(store: &mut dyn SharedStore, key: &str, now: Now, hold: Duration) -> Claim {
    let now_ms = now.millis();
    let (bytes, cas) = match store.get(key) {
        Some(found) => found,
        None => {
            // Create the key with an expired lease, then compete for it by version like any other.
            let free = Lease {
                until_ms: 0,
                done: false,
            };
            store.set(key, &free.encode(), None);
            match store.get(key) {
                Some(found) => found,
                None => return Claim::Busy,
            }
        }
    };
    if let Some(lease) = Lease::decode(&bytes) {
        if now_ms < lease.until_ms {
            return if lease.done { Claim::Done } else { Claim::Busy };
        }
    }
    let lease = Lease {
        until_ms: now.plus(hold).millis(),
        done: false,
    };
    if store.set(key, &lease.encode(), Some(cas)) {
        Claim::Won
    } else {
        Claim::Busy
    }
}

/// Ends a lease: `done` keeps others off for `period`; otherwise they may retry after it.
pub fn settle(store: &mut dyn SharedStore, key: &str, now: Now, done: bool, period: Duration) {
    let lease = Lease {
        until_ms: now.plus(period).millis(),
        done,
    };
    store.set(key, &lease.encode(), None);
}

/// An in-memory store, for tests, benchmarks and the native tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: HashMap<String, (Vec<u8>, u32)>,
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        let current = self.entries.get(key).map(|(_, c)| *c);
        // As in Envoy, a CAS of 0 means "unconditionally".
        if cas.is_some_and(|c| c != 0) && cas != current {
            return false;
        }
        let next = current.unwrap_or(0).wrapping_add(1).max(1);
        self.entries.insert(key.to_string(), (value.to_vec(), next));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Now {
        Now::since_epoch(Duration::from_millis(ms))
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn one_claimant_wins_until_the_lease_ends() {
        let mut s = MemoryStore::default();
        assert_eq!(claim(&mut s, "k", at(0), ms(1000)), Claim::Won);
        assert_eq!(claim(&mut s, "k", at(10), ms(1000)), Claim::Busy);
        assert_eq!(
            claim(&mut s, "k", at(1000), ms(1000)),
            Claim::Won,
            "an abandoned lease expires"
        );
        settle(&mut s, "k", at(1100), true, ms(500));
        assert_eq!(claim(&mut s, "k", at(1200), ms(1000)), Claim::Done);
        assert_eq!(claim(&mut s, "k", at(1600), ms(1000)), Claim::Won);
        settle(&mut s, "k", at(1700), false, ms(300));
        assert_eq!(
            claim(&mut s, "k", at(1800), ms(1000)),
            Claim::Busy,
            "a failure backs everyone off"
        );
        assert_eq!(claim(&mut s, "k", at(2000), ms(1000)), Claim::Won);
    }

    #[test]
    fn a_stale_cas_loses() {
        let mut s = MemoryStore::default();
        s.set("k", b"a", None);
        let (_, cas) = s.get("k").unwrap_or_default();
        s.set("k", b"b", None);
        assert!(!s.set("k", b"c", Some(cas)));
        assert_eq!(s.get("k").map(|(v, _)| v), Some(b"b".to_vec()));
    }

    #[test]
    fn racing_claimants_on_a_new_key_cannot_both_win() {
        let mut s = MemoryStore::default();
        // Both saw the key absent and created it; only the first CAS succeeds.
        s.set(
            "k",
            &Lease {
                until_ms: 0,
                done: false,
            }
            .encode(),
            None,
        );
        let (_, cas) = s.get("k").unwrap_or_default();
        let busy = Lease {
            until_ms: 99,
            done: false,
        }
        .encode();
        assert!(s.set("k", &busy, Some(cas)));
        assert!(!s.set("k", &busy, Some(cas)));
    }

    #[test]
    fn garbage_in_the_store_is_treated_as_no_lease() {
        let mut s = MemoryStore::default();
        s.set("k", b"\xff\xfe", None);
        assert_eq!(claim(&mut s, "k", at(0), ms(10)), Claim::Won);
    }
}
