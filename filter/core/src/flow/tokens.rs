//! The token endpoint, and one place that turns its answer into a session, for the login and
//! for every refresh alike, so a rule on the identity (email verification, `sub` continuity,
//! which claims and tokens are kept, expiry) cannot hold on one path and be forgotten on the
//! other.

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use url::form_urlencoded;

use super::{safe_code, Gate, LoginError};
use crate::callout::{CallOut, CallResult};
use crate::config::ClientAuthMethod;
use crate::env::{Entropy, UnixTime};
use crate::identity::Identity;
use crate::jwt::{verify_id_token, Claims, IdTokenCheck, VerifyError};
use crate::provider::Provider;
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::session::Session;

/// Clock difference allowed with the IdP when checking token times.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// What the token endpoint returned (RFC 6749 §5.1). Tokens never print.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub id_token: Option<IdToken>,
    #[serde(default)]
    pub access_token: Option<AccessToken>,
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// Seconds; a value that is not a non-negative integer makes the answer invalid.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
}

/// A token endpoint answer: the tokens, or why there are none.
pub(crate) fn parse_token_response(result: CallResult<'_>) -> Result<TokenResponse, LoginError> {
    let status = result.status.ok_or(LoginError::IdpUnreachable)?;
    // Envoy answers a call-out it could not deliver with its own 502/503/504 (connect error,
    // reset, timeout); the IdP itself being down looks the same.
    if matches!(status, 502..=504) {
        return Err(LoginError::IdpUnreachable);
    }
    if result.oversized {
        return Err(LoginError::TokenResponseInvalid);
    }
    if status != 200 {
        let code = serde_json::from_slice::<OAuthError>(result.body)
            .map(|e| safe_code(&e.error))
            .unwrap_or_default();
        return Err(LoginError::ExchangeRefused(status, code));
    }
    serde_json::from_slice(result.body).map_err(|_| LoginError::TokenResponseInvalid)
}

impl Gate {
    /// A form POST to the token endpoint with the client's authentication (RFC 6749 §2.3.1).
    pub(crate) fn token_call(
        &self,
        provider: &Provider,
        mut form: form_urlencoded::Serializer<'_, String>,
    ) -> CallOut {
        let mut extra = Vec::new();
        match self.config.client.auth_method {
            ClientAuthMethod::Basic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and
                // base64-encoded.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!(
                    "{}:{}",
                    enc(&self.config.client.id),
                    enc(self.config.client.secret.expose())
                );
                extra.push((
                    "authorization".to_string(),
                    format!("Basic {}", STANDARD.encode(pair)),
                ));
            }
            ClientAuthMethod::Post => {
                form.append_pair("client_id", &self.config.client.id)
                    .append_pair("client_secret", self.config.client.secret.expose());
            }
        }
        CallOut::post_form(
            &provider.token_endpoint,
            self.config.provider.idp_timeout,
            form.finish(),
            extra,
        )
    }

    /// Verifies an ID token from this provider; `nonce` at login only.
    pub(crate) fn verify(
        &self,
        id_token: &str,
        provider: &Provider,
        nonce: Option<&str>,
        now: UnixTime,
    ) -> Result<Claims, VerifyError> {
        verify_id_token(
            id_token,
            &provider.keys,
            &IdTokenCheck {
                issuer: &self.config.provider.issuer,
                client_id: &self.config.client.id,
                nonce,
                allowed: &provider.algorithms,
                now,
                skew_secs: CLOCK_SKEW_SECS,
                bearer: false,
            },
        )
    }

    /// The claims `claim_headers` needs, kept in the session.
    pub(crate) fn claim_values(&self, claims: &Claims) -> BTreeMap<String, String> {
        let names = self
            .config
            .headers
            .claim_headers
            .iter()
            .map(|(_, c)| c.as_str());
        crate::identity::claim_values(&claims.other, &claims.subject, names)
    }

    /// The identity a verified ID token gives, under the configured rules.
    pub(crate) fn identity(&self, claims: &Claims) -> Result<Identity, LoginError> {
        let id = Identity::from_claims(&claims.subject, &claims.other, &self.config.headers.claims);
        if id.email_verified == Some(false) && !self.config.headers.allow_unverified_email {
            return Err(LoginError::EmailUnverified);
        }
        Ok(id)
    }

    /// A new session from a login's tokens and its verified ID token.
    pub(crate) fn new_session(
        &self,
        tokens: &TokenResponse,
        id_token: &IdToken,
        claims: &Claims,
        now: UnixTime,
        rng: &mut dyn Entropy,
    ) -> Result<Session, LoginError> {
        let session_id = rng
            .bytes32()
            .map_err(|_| LoginError::TokenResponseInvalid)?;
        let mut s = Session {
            id: URL_SAFE_NO_PAD.encode(session_id.get(..16).unwrap_or_default()),
            user: String::new(),
            sub: String::new(),
            email: String::new(),
            groups: Vec::new(),
            preferred_username: String::new(),
            claims: Default::default(),
            created_at: now,
            expires_at: now.saturating_add(self.config.cookie.expire.as_secs()),
            refreshed_at: now,
            tokens_expire_at: None,
            id_token: None,
            access_token: None,
            refresh_token: None,
        };
        self.take_tokens(&mut s, tokens, Some((id_token, claims)), now)?;
        Ok(s)
    }

    /// The session after a refresh: the same session (id, creation, expiry) with the new
    /// tokens and, when the answer has an ID token, the identity it gives, which must be the
    /// same user's.
    pub(crate) fn refreshed_session(
        &self,
        old: &Session,
        tokens: &TokenResponse,
        verified: Option<(&IdToken, &Claims)>,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        let mut s = old.clone();
        if let Some((_, claims)) = verified {
            // Sessions sealed before `sub` was kept carry it as the user id by default.
            let known = if old.sub.is_empty() && self.config.headers.claims.user_id == "sub" {
                &old.user
            } else {
                &old.sub
            };
            if claims.subject != *known {
                return Err(LoginError::SubjectChanged);
            }
        }
        self.take_tokens(&mut s, tokens, verified, now)?;
        Ok(s)
    }

    /// Writes what a token answer carries into a session: the identity of its ID token, the
    /// tokens a header or a later refresh needs (and no others), and when they expire.
    fn take_tokens(
        &self,
        s: &mut Session,
        tokens: &TokenResponse,
        verified: Option<(&IdToken, &Claims)>,
        now: UnixTime,
    ) -> Result<(), LoginError> {
        if let Some((id_token, claims)) = verified {
            let id = self.identity(claims)?;
            (s.user, s.email, s.groups, s.preferred_username) =
                (id.user, id.email, id.groups, id.preferred_username);
            s.sub = claims.subject.clone();
            s.claims = self.claim_values(claims);
            s.tokens_expire_at = Some(claims.expires_at);
            // Kept only when a header or the IdP logout (id_token_hint) needs it.
            if self.config.headers.set_authorization_header || self.config.login.sign_out_at_idp {
                s.id_token = Some(id_token.clone());
            }
        }
        if let Some(expires_in) = tokens.expires_in {
            s.tokens_expire_at = Some(now.saturating_add(expires_in));
        }
        if self.config.headers.pass_access_token && tokens.access_token.is_some() {
            s.access_token = tokens.access_token.clone();
        }
        if !self.config.cookie.refresh.is_zero() && tokens.refresh_token.is_some() {
            s.refresh_token = tokens.refresh_token.clone();
        }
        s.refreshed_at = now;
        Ok(())
    }
}
