//! One log line and one metric per decision: `<code> id=<x-request-id> host=<host> path=<path
//! without query> user=<user or -> status=<status or upstream>`, then `provider=<id>` when it is
//! not `default`, whose counters also end in `_provider_<id>`.

use std::fmt;

use log::{log, log_enabled, Level};
use oidc_gate_core::head::for_log;
use oidc_gate_core::routes::path_only;
use oidc_gate_core::{Decision, Outcome, Request};

use crate::metrics;

/// How much of a host, path or user a log line shows.
const FIELD_MAX: usize = 200;

/// What a request's log lines say of it (control characters replaced, lengths bounded).
pub struct Line {
    host: String,
    path: String,
    request_id: String,
}

impl Default for Line {
    fn default() -> Self {
        Self {
            host: String::new(),
            path: String::new(),
            request_id: "-".into(),
        }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host={} path={}", self.host, self.path)
    }
}

impl Line {
    pub fn of(req: &Request<'_>) -> Self {
        Self {
            host: for_log(req.authority, FIELD_MAX),
            // The query may hold an authorization code.
            path: for_log(path_only(req.path), FIELD_MAX),
            request_id: for_log(req.request_id.unwrap_or("-"), FIELD_MAX),
        }
    }

    /// The decision's counter, and its line when its level is logged (a signed-in request's
    /// debug line is not even formatted at Istio's default level).
    /// `provider` is the provider's id, `None` for `default` (whose names stay as they were
    /// before `providers`, so dashboards keep working).
    pub fn log(
        &self,
        outcome: &Outcome,
        status: Option<u16>,
        user: Option<&str>,
        provider: Option<&str>,
    ) {
        match provider {
            None => metrics::count(&outcome.metric()),
            Some(p) => metrics::count(&format!("{}_provider_{p}", outcome.metric())),
        }
        let level = level(outcome);
        if !log_enabled!(level) {
            return;
        }
        let (code, id) = (outcome.code(), &self.request_id);
        let user = for_log(user.unwrap_or("-"), FIELD_MAX);
        let status = status.map_or_else(|| "upstream".into(), |s| s.to_string());
        let provider = provider
            .map(|p| format!(" provider={p}"))
            .unwrap_or_default();
        match outcome {
            Outcome::LoginFailed(e) | Outcome::RefreshDeferred(e) | Outcome::SessionEnded(e) => {
                log!(
                    level,
                    "{code} id={id} {self} user={user} status={status}{provider}: {e}"
                )
            }
            _ => log!(
                level,
                "{code} id={id} {self} user={user} status={status}{provider}"
            ),
        }
    }
}

/// Whether a decision's request needs its line: it waits for a call-out (whose answer is
/// logged), or its outcome's level is logged.
pub fn wanted(d: &Decision) -> bool {
    match d {
        Decision::Forward(f) => log_enabled!(level(&f.outcome)),
        Decision::Respond(r) => log_enabled!(level(&r.outcome)),
        Decision::Call(_) => true,
        Decision::Done => false,
    }
}

/// Warn for failures, info for completions and denials, debug for the rest.
pub fn level(outcome: &Outcome) -> Level {
    match outcome {
        Outcome::LoginFailed(_) | Outcome::RefreshDeferred(_) | Outcome::SessionEnded(_) => {
            Level::Warn
        }
        Outcome::Denied(_)
        | Outcome::NotReady
        | Outcome::NoEntropy
        | Outcome::LoginCompleted
        | Outcome::Refreshed => Level::Info,
        _ => Level::Debug,
    }
}
