//! The filter's own endpoints under `proxy_prefix`, as OAuth2-Proxy has them: `/start`,
//! `/callback` (see `callback`), `/sign_out` and `/userinfo`; anything else there is 404. Each
//! is about the provider of the request's host (a callback: the provider its login is with).

use super::request::{absolute_url, plausible_authority, query_param};
use super::{App, Decision, Gate, Outcome, Request, Response};
use crate::cookies::RequestCookies;
use crate::env::Env;
use crate::routes::path_only;

impl Gate {
    /// The endpoint a path names, when it is under `proxy_prefix` (`/start`, `/callback`, …).
    pub(super) fn endpoint<'p>(&self, path: &'p str) -> Option<&'p str> {
        path_only(path)
            .strip_prefix(self.config.proxy_prefix())
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
            "/start" => return self.start(req, cookies, env),
            "/callback" => return self.callback(req, cookies, env),
            "/sign_out" => self.sign_out(req, cookies, env),
            "/userinfo" => self.userinfo(req, cookies, env),
            _ => self.reply(req, Outcome::NotFound),
        })
    }

    /// The provider of a host (and a path on it): the policy's, or `default`.
    fn app_at(&self, authority: &str, path: &str) -> &App {
        self.app(self.config.rules.policies.provider_at(authority, path))
    }

    /// `/start?rd=…&login_hint=…`: a login (with the provider of where `rd` leads on this host)
    /// that returns to `rd` when it is allowed.
    fn start(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        env: &mut Env<'_>,
    ) -> Decision {
        let rd = query_param(req.path, "rd").unwrap_or_default();
        let return_to = self.return_target(&rd, req.authority);
        let at = if return_to.starts_with('/') {
            path_only(&return_to)
        } else {
            "/"
        };
        let app = self.app_at(req.authority, at);
        // login_hint passes through to the IdP (OIDC Core §3.1.2.1).
        let hint = query_param(req.path, "login_hint").filter(|h| !h.is_empty());
        self.start_login(app, req, cookies, (return_to, hint.as_deref()), env)
            .of(app.index)
    }

    /// Clears the session of the host's provider (every part; with `?all=true` every
    /// provider's) and any login flows, then redirects to `rd` when it is allowed (own host or
    /// `whitelist_domains`), else to `/`; with `sign_out_at_idp`, by way of the IdP's
    /// `end_session_endpoint` (OpenID RP-Initiated Logout).
    fn sign_out(
        &self,
        req: &Request<'_>,
        cookies: &RequestCookies<'_>,
        env: &mut Env<'_>,
    ) -> Response {
        let rd = query_param(req.path, "rd").unwrap_or_default();
        let target = self.config.rules.whitelist.target(&rd, req.authority);
        let app = self.app_at(req.authority, "/");
        let mut location = target.clone();
        if app.cfg.login.sign_out_at_idp {
            let end = env
                .providers
                .main(app.index, env.store)
                .and_then(|p| p.end_session_endpoint.clone());
            if let Some(end) = end {
                location = self.end_session_url(app, end, req, cookies, &target, env);
            }
        }
        let all = query_param(req.path, "all").is_some_and(|v| v == "true");
        let session = app.sessions.name();
        let others = cookies.names().filter(|n| {
            let theirs = |a: &App| a.sessions.owns(n);
            *n != session
                && (self.logins.owns(n) || app.sessions.owns(n) || (all && self.apps().any(theirs)))
        });
        let names: Vec<&str> = std::iter::once(session).chain(others).collect();
        let cleared: Vec<String> = self.clear_cookies(names, req.authority).collect();
        Response::redirect(location, Outcome::SignedOut)
            .with_cookies(cleared)
            .of(app.index)
    }

    /// The IdP's logout URL with `id_token_hint` (when the session kept the ID token),
    /// `client_id` and an absolute `post_logout_redirect_uri`.
    fn end_session_url(
        &self,
        app: &App,
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
        let hint = app
            .sessions
            .decode(cookies, env.now.secs())
            .ok()
            .and_then(|o| o.session.id_token.clone());
        {
            let mut q = end.query_pairs_mut();
            if let Some(h) = &hint {
                q.append_pair("id_token_hint", h.expose());
            }
            q.append_pair("client_id", &app.cfg.client.id);
            q.append_pair("post_logout_redirect_uri", &back);
        }
        end.to_string()
    }

    /// `/userinfo`: the signed-in user of the host's provider as JSON, as OAuth2-Proxy answers
    /// it.
    fn userinfo(&self, req: &Request<'_>, cookies: &RequestCookies<'_>, env: &Env<'_>) -> Response {
        let app = self.app_at(req.authority, "/");
        match app.sessions.decode(cookies, env.now.secs()) {
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
                    provider: app.index,
                }
            }
            Err(why) => {
                let api = Request {
                    accept: Some("application/json"),
                    ..*req
                };
                self.reply(&api, Outcome::Unauthenticated(why))
                    .of(app.index)
            }
        }
    }
}
