//! A whole test stack: the IdP, the echo app and one or more Envoys with oidc-gate, on loopback.

use serde_json::{json, Value};

use crate::echo::Echo;
use crate::envoy::{bootstrap, free_port, Envoy, Plugin};
use crate::idp::{self, Idp};

/// A 32-byte cookie secret, base64 (test only).
pub const COOKIE_SECRET: &str = "dGVzdC1vbmx5LWNvb2tpZS1zZWNyZXQtMzItYnl0ZXM=";

pub struct StackOptions {
    /// Merged over the default test configuration.
    pub config: Value,
    pub envoys: usize,
    pub concurrency: u32,
    /// Fixed gateway ports (one per Envoy); free ports when `None`.
    pub ports: Option<Vec<u16>>,
    /// Configuration overrides for each Envoy (by index), over `config`.
    pub per_envoy: Vec<Value>,
    /// Merged into the OpenID provider's configuration.
    pub idp: Value,
    /// Further redirect URIs registered for the client at the provider.
    pub redirect_uris: Vec<String>,
    /// A plugin made elsewhere (e.g. from a rendered WasmPlugin) instead of the test default.
    pub plugin: Option<Plugin>,
    /// Envoy's process environment (for `valueFrom: HOST` variables).
    pub envoy_env: Vec<(String, String)>,
    /// Further `vmConfig.env` values of the test plugin (secrets of further providers).
    pub plugin_env: Vec<(String, String)>,
    /// Envoy reaches the provider through this fault-injecting proxy.
    pub fault: Option<std::sync::Arc<crate::fault::FaultProxy>>,
    /// Do not wait for the filter to load the provider (for tests of that wait).
    pub no_wait: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            config: json!({}),
            envoys: 1,
            concurrency: 1,
            ports: None,
            per_envoy: Vec::new(),
            idp: json!({}),
            redirect_uris: Vec::new(),
            plugin: None,
            envoy_env: Vec::new(),
            plugin_env: Vec::new(),
            fault: None,
            no_wait: false,
        }
    }
}

pub struct Stack {
    pub name: String,
    pub envoys: Vec<Envoy>,
    pub echo: Echo,
    pub idp: Idp,
    pub plugin: Plugin,
}

/// `overrides` merged into `base` (top-level keys; `null` removes a key).
pub fn merged(mut base: Value, overrides: &Value) -> Value {
    if let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            if v.is_null() {
                b.remove(k);
            } else {
                b.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

impl Stack {
    /// One Envoy (one worker) with `config` merged over the test configuration.
    pub fn with_config(name: &str, config: Value) -> Self {
        Self::start(
            name,
            StackOptions {
                config,
                ..StackOptions::default()
            },
        )
    }

    pub fn start(name: &str, options: StackOptions) -> Self {
        let ports: Vec<u16> = options
            .ports
            .clone()
            .unwrap_or_else(|| (0..options.envoys).map(|_| free_port()).collect());
        let callbacks: Vec<String> = ports
            .iter()
            .map(|p| format!("http://localhost:{p}/oauth2/callback"))
            .collect();
        let post_logout: Vec<String> = ports
            .iter()
            .map(|p| format!("http://localhost:{p}/"))
            .collect();
        let registered: Vec<String> = callbacks
            .iter()
            .chain(&options.redirect_uris)
            .cloned()
            .collect();
        let idp = Idp::start(name, &registered, &post_logout, &options.idp);
        let echo = Echo::start();
        let base = json!({
            "oidc_issuer_url": idp.issuer,
            "client_id": idp::CLIENT_ID,
            "client_secret_env": "OIDC_CLIENT_SECRET",
            "cookie_secret_env": "OIDC_COOKIE_SECRET",
            "cookie_secure": false,
            "idp_timeout": "3s",
        });
        // `{issuer}` in the test's configuration stands for the provider's issuer (its port is
        // only known now).
        let overrides: Value =
            serde_json::from_str(&options.config.to_string().replace("{issuer}", &idp.issuer))
                .unwrap_or_else(|_| options.config.clone());
        let mut config = merged(base, &overrides);
        // Replicas share one public host, so they share one redirect URL: replica 0's.
        if options.envoys > 1 && config.get("redirect_url").is_none() {
            config["redirect_url"] = json!(callbacks[0]);
        }
        let plugin = options.plugin.clone().unwrap_or_else(|| {
            let mut plugin = Plugin::new(config);
            plugin.env = vec![
                ("OIDC_CLIENT_SECRET".into(), idp::CLIENT_SECRET.into()),
                ("OIDC_COOKIE_SECRET".into(), COOKIE_SECRET.into()),
            ];
            plugin.env.extend(options.plugin_env.iter().cloned());
            plugin
        });
        // The cluster keeps the name derived from the issuer URL; its endpoint may be the proxy.
        let endpoint_port = match &options.fault {
            Some(proxy) => {
                proxy.set_target(idp.port);
                proxy.port
            }
            None => idp.port,
        };
        let idp_cluster = (format!("outbound|{}||127.0.0.1", idp.port), endpoint_port);
        let mut envoys = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let mut plugin = plugin.clone();
            if let Some(overrides) = options.per_envoy.get(i) {
                plugin.config = merged(plugin.config, overrides);
            }
            let cfg = bootstrap(
                *port,
                echo.port,
                &plugin,
                std::slice::from_ref(&idp_cluster),
            );
            let envoy = Envoy::start_with_env(
                &format!("{name}-{i}"),
                &cfg,
                options.concurrency,
                &options.envoy_env,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            envoys.push(envoy);
        }
        for e in envoys.iter().filter(|_| !options.no_wait) {
            e.wait_provider_loaded();
        }
        Self {
            name: name.to_string(),
            envoys,
            echo,
            idp,
            plugin,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.envoys[0].url(path)
    }

    /// The session a browser holds, opened with the stack's cookie secret (tests only).
    pub fn open_session(&self, cookie_header: &str) -> Option<oidc_gate_core::session::Session> {
        let env = |k: &str| {
            self.plugin
                .env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        let config =
            oidc_gate_core::Config::parse(self.plugin.config.to_string().as_bytes(), &env).ok()?;
        let gate = oidc_gate_core::Gate::new(config);
        let cookies =
            oidc_gate_core::cookies::RequestCookies::parse(Some(cookie_header.as_bytes()));
        // At time 0 nothing has expired: this reads what the cookie holds.
        gate.sessions()
            .decode(&cookies, 0)
            .ok()
            .map(|o| std::rc::Rc::unwrap_or_clone(o.session))
    }

    /// Envoy's log, for assertions about what was (never) logged.
    pub fn envoy_log(&self) -> String {
        self.envoys
            .iter()
            .map(|e| e.log_text())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
