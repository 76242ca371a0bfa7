//! Starting a login: the login state sealed into its per-flow cookie, and the redirect to the
//! IdP's authorization endpoint with state, nonce, PKCE and the configured parameters. Where
//! the browser comes back to is decided here too.

use super::request::{absolute_url, plausible_authority};
use super::{Gate, Outcome, Request, Response};
use crate::config::SameSite;
use crate::cookies::{set_cookie_samesite, RequestCookies};
use crate::env::Env;
use crate::login::{LoginState, LOGIN_TTL};
use crate::provider::Provider;
use crate::routes::path_only;

/// The longest URL kept to return to after a login: longer deep links return to their path
/// without the query, or to `/` (the login-state cookie must stay under 4 KB).
const MAX_RETURN_URL: usize = 2048;

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
    /// cookies stay (older ones are deleted).
    pub(crate) fn start_login(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        return_to: String,
        env: &mut Env<'_>,
    ) -> Response {
        let Some(provider) = env.providers.main(env.store) else {
            return self.reply(req, Outcome::NotReady);
        };
        let Some(redirect_uri) = self.redirect_uri(req) else {
            return self.reply(req, Outcome::BadRequest(super::BadRequest::Host));
        };
        let return_to = self.absolute_if_elsewhere(req, return_to);
        let now = env.now.secs();
        let sealed = LoginState::new(return_to, self.config.client.pkce, now, env.rng)
            .and_then(|login| Ok((self.logins.seal(&login, env.rng)?, login)));
        let Ok(((cookie_name, cookie_value), login)) = sealed else {
            return self.reply(req, Outcome::NoEntropy);
        };
        let location = self.authorize_url(&provider, &redirect_uri, &login);
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
        let cleared = self.clear_cookies(evicted.iter().map(String::as_str), req.authority);
        Response::redirect(location, Outcome::LoginStarted)
            .with_cookies(std::iter::once(flow_cookie).chain(cleared.collect::<Vec<_>>()))
    }

    /// The authorization request (OIDC Core §3.1.2.1) for a login state.
    fn authorize_url(&self, provider: &Provider, redirect_uri: &str, login: &LoginState) -> String {
        let mut url = provider.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client.id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &self.scope(provider))
                .append_pair("state", login.state.as_str())
                .append_pair("nonce", login.nonce.as_str());
            if let Some(challenge) = login.code_challenge() {
                q.append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            if let Some(prompt) = &self.config.login.prompt {
                q.append_pair("prompt", prompt);
            }
            if let Some(acr) = &self.config.login.acr_values {
                q.append_pair("acr_values", acr);
            }
            for (k, v) in &self.config.login.login_url_parameters {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// The configured `redirect_url`, or the callback on the request's own host.
    pub(crate) fn redirect_uri(&self, req: &Request<'_>) -> Option<String> {
        if let Some(u) = &self.config.client.redirect_url {
            return Some(u.to_string());
        }
        plausible_authority(req.authority)
            .then(|| absolute_url(req, &self.config.client.callback_path()))
    }

    /// The configured scope, plus `offline_access` when sessions are refreshed and the provider
    /// offers it (a refresh token is needed).
    fn scope(&self, provider: &Provider) -> String {
        let scope = &self.config.client.scope;
        let wants = !self.config.cookie.refresh.is_zero()
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
    fn absolute_if_elsewhere(&self, req: &Request<'_>, return_to: String) -> String {
        let elsewhere = self.config.client.redirect_url.as_ref().is_some_and(|u| {
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
