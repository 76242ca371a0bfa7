//! The login in a real headless Chromium (Debian's package, driven by playwright-core): the
//! screenshot of the final page is kept as `e2e/artifacts/browser-login.png`.

use e2e::idp::ALICE;
use e2e::{tools, Stack};
use serde_json::json;

#[test]
fn chromium_logs_in_through_the_gateway_with_secure_httponly_cookies() {
    // Default cookie attributes (Secure included): Chromium treats http://localhost as secure.
    let s = Stack::with_config("browser", json!({"cookie_secure": true}));
    let screenshot = tools::artifacts_dir().join("browser-login.png");
    let result = tools::chromium_login(
        &s.url("/welcome?from=chromium"),
        ALICE.username,
        ALICE.password,
        &screenshot,
    );
    assert_eq!(result["status"], 200, "{result}");
    assert!(
        result["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/welcome?from=chromium"),
        "{result}"
    );
    let text = result["text"].as_str().unwrap_or("");
    assert!(
        text.contains("\"x-auth-request-email\",\"alice@example.com\""),
        "{text}"
    );
    assert!(
        text.contains("\"x-auth-request-groups\",\"admins,everyone\""),
        "{text}"
    );
    let session = result["cookies"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "_oauth2_proxy"))
        .cloned()
        .expect("session cookie in the browser");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["secure"], true);
    assert_eq!(session["sameSite"], "Lax");
    assert!(
        std::fs::metadata(&screenshot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "screenshot missing"
    );
}
