//! The UserInfo fallback (`oidc_userinfo`): some providers leave claims out of the ID token
//! (Okta's org authorization server, group-claim filters); OAuth2-Proxy then reads them from
//! the UserInfo endpoint. When the verified ID token lacks a claim the configuration reads (or
//! always, if so configured), the endpoint is asked with the access token — a call-out during
//! the callback and after a refresh — its `sub` must be the ID token's (OIDC Core §5.3.2), and
//! the claims the configuration reads are taken from it. Everything else comes from the ID
//! token.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::callback::PendingLogin;
use super::protocol::Pending;
use super::refresh::PendingRefresh;
use super::tokens::TokenResponse;
use super::{App, Decision, Gate, LoginError};
use crate::callout::{CallOut, CallResult};
use crate::claims::ClaimPath;
use crate::config::UserInfoMode;
use crate::env::Env;
use crate::jwt::Claims;
use crate::provider::Provider;

/// A login or refresh waiting for the UserInfo endpoint, with the ID token's verified claims.
#[derive(Debug)]
pub struct PendingUserInfo {
    after: After,
    claims: Claims,
}

#[derive(Debug)]
enum After {
    Login(Box<PendingLogin>),
    /// The refresh and the token endpoint's answer to it.
    Refresh(Box<PendingRefresh>, Box<TokenResponse>),
}

impl PendingUserInfo {
    /// A login waiting for UserInfo.
    pub(super) fn login(pending: PendingLogin, claims: Claims) -> Pending {
        Pending::UserInfo(Box::new(Self {
            after: After::Login(Box::new(pending)),
            claims,
        }))
    }

    /// A refresh waiting for UserInfo.
    pub(super) fn refresh(
        pending: PendingRefresh,
        tokens: TokenResponse,
        claims: Claims,
    ) -> Pending {
        Pending::UserInfo(Box::new(Self {
            after: After::Refresh(Box::new(pending), Box::new(tokens)),
            claims,
        }))
    }

    pub(super) fn app(&self) -> usize {
        match &self.after {
            After::Login(p) => p.app(),
            After::Refresh(p, _) => p.app(),
        }
    }
}

/// Registered claims of the ID token that UserInfo never replaces.
const KEPT: [&str; 9] = [
    "sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "azp", "acr",
];

impl Gate {
    /// The UserInfo call-out, when the mode asks for it and it can be made (the provider is
    /// loaded with the endpoint, and the token answer has an access token).
    pub(super) fn userinfo_call(
        &self,
        app: &App,
        tokens: &TokenResponse,
        claims: &Claims,
        env: &mut Env<'_>,
    ) -> Option<CallOut> {
        let wanted = match app.cfg.claims.userinfo {
            UserInfoMode::Never => false,
            UserInfoMode::Always => true,
            UserInfoMode::WhenMissing => self
                .claim_reading(app)
                .paths()
                .any(|p| matches!(p.find(&claims.other), None | Some(Value::Null))),
        };
        if !wanted {
            return None;
        }
        let provider: Arc<Provider> = env.providers.main(app.index, env.store)?;
        let endpoint = provider.userinfo_endpoint.as_ref()?;
        let token = tokens.access_token.as_ref()?;
        let mut call = CallOut::get(endpoint, app.cfg.provider.idp_timeout);
        call.headers
            .push(("authorization".into(), format!("Bearer {}", token.expose())));
        Some(call)
    }

    /// The UserInfo endpoint answered: the login or refresh goes on with its claims.
    pub(super) fn resume_userinfo(
        &self,
        pending: PendingUserInfo,
        result: CallResult<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        let app = self.app(pending.app());
        let PendingUserInfo { after, mut claims } = pending;
        let always = app.cfg.claims.userinfo == UserInfoMode::Always;
        let merged = userinfo_claims(result, &claims.subject).map(|info| {
            let paths: Vec<&ClaimPath> = self.claim_reading(app).paths().collect();
            merge(&mut claims.other, info, &paths, always);
        });
        match after {
            After::Login(p) => match merged {
                Ok(()) => self.finish_login(*p, &claims, env),
                Err(e) => Decision::Respond(self.login_error(&p, e)),
            },
            After::Refresh(p, tokens) => self.refreshed_with(*p, *tokens, claims, merged, env),
        }
    }
}

/// The UserInfo answer as claims, for the user the ID token names.
fn userinfo_claims(
    result: CallResult<'_>,
    subject: &str,
) -> Result<Map<String, Value>, LoginError> {
    if result.status != Some(200) || result.oversized {
        return Err(LoginError::UserInfoFailed);
    }
    // A signed or encrypted answer (`application/jwt`) is not JSON and fails here.
    let info: Map<String, Value> =
        serde_json::from_slice(result.body).map_err(|_| LoginError::UserInfoFailed)?;
    match info.get("sub") {
        Some(Value::String(sub)) if sub == subject => Ok(info),
        _ => Err(LoginError::UserInfoSubjectMismatch),
    }
}

/// Takes from UserInfo the top-level claims the configured paths go through: those the ID
/// token lacks, or every one of them (`always`). `email_verified` goes with `email`.
fn merge(
    claims: &mut Map<String, Value>,
    info: Map<String, Value>,
    paths: &[&ClaimPath],
    always: bool,
) {
    let read = |key: &str| {
        paths.iter().any(|p| {
            let p = p.as_str();
            p == key
                || p.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    };
    let verified = info.get("email_verified").cloned();
    let mut took_email = false;
    for (key, value) in info {
        let taken = always || matches!(claims.get(&key), None | Some(Value::Null));
        if KEPT.contains(&key.as_str()) || !read(&key) || !taken {
            continue;
        }
        took_email |= key == "email";
        claims.insert(key, value);
    }
    if took_email {
        match verified {
            Some(v) => claims.insert("email_verified".into(), v),
            None => claims.remove("email_verified"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn path(p: &str) -> ClaimPath {
        ClaimPath::parse(p).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn only_the_claims_the_configuration_reads_are_taken_and_the_id_token_wins_unless_always() {
        let (email, groups, roles) = (path("email"), path("groups"), path("realm_access.roles"));
        let paths = [&email, &groups, &roles];
        let info = obj(
            json!({"sub": "u1", "email": "info@x.io", "email_verified": true,
            "groups": ["g"], "realm_access": {"roles": ["r"]}, "acr": "weak", "iss": "evil", "other": 1}),
        );
        let mut claims = obj(json!({"email": "id@x.io", "email_verified": true, "acr": "strong"}));
        merge(&mut claims, info.clone(), &paths, false);
        assert_eq!(
            Value::Object(claims),
            json!({"email": "id@x.io", "email_verified": true, "acr": "strong",
                   "groups": ["g"], "realm_access": {"roles": ["r"]}})
        );
        let mut claims =
            obj(json!({"email": "id@x.io", "email_verified": true, "groups": ["old"]}));
        merge(&mut claims, info, &paths, true);
        assert_eq!(claims["email"], json!("info@x.io"));
        assert_eq!(claims["groups"], json!(["g"]));
        assert_eq!(
            claims["email_verified"],
            json!(true),
            "UserInfo's, with its email"
        );
        let mut claims = obj(json!({"email_verified": false}));
        let info = obj(json!({"sub": "u1", "email": "e@x.io"}));
        merge(&mut claims, info, &paths, false);
        assert_eq!(
            claims.get("email_verified"),
            None,
            "the ID token's was for no email"
        );
        assert_eq!(claims.get("iss"), None);
    }

    #[test]
    fn an_answer_for_another_user_or_not_json_is_refused() {
        fn ok(body: &str) -> CallResult<'_> {
            CallResult::status(200, body.as_bytes())
        }
        assert!(userinfo_claims(ok(r#"{"sub":"u1","groups":[]}"#), "u1").is_ok());
        assert_eq!(
            userinfo_claims(ok(r#"{"sub":"u2"}"#), "u1").err(),
            Some(LoginError::UserInfoSubjectMismatch)
        );
        assert_eq!(
            userinfo_claims(ok(r#"{"groups":[]}"#), "u1").err(),
            Some(LoginError::UserInfoSubjectMismatch)
        );
        assert_eq!(
            userinfo_claims(ok("eyJhbGciOi.x.y"), "u1").err(),
            Some(LoginError::UserInfoFailed)
        );
        let denied = CallResult::status(401, b"{}");
        assert_eq!(
            userinfo_claims(denied, "u1").err(),
            Some(LoginError::UserInfoFailed)
        );
    }
}
