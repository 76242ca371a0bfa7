//! A minimal HTTP/1.1 server with keep-alive, a thread per connection: enough for Envoy's
//! connection pools, and nothing a benchmark would notice.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

/// One request as the handler sees it.
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Serves `listener` until the process ends; `answer` gives the whole response bytes.
pub fn serve(listener: TcpListener, answer: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static) {
    let answer = Arc::new(answer);
    for conn in listener.incoming().flatten() {
        let answer = answer.clone();
        std::thread::spawn(move || {
            let _ = conn.set_nodelay(true);
            let Ok(read) = conn.try_clone() else { return };
            let mut reader = BufReader::new(read);
            let mut out = conn;
            while let Some(request) = read_request(&mut reader) {
                if out.write_all(&answer(&request)).is_err() {
                    return;
                }
            }
        });
    }
}

/// Reads one request head and its `content-length` body; `None` at the end of the connection.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, body })
}

/// A complete response with a body.
pub fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
