//! The session: the verified identity (and, only when a header needs them, the tokens), sealed
//! into the session cookie. A session too large for one cookie is split into `<name>_0`,
//! `<name>_1`, … and joined on read, as OAuth2-Proxy does. Sessions this VM has opened are kept
//! in a bounded cache by their exact sealed bytes, so a signed-in request usually costs a lookup
//! instead of a decrypt and a parse; the expiry is checked on every request all the same.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::cache::BoundedCache;
use crate::cookies::RequestCookies;
use crate::env::{Entropy, EntropyError, UnixTime};
use crate::seal::Sealer;
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// The longest cookie value written in one cookie; browsers keep at least 4096 bytes for name,
/// value and attributes together.
pub const MAX_COOKIE_VALUE: usize = 3800;
/// A bound on the number of parts read back, against hostile requests.
const MAX_PARTS: usize = 16;
/// How many cookies of the session's name are tried (a parent domain's, a sibling's, ours).
const MAX_CANDIDATES: usize = 4;
/// Sealed sessions longer than this (sessions that keep tokens) are opened on every request
/// rather than cached, so the cache's memory stays small: at most the cache size times this.
const MAX_CACHED_COOKIE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Random, kept across refreshes: names the session for refresh coordination.
    #[serde(rename = "i", default)]
    pub id: String,
    #[serde(rename = "u")]
    pub user: String,
    /// The ID token's `sub`: a refresh must return the same (OIDC Core §12.2).
    #[serde(rename = "s", default)]
    pub sub: String,
    #[serde(rename = "e", default)]
    pub email: String,
    #[serde(rename = "g", default)]
    pub groups: Vec<String>,
    #[serde(rename = "p", default)]
    pub preferred_username: String,
    /// Values of the claims `claim_headers` names.
    #[serde(rename = "k", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// Values of the claims `allowed_claims` and `allowed_roles` read.
    #[serde(rename = "v", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_claims: crate::identity::RuleClaims,
    #[serde(rename = "c")]
    pub created_at: UnixTime,
    #[serde(rename = "x")]
    pub expires_at: UnixTime,
    /// When the tokens were last obtained (login or refresh); `cookie_refresh` counts from here.
    #[serde(rename = "r", default)]
    pub refreshed_at: UnixTime,
    /// When a request last carried the session, as recorded (see `Idle`): at most one
    /// re-issue step behind the real last request.
    #[serde(rename = "a", default)]
    pub active_at: UnixTime,
    /// When the IdP's tokens expire (`expires_in`, else the ID token's `exp`).
    #[serde(rename = "te", default, skip_serializing_if = "Option::is_none")]
    pub tokens_expire_at: Option<UnixTime>,
    #[serde(rename = "it", default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    #[serde(rename = "at", default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
}

impl Session {
    /// The last activity on record: a login and a refresh count (sessions sealed before the
    /// record was kept have only those).
    pub fn last_active(&self) -> UnixTime {
        self.active_at.max(self.refreshed_at).max(self.created_at)
    }
}

/// `session_idle_timeout`, stateless: the sealed session carries its last activity, and is
/// re-issued with a newer one only once that is older than `step` (a tenth of the timeout, at
/// most five minutes), so an active user does not get a `Set-Cookie` on every response. A
/// session therefore ends between `timeout - step` and `timeout` after its last request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    timeout: UnixTime,
    step: UnixTime,
}

/// The longest a recorded activity may lag behind.
const MAX_IDLE_STEP: UnixTime = 300;

impl Idle {
    pub fn new(timeout: std::time::Duration) -> Self {
        let timeout = timeout.as_secs().max(1);
        Self {
            timeout,
            step: (timeout / 10).clamp(1, MAX_IDLE_STEP),
        }
    }

    /// No request for the whole timeout.
    pub fn ended(&self, session: &Session, now: UnixTime) -> bool {
        now >= session.last_active().saturating_add(self.timeout)
    }

    /// The recorded activity is a step old: time to re-issue the cookie with `now`.
    pub fn touch_due(&self, session: &Session, now: UnixTime) -> bool {
        now >= session.last_active().saturating_add(self.step)
    }
}

/// Why no session was read. All mean "not signed in"; the variant is for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    Absent,
    /// Tampered, sealed with another secret, or not ours at all.
    Unreadable,
    Expired,
    /// No request carried it for `session_idle_timeout`.
    Idle,
    /// Sealed before a rule on a claim it did not record was configured: a new login records
    /// it.
    Outdated,
}

impl SessionError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Absent => "no_session",
            Self::Unreadable => "session_unreadable",
            Self::Expired => "session_expired",
            Self::Idle => "session_idle",
            Self::Outdated => "session_outdated",
        }
    }
}

/// A session read from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub session: Rc<Session>,
    /// Sealed with a previous `cookie_secret`: re-issue it with the current one.
    pub stale_key: bool,
}

/// Seals sessions with the current key and opens them with the current or a previous one.
#[derive(Debug)]
pub struct SessionCodec {
    /// The current key first, then previous ones.
    sealers: Vec<Sealer>,
    name: String,
    /// Sessions opened with these very keys, by their sealed value: a codec lives as long as its
    /// configuration, so new secrets start an empty cache.
    opened: RefCell<BoundedCache<Opened>>,
    idle: Option<Idle>,
}

impl SessionCodec {
    pub fn new(current: Sealer, previous: Vec<Sealer>, name: String, cache_size: usize) -> Self {
        let mut sealers = vec![current];
        sealers.extend(previous);
        Self {
            sealers,
            name,
            opened: RefCell::new(BoundedCache::new(cache_size, MAX_CACHED_COOKIE)),
            idle: None,
        }
    }

    /// Sessions end after this long without a request.
    pub fn with_idle_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.idle = timeout.map(Idle::new);
        self
    }

    /// Whether the session's recorded activity should be renewed on this response.
    pub fn touch_due(&self, session: &Session, now: UnixTime) -> bool {
        self.idle.is_some_and(|idle| idle.touch_due(session, now))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn part_name(&self, i: usize) -> String {
        format!("{}_{i}", self.name)
    }

    /// Whether a cookie name is the session cookie or one of its parts.
    pub fn owns(&self, cookie: &str) -> bool {
        match cookie.strip_prefix(self.name.as_str()) {
            Some("") => true,
            Some(rest) => rest
                .strip_prefix('_')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
            None => false,
        }
    }

    /// The cookies (name, value) that carry this session, in order.
    pub fn encode(
        &self,
        session: &Session,
        rng: &mut dyn Entropy,
    ) -> Result<Vec<(String, String)>, EntropyError> {
        let json = serde_json::to_vec(session).map_err(|_| EntropyError)?;
        let sealer = self.sealers.first().ok_or(EntropyError)?;
        let sealed = sealer.seal(&json, &self.name, rng)?;
        if sealed.len() <= MAX_COOKIE_VALUE {
            return Ok(vec![(self.name.clone(), sealed)]);
        }
        // base64url is ASCII, so byte chunks are valid strings.
        Ok(sealed
            .as_bytes()
            .chunks(MAX_COOKIE_VALUE)
            .enumerate()
            .map(|(i, c)| (self.part_name(i), String::from_utf8_lossy(c).into_owned()))
            .collect())
    }

    /// The sealed values the request may carry, in the order they are tried: each cookie of the
    /// session's name (a browser may hold a parent domain's and a host's), then the parts
    /// `_0`, `_1`, … joined, by occurrence (the first of each, then the second of each).
    fn candidates<'c>(&self, cookies: &RequestCookies<'c>) -> Vec<Cow<'c, str>> {
        let mut out: Vec<Cow<'c, str>> = cookies
            .get_all(&self.name)
            .take(MAX_CANDIDATES)
            .map(Cow::Borrowed)
            .collect();
        let parts: Vec<Vec<&str>> = (0..MAX_PARTS)
            .map(|i| {
                cookies
                    .get_all(&self.part_name(i))
                    .take(MAX_CANDIDATES)
                    .collect::<Vec<_>>()
            })
            .take_while(|values| !values.is_empty())
            .collect();
        for k in 0..MAX_CANDIDATES {
            if out.len() >= MAX_CANDIDATES || parts.is_empty() {
                break;
            }
            let mut joined = String::new();
            for values in &parts {
                match values.get(k).or_else(|| values.first()) {
                    Some(v) => joined.push_str(v),
                    None => break,
                }
            }
            if !out.iter().any(|c| *c == joined) {
                out.push(Cow::Owned(joined));
            }
            if parts.iter().all(|v| v.len() <= k.saturating_add(1)) {
                break;
            }
        }
        out
    }

    pub fn decode(
        &self,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Opened, SessionError> {
        let candidates = self.candidates(cookies);
        if candidates.is_empty() {
            return Err(SessionError::Absent);
        }
        // The first candidate that opens counts; a foreign or stale cookie of the same name
        // does not hide ours.
        let mut why = SessionError::Unreadable;
        for sealed in &candidates {
            match self.open(sealed, now) {
                Ok(opened) => return Ok(opened),
                Err(e @ (SessionError::Expired | SessionError::Idle)) => why = e,
                Err(_) => {}
            }
        }
        Err(why)
    }

    /// A sealed value opened before (same bytes, same keys), else opened now and remembered.
    fn open(&self, sealed: &str, now: UnixTime) -> Result<Opened, SessionError> {
        let cached = match self.opened.try_borrow_mut() {
            Ok(mut cache) => cache.get(sealed.as_bytes()).cloned(),
            Err(_) => None,
        };
        let opened = match cached {
            Some(opened) => opened,
            None => {
                let opened = self.unseal(sealed)?;
                if let Ok(mut cache) = self.opened.try_borrow_mut() {
                    cache.insert(sealed.as_bytes(), opened.clone());
                }
                opened
            }
        };
        let ended = if opened.session.expires_at <= now {
            SessionError::Expired
        } else if self.idle.is_some_and(|i| i.ended(&opened.session, now)) {
            SessionError::Idle
        } else {
            return Ok(opened);
        };
        if let Ok(mut cache) = self.opened.try_borrow_mut() {
            cache.remove(sealed.as_bytes());
        }
        Err(ended)
    }

    fn unseal(&self, sealed: &str) -> Result<Opened, SessionError> {
        let (index, plain) = self
            .sealers
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.open(sealed, &self.name).ok().map(|p| (i, p)))
            .ok_or(SessionError::Unreadable)?;
        let session: Session =
            serde_json::from_slice(&plain).map_err(|_| SessionError::Unreadable)?;
        Ok(Opened {
            session: Rc::new(session),
            stale_key: index > 0,
        })
    }

    /// The request's cookies that belong to the session (to delete them, or to strip them).
    pub fn present<'a>(
        &'a self,
        cookies: &'a RequestCookies<'a>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        cookies.names().filter(move |n| self.owns(n))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::env::testing::SeededEntropy;
    use crate::secret::CookieSecret;

    pub fn codec() -> SessionCodec {
        let s = CookieSecret::from_base64(crate::config::tests::COOKIE_SECRET);
        let Ok(s) = s else { unreachable!() };
        SessionCodec::new(
            Sealer::new(&s.derive("session")),
            Vec::new(),
            "_oauth2_proxy".into(),
            16,
        )
    }

    pub fn alice(now: UnixTime) -> Session {
        Session {
            id: "sid-1".into(),
            user: "00u-alice".into(),
            sub: "00u-alice".into(),
            email: "alice@example.com".into(),
            groups: vec!["admins".into(), "everyone".into()],
            preferred_username: "alice".into(),
            claims: BTreeMap::new(),
            rule_claims: BTreeMap::new(),
            created_at: now,
            expires_at: now + 3600,
            refreshed_at: now,
            active_at: now,
            tokens_expire_at: Some(now + 600),
            id_token: None,
            access_token: None,
            refresh_token: None,
        }
    }

    fn header(cookies: &[(String, String)]) -> String {
        cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn round_trip() {
        let c = codec();
        let s = alice(1000);
        let cookies = c.encode(&s, &mut SeededEntropy(1)).unwrap_or_default();
        assert_eq!(cookies.len(), 1);
        let h = header(&cookies);
        assert_eq!(
            c.decode(&RequestCookies::parse(Some(h.as_bytes())), 1001)
                .map(|o| o.session),
            Ok(Rc::new(s))
        );
    }

    #[test]
    fn the_idle_step_is_a_tenth_of_the_timeout_between_one_second_and_five_minutes() {
        let step = |secs| Idle::new(std::time::Duration::from_secs(secs)).step;
        assert_eq!(
            (step(5), step(100), step(7200), step(86400)),
            (1, 10, 300, 300)
        );
        let idle = Idle::new(std::time::Duration::from_secs(100));
        let s = alice(1000);
        assert!(!idle.ended(&s, 1099) && idle.ended(&s, 1100));
        assert!(!idle.touch_due(&s, 1009) && idle.touch_due(&s, 1010));
    }

    /// A codec of the same cookie name with another secret.
    fn foreign_codec() -> SessionCodec {
        let other = CookieSecret::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let Ok(other) = other else { unreachable!() };
        SessionCodec::new(
            Sealer::new(&other.derive("session")),
            Vec::new(),
            "_oauth2_proxy".into(),
            16,
        )
    }

    /// Decodes a `Cookie` header at `now`, to the user it opens as.
    fn user_of(c: &SessionCodec, h: &str, now: UnixTime) -> Result<String, SessionError> {
        c.decode(&RequestCookies::parse(Some(h.as_bytes())), now)
            .map(|o| o.session.user.clone())
    }

    #[test]
    fn a_cached_session_is_judged_as_strictly_as_a_decrypt() {
        let c = codec();
        let h = header(
            &c.encode(&alice(1000), &mut SeededEntropy(1))
                .unwrap_or_default(),
        );
        assert_eq!(user_of(&c, &h, 1001), Ok("00u-alice".into()));
        assert_eq!(c.opened.borrow().len(), 1, "opened once, then cached");
        // Its expiry still counts, and an expired entry leaves the cache.
        assert_eq!(user_of(&c, &h, 4600), Err(SessionError::Expired));
        assert!(c.opened.borrow().is_empty());
        // Bytes that differ from a cached cookie in one place are opened, and refused.
        assert_eq!(user_of(&c, &h, 1001), Ok("00u-alice".into()));
        let Some(last) = h.bytes().last() else {
            unreachable!()
        };
        let flipped = format!(
            "{}{}",
            &h[..h.len() - 1],
            if last == b'A' { 'B' } else { 'A' }
        );
        assert_eq!(user_of(&c, &flipped, 1001), Err(SessionError::Unreadable));
        let longer = format!("{h}A");
        assert_eq!(user_of(&c, &longer, 1001), Err(SessionError::Unreadable));
    }

    #[test]
    fn each_cookie_opens_as_its_own_user_whatever_is_cached() {
        let c = codec();
        let mut bob = alice(1000);
        bob.user = "00u-bob".into();
        let a = header(
            &c.encode(&alice(1000), &mut SeededEntropy(1))
                .unwrap_or_default(),
        );
        let b = header(&c.encode(&bob, &mut SeededEntropy(2)).unwrap_or_default());
        for _ in 0..3 {
            assert_eq!(user_of(&c, &a, 1001), Ok("00u-alice".into()));
            assert_eq!(user_of(&c, &b, 1001), Ok("00u-bob".into()));
        }
        // A cache of another secret's codec opens neither.
        let foreign = foreign_codec();
        assert_eq!(user_of(&foreign, &a, 1001), Err(SessionError::Unreadable));
    }

    #[test]
    fn sessions_too_large_for_the_cache_are_opened_each_time() {
        let c = codec();
        let mut big = alice(1000);
        big.claims
            .insert("long".into(), "x".repeat(MAX_CACHED_COOKIE));
        let h = header(&c.encode(&big, &mut SeededEntropy(1)).unwrap_or_default());
        assert_eq!(user_of(&c, &h, 1001), Ok("00u-alice".into()));
        assert!(c.opened.borrow().is_empty());
    }

    #[test]
    fn expired_tampered_and_foreign_sessions_are_not_sessions() {
        let c = codec();
        let cookies = c
            .encode(&alice(1000), &mut SeededEntropy(1))
            .unwrap_or_default();
        let h = header(&cookies);
        assert_eq!(
            c.decode(&RequestCookies::parse(Some(h.as_bytes())), 4600),
            Err(SessionError::Expired)
        );
        let tampered = h.replacen("=A", "=B", 1);
        let tampered = if tampered == h {
            h.replacen("=", "=A", 1)
        } else {
            tampered
        };
        assert_eq!(
            c.decode(&RequestCookies::parse(Some(tampered.as_bytes())), 1001),
            Err(SessionError::Unreadable)
        );
        assert_eq!(
            c.decode(&RequestCookies::parse(Some(b"x=1")), 1001),
            Err(SessionError::Absent)
        );
        let foreign = foreign_codec();
        let f = header(
            &foreign
                .encode(&alice(1000), &mut SeededEntropy(2))
                .unwrap_or_default(),
        );
        assert_eq!(
            c.decode(&RequestCookies::parse(Some(f.as_bytes())), 1001),
            Err(SessionError::Unreadable)
        );
    }

    #[test]
    fn large_sessions_split_and_join() {
        let c = codec();
        let mut s = alice(1000);
        s.groups = (0..50)
            .map(|i| format!("group-with-a-long-name-{i:03}"))
            .collect();
        s.id_token = Some(IdToken::new("i".repeat(1500)));
        s.access_token = Some(AccessToken::new("a".repeat(1500)));
        s.refresh_token = Some(RefreshToken::new("r".repeat(300)));
        let cookies = c.encode(&s, &mut SeededEntropy(3)).unwrap_or_default();
        assert!(cookies.len() >= 2, "{}", cookies.len());
        assert_eq!(cookies[0].0, "_oauth2_proxy_0");
        assert!(cookies.iter().all(|(_, v)| v.len() <= MAX_COOKIE_VALUE));
        let h = format!("other=1; {}", header(&cookies));
        let parsed = RequestCookies::parse(Some(h.as_bytes()));
        assert_eq!(c.decode(&parsed, 1001).map(|o| o.session), Ok(Rc::new(s)));
        assert_eq!(c.present(&parsed).count(), cookies.len());
        // A missing middle part breaks the seal: the session is unreadable, never partial.
        let without_first = header(cookies.get(1..).unwrap_or_default());
        assert!(c
            .decode(&RequestCookies::parse(Some(without_first.as_bytes())), 1001)
            .is_err());
    }

    #[test]
    fn a_previous_secret_still_opens_and_marks_the_session_for_reissue() {
        let old = codec();
        let sealed = old
            .encode(&alice(1000), &mut SeededEntropy(4))
            .unwrap_or_default();
        let h = header(&sealed);
        let new_secret = CookieSecret::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let old_secret = CookieSecret::from_base64(crate::config::tests::COOKIE_SECRET);
        let (Ok(new_secret), Ok(old_secret)) = (new_secret, old_secret) else {
            unreachable!()
        };
        let rotated = SessionCodec::new(
            Sealer::new(&new_secret.derive("session")),
            vec![Sealer::new(&old_secret.derive("session"))],
            "_oauth2_proxy".into(),
            16,
        );
        let opened = rotated.decode(&RequestCookies::parse(Some(h.as_bytes())), 1001);
        assert_eq!(opened.as_ref().map(|o| o.stale_key), Ok(true));
        let fresh = header(
            &rotated
                .encode(&alice(1000), &mut SeededEntropy(5))
                .unwrap_or_default(),
        );
        assert_eq!(
            rotated
                .decode(&RequestCookies::parse(Some(fresh.as_bytes())), 1001)
                .map(|o| o.stale_key),
            Ok(false)
        );
        // The old deployment cannot read the new cookie.
        assert_eq!(
            old.decode(&RequestCookies::parse(Some(fresh.as_bytes())), 1001)
                .err(),
            Some(SessionError::Unreadable)
        );
    }

    #[test]
    fn a_foreign_cookie_of_the_same_name_does_not_hide_ours() {
        let c = codec();
        let ours = header(
            &c.encode(&alice(1000), &mut SeededEntropy(9))
                .unwrap_or_default(),
        );
        let other = CookieSecret::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let Ok(other) = other else { unreachable!() };
        let parent = SessionCodec::new(
            Sealer::new(&other.derive("session")),
            Vec::new(),
            "_oauth2_proxy".into(),
            16,
        );
        let theirs = header(
            &parent
                .encode(&alice(1000), &mut SeededEntropy(10))
                .unwrap_or_default(),
        );
        for h in [
            format!("{theirs}; {ours}"),
            format!("{ours}; {theirs}"),
            format!("_oauth2_proxy=garbage; {ours}"),
        ] {
            assert!(
                c.decode(&RequestCookies::parse(Some(h.as_bytes())), 1001)
                    .is_ok(),
                "{h}"
            );
        }
        assert_eq!(
            c.decode(&RequestCookies::parse(Some(theirs.as_bytes())), 1001)
                .err(),
            Some(SessionError::Unreadable)
        );
    }

    #[test]
    fn session_debug_never_shows_a_token() {
        let mut s = alice(0);
        s.id_token = Some(IdToken::new("eyJ-id-token"));
        s.refresh_token = Some(RefreshToken::new("refresh-123"));
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("eyJ-id-token") && !shown.contains("refresh-123"),
            "{shown}"
        );
    }

    #[test]
    fn owns_only_its_names() {
        let c = codec();
        assert!(c.owns("_oauth2_proxy") && c.owns("_oauth2_proxy_0") && c.owns("_oauth2_proxy_12"));
        assert!(
            !c.owns("_oauth2_proxy_abc_csrf") && !c.owns("_oauth2_proxy_") && !c.owns("_oauth2")
        );
    }
}
