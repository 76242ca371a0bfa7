//! The filter's own endpoints under `proxy_prefix`, as OAuth2-Proxy has them: `/start`,
//! `/callback` (see `callback`), `/sign_out` and `/userinfo`; anything else there is 404.

use super::request::{absolute_url, plausible_authority, query_param};
use super::{Decision, Gate, Outcome, Request, Response};
use crate::cookies::RequestCookies;
use crate::env::Env;
use crate::routes::path_only;

impl Gate {
    /// The endpoint a path names, when it is under `proxy_prefix` (`/start`, `/callback`, …).
    pub(super) fn endpoint<'p>(&self, path: &'p str) -> Option<&'p str> {
        path_only(path)
            .strip_prefix(self.config.client.proxy_prefix.as_str())
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    pub(super) fn serve_endpoint(
        &self,
        endpoint: &str,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        Decision::Respond(match endpoint {
            "/start" => self.start(req, cookies, env),
            "/callback" => return self.callback(req, cookies, env),
            "/sign_out" => self.sign_out(req, cookies, env),
            "/userinfo" => self.userinfo(req, cookies, env),
            _ => self.reply(req, Outcome::NotFound),
        })
    }

    /// `/start?rd=…&login_hint=…`: a login that returns to `rd` when it is allowed.
    fn start(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        env: &mut Env<'_>,
    ) -> Response {
        let rd = query_param(req.path, "rd").unwrap_or_default();
        let return_to = self.return_target(&rd, req.authority);
        let mut r = self.start_login(req, cookies, return_to, env);
        // login_hint passes through to the IdP (OIDC Core §3.1.2.1).
        if let Some(hint) = query_param(req.path, "login_hint").filter(|h| !h.is_empty()) {
            if let Some((_, location)) = r.headers.iter_mut().find(|(k, _)| k == "location") {
                if let Ok(mut url) = url::Url::parse(location) {
                    url.query_pairs_mut().append_pair("login_hint", &hint);
                    *location = url.to_string();
                }
            }
        }
        r
    }

    /// Clears the session (every part) and any login flows, then redirects to `rd` when it is
    /// allowed (own host or `whitelist_domains`), else to `/`; with `sign_out_at_idp`, by way
    /// of the IdP's `end_session_endpoint` (OpenID RP-Initiated Logout).
    fn sign_out(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        env: &mut Env<'_>,
    ) -> Response {
        let rd = query_param(req.path, "rd").unwrap_or_default();
        let target = self.config.rules.whitelist.target(&rd, req.authority);
        let mut location = target.clone();
        if self.config.login.sign_out_at_idp {
            let end = env
                .providers
                .main(env.store)
                .and_then(|p| p.end_session_endpoint.clone());
            if let Some(end) = end {
                location = self.end_session_url(end, req, cookies, &target, env);
            }
        }
        let session = self.sessions.name();
        let others = cookies
            .names()
            .filter(|n| (self.sessions.owns(n) && *n != session) || self.logins.owns(n));
        let names: Vec<&str> = std::iter::once(session).chain(others).collect();
        let cleared: Vec<String> = self.clear_cookies(names, req.authority).collect();
        Response::redirect(location, Outcome::SignedOut).with_cookies(cleared)
    }

    /// The IdP's logout URL with `id_token_hint` (when the session kept the ID token),
    /// `client_id` and an absolute `post_logout_redirect_uri`.
    fn end_session_url(
        &self,
        mut end: url::Url,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        target: &str,
        env: &Env<'_>,
    ) -> String {
        let back = if target.starts_with('/') && plausible_authority(req.authority) {
            absolute_url(req, target)
        } else {
            target.to_string()
        };
        let hint = self
            .sessions
            .decode(cookies, env.now.secs())
            .ok()
            .and_then(|o| o.session.id_token.clone());
        {
            let mut q = end.query_pairs_mut();
            if let Some(h) = &hint {
                q.append_pair("id_token_hint", h.expose());
            }
            q.append_pair("client_id", &self.config.client.id);
            q.append_pair("post_logout_redirect_uri", &back);
        }
        end.to_string()
    }

    /// `/userinfo`: the signed-in user as JSON, as OAuth2-Proxy answers it.
    fn userinfo(&self, req: &Request<'_>, cookies: &RequestCookies<'_>, env: &Env<'_>) -> Response {
        match self.sessions.decode(cookies, env.now.secs()) {
            Ok(opened) => {
                let s = opened.session;
                let body = serde_json::json!({
                    "user": s.user,
                    "email": s.email,
                    "groups": s.groups,
                    "preferredUsername": s.preferred_username,
                });
                Response {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("cache-control".into(), "no-store".into()),
                    ],
                    body: body.to_string(),
                    outcome: Outcome::UserInfo,
                    set_cookies: Vec::new(),
                }
            }
            Err(why) => {
                let api = Request {
                    accept: Some("application/json"),
                    ..*req
                };
                self.reply(&api, Outcome::Unauthenticated(why))
            }
        }
    }
}
