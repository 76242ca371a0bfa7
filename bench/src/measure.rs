//! Measuring one configuration: wrk for load and latency, /proc for Envoy's CPU and memory.

use std::path::PathBuf;
use std::process::Command;

use e2e::tools;

#[derive(Default, Clone, Debug)]
pub struct Run {
    pub rps: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub requests: u64,
    pub cpu_us_per_request: f64,
    pub side_cpu_us_per_request: f64,
}

/// user + system CPU ticks (1/100 s) of a process.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// wrk's duration text ("1.23ms", "850.00us", "1.10s") in microseconds.
fn micros(text: &str) -> f64 {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        (t, 1.0)
    };
    num.parse::<f64>().unwrap_or(0.0) * scale
}

/// What wrk drives and for how long.
pub struct Load<'a> {
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub connections: u32,
    pub secs: f64,
    /// A Lua script that makes each request (e.g. a new token each time).
    pub script: Option<&'a PathBuf>,
}

/// Runs wrk and reads Envoy's (and a side process's) CPU before and after.
pub fn wrk(load: &Load<'_>, pid: u32, side: Option<u32>) -> Run {
    let mut cmd = Command::new(tools::wrk());
    cmd.args([
        "-t1",
        &format!("-c{}", load.connections),
        &format!("-d{}s", load.secs.max(1.0) as u64),
        "--latency",
    ]);
    for (k, v) in load.headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(s) = load.script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(load.url);
    let (before, side_before) = (cpu_ticks(pid), side.map(cpu_ticks).unwrap_or(0));
    let out = cmd.output().expect("run wrk");
    let (after, side_after) = (cpu_ticks(pid), side.map(cpu_ticks).unwrap_or(0));
    let mut run = parse_wrk(&String::from_utf8_lossy(&out.stdout));
    let tick_us = 1_000_000.0 / 100.0;
    if run.requests > 0 {
        run.cpu_us_per_request = (after - before) as f64 * tick_us / run.requests as f64;
        run.side_cpu_us_per_request =
            (side_after - side_before) as f64 * tick_us / run.requests as f64;
    }
    run
}

fn parse_wrk(text: &str) -> Run {
    let mut run = Run::default();
    for line in text.lines() {
        let l = line.trim();
        let mut it = l.split_whitespace();
        match (it.next(), it.next()) {
            (Some("50%"), Some(v)) => run.p50 = micros(v),
            (Some("90%"), Some(v)) => run.p90 = micros(v),
            (Some("99%"), Some(v)) => run.p99 = micros(v),
            (Some("Requests/sec:"), Some(v)) => run.rps = v.parse().unwrap_or(0.0),
            _ => {}
        }
        if l.contains(" requests in ") {
            run.requests = l
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        }
    }
    run
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A Lua script for wrk that sends each request with the next of `tokens` as its bearer token.
pub fn distinct_tokens_script(name: &str, tokens: &[String]) -> PathBuf {
    let script = tools::artifacts_dir().join(format!("bench-{name}.lua"));
    let lua = format!(
        "tokens = {{{}}}\ni = 0\nrequest = function()\n  i = i % #tokens + 1\n  return wrk.format(nil, nil, {{[\"Authorization\"] = \"Bearer \" .. tokens[i]}})\nend\n",
        tokens.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(",")
    );
    std::fs::write(&script, lua).expect("write the wrk script");
    script
}
