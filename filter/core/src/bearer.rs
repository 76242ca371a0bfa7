//! Bearer tokens (`skip_jwt_bearer_tokens`, as OAuth2-Proxy): a request with
//! `Authorization: Bearer <JWT>` is verified in-process — signature by the issuer's JWKS, `iss`,
//! `aud`, `exp` — against the main issuer (audience `client_id`) or an `extra_jwt_issuers`
//! entry. RSA verification in Wasm costs about a millisecond, so verified tokens are cached
//! (bounded, keyed by the token's SHA-256, never past the token's `exp`).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::cache::BoundedCache;
use crate::env::UnixTime;
use crate::flow::CLOCK_SKEW_SECS;
use crate::identity::{ClaimReading, Identity, RuleClaims};
use crate::jwt::{verify_id_token, IdTokenCheck, VerifyError};
use crate::provider::Provider;

/// How many verified tokens one VM keeps.
pub const CACHE_CAPACITY: usize = 1024;
/// Longer tokens are verified on every request rather than cached (a bound on memory).
const MAX_CACHED_TOKEN: usize = 4096;

/// Why a bearer token was refused (401 `invalid_token`), or could not be checked yet (503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    NotJwt,
    UnknownIssuer,
    /// The issuer's keys are not loaded yet.
    NotReady,
    /// No key with the token's `kid` in the keys of the issuer held by `loader`: they may be
    /// stale (refetched once, then refused as `unknown_kid`).
    UnknownKey {
        loader: usize,
    },
    /// `email_verified: false`, as a login refuses it.
    EmailUnverified,
    Invalid(VerifyError),
}

impl BearerError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotJwt => "bearer_not_jwt",
            Self::UnknownIssuer => "bearer_unknown_issuer",
            Self::NotReady => "provider_not_ready",
            Self::UnknownKey { .. } => VerifyError::UnknownKey.code(),
            Self::EmailUnverified => "email_unverified",
            Self::Invalid(e) => e.code(),
        }
    }
}

/// A verified bearer token's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerIdentity {
    pub user: String,
    pub email: String,
    pub groups: Vec<String>,
    pub preferred_username: String,
    pub email_verified: Option<bool>,
    pub claims: BTreeMap<String, String>,
    /// Values of the claims the authorization rules read.
    pub rule_claims: RuleClaims,
    pub expires_at: UnixTime,
}

/// An issuer whose tokens are accepted, with the audience they must carry and the provider
/// whose keys verify them.
#[derive(Debug, Clone, Copy)]
pub struct TrustedIssuer<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub provider: Option<&'a Provider>,
    /// Which provider loader holds these keys (for a refetch on an unknown `kid`).
    pub loader: usize,
}

/// The `Authorization: Bearer` token, if the header has that scheme.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The token's `iss`, unverified: only to pick the keys.
/// The `iss` and `aud` a token claims, before anything is verified: they only pick which
/// issuer's check runs (each check then verifies the signature and every claim itself).
fn unverified_issuer(token: &str) -> Option<(String, Vec<String>)> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let iss = v.get("iss")?.as_str()?.to_string();
    let aud = match v.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Some((iss, aud))
}

/// Verifies a bearer token against the issuers it may come from.
pub fn verify_bearer(
    token: &str,
    issuers: &[TrustedIssuer<'_>],
    reading: &ClaimReading<'_>,
    now: UnixTime,
) -> Result<BearerIdentity, BearerError> {
    if token.split('.').count() != 3 {
        return Err(BearerError::NotJwt);
    }
    let (iss, aud) = unverified_issuer(token).ok_or(BearerError::NotJwt)?;
    let mut candidates: Vec<&TrustedIssuer<'_>> =
        issuers.iter().filter(|t| t.issuer == iss).collect();
    if candidates.is_empty() {
        return Err(BearerError::UnknownIssuer);
    }
    // One signature check, not one per audience of the issuer (each costs a public-key
    // operation): the audiences the token names are tried; none named, every one (each then
    // fails on its audience after the signature).
    let named: Vec<&TrustedIssuer<'_>> = candidates
        .iter()
        .copied()
        .filter(|t| aud.iter().any(|a| a == t.audience))
        .collect();
    if !named.is_empty() {
        candidates = named;
    }
    let mut last = BearerError::NotReady;
    for t in candidates {
        let Some(provider) = t.provider else {
            continue;
        };
        let check = IdTokenCheck {
            issuer: t.issuer,
            client_id: t.audience,
            nonce: None,
            allowed: &provider.algorithms,
            now,
            skew_secs: CLOCK_SKEW_SECS,
            bearer: true,
        };
        match verify_id_token(token, &provider.keys, &check) {
            Ok(claims) => {
                let id = Identity::from_claims(&claims.subject, &claims.other, reading.names);
                let (header_claims, rule_claims) = reading.values(&claims.subject, &claims.other);
                return Ok(BearerIdentity {
                    user: id.user,
                    email: id.email,
                    groups: id.groups,
                    preferred_username: id.preferred_username,
                    email_verified: id.email_verified,
                    claims: header_claims,
                    rule_claims,
                    expires_at: claims.expires_at,
                });
            }
            // Stale keys are worth a refetch whatever another audience said.
            Err(VerifyError::UnknownKey) => last = BearerError::UnknownKey { loader: t.loader },
            Err(e) if !matches!(last, BearerError::UnknownKey { .. }) => {
                last = BearerError::Invalid(e)
            }
            Err(_) => {}
        }
    }
    Err(last)
}

/// Verified tokens by their exact bytes, each until its own `exp`.
#[derive(Debug)]
pub struct BearerCache {
    entries: BoundedCache<BearerIdentity>,
}

impl Default for BearerCache {
    fn default() -> Self {
        Self {
            entries: BoundedCache::new(CACHE_CAPACITY, MAX_CACHED_TOKEN),
        }
    }
}

impl BearerCache {
    /// A cached identity whose token has not expired.
    pub fn get(&mut self, token: &str, now: UnixTime) -> Option<BearerIdentity> {
        match self.entries.get(token.as_bytes()) {
            Some(id) if now < id.expires_at => Some(id.clone()),
            Some(_) => {
                self.entries.remove(token.as_bytes());
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, token: &str, id: BearerIdentity) {
        self.entries.insert(token.as_bytes(), id);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::ClaimPath;
    use crate::config::ClaimNames;
    use crate::jwt::verify::testing::{forge, TestIdp, CLIENT_ID, ISSUER, NOW};
    use crate::provider::tests::loaded;
    use serde_json::json;

    fn path(p: &str) -> ClaimPath {
        ClaimPath::parse(p).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn names() -> ClaimNames {
        ClaimNames {
            email: path("email"),
            groups: path("groups"),
            user_id: path("sub"),
            userinfo: crate::config::UserInfoMode::WhenMissing,
        }
    }

    fn access_token(idp: &TestIdp, aud: &str, extra: serde_json::Value) -> String {
        let mut c = TestIdp::claims(extra).with_audience(aud);
        c.nonce = None;
        idp.rs256(c)
    }

    #[test]
    fn bearer_scheme_is_recognised() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic YTpi")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn access_tokens_verify_for_their_audience_and_each_rejection_is_named() {
        let idp = TestIdp::new();
        let provider = loaded(&idp);
        let issuers = [CLIENT_ID, "api://default"].map(|audience| TrustedIssuer {
            issuer: ISSUER,
            audience,
            provider: Some(&provider),
            loader: 0,
        });
        let (names, headers, rules) = reading_parts();
        let reading = ClaimReading {
            names: &names,
            headers: &headers,
            rules: &rules,
        };
        let v = |t: &str| verify_bearer(t, &issuers, &reading, NOW);
        let ok = v(&access_token(
            &idp,
            "api://default",
            json!({"team": "core", "realm_access": {"roles": ["admin"]}}),
        ));
        assert_eq!(
            ok.as_ref()
                .map(|i| (i.user.as_str(), i.claims.get("team").map(String::as_str))),
            Ok(("00u-alice", Some("core")))
        );
        assert_eq!(
            ok.map(|i| i.rule_claims)
                .unwrap_or_default()
                .get("realm_access.roles"),
            Some(&vec!["admin".to_string()])
        );
        assert!(v(&access_token(&idp, CLIENT_ID, json!({}))).is_ok());
        assert_eq!(
            v(&access_token(&idp, "api://other", json!({}))).err(),
            Some(BearerError::Invalid(VerifyError::AudienceMismatch))
        );
        let mut expired = TestIdp::claims(json!({})).with_audience("api://default");
        expired.expires_at = Some(jwt_simple::prelude::Duration::from_secs(NOW - 120));
        assert_eq!(
            v(&idp.rs256(expired)).err(),
            Some(BearerError::Invalid(VerifyError::Expired))
        );
        let rotated = TestIdp::new().ec.with_key_id("ec-new");
        let t = jwt_simple::prelude::ECDSAP256KeyPairLike::sign(
            &rotated,
            TestIdp::claims(json!({})).with_audience("api://default"),
        )
        .unwrap_or_default();
        assert_eq!(v(&t).err(), Some(BearerError::UnknownKey { loader: 0 }));
        let foreign_sig = TestIdp::new().ec.with_key_id("ec-1");
        let t = jwt_simple::prelude::ECDSAP256KeyPairLike::sign(
            &foreign_sig,
            TestIdp::claims(json!({})).with_audience("api://default"),
        )
        .unwrap_or_default();
        assert_eq!(
            v(&t).err(),
            Some(BearerError::Invalid(VerifyError::BadSignature))
        );
        let none = forge(
            json!({"alg": "none"}),
            &json!({"iss": ISSUER, "aud": "api://default", "sub": "x", "exp": NOW + 60}),
        );
        assert_eq!(
            v(&none).err(),
            Some(BearerError::Invalid(VerifyError::AlgorithmNone))
        );
        let stranger = forge(
            json!({"alg": "RS256"}),
            &json!({"iss": "https://evil.example", "aud": "api://default"}),
        );
        assert_eq!(v(&stranger).err(), Some(BearerError::UnknownIssuer));
        assert_eq!(v("opaque-token").err(), Some(BearerError::NotJwt));
        assert_eq!(v("a.b.c").err(), Some(BearerError::NotJwt));
    }

    /// A header claim and a rule claim, as `claim_headers` and `allowed_claims` configure them.
    fn reading_parts() -> (ClaimNames, [(String, ClaimPath); 1], [ClaimPath; 1]) {
        (
            names(),
            [("x-team".to_string(), path("team"))],
            [path("realm_access.roles")],
        )
    }

    #[test]
    fn a_token_of_an_issuer_whose_keys_are_not_loaded_is_not_ready() {
        let idp = TestIdp::new();
        let (names, headers, rules) = reading_parts();
        let reading = ClaimReading {
            names: &names,
            headers: &headers,
            rules: &rules,
        };
        let not_loaded = [TrustedIssuer {
            issuer: ISSUER,
            audience: CLIENT_ID,
            provider: None,
            loader: 0,
        }];
        let t = access_token(&idp, CLIENT_ID, json!({}));
        assert_eq!(
            verify_bearer(&t, &not_loaded, &reading, NOW).err(),
            Some(BearerError::NotReady)
        );
    }

    #[test]
    fn the_cache_never_serves_a_token_past_its_exp_and_stays_bounded() {
        let mut cache = BearerCache::default();
        let id = |exp| BearerIdentity {
            user: "u".into(),
            email: String::new(),
            groups: vec![],
            preferred_username: String::new(),
            email_verified: None,
            claims: BTreeMap::new(),
            rule_claims: RuleClaims::new(),
            expires_at: exp,
        };
        cache.insert("t1", id(100));
        assert!(cache.get("t1", 99).is_some());
        assert!(cache.get("t1", 100).is_none());
        assert!(cache.is_empty(), "expired entries are dropped on read");
        for i in 0..(CACHE_CAPACITY * 3) {
            cache.insert(&i.to_string(), id(1_000));
            assert!(cache.len() <= CACHE_CAPACITY);
        }
    }
}
