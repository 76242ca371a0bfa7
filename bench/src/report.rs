//! The results: the side-by-side table, the figures beside it, where a signed-in request's time
//! goes, and each target of the performance issue with its measured value and met / not met.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

/// Every figure of one run.
#[derive(Default)]
pub struct Figures {
    /// One JSON row per configuration (see `main`), in order.
    pub rows: Vec<Value>,
    /// Added Envoy CPU per request (µs) over the baseline, by configuration name.
    pub added: BTreeMap<String, f64>,
    /// RSS at one worker (MiB), by configuration name.
    pub rss: BTreeMap<String, f64>,
    /// RSS at four workers (MiB), by configuration name.
    pub rss4: BTreeMap<String, f64>,
    /// First sight of a bearer token (every request a new one): added CPU and p50, by algorithm.
    pub first_sight: BTreeMap<String, (f64, f64)>,
    pub wasm_bytes: usize,
    pub wasm_gzip: usize,
    /// Envoy start until the configuration answers as intended (s), by configuration name.
    pub ready: BTreeMap<String, f64>,
    pub rounds: u32,
    pub load_secs: f64,
    pub serial_secs: f64,
}

struct Target {
    what: String,
    measured: String,
    met: bool,
}

impl Figures {
    fn added(&self, name: &str) -> f64 {
        self.added.get(name).copied().unwrap_or(f64::NAN)
    }

    fn targets(&self) -> Vec<Target> {
        let a = |n| self.added(n);
        let (session, oauth2, trivial) =
            (a("oidc-gate-session"), a("envoy-oauth2"), a("trivial-wasm"));
        let (bearer, jwt_cache) = (a("oidc-gate-bearer"), a("jwt-authn-cache"));
        let rs = self.first_sight.get("RS256").map_or(f64::NAN, |f| f.0);
        let es = self.first_sight.get("ES256").map_or(f64::NAN, |f| f.0);
        let callback_rest = a("oidc-gate-callback") - rs;
        let rss = |n: &str| self.rss.get(n).copied().unwrap_or(f64::NAN);
        let ready = self
            .ready
            .get("oidc-gate-redirect")
            .copied()
            .unwrap_or(f64::NAN);
        let kib = |b: usize| b as f64 / 1024.0;
        let t = |what: &str, measured: String, met: bool| Target {
            what: what.into(),
            measured,
            met,
        };
        vec![
            t("signed-in (2) added CPU ≤ 1.0× Envoy's OAuth2 filter (4)",
              format!("{session:.1} vs {oauth2:.1} µs ({:.2}×)", session / oauth2), session <= oauth2),
            t("signed-in (2) added CPU ≤ 1.5× the trivial Wasm filter (8)",
              format!("{session:.1} vs {trivial:.1} µs ({:.2}×)", session / trivial), session <= 1.5 * trivial),
            t("bearer, repeated (3) ≤ 2× jwt_authn with its cache (9)",
              format!("{bearer:.1} vs {jwt_cache:.1} µs ({:.2}×)", bearer / jwt_cache), bearer <= 2.0 * jwt_cache),
            t("bearer RS256 first sight ≤ 250 µs added Envoy CPU",
              format!("{rs:.0} µs"), rs <= 250.0),
            t("bearer ES256 first sight ≤ 250 µs added Envoy CPU",
              format!("{es:.0} µs"), es <= 250.0),
            t("new login, 302 to the IdP (7) ≤ 3× signed-in (2)",
              format!("{:.1} vs {session:.1} µs", a("oidc-gate-redirect")), a("oidc-gate-redirect") <= 3.0 * session),
            t("new login, callback (7b) without the RS256 check (its first-sight cost) ≤ 3× signed-in (2)",
              format!("{:.0} − {rs:.0} = {callback_rest:.0} vs {session:.1} µs", a("oidc-gate-callback")),
              callback_rest <= 3.0 * session),
            t("RSS at one worker ≤ the trivial filter + 10 MiB",
              format!("{:.1} vs {:.1} MiB", rss("oidc-gate-session"), rss("trivial-wasm")),
              rss("oidc-gate-session") <= rss("trivial-wasm") + 10.0),
            t("`.wasm` ≤ 600 KiB", format!("{:.0} KiB", kib(self.wasm_bytes)), self.wasm_bytes <= 600 * 1024),
            t("`.wasm` gzip ≤ 200 KiB", format!("{:.0} KiB", kib(self.wasm_gzip)), self.wasm_gzip <= 200 * 1024),
            t("Envoy start → ready (discovery and JWKS loaded) ≤ 0.4 s", format!("{ready:.2} s"), ready <= 0.4),
        ]
    }

    pub fn markdown(&self) -> String {
        let mut md = String::from("| configuration | req/s | p50 / p90 / p99 under load (µs) | p50 one at a time (µs) | Envoy CPU per request (µs) | added CPU (µs) | side process CPU (µs) | Envoy RSS (MiB) | CPU ratio to baseline |\n|---|---|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.0} / {:.0} / {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
                r["label"].as_str().unwrap_or(""), f("requests_per_second"), f("p50_us"), f("p90_us"), f("p99_us"),
                f("serial_p50_us"), f("envoy_cpu_us_per_request"), f("added_cpu_us_per_request"),
                f("side_cpu_us_per_request"), f("rss_mib"), f("cpu_ratio_to_baseline")
            );
        }
        md.push('\n');
        for (alg, (cpu, p50)) in &self.first_sight {
            let _ = writeln!(md, "- bearer token {alg}, first sight (every request a new token): {cpu:.0} µs added Envoy CPU per request, p50 {p50:.0} µs one at a time");
        }
        let _ = writeln!(
            md,
            "- `oidc_gate.wasm`: {} bytes ({} gzipped)",
            self.wasm_bytes, self.wasm_gzip
        );
        let ready = |n: &str| self.ready.get(n).copied().unwrap_or(f64::NAN);
        let _ = writeln!(md, "- Envoy start → ready: {:.2} s without a filter, {:.2} s with the trivial filter, {:.2} s with oidc-gate (until a login redirect is answered: discovery and JWKS loaded)",
            ready("baseline"), ready("trivial-wasm"), ready("oidc-gate-redirect"));
        let rss4: Vec<String> = self
            .rss4
            .iter()
            .map(|(n, v)| format!("{n} {v:.1} MiB"))
            .collect();
        let _ = writeln!(md, "- RSS at four workers: {}", rss4.join(", "));
        let _ = writeln!(md, "- rounds: {}, {} s under load (16 connections) and {} s one at a time per configuration per round, interleaved", self.rounds, self.load_secs, self.serial_secs);
        md.push_str("\nWhere a signed-in request's added CPU goes (differences of the rows above):\n\n| part | µs |\n|---|---|\n");
        let a = |n| self.added(n);
        for (part, v) in [
            ("any Rust Wasm filter: the VM call and one header (8)", a("trivial-wasm")),
            ("oidc-gate's host calls: header map read, header writes, clock, counter (8b − 8)", a("trivial-wasm-host-calls") - a("trivial-wasm")),
            ("oidc-gate's own work with a cached session: cookie lookup, rules, header plan (2 − 8b)", a("oidc-gate-session") - a("trivial-wasm-host-calls")),
            ("opening the cookie: decrypt and parse, saved by the session cache (2b − 2)", a("oidc-gate-session-uncached") - a("oidc-gate-session")),
        ] {
            let _ = writeln!(md, "| {part} | {v:.1} |");
        }
        md.push_str("\nTargets:\n\n| target | measured | met? |\n|---|---|---|\n");
        for t in self.targets() {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                t.what,
                t.measured,
                if t.met { "yes" } else { "no" }
            );
        }
        md
    }

    pub fn json(&self, quick: bool) -> Value {
        let targets: Vec<Value> = self
            .targets()
            .into_iter()
            .map(|t| json!({"target": t.what, "measured": t.measured, "met": t.met}))
            .collect();
        json!({"quick": quick, "rows": self.rows, "first_sight": self.first_sight,
               "wasm_bytes": self.wasm_bytes, "wasm_gzip_bytes": self.wasm_gzip,
               "start_to_ready_s": self.ready, "rss_four_workers_mib": self.rss4, "targets": targets})
    }
}
