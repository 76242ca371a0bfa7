//! envoy-bench: one Envoy per configuration (`--concurrency 1`) in front of the same upstream,
//! driven by wrk, rounds interleaved; Envoy's CPU per request from /proc, latency under load and
//! one at a time, RSS at one and four workers, start to ready, the module's size; the targets of
//! the performance issue judged; a Markdown table and a JSON file in target/bench/. `--quick`
//! runs every configuration briefly (the test suite does, to prove each starts and
//! authenticates as intended; it never asserts numbers); `--only name,name` runs a few.

mod idp;
mod measure;
mod report;
mod setups;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e::echo::Echo;
use e2e::envoy::{free_port, Envoy};
use e2e::tools;
use serde_json::json;

use idp::{Idp, Keys, API_AUDIENCE};
use measure::{median, Load, Run};
use report::Figures;
use setups::Setup;

/// Every configuration's name, in the order of `setups::all`.
const NAMES: [&str; 12] = [
    "baseline",
    "oidc-gate-session",
    "oidc-gate-session-uncached",
    "oidc-gate-bearer",
    "envoy-oauth2",
    "jwt-authn",
    "ext-authz",
    "oidc-gate-redirect",
    "oidc-gate-callback",
    "trivial-wasm",
    "trivial-wasm-host-calls",
    "jwt-authn-cache",
];

/// One request with the setup's headers, and one without credentials: as intended?
fn check(s: &Setup, port: u16) -> Result<(), String> {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let send = |headers: &[(String, String)]| {
        let mut r = agent.get(&format!("http://127.0.0.1:{port}{}", s.path));
        for (k, v) in headers {
            r = r.set(k, v);
        }
        let r = match r.call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return (0, Vec::new(), e.to_string()),
        };
        let cookies = r.all("set-cookie").iter().map(|c| c.to_string()).collect();
        (r.status(), cookies, r.into_string().unwrap_or_default())
    };
    let (status, cookies, body) = send(&s.headers);
    if status != s.status {
        return Err(format!(
            "{}: expected {}, got {status}: {body:.300}",
            s.name, s.status
        ));
    }
    if s.identity && !body.contains("x-auth-request-user") {
        return Err(format!(
            "{}: no identity reached the upstream: {body:.300}",
            s.name
        ));
    }
    if let Some(name) = s.sets_cookie {
        if !cookies.iter().any(|c| c.starts_with(name)) {
            return Err(format!("{}: no {name} cookie set: {cookies:?}", s.name));
        }
    }
    if let Some(expected) = s.unauthenticated {
        let bare: Vec<(String, String)> = s
            .headers
            .iter()
            .filter(|(k, _)| k == "accept")
            .cloned()
            .collect();
        let (status, _, _) = send(&bare);
        if status != expected {
            return Err(format!(
                "{}: without credentials expected {expected}, got {status}",
                s.name
            ));
        }
    }
    Ok(())
}

/// Polls `check` until it passes; the time since `started` then.
fn ready(s: &Setup, port: u16, started: Instant) -> Result<f64, String> {
    let mut result = Err(String::new());
    while started.elapsed() < Duration::from_secs(30) {
        result = check(s, port);
        if result.is_ok() {
            return Ok(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    result.map(|_| 0.0)
}

/// Starts every configuration's Envoy, waits until each answers as intended (noting when),
/// and prepares the callback configuration's request. Exits on any failure.
fn start_all(
    setups: &mut [Setup],
    listen: &BTreeMap<&str, u16>,
    app: u16,
    idp: &Idp,
    keys: &Keys,
    figures: &mut Figures,
) -> Vec<Envoy> {
    let mut envoys = Vec::new();
    let mut failures = Vec::new();
    for s in setups.iter_mut() {
        let port = listen[s.name];
        let started = Instant::now();
        // Istio runs proxies with the wasm logger at warning.
        let config = setups::bootstrap(port, app, s);
        let e = Envoy::start_with_log(&format!("bench-{}", s.name), &config, 1, &[], "warning")
            .unwrap_or_else(|e| panic!("{e}"));
        match ready(s, port, started) {
            Ok(t) => {
                figures.ready.insert(s.name.to_string(), t);
            }
            Err(msg) => failures.push(msg),
        }
        if s.name == "oidc-gate-callback" {
            let prepared =
                setups::prepare_callback(s, port, idp, keys).and_then(|()| check(s, port));
            if let Err(msg) = prepared {
                failures.push(format!("callback: {msg}"));
            }
        }
        envoys.push(e);
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("check failed: {f}");
        }
        std::process::exit(1);
    }
    envoys
}

/// RSS with four workers (each holds a VM) after traffic has reached all of them.
fn four_workers(setups: &[Setup], app: u16, figures: &mut Figures) {
    for s in setups
        .iter()
        .filter(|s| ["baseline", "trivial-wasm", "oidc-gate-session"].contains(&s.name))
    {
        let port = free_port();
        let config = setups::bootstrap(port, app, s);
        let e = Envoy::start_with_log(&format!("bench-{}-x4", s.name), &config, 4, &[], "warning")
            .unwrap_or_else(|e| panic!("{e}"));
        if let Err(msg) = ready(s, port, Instant::now()) {
            eprintln!("four workers: {msg}");
            std::process::exit(1);
        }
        let url = format!("http://127.0.0.1:{port}{}", s.path);
        let load = Load {
            url: &url,
            headers: &s.headers,
            connections: 16,
            secs: 1.0,
            script: None,
        };
        measure::wrk(&load, e.proc.pid(), None);
        figures
            .rss4
            .insert(s.name.to_string(), measure::rss_mib(e.proc.pid()));
    }
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(bytes);
    e.finish().map(|v| v.len()).unwrap_or(0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, load_secs, serial_secs) = if quick { (1, 1.0, 1.0) } else { (3, 5.0, 3.0) };
    let keys = Keys::new();
    let idp = Idp::start(&keys);
    let echo = Echo::start();
    let listen: BTreeMap<&str, u16> = NAMES.iter().map(|n| (*n, free_port())).collect();
    let mut setups = setups::all(&keys, &idp, &listen);
    // `--only a,b`: just these configurations (and the baseline), to iterate on one figure.
    if let Some(only) = std::env::args().skip_while(|a| a != "--only").nth(1) {
        let only: Vec<&str> = only.split(',').collect();
        setups.retain(|s| s.name == "baseline" || only.contains(&s.name));
    }
    let mut figures = Figures {
        rounds,
        load_secs,
        serial_secs,
        ..Figures::default()
    };
    let envoys = start_all(&mut setups, &listen, echo.port, &idp, &keys, &mut figures);

    // First sight of bearer tokens: every request a new token (cache misses).
    let distinct = if quick { 300 } else { 3000 };
    let scripts: Vec<(&str, PathBuf)> = [("RS256", 0), ("ES256", 1)]
        .into_iter()
        .map(|(alg, which)| {
            let tokens: Vec<String> = (0..distinct)
                .map(|i| {
                    if which == 0 {
                        keys.rs256(API_AUDIENCE, 10 + i)
                    } else {
                        keys.es256(API_AUDIENCE, 10 + i)
                    }
                })
                .collect();
            (
                alg,
                measure::distinct_tokens_script(&format!("first-sight-{alg}"), &tokens),
            )
        })
        .collect();

    let mut load: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    let mut serial: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    let mut first: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    for round in 0..rounds {
        for (s, e) in setups.iter().zip(&envoys) {
            let url = format!("http://127.0.0.1:{}{}", e.port, s.path);
            let (pid, side) = (e.proc.pid(), s.side.as_ref().map(|p| p.pid()));
            eprintln!("round {}/{rounds}: {}", round + 1, s.name);
            let run = |connections, secs, script| {
                let l = Load {
                    url: &url,
                    headers: &s.headers,
                    connections,
                    secs,
                    script,
                };
                measure::wrk(&l, pid, side)
            };
            load.entry(s.name)
                .or_default()
                .push(run(16, load_secs, None));
            serial
                .entry(s.name)
                .or_default()
                .push(run(1, serial_secs, None));
            if s.name == "oidc-gate-bearer" {
                for (alg, script) in &scripts {
                    let l = Load {
                        url: &url,
                        headers: &[],
                        connections: 1,
                        secs: serial_secs,
                        script: Some(script),
                    };
                    first
                        .entry(alg)
                        .or_default()
                        .push(measure::wrk(&l, pid, None));
                }
            }
        }
    }

    let m = |f: fn(&Run) -> f64, v: &[Run]| median(v.iter().map(f).collect());
    let base_cpu = m(|r| r.cpu_us_per_request, &load["baseline"]);
    let base_p50 = m(|r| r.p50, &serial["baseline"]);
    for (s, e) in setups.iter().zip(&envoys) {
        let l = &load[s.name];
        let cpu = m(|r| r.cpu_us_per_request, l);
        let rss = measure::rss_mib(e.proc.pid());
        figures.added.insert(s.name.to_string(), cpu - base_cpu);
        figures.rss.insert(s.name.to_string(), rss);
        figures.rows.push(json!({
            "name": s.name, "label": s.label,
            "requests_per_second": m(|r| r.rps, l),
            "p50_us": m(|r| r.p50, l), "p90_us": m(|r| r.p90, l), "p99_us": m(|r| r.p99, l),
            "serial_p50_us": m(|r| r.p50, &serial[s.name]),
            "serial_added_p50_us": m(|r| r.p50, &serial[s.name]) - base_p50,
            "envoy_cpu_us_per_request": cpu,
            "added_cpu_us_per_request": cpu - base_cpu,
            "side_cpu_us_per_request": m(|r| r.side_cpu_us_per_request, l),
            "rss_mib": rss,
            "cpu_ratio_to_baseline": if base_cpu > 0.0 { cpu / base_cpu } else { 0.0 },
        }));
    }
    // First-sight runs go one request at a time: compared with the baseline's one-at-a-time
    // CPU per request (a lone request costs Envoy more than one of a busy stream).
    let serial_base_cpu = m(|r| r.cpu_us_per_request, &serial["baseline"]);
    for (alg, runs) in &first {
        let cpu = m(|r| r.cpu_us_per_request, runs) - serial_base_cpu;
        figures
            .first_sight
            .insert(alg.to_string(), (cpu, m(|r| r.p50, runs)));
    }
    drop(envoys);
    four_workers(&setups, echo.port, &mut figures);
    let wasm = std::fs::read(tools::wasm_module()).unwrap_or_default();
    figures.wasm_bytes = wasm.len();
    figures.wasm_gzip = gzip_len(&wasm);

    let out_dir = tools::target_dir().join("bench");
    let _ = std::fs::create_dir_all(&out_dir);
    let report = serde_json::to_string_pretty(&figures.json(quick)).unwrap_or_default();
    let _ = std::fs::write(out_dir.join("results.json"), report);
    let md = figures.markdown();
    let _ = std::fs::write(out_dir.join("results.md"), &md);
    println!("{md}");
    println!("written: {}", out_dir.display());
}
