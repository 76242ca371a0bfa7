//! The request as the core sees it, what a continuation keeps of it, and the facts read off it
//! that several steps need (is it a program or a browser, where can it be sent back).

use std::fmt;

use url::form_urlencoded;

use super::Gate;
use crate::headers::{CookieRewrite, Strip};
use crate::routes::path_only;

/// The request as the core sees it (borrowed from the host's header map; see `head`).
#[derive(Clone, Copy, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    /// `:path`, with the query.
    pub path: &'a str,
    /// Bytes: other apps' cookies need not be UTF-8.
    pub cookie: Option<&'a [u8]>,
    pub accept: Option<&'a str>,
    pub x_requested_with: Option<&'a str>,
    pub sec_fetch_mode: Option<&'a str>,
    pub access_control_request_method: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// Every header name the request has, to find spoofed identity headers.
    pub header_names: &'a [&'a [u8]],
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("authority", &self.authority)
            .field("path", &path_only(self.path))
            .field("cookie", &self.cookie.map(|_| "[redacted]"))
            .field("authorization", &self.authorization.map(|_| "[redacted]"))
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// What a continuation keeps of the request that started it: enough to answer it (page or
/// JSON, request id) and to judge it again (host, path). `Debug` leaves out the query, which
/// may hold an authorization code.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) method: String,
    pub(crate) scheme: String,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) api: bool,
    pub(crate) request_id: Option<String>,
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &path_only(&self.path))
            .field("api", &self.api)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl Origin {
    pub(crate) fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            scheme: &self.scheme,
            authority: &self.host,
            path: &self.path,
            request_id: self.request_id.as_deref(),
            accept: (!self.api).then_some("text/html"),
            ..Request::default()
        }
    }
}

/// How a request that goes upstream is cleaned: the spoofable headers it carries and its
/// `Cookie` header without the filter's cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forwarding {
    pub(crate) strip: Strip,
    pub(crate) rewrite: CookieRewrite,
}

/// An `:authority` that can be put in a URL: host characters and an optional port.
pub(crate) fn plausible_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority.len() <= 255
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// `https://<authority><path>`, or `http` when the request came in over plain HTTP.
pub(crate) fn absolute_url(req: &Request<'_>, path: &str) -> String {
    let scheme = if req.scheme == "http" {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{}{path}", req.authority)
}

/// The first value of a query parameter, decoded.
pub(crate) fn query_param(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .take(32)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Gate {
    /// Whether the client is a program rather than a browser navigating: it gets 401, not a
    /// redirect.
    pub fn is_api(&self, req: &Request<'_>) -> bool {
        self.config.rules.routes.is_api(req.path)
            || req
                .x_requested_with
                .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"))
            || req
                .sec_fetch_mode
                .is_some_and(|m| !m.eq_ignore_ascii_case("navigate"))
            || !req
                .accept
                .is_some_and(|a| a.to_ascii_lowercase().contains("text/html"))
    }

    /// What a continuation keeps of `req`.
    pub(crate) fn origin(&self, req: &Request<'_>) -> Origin {
        Origin {
            method: req.method.to_string(),
            scheme: req.scheme.to_string(),
            host: req.authority.to_string(),
            path: req.path.to_string(),
            api: self.is_api(req),
            request_id: req.request_id.map(str::to_string),
        }
    }
}
