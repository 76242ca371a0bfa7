//! A real OCI registry on loopback: Debian's `docker-registry` (CNCF Distribution), with
//! filesystem storage in a fresh folder, optionally behind htpasswd basic auth.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::envoy::free_port;
use crate::procs::Proc;
use crate::tools;

pub struct Registry {
    pub port: u16,
    /// (user, password) when basic auth is on.
    pub credentials: Option<(String, String)>,
    _proc: Proc,
}

impl Registry {
    /// `htpasswd`: a bcrypt line `user:hash` to require basic auth.
    pub fn start(name: &str, htpasswd: Option<(&str, &str, &str)>) -> Self {
        let (bin, _) = tools::registry_tools();
        let port = free_port();
        let dir = tools::artifacts_dir().join(format!("{name}-registry"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("registry dir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        let mut credentials = None;
        if let Some((user, password, line)) = htpasswd {
            let file = dir.join("htpasswd");
            std::fs::write(&file, format!("{line}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: oidc-gate-test\n    path: {}\n",
                file.display()
            ));
            credentials = Some((user.to_string(), password.to_string()));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).expect("registry config");
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg(&config_path);
        let mut proc = Proc::spawn(
            &format!("{name}-registry"),
            cmd,
            &dir.join("registry.log"),
            false,
        )
        .expect("start docker-registry");
        let start = Instant::now();
        loop {
            if let Some(s) = proc.exited() {
                panic!("docker-registry exited ({s}):\n{}", proc.log_text());
            }
            let r = ureq::get(&format!("http://127.0.0.1:{port}/v2/")).call();
            if matches!(r, Ok(_) | Err(ureq::Error::Status(401, _))) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "registry did not start:\n{}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            port,
            credentials,
            _proc: proc,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
