//! The session: the verified identity (and, only when a header needs them, the tokens), sealed
//! into the session cookie. A session too large for one cookie is split into `<name>_0`,
//! `<name>_1`, … and joined on read, as OAuth2-Proxy does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
    #[serde(rename = "c")]
    pub created_at: UnixTime,
    #[serde(rename = "x")]
    pub expires_at: UnixTime,
    /// When the tokens were last obtained (login or refresh); `cookie_refresh` counts from here.
    #[serde(rename = "r", default)]
    pub refreshed_at: UnixTime,
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

/// Why no session was read. All mean "not signed in"; the variant is for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    Absent,
    /// Tampered, sealed with another secret, or not ours at all.
    Unreadable,
    Expired,
}

impl SessionError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Absent => "no_session",
            Self::Unreadable => "session_unreadable",
            Self::Expired => "session_expired",
        }
    }
}

/// A session read from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub session: Session,
    /// Sealed with a previous `cookie_secret`: re-issue it with the current one.
    pub stale_key: bool,
}

/// Seals sessions with the current key and opens them with the current or a previous one.
#[derive(Debug, Clone)]
pub struct SessionCodec {
    /// The current key first, then previous ones.
    sealers: Vec<Sealer>,
    name: String,
}

impl SessionCodec {
    pub fn new(current: Sealer, previous: Vec<Sealer>, name: String) -> Self {
        let mut sealers = vec![current];
        sealers.extend(previous);
        Self { sealers, name }
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
    fn candidates(&self, cookies: &RequestCookies<'_>) -> Vec<String> {
        let mut out: Vec<String> = cookies
            .get_all(&self.name)
            .take(MAX_CANDIDATES)
            .map(str::to_string)
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
            if !out.contains(&joined) {
                out.push(joined);
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
                Err(SessionError::Expired) => why = SessionError::Expired,
                Err(_) => {}
            }
        }
        Err(why)
    }

    fn open(&self, sealed: &str, now: UnixTime) -> Result<Opened, SessionError> {
        let (index, plain) = self
            .sealers
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.open(sealed, &self.name).ok().map(|p| (i, p)))
            .ok_or(SessionError::Unreadable)?;
        let session: Session =
            serde_json::from_slice(&plain).map_err(|_| SessionError::Unreadable)?;
        if session.expires_at <= now {
            return Err(SessionError::Expired);
        }
        Ok(Opened {
            session,
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
            created_at: now,
            expires_at: now + 3600,
            refreshed_at: now,
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
            Ok(s)
        );
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
        let other = CookieSecret::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let Ok(other) = other else { unreachable!() };
        let foreign = SessionCodec::new(
            Sealer::new(&other.derive("session")),
            Vec::new(),
            "_oauth2_proxy".into(),
        );
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
        assert_eq!(c.decode(&parsed, 1001).map(|o| o.session), Ok(s));
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
