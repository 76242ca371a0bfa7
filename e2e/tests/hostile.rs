//! Bytes no client should send, sent anyway, through the real Envoy: obs-text and control bytes
//! in header values, odd header names, broken cookies and raw bytes in paths, over many
//! connections. None may stop the filter: afterwards signed-in users still pass, new visitors
//! still get the login redirect, and Envoy's log shows no failed VM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::idp::ALICE;
use e2e::{Browser, Stack, StackOptions};
use serde_json::json;

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// 1 to `max` hostile bytes that may stand in a header line (no CR or LF).
    fn line(&mut self, max: usize) -> Vec<u8> {
        let len = 1 + self.below(max);
        let mut bytes = self.hostile(len);
        bytes.retain(|b| *b != b'\r' && *b != b'\n');
        bytes
    }

    /// Bytes a client might send that are not plain ASCII text: obs-text (0x80–0xff), the odd
    /// control byte, UTF-8 fragments.
    fn hostile(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| match self.below(6) {
                0..=2 => 0x80 + self.below(0x80) as u8,
                3 => {
                    let control = [0x01, 0x08, 0x0b, 0x7f, b'\t'];
                    control[self.below(control.len())]
                }
                4 => {
                    let punctuation = b"%;/\\.,=\"'";
                    punctuation[self.below(punctuation.len())]
                }
                _ => b'a' + self.below(26) as u8,
            })
            .collect()
    }
}

/// One hostile request, raw: the filter must see bytes that no HTTP library would send.
fn hostile_request(rng: &mut Rng, session_cookie: &str) -> Vec<u8> {
    let mut req = Vec::new();
    let mut path = b"/".to_vec();
    if rng.below(3) == 0 {
        path.extend(rng.line(40));
    } else {
        path.extend_from_slice(b"app");
    }
    req.extend_from_slice(b"GET ");
    req.extend(path.iter().map(|b| if *b == b' ' { b'_' } else { *b }));
    req.extend_from_slice(b" HTTP/1.1\r\nhost: localhost\r\naccept: text/html\r\n");
    for _ in 0..rng.below(4) {
        let name: &[u8] = match rng.below(6) {
            0 => b"user-agent",
            1 => b"referer",
            2 => b"authorization",
            3 => b"x-auth-request-user",
            4 => b"x_auth_request_email",
            _ => b"x-custom",
        };
        req.extend_from_slice(name);
        req.extend_from_slice(b": ");
        req.extend(rng.line(80));
        req.extend_from_slice(b"\r\n");
    }
    if rng.below(4) == 0 {
        // A name that is not a token at all.
        req.extend(rng.line(12).into_iter().filter(|b| *b != b':'));
        req.extend_from_slice(b": x\r\n");
    }
    match rng.below(4) {
        0 => {
            req.extend_from_slice(b"cookie: _oauth2_proxy=");
            req.extend(rng.line(200));
            req.extend_from_slice(b"\r\n");
        }
        1 => {
            // The real session with hostile bytes around it.
            req.extend_from_slice(b"cookie: a=");
            req.extend(rng.line(8));
            req.extend_from_slice(format!("; {session_cookie}; b=").as_bytes());
            req.push(0xff);
            req.extend_from_slice(b"\r\n");
        }
        _ => {}
    }
    req.extend_from_slice(b"\r\n");
    req
}

/// Sends `count` hostile requests on one connection (reconnecting when Envoy closes it) and
/// returns the status codes seen.
fn fire(port: u16, seed: u64, count: usize, session_cookie: &str) -> Vec<u16> {
    let mut rng = Rng(seed);
    let mut statuses = Vec::new();
    for _ in 0..count {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
            statuses.push(0);
            continue;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        let mut req = hostile_request(&mut rng, session_cookie);
        // One request per connection: a request Envoy refuses closes the connection anyway.
        let head_end = req.len() - 2;
        req.splice(head_end..head_end, b"connection: close\r\n".iter().copied());
        let _ = conn.write_all(&req);
        // The status line is enough; waiting for Envoy to close would wait out its delayed close.
        let mut resp = Vec::new();
        let mut buf = [0u8; 4096];
        while !resp.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.extend_from_slice(&buf[..n]),
            }
        }
        let status = resp
            .split(|b| *b == b' ')
            .nth(1)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status == 0 || status >= 500 {
            eprintln!(
                "{status} for {:?}:\n{:?}",
                String::from_utf8_lossy(&req),
                String::from_utf8_lossy(&resp)
            );
        }
        statuses.push(status);
    }
    statuses
}

#[test]
fn hostile_bytes_in_names_values_cookies_and_paths_never_stop_the_filter() {
    let s = Stack::start(
        "hostile",
        StackOptions {
            config: json!({
                "skip_jwt_bearer_tokens": true,
                "skip_auth_routes": ["GET=^/public/"],
                "claim_headers": {"X-WEBAUTH-USER": "preferred_username"},
            }),
            concurrency: 2,
            ..StackOptions::default()
        },
    );
    let mut alice = Browser::new();
    let hops = alice.login(&s.url("/"), ALICE.username, ALICE.password);
    assert_eq!(hops.last().map(|r| r.status), Some(200));
    let session = alice
        .cookies(&s.url("/"))
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let port = s.envoys[0].port;
    let connections = 24;
    let per_connection = 125;
    let reached_5xx = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for c in 0..connections {
            let (session, reached_5xx) = (&session, &reached_5xx);
            scope.spawn(move || {
                let statuses = fire(
                    port,
                    0x9e37_79b9_7f4a_7c15 ^ c as u64,
                    per_connection,
                    session,
                );
                let bad = statuses.iter().filter(|s| **s >= 500 || **s == 0).count();
                reached_5xx.fetch_add(bad, Ordering::Relaxed);
            });
        }
    });
    let log = s.envoy_log();
    for sign in [
        "Uncaught",
        "RuntimeError",
        "wasm_fail_stream",
        "panicked",
        "internal error",
    ] {
        assert!(
            !log.contains(sign),
            "Envoy's log shows a failed VM ({sign})"
        );
    }
    assert_eq!(
        reached_5xx.into_inner(),
        0,
        "a hostile request got a 5xx or no answer"
    );
    // Afterwards the filter still works on every worker.
    for _ in 0..20 {
        let r = alice.get(&s.url("/after"));
        assert_eq!(r.status, 200);
        let seen = r.seen().expect("reached the app");
        assert_eq!(seen.all("x-auth-request-user"), vec!["00u-alice"]);
        let mut visitor = Browser::new();
        assert_eq!(visitor.get(&s.url("/after")).status, 302);
    }
}
