//! The leanest ext_authz HTTP authorizer: answers every check 200 with identity headers, as
//! OAuth2-Proxy would for a valid session (without its work), so the hop's cost is a lower
//! bound. Usage: authorizer PORT
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nx-auth-request-user: 00u-alice\r\nx-auth-request-email: alice@example.com\r\nx-auth-request-groups: admins,everyone\r\ncontent-length: 0\r\n\r\n";

fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("authorizer: {e}");
            std::process::exit(1);
        }
    };
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = conn.set_nodelay(true);
            let Ok(read) = conn.try_clone() else { return };
            let mut reader = BufReader::new(read);
            let mut out = conn;
            loop {
                // Read one request head (checks carry no body here) and answer it.
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; length];
                if std::io::Read::read_exact(&mut reader, &mut body).is_err()
                    || out.write_all(RESPONSE).is_err()
                {
                    return;
                }
            }
        });
    }
}
