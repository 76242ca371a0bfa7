//! A fault-injecting stand-in between Envoy and the OpenID provider: it passes requests on, or
//! (for the paths it is told) delays, drops, answers 500, garbage, a huge body or a given one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Pass,
    Delay(Duration),
    /// Close the connection without an answer.
    Drop,
    Status500,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a 1 MiB body.
    Huge,
    /// 200 with this JSON body (an answer the provider would not give).
    Json(String),
}

#[derive(Default)]
struct Rules {
    /// (path suffix, fault); the first match applies; none: pass.
    by_path: Vec<(String, Fault)>,
}

pub struct FaultProxy {
    pub port: u16,
    target: Arc<AtomicU16>,
    rules: Arc<Mutex<Rules>>,
    stop: Arc<AtomicBool>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut path = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if path.is_empty() {
            path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.push_str("connection: close\r\n\r\n");
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&body);
    Some((path, raw))
}

fn answer(out: &mut TcpStream, status: &str, body: &[u8]) {
    let head = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(body);
}

fn handle(conn: TcpStream, target: u16, rules: &Mutex<Rules>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(reader_stream) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader_stream);
    let mut out = conn;
    // One request per connection: answers close the connection.
    let Some((path, raw)) = read_request(&mut reader) else {
        return;
    };
    let path_only = path.split('?').next().unwrap_or("").to_string();
    let fault = rules
        .lock()
        .map(|r| {
            r.by_path
                .iter()
                .find(|(suffix, _)| path_only.ends_with(suffix.as_str()))
                .map(|(_, f)| f.clone())
        })
        .ok()
        .flatten()
        .unwrap_or(Fault::Pass);
    match fault {
        Fault::Drop => return,
        Fault::Status500 => {
            return answer(
                &mut out,
                "500 Internal Server Error",
                br#"{"error":"server_error"}"#,
            )
        }
        Fault::Garbage => return answer(&mut out, "200 OK", b"<html>this is not JSON"),
        Fault::Huge => return answer(&mut out, "200 OK", &vec![b'a'; 1 << 20]),
        Fault::Json(body) => return answer(&mut out, "200 OK", body.as_bytes()),
        Fault::Delay(d) => std::thread::sleep(d),
        Fault::Pass => {}
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target)) else {
        return;
    };
    let _ = upstream.set_read_timeout(Some(Duration::from_secs(10)));
    if upstream.write_all(&raw).is_err() {
        return;
    }
    let mut response = Vec::new();
    let _ = upstream.read_to_end(&mut response);
    let _ = out.write_all(&response);
}

impl FaultProxy {
    pub fn start() -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let port = listener.local_addr().expect("addr").port();
        let proxy = Arc::new(Self {
            port,
            target: Arc::new(AtomicU16::new(0)),
            rules: Arc::new(Mutex::new(Rules::default())),
            stop: Arc::new(AtomicBool::new(false)),
        });
        let (target, rules, stop) = (
            proxy.target.clone(),
            proxy.rules.clone(),
            proxy.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = conn {
                    let (t, r) = (target.load(Ordering::Relaxed), rules.clone());
                    std::thread::spawn(move || handle(c, t, &r));
                }
            }
        });
        proxy
    }

    pub fn set_target(&self, port: u16) {
        self.target.store(port, Ordering::Relaxed);
    }

    /// Applies `fault` to requests whose path ends with `suffix` (replacing an earlier rule).
    pub fn set(&self, suffix: &str, fault: Fault) {
        if let Ok(mut r) = self.rules.lock() {
            r.by_path.retain(|(s, _)| s != suffix);
            if fault != Fault::Pass {
                r.by_path.push((suffix.to_string(), fault));
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
