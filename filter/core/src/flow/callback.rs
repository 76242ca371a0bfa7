//! The callback: the state is checked against the flow's cookie, the code is exchanged at the
//! token endpoint, the ID token is verified (then, when it lacks claims, UserInfo is asked: see
//! `userinfo`) and the session cookie is set. A token signed with a key the filter has not seen
//! yet waits for one JWKS refetch.

use url::form_urlencoded;

use super::protocol::{Call, Pending};
use super::request::Origin;
use super::tokens::{parse_token_response, TokenResponse};
use super::userinfo::PendingUserInfo;
use super::{safe_code, App, Decision, Gate, LoginError, Outcome, Request, Response};
use crate::callout::{CallOut, CallResult};
use crate::config::SameSite;
use crate::cookies::RequestCookies;
use crate::env::{EntropyError, Env};
use crate::jwt::{Claims, VerifyError};
use crate::login::{LoginState, LoginStateError};
use crate::pages;
use crate::provider::Provider;

/// A code exchange waiting for the token endpoint (then, maybe, for a JWKS refetch). Moved into
/// each step, so it is handled once.
#[derive(Debug)]
pub struct PendingLogin {
    /// The provider the login is with (from its sealed state).
    app: usize,
    login: LoginState,
    login_cookie: String,
    origin: Origin,
    /// Session cookie parts the browser has now, to delete those the new session does not use.
    old_session_cookies: Vec<String>,
    tokens: Option<TokenResponse>,
    keys_refetched: bool,
}

impl PendingLogin {
    /// The provider the login is with.
    pub(super) fn app(&self) -> usize {
        self.app
    }
}

/// What the IdP sent back to the callback (the first of each parameter).
#[derive(Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

impl CallbackQuery {
    fn parse(path: &str) -> Self {
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let mut q = Self::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()).take(32) {
            let slot = match k.as_ref() {
                "code" => &mut q.code,
                "state" => &mut q.state,
                "error" => &mut q.error,
                "iss" => &mut q.iss,
                _ => continue,
            };
            slot.get_or_insert(v.into_owned());
        }
        q
    }
}

impl Gate {
    /// `/callback`: checks the answer against the flow it belongs to, then exchanges the code.
    pub(super) fn callback(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        let q = CallbackQuery::parse(req.path);
        let fail = |e: LoginError, flow_cookie: Option<&str>| {
            let cleared = self.clear_cookies(flow_cookie, req.authority);
            let r = self.reply(req, Outcome::LoginFailed(e));
            Decision::Respond(r.with_cookies(cleared.collect::<Vec<_>>()))
        };
        let Some(state) = q.state else {
            return fail(LoginError::MissingState, None);
        };
        let flow_cookie = self.logins.cookie_name(&state);
        let flow_cookie = cookies.get(&flow_cookie).map(|_| flow_cookie);
        if let Some(e) = q.error {
            return fail(LoginError::IdpError(safe_code(&e)), flow_cookie.as_deref());
        }
        let Some(code) = q.code else {
            return fail(LoginError::MissingCode, flow_cookie.as_deref());
        };
        let (login_cookie, login) = match self.logins.take(cookies, &state, env.now.secs()) {
            Ok(found) => found,
            Err(e) => return fail(LoginError::LoginState(e), flow_cookie.as_deref()),
        };
        let app = match login.provider.as_str() {
            "" => Some(self.app(0)),
            id => self.app_by_id(id),
        };
        let Some(app) = app else {
            // A provider removed from the configuration while the login was under way.
            let e = LoginError::LoginState(LoginStateError::Unreadable);
            return fail(e, Some(&login_cookie));
        };
        let Some(provider) = env.providers.main(app.index, env.store) else {
            return Decision::Respond(self.reply(req, Outcome::NotReady)).of(app.index);
        };
        // RFC 9207: `iss` names the issuer that answered; a provider that sends it always does.
        match q.iss {
            Some(i) if i != app.cfg.provider.issuer => {
                return fail(LoginError::IssuerMismatch, Some(&login_cookie)).of(app.index)
            }
            None if provider.iss_parameter_supported => {
                return fail(LoginError::IssuerMissing, Some(&login_cookie)).of(app.index)
            }
            _ => {}
        }
        let Some(redirect_uri) = self.redirect_uri(app, req) else {
            return Decision::Respond(
                self.reply(req, Outcome::BadRequest(super::BadRequest::Host)),
            );
        };
        let pending = PendingLogin {
            app: app.index,
            old_session_cookies: app.sessions.present(cookies).map(str::to_string).collect(),
            origin: self.origin(req),
            login_cookie,
            tokens: None,
            keys_refetched: false,
            login,
        };
        let call = self.token_request(app, &provider, &code, &redirect_uri, &pending.login, env);
        let Some(call) = call else {
            return Decision::Respond(self.reply(req, Outcome::NoEntropy)).of(app.index);
        };
        Decision::Call(Call {
            call,
            then: Pending::CodeExchange(Box::new(pending)),
        })
    }

    /// The authorization-code grant (RFC 6749 §4.1.3) with the PKCE verifier (RFC 7636 §4.5).
    fn token_request(
        &self,
        app: &App,
        provider: &Provider,
        code: &str,
        redirect_uri: &str,
        login: &LoginState,
        env: &mut Env<'_>,
    ) -> Option<CallOut> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri);
        if let Some(v) = &login.pkce_verifier {
            form.append_pair("code_verifier", v.as_str());
        }
        self.token_call(app, provider, form, env)
    }

    /// The token endpoint answered the code exchange.
    pub(super) fn code_exchanged(
        &self,
        mut pending: PendingLogin,
        result: CallResult<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        match parse_token_response(result) {
            Ok(tokens) => {
                pending.tokens = Some(tokens);
                self.complete_login(pending, env)
            }
            Err(e) => Decision::Respond(self.login_error(&pending, e)),
        }
    }

    /// Verifies the tokens and completes the login (after UserInfo, when the ID token lacks
    /// claims). An unknown key is worth one JWKS refetch.
    pub(super) fn complete_login(&self, mut pending: PendingLogin, env: &mut Env<'_>) -> Decision {
        let app = self.app(pending.app);
        let claims = match self.login_claims(app, &pending, env) {
            Ok(c) => c,
            Err(LoginError::IdToken(VerifyError::UnknownKey)) if !pending.keys_refetched => {
                pending.keys_refetched = true;
                let loader = env.providers.main_loader(app.index).unwrap_or(0);
                return match self.refetch_keys(loader, env) {
                    Some(call) => Decision::Call(Call {
                        call,
                        then: Pending::LoginKeys(Box::new(pending)),
                    }),
                    None => self.complete_login(pending, env),
                };
            }
            Err(e) => return Decision::Respond(self.login_error(&pending, e)),
        };
        let call = pending
            .tokens
            .as_ref()
            .and_then(|tokens| self.userinfo_call(app, tokens, &claims, env));
        match call {
            Some(call) => Decision::Call(Call {
                call,
                then: PendingUserInfo::login(pending, claims),
            }),
            None => self.finish_login(pending, &claims, env),
        }
    }

    /// Seals the session the tokens and their verified claims give, and goes back where the
    /// login started.
    pub(super) fn finish_login(
        &self,
        pending: PendingLogin,
        claims: &Claims,
        env: &mut Env<'_>,
    ) -> Decision {
        let app = self.app(pending.app);
        let session = match &pending.tokens {
            Some(
                tokens @ TokenResponse {
                    id_token: Some(id_token),
                    ..
                },
            ) => self.new_session(app, tokens, id_token, claims, env.now.secs(), env.rng),
            _ => Err(LoginError::TokenResponseInvalid),
        };
        let session = match session {
            Ok(s) => s,
            Err(e) => return Decision::Respond(self.login_error(&pending, e)),
        };
        let host = &pending.origin.host;
        let cookies = match self.session_cookies(
            app,
            &session,
            &pending.old_session_cookies,
            host,
            env.rng,
        ) {
            Ok(cookies) => cookies,
            Err(EntropyError) => {
                return Decision::Respond(self.reply(&pending.origin.request(), Outcome::NoEntropy))
            }
        };
        let cleared = self.clear_cookies([pending.login_cookie.as_str()], host);
        let r = self.back_to_the_app(&pending.login.return_to);
        Decision::Respond(
            r.with_cookies(cookies)
                .with_cookies(cleared.collect::<Vec<_>>()),
        )
    }

    /// The answer that sends the browser back where its login started: a 302, or, when the
    /// session cookie is `SameSite=Strict`, a tiny page that moves on by itself. Browsers hold
    /// back a `Strict` cookie on every hop of a redirect chain that began at the IdP's site; a
    /// navigation this page starts is same-site, so the app sees the new session.
    fn back_to_the_app(&self, return_to: &str) -> Response {
        let redirect = Response::redirect(return_to.to_string(), Outcome::LoginCompleted);
        if self.config.cookie.samesite != SameSite::Strict {
            return redirect;
        }
        // The callback URL holds the code: the next page must not get it as its Referer.
        let headers = vec![
            ("cache-control".into(), "no-store".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("content-type".into(), "text/html; charset=utf-8".into()),
        ];
        Response {
            status: 200,
            headers,
            body: pages::landing(return_to),
            ..redirect
        }
    }

    /// The login failed: its page, and its flow cookie deleted.
    pub(super) fn login_error(&self, pending: &PendingLogin, e: LoginError) -> Response {
        let cleared = self.clear_cookies([pending.login_cookie.as_str()], &pending.origin.host);
        self.reply(&pending.origin.request(), Outcome::LoginFailed(e))
            .with_cookies(cleared.collect::<Vec<_>>())
    }

    /// The claims of a login's ID token: verified with the login's nonce, at the
    /// authentication level asked for.
    fn login_claims(
        &self,
        app: &App,
        pending: &PendingLogin,
        env: &mut Env<'_>,
    ) -> Result<Claims, LoginError> {
        let tokens = pending
            .tokens
            .as_ref()
            .ok_or(LoginError::TokenResponseInvalid)?;
        let id_token = tokens
            .id_token
            .as_ref()
            .ok_or(LoginError::TokenResponseInvalid)?;
        let provider = env
            .providers
            .main(app.index, env.store)
            .ok_or(LoginError::IdpUnreachable)?;
        let nonce = Some(pending.login.nonce.as_str());
        let claims = self
            .verify(app, id_token.expose(), &provider, nonce, env.now.secs())
            .map_err(LoginError::IdToken)?;
        if let Some(wanted) = &app.cfg.login.acr_values {
            let acr = claims.other.get("acr").and_then(|v| v.as_str());
            if !acr.is_some_and(|a| wanted.split_whitespace().any(|w| w == a)) {
                return Err(LoginError::AcrNotSatisfied);
            }
        }
        Ok(claims)
    }
}
