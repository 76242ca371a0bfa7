//! The state of one login flow (state, nonce, PKCE verifier, where to return), sealed into a
//! short-lived per-flow cookie `<cookie_name>_<flow>_csrf`, so that the callback can land on any
//! worker or replica and two tabs can log in at once. Nothing is kept in memory between requests.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cookies::RequestCookies;
use crate::env::{Entropy, EntropyError, UnixTime};
use crate::seal::Sealer;
use crate::secret::OneTimeValue;

/// How long a login may take, from the redirect to the IdP to the callback.
pub const LOGIN_TTL: Duration = Duration::from_secs(15 * 60);
/// How many login flows a browser may have open at once; older ones are dropped.
pub const MAX_FLOWS: usize = 3;
/// Characters of the state that name the flow's cookie.
const FLOW_ID_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    #[serde(rename = "s")]
    pub state: OneTimeValue,
    #[serde(rename = "n")]
    pub nonce: OneTimeValue,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<OneTimeValue>,
    /// Where to go after login: a path on the host that started the login.
    #[serde(rename = "r")]
    pub return_to: String,
    #[serde(rename = "t")]
    pub issued_at: UnixTime,
    /// The provider the login is with (its `id`; empty in states sealed before `providers`:
    /// the default one). Sealed, so the callback cannot be taken to another provider.
    #[serde(rename = "p", default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
}

impl LoginState {
    pub fn new(
        provider: &str,
        return_to: String,
        pkce: bool,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Result<Self, EntropyError> {
        Ok(Self {
            provider: provider.to_string(),
            state: OneTimeValue::from_random(&rng.bytes32()?),
            nonce: OneTimeValue::from_random(&rng.bytes32()?),
            pkce_verifier: if pkce {
                Some(OneTimeValue::from_random(&rng.bytes32()?))
            } else {
                None
            },
            return_to,
            issued_at: now,
        })
    }

    /// The S256 code challenge (RFC 7636 §4.2).
    pub fn code_challenge(&self) -> Option<String> {
        self.pkce_verifier
            .as_ref()
            .map(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_str().as_bytes())))
    }
}

/// Why a callback's login state was not found or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStateError {
    /// No cookie for this flow: another browser's state, an old tab, or cookies blocked.
    Missing,
    Unreadable,
    Expired,
    StateMismatch,
}

/// Seals login states into their per-flow cookies.
#[derive(Debug, Clone)]
pub struct LoginCookies {
    /// The current key first, then previous ones (a login in flight survives a secret rotation).
    sealers: Vec<Sealer>,
    prefix: String,
}

impl LoginCookies {
    pub fn new(current: Sealer, previous: Vec<Sealer>, cookie_name: &str) -> Self {
        let mut sealers = vec![current];
        sealers.extend(previous);
        Self {
            sealers,
            prefix: format!("{cookie_name}_"),
        }
    }

    /// The cookie of the flow a `state` belongs to.
    pub fn cookie_name(&self, state: &str) -> String {
        let flow: String = state
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(FLOW_ID_LEN)
            .collect();
        format!("{}{flow}_csrf", self.prefix)
    }

    pub fn owns(&self, cookie: &str) -> bool {
        cookie.len() > self.prefix.len().saturating_add(5)
            && cookie.starts_with(&self.prefix)
            && cookie.ends_with("_csrf")
    }

    pub fn seal(
        &self,
        login: &LoginState,
        rng: &mut dyn Entropy,
    ) -> Result<(String, String), EntropyError> {
        let name = self.cookie_name(login.state.as_str());
        let json = serde_json::to_vec(login).map_err(|_| EntropyError)?;
        let value = self
            .sealers
            .first()
            .ok_or(EntropyError)?
            .seal(&json, &name, rng)?;
        Ok((name, value))
    }

    fn open(&self, name: &str, value: &str) -> Result<LoginState, LoginStateError> {
        let plain = self
            .sealers
            .iter()
            .find_map(|s| s.open(value, name).ok())
            .ok_or(LoginStateError::Unreadable)?;
        serde_json::from_slice(&plain).map_err(|_| LoginStateError::Unreadable)
    }

    /// The login state for a callback's `state`, checked: present, ours, fresh, same state.
    pub fn take(
        &self,
        cookies: &RequestCookies<'_>,
        state: &str,
        now: UnixTime,
    ) -> Result<(String, LoginState), LoginStateError> {
        let name = self.cookie_name(state);
        let value = cookies.get(&name).ok_or(LoginStateError::Missing)?;
        let login = self.open(&name, value)?;
        if now >= login.issued_at.saturating_add(LOGIN_TTL.as_secs()) {
            return Err(LoginStateError::Expired);
        }
        if !login.state.matches(state) {
            return Err(LoginStateError::StateMismatch);
        }
        Ok((name, login))
    }

    /// The flow cookies to delete when a new flow starts, so at most `MAX_FLOWS` stay: unreadable
    /// and expired ones, then the oldest.
    pub fn to_evict(&self, cookies: &RequestCookies<'_>, now: UnixTime) -> Vec<String> {
        let mut flows: Vec<(UnixTime, &str)> = cookies
            .names()
            .filter(|n| self.owns(n))
            .map(|n| {
                let issued = cookies
                    .get(n)
                    .and_then(|v| self.open(n, v).ok())
                    .map(|l| l.issued_at)
                    .filter(|t| now < t.saturating_add(LOGIN_TTL.as_secs()))
                    .unwrap_or(0);
                (issued, n)
            })
            .collect();
        flows.sort();
        let keep_at_most = MAX_FLOWS - 1; // room for the flow being started
        let excess = flows.len().saturating_sub(keep_at_most);
        flows
            .iter()
            .enumerate()
            .filter(|(i, (issued, _))| *i < excess || *issued == 0)
            .map(|(_, (_, n))| n.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::testing::SeededEntropy;
    use crate::secret::CookieSecret;

    fn cookies() -> LoginCookies {
        let s = CookieSecret::from_base64(crate::config::tests::COOKIE_SECRET);
        let Ok(s) = s else { unreachable!() };
        LoginCookies::new(Sealer::new(&s.derive("login")), Vec::new(), "_oauth2_proxy")
    }

    #[test]
    fn state_nonce_and_verifier_are_random_and_distinct() {
        let mut rng = SeededEntropy(7);
        let a =
            LoginState::new("", "/".into(), true, 0, &mut rng).unwrap_or_else(|_| unreachable!());
        let b =
            LoginState::new("", "/".into(), true, 0, &mut rng).unwrap_or_else(|_| unreachable!());
        assert_ne!(a.state, b.state);
        assert_ne!(a.state, a.nonce);
        assert_ne!(
            a.pkce_verifier,
            a.pkce_verifier.as_ref().map(|_| a.nonce.clone())
        );
        assert_eq!(a.state.as_str().len(), 43);
        let no_pkce =
            LoginState::new("", "/".into(), false, 0, &mut rng).unwrap_or_else(|_| unreachable!());
        assert!(no_pkce.code_challenge().is_none());
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let mut l = LoginState::new("", "/".into(), true, 0, &mut SeededEntropy(1))
            .unwrap_or_else(|_| unreachable!());
        l.pkce_verifier =
            serde_json::from_str("\"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\"").ok();
        assert_eq!(
            l.code_challenge().as_deref(),
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        );
    }

    #[test]
    fn callback_finds_its_flow_and_checks_it() {
        let lc = cookies();
        let mut rng = SeededEntropy(1);
        let login = LoginState::new("", "/app?x=1".into(), true, 100, &mut rng)
            .unwrap_or_else(|_| unreachable!());
        let (name, value) = lc.seal(&login, &mut rng).unwrap_or_default();
        assert!(
            name.starts_with("_oauth2_proxy_") && name.ends_with("_csrf"),
            "{name}"
        );
        let header = format!("{name}={value}");
        let jar = RequestCookies::parse(Some(header.as_bytes()));
        let state = login.state.as_str().to_string();
        assert_eq!(
            lc.take(&jar, &state, 200).map(|(_, l)| l).ok(),
            Some(login.clone())
        );
        assert_eq!(
            lc.take(&jar, &state, 100 + 15 * 60).err(),
            Some(LoginStateError::Expired)
        );
        // Same flow id (first 8 characters), different state: refused.
        let forged = format!("{}X", state.get(..42).unwrap_or_default());
        assert_eq!(
            lc.take(&jar, &forged, 200).err(),
            Some(LoginStateError::StateMismatch)
        );
        assert_eq!(
            lc.take(&jar, "someone-elses-state", 200).err(),
            Some(LoginStateError::Missing)
        );
        // The sealed value moved to another flow's cookie name does not open.
        let moved = format!("{}={value}", lc.cookie_name("someone-elses-state"));
        let jar = RequestCookies::parse(Some(moved.as_bytes()));
        assert_eq!(
            lc.take(&jar, "someone-elses-state", 200).err(),
            Some(LoginStateError::Unreadable)
        );
    }

    #[test]
    fn at_most_max_flows_are_kept() {
        let lc = cookies();
        let mut rng = SeededEntropy(5);
        let mut header = Vec::new();
        for t in [10, 30, 20] {
            let l = LoginState::new("", "/".into(), true, t, &mut rng)
                .unwrap_or_else(|_| unreachable!());
            let (n, v) = lc.seal(&l, &mut rng).unwrap_or_default();
            header.push((t, format!("{n}={v}"), n));
        }
        header.push((
            0,
            "_oauth2_proxy_garbage_csrf=zzz".into(),
            "_oauth2_proxy_garbage_csrf".into(),
        ));
        let h = header
            .iter()
            .map(|(_, c, _)| c.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let jar = RequestCookies::parse(Some(h.as_bytes()));
        let mut evicted = lc.to_evict(&jar, 40);
        evicted.sort();
        // The two newest valid flows stay, beside the one being started.
        let mut expected = vec![header[3].2.clone(), header[0].2.clone()];
        expected.sort();
        assert_eq!(evicted, expected);
    }
}
