//! Starting a login: the login state sealed into its per-flow cookie, and the redirect to the
//! IdP's authorization endpoint with state, nonce, PKCE and the configured parameters. Where
//! the browser comes back to is decided here too.

use super::request::{absolute_url, plausible_authority};
use super::{App, Decision, Gate, Outcome, Request, Response};
use crate::config::SameSite;
use crate::cookies::{set_cookie_samesite, RequestCookies};
use crate::env::Env;
use crate::login::{LoginState, LOGIN_TTL};
use crate::provider::Provider;
use crate::routes::path_only;

/// The longest URL kept to return to after a login: longer deep links return to their path
/// without the query, or to `/` (the login-state cookie must stay under 4 KB).
const MAX_RETURN_URL: usize = 2048;

/// The authorization endpoint with `params` added to its query.
pub(super) fn authorize_url(provider: &Provider, params: &[(String, String)]) -> String {
    let mut url = provider.authorization_endpoint.clone();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// The login-state cookie must come back on the IdP's redirect, a cross-site navigation: `Lax`
/// when the session cookie is `Strict` (which that navigation would not carry).
fn login_samesite(session: SameSite) -> SameSite {
    match session {
        SameSite::Strict => SameSite::Lax,
        other => other,
    }
}

impl Gate {
    /// 302 to the IdP, with the flow's sealed state in its cookie; at most `MAX_FLOWS` flow
    /// cookies stay (older ones are deleted). With `pushed_authorization_requests`, the
    /// parameters are pushed first (a call-out) and the 302 carries only their `request_uri`.
    /// `hint`: a `login_hint` for the IdP.
    pub(crate) fn start_login(
        &self,
        app: &App,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        (return_to, hint): (String, Option<&str>),
        env: &mut Env<'_>,
    ) -> Decision {
        let Some(provider) = env.providers.main(app.index, env.store) else {
            return Decision::Respond(self.reply(req, Outcome::NotReady));
        };
        let Some(redirect_uri) = self.redirect_uri(app, req) else {
            let bad = Outcome::BadRequest(super::BadRequest::Host);
            return Decision::Respond(self.reply(req, bad));
        };
        let return_to = self.absolute_if_elsewhere(app, req, return_to);
        let now = env.now.secs();
        let id = if app.cfg.is_default() {
            ""
        } else {
            app.cfg.id.as_str()
        };
        let sealed = LoginState::new(id, return_to, app.cfg.client.pkce, now, env.rng)
            .and_then(|login| Ok((self.logins.seal(&login, env.rng)?, login)));
        let Ok(((cookie_name, cookie_value), login)) = sealed else {
            return Decision::Respond(self.reply(req, Outcome::NoEntropy));
        };
        let params = self.authorize_params(app, &provider, &redirect_uri, &login, hint);
        let domain = crate::cookies::domain_for(&self.config.cookie, req.authority);
        let flow_cookie = set_cookie_samesite(
            &self.config.cookie,
            &cookie_name,
            &cookie_value,
            LOGIN_TTL,
            domain,
            login_samesite(self.config.cookie.samesite),
        );
        let evicted = self.logins.to_evict(cookies, now);
        let cleared: Vec<String> = self
            .clear_cookies(evicted.iter().map(String::as_str), req.authority)
            .collect();
        if app.cfg.login.pushed_authorization_requests {
            let cookies = (flow_cookie, cleared);
            return self.push_authorization(app, &provider, req, params, cookies, env);
        }
        let location = authorize_url(&provider, &params);
        Decision::Respond(
            Response::redirect(location, Outcome::LoginStarted)
                .with_cookies(std::iter::once(flow_cookie).chain(cleared)),
        )
    }

    /// The authorization request's parameters (OIDC Core §3.1.2.1) for a login state.
    fn authorize_params(
        &self,
        app: &App,
        provider: &Provider,
        redirect_uri: &str,
        login: &LoginState,
        hint: Option<&str>,
    ) -> Vec<(String, String)> {
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut q = vec![
            pair("response_type", "code"),
            pair("client_id", &app.cfg.client.id),
            pair("redirect_uri", redirect_uri),
            pair("scope", &Self::scope(app, provider)),
            pair("state", login.state.as_str()),
            pair("nonce", login.nonce.as_str()),
        ];
        if let Some(challenge) = login.code_challenge() {
            q.push(pair("code_challenge", &challenge));
            q.push(pair("code_challenge_method", "S256"));
        }
        if let Some(prompt) = &app.cfg.login.prompt {
            q.push(pair("prompt", prompt));
        }
        if let Some(acr) = &app.cfg.login.acr_values {
            q.push(pair("acr_values", acr));
        }
        // OIDC Core §3.1.2.1: a hint for the IdP's sign-in form.
        if let Some(hint) = hint {
            q.push(pair("login_hint", hint));
        }
        q.extend(app.cfg.login.login_url_parameters.iter().cloned());
        q
    }

    /// The configured `redirect_url`, or the callback on the request's own host.
    pub(crate) fn redirect_uri(&self, app: &App, req: &Request<'_>) -> Option<String> {
        if let Some(u) = &app.cfg.client.redirect_url {
            return Some(u.to_string());
        }
        plausible_authority(req.authority)
            .then(|| absolute_url(req, &app.cfg.client.callback_path()))
    }

    /// The configured scope, plus `offline_access` when sessions are refreshed and the provider
    /// offers it (a refresh token is needed).
    fn scope(app: &App, provider: &Provider) -> String {
        let scope = &app.cfg.client.scope;
        let wants = !app.cfg.refresh.is_zero()
            && provider
                .scopes_supported
                .iter()
                .any(|s| s == "offline_access")
            && !scope.split(' ').any(|s| s == "offline_access");
        if wants {
            format!("{scope} offline_access")
        } else {
            scope.clone()
        }
    }

    /// A path on this host becomes an absolute URL when the callback lands on another host
    /// (a `redirect_url` elsewhere), so the browser comes back here after login.
    fn absolute_if_elsewhere(&self, app: &App, req: &Request<'_>, return_to: String) -> String {
        let elsewhere = app.cfg.client.redirect_url.as_ref().is_some_and(|u| {
            let host = u.host_str().unwrap_or("");
            let authority = match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            !authority.eq_ignore_ascii_case(req.authority)
        });
        if elsewhere && return_to.starts_with('/') && plausible_authority(req.authority) {
            absolute_url(req, &return_to)
        } else {
            return_to
        }
    }

    /// Where to send the browser after a login that `path` started: the same place when it is
    /// a safe local target (the `rd` rules) of reasonable length, else its path, else `/`.
    pub(crate) fn return_target(&self, path: &str, authority: &str) -> String {
        let target = self.config.rules.whitelist.target(path, authority);
        if target.len() <= MAX_RETURN_URL {
            return target;
        }
        let without_query = path_only(&target);
        if without_query.len() <= MAX_RETURN_URL {
            without_query.to_string()
        } else {
            "/".to_string()
        }
    }
}
