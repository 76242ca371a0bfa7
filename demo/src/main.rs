//! `cargo run -p demo`: starts the local OpenID provider, an echo app and Envoy with oidc-gate on
//! loopback, prints the URL to open and the test users, and runs until Ctrl-C.
//! `DEMO_PORT` picks the gateway's port (default 8080).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use e2e::idp::{DAVE, USERS};
use e2e::{Stack, StackOptions};
use serde_json::json;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn main() {
    let port: u16 = std::env::var("DEMO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    eprintln!("Installing and starting Envoy, the OpenID provider and the echo app (the first run downloads Envoy and builds the filter)...");
    let stack = Stack::start(
        "demo",
        StackOptions {
            config: json!({"skip_auth_routes": ["^/public/"], "set_authorization_header": true}),
            ports: Some(vec![port]),
            ..StackOptions::default()
        },
    );
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    println!();
    println!("oidc-gate demo is running.");
    println!();
    println!("  Open        {}", stack.url("/"));
    println!("  Sign out    {}", stack.url("/oauth2/sign_out"));
    println!(
        "  Public      {}  (skip_auth_routes: no login)",
        stack.url("/public/hello")
    );
    println!("  IdP         {}", stack.idp.issuer);
    println!();
    println!("  Test users:");
    for u in USERS {
        let unverified = if u.username == DAVE.username {
            "  (email not verified: refused)"
        } else {
            ""
        };
        println!(
            "    {:<6} password {:<9} {:<20} groups: {}{unverified}",
            u.username,
            u.password,
            u.email,
            u.groups.join(", ")
        );
    }
    println!();
    println!("  The app echoes the headers it received: look for X-Auth-Request-*.");
    println!(
        "  Logs and configuration: {}",
        e2e::tools::artifacts_dir().display()
    );
    println!("  Ctrl-C stops everything.");
    while !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("stopping");
    drop(stack);
}
