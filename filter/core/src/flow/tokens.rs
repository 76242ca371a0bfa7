//! One place that turns a token endpoint's answer into a session, for the login and for every
//! refresh alike, so a rule on the identity (email verification, `sub` continuity, which claims
//! and tokens are kept, expiry) cannot hold on one path and be forgotten on the other.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::callback::{LoginError, TokenResponse};
use super::Gate;
use crate::env::{Entropy, UnixTime};
use crate::identity::Identity;
use crate::jwt::Claims;
use crate::secret::IdToken;
use crate::session::Session;

impl Gate {
    /// The identity a verified ID token gives, under the configured rules.
    pub(crate) fn identity(&self, claims: &Claims) -> Result<Identity, LoginError> {
        let id = Identity::from_claims(&claims.subject, &claims.other, &self.config.claims);
        if id.email_verified == Some(false) && !self.config.allow_unverified_email {
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
            let known = if old.sub.is_empty() && self.config.claims.user_id == "sub" {
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
            if self.config.set_authorization_header || self.config.sign_out_at_idp {
                s.id_token = Some(id_token.clone());
            }
        }
        if let Some(expires_in) = tokens.expires_in {
            s.tokens_expire_at = Some(now.saturating_add(expires_in));
        }
        if self.config.pass_access_token && tokens.access_token.is_some() {
            s.access_token = tokens.access_token.clone();
        }
        if !self.config.cookie.refresh.is_zero() && tokens.refresh_token.is_some() {
            s.refresh_token = tokens.refresh_token.clone();
        }
        s.refreshed_at = now;
        Ok(())
    }
}
