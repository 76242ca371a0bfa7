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
fn render_target_ref_attaches_to_a_gateway_api_gateway() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/okta-gateway.json");
    for kind in ["wasmplugin", "trafficextension"] {
        let (code, rendered, err) = ctl(&[
            "render",
            example,
            "--image",
            "r.example/oidc-gate:1",
            "--kind",
            kind,
            "--namespace",
            "apps",
            "--target-ref",
            "Gateway/public",
            "--target-ref",
            "Service/reviews",
        ]);
        assert_eq!(code, 0, "{err}");
        let plugin: serde_json::Value =
            serde_yaml::from_str(rendered.split("---\n").next().unwrap_or("")).expect("YAML");
        assert_eq!(plugin["metadata"]["namespace"], "apps");
        assert!(plugin["spec"].get("selector").is_none(), "{rendered}");
        assert_eq!(
            plugin["spec"]["targetRefs"],
            serde_json::json!([
                {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"},
                {"group": "", "kind": "Service", "name": "reviews"},
            ])
        );
        let path = temp(&format!("target-ref-{kind}.yaml"), &rendered);
        let (code, stdout, _) = ctl(&["validate", &path]);
        assert_eq!((code, stdout.contains("valid")), (0, true), "{stdout}");
    }
    // An unknown kind is a usage error naming the kinds accepted.
    let (code, stdout, err) = ctl(&[
        "render",
        example,
        "--image",
        "r/x:1",
        "--target-ref",
        "HTTPRoute/web",
    ]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(
        err.contains("--target-ref")
            && err.contains("\"HTTPRoute\" is not a kind")
            && err.contains("Gateway, GatewayClass, Service, ServiceEntry"),
        "{err}"
    );
    let (code, _, err) = ctl(&[
        "render",
        example,
        "--image",
        "r/x:1",
        "--target-ref",
        "public",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("expected <kind>/<name>"), "{err}");
    // --help says where the gateway Deployment's default comes from.
    let (_, help, _) = ctl(&["render", "--help"]);
    assert!(
        help.contains("--target-ref <KIND/NAME>") && help.contains("NAME-istio"),
        "{help}"
    );
}

#[test]
fn render_target_ref_patches_the_gateways_own_deployment() {
    let config = temp(
        "inline-target.json",
        r#"{"oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default", "client_id": "0oa1",
            "client_secret": "cl13nt-s3cr3t", "cookie_secret_env": "OIDC_COOKIE_SECRET"}"#,
    );
    let secret_file = temp("secret-target.yaml", "");
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = vec![
            "render".into(),
            config.clone(),
            "--image".into(),
            "r/x:1".into(),
            "--namespace".into(),
            "apps".into(),
            "--secret-out".into(),
            secret_file.clone(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |a: Vec<String>| ctl(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (code, _, err) = run(args(&["--target-ref", "Gateway/public"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Deployment public-istio"), "{err}");
    let docs: Vec<serde_json::Value> = std::fs::read_to_string(&secret_file)
        .expect("secret file")
        .split("---\n")
        .map(|d| serde_yaml::from_str(d).expect("YAML"))
        .collect();
    assert_eq!(docs[1]["kind"], "Deployment");
    assert_eq!(docs[1]["metadata"]["name"], "public-istio");
    assert_eq!(docs[1]["metadata"]["namespace"], "apps");
    // A waypoint's Service has no Deployment to derive: refused until --gateway names it.
    let (code, stdout, err) = run(args(&["--target-ref", "Service/reviews"]));
    assert_eq!(code, 1);
    assert!(stdout.is_empty() && err.contains("--gateway"), "{err}");
    let (code, _, err) = run(args(&[
        "--target-ref",
        "Service/reviews",
        "--gateway",
        "waypoint",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Deployment waypoint"), "{err}");
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

#[test]
fn keygen_writes_a_private_key_the_configuration_accepts_and_prints_its_public_jwk() {
    let dir = std::env::temp_dir().join(format!("oidc-gate-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for alg in ["RS256", "ES256"] {
        let key = dir.join(format!("{alg}.pem"));
        let _ = std::fs::remove_file(&key);
        let (code, stdout, stderr) =
            ctl(&["keygen", "--alg", alg, "--out", &key.display().to_string()]);
        assert_eq!(code, 0, "{stderr}");
        let jwk: serde_json::Value = serde_json::from_str(&stdout).expect("the JWK is JSON");
        assert_eq!(jwk["alg"], alg);
        assert_eq!(jwk["use"], "sig");
        assert!(!stdout.contains("PRIVATE"), "{stdout}");
        let kid = jwk["kid"].as_str().unwrap_or_default().to_string();
        assert!(stderr.contains(&kid), "{stderr}");
        let pem = std::fs::read_to_string(&key).expect("the key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only its owner reads the key");
        }
        let config = serde_json::json!({
            "oidc_issuer_url": "https://dev-123456.okta.com/oauth2/default", "client_id": "0oa1",
            "client_auth_method": "private_key_jwt", "client_private_key": pem,
            "cookie_secret": "cGxhY2Vob2xkZXItZm9yLWEtMzItYnl0ZS1zZWNyZXQ="});
        let path = temp(&format!("{alg}.json"), &config.to_string());
        let (code, stdout, _) = ctl(&["validate", &path]);
        assert_eq!(code, 0, "{stdout}");
    }
}

#[test]
fn migrate_takes_one_values_file_per_app_with_its_hosts() {
    let grafana = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/oauth2-proxy-values.yaml"
    );
    let finance = temp(
        "finance.yaml",
        "config:\n  clientID: 0oafinance\n  clientSecret: f1n-s3cr3t\n  cookieSecret: ZmluYW5jZS1jb29raWUtc2VjcmV0LTMyLWJ5dGVzISE=\nextraArgs:\n  oidc-issuer-url: https://dev-123456.okta.com/oauth2/finance\n  allowed-group: finance\n",
    );
    let grafana_arg = format!("{grafana}=grafana.example.com");
    let finance_arg = format!("{finance}=finance.example.com,pay.example.com");
    let (code, stdout, stderr) = ctl(&["migrate", &grafana_arg, &finance_arg]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("f1n-s3cr3t"), "{stdout}");
    let config: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(config["providers"][0]["id"], "finance");
    assert_eq!(
        config["providers"][0]["client_secret_env"],
        "OIDC_CLIENT_SECRET_FINANCE"
    );
    assert_eq!(config["policies"][1]["provider"], "finance");
    assert_eq!(
        config["policies"][1]["hosts"],
        serde_json::json!(["finance.example.com", "pay.example.com"])
    );
    assert!(stderr.contains("as OIDC_CLIENT_SECRET_FINANCE"), "{stderr}");
    assert!(
        stderr.contains("note: finance: cookieSecret dropped"),
        "{stderr}"
    );
    let path = temp("migrated.json", &stdout);
    let (code, out, _) = ctl(&["validate", &path]);
    assert_eq!(code, 0, "{out}");
    // Several files: each one names its hosts.
    let (code, _, stderr) = ctl(&["migrate", &grafana_arg, &finance]);
    assert_eq!(code, 1);
    assert!(stderr.contains("finance: give the hosts"), "{stderr}");
    let (code, stdout, _) = ctl(&["migrate", "--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("VALUES[=HOSTS]"), "{stdout}");
}
