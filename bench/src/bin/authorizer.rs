//! The leanest ext_authz HTTP authorizer: answers every check 200 with identity headers, as
//! OAuth2-Proxy would for a valid session (without its work), so the hop's cost is a lower
//! bound. Usage: authorizer PORT

use std::net::TcpListener;

use oidc_gate_bench::http;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nx-auth-request-user: 00u-alice\r\nx-auth-request-email: alice@example.com\r\nx-auth-request-groups: admins,everyone\r\ncontent-length: 0\r\n\r\n";

fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => http::serve(listener, |_| RESPONSE.to_vec()),
        Err(e) => {
            eprintln!("authorizer: {e}");
            std::process::exit(1);
        }
    }
}
