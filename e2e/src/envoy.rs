//! A real Envoy running the oidc-gate module, configured the way istiod renders a WasmPlugin
//! (shared/istio/NOTES.md §2): the plugin configuration as a JSON `StringValue`, `name`
//! `<ns>.<name>~istio-translated-wasmplugin`, `root_id` from `pluginName`, empty `vm_id`, the V8
//! runtime, `vmConfig.env` as `environment_variables`, `failStrategy` as `failure_policy`; IdP
//! clusters named `outbound|<port>||<host>` as Istio names a ServiceEntry's.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::procs::Proc;
use crate::tools;

/// What a WasmPlugin would say, reduced to what reaches Envoy.
#[derive(Clone, Debug)]
pub struct Plugin {
    pub namespace: String,
    pub name: String,
    pub plugin_name: String,
    pub config: Value,
    /// `vmConfig.env` entries with `valueFrom: INLINE`.
    pub env: Vec<(String, String)>,
    /// `vmConfig.env` entries with `valueFrom: HOST`: read from Envoy's own environment.
    pub host_env_keys: Vec<String>,
    /// Envoy's `failure_policy`: `FAIL_CLOSE` → `FAIL_CLOSED`, `FAIL_OPEN`, `FAIL_RELOAD`, as
    /// istiod maps `failStrategy`.
    pub failure_policy: String,
    pub wasm: PathBuf,
}

impl Plugin {
    pub fn new(config: Value) -> Self {
        Self {
            namespace: "istio-system".into(),
            name: "oidc-gate".into(),
            plugin_name: String::new(),
            config,
            env: Vec::new(),
            host_env_keys: Vec::new(),
            // What `oidc-gate-ctl render` sets.
            failure_policy: "FAIL_RELOAD".into(),
            wasm: tools::wasm_module(),
        }
    }

    /// What istiod makes of a WasmPlugin (or TrafficExtension) resource (NOTES.md §2): the
    /// plugin configuration as JSON, `vmConfig.env` split into inline values and host keys,
    /// `pluginName` as root id, `failStrategy` as the failure policy; `wasm` is the module the
    /// agent downloaded.
    pub fn from_istio(resource: &Value, wasm: PathBuf) -> Self {
        let spec = &resource["spec"];
        let w = if resource["kind"] == "TrafficExtension" {
            &spec["wasm"]
        } else {
            spec
        };
        let mut env = Vec::new();
        let mut host_env_keys = Vec::new();
        for e in w["vmConfig"]["env"].as_array().cloned().unwrap_or_default() {
            let name = e["name"].as_str().unwrap_or_default().to_string();
            if e["valueFrom"] == "HOST" {
                host_env_keys.push(name);
            } else {
                env.push((name, e["value"].as_str().unwrap_or_default().to_string()));
            }
        }
        Self {
            namespace: resource["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: resource["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            plugin_name: w["pluginName"].as_str().unwrap_or_default().to_string(),
            config: w["pluginConfig"].clone(),
            env,
            host_env_keys,
            failure_policy: match w["failStrategy"].as_str() {
                Some("FAIL_OPEN") => "FAIL_OPEN",
                Some("FAIL_RELOAD") => "FAIL_RELOAD",
                _ => "FAIL_CLOSED",
            }
            .into(),
            wasm,
        }
    }

    /// The `envoy.extensions.filters.http.wasm.v3.Wasm` filter istiod sends through ECDS.
    pub fn http_filter(&self) -> Value {
        let plugin = format!(
            "{}.{}~istio-translated-wasmplugin",
            self.namespace, self.name
        );
        let env: serde_json::Map<String, Value> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut vm_config = json!({
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": self.wasm}},
        });
        if !env.is_empty() {
            vm_config["environment_variables"]["key_values"] = json!(env);
        }
        if !self.host_env_keys.is_empty() {
            vm_config["environment_variables"]["host_env_keys"] = json!(self.host_env_keys);
        }
        json!({
            "name": format!("extensions.istio.io/trafficextension/{plugin}"),
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": plugin,
                    "root_id": self.plugin_name,
                    "vm_config": vm_config,
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": self.config.to_string(),
                    },
                    "failure_policy": self.failure_policy,
                }
            }
        })
    }
}

/// A port free now (bound and released), for services whose URL must be known in advance.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn static_cluster(name: &str, port: u16) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
        ]}]}
    })
}

/// An Envoy bootstrap with one listener: the Wasm filter, then the router to the app.
pub fn bootstrap(
    listen_port: u16,
    app_port: u16,
    plugin: &Plugin,
    idp_clusters: &[(String, u16)],
) -> Value {
    let mut clusters = vec![static_cluster("app", app_port)];
    for (name, port) in idp_clusters {
        clusters.push(static_cluster(name, *port));
    }
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "gateway",
                        "normalize_path": true,
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]}]},
                        "http_filters": [
                            plugin.http_filter(),
                            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }
                }]}]
            }],
            "clusters": clusters
        }
    })
}

pub struct Envoy {
    pub port: u16,
    pub admin_port: u16,
    pub proc: Proc,
}

impl Envoy {
    /// Starts Envoy with `config` and waits until its admin says it is live; `Err` with the log
    /// when it exits first (a refused plugin configuration makes it exit).
    pub fn start(name: &str, config: &Value, concurrency: u32) -> Result<Self, String> {
        Self::start_with_env(name, config, concurrency, &[])
    }

    /// Starts Envoy with extra process environment (what `valueFrom: HOST` reads).
    pub fn start_with_env(
        name: &str,
        config: &Value,
        concurrency: u32,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        Self::start_with_log(name, config, concurrency, env, "debug")
    }

    /// `wasm_log` is the level of Envoy's `wasm` logger (the filter follows it): `debug` in the
    /// tests, `warning` as Istio runs it.
    pub fn start_with_log(
        name: &str,
        config: &Value,
        concurrency: u32,
        env: &[(String, String)],
        wasm_log: &str,
    ) -> Result<Self, String> {
        let artifacts = tools::artifacts_dir();
        let path = artifacts.join(format!("{name}-envoy.json"));
        std::fs::write(&path, config.to_string()).map_err(|e| e.to_string())?;
        let admin_file = artifacts.join(format!("{name}-envoy.admin"));
        let _ = std::fs::remove_file(&admin_file);
        let mut cmd = Command::new(tools::envoy());
        cmd.arg("-c")
            .arg(&path)
            .args([
                "--concurrency",
                &concurrency.to_string(),
                "--disable-hot-restart",
                "--log-level",
                "info",
            ])
            .args(["--component-log-level", &format!("wasm:{wasm_log}")])
            .arg("--admin-address-path")
            .arg(&admin_file)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut proc = Proc::spawn(
            &format!("{name}-envoy"),
            cmd,
            &artifacts.join(format!("{name}-envoy.log")),
            false,
        )
        .map_err(|e| format!("cannot start envoy: {e}"))?;
        let port = config["static_resources"]["listeners"][0]["address"]["socket_address"]
            ["port_value"]
            .as_u64()
            .unwrap_or(0) as u16;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(status) = proc.exited() {
                return Err(format!("envoy exited ({status}):\n{}", proc.log_text()));
            }
            let admin = std::fs::read_to_string(&admin_file).unwrap_or_default();
            if let Some(admin_port) = admin
                .trim()
                .rsplit(':')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
            {
                let ready = ureq::get(&format!("http://127.0.0.1:{admin_port}/ready")).call();
                if matches!(ready, Ok(r) if r.status() == 200) {
                    return Ok(Self {
                        port,
                        admin_port,
                        proc,
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("envoy did not become ready:\n{}", proc.log_text()))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Waits until the filter has loaded the provider: a navigation gets 302, not 503.
    pub fn wait_provider_loaded(&self) {
        let start = Instant::now();
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        while start.elapsed() < Duration::from_secs(30) {
            let r = agent.get(&self.url("/")).set("accept", "text/html").call();
            let status = match r {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(s, _)) => s,
                Err(_) => 0,
            };
            if status == 302 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the filter never loaded the provider:\n{}", self.log_text());
    }
}
