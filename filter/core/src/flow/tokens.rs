//! The token endpoint, and one place that turns its answer into a session, for the login and
//! for every refresh alike, so a rule on the identity (email verification, `sub` continuity,
//! which claims and tokens are kept, expiry) cannot hold on one path and be forgotten on the
//! other.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;
use url::form_urlencoded;

use super::{safe_code, App, Gate, LoginError};
use crate::callout::{CallOut, CallResult};
use crate::client_key::ASSERTION_TYPE;
use crate::config::{ClientAuth, Endpoint};
use crate::env::{Entropy, Env, UnixTime};
use crate::identity::{ClaimReading, Identity};
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
    let tokens: TokenResponse =
        serde_json::from_slice(result.body).map_err(|_| LoginError::TokenResponseInvalid)?;
    // RFC 6749 A.12: an access token is VSCHARs (%x20-7E). It goes into headers as it is (the
    // UserInfo call-out's `Authorization`), where a CR or LF would split them.
    let vschars = |t: &AccessToken| t.expose().bytes().all(|b| (0x20..=0x7e).contains(&b));
    if tokens.access_token.as_ref().is_some_and(|t| !vschars(t)) {
        return Err(LoginError::TokenResponseInvalid);
    }
    Ok(tokens)
}

impl Gate {
    /// A form POST to the token endpoint with the client's authentication; `None` when a
    /// client assertion could not be made (no randomness for its `jti`).
    pub(crate) fn token_call(
        &self,
        app: &App,
        provider: &Provider,
        form: form_urlencoded::Serializer<'_, String>,
        env: &mut Env<'_>,
    ) -> Option<CallOut> {
        self.client_call(app, &provider.token_endpoint, (form, false), env)
    }

    /// A form POST to one of the IdP's endpoints for the client (token, pushed authorization
    /// request) with the client's authentication: RFC 6749 §2.3.1 with the secret, or a
    /// client assertion (RFC 7523 §2.2) whose audience is that endpoint. `has_client_id`: the
    /// form carries `client_id` already (a pushed authorization request), which must not be
    /// sent twice.
    pub(crate) fn client_call(
        &self,
        app: &App,
        endpoint: &Endpoint,
        (mut form, has_client_id): (form_urlencoded::Serializer<'_, String>, bool),
        env: &mut Env<'_>,
    ) -> Option<CallOut> {
        let client = &app.cfg.client;
        let mut extra = Vec::new();
        match &client.auth {
            ClientAuth::SecretBasic(secret) => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and
                // base64-encoded.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&client.id), enc(secret.expose()));
                extra.push((
                    "authorization".to_string(),
                    format!("Basic {}", STANDARD.encode(pair)),
                ));
            }
            ClientAuth::SecretPost(secret) => {
                if !has_client_id {
                    form.append_pair("client_id", &client.id);
                }
                form.append_pair("client_secret", secret.expose());
            }
            ClientAuth::PrivateKeyJwt(key) => {
                let jti = URL_SAFE_NO_PAD.encode(env.rng.bytes32().ok()?);
                let aud = endpoint.url.as_str();
                let jwt = key.assertion(&client.id, aud, &jti, env.now.secs())?;
                if !has_client_id {
                    form.append_pair("client_id", &client.id);
                }
                form.append_pair("client_assertion_type", ASSERTION_TYPE)
                    .append_pair("client_assertion", &jwt);
            }
        }
        Some(CallOut::post_form(
            endpoint,
            app.cfg.provider.idp_timeout,
            form.finish(),
            extra,
        ))
    }

    /// Verifies an ID token from this provider; `nonce` at login only.
    pub(crate) fn verify(
        &self,
        app: &App,
        id_token: &str,
        provider: &Provider,
        nonce: Option<&str>,
        now: UnixTime,
    ) -> Result<Claims, VerifyError> {
        verify_id_token(
            id_token,
            &provider.keys,
            &IdTokenCheck {
                issuer: &app.cfg.provider.issuer,
                client_id: &app.cfg.client.id,
                nonce,
                allowed: &provider.algorithms,
                now,
                skew_secs: CLOCK_SKEW_SECS,
                bearer: false,
            },
        )
    }

    /// What this provider's sessions and bearer tokens read from a verified token: the
    /// identity's claims, `claim_headers`' and the authorization rules'.
    pub(crate) fn claim_reading<'a>(&'a self, app: &'a App) -> ClaimReading<'a> {
        ClaimReading {
            names: &app.cfg.claims,
            headers: &self.config.headers.claim_headers,
            rules: self.config.rules.policies.claim_paths(),
        }
    }

    /// The identity a verified ID token gives, under the configured rules.
    pub(crate) fn identity(&self, app: &App, claims: &Claims) -> Result<Identity, LoginError> {
        let id = Identity::from_claims(&claims.subject, &claims.other, &app.cfg.claims);
        if id.email_verified == Some(false) && !self.config.headers.allow_unverified_email {
            return Err(LoginError::EmailUnverified);
        }
        Ok(id)
    }

    /// A new session from a login's tokens and its verified ID token.
    pub(crate) fn new_session(
        &self,
        app: &App,
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
            rule_claims: Default::default(),
            created_at: now,
            expires_at: now.saturating_add(self.config.cookie.expire.as_secs()),
            refreshed_at: now,
            active_at: now,
            tokens_expire_at: None,
            id_token: None,
            access_token: None,
            refresh_token: None,
        };
        self.take_tokens(app, &mut s, tokens, Some((id_token, claims)), now)?;
        Ok(s)
    }

    /// The session after a refresh: the same session (id, creation, expiry) with the new
    /// tokens and, when the answer has an ID token, the identity it gives, which must be the
    /// same user's.
    pub(crate) fn refreshed_session(
        &self,
        app: &App,
        old: &Session,
        tokens: &TokenResponse,
        verified: Option<(&IdToken, &Claims)>,
        now: UnixTime,
    ) -> Result<Session, LoginError> {
        let mut s = old.clone();
        if let Some((_, claims)) = verified {
            // Sessions sealed before `sub` was kept carry it as the user id by default.
            let known = if old.sub.is_empty() && app.cfg.claims.user_id.as_str() == "sub" {
                &old.user
            } else {
                &old.sub
            };
            if claims.subject != *known {
                return Err(LoginError::SubjectChanged);
            }
        }
        self.take_tokens(app, &mut s, tokens, verified, now)?;
        Ok(s)
    }

    /// Writes what a token answer carries into a session: the identity of its ID token, the
    /// tokens a header or a later refresh needs (and no others), and when they expire.
    fn take_tokens(
        &self,
        app: &App,
        s: &mut Session,
        tokens: &TokenResponse,
        verified: Option<(&IdToken, &Claims)>,
        now: UnixTime,
    ) -> Result<(), LoginError> {
        if let Some((id_token, claims)) = verified {
            let id = self.identity(app, claims)?;
            (s.user, s.email, s.groups, s.preferred_username) =
                (id.user, id.email, id.groups, id.preferred_username);
            s.sub = claims.subject.clone();
            (s.claims, s.rule_claims) = self
                .claim_reading(app)
                .values(&claims.subject, &claims.other);
            s.tokens_expire_at = Some(claims.expires_at);
            // Kept only when a header or the IdP logout (id_token_hint) needs it.
            if self.config.headers.set_authorization_header || app.cfg.login.sign_out_at_idp {
                s.id_token = Some(id_token.clone());
            }
        }
        if let Some(expires_in) = tokens.expires_in {
            s.tokens_expire_at = Some(now.saturating_add(expires_in));
        }
        if self.config.headers.pass_access_token && tokens.access_token.is_some() {
            s.access_token = tokens.access_token.clone();
        }
        if !app.cfg.refresh.is_zero() && tokens.refresh_token.is_some() {
            s.refresh_token = tokens.refresh_token.clone();
        }
        s.refreshed_at = now;
        // A login or a refresh is made for a request: activity.
        s.active_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(access_token: &str) -> Result<TokenResponse, LoginError> {
        let body = serde_json::json!({"access_token": access_token, "token_type": "Bearer"});
        parse_token_response(CallResult::ok(body.to_string().as_bytes()))
    }

    #[test]
    fn an_access_token_that_could_split_a_header_makes_the_answer_invalid() {
        assert!(parsed("eyJ.a-b_c~d+e/f= with space").is_ok());
        for bad in [
            "at\r\nx-injected: 1",
            "at\nx",
            "at\0",
            "at\u{7f}",
            "jeton-é",
        ] {
            assert_eq!(
                parsed(bad).err(),
                Some(LoginError::TokenResponseInvalid),
                "{bad:?}"
            );
        }
    }
}
