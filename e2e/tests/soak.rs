//! Load over time: signed-in traffic from several browsers plus a steady trickle of new logins
//! against the real stack. Zero unexpected 5xx, and Envoy's memory stays flat. A few seconds in
//! the test suite; `just soak` runs it for minutes (`SOAK_SECONDS`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::idp::ALICE;
use e2e::{Browser, Stack, StackOptions};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn signed_in_traffic_and_new_logins_over_time_give_no_5xx_and_flat_memory() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let s = Stack::start(
        "soak",
        StackOptions {
            concurrency: 2,
            ..StackOptions::default()
        },
    );
    let pid = s.envoys[0].proc.pid();
    let mut signed_in = Vec::new();
    for _ in 0..4 {
        let mut b = Browser::new();
        b.signs_in(&s.url("/"), &ALICE);
        signed_in.push(b);
    }
    // Warm up before the first memory reading.
    for b in signed_in.iter_mut() {
        for _ in 0..50 {
            b.get(&s.url("/warm"));
        }
    }
    let rss_start = rss_kib(pid);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (ok, errors, logins) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    std::thread::scope(|scope| {
        for mut b in signed_in.drain(..) {
            let (ok, errors, url) = (&ok, &errors, s.url("/api/data"));
            scope.spawn(move || {
                while Instant::now() < deadline {
                    let r = b.get(&url);
                    if r.status == 200 && r.seen().is_some() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let (logins, errors, url) = (&logins, &errors, s.url("/new"));
        scope.spawn(move || {
            while Instant::now() < deadline {
                let mut b = Browser::new();
                match b.login(&url, "bob", "bob-pw").last().map(|r| r.status) {
                    Some(200) => logins.fetch_add(1, Ordering::Relaxed),
                    _ => errors.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(250));
            }
        });
    });
    let rss_end = rss_kib(pid);
    let (ok, errors, logins) = (ok.into_inner(), errors.into_inner(), logins.into_inner());
    eprintln!("soak: {seconds}s, {ok} signed-in requests, {logins} logins, {errors} errors; Envoy RSS {rss_start} KiB -> {rss_end} KiB");
    assert_eq!(errors, 0);
    assert!(ok > 0 && logins > 0);
    // Flat: allowance for allocator noise, far below what a per-request leak would add.
    assert!(
        rss_end < rss_start + 32 * 1024,
        "Envoy RSS grew from {rss_start} to {rss_end} KiB"
    );
}
