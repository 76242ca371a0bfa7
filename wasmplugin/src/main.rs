//! oidc-gate-ctl: validate a configuration, render the Istio resources, build and push the OCI
//! image, migrate OAuth2-Proxy Helm values, print the configuration's JSON Schema.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use oidc_gate_core::client_key::{ClientKey, KeyAlg};
use oidc_gate_wasmplugin::image::{self, Variant};
use oidc_gate_wasmplugin::render::{self, Kind, Options, TargetRef};
use oidc_gate_wasmplugin::{migrate, validate};

/// oidc-gate's Istio side: configurations, manifests and the OCI image.
#[derive(Parser)]
#[command(name = "oidc-gate-ctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration (JSON) or a WasmPlugin/TrafficExtension (YAML): every problem, with
    /// its key; exit 1 on any.
    Validate {
        /// CONFIG.json, or a WasmPlugin / TrafficExtension manifest.
        file: PathBuf,
    },
    /// Write the WasmPlugin (or TrafficExtension) and the ServiceEntry and DestinationRule of
    /// each IdP host.
    Render(RenderArgs),
    /// Build the OCI image of the filter into a folder.
    Image {
        /// The filter, `oidc_gate.wasm`.
        wasm: PathBuf,
        /// The folder to write the manifest, config and layers to.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = ImageVariant::Compat)]
        variant: ImageVariant,
    },
    /// Push the image to a registry (credentials from ~/.docker/config.json); prints the
    /// manifest digest, the WasmPlugin's `sha256`.
    Push {
        /// The filter, `oidc_gate.wasm`.
        wasm: PathBuf,
        /// registry/repository:tag
        reference: String,
        #[arg(long, value_enum, default_value_t = ImageVariant::Compat)]
        variant: ImageVariant,
        /// A registry without TLS.
        #[arg(long)]
        plain_http: bool,
    },
    /// Turn OAuth2-Proxy Helm values into an oidc-gate configuration: one values file, or one
    /// per app (one OAuth2-Proxy each) behind the same gateway.
    #[command(
        after_help = "Several apps: `oidc-gate-ctl migrate grafana.yaml=grafana.example.com finance.yaml=finance.example.com,pay.example.com`. The first file gives the provider `default` and the options every app shares (cookies, headers, routes); each further file becomes a `providers` entry named after its file (client secret in OIDC_CLIENT_SECRET_<ID>); each file's hosts become a policy with its provider and its email domains and groups."
    )]
    Migrate {
        /// A values file (`config` and `extraArgs`), or `VALUES=HOST,HOST…`: the file and the
        /// hosts its app serves, which every file needs when several are given.
        #[arg(required = true, value_name = "VALUES[=HOSTS]", value_parser = values_arg)]
        values: Vec<ValuesArg>,
    },
    /// Print the configuration's JSON Schema.
    Schema,
    /// Make a key pair for `client_auth_method: private_key_jwt`: the private key (PKCS#8 PEM)
    /// for a Kubernetes Secret, and the public JWK, with its `kid`, to add to the IdP's app.
    Keygen {
        #[arg(long, value_enum, default_value_t = KeyKind::Rs256)]
        alg: KeyKind,
        /// Write the private key to this file (mode 0600) instead of printing it before the JWK.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyKind {
    /// RSA, 2048 bits: accepted by every IdP.
    #[value(name = "RS256")]
    Rs256,
    /// P-256: smaller and faster to sign with.
    #[value(name = "ES256")]
    Es256,
}

#[derive(clap::Args)]
struct RenderArgs {
    /// The configuration, CONFIG.json.
    config: PathBuf,
    /// The image, registry/repository:tag (or @sha256:…).
    #[arg(long)]
    image: String,
    /// The manifest digest, which Istio checks the pulled image against.
    #[arg(long)]
    sha256: Option<String>,
    /// The app host: sets `redirect_url` when the configuration has none.
    #[arg(long)]
    host: Option<String>,
    #[arg(long, value_enum, default_value_t = ResourceKind::Wasmplugin)]
    kind: ResourceKind,
    /// Attach to a Gateway API gateway or an ambient waypoint through `targetRefs` instead of the
    /// ingress gateway's `selector` (istio: ingressgateway). KIND is Gateway, GatewayClass,
    /// Service (a waypoint's) or ServiceEntry; repeat for several targets (at most 16). The
    /// target is in --namespace (GatewayClass: the root namespace).
    #[arg(long = "target-ref", value_name = "KIND/NAME")]
    target_refs: Vec<TargetRef>,
    /// The namespace of every rendered resource; with --target-ref, the target's (Istio refuses
    /// cross-namespace references).
    #[arg(long, default_value = "istio-system")]
    namespace: String,
    #[arg(long, default_value = "oidc-gate")]
    name: String,
    /// Where to write the Kubernetes Secret (and the gateway's env patch) for secrets the
    /// configuration holds inline; without it such a configuration is refused.
    #[arg(long)]
    secret_out: Option<PathBuf>,
    /// The gateway Deployment whose environment carries moved secrets. Default:
    /// istio-ingressgateway; with --target-ref Gateway/NAME, NAME-istio, the Deployment Istio
    /// creates for a Gateway of class istio. A waypoint's (class istio-waypoint) is NAME, the
    /// gateway.istio.io/name-override annotation renames either, and the other target kinds
    /// have no Deployment of their own: give it here then.
    #[arg(long, value_name = "DEPLOYMENT")]
    gateway: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ImageVariant {
    /// A single-platform OCI image whose last layer is a gzip tar holding plugin.wasm.
    Compat,
    /// The two-layer Wasm artifact format.
    Artifact,
}

#[derive(Clone, Copy, ValueEnum)]
enum ResourceKind {
    Wasmplugin,
    /// Istio 1.30's TrafficExtension.
    Trafficextension,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_bytes(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn variant(v: ImageVariant) -> Variant {
    match v {
        ImageVariant::Compat => Variant::Compat,
        ImageVariant::Artifact => Variant::Artifact,
    }
}

fn validate_file(file: &PathBuf) -> Result<(), String> {
    let config = validate::plugin_config(&read(file)?)?;
    let problems = validate::check(&config);
    let name = file.display();
    if problems.is_empty() {
        println!("{name}: valid (secrets named by *_env options are read from the gateway's environment and not checked here)");
        return Ok(());
    }
    for p in &problems {
        println!("{}: {}", p.key, p.rule);
    }
    Err(format!("{name}: {} problem(s)", problems.len()))
}

fn render_files(args: RenderArgs) -> Result<(), String> {
    let config = validate::plugin_config(&read(&args.config)?)?;
    let options = Options {
        kind: match args.kind {
            ResourceKind::Wasmplugin => Kind::WasmPlugin,
            ResourceKind::Trafficextension => Kind::TrafficExtension,
        },
        image: args.image,
        sha256: args.sha256,
        host: args.host,
        namespace: args.namespace,
        name: args.name,
        target_refs: args.target_refs,
        gateway: args.gateway,
        ..Options::default()
    };
    let rendered = render::render(&config, &options).map_err(|p| p.join("\n"))?;
    write_secrets(&rendered.secrets, args.secret_out)?;
    print!("{}", render::to_yaml(&rendered.docs));
    Ok(())
}

/// Writes the secrets `render` moved out of the plugin configuration to their own file (a
/// Secret and the gateway's env patch), or refuses: they never go into the plugin resource.
fn write_secrets(secrets: &render::MovedSecrets, out: Option<PathBuf>) -> Result<(), String> {
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
    std::fs::write(&path, render::to_yaml(&secrets.docs))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let deployments = secrets.deployments.join(", ");
    for (key, var) in &secrets.moved {
        eprintln!(
            "secret: {key} moved to {var} in {} (apply it, then patch the gateway Deployment {deployments})",
            path.display()
        );
    }
    Ok(())
}

fn image_folder(wasm: &PathBuf, out: &PathBuf, v: ImageVariant) -> Result<(), String> {
    let img = image::build(&read_bytes(wasm)?, variant(v)).map_err(|e| e.to_string())?;
    let write =
        |name: &str, bytes: &[u8]| std::fs::write(out.join(name), bytes).map_err(|e| e.to_string());
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    write(
        "manifest.json",
        &serde_json::to_vec_pretty(&img.manifest).map_err(|e| e.to_string())?,
    )?;
    write("config.json", &img.config.data)?;
    for l in &img.layers {
        write(&image::sha256_hex(&l.data), &l.data)?;
    }
    println!(
        "{}: manifest, config and {} layer(s)",
        out.display(),
        img.layers.len()
    );
    Ok(())
}

fn push(wasm: &PathBuf, reference: &str, v: ImageVariant, plain_http: bool) -> Result<(), String> {
    let img = image::build(&read_bytes(wasm)?, variant(v)).map_err(|e| e.to_string())?;
    let registry = reference.split('/').next().unwrap_or_default();
    let auth = image::docker_auth(registry);
    let digest = image::push(&img, reference, &auth, plain_http)?;
    // What a WasmPlugin's `sha256` must hold for an oci:// URL.
    println!("{digest}");
    Ok(())
}

/// A `migrate` argument: a values file and the hosts its app serves.
#[derive(Clone)]
struct ValuesArg {
    path: PathBuf,
    hosts: Vec<String>,
}

/// `values.yaml` or `values.yaml=host1,host2` (a file whose own name holds '=' is read whole).
fn values_arg(arg: &str) -> Result<ValuesArg, String> {
    let whole = || ValuesArg {
        path: arg.into(),
        hosts: Vec::new(),
    };
    let Some((path, hosts)) = arg.rsplit_once('=') else {
        return Ok(whole());
    };
    if std::path::Path::new(arg).is_file() {
        return Ok(whole());
    }
    let hosts: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    if path.is_empty() || hosts.is_empty() {
        return Err("expected VALUES or VALUES=HOST,HOST…".into());
    }
    Ok(ValuesArg {
        path: path.into(),
        hosts,
    })
}

fn migrate_values(values: &[ValuesArg]) -> Result<(), String> {
    let m = match values {
        [one] if one.hosts.is_empty() => migrate::migrate(&read(&one.path)?)?,
        _ => {
            let mut files = Vec::new();
            for v in values {
                let name = v.path.file_stem().map_or_else(
                    || v.path.display().to_string(),
                    |s| s.to_string_lossy().into(),
                );
                files.push((name, read(&v.path)?, v.hosts.clone()));
            }
            let apps: Vec<migrate::App<'_>> = files
                .iter()
                .map(|(name, text, hosts)| migrate::App {
                    name,
                    values_yaml: text,
                    hosts: hosts.clone(),
                })
                .collect();
            migrate::migrate_apps(&apps)?
        }
    };
    let config = serde_json::to_string_pretty(&m.config).map_err(|e| e.to_string())?;
    println!("{config}");
    for (name, _) in &m.secrets {
        eprintln!("secret: put the value in a Kubernetes Secret and pass it to the gateway as {name} (vmConfig.env valueFrom: HOST)");
    }
    for n in &m.notes {
        eprintln!("note: {n}");
    }
    Ok(())
}

fn keygen(alg: KeyKind, out: Option<PathBuf>) -> Result<(), String> {
    let alg = match alg {
        KeyKind::Rs256 => KeyAlg::Rs256,
        KeyKind::Es256 => KeyAlg::Es256,
    };
    let key = ClientKey::generate(alg).map_err(|e| format!("the key {e}"))?;
    let pem = key
        .private_pem()
        .ok_or("the new key could not be written as PEM")?;
    let jwk = serde_json::to_string_pretty(&key.public_jwk()).map_err(|e| e.to_string())?;
    match &out {
        Some(path) => write_private(path, &pem)?,
        None => print!("{pem}"),
    }
    println!("{jwk}");
    let file = out.map_or("KEY.pem".into(), |p| p.display().to_string());
    eprintln!(
        "kid {kid}: add the public JWK to the IdP's app (Okta: General › Client Credentials › Public key / Private key › Add key), then\n  kubectl -n istio-system create secret generic oidc-gate --from-file=OIDC_CLIENT_PRIVATE_KEY={file}\nand set client_auth_method \"private_key_jwt\", client_private_key_env \"OIDC_CLIENT_PRIVATE_KEY\" (client_private_key_id defaults to this kid)",
        kid = key.kid()
    );
    Ok(())
}

/// A private key file only its owner can read.
fn write_private(path: &PathBuf, pem: &str) -> Result<(), String> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(pem.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Validate { file } => validate_file(&file),
        Command::Render(args) => render_files(args),
        Command::Image { wasm, out, variant } => image_folder(&wasm, &out, variant),
        Command::Push {
            wasm,
            reference,
            variant,
            plain_http,
        } => push(&wasm, &reference, variant, plain_http),
        Command::Migrate { values } => migrate_values(&values),
        Command::Keygen { alg, out } => keygen(alg, out),
        Command::Schema => {
            let schema = oidc_gate_core::config::json_schema();
            let text = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
