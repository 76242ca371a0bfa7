//! The upstream app: answers every request with a JSON echo of what reached it (method, path,
//! headers), so tests can assert what the filter let through. Bytes that are not UTF-8 (which
//! clients may send and the filter passes on) are echoed as U+FFFD.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

pub struct Echo {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

/// One line, decoded lossily; 0 at the end of the stream.
fn read_line(reader: &mut BufReader<TcpStream>, line: &mut String) -> usize {
    let mut bytes = Vec::new();
    let n = reader.read_until(b'\n', &mut bytes).unwrap_or(0);
    *line = String::from_utf8_lossy(&bytes).into_owned();
    n
}

fn handle(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut out = stream;
    // Keep-alive: serve requests on this connection until the peer closes it.
    for _ in 0..10_000 {
        let mut line = String::new();
        if read_line(&mut reader, &mut line) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if read_line(&mut reader, &mut h) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    length = v.parse().unwrap_or(0);
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let header_list: Vec<serde_json::Value> = headers
            .iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect();
        let json =
            serde_json::json!({"method": method, "path": path, "headers": header_list}).to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
            json.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

impl Echo {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
        let port = listener.local_addr().expect("echo addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(c) = conn {
                    thread::spawn(move || handle(c));
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What the echo upstream saw, parsed from its JSON answer.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn parse(body: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        let headers = v["headers"]
            .as_array()?
            .iter()
            .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
            .collect();
        Some(Self {
            method: v["method"].as_str()?.to_string(),
            path: v["path"].as_str()?.to_string(),
            headers,
        })
    }

    /// Every value of a header (names are lower case).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}
