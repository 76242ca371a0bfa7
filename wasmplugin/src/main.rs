//! oidc-gate-ctl: validate a configuration, render the Istio resources, build and push the OCI
//! image, migrate OAuth2-Proxy Helm values, print the configuration's JSON Schema.

use std::process::ExitCode;

use oidc_gate_wasmplugin::image::{self, Variant};
use oidc_gate_wasmplugin::render::{self, Kind, Options};
use oidc_gate_wasmplugin::{migrate, validate};

const USAGE: &str = "usage:
  oidc-gate-ctl validate CONFIG.json|WASMPLUGIN.yaml
  oidc-gate-ctl render CONFIG.json --image REF [--sha256 DIGEST] [--host APP_HOST]
                [--kind wasmplugin|trafficextension] [--namespace NS] [--name NAME]
                [--secret-out FILE] [--gateway DEPLOYMENT]
  oidc-gate-ctl image WASM --out DIR [--variant compat|artifact]
  oidc-gate-ctl push WASM REF [--variant compat|artifact] [--plain-http]
  oidc-gate-ctl migrate OAUTH2_PROXY_VALUES.yaml
  oidc-gate-ctl schema";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn variant(args: &[String]) -> Result<Variant, String> {
    match flag(args, "--variant").as_deref() {
        None | Some("compat") => Ok(Variant::Compat),
        Some("artifact") => Ok(Variant::Artifact),
        Some(other) => Err(format!("--variant {other}: use compat or artifact")),
    }
}

/// Writes the secrets `render` moved out of the plugin configuration to their own file (a
/// Secret and the gateway's env patch), or refuses: they never go into the plugin resource.
fn write_secrets(secrets: &render::MovedSecrets, out: Option<String>) -> Result<(), String> {
    if secrets.docs.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = secrets.moved.iter().map(|(k, _)| k.as_str()).collect();
    let Some(path) = out else {
        return Err(format!(
            "the configuration holds {} inline; in the WasmPlugin anyone who can read it or an Envoy config dump would read them. Give --secret-out FILE to write them into a Kubernetes Secret (with the gateway env patch), or use the *_env options",
            keys.join(", ")
        ));
    };
    std::fs::write(&path, render::to_yaml(&secrets.docs)).map_err(|e| format!("{path}: {e}"))?;
    for (key, var) in &secrets.moved {
        eprintln!("secret: {key} moved to {var} in {path} (apply it, then patch the gateway)");
    }
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    let positional: Vec<&String> = args
        .iter()
        .skip(1)
        .take_while(|a| !a.starts_with("--"))
        .collect();
    match (args.first().map(String::as_str), positional.as_slice()) {
        (Some("validate"), [path]) => {
            let config = validate::plugin_config(&read(path)?)?;
            let problems = validate::check(&config);
            if problems.is_empty() {
                println!("{path}: valid (secrets named by *_env options are read from the gateway's environment and not checked here)");
                return Ok(());
            }
            for p in &problems {
                println!("{}: {}", p.key, p.rule);
            }
            Err(format!("{path}: {} problem(s)", problems.len()))
        }
        (Some("render"), [path]) => {
            let config = validate::plugin_config(&read(path)?)?;
            let options = Options {
                kind: match flag(args, "--kind").as_deref() {
                    None | Some("wasmplugin") => Kind::WasmPlugin,
                    Some("trafficextension") => Kind::TrafficExtension,
                    Some(other) => {
                        return Err(format!(
                            "--kind {other}: use wasmplugin or trafficextension"
                        ))
                    }
                },
                image: flag(args, "--image").ok_or("--image REF is required")?,
                sha256: flag(args, "--sha256"),
                host: flag(args, "--host"),
                namespace: flag(args, "--namespace").unwrap_or_else(|| "istio-system".into()),
                name: flag(args, "--name").unwrap_or_else(|| "oidc-gate".into()),
                gateway: flag(args, "--gateway").unwrap_or_else(|| "istio-ingressgateway".into()),
                ..Options::default()
            };
            let rendered = render::render(&config, &options).map_err(|p| p.join("\n"))?;
            write_secrets(&rendered.secrets, flag(args, "--secret-out"))?;
            print!("{}", render::to_yaml(&rendered.docs));
            Ok(())
        }
        (Some("image"), [wasm]) => {
            let out = flag(args, "--out").ok_or("--out DIR is required")?;
            let bytes = std::fs::read(wasm.as_str()).map_err(|e| format!("{wasm}: {e}"))?;
            let img = image::build(&bytes, variant(args)?).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let manifest = serde_json::to_vec_pretty(&img.manifest).map_err(|e| e.to_string())?;
            std::fs::write(format!("{out}/manifest.json"), &manifest).map_err(|e| e.to_string())?;
            std::fs::write(format!("{out}/config.json"), &img.config.data)
                .map_err(|e| e.to_string())?;
            for l in &img.layers {
                std::fs::write(format!("{out}/{}", image::sha256_hex(&l.data)), &l.data)
                    .map_err(|e| e.to_string())?;
            }
            println!("{out}: manifest, config and {} layer(s)", img.layers.len());
            Ok(())
        }
        (Some("push"), [wasm, reference]) => {
            let bytes = std::fs::read(wasm.as_str()).map_err(|e| format!("{wasm}: {e}"))?;
            let img = image::build(&bytes, variant(args)?).map_err(|e| e.to_string())?;
            let registry = reference.split('/').next().unwrap_or_default();
            let auth = image::docker_auth(registry);
            let digest = image::push(
                &img,
                reference,
                &auth,
                args.iter().any(|a| a == "--plain-http"),
            )?;
            // What a WasmPlugin's `sha256` must hold for an oci:// URL.
            println!("{digest}");
            Ok(())
        }
        (Some("migrate"), [path]) => {
            let m = migrate::migrate(&read(path)?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&m.config).map_err(|e| e.to_string())?
            );
            for (name, _) in &m.secrets {
                eprintln!("secret: put the value in a Kubernetes Secret and pass it to the gateway as {name} (vmConfig.env valueFrom: HOST)");
            }
            for n in &m.notes {
                eprintln!("note: {n}");
            }
            Ok(())
        }
        (Some("schema"), []) => {
            let schema = oidc_gate_core::config::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
