//! Pushed authorization requests (RFC 9126): a login's authorization parameters go to the
//! provider's PAR endpoint in a client-authenticated call-out; the browser then goes to the
//! authorization endpoint with only `client_id` and the `request_uri` it answered. A failed
//! push answers the 503 page and sets no login-state cookie.

use serde::Deserialize;
use url::form_urlencoded;

use super::login::authorize_url;
use super::request::Origin;
use super::{safe_code, App, Call, Decision, Gate, LoginError, Outcome, Pending, Request};
use crate::callout::CallResult;
use crate::env::Env;
use crate::provider::Provider;

/// The longest `request_uri` taken from the IdP (it goes into a browser URL).
const MAX_REQUEST_URI: usize = 1024;

/// A login waiting for its pushed authorization request's answer.
#[derive(Debug)]
pub struct PendingPar {
    /// The provider the login is with.
    pub(super) app: usize,
    origin: Origin,
    /// The login-state cookie, set only when the push succeeded.
    flow_cookie: String,
    /// Cookies the reply sets or clears whatever the push came to (evicted flows, an ended
    /// session's).
    pub(super) other_cookies: Vec<String>,
    /// `LoginStarted`, or `SessionEnded` when a refresh ended the session.
    pub(super) outcome: Outcome,
}

/// RFC 9126 §2.2.
#[derive(Deserialize)]
struct ParResponse {
    request_uri: String,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

impl Gate {
    /// The call-out pushing `params` (with the client's authentication, as at the token
    /// endpoint), or the 503 page when the provider has no PAR endpoint.
    pub(super) fn push_authorization(
        &self,
        app: &App,
        provider: &Provider,
        req: &Request<'_>,
        params: Vec<(String, String)>,
        (flow_cookie, other_cookies): (String, Vec<String>),
        env: &mut Env<'_>,
    ) -> Decision {
        let Some(endpoint) = &provider.par_endpoint else {
            let r = self.reply(req, Outcome::LoginFailed(LoginError::ParUnavailable));
            return Decision::Respond(r.with_cookies(other_cookies));
        };
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(&params);
        let Some(call) = self.client_call(app, endpoint, (form, true), env) else {
            let r = self.reply(req, Outcome::NoEntropy);
            return Decision::Respond(r.with_cookies(other_cookies));
        };
        Decision::Call(Call {
            call,
            then: Pending::Par(Box::new(PendingPar {
                app: app.index,
                origin: self.origin(req),
                flow_cookie,
                other_cookies,
                outcome: Outcome::LoginStarted,
            })),
        })
    }

    /// The PAR endpoint answered: 302 to the authorization endpoint with `client_id` and
    /// `request_uri` only, or the 503 page.
    pub(super) fn pushed(
        &self,
        pending: PendingPar,
        result: CallResult<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        let req = pending.origin.request();
        let app = self.app(pending.app);
        let provider = env.providers.main(app.index, env.store);
        let pushed = request_uri(result)
            .and_then(|uri| provider.map(|p| (p, uri)).ok_or(LoginError::IdpUnreachable));
        let (provider, uri) = match pushed {
            Ok(found) => found,
            Err(e) => {
                let r = self.reply(&req, Outcome::LoginFailed(e));
                return Decision::Respond(r.with_cookies(pending.other_cookies));
            }
        };
        let params = [
            ("client_id".to_string(), app.cfg.client.id.clone()),
            ("request_uri".to_string(), uri),
        ];
        let location = authorize_url(&provider, &params);
        let cookies = std::iter::once(pending.flow_cookie).chain(pending.other_cookies);
        Decision::Respond(
            super::Response::redirect(location, pending.outcome).with_cookies(cookies),
        )
    }
}

/// The `request_uri` of a PAR answer (201, RFC 9126 §2.2; 200 is taken too), or why there is
/// none.
fn request_uri(result: CallResult<'_>) -> Result<String, LoginError> {
    let status = result.status.ok_or(LoginError::IdpUnreachable)?;
    if !(200..300).contains(&status) {
        let code = serde_json::from_slice::<OAuthError>(result.body)
            .map(|e| safe_code(&e.error))
            .unwrap_or_default();
        return Err(LoginError::ParRefused(status, code));
    }
    let invalid = || LoginError::ParRefused(status, "invalid_response".into());
    let r: ParResponse = serde_json::from_slice(result.body).map_err(|_| invalid())?;
    let usable = !r.request_uri.is_empty()
        && r.request_uri.len() <= MAX_REQUEST_URI
        && !r.request_uri.chars().any(char::is_control);
    usable.then_some(r.request_uri).ok_or_else(invalid)
}
