//! The `oidc-gate-ctl` binary as a user runs it: messages and exit codes.

use std::process::Command;

fn ctl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oidc-gate-ctl"))
        .args(args)
        .output()
        .expect("run oidc-gate-ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("oidc-gate-ctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn validate_prints_every_problem_with_its_key_and_exits_1() {
    let path = temp(
        "broken.json",
        r#"{"oidc_issuer_url": "dev-123456.okta.com", "cookie-secure": true, "cookie_expire": "7d"}"#,
    );
    let (code, stdout, _) = ctl(&["validate", &path]);
    assert_eq!(code, 1);
    // Unknown keys are reported first, on their own.
    assert!(
        stdout.contains(
            "cookie-secure: is not an oidc-gate option; the config-file name is \"cookie_secure\""
        ),
        "{stdout}"
    );
    let path = temp(
        "broken2.json",
        r#"{"oidc_issuer_url": "dev-123456.okta.com", "cookie_expire": "7d", "client_id": "x"}"#,
    );
    let (code, stdout, _) = ctl(&["validate", &path]);
    assert_eq!(code, 1);
    for line in [
        "oidc_issuer_url: \"dev-123456.okta.com\" is not a URL",
        "client_secret: is required (or client_secret_env)",
        "cookie_secret: is required (or cookie_secret_env)",
        "cookie_expire: \"7d\" has unknown unit \"d\"",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "{line}\n{stdout}"
        );
    }
}

#[test]
fn validate_reads_a_wasmplugin_and_render_writes_one_that_validates() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/okta-gateway.json");
    let (code, rendered, err) = ctl(&[
        "render",
        example,
        "--image",
        "r.example/oidc-gate:1",
        "--host",
        "app.example.com",
    ]);
    assert_eq!(code, 0, "{err}");
    let path = temp("rendered.yaml", &rendered);
    let (code, stdout, _) = ctl(&["validate", &path]);
    assert_eq!((code, stdout.contains("valid")), (0, true), "{stdout}");
    let (code, _, err) = ctl(&["render", example]);
    assert_eq!(code, 2);
    assert!(
        err.contains("required arguments were not provided") && err.contains("--image"),
        "{err}"
    );
}

#[test]
fn every_subcommand_has_help_and_a_misspelled_flag_is_an_error() {
    for sub in ["validate", "render", "image", "push", "migrate", "schema"] {
        let (code, stdout, err) = ctl(&[sub, "--help"]);
        assert_eq!(code, 0, "{sub}: {err}");
        assert!(stdout.contains("Usage: oidc-gate-ctl"), "{sub}: {stdout}");
    }
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/okta-gateway.json");
    let (code, _, err) = ctl(&["render", example, "--image", "r/x:1", "--namspace", "gw"]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--namspace'"), "{err}");
}

#[test]
fn render_refuses_inline_secrets_unless_they_go_to_their_own_file() {
    let config = temp(
        "inline.json",
        r#"{"oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default", "client_id": "0oa1",
            "client_secret": "cl13nt-s3cr3t", "cookie_secret": "cGxhY2Vob2xkZXItZm9yLWEtMzItYnl0ZS1zZWNyZXQ="}"#,
    );
    let (code, stdout, err) = ctl(&["render", &config, "--image", "r/x:1"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty() && !err.contains("cl13nt-s3cr3t"), "{err}");
    assert!(
        err.contains("client_secret, cookie_secret inline") && err.contains("--secret-out"),
        "{err}"
    );
    let secret_file = temp("secret.yaml", "");
    let (code, stdout, err) = ctl(&[
        "render",
        &config,
        "--image",
        "r/x:1",
        "--secret-out",
        &secret_file,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!stdout.contains("cl13nt-s3cr3t") && stdout.contains("OIDC_CLIENT_SECRET"));
    let secrets = std::fs::read_to_string(&secret_file).expect("secret file");
    assert!(
        secrets.contains("kind: Secret") && secrets.contains("cl13nt-s3cr3t"),
        "{secrets}"
    );
}

#[test]
fn migrate_prints_a_configuration_and_notes() {
    let values = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oauth2-proxy-values.yaml"
    );
    let (code, stdout, stderr) = ctl(&["migrate", values]);
    assert_eq!(code, 0, "{stderr}");
    let config: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(config["allowed_groups"], serde_json::json!(["admins"]));
    assert!(stderr.contains("note: upstream: not needed"), "{stderr}");
}
